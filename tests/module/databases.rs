//! Keys are attributed to databases as `INFO hotkey` `db_attribution` announces.

use std::time::Duration;

use hotkey::commands::CommandError;
use hotkey_testkit::{Server, expect_error, find, info_hotkey, show, top, top_all};

fn attribution(conn: &mut redis::Connection) -> String {
    let info = info_hotkey(conn);
    info.get("db_attribution")
        .unwrap_or_else(|| panic!("INFO hotkey has no db_attribution: {info:?}"))
        .clone()
}

#[test]
fn same_key_in_two_databases_follows_db_attribution() {
    let server = Server::start();
    let mut db0 = server.conn();
    let mut db3 = server.conn_db(3);
    // Where the filter can tell clients apart, it follows their databases only once a
    // database other than 0 holds keys: until then everything is in db 0.
    let before = attribution(&mut db0);
    assert!(
        matches!(before.as_str(), "db0" | "db0_only"),
        "an empty server is {before}"
    );
    let _: () = redis::cmd("SET")
        .arg("marker")
        .arg("x")
        .query(&mut db3)
        .expect("SET in db 3");
    if before == "db0" {
        hotkey_testkit::wait_until(
            "db_attribution per_client once db 3 has a key",
            Duration::from_secs(5),
            || {
                let now = attribution(&mut db0);
                if now == "per_client" {
                    Ok(())
                } else {
                    Err(now)
                }
            },
        );
    }
    for _ in 0..3 {
        let _: () = redis::cmd("SET")
            .arg("shared")
            .arg("v")
            .query(&mut db0)
            .expect("SET");
        let _: Option<String> = redis::cmd("GET")
            .arg("shared")
            .query(&mut db3)
            .expect("GET");
    }

    let attribution = attribution(&mut db0);
    let entries: Vec<_> = top_all(&mut db0)
        .into_iter()
        .filter(|e| e.key == b"shared")
        .collect();
    let only_db3: Vec<_> = top(&mut db0, &["COUNT", "100", "DB", "3"])
        .into_iter()
        .filter(|e| e.key == b"shared")
        .collect();
    assert!(
        top(&mut db0, &["COUNT", "100", "DB", "3"])
            .iter()
            .all(|e| e.db == 3),
        "DB 3 lists keys of other databases"
    );
    match attribution.as_str() {
        "per_client" => {
            assert_eq!(
                entries.len(),
                2,
                "one entry per (db, key):\n{}",
                show(&entries)
            );
            let in0 = find(&entries, b"shared", 0)
                .unwrap_or_else(|| panic!("no db 0 entry:\n{}", show(&entries)));
            let in3 = find(&entries, b"shared", 3)
                .unwrap_or_else(|| panic!("no db 3 entry:\n{}", show(&entries)));
            assert!(
                in0.writes > 0.0 && in0.reads == 0.0,
                "db 0 was only written: {in0:?}"
            );
            assert!(
                in3.reads > 0.0 && in3.writes == 0.0,
                "db 3 was only read: {in3:?}"
            );
            // The two TOP calls read rates at different instants, so the rates differ by
            // their decay: compare what DB 3 means, the entry's key, database and split.
            match only_db3.as_slice() {
                [e] => assert!(
                    e.db == 3 && e.reads > 0.0 && e.writes == 0.0,
                    "DB 3 lists the db 3 entry, read only: {e:?}"
                ),
                other => panic!("DB 3 lists one entry for the key:\n{}", show(other)),
            }
        }
        "db0_only" => {
            assert_eq!(
                entries.len(),
                1,
                "everything under db 0:\n{}",
                show(&entries)
            );
            let in0 = find(&entries, b"shared", 0)
                .unwrap_or_else(|| panic!("no db 0 entry:\n{}", show(&entries)));
            assert!(
                in0.writes > 0.0 && in0.reads > 0.0,
                "db0_only counts both the db 0 writes and the db 3 reads under db 0: {in0:?}"
            );
            assert!(
                only_db3.is_empty(),
                "nothing is counted under db 3:\n{}",
                show(&only_db3)
            );
        }
        other => panic!("db_attribution is {other:?}, not per_client or db0_only"),
    }
}

#[test]
fn db_out_of_range_is_an_error() {
    let server = Server::start();
    let mut conn = server.conn();
    for bad in ["16", "-1", "99999999999999999999"] {
        assert_eq!(
            expect_error(&mut conn, redis::cmd("HOTKEY.TOP").arg("DB").arg(bad)),
            CommandError::BadDb { databases: 16 }.to_string(),
            "DB {bad}"
        );
    }
    // The range follows the server's `databases`.
    let small = Server::builder().server_args(&["--databases", "4"]).start();
    let mut conn = small.conn();
    assert_eq!(
        expect_error(&mut conn, redis::cmd("HOTKEY.TOP").arg("DB").arg("4")),
        CommandError::BadDb { databases: 4 }.to_string()
    );
    assert!(top(&mut conn, &["DB", "3"]).is_empty());
}
