use super::*;

fn envelope(seq: u64, event: Event) -> Message {
    Message {
        v: VERSION,
        seq,
        run_id: "3f2a".into(),
        ts_ms: 1_764_139_200_123,
        node_id: None,
        role: None,
        event,
    }
}

fn hot(key: &[u8]) -> KeyEvent {
    KeyEvent {
        db: 2,
        key: KeyName::new(key),
        reads_per_sec: 5012.5,
        writes_per_sec: 98.0,
        advice: Some(Advice {
            read_hot: true,
            write_hot: false,
            pinned: false,
            reads_to: ReadsTo::Replicas,
            cache_ttl_ms: 100,
        }),
    }
}

#[test]
fn every_event_round_trips() {
    let cold = KeyEvent {
        advice: None,
        ..hot(b"k")
    };
    let events = [
        Event::Hot(hot(b"leaderboard:global")),
        Event::Update(hot(b"k")),
        Event::Cold(cold),
        Event::Heartbeat(Heartbeat {
            hot_keys: 3,
            replicas: 2,
        }),
        Event::Replicas(ReplicasEvent {
            replicas: vec![Replica {
                host: "10.0.0.7".into(),
                port: 6380,
                lag_ms: 0,
            }],
        }),
    ];
    for (i, event) in events.into_iter().enumerate() {
        let message = envelope(i as u64 + 1, event);
        let json = message.to_json();
        assert_eq!(Message::from_json(json.as_bytes()), Ok(message), "{json}");
    }
}

#[test]
fn the_documented_shape() {
    let json = envelope(7, Event::Hot(hot(b"leaderboard:global"))).to_json();
    assert_eq!(
        json,
        r#"{"v":1,"seq":7,"run_id":"3f2a","ts_ms":1764139200123,"event":"hot","db":2,"key":"leaderboard:global","reads_per_sec":5012.5,"writes_per_sec":98.0,"read_hot":true,"write_hot":false,"pinned":false,"reads_to":"replicas","cache_ttl_ms":100}"#
    );
    let cold = envelope(
        8,
        Event::Cold(KeyEvent {
            advice: None,
            ..hot(b"k")
        }),
    )
    .to_json();
    assert!(!cold.contains("reads_to"), "{cold}");
}

