//! `HOTKEY.PIN key [TTL seconds] [DB n]`: marks a key hot by hand (a known hot key, such as
//! a leaderboard), until `TTL` runs out or `HOTKEY.UNPIN`. Announced like a detected one.
//! The pin is filed under the database given (or selected), even where the module counts
//! accesses under database 0 (see `State::tracked_db`): a pin is explicit and lasts.

use crate::ffi::{Arg, ArgKind, CommandDocs};
use redis_module::Context;

use super::{
    CommandError, CommandResult, Cursor, DB_ARG, Frame, KEY_ARG, check_read, databases, parse_db,
    parse_u64, with_state,
};
use crate::ffi;
use crate::hot_set::PinError;

/// What `COMMAND DOCS` says.
pub const DOCS: CommandDocs = CommandDocs {
    summary: "Marks a key hot by hand until its TTL runs out or HOTKEY.UNPIN.",
    complexity: "O(1)",
    since: "0.1.0",
    arity: -2,
    keyed: true,
    args: &[
        KEY_ARG,
        Arg::option("TTL", "seconds", ArgKind::Integer)
            .summary("how long the pin lasts (default: until UNPIN)"),
        DB_ARG,
    ],
};

/// The longest TTL: ten years, so that milliseconds never overflow.
pub const MAX_TTL_SECS: u64 = 315_360_000;

/// A parsed `HOTKEY.PIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub key: Vec<u8>,
    pub ttl_secs: Option<u64>,
    pub db: Option<u32>,
}

impl Pin {
    pub fn parse(args: &[&[u8]], databases: u32) -> Result<Pin, CommandError> {
        let mut c = Cursor::new(args, "hotkey.pin");
        let mut pin = Pin {
            key: c.required()?.to_vec(),
            ttl_secs: None,
            db: None,
        };
        while let Some(name) = c.option(&["TTL", "DB"])? {
            let value = c.value(name)?;
            if name == "TTL" {
                let ttl = parse_u64(value).filter(|t| (1..=MAX_TTL_SECS).contains(t));
                pin.ttl_secs = Some(ttl.ok_or(CommandError::BadTtl)?);
            } else {
                pin.db = Some(parse_db(value, databases)?);
            }
        }
        Ok(pin)
    }
}

pub fn run(ctx: &Context, args: &[&[u8]]) -> CommandResult {
    let pin = Pin::parse(args, databases()?)?;
    check_read(ctx, &pin.key)?;
    let db = pin.db.unwrap_or_else(|| ffi::selected_db(ctx));
    let until = pin.ttl_secs.map(|t| crate::clock::now_ms() + t * 1000);
    let messages = with_state(|s| {
        s.pin(db, &pin.key, until).map_err(|e| match e {
            PinError::Full => CommandError::PinsFull {
                max_hot: s.max_hot(),
            },
        })
    })??;
    crate::server::publish(ctx, &messages);
    Ok(Frame::Status("OK"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Pin, CommandError> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        Pin::parse(&args, 16)
    }

    #[test]
    fn key_then_options() {
        assert_eq!(
            parse(&["TTL", "ttl", "60", "DB", "2"]),
            Ok(Pin {
                key: b"TTL".to_vec(),
                ttl_secs: Some(60),
                db: Some(2)
            })
        );
    }

    #[test]
    fn every_bad_argument_names_the_problem() {
        let err = |a: &[&str]| parse(a).unwrap_err();
        assert_eq!(
            err(&[]),
            CommandError::WrongArity {
                command: "hotkey.pin"
            }
        );
        assert_eq!(err(&["k", "TTL", "0"]), CommandError::BadTtl);
        assert_eq!(err(&["k", "TTL", "-5"]), CommandError::BadTtl);
        assert_eq!(err(&["k", "TTL", "315360001"]), CommandError::BadTtl);
        assert_eq!(
            err(&["k", "TTL"]),
            CommandError::NeedsValue { option: "TTL" }
        );
        assert_eq!(
            err(&["k", "EX", "5"]),
            CommandError::UnknownOption {
                option: b"EX".to_vec(),
                command: "hotkey.pin"
            }
        );
    }
}
