//! `HOTKEY.TOP [COUNT n] [BY total|reads|writes] [DB n] [WINDOW 1|10|60]`: the hottest keys,
//! highest first.

use crate::ffi::{Arg, ArgKind, CommandDocs};
use hotkey_protocol::TopEntry;
use redis_module::Context;

use super::{
    CommandError, CommandResult, Cursor, Frame, databases, parse_db, parse_u64, visible_to,
    with_state,
};
use crate::tracker::{Order, Window};

/// What `COMMAND DOCS` says.
pub const DOCS: CommandDocs = CommandDocs {
    summary: "Lists the hottest keys with their decayed read and write rates.",
    complexity: "O(C log C) where C is hotkey.capacity",
    since: "0.1.0",
    arity: -1,
    keyed: false,
    args: &[
        Arg::option("COUNT", "count", ArgKind::Integer).summary("how many keys (default 10)"),
        Arg {
            name: "order",
            kind: ArgKind::OneOf(&[
                Arg::token("TOTAL"),
                Arg::token("READS"),
                Arg::token("WRITES"),
            ]),
            token: Some("BY"),
            summary: Some("rank by reads + writes (default), reads or writes"),
            optional: true,
            multiple: false,
        },
        Arg::option("DB", "db", ArgKind::Integer).summary("only keys of this database"),
        Arg::option("WINDOW", "seconds", ArgKind::Integer)
            .summary("rates over 1, 10 or 60 seconds (default 60)"),
    ],
};

const DEFAULT_COUNT: usize = 10;
/// A ranking a person reads should not reshuffle from one call to the next: the 60 s window
/// (see the book's commands page, `HOTKEY.TOP`). The hot set and its events keep the detector's window.
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
    pub fn parse(args: &[&[u8]], databases: u32) -> Result<Top, CommandError> {
        let mut top = Top {
            count: DEFAULT_COUNT,
            order: Order::Total,
            db: None,
            window: DEFAULT_WINDOW,
        };
        let mut c = Cursor::new(args, "hotkey.top");
        while let Some(name) = c.option(&["COUNT", "BY", "DB", "WINDOW"])? {
            let value = c.value(name)?;
            match name {
                "COUNT" => top.count = parse_positive(value).ok_or(CommandError::BadTopCount)?,
                "BY" => top.order = parse_order(value).ok_or(CommandError::BadOrder)?,
                "WINDOW" => {
                    top.window = parse_u64(value)
                        .and_then(Window::from_seconds)
                        .ok_or(CommandError::BadWindow)?;
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

/// Runs the command: the entries highest first, each a map (RESP3) or field–value pairs.
pub fn run(ctx: &Context, args: &[&[u8]]) -> CommandResult {
    let top = Top::parse(args, databases()?)?;
    let visible = visible_to(ctx);
    let entries = with_state(|s| {
        s.top(
            top.window,
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

    fn parse(args: &[&str]) -> Result<Top, CommandError> {
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
        let needs_value = |option| CommandError::NeedsValue { option };
        let twice = |option| CommandError::GivenTwice { option };
        let bad_db = CommandError::BadDb { databases: 16 };
        assert_eq!(err(&["COUNT", "0"]), CommandError::BadTopCount);
        assert_eq!(err(&["COUNT", "-1"]), CommandError::BadTopCount);
        assert_eq!(err(&["COUNT", "abc"]), CommandError::BadTopCount);
        assert_eq!(err(&["COUNT"]), needs_value("COUNT"));
        assert_eq!(err(&["BY", "foo"]), CommandError::BadOrder);
        assert_eq!(err(&["by"]), needs_value("BY"));
        assert_eq!(err(&["DB", "16"]), bad_db);
        assert_eq!(err(&["DB", "-1"]), bad_db);
        assert_eq!(err(&["DB", "x"]), bad_db);
        assert_eq!(err(&["COUNT", "1", "count", "2"]), twice("COUNT"));
        for bad in ["0", "2", "30", "61", "-1", "1.0", "60s", "", "one"] {
            assert_eq!(err(&["WINDOW", bad]), CommandError::BadWindow, "{bad:?}");
        }
        assert_eq!(err(&["WINDOW"]), needs_value("WINDOW"));
        assert_eq!(err(&["WINDOW", "1", "window", "1"]), twice("WINDOW"));
        assert_eq!(
            err(&["LIMIT", "2"]),
            CommandError::UnknownOption {
                option: b"LIMIT".to_vec(),
                command: "hotkey.top"
            }
        );
    }
}