#[test]
fn binary_keys_travel_as_base64() {
    let key = [0xff, 0x00, b'a', 0xfe];
    let name = KeyName::new(&key);
    assert_eq!(name.key, None);
    assert_eq!(name.key_b64.as_deref(), Some("/wBh/g=="));
    assert_eq!(name.bytes(), Ok(key.to_vec()));
    let json = envelope(1, Event::Hot(hot(&key))).to_json();
    assert!(json.contains(r#""key_b64":"/wBh/g==""#), "{json}");
    let Event::Hot(back) = Message::from_json(json.as_bytes()).unwrap().event else {
        panic!("not hot");
    };
    assert_eq!(back.key.bytes(), Ok(key.to_vec()));
}

#[test]
fn unknown_events_and_fields_are_tolerated() {
    let m = Message::from_json(
        br#"{"v":2,"seq":9,"run_id":"x","ts_ms":1,"event":"resharded","slots":[1]}"#,
    )
    .unwrap();
    assert_eq!(m.event, Event::Unknown);
    let m = Message::from_json(br#"{"v":2,"seq":9,"run_id":"x","ts_ms":1,"event":"heartbeat","hot_keys":0,"replicas":1,"new":true}"#)
        .unwrap();
    assert_eq!(
        m.event,
        Event::Heartbeat(Heartbeat {
            hot_keys: 0,
            replicas: 1
        })
    );
}

#[test]
fn bad_messages_say_what_is_wrong() {
    let err = Message::from_json(b"{\"v\":1}").unwrap_err();
    assert!(err.to_string().contains("missing field"), "{err}");
    let nameless = KeyName::default();
    assert!(
        nameless
            .bytes()
            .unwrap_err()
            .to_string()
            .contains("neither key nor key_b64")
    );
    let bad = KeyName {
        key: None,
        key_b64: Some("*".into()),
    };
    assert!(bad.bytes().unwrap_err().to_string().contains("bad key_b64"));
}

#[cfg(feature = "redis")]
mod resp {
    use redis::Value;

    use super::*;

    fn s(v: &str) -> Value {
        Value::BulkString(v.as_bytes().to_vec())
    }

    fn route_fields() -> Vec<(Value, Value)> {
        vec![
            (s("role"), s("replica")),
            (s("host"), s("127.0.0.1")),
            (s("port"), Value::Int(7380)),
            (s("hot"), Value::Int(1)),
            (s("cache_ttl_ms"), Value::Int(100)),
        ]
    }

    #[test]
    fn route_from_resp3_and_resp2() {
        let want = Route {
            role: Role::Replica,
            host: "127.0.0.1".into(),
            port: 7380,
            hot: true,
            cache_ttl_ms: 100,
        };
        assert_eq!(
            Route::from_redis(&Value::Map(route_fields())),
            Ok(want.clone())
        );
        let flat = route_fields()
            .into_iter()
            .flat_map(|(k, v)| [k, v])
            .collect();
        assert_eq!(Route::from_redis(&Value::Array(flat)), Ok(want));
    }

    #[test]
    fn a_bad_reply_names_the_field() {
        let mut fields = route_fields();
        fields.retain(|(k, _)| *k != s("port"));
        let err = Route::from_redis(&Value::Map(fields)).unwrap_err();
        assert_eq!(err.to_string(), "missing field 'port'");
        let mut fields = route_fields();
        fields[0].1 = s("primary");
        let err = Route::from_redis(&Value::Map(fields)).unwrap_err();
        assert_eq!(err.to_string(), "bad value of field 'role'");
        assert!(Route::from_redis(&Value::Int(1)).is_err());
    }

    #[test]
    fn routes_with_a_binary_key() {
        let key = Value::Map(vec![
            (s("db"), Value::Int(0)),
            (s("key"), Value::BulkString(vec![0xff, 0])),
            (s("reads_per_sec"), Value::Double(1500.0)),
            (s("writes_per_sec"), Value::Double(0.0)),
            (s("read_hot"), Value::Int(1)),
            (s("write_hot"), Value::Int(0)),
            (s("pinned"), Value::Int(0)),
            (s("reads_to"), s("replicas")),
            (s("cache_ttl_ms"), Value::Int(100)),
        ]);
        let reply = Value::Map(vec![
            (s("seq"), Value::Int(12)),
            (s("run_id"), s("ab")),
            (s("channel"), s("__hotkey__")),
            (
                s("master"),
                Value::Map(vec![
                    (s("host"), s("127.0.0.1")),
                    (s("port"), Value::Int(7379)),
                ]),
            ),
            (
                s("replicas"),
                Value::Array(vec![Value::Map(vec![
                    (s("host"), s("127.0.0.1")),
                    (s("port"), Value::Int(7380)),
                    (s("lag_ms"), Value::Int(0)),
                ])]),
            ),
            (s("keys"), Value::Array(vec![key])),
        ]);
        let routes = Routes::from_redis(&reply).unwrap();
        assert_eq!(routes.seq, 12);
        assert_eq!(routes.master.port, 7379);
        assert_eq!(routes.replicas.len(), 1);
        assert_eq!(routes.keys[0].key, vec![0xff, 0]);
        assert_eq!(routes.keys[0].advice.reads_to, ReadsTo::Replicas);
    }

    fn sample_routes(cluster: bool) -> Routes {
        Routes {
            seq: 12,
            run_id: "ab".into(),
            channel: "__hotkey__{3}".into(),
            sharded: cluster,
            role: Role::Master,
            cluster: cluster.then(|| ClusterNode {
                node_id: "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca".into(),
                slots: vec![
                    crate::cluster::SlotRange {
                        start: 0,
                        end: 5460,
                    },
                    crate::cluster::SlotRange {
                        start: 7000,
                        end: 7000,
                    },
                ],
            }),
            master: Address {
                host: "127.0.0.1".into(),
                port: 7379,
            },
            replicas: vec![Replica {
                host: "::1".into(),
                port: 7380,
                lag_ms: 1000,
            }],
            keys: vec![HotKey {
                db: 3,
                key: vec![0xff, 0, b'\r', b'\n'],
                reads_per_sec: 1500.25,
                writes_per_sec: 0.5,
                advice: Advice {
                    read_hot: true,
                    write_hot: false,
                    pinned: true,
                    reads_to: ReadsTo::Replicas,
                    cache_ttl_ms: 100,
                },
            }],
        }
    }

    #[test]
    fn every_reply_round_trips_through_its_writer_in_both_protocols() {
        for resp3 in [false, true] {
            for cluster in [false, true] {
                let routes = sample_routes(cluster);
                let back = Routes::from_redis(&routes.to_frame().to_redis(resp3));
                assert_eq!(back, Ok(routes), "resp3 {resp3} cluster {cluster}");
            }
            for role in [Role::Master, Role::Replica] {
                let route = Route {
                    role,
                    host: "10.0.0.1".into(),
                    port: 6380,
                    hot: role == Role::Replica,
                    cache_ttl_ms: 0,
                };
                let back = Route::from_redis(&route.to_frame().to_redis(resp3));
                assert_eq!(back, Ok(route));
            }
            let entries = vec![
                TopEntry {
                    key: b"leaderboard:global".to_vec(),
                    db: 0,
                    reads_per_sec: 5012.5,
                    writes_per_sec: 98.0,
                    error: 0.0,
                    hot: true,
                    window_secs: Some(60),
                },
                TopEntry {
                    key: vec![0xc4, 0x80, 0],
                    db: 15,
                    reads_per_sec: 0.25,
                    writes_per_sec: 0.0,
                    error: 0.125,
                    hot: false,
                    window_secs: None,
                },
            ];
            let frame =
                crate::frame::Frame::Array(entries.iter().map(TopEntry::to_frame).collect());
            assert_eq!(
                TopEntry::list_from_redis(&frame.to_redis(resp3)),
                Ok(entries)
            );
        }
    }

    #[test]
    fn a_top_entry_without_a_window_is_from_an_older_module_and_a_broken_one_an_error() {
        let entry = |skip: &str, extra: &[(&str, Value)]| {
            let mut flat = Vec::new();
            let fields = [
                ("key", s("k")),
                ("db", Value::Int(0)),
                ("reads_per_sec", s("1.5")),
                ("writes_per_sec", Value::Double(0.0)),
                ("error", Value::Int(0)),
                ("hot", Value::Int(1)),
            ];
            for (name, value) in fields.into_iter().chain(extra.iter().cloned()) {
                if name != skip {
                    flat.extend([s(name), value]);
                }
            }
            Value::Array(vec![Value::Array(flat)])
        };
        let old = TopEntry::list_from_redis(&entry("", &[])).expect("parses");
        assert_eq!((old[0].window_secs, old[0].reads_per_sec), (None, 1.5));
        assert!(old[0].hot);
        let new = TopEntry::list_from_redis(&entry("", &[("window", Value::Int(10))]));
        assert_eq!(new.unwrap()[0].window_secs, Some(10));
        for (reply, what) in [
            (entry("db", &[]), "missing field 'db'"),
            (
                entry("", &[("window", s("soon"))]),
                "bad value of field 'window'",
            ),
            (entry("", &[("hot", Value::Int(2))]), "field 'hot' twice"),
            (Value::Int(1), "not an array"),
            (Value::Array(vec![Value::Int(1)]), "not a map"),
        ] {
            let e = TopEntry::list_from_redis(&reply).expect_err(what);
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn maps_count_their_own_fields() {
        use crate::frame::Frame;
        fn check(frame: &Frame) {
            match frame {
                Frame::Map(fields) => {
                    let names: std::collections::HashSet<_> =
                        fields.iter().map(|(n, _)| n).collect();
                    assert_eq!(names.len(), fields.len(), "a field twice in {frame:?}");
                    fields.iter().for_each(|(_, v)| check(v));
                }
                Frame::Array(items) => items.iter().for_each(check),
                _ => {}
            }
        }
        check(&sample_routes(true).to_frame());
        let Value::Array(flat) = sample_routes(false).to_frame().to_redis(false) else {
            panic!("RESP2 map is not a flat array");
        };
        assert_eq!(flat.len(), 2 * 8);
    }

    #[test]
    fn a_resp3_command_reply_reads_as_resp2() {
        use crate::command_table::CommandReply;
        let resp3 = Value::Map(vec![
            (
                s("flags"),
                Value::Set(vec![Value::SimpleString("RO".into())]),
            ),
            (s("index"), Value::Int(1)),
        ]);
        assert_eq!(
            CommandReply::from_redis(&resp3),
            CommandReply::Array(vec![
                CommandReply::Str(b"flags".to_vec()),
                CommandReply::Array(vec![CommandReply::Str(b"RO".to_vec())]),
                CommandReply::Str(b"index".to_vec()),
                CommandReply::Int(1),
            ])
        );
    }
}
