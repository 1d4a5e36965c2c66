//! Load and unload, and the command trampoline: the module's entry points for the server.
//! Config callbacks are in `configs`, INFO, server events and the filter in `events`. Each
//! runs its handler under [`guard`], and each text it hands the server is printable ASCII.

use std::ffi::{CString, c_char, c_int};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use hotkey_protocol::frame::Frame;
use redis_module::{Context, raw};

use super::calls::{LogLevel, bytes_of, close_detached, log, open_detached};
use super::guard::{self, guard};
use super::module::{CommandResult, Module};
use crate::text::legal;

pub(super) const OK: c_int = raw::REDISMODULE_OK as c_int;
pub(super) const ERR: c_int = raw::REDISMODULE_ERR as c_int;

/// The reply to a command whose handler panicked.
pub const INTERNAL_ERROR: &str = "ERR hotkey: internal error (the server log says more)";

/// The reply when the module is not loaded (between unload and the last command).
pub const NOT_LOADED: &str = "ERR hotkey is not loaded";

/// The reply to a call without a command name.
const NO_COMMAND: &str = "ERR no command";

/// The reply to a command the server routed here that the module does not have.
const UNKNOWN_COMMAND: &str = "ERR unknown hotkey command";

/// The loaded module; null before load and after unload.
static MODULE: AtomicPtr<Module> = AtomicPtr::new(ptr::null_mut());

#[inline]
pub(super) fn module() -> Option<&'static Module> {
    // SAFETY: the pointer is null or was made from a `&'static Module` at load.
    unsafe { MODULE.load(Ordering::Relaxed).as_ref() }
}

/// The arguments of a call as bytes.
///
/// # Safety
/// `argv` holds `argc` live strings that outlive the returned slices.
unsafe fn args_of<'a>(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> Vec<&'a [u8]> {
    let n = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract, argv[0..argc] are live strings.
    (0..n).map(|i| unsafe { bytes_of(*argv.add(i)) }).collect()
}

/// `RedisModule_OnLoad`, for [`crate::module!`].
///
/// # Safety
/// Called by the server only, with its load context and `argc` live argument strings.
pub unsafe fn on_load(
    module: &'static Module,
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    // SAFETY: the server's load context; Init fills in the API pointers and must come first.
    let init = unsafe {
        raw::Export_RedisModule_Init(
            ctx,
            module.name.as_ptr(),
            module.version,
            raw::REDISMODULE_APIVER_1 as c_int,
        )
    };
    if init == ERR {
        return ERR;
    }
    guard::reset();
    open_detached(ctx);
    // SAFETY: the server's arguments, live during OnLoad.
    let args = unsafe { args_of(argv, argc) };
    let loaded = guard("load", Err("a panic".to_owned()), || {
        load(module, ctx, &args)
    });
    match loaded {
        Ok(()) => OK,
        Err(e) => {
            log(LogLevel::Warning, &format!("hotkey: not loaded: {e}"));
            guard("unload", (), module.unload);
            release();
            ERR
        }
    }
}

fn load(
    module: &'static Module,
    ctx: *mut raw::RedisModuleCtx,
    args: &[&[u8]],
) -> Result<(), String> {
    (module.check_args)(args)?;
    MODULE.store(ptr::from_ref(module).cast_mut(), Ordering::Relaxed);
    register_commands(module, ctx)?;
    super::configs::register(module, ctx, args)?;
    (module.load)(&Context::new(ctx))?;
    super::events::subscribe(ctx)
}

/// Frees what load made (after unload or a failed load).
fn release() {
    super::configs::release();
    close_detached();
    MODULE.store(ptr::null_mut(), Ordering::Relaxed);
}

/// `RedisModule_OnUnload`, for [`crate::module!`].
pub fn on_unload(_ctx: *mut raw::RedisModuleCtx) -> c_int {
    if let Some(module) = module() {
        guard("unload", (), module.unload);
    }
    release();
    OK
}

pub(super) fn cstring(text: &str) -> CString {
    // Legal text has no NUL.
    CString::new(legal(text)).unwrap_or_default()
}

