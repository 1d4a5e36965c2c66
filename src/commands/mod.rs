//! One file per command: parse the arguments into a struct, then ask the state and reply.
//! What they share: the argument cursor, the error texts, the ACL read check. Each `run`
//! returns its reply as a value ([`Frame`]) or an error text; the boundary (`ffi`) writes it.

pub mod pin;
pub mod report;
pub mod route;
pub mod routes;
pub mod top;
pub mod unpin;

pub use hotkey_protocol::frame::Frame;
use redis_module::Context;

pub use crate::ffi::CommandResult;
use crate::ffi::KeyReadCheck;
use crate::ffi::{Arg, ArgKind};
use crate::state::{self, State};
use crate::text::quote;

/// The key argument of the keyed commands, for their docs.
const KEY_ARG: Arg = Arg::required("key", ArgKind::Key);

/// The `DB n` option of the keyed commands, for their docs.
const DB_ARG: Arg = Arg::option("DB", "db", ArgKind::Integer)
    .summary("the key's database (default: the selected one)");

/// The reply when the module's state is gone (between unload and the last command).
pub const NOT_LOADED: &str = "ERR hotkey is not loaded";

/// The reply to a key the caller's ACL does not let it read.
pub const NO_PERMISSION: &str = "NOPERM this user has no permissions to read the key";

/// Runs `f` on the state, or fails with [`NOT_LOADED`].
pub fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, String> {
    state::with(f).ok_or_else(|| NOT_LOADED.to_owned())
}

/// `databases` of the server (bounds `DB` options), or the not-loaded error.
pub fn databases() -> Result<u32, String> {
    with_state(|s| s.databases())
}

/// `NOPERM` unless the caller's ACL key patterns let it read `key`.
pub fn check_read(ctx: &Context, key: &[u8]) -> Result<(), String> {
    if KeyReadCheck::for_caller(ctx).is_some_and(|c| c.can_read(key)) {
        Ok(())
    } else {
        Err(NO_PERMISSION.to_owned())
    }
}

/// Whether the caller may read each key (no user found: none).
pub fn visible_to(ctx: &Context) -> impl Fn(&[u8]) -> bool {
    let check = KeyReadCheck::for_caller(ctx);
    move |key| check.as_ref().is_some_and(|c| c.can_read(key))
}

/// The server's own wording for a wrong argument count.
pub fn wrong_arity(command: &str) -> String {
    format!("ERR wrong number of arguments for '{command}' command")
}

/// Walks a command's arguments: `next_arg` for the next one, and the options that follow the
/// fixed arguments, each at most once.
pub struct Cursor<'a> {
    args: std::slice::Iter<'a, &'a [u8]>,
    command: &'static str,
    given: Vec<String>,
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
    pub fn required(&mut self) -> Result<&'a [u8], String> {
        self.next_arg().ok_or_else(|| wrong_arity(self.command))
    }

    /// The next option name, upper-cased, or None at the end. `allowed` lists the names;
    /// any other, or one given twice, is an error.
    pub fn option(&mut self, allowed: &[&str]) -> Result<Option<String>, String> {
        let Some(raw) = self.next_arg() else {
            return Ok(None);
        };
        let name = String::from_utf8_lossy(raw).to_ascii_uppercase();
        if !allowed.contains(&name.as_str()) {
            return Err(format!(
                "ERR unknown option '{}' for {}",
                quote(raw),
                self.command.to_ascii_uppercase()
            ));
        }
        if self.given.contains(&name) {
            return Err(format!("ERR {name} given twice"));
        }
        self.given.push(name.clone());
        Ok(Some(name))
    }

    /// The value of option `name`, which must follow it.
    pub fn value(&mut self, name: &str) -> Result<&'a [u8], String> {
        self.next_arg()
            .ok_or_else(|| format!("ERR {name} needs a value"))
    }
}

/// The error for a `DB` outside `0..databases`.
pub fn bad_db(databases: u32) -> String {
    format!(
        "ERR DB must be an integer from 0 to {}",
        databases.saturating_sub(1)
    )
}

/// A database number below `databases`.
pub fn parse_db(v: &[u8], databases: u32) -> Result<u32, String> {
    parse_u64(v)
        .and_then(|d| u32::try_from(d).ok())
        .filter(|&d| d < databases)
        .ok_or_else(|| bad_db(databases))
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
        assert_eq!(c.option(&["DB"]), Ok(Some("DB".into())));
        assert_eq!(c.value("DB"), Ok(&b"1"[..]));
        assert_eq!(c.option(&["DB"]), Err("ERR DB given twice".into()));
        let args: Vec<&[u8]> = vec![b"LIMIT"];
        let mut c = Cursor::new(&args, "hotkey.route");
        assert_eq!(
            c.option(&["DB"]),
            Err("ERR unknown option 'LIMIT' for HOTKEY.ROUTE".into())
        );
        let args: Vec<&[u8]> = vec!["\u{100}\0\r\n".as_bytes()];
        let mut c = Cursor::new(&args, "hotkey.top");
        assert_eq!(
            c.option(&["DB"]),
            Err("ERR unknown option '\\xc4\\x80\\x00\\x0d\\x0a' for HOTKEY.TOP".into())
        );
        let mut empty = Cursor::new(&[], "hotkey.route");
        assert_eq!(
            empty.required(),
            Err("ERR wrong number of arguments for 'hotkey.route' command".into())
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
        assert_eq!(parse_db(b"16", 16), Err(bad_db(16)));
    }
}
