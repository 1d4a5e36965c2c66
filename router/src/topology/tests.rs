use hotkey_protocol::command_table::fixture;

use super::*;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// One node of `CLUSTER SHARDS`, as RESP2 gives it (a flat array of names and values).
fn node(id: &str, port: i64, role: &str, health: &str) -> Value {
    Value::Array(vec![
        bulk("id"),
        bulk(id),
        bulk("port"),
        Value::Int(port),
        bulk("ip"),
        bulk("127.0.0.1"),
        bulk("endpoint"),
        bulk("127.0.0.1"),
        bulk("role"),
        bulk(role),
        bulk("health"),
        bulk(health),
    ])
}

fn shard(slots: &[i64], nodes: Vec<Value>) -> Value {
    Value::Array(vec![
        bulk("slots"),
        Value::Array(slots.iter().map(|s| Value::Int(*s)).collect()),
        bulk("nodes"),
        Value::Array(nodes),
    ])
}

fn addr(port: u16, id: &str) -> NodeAddr {
    NodeAddr {
        host: "127.0.0.1".into(),
        port,
        id: Some(id.into()),
    }
}

fn range(start: u16, end: u16) -> SlotRange {
    SlotRange { start, end }
}

fn args<'a>(words: &[&'a str]) -> Vec<&'a [u8]> {
    words.iter().map(|w| w.as_bytes()).collect()
}

#[test]
fn cluster_shards_gives_each_shard_its_master_and_slots() {
    let reply = Value::Array(vec![
        shard(
            &[0, 5460, 7000, 7000],
            vec![
                node("r1", 7004, "replica", "online"),
                node("m1", 7001, "master", "online"),
            ],
        ),
        shard(&[5461, 6999], vec![node("m2", 7002, "master", "failed")]),
        // A master without slots (just added) serves nothing.
        shard(&[], vec![node("m3", 7003, "master", "online")]),
    ]);
    let shards = parse_shards(&reply).expect("parses");
    assert_eq!(
        shards,
        vec![
            ShardLayout {
                master: addr(7001, "m1"),
                slots: vec![range(0, 5460), range(7000, 7000)],
            },
            ShardLayout {
                master: addr(7002, "m2"),
                slots: vec![range(5461, 6999)],
            },
        ]
    );
    assert_eq!(shards[0].master.address(), "127.0.0.1:7001");
}

#[test]
fn mid_failover_the_online_master_of_a_shard_is_its_owner() {
    let reply = Value::Array(vec![shard(
        &[0, 16383],
        vec![
            node("old", 7001, "master", "failed"),
            node("new", 7004, "master", "online"),
        ],
    )]);
    let shards = parse_shards(&reply).expect("parses");
    assert_eq!(shards[0].master, addr(7004, "new"));

    let reply = Value::Array(vec![shard(
        &[0, 16383],
        vec![
            node("old", 7001, "master", "online"),
            node("new", 7004, "master", "online"),
        ],
    )]);
    let e = parse_shards(&reply).expect_err("two owners at once");
    assert!(e.to_string().contains(AMBIGUOUS), "{e}");
}

#[test]
fn cluster_shards_in_resp3_maps_parses_the_same() {
    let map = |v: Value| match v {
        Value::Array(items) => Value::Map(
            items
                .chunks_exact(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
        ),
        other => other,
    };
    let Value::Array(mut fields) = shard(&[0, 16383], vec![]) else {
        unreachable!("shard() builds an array")
    };
    fields[3] = Value::Array(vec![map(node("m1", 7001, "master", "online"))]);
    let reply = Value::Array(vec![map(Value::Array(fields))]);
    let shards = parse_shards(&reply).expect("parses");
    assert_eq!(shards.len(), 1);
    assert_eq!(shards[0].master, addr(7001, "m1"));
    assert_eq!(shards[0].slots, vec![range(0, 16383)]);
}

#[test]
fn a_malformed_cluster_shards_reply_is_an_error_naming_it() {
    let e = parse_shards(&bulk("nope")).expect_err("not an array");
    assert!(e.to_string().contains("CLUSTER SHARDS"), "{e}");
    let e = parse_shards(&Value::Array(vec![shard(&[0, 99999], vec![])]))
        .expect_err("slot out of range");
    assert!(e.to_string().contains("bad slot range"), "{e}");
    let e = parse_shards(&Value::Array(vec![shard(
        &[0, 10],
        vec![node("r", 1, "replica", "online")],
    )]))
    .expect_err("no master");
    assert!(e.to_string().contains("without a master"), "{e}");
}

#[test]
fn cluster_slots_gathers_the_ranges_of_one_master() {
    let entry = |start: i64, end: i64, port: i64, id: &str| {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![bulk("127.0.0.1"), Value::Int(port), bulk(id)]),
            Value::Array(vec![bulk("127.0.0.1"), Value::Int(port + 3), bulk("r")]),
        ])
    };
    let reply = Value::Array(vec![
        entry(7000, 7000, 7001, "m1"),
        entry(5461, 6999, 7002, "m2"),
        entry(0, 5460, 7001, "m1"),
    ]);
    let shards = parse_slots(&reply).expect("parses");
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[0].master, addr(7001, "m1"));
    assert_eq!(shards[0].slots, vec![range(0, 5460), range(7000, 7000)]);
    assert_eq!(shards[1].slots, vec![range(5461, 6999)]);
}

#[test]
fn the_slot_map_finds_the_shard_of_every_slot_and_none_for_a_gap() {
    let shards = vec![
        ShardLayout {
            master: addr(7001, "m1"),
            slots: vec![range(0, 100), range(16383, 16383)],
        },
        ShardLayout {
            master: addr(7002, "m2"),
            slots: vec![range(200, 300)],
        },
    ];
    let map = SlotMap::new(&shards);
    assert_eq!(map.get(0), Some(0));
    assert_eq!(map.get(100), Some(0));
    assert_eq!(map.get(16383), Some(0));
    assert_eq!(map.get(150), None);
    assert_eq!(map.get(250), Some(1));
    assert_eq!(map.get(SLOTS), None);
}

#[test]
fn a_command_goes_to_the_slot_of_its_keys() {
    let c = fixture::table();
    assert_eq!(
        command_slot(&c, &args(&["GET", "foo"])),
        SlotOf::Slot(12182)
    );
    assert_eq!(
        command_slot(&c, &args(&["MGET", "{u1}.a", "{u1}.b"])),
        SlotOf::Slot(key_slot(b"u1"))
    );
    assert_eq!(
        command_slot(&c, &args(&["MSET", "a", "1", "b", "2"])),
        SlotOf::Cross
    );
    assert_eq!(command_slot(&c, &args(&["PING"])), SlotOf::Anywhere);
    assert_eq!(
        command_slot(&c, &args(&["NOSUCHCMD", "k"])),
        SlotOf::Anywhere
    );
}