fn register_commands(module: &Module, ctx: *mut raw::RedisModuleCtx) -> Result<(), String> {
    let category = cstring(module.acl_category);
    // SAFETY: the live load context; every C string outlives the call that reads it (the
    // server copies names and flags); GetCommand returns the command just created or NULL.
    unsafe {
        let create = raw::RedisModule_CreateCommand.ok_or("no command API")?;
        // A server keeps a module's category after unload and refuses to add it twice: then
        // it is there already, which is all that matters.
        if let Some(add) = raw::RedisModule_AddACLCategory {
            add(ctx, category.as_ptr());
        }
        for spec in module.commands {
            let name = cstring(spec.name);
            let flags = cstring(spec.flags);
            let (first, last, step) = spec.keys;
            if create(
                ctx,
                name.as_ptr(),
                Some(run_command),
                flags.as_ptr(),
                first,
                last,
                step,
            ) == ERR
            {
                return Err(format!("could not register {}", spec.name));
            }
            let Some(get) = raw::RedisModule_GetCommand else {
                continue;
            };
            let command = get(ctx, name.as_ptr());
            if command.is_null() {
                return Err(format!("command {} is not registered", spec.name));
            }
            super::docs::set_command_info(command, spec.docs)
                .map_err(|e| format!("{}: {e}", spec.name))?;
            let Some(set) = raw::RedisModule_SetCommandACLCategories else {
                continue;
            };
            let with_own = format!("{} {}", spec.acl_categories, module.acl_category);
            if [with_own.as_str(), spec.acl_categories]
                .iter()
                .all(|c| set(command, cstring(c).as_ptr()) == ERR)
            {
                return Err(format!(
                    "could not put {} in ACL categories '{}'",
                    spec.name, spec.acl_categories
                ));
            }
        }
    }
    Ok(())
}

extern "C" fn run_command(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    // SAFETY: the server passes `argc` live strings for the duration of the call.
    let args = unsafe { args_of(argv, argc) };
    let result = guard("a command", Err(INTERNAL_ERROR.into()), || {
        dispatch(ctx, &args)
    });
    let written = guard("a reply", false, || {
        reply(ctx, result);
        true
    });
    if !written {
        reply(ctx, Err(INTERNAL_ERROR.into()));
    }
    OK
}

fn dispatch(ctx: *mut raw::RedisModuleCtx, args: &[&[u8]]) -> CommandResult {
    let module = module().ok_or(NOT_LOADED)?;
    let (name, rest) = args.split_first().ok_or(NO_COMMAND)?;
    let spec = module
        .commands
        .iter()
        .find(|c| name.eq_ignore_ascii_case(c.name.as_bytes()))
        .ok_or(UNKNOWN_COMMAND)?;
    (spec.run)(&Context::new(ctx), rest)
}

fn reply(ctx: *mut raw::RedisModuleCtx, result: CommandResult) {
    match result {
        Ok(frame) => write(ctx, &frame),
        Err(error) => {
            let text = cstring(error.text());
            // SAFETY: the live command context; a valid C string.
            unsafe {
                if let Some(error) = raw::RedisModule_ReplyWithError {
                    error(ctx, text.as_ptr());
                }
            }
        }
    }
}

fn write(ctx: *mut raw::RedisModuleCtx, frame: &Frame) {
    let len = |n: usize| std::ffi::c_long::try_from(n).unwrap_or(std::ffi::c_long::MAX);
    match frame {
        Frame::Int(i) => {
            raw::reply_with_long_long(ctx, *i);
        }
        Frame::Double(d) => {
            raw::reply_with_double(ctx, *d);
        }
        Frame::Bulk(b) => {
            raw::reply_with_string_buffer(ctx, b.as_ptr().cast::<c_char>(), b.len());
        }
        Frame::Status(s) => {
            let s = cstring(s);
            raw::reply_with_simple_string(ctx, s.as_ptr());
        }
        Frame::Null => {
            raw::reply_with_null(ctx);
        }
        Frame::Array(items) => {
            raw::reply_with_array(ctx, len(items.len()));
            items.iter().for_each(|f| write(ctx, f));
        }
        Frame::Map(fields) => {
            raw::reply_with_map(ctx, len(fields.len()));
            for (name, value) in fields {
                raw::reply_with_string_buffer(ctx, name.as_ptr().cast::<c_char>(), name.len());
                write(ctx, value);
            }
        }
    }
}
