//! Reading RESP replies of either shape: a RESP3 map or the RESP2 flat field–value array.

use std::collections::HashMap;

use redis::Value;

/// The fields of a RESP2 flat field–value array or a RESP3 map (empty for anything else).
pub fn fields(value: &Value) -> HashMap<String, &Value> {
    let pairs: Vec<(&Value, &Value)> = match value {
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(a) if a.len() % 2 == 0 => a.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((text(k)?, v)))
        .collect()
}

/// A string value (lossy for non-UTF-8 bytes: for names and addresses, not keys).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// An integer, or a string holding one.
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// A double (RESP3), an integer, or (RESP2) a string holding one.
pub fn double(v: &Value) -> Option<f64> {
    match v {
        Value::Double(d) => Some(*d),
        Value::Int(i) => Some(*i as f64),
        other => text(other)?.parse().ok(),
    }
}
