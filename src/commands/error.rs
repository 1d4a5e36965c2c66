//! Every error a `HOTKEY.*` command can reply with, one variant each, so that the words live
//! here once and tests match on the variant rather than repeat them. The boundary's own errors
//! (no such command, a panic) are in `ffi`.

use std::fmt;

use crate::ffi;
use crate::text::quote;

/// A command's error reply. `Display` writes the text the caller gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The module's state is gone (between unload and the last command).
    NotLoaded,
    /// The caller's ACL key patterns do not let it read a key of the command.
    NoPermission,
    /// Too few arguments, or an odd number of `REPORT` arguments, or `ROUTES` with any.
    WrongArity { command: &'static str },
    /// An argument where an option was expected that is none of the command's options.
    UnknownOption {
        option: Vec<u8>,
        command: &'static str,
    },
    /// An option given twice.
    GivenTwice { option: &'static str },
    /// An option that is the last argument.
    NeedsValue { option: &'static str },
    /// A `DB` outside `0..databases`.
    BadDb { databases: u32 },
    /// `ROUTE` with both `READ` and `WRITE`.
    BothOps,
    /// A `TOP … COUNT` that is not an integer ≥ 1.
    BadTopCount,
    /// A `TOP … BY` other than `total`, `reads`, `writes`.
    BadOrder,
    /// A `TOP … WINDOW` other than 1, 10, 60.
    BadWindow,
    /// A `PIN … TTL` outside 1..=[`crate::commands::pin::MAX_TTL_SECS`].
    BadTtl,
    /// A `REPORT` count outside 1..=[`crate::commands::report::MAX_COUNT`].
    BadReportCount,
    /// A `REPORT` key longer than the tracker tracks.
    KeyTooLong { max_key_bytes: usize },
    /// `PIN` when every place of the hot set is taken by pins.
    PinsFull { max_hot: usize },
    /// `ROUTE`/`ROUTES` from a caller without a TCP address, on a server bound to every
    /// interface: the module cannot name the master's address.
    NoAddress,
}

impl CommandError {
    /// The fixed words: the whole reply for a variant without fields; for one with fields,
    /// the reply with each field as `<…>`, as the book's commands page lists it.
    pub const fn as_str(&self) -> &'static str {
        match self {
            CommandError::NotLoaded => ffi::NOT_LOADED,
            CommandError::NoPermission => "NOPERM this user has no permissions to read the key",
            CommandError::WrongArity { .. } => {
                "ERR wrong number of arguments for '<command>' command"
            }
            CommandError::UnknownOption { .. } => "ERR unknown option '<arg>' for <COMMAND>",
            CommandError::GivenTwice { .. } => "ERR <OPTION> given twice",
            CommandError::NeedsValue { .. } => "ERR <OPTION> needs a value",
            CommandError::BadDb { .. } => "ERR DB must be an integer from 0 to <databases-1>",
            CommandError::BothOps => "ERR READ and WRITE are exclusive",
            CommandError::BadTopCount => "ERR COUNT must be a positive integer",
            CommandError::BadOrder => "ERR BY must be one of total, reads, writes",
            CommandError::BadWindow => "ERR WINDOW must be one of 1, 10, 60",
            CommandError::BadTtl => "ERR TTL must be an integer from 1 to 315360000 (seconds)",
            CommandError::BadReportCount => "ERR count must be an integer from 1 to 1000000000000",
            CommandError::KeyTooLong { .. } => "ERR key longer than hotkey.max-key-bytes (<n>)",
            CommandError::PinsFull { .. } => {
                "ERR the hot set is full of pinned keys (hotkey.max-hot is <n>)"
            }
            CommandError::NoAddress => {
                "ERR this node cannot tell its address to this caller (it reached the node \
                 without TCP, and the server is bound to every interface): call over TCP"
            }
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::WrongArity { command } => {
                write!(f, "ERR wrong number of arguments for '{command}' command")
            }
            CommandError::UnknownOption { option, command } => write!(
                f,
                "ERR unknown option '{}' for {}",
                quote(option),
                command.to_ascii_uppercase()
            ),
            CommandError::GivenTwice { option } => write!(f, "ERR {option} given twice"),
            CommandError::NeedsValue { option } => write!(f, "ERR {option} needs a value"),
            CommandError::BadDb { databases } => write!(
                f,
                "ERR DB must be an integer from 0 to {}",
                databases.saturating_sub(1)
            ),
            CommandError::KeyTooLong { max_key_bytes } => {
                write!(
                    f,
                    "ERR key longer than hotkey.max-key-bytes ({max_key_bytes})"
                )
            }
            CommandError::PinsFull { max_hot } => write!(
                f,
                "ERR the hot set is full of pinned keys (hotkey.max-hot is {max_hot})"
            ),
            fixed => f.write_str(fixed.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one place the words with their fields filled in are spelt out: the book and
    /// users' scripts quote them.
    #[test]
    fn the_texts_are_the_ones_users_see() {
        let cases = [
            (
                CommandError::WrongArity {
                    command: "hotkey.pin",
                },
                "ERR wrong number of arguments for 'hotkey.pin' command",
            ),
            (
                CommandError::UnknownOption {
                    option: b"limit".to_vec(),
                    command: "hotkey.route",
                },
                "ERR unknown option 'limit' for HOTKEY.ROUTE",
            ),
            (
                CommandError::UnknownOption {
                    option: "\u{100}\0\r\n".into(),
                    command: "hotkey.top",
                },
                "ERR unknown option '\\xc4\\x80\\x00\\x0d\\x0a' for HOTKEY.TOP",
            ),
            (
                CommandError::GivenTwice { option: "DB" },
                "ERR DB given twice",
            ),
            (
                CommandError::NeedsValue { option: "TTL" },
                "ERR TTL needs a value",
            ),
            (
                CommandError::BadDb { databases: 16 },
                "ERR DB must be an integer from 0 to 15",
            ),
            (
                CommandError::KeyTooLong { max_key_bytes: 4 },
                "ERR key longer than hotkey.max-key-bytes (4)",
            ),
            (
                CommandError::PinsFull { max_hot: 2 },
                "ERR the hot set is full of pinned keys (hotkey.max-hot is 2)",
            ),
            (CommandError::NotLoaded, "ERR hotkey is not loaded"),
            (
                CommandError::BadTopCount,
                "ERR COUNT must be a positive integer",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text, "{error:?}");
        }
    }

    #[test]
    fn a_quoted_argument_is_cut_and_stays_printable_ascii() {
        let error = CommandError::UnknownOption {
            option: vec![b'\n'; 1000],
            command: "hotkey.top",
        };
        let text = error.to_string();
        assert!(crate::text::is_legal(text.as_bytes()), "{text}");
        assert!(text.len() < 250, "{text}");
    }

    #[test]
    fn the_book_lists_every_error() {
        let page = include_str!("../../docs/src/commands.md");
        let every = [
            CommandError::NotLoaded,
            CommandError::NoPermission,
            CommandError::WrongArity { command: "" },
            CommandError::UnknownOption {
                option: Vec::new(),
                command: "",
            },
            CommandError::GivenTwice { option: "" },
            CommandError::NeedsValue { option: "" },
            CommandError::BadDb { databases: 0 },
            CommandError::BothOps,
            CommandError::BadTopCount,
            CommandError::BadOrder,
            CommandError::BadWindow,
            CommandError::BadTtl,
            CommandError::BadReportCount,
            CommandError::KeyTooLong { max_key_bytes: 0 },
            CommandError::PinsFull { max_hot: 0 },
            CommandError::NoAddress,
        ];
        for error in every {
            // No wildcard: a new variant stops this compiling, which sends whoever adds it here
            // to put it in the list above.
            match error {
                CommandError::NotLoaded
                | CommandError::NoPermission
                | CommandError::WrongArity { .. }
                | CommandError::UnknownOption { .. }
                | CommandError::GivenTwice { .. }
                | CommandError::NeedsValue { .. }
                | CommandError::BadDb { .. }
                | CommandError::BothOps
                | CommandError::BadTopCount
                | CommandError::BadOrder
                | CommandError::BadWindow
                | CommandError::BadTtl
                | CommandError::BadReportCount
                | CommandError::KeyTooLong { .. }
                | CommandError::PinsFull { .. }
                | CommandError::NoAddress => {}
            }
            assert!(
                page.contains(&format!("`{}`", error.as_str())),
                "the commands page's error tables lack `{}`",
                error.as_str()
            );
        }
    }
}
