//! A command's documentation as the server keeps it (`RedisModule_SetCommandInfo`, Redis ≥
//! 7.0): summary, complexity, arity, arguments and key specs, so that `COMMAND DOCS`,
//! `COMMAND INFO`, `COMMAND GETKEYS` and redis-cli's hints know the module's commands.

use std::ffi::{CString, c_int};
use std::ptr;

use redis_module::raw;

use super::module::{Arg, ArgKind, CommandDocs};

/// The C strings and arrays of one `SetCommandInfo` call. The server copies what it keeps,
/// so they live only for the call.
#[derive(Default)]
struct Arena {
    strings: Vec<CString>,
    arrays: Vec<Vec<raw::RedisModuleCommandArg>>,
}

impl Arena {
    fn text(&mut self, s: &str) -> *const std::ffi::c_char {
        // The docs are the module's own constants: printable ASCII, no NUL.
        let c = CString::new(crate::text::legal(s)).unwrap_or_default();
        let p = c.as_ptr();
        self.strings.push(c);
        p
    }

    fn optional_text(&mut self, s: Option<&str>) -> *const std::ffi::c_char {
        s.map_or(ptr::null(), |s| self.text(s))
    }

    /// A zero-terminated array of `args`; its pointer stays valid while the arena lives (a
    /// `Vec`'s buffer does not move when the `Vec` itself is moved into `arrays`).
    fn args(&mut self, args: &[Arg]) -> *mut raw::RedisModuleCommandArg {
        if args.is_empty() {
            return ptr::null_mut();
        }
        let mut out: Vec<raw::RedisModuleCommandArg> = args.iter().map(|a| self.arg(a)).collect();
        // SAFETY: an all-zero RedisModuleCommandArg (NULL pointers, zero numbers) is the
        // terminator the server looks for.
        out.push(unsafe { std::mem::zeroed() });
        let p = out.as_mut_ptr();
        self.arrays.push(out);
        p
    }

    fn arg(&mut self, arg: &Arg) -> raw::RedisModuleCommandArg {
        let (type_, subargs) = match arg.kind {
            ArgKind::Key => (
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
                &[][..],
            ),
            ArgKind::String => (
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
                &[][..],
            ),
            ArgKind::Integer => (
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
                &[][..],
            ),
            ArgKind::Token => (
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
                &[][..],
            ),
            ArgKind::OneOf(subargs) => (
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
                subargs,
            ),
            ArgKind::Block(subargs) => (
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
                subargs,
            ),
        };
        let mut flags = 0;
        if arg.optional {
            flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL;
        }
        if arg.multiple {
            flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE;
        }
        raw::RedisModuleCommandArg {
            name: self.text(arg.name),
            type_,
            // The one key spec, for the key argument; -1: not a key.
            key_spec_index: if matches!(arg.kind, ArgKind::Key) {
                0
            } else {
                -1
            },
            token: self.optional_text(arg.token),
            summary: self.optional_text(arg.summary),
            since: ptr::null(),
            flags: flags as c_int,
            deprecated_since: ptr::null(),
            subargs: self.args(subargs),
            display_text: ptr::null(),
        }
    }
}

/// Registers `docs` for `command`. An error says what the server refused; servers without the
/// API (none since 7.0) are left without docs.
pub(super) fn set_command_info(
    command: *mut raw::RedisModuleCommand,
    docs: &CommandDocs,
) -> Result<(), String> {
    // SAFETY: reading a function pointer the server filled in at init.
    let Some(set_info) = (unsafe { raw::RedisModule_SetCommandInfo }) else {
        return Ok(());
    };
    let mut arena = Arena::default();
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: size_of::<raw::RedisModuleCommandArg>(),
    };
    // One key, the first argument, read-only with no access to its value: the command reads
    // the module's rates about the key, never the key itself.
    let mut key_specs = [
        raw::RedisModuleCommandKeySpec {
            notes: ptr::null(),
            flags: u64::from(raw::REDISMODULE_CMD_KEY_RO),
            begin_search_type: raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
            bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
                index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos: 1 },
            },
            find_keys_type: raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
            fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
                range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        },
        // SAFETY: an all-zero key spec is the terminator the server looks for.
        unsafe { std::mem::zeroed() },
    ];
    let info = raw::RedisModuleCommandInfo {
        version: &version,
        summary: arena.text(docs.summary),
        complexity: arena.text(docs.complexity),
        since: arena.text(docs.since),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: docs.arity,
        key_specs: if docs.keyed {
            key_specs.as_mut_ptr()
        } else {
            ptr::null_mut()
        },
        args: arena.args(docs.args),
    };
    // SAFETY: `command` is the live command just created at load; `info` and everything it
    // points to (the arena, `version`, `key_specs`) live until after the call, and the server
    // copies what it keeps.
    if unsafe { set_info(command, &info) } == raw::REDISMODULE_OK as c_int {
        Ok(())
    } else {
        Err("the server refused its command info (the server log says why)".into())
    }
}
