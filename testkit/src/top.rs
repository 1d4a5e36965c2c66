//! `HOTKEY.TOP` entries (either reply shape), `INFO hotkey`, error texts and `CONFIG GET`.

use std::collections::HashMap;

use hotkey_protocol::resp::Fields;
use hotkey_protocol::{TopEntry, field};
use redis::{Connection, RedisError, Value};

/// One `HOTKEY.TOP` entry, as the test suites compare it: the protocol's [`TopEntry`] with
/// the flags and numbers as the server sends them (integers), under short names.
#[derive(Debug, Clone, PartialEq)]
pub struct TopRow {
    pub key: Vec<u8>,
    pub db: i64,
    pub reads: f64,
    pub writes: f64,
    pub error: f64,
    pub hot: i64,
    /// The window the rates are in, in seconds (1, 10 or 60).
    pub window: i64,
}

impl TopRow {
    pub fn total(&self) -> f64 {
        self.reads + self.writes
    }
}

/// `HOTKEY.TOP <args…>`, parsed from either reply shape (RESP2 flat arrays or RESP3 maps).
pub fn top(conn: &mut Connection, args: &[&str]) -> Vec<TopRow> {
    let reply: Value = redis::cmd("HOTKEY.TOP")
        .arg(args)
        .query(conn)
        .unwrap_or_else(|e| panic!("HOTKEY.TOP {}: {e}", args.join(" ")));
    parse_top(&reply)
}

/// `HOTKEY.TOP COUNT 1000` (every tracked key in these small tests).
pub fn top_all(conn: &mut Connection) -> Vec<TopRow> {
    top(conn, &["COUNT", "1000"])
}

/// The entry of `key` in database `db`, if TOP (COUNT 1000) lists it.
pub fn find(entries: &[TopRow], key: &[u8], db: i64) -> Option<TopRow> {
    entries.iter().find(|e| e.key == key && e.db == db).cloned()
}

/// The entry of `key` (any db), panicking with the whole reply if it is missing.
pub fn entry(entries: &[TopRow], key: &str) -> TopRow {
    let found: Vec<&TopRow> = entries.iter().filter(|e| e.key == key.as_bytes()).collect();
    match found.as_slice() {
        [one] => (*one).clone(),
        [] => panic!("key {key:?} is not in HOTKEY.TOP: {}", show(entries)),
        _ => panic!(
            "key {key:?} is in HOTKEY.TOP more than once: {}",
            show(entries)
        ),
    }
}

/// A readable dump of entries for failure messages.
pub fn show(entries: &[TopRow]) -> String {
    let lines: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "  {:?} db={} reads={} writes={} error={} hot={} window={}",
                String::from_utf8_lossy(&e.key),
                e.db,
                e.reads,
                e.writes,
                e.error,
                e.hot,
                e.window
            )
        })
        .collect();
    format!("{} entries\n{}", entries.len(), lines.join("\n"))
}

/// A `HOTKEY.TOP` reply (RESP2 or RESP3) as entries, read by the protocol's parser, checking
/// each entry has exactly the seven fields of the book's commands page.
pub fn parse_top(reply: &Value) -> Vec<TopRow> {
    let Value::Array(items) = reply else {
        panic!("HOTKEY.TOP reply is not an array: {reply:?}");
    };
    for item in items {
        let fields =
            Fields::of(item, "HOTKEY.TOP entry").unwrap_or_else(|e| panic!("{e}: {item:?}"));
        let mut names: Vec<String> = fields
            .names()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        names.sort();
        let mut seven = SEVEN_FIELDS.map(str::to_string);
        seven.sort();
        assert_eq!(
            names, seven,
            "entry has other fields than the book's seven: {item:?}"
        );
    }
    TopEntry::list_from_redis(reply)
        .unwrap_or_else(|e| panic!("{e}: {reply:?}"))
        .into_iter()
        .map(TopRow::from)
        .collect()
}

/// The fields of a `HOTKEY.TOP` entry.
const SEVEN_FIELDS: [&str; 7] = [
    field::KEY,
    field::DB,
    field::READS_PER_SEC,
    field::WRITES_PER_SEC,
    field::ERROR,
    field::HOT,
    field::WINDOW,
];

impl From<TopEntry> for TopRow {
    fn from(e: TopEntry) -> TopRow {
        TopRow {
            key: e.key,
            db: i64::from(e.db),
            reads: e.reads_per_sec,
            writes: e.writes_per_sec,
            error: e.error,
            hot: i64::from(e.hot),
            window: e
                .window_secs
                .and_then(|w| i64::try_from(w).ok())
                .expect("a TOP entry with a window (parse_top checks every field is there)"),
        }
    }
}

/// `INFO hotkey` as field → value. Redis prefixes module INFO fields with the module name
/// (`hotkey_enabled`); the prefix is stripped, so the names are the book's.
pub fn info_hotkey(conn: &mut Connection) -> HashMap<String, String> {
    let info: String = redis::cmd("INFO")
        .arg("hotkey")
        .query(conn)
        .expect("INFO hotkey");
    info.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            let k = k.strip_prefix("hotkey_").unwrap_or(k);
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// One numeric `INFO hotkey` field.
pub fn info_number(conn: &mut Connection, field: &str) -> f64 {
    let info = info_hotkey(conn);
    let value = info
        .get(field)
        .unwrap_or_else(|| panic!("INFO hotkey has no field {field}: {info:?}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("INFO hotkey {field}:{value} is not a number"))
}

/// The text a user sees for a server error: `ERR COUNT must be a positive integer`.
pub fn error_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// Run `cmd`, which must fail, and return the error text.
pub fn expect_error(conn: &mut Connection, cmd: &redis::Cmd) -> String {
    match cmd.query::<Value>(conn) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => error_text(&e),
    }
}

/// `CONFIG GET <name>` → the value.
pub fn config_get(conn: &mut Connection, name: &str) -> String {
    let pairs: HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(conn)
        .unwrap_or_else(|e| panic!("CONFIG GET {name}: {e}"));
    pairs
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("CONFIG GET {name} returned {pairs:?}"))
}
