//! What the crate hands the boundary: its commands, configs and handlers, as plain data and
//! functions of safe types. The boundary calls each one under its guard.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use hotkey_protocol::frame::Frame;
use redis_module::Context;

use super::filter::FilterCommand;

/// The whole module, as the server sees it.
pub struct Module {
    /// The module's name (`MODULE LIST`, the INFO section, the config prefix).
    pub name: &'static std::ffi::CStr,
    pub version: i32,
    pub commands: &'static [ModuleCommand],
    pub configs: &'static [ConfigSpec],
    /// ACL category the module adds where the server lets it (Redis ≥ 7.4, Valkey).
    pub acl_category: &'static str,
    /// Checks the `loadmodule` arguments before anything is registered; the error names the
    /// bad argument.
    pub check_args: fn(&[&[u8]]) -> Result<(), String>,
    /// After commands and configs are registered and configs loaded: builds the state.
    pub load: fn(&Context) -> Result<(), String>,
    /// Drops the state (also after a failed load).
    pub unload: fn(),
    /// After a config changed (CONFIG SET, the config file, load arguments).
    pub config_changed: fn(),
    /// The module's INFO section.
    pub info: fn(&mut InfoSink),
    /// About `hz` times a second, from the server's cron.
    pub cron: fn(&Context),
    /// The node became a replica (true) or a master (false).
    pub role_changed: fn(&Context, bool),
    /// Another module loaded or unloaded (its commands enter or leave the table).
    pub modules_changed: fn(&Context),
    /// A replica came online or went offline.
    pub replicas_changed: fn(&Context),
    /// A client connected (true) or disconnected, by id; only where the filter can tell
    /// clients apart ([`crate::ffi::per_client_db_available`]).
    pub client_changed: fn(u64, bool),
    /// The command filter: every command, before it runs. Must not allocate, lock or call
    /// into the server on its common path.
    pub filter: fn(&FilterCommand),
}

/// A command's reply: a value, or an error.
pub type CommandResult = Result<Frame, ErrorReply>;

/// An error reply (`ERR …`, `NOPERM …`): the text of any `Display`, which the boundary makes
/// printable ASCII when it writes it. The boundary knows no command's errors, only their words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply(String);

impl ErrorReply {
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl<E: std::fmt::Display> From<E> for ErrorReply {
    fn from(error: E) -> ErrorReply {
        ErrorReply(error.to_string())
    }
}

/// One command.
pub struct ModuleCommand {
    /// Lower-case, e.g. `hotkey.top`.
    pub name: &'static str,
    /// Arguments after the name, as bytes.
    pub run: fn(&Context, &[&[u8]]) -> CommandResult,
    /// The server's command flags, e.g. `readonly fast`.
    pub flags: &'static str,
    /// Legacy key positions (first, last, step); 0,0,0 for none.
    pub keys: (i32, i32, i32),
    /// ACL categories where the server lets modules set them (Redis ≥ 7.2, Valkey).
    pub acl_categories: &'static str,
    /// What `COMMAND DOCS` says of it.
    pub docs: &'static CommandDocs,
}

/// A command's documentation and arguments, as `COMMAND DOCS` returns them and redis-cli shows
/// them as hints.
pub struct CommandDocs {
    pub summary: &'static str,
    pub complexity: &'static str,
    /// The module version that added the command.
    pub since: &'static str,
    /// The server's arity: the argument count with the name, negative for "at least".
    pub arity: i32,
    /// Whether the first argument is a key (read-only, value not accessed): then the server
    /// checks ACL key patterns, answers `COMMAND GETKEYS`, and redirects in a cluster.
    pub keyed: bool,
    pub args: &'static [Arg],
}

/// One argument of a command.
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgKind,
    /// The keyword before the value (`COUNT` in `COUNT n`), if any.
    pub token: Option<&'static str>,
    pub summary: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
}

