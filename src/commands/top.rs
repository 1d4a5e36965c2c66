//! `HOTKEY.TOP [COUNT n] [BY total|reads|writes] [DB n]`: the hottest keys, highest first.

use hotkey_protocol::TopEntry;
use redis_module::Context;

use super::{CommandResult, Cursor, Frame, databases, parse_db, parse_u64, visible_to, with_state};
use crate::tracker::Order;

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
        let mut top = Top {
            count: DEFAULT_COUNT,
            order: Order::Total,
            db: None,
        };
        let mut c = Cursor::new(args, "hotkey.top");
        while let Some(name) = c.option(&["COUNT", "BY", "DB"])? {
            let value = c.value(&name)?;
            match name.as_str() {
                "COUNT" => top.count = parse_positive(value).ok_or(BAD_COUNT)?,
                "BY" => top.order = parse_order(value).ok_or(BAD_BY)?,
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

/// Runs the command: the entries highest first, each a map (RESP3) or field–value pairs.
pub fn run(ctx: &Context, args: &[&[u8]]) -> CommandResult {
    let top = Top::parse(args, databases()?)?;
    let visible = visible_to(ctx);
    let entries = with_state(|s| {
        s.top(
            top.order,
            top.db,
            top.count,
            crate::clock::now_ms(),
            visible,
        )
    })?;
    Ok(Frame::Array(
        entries.iter().map(TopEntry::to_frame).collect(),
    ))
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
