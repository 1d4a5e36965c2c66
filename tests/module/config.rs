//! Module configs: bad values are refused and change nothing; good ones take effect.

use hotkey_testkit::{
    Server, config_get, entry, info_hotkey, info_number, module_path, show, top, top_all,
};

fn config_set(conn: &mut redis::Connection, name: &str, value: &str) -> redis::RedisResult<()> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(conn)
}

fn get_n(conn: &mut redis::Connection, keys: impl IntoIterator<Item = String>) {
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("GET").arg(key).ignore();
    }
    let () = pipe.query(conn).expect("GETs");
}

#[test]
fn invalid_config_values_are_refused_and_change_nothing() {
    let server = Server::start();
    let mut conn = server.conn();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "hotkey.capacity",
            "4096",
            &["0", "15", "1048577", "abc", "99999999999", "-1", ""],
        ),
        (
            "hotkey.half-life-ms",
            "250",
            &["0", "9", "86400001", "abc", "99999999999", "-5"],
        ),
        (
            "hotkey.max-key-bytes",
            "1024",
            &["0", "1048577", "abc", "99999999999", "-1"],
        ),
        (
            "hotkey.sample-quiet-ops",
            "10000",
            &["-1", "100000001", "abc", "99999999999"],
        ),
        (
            "hotkey.sample-max",
            "1",
            &["0", "65537", "abc", "99999999999", "-1"],
        ),
        ("hotkey.enabled", "yes", &["maybe", "2", ""]),
        ("hotkey.tick-ms", "100", &["9", "10001", "x"]),
        ("hotkey.hot-threshold", "1000", &["-1", "1000000001"]),
        ("hotkey.cooldown-ms", "1000", &["-1", "3600001"]),
        ("hotkey.max-hot", "64", &["0", "100001"]),
        ("hotkey.heartbeat-ms", "1000", &["99", "60001"]),
        ("hotkey.cache-ttl-ms", "100", &["-1", "3600001"]),
        ("hotkey.max-replica-lag-ms", "2000", &["-1", "3600001"]),
        (
            "hotkey.max-replica-lag-bytes",
            "16777216",
            &["-1", "1099511627777"],
        ),
        (
            "hotkey.hot-share",
            "0.01",
            &["-0.1", "1.5", "abc", "NaN", "inf", ""],
        ),
        ("hotkey.cold-fraction", "0.5", &["0", "1.01", "x", ""]),
        ("hotkey.channel", "__hotkey__", &["", "two words"]),
    ];
    for (name, current, bad_values) in cases {
        assert_eq!(&config_get(&mut conn, name), current, "{name} before");
        for bad in *bad_values {
            assert!(
                config_set(&mut conn, name, bad).is_err(),
                "CONFIG SET {name} {bad:?} was accepted"
            );
            assert_eq!(
                &config_get(&mut conn, name),
                current,
                "CONFIG SET {name} {bad:?} changed the value"
            );
        }
    }
    assert_eq!(info_number(&mut conn, "capacity"), 4096.0);
    assert_eq!(info_number(&mut conn, "enabled"), 1.0);
}

#[test]
fn valid_config_values_take_effect() {
    let server = Server::start();
    let mut conn = server.conn();
    for (name, value) in [
        ("hotkey.half-life-ms", "5000"),
        ("hotkey.sample-quiet-ops", "0"),
        ("hotkey.sample-quiet-ops", "10000"),
        ("hotkey.sample-max", "64"),
        ("hotkey.sample-max", "1"),
        ("hotkey.capacity", "2048"),
        ("hotkey.hot-share", "0"),
        ("hotkey.hot-share", "0.25"),
        ("hotkey.cold-fraction", "1"),
        ("hotkey.channel", "hk:events"),
        ("hotkey.max-hot", "8"),
    ] {
        config_set(&mut conn, name, value)
            .unwrap_or_else(|e| panic!("CONFIG SET {name} {value}: {e}"));
        assert_eq!(config_get(&mut conn, name), value);
    }
    assert_eq!(info_number(&mut conn, "capacity"), 2048.0);
    let all = config_get_all(&mut conn);
    for name in [
        "hotkey.enabled",
        "hotkey.capacity",
        "hotkey.half-life-ms",
        "hotkey.max-key-bytes",
        "hotkey.sample-quiet-ops",
        "hotkey.sample-max",
        "hotkey.tick-ms",
        "hotkey.hot-threshold",
        "hotkey.hot-share",
        "hotkey.cold-fraction",
        "hotkey.cooldown-ms",
        "hotkey.max-hot",
        "hotkey.heartbeat-ms",
        "hotkey.channel",
        "hotkey.cache-ttl-ms",
        "hotkey.max-replica-lag-ms",
        "hotkey.max-replica-lag-bytes",
    ] {
        assert!(
            all.iter().any(|n| n == name),
            "CONFIG GET hotkey.* lacks {name}: {all:?}"
        );
    }

    // enabled no: nothing is counted; yes: counting resumes.
    get_n(&mut conn, (0..10).map(|i| format!("k:{i}")));
    config_set(&mut conn, "hotkey.enabled", "no").expect("enabled no");
    assert_eq!(info_number(&mut conn, "enabled"), 0.0);
    let counted = info_number(&mut conn, "keys_counted");
    get_n(&mut conn, (0..100).map(|i| format!("off:{i}")));
    assert_eq!(
        info_number(&mut conn, "keys_counted"),
        counted,
        "keys were counted while disabled"
    );
    let entries = top_all(&mut conn);
    assert!(
        entries.iter().all(|e| !e.key.starts_with(b"off:")),
        "a key accessed while disabled is in TOP:\n{}",
        show(&entries)
    );
    config_set(&mut conn, "hotkey.enabled", "yes").expect("enabled yes");
    assert_eq!(info_number(&mut conn, "enabled"), 1.0);
    get_n(&mut conn, (0..10).map(|i| format!("on:{i}")));
    assert!(
        info_number(&mut conn, "keys_counted") > counted,
        "counting resumed"
    );

    // max-key-bytes: longer names are counted in keys_too_long, not tracked.
    config_set(&mut conn, "hotkey.max-key-bytes", "8").expect("max-key-bytes 8");
    let too_long = info_number(&mut conn, "keys_too_long");
    get_n(&mut conn, ["12345678".to_string(), "123456789".to_string()]);
    assert_eq!(info_number(&mut conn, "keys_too_long"), too_long + 1.0);
    let entries = top_all(&mut conn);
    assert!(
        entries.iter().any(|e| e.key == b"12345678"),
        "{}",
        show(&entries)
    );
    assert!(
        entries.iter().all(|e| e.key != b"123456789"),
        "{}",
        show(&entries)
    );
}

