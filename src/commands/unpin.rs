//! `HOTKEY.UNPIN key [DB n]`: ends a pin. The key stays hot only if its own rate holds it
//! there. Replies 1 when the key was pinned, else 0.

use crate::ffi::CommandDocs;
use redis_module::Context;

use super::{
    CommandError, CommandResult, Cursor, DB_ARG, Frame, KEY_ARG, check_read, databases, parse_db,
    with_state,
};
use crate::ffi;

/// What `COMMAND DOCS` says.
pub const DOCS: CommandDocs = CommandDocs {
    summary: "Ends a pin; the key stays hot only while its own rate holds it there.",
    complexity: "O(1)",
    since: "0.1.0",
    arity: -2,
    keyed: true,
    args: &[KEY_ARG, DB_ARG],
};

/// A parsed `HOTKEY.UNPIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpin {
    pub key: Vec<u8>,
    pub db: Option<u32>,
}

impl Unpin {
    pub fn parse(args: &[&[u8]], databases: u32) -> Result<Unpin, CommandError> {
        let mut c = Cursor::new(args, "hotkey.unpin");
        let mut unpin = Unpin {
            key: c.required()?.to_vec(),
            db: None,
        };
        while c.option(&["DB"])?.is_some() {
            unpin.db = Some(parse_db(c.value("DB")?, databases)?);
        }
        Ok(unpin)
    }
}

pub fn run(ctx: &Context, args: &[&[u8]]) -> CommandResult {
    let unpin = Unpin::parse(args, databases()?)?;
    check_read(ctx, &unpin.key)?;
    let db = unpin.db.unwrap_or_else(|| ffi::selected_db(ctx));
    let messages = with_state(|s| s.unpin(db, &unpin.key))?;
    let was_pinned = messages.is_some();
    crate::server::publish(ctx, &messages.unwrap_or_default());
    Ok(Frame::flag(was_pinned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_arguments() {
        let parse = |a: &[&str]| {
            let args: Vec<&[u8]> = a.iter().map(|a| a.as_bytes()).collect();
            Unpin::parse(&args, 16)
        };
        assert_eq!(
            parse(&["k", "DB", "1"]),
            Ok(Unpin {
                key: b"k".to_vec(),
                db: Some(1)
            })
        );
        assert_eq!(
            parse(&[]),
            Err(CommandError::WrongArity {
                command: "hotkey.unpin"
            })
        );
        assert_eq!(
            parse(&["k", "TTL", "1"]),
            Err(CommandError::UnknownOption {
                option: b"TTL".to_vec(),
                command: "hotkey.unpin"
            })
        );
    }
}
