//! The commands describe themselves to the server: `COMMAND DOCS` (what redis-cli reads for
//! its hints), `COMMAND INFO` key specs, and `COMMAND GETKEYS`; the book says the same, and
//! names every command, `INFO` field and reply field the server has (`tests/book.rs` checks
//! the rest of the book without a server).

use std::collections::HashMap;

use hotkey_testkit::Server;
use redis::Value;

/// `COMMAND DOCS <name>` as field → value of the command's doc map (either protocol).
fn docs(conn: &mut redis::Connection, name: &str) -> HashMap<String, Value> {
    let reply: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg(name)
        .query(conn)
        .expect("COMMAND DOCS");
    let pairs = map_pairs(&reply);
    let [(command, body)] = pairs.as_slice() else {
        panic!("COMMAND DOCS {name}: one command expected: {reply:?}");
    };
    assert_eq!(text(command), name);
    map_pairs(body)
        .into_iter()
        .map(|(k, v)| (text(&k), v))
        .collect()
}

/// A page of the book (`docs/src/`).
fn page(name: &str) -> String {
    let path = format!("{}/docs/src/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn map_pairs(v: &Value) -> Vec<(Value, Value)> {
    match v {
        Value::Map(m) => m.clone(),
        Value::Array(a) => a
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    }
}

/// The arguments' names and types, depth first, as `name:type[:token]`.
fn arguments(doc: &HashMap<String, Value>) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        let Value::Array(args) = v else {
            panic!("arguments: {v:?}")
        };
        for arg in args {
            let fields: HashMap<String, Value> = map_pairs(arg)
                .into_iter()
                .map(|(k, v)| (text(&k), v))
                .collect();
            let mut line = format!("{}:{}", text(&fields["name"]), text(&fields["type"]));
            if let Some(token) = fields.get("token") {
                line += &format!(":{}", text(token));
            }
            out.push(line);
            if let Some(sub) = fields.get("arguments") {
                walk(sub, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(args) = doc.get("arguments") {
        walk(args, &mut out);
    }
    out
}

#[test]
fn every_command_has_a_summary_complexity_and_its_arguments() {
    let server = Server::start();
    let commands_page = page("commands.md");
    for resp3 in [false, true] {
        let mut conn = if resp3 {
            server.conn_resp3()
        } else {
            server.conn()
        };
        let expected: [(&str, &[&str]); 6] = [
            (
                "hotkey.top",
                &[
                    "count:integer:COUNT",
                    "order:oneof:BY",
                    "TOTAL:pure-token:TOTAL",
                    "READS:pure-token:READS",
                    "WRITES:pure-token:WRITES",
                    "db:integer:DB",
                    "seconds:integer:WINDOW",
                ],
            ),
            (
                "hotkey.route",
                &[
                    "key:key",
                    "operation:oneof",
                    "READ:pure-token:READ",
                    "WRITE:pure-token:WRITE",
                    "db:integer:DB",
                ],
            ),
            ("hotkey.routes", &[]),
            (
                "hotkey.pin",
                &["key:key", "seconds:integer:TTL", "db:integer:DB"],
            ),
            ("hotkey.unpin", &["key:key", "db:integer:DB"]),
            (
                "hotkey.report",
                &["report:block", "key:string", "count:integer"],
            ),
        ];
        for (name, args) in expected {
            let doc = docs(&mut conn, name);
            let summary = text(&doc["summary"]);
            assert!(summary.len() > 20, "{name}: summary {summary:?}");
            assert!(
                commands_page.contains(&summary),
                "the commands page says what COMMAND DOCS says of {name}: {summary:?}"
            );
            assert!(text(&doc["complexity"]).starts_with("O("), "{name}");
            assert_eq!(text(&doc["since"]), "0.1.0", "{name}");
            assert_eq!(text(&doc["group"]), "module", "{name}");
            assert_eq!(arguments(&doc), args, "{name} (resp3 {resp3})");
        }
    }
}

/// The field names of a map reply, and of the maps inside it, depth first.
fn field_names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Map(pairs) => {
            for (k, v) in pairs {
                out.push(text(k));
                field_names(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| field_names(v, out)),
        _ => {}
    }
}

#[test]
fn the_book_names_every_command_info_field_and_reply_field_the_server_has() {
    let server = Server::start();
    let mut conn = server.conn_resp3();
    let commands_page = page("commands.md");

    let commands: Vec<String> = redis::cmd("COMMAND")
        .arg(&["LIST", "FILTERBY", "MODULE", "hotkey"])
        .query(&mut conn)
        .expect("COMMAND LIST");
    assert!(commands.len() >= 6, "the module's commands: {commands:?}");
    for name in &commands {
        let heading = format!("## `{}", name.to_uppercase());
        assert!(
            commands_page.contains(&format!("\n{heading} "))
                || commands_page.contains(&format!("\n{heading}`")),
            "the commands page has no section {heading}…`"
        );
    }

    // A pinned key that was read: in TOP, hot in ROUTE, listed with its advice in ROUTES.
    let _: () = redis::cmd("HOTKEY.PIN")
        .arg("book:key")
        .query(&mut conn)
        .expect("PIN");
    let _: Option<String> = redis::cmd("GET")
        .arg("book:key")
        .query(&mut conn)
        .expect("GET");
    let mut fields = Vec::new();
    for args in [
        &["HOTKEY.TOP"][..],
        &["HOTKEY.ROUTE", "book:key"],
        &["HOTKEY.ROUTES"],
    ] {
        let reply: Value = redis::cmd(args[0])
            .arg(&args[1..])
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let before = fields.len();
        field_names(&reply, &mut fields);
        assert!(fields.len() > before, "{args:?} gave no fields: {reply:?}");
    }
    for field in &fields {
        assert!(
            commands_page.contains(&format!("`{field}`")),
            "the commands page does not name the reply field `{field}`"
        );
    }

    let info: String = redis::cmd("INFO")
        .arg("hotkey")
        .query(&mut conn)
        .expect("INFO hotkey");
    let info_fields: std::collections::BTreeSet<String> = info
        .lines()
        .filter_map(|line| line.strip_prefix("hotkey_"))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.to_owned())
        .collect();
    assert!(info_fields.len() > 20, "INFO hotkey: {info}");
    let info_page = page("info.md");
    let listed: std::collections::BTreeSet<String> = info_page
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|line| line.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect();
    assert_eq!(
        listed, info_fields,
        "the INFO page's table against the server's INFO hotkey"
    );
}

#[test]
fn keyed_commands_name_their_key_read_only_and_report_names_none() {
    let server = Server::start();
    let mut conn = server.conn();
    for args in [
        &["hotkey.route", "k1"][..],
        &["hotkey.route", "k1", "WRITE", "DB", "2"],
        &["hotkey.pin", "k1", "TTL", "5"],
        &["hotkey.unpin", "k1", "DB", "0"],
    ] {
        let keys: Vec<(String, Vec<String>)> = redis::cmd("COMMAND")
            .arg("GETKEYSANDFLAGS")
            .arg(args)
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("GETKEYSANDFLAGS {args:?}: {e}"));
        assert_eq!(keys, [("k1".to_owned(), vec!["RO".to_owned()])], "{args:?}");
    }
    let err = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg(&["hotkey.report", "k1", "1", "k2", "2"])
        .query::<Vec<String>>(&mut conn)
        .expect_err("REPORT declares no keys");
    assert!(
        err.to_string().contains("key"),
        "GETKEYS of REPORT says it has no key arguments: {err}"
    );
    for name in ["hotkey.top", "hotkey.routes"] {
        let err = redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg(name)
            .query::<Vec<String>>(&mut conn)
            .expect_err("keyless");
        assert!(err.to_string().contains("key"), "{name}: {err}");
    }
}

#[test]
fn the_server_checks_arity_before_the_module_runs() {
    let server = Server::start();
    let mut conn = server.conn();
    for args in [
        &["hotkey.routes", "x"][..],
        &["hotkey.route"],
        &["hotkey.report", "k"],
    ] {
        let err = redis::cmd(args[0])
            .arg(&args[1..])
            .query::<Value>(&mut conn)
            .expect_err("wrong arity");
        assert!(
            err.to_string().contains("wrong number of arguments"),
            "{args:?}: {err}"
        );
    }
}
