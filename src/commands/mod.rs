//! One file per command: parse the arguments into a struct, then ask the state and reply.
//! What they share: the argument cursor, the errors ([`CommandError`]), the ACL read check.
//! Each `run` returns its reply as a value ([`Frame`]) or an error; the boundary (`ffi`)
//! writes it.

pub mod error;
pub mod pin;
pub mod report;
pub mod route;
pub mod routes;
pub mod top;
pub mod unpin;

pub use hotkey_protocol::frame::Frame;
use redis_module::Context;

pub use self::error::CommandError;
pub use crate::ffi::CommandResult;
use crate::ffi::KeyReadCheck;
use crate::ffi::{Arg, ArgKind};
use crate::state::{self, State};

/// The key argument of the keyed commands, for their docs.
const KEY_ARG: Arg = Arg::required("key", ArgKind::Key);

/// The `DB n` option of the keyed commands, for their docs.
const DB_ARG: Arg = Arg::option("DB", "db", ArgKind::Integer)
    .summary("the key's database (default: the selected one)");

/// Runs `f` on the state, or fails with [`CommandError::NotLoaded`].
pub fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, CommandError> {
    state::with(f).ok_or(CommandError::NotLoaded)
}

/// `databases` of the server (bounds `DB` options), or the not-loaded error.
pub fn databases() -> Result<u32, CommandError> {
    with_state(|s| s.databases())
}

/// `NOPERM` unless the caller's ACL key patterns let it read `key`.
pub fn check_read(ctx: &Context, key: &[u8]) -> Result<(), CommandError> {
    if KeyReadCheck::for_caller(ctx).is_some_and(|c| c.can_read(key)) {
        Ok(())
    } else {
        Err(CommandError::NoPermission)
    }
}

/// Whether the caller may read each key (no user found: none).
pub fn visible_to(ctx: &Context) -> impl Fn(&[u8]) -> bool {
    let check = KeyReadCheck::for_caller(ctx);
    move |key| check.as_ref().is_some_and(|c| c.can_read(key))
}

/// Walks a command's arguments: `next_arg` for the next one, and the options that follow the
/// fixed arguments, each at most once.
pub struct Cursor<'a> {
    args: std::slice::Iter<'a, &'a [u8]>,
    command: &'static str,
    given: Vec<&'static str>,
}

impl<'a> Cursor<'a> {
    /// A cursor over `args` (without the command name) of `command`, for error texts.
    pub fn new(args: &'a [&'a [u8]], command: &'static str) -> Cursor<'a> {
        Cursor {
            args: args.iter(),
            command,
            given: Vec::new(),
        }
    }

    /// The next argument, if any.
    pub fn next_arg(&mut self) -> Option<&'a [u8]> {
        self.args.next().copied()
    }

    /// The next argument, which must be there.
    pub fn required(&mut self) -> Result<&'a [u8], CommandError> {
        self.next_arg().ok_or(CommandError::WrongArity {
            command: self.command,
        })
    }

    /// The next option, as spelt in `allowed` (upper case), or None at the end. Any name not
    /// in `allowed` (in any case), or one given twice, is an error.
    pub fn option(
        &mut self,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, CommandError> {
        let Some(raw) = self.next_arg() else {
            return Ok(None);
        };
        let Some(&name) = allowed
            .iter()
            .find(|name| raw.eq_ignore_ascii_case(name.as_bytes()))
        else {
            return Err(CommandError::UnknownOption {
                option: raw.to_vec(),
                command: self.command,
            });
        };
        if self.given.contains(&name) {
            return Err(CommandError::GivenTwice { option: name });
        }
        self.given.push(name);
        Ok(Some(name))
    }

    /// The value of option `name`, which must follow it.
    pub fn value(&mut self, name: &'static str) -> Result<&'a [u8], CommandError> {
        self.next_arg()
            .ok_or(CommandError::NeedsValue { option: name })
    }
}

/// A database number below `databases`.
pub fn parse_db(v: &[u8], databases: u32) -> Result<u32, CommandError> {
    parse_u64(v)
        .and_then(|d| u32::try_from(d).ok())
        .filter(|&d| d < databases)
        .ok_or(CommandError::BadDb { databases })
}

/// A non-negative decimal integer, nothing else (no sign, no spaces).
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_rejects_unknown_and_repeated_options() {
        let args: Vec<&[u8]> = vec![b"k", b"db", b"1", b"DB", b"2"];
        let mut c = Cursor::new(&args, "hotkey.route");
        assert_eq!(c.required(), Ok(&b"k"[..]));
        assert_eq!(c.option(&["DB"]), Ok(Some("DB")));
        assert_eq!(c.value("DB"), Ok(&b"1"[..]));
        assert_eq!(
            c.option(&["DB"]),
            Err(CommandError::GivenTwice { option: "DB" })
        );
        let args: Vec<&[u8]> = vec![b"LIMIT"];
        let mut c = Cursor::new(&args, "hotkey.route");
        assert_eq!(
            c.option(&["DB"]),
            Err(CommandError::UnknownOption {
                option: b"LIMIT".to_vec(),
                command: "hotkey.route"
            })
        );
        let mut empty = Cursor::new(&[], "hotkey.route");
        assert_eq!(
            empty.required(),
            Err(CommandError::WrongArity {
                command: "hotkey.route"
            })
        );
    }

    #[test]
    fn numbers_are_plain_decimals() {
        assert_eq!(parse_u64(b"42"), Some(42));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.0",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_db(b"15", 16), Ok(15));
        assert_eq!(
            parse_db(b"16", 16),
            Err(CommandError::BadDb { databases: 16 })
        );
    }
}
