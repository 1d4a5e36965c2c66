//! `HOTKEY.TOP` entries (either reply shape), `INFO hotkey`, error texts and `CONFIG GET`.

use std::collections::HashMap;

use redis::{Connection, RedisError, Value};

/// One `HOTKEY.TOP` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub db: i64,
    pub reads: f64,
    pub writes: f64,
    pub error: f64,
    pub hot: i64,
    /// The window the rates are in, in seconds (1, 10 or 60).
    pub window: i64,
}

impl Entry {
    pub fn total(&self) -> f64 {
        self.reads + self.writes
    }
}

/// `HOTKEY.TOP <args…>`, parsed from either reply shape (RESP2 flat arrays or RESP3 maps).
pub fn top(conn: &mut Connection, args: &[&str]) -> Vec<Entry> {
    let reply: Value = redis::cmd("HOTKEY.TOP")
        .arg(args)
        .query(conn)
        .unwrap_or_else(|e| panic!("HOTKEY.TOP {}: {e}", args.join(" ")));
    parse_top(&reply)
}

/// `HOTKEY.TOP COUNT 1000` (every tracked key in these small tests).
pub fn top_all(conn: &mut Connection) -> Vec<Entry> {
    top(conn, &["COUNT", "1000"])
}

/// The entry of `key` in database `db`, if TOP (COUNT 1000) lists it.
pub fn find(entries: &[Entry], key: &[u8], db: i64) -> Option<Entry> {
    entries.iter().find(|e| e.key == key && e.db == db).cloned()
}

/// The entry of `key` (any db), panicking with the whole reply if it is missing.
pub fn entry(entries: &[Entry], key: &str) -> Entry {
    let found: Vec<&Entry> = entries.iter().filter(|e| e.key == key.as_bytes()).collect();
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
pub fn show(entries: &[Entry]) -> String {
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

/// A `HOTKEY.TOP` reply (RESP2 or RESP3) as entries, checking each has exactly the seven fields.
pub fn parse_top(reply: &Value) -> Vec<Entry> {
    let Value::Array(items) = reply else {
        panic!("HOTKEY.TOP reply is not an array: {reply:?}");
    };
    items.iter().map(parse_entry).collect()
}

fn parse_entry(item: &Value) -> Entry {
    let pairs: Vec<(&Value, &Value)> = match item {
        Value::Map(map) => map.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(flat) => {
            assert!(
                flat.len().is_multiple_of(2),
                "entry is not field-value pairs: {item:?}"
            );
            flat.chunks(2).map(|p| (&p[0], &p[1])).collect()
        }
        other => panic!("HOTKEY.TOP entry is neither a map nor an array: {other:?}"),
    };
    let mut fields: HashMap<String, &Value> = HashMap::new();
    for (name, value) in pairs {
        let name = text(name).unwrap_or_else(|| panic!("field name is not a string: {item:?}"));
        assert!(
            fields.insert(name.clone(), value).is_none(),
            "field {name} twice: {item:?}"
        );
    }
    let field = |name: &str| -> &Value {
        fields
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("entry has no field {name}: {item:?}"))
    };
    assert_eq!(
        fields.len(),
        7,
        "entry has other fields than the README's seven: {item:?}"
    );
    Entry {
        key: match field("key") {
            Value::BulkString(bytes) => bytes.clone(),
            other => panic!("key is not a bulk string: {other:?}"),
        },
        db: integer(field("db")),
        reads: double(field("reads_per_sec")),
        writes: double(field("writes_per_sec")),
        error: double(field("error")),
        hot: integer(field("hot")),
        window: integer(field("window")),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn integer(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// A double: a RESP3 double, or (RESP2) a bulk string holding one.
fn double(v: &Value) -> f64 {
    match v {
        Value::Double(d) => *d,
        Value::BulkString(_) | Value::SimpleString(_) => {
            let s = text(v).unwrap_or_default();
            s.parse()
                .unwrap_or_else(|_| panic!("expected a double, got the string {s:?}"))
        }
        other => panic!("expected a double, got {other:?}"),
    }
}

/// `INFO hotkey` as field → value. Redis prefixes module INFO fields with the module name
/// (`hotkey_enabled`); the prefix is stripped, so the names are the README's.
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
