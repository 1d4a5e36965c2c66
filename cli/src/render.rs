//! The merged table as text (`--once`, and the cells of the live view) or JSON (`--json`).

use std::time::{SystemTime, UNIX_EPOCH};

use hotkey_protocol::KeyName;
use serde_json::{Value, json};

use crate::top::{KeyRow, Query, Snapshot};

/// The column titles, in the order of [`cells`].
pub const COLUMNS: [&str; 9] = [
    "KEY",
    "DB",
    "NODE / SHARD",
    "READS/S",
    "WRITES/S",
    "MASTER R/S",
    "REPLICA R/S",
    "HOT",
    "READS GO TO",
];

/// A key as redis-cli prints one: quoted, with `\"`, `\\`, `\n`, `\r`, `\t`, `\a`, `\b` and
/// `\xHH` for other bytes outside printable ASCII, so binary keys show exactly.
pub fn escape(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    out.push('"');
    for &b in key {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// `HH:MM:SS` (UTC) of `t`.
pub fn clock(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `1,234.5`: rates with a thousands separator and one decimal.
fn rate(r: f64) -> String {
    let text = format!("{r:.1}");
    let (whole, frac) = text.split_once('.').unwrap_or((&text, "0"));
    let digits: Vec<char> = whole.chars().collect();
    let mut grouped = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0
            && (digits.len() - i).is_multiple_of(3)
            && c.is_ascii_digit()
            && digits[i - 1] != '-'
        {
            grouped.push(',');
        }
        grouped.push(*c);
    }
    format!("{grouped}.{frac}")
}

/// The cells of one row, in the order of [`COLUMNS`].
pub fn cells(row: &KeyRow) -> [String; 9] {
    let hot = match (row.hot, row.advice.map(|a| a.pinned)) {
        (_, Some(true)) => "pinned",
        (true, _) => "hot",
        (false, _) => "-",
    };
    let reads_go_to = match row.advice {
        Some(a) if a.cache_ttl_ms > 0 => {
            format!("{}, cache {} ms", a.reads_to.as_str(), a.cache_ttl_ms)
        }
        Some(a) => a.reads_to.as_str().to_string(),
        None => "master".to_string(),
    };
    [
        escape(&row.key),
        row.db.to_string(),
        row.shard
            .as_ref()
            .map_or_else(|| row.node.clone(), |s| s.label()),
        rate(row.reads()),
        rate(row.writes),
        rate(row.master_reads),
        rate(row.replica_reads),
        hot.to_string(),
        reads_go_to,
    ]
}

/// Whether column `i` holds numbers (right-aligned) rather than words.
pub fn right_aligned(i: usize) -> bool {
    matches!(i, 1 | 3..=6)
}

/// Each column's width: its widest cell or its title.
pub fn widths(rows: &[[String; 9]]) -> [usize; 9] {
    let mut widths = COLUMNS.map(|c| c.chars().count() + 1);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths
}

/// The line above the table: nodes up and down, window, order, time.
pub fn header(snapshot: &Snapshot, query: &Query) -> String {
    let window = match snapshot.window() {
        Some(w) => format!("window {w} s"),
        None => "window: the module's".to_string(),
    };
    format!(
        "hotkey top — nodes: {} up, {} down — {window} — by {} — {} UTC",
        snapshot.up(),
        snapshot.down(),
        query.by.as_str(),
        clock(snapshot.taken_at)
    )
}

/// `--once`: the header, one line per node, and the table with aligned columns.
pub fn text(snapshot: &Snapshot, query: &Query) -> String {
    let mut out = header(snapshot, query);
    out.push('\n');
    for report in &snapshot.nodes {
        let state = match &report.result {
            Ok(_) => "up".to_string(),
            Err(e) => format!("DOWN ({e})"),
        };
        let shard = report
            .node
            .shard
            .as_ref()
            .map(|s| format!(" shard {}", s.label()))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {} {}{shard}: {state}\n",
            report.node.endpoint.addr,
            report.node.role.as_str()
        ));
    }
    let rows: Vec<[String; 9]> = snapshot.keys.iter().map(cells).collect();
    let widths = widths(&rows);
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| match right_aligned(i) {
                true => format!("{c:>w$}"),
                false => format!("{c:<w$}"),
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    out.push_str(&line(&COLUMNS.map(String::from)));
    for row in &rows {
        out.push_str(&line(row));
    }
    if rows.is_empty() {
        out.push_str("(no keys)\n");
    }
    out
}

/// `--json`: `{"window", "by", "nodes": [...], "keys": [...]}`.
pub fn json(snapshot: &Snapshot) -> String {
    let nodes: Vec<Value> = snapshot
        .nodes
        .iter()
        .map(|r| {
            json!({
                "addr": r.node.endpoint.addr,
                "role": r.node.role.as_str(),
                "shard": r.node.shard.as_ref().map(|s| s.label()),
                "up": r.result.is_ok(),
                "error": r.result.as_ref().err(),
            })
        })
        .collect();
    let keys: Vec<Value> = snapshot.keys.iter().map(key_json).collect();
    json!({
        "window": snapshot.window(),
        "errors": snapshot.discovery_errors,
        "nodes": nodes,
        "keys": keys,
    })
    .to_string()
}

/// Rates to two decimals, as the events give them.
fn two_decimals(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn key_json(row: &KeyRow) -> Value {
    let mut entry = serde_json::to_value(KeyName::new(&row.key)).unwrap_or(Value::Null);
    let fields = json!({
        "db": row.db,
        "node": row.node,
        "shard": row.shard.as_ref().map(|s| s.label()),
        "reads_per_sec": two_decimals(row.reads()),
        "writes_per_sec": two_decimals(row.writes),
        "master_reads_per_sec": two_decimals(row.master_reads),
        "replica_reads_per_sec": two_decimals(row.replica_reads),
        "error": two_decimals(row.error),
        "hot": row.hot,
        "pinned": row.advice.map(|a| a.pinned),
        "reads_to": row.advice.map(|a| a.reads_to.as_str()),
        "cache_ttl_ms": row.advice.map(|a| a.cache_ttl_ms),
        "window": row.window,
    });
    if let (Value::Object(entry), Value::Object(fields)) = (&mut entry, fields) {
        entry.extend(fields);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_like_redis_cli() {
        assert_eq!(escape(b"user:1"), r#""user:1""#);
        assert_eq!(escape(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escape(b"\xff\x00\n"), r#""\xff\x00\n""#);
    }

    #[test]
    fn rates_group_thousands() {
        assert_eq!(rate(1234567.0), "1,234,567.0");
        assert_eq!(rate(999.0), "999.0");
        assert_eq!(rate(0.04), "0.0");
    }
}