fn config_get_all(conn: &mut redis::Connection) -> Vec<String> {
    let pairs: Vec<(String, String)> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hotkey.*")
        .query(conn)
        .expect("CONFIG GET hotkey.*");
    pairs.into_iter().map(|(name, _)| name).collect()
}

#[test]
fn shrinking_capacity_keeps_the_heaviest_keys() {
    let server = Server::steady();
    let mut conn = server.conn();
    get_n(&mut conn, (0..50).map(|_| "heaviest".to_string()));
    get_n(&mut conn, (0..40).map(|i| format!("light:{i}")));
    assert_eq!(info_number(&mut conn, "tracked_keys"), 41.0);
    config_set(&mut conn, "hotkey.capacity", "16").expect("capacity 16");
    assert_eq!(info_number(&mut conn, "capacity"), 16.0);
    assert!(info_number(&mut conn, "tracked_keys") <= 16.0);
    let entries = top(&mut conn, &["COUNT", "100"]);
    assert!(entries.len() <= 16, "{}", show(&entries));
    assert_eq!(entries[0].key, b"heaviest", "{}", show(&entries));
}

#[test]
fn bad_module_arguments_fail_the_load_and_the_server_survives() {
    let server = Server::builder().without_module().start();
    let mut conn = server.conn();
    let so = module_path().display().to_string();
    for args in [
        &["capacity", "abc"][..],
        &["capacity", "15"],
        &["bogus", "1"],
        &["capacity"],
        &["enabled", "maybe"],
    ] {
        let loaded: redis::RedisResult<()> = redis::cmd("MODULE")
            .arg("LOAD")
            .arg(&so)
            .arg(args)
            .query(&mut conn);
        assert!(
            loaded.is_err(),
            "MODULE LOAD <so> {} succeeded",
            args.join(" ")
        );
        let pong: String = redis::cmd("PING")
            .query(&mut conn)
            .expect("PING after a failed load");
        assert_eq!(pong, "PONG");
        assert!(
            redis::cmd("HOTKEY.TOP")
                .query::<redis::Value>(&mut conn)
                .is_err(),
            "HOTKEY.TOP exists after a failed load"
        );
    }
    let log = std::fs::read_to_string(server.dir.join("redis.log")).unwrap_or_default();
    assert!(
        log.contains("bogus"),
        "no log line names the unknown argument:\n{}",
        server.log_tail()
    );

    // The failed attempts left nothing behind: a good load works.
    let () = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(&so)
        .arg(&["capacity", "2048", "sample-max", "1"])
        .query(&mut conn)
        .expect("MODULE LOAD with good arguments after failed ones");
    assert_eq!(config_get(&mut conn, "hotkey.capacity"), "2048");
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut conn).expect("GET");
    entry(&top_all(&mut conn), "k");
}

#[test]
fn loadmodule_arguments_and_config_lines_set_configs() {
    let server = Server::builder().module_arg("capacity", "2048").start();
    let mut conn = server.conn();
    assert_eq!(config_get(&mut conn, "hotkey.capacity"), "2048");
    assert_eq!(
        info_hotkey(&mut conn).get("capacity").map(String::as_str),
        Some("2048")
    );

    // `hotkey.<name> <value>` as a config line (here on the command line, which is the same).
    let server = Server::builder()
        .server_args(&["--hotkey.half-life-ms", "2500"])
        .start();
    let mut conn = server.conn();
    assert_eq!(config_get(&mut conn, "hotkey.half-life-ms"), "2500");
}
