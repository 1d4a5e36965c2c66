//! `HOTKEY.TOP [COUNT n] [BY total|reads|writes] [DB n]`: the hottest keys, highest first.

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue, raw};

use crate::ffi::KeyReadCheck;
use crate::state;
use crate::tracker::{KeyStats, Order};

pub const BAD_COUNT: &str = "ERR COUNT must be a positive integer";
pub const BAD_BY: &str = "ERR BY must be one of total, reads, writes";
const DEFAULT_COUNT: usize = 10;

/// A parsed `HOTKEY.TOP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub count: usize,
    pub order: Order,
    pub db: Option<u32>,
}

impl Top {
    /// Parses the arguments after the command name; `databases` bounds `DB`.
    pub fn parse(args: &[&[u8]], databases: u32) -> Result<Top, String> {
        let mut count = None;
        let mut order = None;
        let mut db = None;
        let mut it = args.iter();
        while let Some(&opt) = it.next() {
            let name = String::from_utf8_lossy(opt).to_ascii_uppercase();
            if !matches!(name.as_str(), "COUNT" | "BY" | "DB") {
                return Err(format!(
                    "ERR unknown option '{}' for HOTKEY.TOP",
                    String::from_utf8_lossy(opt)
                ));
            }
            let value = it
                .next()
                .ok_or_else(|| format!("ERR {name} needs a value"))?;
            let given = match name.as_str() {
                "COUNT" => count.replace(parse_positive(value).ok_or(BAD_COUNT)?),
                "BY" => order.replace(parse_order(value).ok_or(BAD_BY)?).map(|_| 0),
                _ => db
                    .replace(parse_db(value, databases).ok_or_else(|| bad_db(databases))?)
                    .map(|_| 0),
            };
            if given.is_some() {
                return Err(format!("ERR {name} given twice"));
            }
        }
        Ok(Top {
            count: count.unwrap_or(DEFAULT_COUNT),
            order: order.unwrap_or(Order::Total),
            db,
        })
    }
}

fn bad_db(databases: u32) -> String {
    format!(
        "ERR DB must be an integer from 0 to {}",
        databases.saturating_sub(1)
    )
}

fn parse_positive(v: &[u8]) -> Option<usize> {
    std::str::from_utf8(v)
        .ok()?
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
}

fn parse_order(v: &[u8]) -> Option<Order> {
    match v.to_ascii_lowercase().as_slice() {
        b"total" => Some(Order::Total),
        b"reads" => Some(Order::Reads),
        b"writes" => Some(Order::Writes),
        _ => None,
    }
}

fn parse_db(v: &[u8], databases: u32) -> Option<u32> {
    std::str::from_utf8(v)
        .ok()?
        .parse::<u32>()
        .ok()
        .filter(|&d| d < databases)
}

/// Runs the command; replies itself (a map per entry under RESP3, field–value pairs under
/// RESP2), so that the field order is the documented one.
pub fn run(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let args: Vec<&[u8]> = args.iter().skip(1).map(|a| a.as_slice()).collect();
    let databases =
        state::with(|s| s.databases).ok_or(RedisError::Str("ERR hotkey is not loaded"))?;
    let top = Top::parse(&args, databases).map_err(RedisError::String)?;
    let check = KeyReadCheck::for_caller(ctx);
    let entries = state::with(|s| {
        s.tracker.top(top.order, top.db, top.count, |_, key| {
            check.as_ref().is_some_and(|c| c.can_read(key))
        })
    })
    .unwrap_or_default();
    reply(ctx, &entries);
    Ok(RedisValue::NoReply)
}

fn reply(ctx: &Context, entries: &[KeyStats]) {
    raw::reply_with_array(ctx.ctx, entries.len() as i64);
    for e in entries {
        raw::reply_with_map(ctx.ctx, 6);
        field(ctx, "key");
        raw::reply_with_string_buffer(ctx.ctx, e.key.as_ptr().cast(), e.key.len());
        field(ctx, "db");
        raw::reply_with_long_long(ctx.ctx, i64::from(e.db));
        field(ctx, "reads_per_sec");
        raw::reply_with_double(ctx.ctx, e.reads_per_sec);
        field(ctx, "writes_per_sec");
        raw::reply_with_double(ctx.ctx, e.writes_per_sec);
        field(ctx, "error");
        raw::reply_with_double(ctx.ctx, e.error_per_sec);
        field(ctx, "hot");
        raw::reply_with_long_long(ctx.ctx, 0);
    }
}

fn field(ctx: &Context, name: &str) {
    raw::reply_with_string_buffer(ctx.ctx, name.as_ptr().cast(), name.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Top, String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        Top::parse(&args, 16)
    }

    #[test]
    fn defaults() {
        assert_eq!(
            parse(&[]),
            Ok(Top {
                count: 10,
                order: Order::Total,
                db: None
            })
        );
    }

    #[test]
    fn options_in_any_order_and_case() {
        assert_eq!(
            parse(&["by", "Writes", "db", "15", "count", "3"]),
            Ok(Top {
                count: 3,
                order: Order::Writes,
                db: Some(15)
            })
        );
    }

    #[test]
    fn every_bad_argument_names_the_problem() {
        let err = |a: &[&str]| parse(a).unwrap_err();
        assert_eq!(err(&["COUNT", "0"]), BAD_COUNT);
        assert_eq!(err(&["COUNT", "-1"]), BAD_COUNT);
        assert_eq!(err(&["COUNT", "abc"]), BAD_COUNT);
        assert_eq!(err(&["COUNT"]), "ERR COUNT needs a value");
        assert_eq!(err(&["BY", "foo"]), BAD_BY);
        assert_eq!(err(&["by"]), "ERR BY needs a value");
        assert_eq!(err(&["DB", "16"]), "ERR DB must be an integer from 0 to 15");
        assert_eq!(err(&["DB", "-1"]), "ERR DB must be an integer from 0 to 15");
        assert_eq!(err(&["DB", "x"]), "ERR DB must be an integer from 0 to 15");
        assert_eq!(err(&["COUNT", "1", "count", "2"]), "ERR COUNT given twice");
        assert_eq!(
            err(&["LIMIT", "2"]),
            "ERR unknown option 'LIMIT' for HOTKEY.TOP"
        );
    }
}
