//! Every argument path of `HOTKEY.TOP`, with the book's exact error texts.

use hotkey::commands::CommandError;
use hotkey_testkit::{Server, TopRow, expect_error, show, top};

fn top_error(conn: &mut redis::Connection, args: &[&str]) -> String {
    expect_error(conn, redis::cmd("HOTKEY.TOP").arg(args))
}

#[test]
fn bad_arguments_get_the_documented_errors() {
    let server = Server::start();
    let mut conn = server.conn();
    let count = CommandError::BadTopCount;
    let by = CommandError::BadOrder;
    let db = CommandError::BadDb { databases: 16 };
    let window = CommandError::BadWindow;
    let needs = |option| CommandError::NeedsValue { option };
    let twice = |option| CommandError::GivenTwice { option };
    let unknown = |option: &str| CommandError::UnknownOption {
        option: option.into(),
        command: "hotkey.top",
    };
    let cases: &[(&[&str], CommandError)] = &[
        (&["COUNT", "0"], count.clone()),
        (&["COUNT", "-1"], count.clone()),
        (&["COUNT", "abc"], count.clone()),
        (&["COUNT", "1.5"], count.clone()),
        (&["COUNT", ""], count),
        (&["COUNT"], needs("COUNT")),
        (&["BY", "foo"], by.clone()),
        (&["BY", ""], by),
        (&["BY"], needs("BY")),
        (&["DB", "-1"], db.clone()),
        (&["DB", "16"], db.clone()),
        (&["DB", "x"], db),
        (&["DB"], needs("DB")),
        (&["WINDOW", "5"], window.clone()),
        (&["WINDOW", "0"], window.clone()),
        (&["WINDOW", "60s"], window.clone()),
        (&["WINDOW", "-1"], window),
        (&["WINDOW"], needs("WINDOW")),
        (&["WINDOW", "1", "window", "10"], twice("WINDOW")),
        (&["COUNT", "1", "COUNT", "2"], twice("COUNT")),
        (&["BY", "reads", "BY", "writes"], twice("BY")),
        (&["DB", "0", "DB", "0"], twice("DB")),
        (&["COUNT", "1", "DB"], needs("DB")),
        (&["bogus"], unknown("bogus")),
        (&["COUNT", "1", "bogus", "2"], unknown("bogus")),
    ];
    for (args, expected) in cases {
        assert_eq!(
            top_error(&mut conn, args),
            expected.to_string(),
            "HOTKEY.TOP {}",
            args.join(" ")
        );
    }
    // The connection and the server are fine after all that.
    assert!(top(&mut conn, &[]).is_empty());
}

/// Key name of each entry, in reply order.
fn names(entries: &[TopRow]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect()
}

fn assert_descending(entries: &[TopRow], by: fn(&TopRow) -> f64, what: &str) {
    for pair in entries.windows(2) {
        assert!(
            by(&pair[0]) >= by(&pair[1]),
            "not ordered by {what}:\n{}",
            show(entries)
        );
    }
}

#[test]
fn count_and_by_shape_the_reply() {
    let server = Server::steady();
    let mut conn = server.conn();
    // reads / writes / total per key:
    //   mostly-read   30 /  1 / 31
    //   mixed         12 / 12 / 24
    //   mostly-write   2 / 20 / 22
    let plan: [(&str, usize, usize); 3] = [
        ("mostly-read", 30, 1),
        ("mixed", 12, 12),
        ("mostly-write", 2, 20),
    ];
    let mut pipe = redis::pipe();
    for (key, reads, writes) in plan {
        for _ in 0..reads {
            pipe.cmd("GET").arg(key).ignore();
        }
        for _ in 0..writes {
            pipe.cmd("SET").arg(key).arg("v").ignore();
        }
    }
    // 12 keys read once each, so the default COUNT (10) has something to cut.
    for i in 0..12 {
        pipe.cmd("GET").arg(format!("once:{i}")).ignore();
    }
    let () = pipe.query(&mut conn).expect("workload");

    let by_total = top(&mut conn, &[]);
    assert_eq!(
        by_total.len(),
        10,
        "COUNT defaults to 10:\n{}",
        show(&by_total)
    );
    assert_descending(&by_total, TopRow::total, "reads + writes");
    assert_eq!(
        names(&by_total[..3]),
        ["mostly-read", "mixed", "mostly-write"]
    );
    let explicit = top(&mut conn, &["BY", "total", "COUNT", "10"]);
    assert_eq!(explicit.len(), 10);
    assert_eq!(
        names(&explicit[..3]),
        ["mostly-read", "mixed", "mostly-write"]
    );

    let by_reads = top(&mut conn, &["COUNT", "3", "BY", "READS"]);
    assert_eq!(names(&by_reads), ["mostly-read", "mixed", "mostly-write"]);
    let by_reads = top(&mut conn, &["COUNT", "15", "BY", "reads"]);
    assert_descending(&by_reads, |e| e.reads, "reads");

    let by_writes = top(&mut conn, &["COUNT", "3", "BY", "writes"]);
    assert_eq!(names(&by_writes), ["mostly-write", "mixed", "mostly-read"]);
    let by_writes = top(&mut conn, &["COUNT", "15", "BY", "Writes"]);
    assert_descending(&by_writes, |e| e.writes, "writes");

    // Options and their words are case-insensitive.
    let two = top(&mut conn, &["count", "2", "by", "reads"]);
    assert_eq!(names(&two), ["mostly-read", "mixed"]);
    assert_eq!(top(&mut conn, &["Count", "1", "Db", "0"]).len(), 1);
    assert_eq!(
        top(&mut conn, &["COUNT", "1000"]).len(),
        15,
        "every key accessed"
    );
    assert!(top(&mut conn, &["DB", "1"]).is_empty(), "nothing in db 1");
}

#[test]
fn every_entry_names_its_window() {
    let server = Server::start();
    let mut conn = server.conn();
    for _ in 0..50 {
        let _: Option<String> = redis::cmd("GET").arg("w").query(&mut conn).expect("GET");
    }
    for (args, window) in [
        (&[][..], 60),
        (&["WINDOW", "1"][..], 1),
        (&["window", "10"][..], 10),
        (&["WINDOW", "60", "COUNT", "5"][..], 60),
    ] {
        let entries = top(&mut conn, args);
        assert!(!entries.is_empty(), "{args:?}");
        assert!(
            entries.iter().all(|e| e.window == window),
            "{args:?}: {}",
            show(&entries)
        );
        let w = entries
            .iter()
            .find(|e| e.key == b"w")
            .expect("the key read");
        assert!(w.reads > 0.0, "{args:?}: {}", show(&entries));
    }
}
