//! MODULE UNLOAD / LOAD, and the fields of `INFO hotkey`.

use hotkey_testkit::{
    Server, entry, error_text, info_hotkey, info_number, module_path, show, top_all,
};

fn get(conn: &mut redis::Connection, key: &str) {
    let _: Option<String> = redis::cmd("GET").arg(key).query(conn).expect("GET");
}

#[test]
fn unload_then_load_starts_fresh() {
    let server = Server::start();
    let mut conn = server.conn();
    get(&mut conn, "before");
    entry(&top_all(&mut conn), "before");

    let () = redis::cmd("MODULE")
        .arg("UNLOAD")
        .arg("hotkey")
        .query(&mut conn)
        .expect("MODULE UNLOAD hotkey");
    let err = redis::cmd("HOTKEY.TOP")
        .query::<redis::Value>(&mut conn)
        .expect_err("HOTKEY.TOP after unload");
    assert!(
        error_text(&err).to_lowercase().contains("unknown command"),
        "HOTKEY.TOP after unload: {}",
        error_text(&err)
    );
    get(&mut conn, "between");

    let () = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(module_path().display().to_string())
        .arg(&["sample-max", "1"])
        .query(&mut conn)
        .expect("MODULE LOAD after unload");
    let entries = top_all(&mut conn);
    assert!(
        entries.is_empty(),
        "a reloaded module starts empty:\n{}",
        show(&entries)
    );
    get(&mut conn, "after");
    let entries = top_all(&mut conn);
    let e = entry(&entries, "after");
    assert!(e.reads > 0.0, "{e:?}");
    assert_eq!(entries.len(), 1, "{}", show(&entries));
    assert!(info_number(&mut conn, "keys_counted") >= 1.0);
}

/// The fields the book's INFO page lists for `INFO hotkey`.
const FIELDS: [&str; 25] = [
    "enabled",
    "role",
    "tracked_keys",
    "evictions",
    "capacity",
    "memory_bytes",
    "commands_seen",
    "commands_sampled",
    "keys_counted",
    "sample_fraction",
    "commands_per_sec",
    "keys_too_long",
    "unknown_commands",
    "movable_key_lookups",
    "command_table_size",
    "db_attribution",
    "keys_per_sec",
    "hot_keys",
    "pinned_keys",
    "entry_level",
    "replicas",
    "healthy_replicas",
    "reported_reads",
    "run_id",
    "last_seq",
];

#[test]
fn info_has_every_documented_field_and_counters_rise() {
    let server = Server::start();
    let mut conn = server.conn();
    let info = info_hotkey(&mut conn);
    for field in FIELDS {
        let value = info
            .get(field)
            .unwrap_or_else(|| panic!("INFO hotkey lacks {field}: {info:?}"));
        if !matches!(field, "role" | "db_attribution" | "run_id") {
            let n: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{field}:{value} is not a number"));
            assert!(n >= 0.0, "{field}:{value}");
        }
    }
    assert_eq!(info["enabled"], "1");
    assert_eq!(info["role"], "master");
    assert_eq!(info["capacity"], "4096");
    assert_eq!(info["tracked_keys"], "0");
    assert_eq!(info["hot_keys"], "0");
    assert_eq!(info["entry_level"], "1000");
    assert_eq!(info["run_id"].len(), 40, "{info:?}");
    assert!(
        matches!(info["db_attribution"].as_str(), "db0" | "db0_only"),
        "{info:?}"
    );
    let table: f64 = info["command_table_size"].parse().unwrap_or(0.0);
    assert!(
        table >= 100.0,
        "the command table covers the server's commands: {table}"
    );
    // The whole section also appears in plain INFO / INFO everything.
    let everything: String = redis::cmd("INFO")
        .arg("everything")
        .query(&mut conn)
        .expect("INFO");
    assert!(
        everything.contains("tracked_keys:"),
        "INFO everything lacks the hotkey section"
    );

    let seen = info_number(&mut conn, "commands_seen");
    let sampled = info_number(&mut conn, "commands_sampled");
    let counted = info_number(&mut conn, "keys_counted");
    let unknown = info_number(&mut conn, "unknown_commands");
    for i in 0..20 {
        get(&mut conn, &format!("k:{i}"));
    }
    let _: redis::RedisResult<()> = redis::cmd("NO-SUCH-COMMAND").arg("k").query(&mut conn);
    assert!(info_number(&mut conn, "commands_seen") >= seen + 21.0);
    assert!(
        info_number(&mut conn, "commands_sampled") >= sampled + 20.0,
        "sample-max 1"
    );
    assert_eq!(info_number(&mut conn, "keys_counted"), counted + 20.0);
    assert!(info_number(&mut conn, "unknown_commands") > unknown);
    assert_eq!(info_number(&mut conn, "tracked_keys"), 20.0);
    assert_eq!(
        info_number(&mut conn, "sample_fraction"),
        1.0,
        "sample-max 1 counts all"
    );
}