/// An argument's type.
pub enum ArgKind {
    Key,
    String,
    Integer,
    /// The token alone (`READ`).
    Token,
    /// One of the sub-arguments.
    OneOf(&'static [Arg]),
    /// The sub-arguments in sequence.
    Block(&'static [Arg]),
}

impl Arg {
    /// A required argument.
    pub const fn required(name: &'static str, kind: ArgKind) -> Arg {
        Arg {
            name,
            kind,
            token: None,
            summary: None,
            optional: false,
            multiple: false,
        }
    }

    /// An optional `TOKEN value` argument.
    pub const fn option(token: &'static str, name: &'static str, kind: ArgKind) -> Arg {
        Arg {
            name,
            kind,
            token: Some(token),
            summary: None,
            optional: true,
            multiple: false,
        }
    }

    /// A pure token (`READ`), for a [`ArgKind::OneOf`].
    pub const fn token(token: &'static str) -> Arg {
        Arg {
            name: token,
            kind: ArgKind::Token,
            token: Some(token),
            summary: None,
            optional: false,
            multiple: false,
        }
    }

    pub const fn summary(mut self, summary: &'static str) -> Arg {
        self.summary = Some(summary);
        self
    }

    pub const fn optional(mut self) -> Arg {
        self.optional = true;
        self
    }

    pub const fn multiple(mut self) -> Arg {
        self.multiple = true;
        self
    }
}

/// One config, `<module>.<name>`: its name, kind, default and range in one place.
pub struct ConfigSpec {
    /// Kebab-case, without the module prefix.
    pub name: &'static str,
    pub value: ConfigValue,
}

/// A config's kind, and where its value lives.
#[derive(Clone, Copy)]
pub enum ConfigValue {
    Integer(&'static Integer),
    Bool(&'static Flag),
    Text(&'static dyn Text),
}

/// An integer config the server range-checks.
pub struct Integer {
    value: AtomicI64,
    pub default: i64,
    pub min: i64,
    pub max: i64,
}

impl Integer {
    pub const fn new(default: i64, min: i64, max: i64) -> Integer {
        Integer {
            value: AtomicI64::new(default),
            default,
            min,
            max,
        }
    }

    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }

    /// The value as a count (negative values, which the ranges exclude, read as 0).
    pub fn get_u64(&self) -> u64 {
        u64::try_from(self.get()).unwrap_or(0)
    }

    pub(super) fn set(&self, v: i64) {
        self.value.store(v, Ordering::Relaxed);
    }
}

/// A `yes` / `no` config.
pub struct Flag {
    value: AtomicBool,
    pub default: bool,
}

impl Flag {
    pub const fn new(default: bool) -> Flag {
        Flag {
            value: AtomicBool::new(default),
            default,
        }
    }

    pub fn get(&self) -> bool {
        self.value.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, v: bool) {
        self.value.store(v, Ordering::Relaxed);
    }
}

/// A config whose text the module checks itself.
pub trait Text: Sync {
    fn default_text(&self) -> &'static str;
    /// The value as `CONFIG GET` shows it.
    fn get(&self) -> String;
    /// Whether `value` would be accepted; the error names the config.
    fn check(&self, value: &[u8]) -> Result<(), String>;
    /// Takes `value`, or refuses it with an error that names the config.
    fn set(&self, value: &[u8]) -> Result<(), String>;
}

/// The fields of the module's INFO section, written by the boundary as printable ASCII.
#[derive(Debug, Default)]
pub struct InfoSink {
    pub(super) fields: Vec<(&'static str, String)>,
}

impl InfoSink {
    /// Adds `name:value`.
    pub fn field(&mut self, name: &'static str, value: impl ToString) {
        self.fields.push((name, value.to_string()));
    }
}

/// Exports `$module` (a `static` [`Module`]) as the server's entry points
/// `RedisModule_OnLoad` and `RedisModule_OnUnload`.
#[macro_export]
macro_rules! module {
    ($module:path) => {
        /// Called by the server to load the module.
        ///
        /// # Safety
        /// Called by the server only, with its load context and arguments.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn RedisModule_OnLoad(
            ctx: *mut ::redis_module::raw::RedisModuleCtx,
            argv: *mut *mut ::redis_module::raw::RedisModuleString,
            argc: ::std::ffi::c_int,
        ) -> ::std::ffi::c_int {
            // SAFETY: forwarded as the server passed them.
            unsafe { $crate::ffi::on_load(&$module, ctx, argv, argc) }
        }

        /// Called by the server to unload the module.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn RedisModule_OnUnload(
            ctx: *mut ::redis_module::raw::RedisModuleCtx,
        ) -> ::std::ffi::c_int {
            $crate::ffi::on_unload(ctx)
        }
    };
}
