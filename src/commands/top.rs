//! `HOTKEY.TOP [COUNT n] [BY total|reads|writes] [DB n] [WINDOW 1|10|60]`: the hottest keys,
//! highest first.

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::reply::Reply;
use super::{Cursor, parse_db, parse_u64};
use crate::ffi::KeyReadCheck;
use crate::state;
use crate::tracker::{KeyStats, Order, Window, key_hash};

pub const BAD_COUNT: &str = "ERR COUNT must be a positive integer";
pub const BAD_BY: &str = "ERR BY must be one of total, reads, writes";
pub const BAD_WINDOW: &str = "ERR WINDOW must be one of 1, 10, 60";
const DEFAULT_COUNT: usize = 10;
/// A ranking a person reads should not reshuffle from one call to the next: the 60 s window
/// (see the README, `HOTKEY.TOP`). The hot set and its events keep the detector's window.
const DEFAULT_WINDOW: Window = Window::Seconds60;

/// A parsed `HOTKEY.TOP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub count: usize,
    pub order: Order,
    pub db: Option<u32>,
    pub window: Window,
}

impl Top {
    /// Parses the arguments after the command name; `databases` bounds `DB`.
    pub fn parse(args: &[&[u8]], databases: u32) -> Result<Top, String> {
        let mut top = Top {
            count: DEFAULT_COUNT,
            order: Order::Total,
            db: None,
            window: DEFAULT_WINDOW,
        };
        let mut c = Cursor::new(args, "hotkey.top");
        while let Some(name) = c.option(&["COUNT", "BY", "DB", "WINDOW"])? {
            let value = c.value(&name)?;
            match name.as_str() {
                "COUNT" => top.count = parse_positive(value).ok_or(BAD_COUNT)?,
                "BY" => top.order = parse_order(value).ok_or(BAD_BY)?,
                "WINDOW" => {
                    top.window = parse_u64(value)
                        .and_then(Window::from_seconds)
                        .ok_or(BAD_WINDOW)?;
                }
                _ => top.db = Some(parse_db(value, databases)?),
            }
        }
        Ok(top)
    }
}

fn parse_positive(v: &[u8]) -> Option<usize> {
    parse_u64(v)
        .and_then(|n| usize::try_from(n).ok())
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

/// Runs the command; replies itself (a map per entry under RESP3, field–value pairs under
/// RESP2), so that the field order is the documented one.
pub fn run(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let args = super::arguments(&args);
    let databases = super::databases()?;
    let top = Top::parse(&args, databases).map_err(RedisError::String)?;
    let check = KeyReadCheck::for_caller(ctx);
    let entries = state::with(|s| {
        // Rates as of now, not as of the last tick.
        s.tracker.read_at(crate::now_ms());
        s.tracker
            .top_in(top.window, top.order, top.db, top.count, |_, key| {
                check.as_ref().is_some_and(|c| c.can_read(key))
            })
            .into_iter()
            .map(|e| {
                let hot = s
                    .hot_set
                    .get(e.db, &e.key, key_hash(e.db, &e.key))
                    .is_some();
                (e, hot)
            })
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    reply(&Reply(ctx), &entries, top.window);
    Ok(RedisValue::NoReply)
}

fn reply(r: &Reply, entries: &[(KeyStats, bool)], window: Window) {
    r.array(entries.len());
    for (e, hot) in entries {
        r.map(7);
        r.field("key").bytes(&e.key);
        r.field("db").int(i64::from(e.db));
        r.field("reads_per_sec").double(e.reads_per_sec);
        r.field("writes_per_sec").double(e.writes_per_sec);
        r.field("error").double(e.error_per_sec);
        r.field("hot").int(i64::from(*hot));
        r.field("window").int(window.seconds() as i64);
    }
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
                db: None,
                window: Window::Seconds60,
            })
        );
    }

    #[test]
    fn options_in_any_order_and_case() {
        assert_eq!(
            parse(&["by", "Writes", "db", "15", "window", "1", "count", "3"]),
            Ok(Top {
                count: 3,
                order: Order::Writes,
                db: Some(15),
                window: Window::Detector,
            })
        );
        for (arg, window) in [("1", Window::Detector), ("10", Window::Seconds10)] {
            assert_eq!(parse(&["WINDOW", arg]).map(|t| t.window), Ok(window));
        }
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
        for bad in ["0", "2", "30", "61", "-1", "1.0", "60s", "", "one"] {
            assert_eq!(err(&["WINDOW", bad]), BAD_WINDOW, "{bad:?}");
        }
        assert_eq!(err(&["WINDOW"]), "ERR WINDOW needs a value");
        assert_eq!(
            err(&["WINDOW", "1", "window", "1"]),
            "ERR WINDOW given twice"
        );
        assert_eq!(
            err(&["LIMIT", "2"]),
            "ERR unknown option 'LIMIT' for HOTKEY.TOP"
        );
    }
}
