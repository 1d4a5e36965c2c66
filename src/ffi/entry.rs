//! Every function the server calls: load and unload, the command trampoline, the config, INFO
//! and server-event callbacks, and the command filter. Each runs its handler under
//! [`guard`], and each text it hands the server is printable ASCII.

use std::ffi::{CString, c_char, c_int, c_longlong, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use hotkey_protocol::frame::Frame;
use redis_module::{Context, raw};

use super::calls::{LogLevel, bytes_of, close_detached, log, open_detached};
use super::cell::MainThread;
use super::filter::FilterCommand;
use super::guard::{self, guard, internal_errors};
use super::module::{CommandResult, ConfigValue, InfoSink, Module};
use crate::text::legal;

const OK: c_int = raw::REDISMODULE_OK as c_int;
const ERR: c_int = raw::REDISMODULE_ERR as c_int;

/// The reply to a command whose handler panicked.
pub const INTERNAL_ERROR: &str = "ERR hotkey: internal error (the server log says more)";

/// The loaded module; null before load and after unload.
static MODULE: AtomicPtr<Module> = AtomicPtr::new(ptr::null_mut());

/// The last value handed out per text config (the server copies it; the module frees it on
/// the next read of the same config and at unload).
static CONFIG_STRINGS: MainThread<Vec<*mut raw::RedisModuleString>> = MainThread::new(Vec::new());

#[inline]
fn module() -> Option<&'static Module> {
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
    register_configs(module, ctx, args)?;
    // SAFETY: the live load context; the callback is a function of this module.
    unsafe {
        if let Some(register) = raw::RedisModule_RegisterInfoFunc
            && register(ctx, Some(info_callback)) == ERR
        {
            return Err("could not register the INFO section".into());
        }
    }
    (module.load)(&Context::new(ctx))?;
    subscribe(ctx)
}

/// Frees what load made (after unload or a failed load).
fn release() {
    CONFIG_STRINGS.with(|strings| {
        for s in strings.drain(..) {
            free_string(s);
        }
        strings.shrink_to_fit();
    });
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

fn cstring(text: &str) -> CString {
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

/// The value a `loadmodule` argument gives config `name`, if any (the last one wins).
fn arg_value<'a>(args: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    args.chunks_exact(2)
        .filter(|pair| pair[0] == name.as_bytes())
        .map(|pair| pair[1])
        .next_back()
}

fn register_configs(
    module: &Module,
    ctx: *mut raw::RedisModuleCtx,
    args: &[&[u8]],
) -> Result<(), String> {
    CONFIG_STRINGS.with(|s| *s = vec![ptr::null_mut(); module.configs.len()]);
    let flags = raw::REDISMODULE_CONFIG_DEFAULT;
    for (index, spec) in module.configs.iter().enumerate() {
        let name = cstring(spec.name);
        // The config's index in `module.configs`, handed back to each callback.
        let privdata = index as *mut c_void;
        let arg = arg_value(args, spec.name);
        let parse_err = || format!("bad value for module argument '{}'", spec.name);
        // SAFETY: the live load context; the C strings outlive the calls (the server copies
        // them); the callbacks are functions of this module.
        let status = unsafe {
            match spec.value {
                ConfigValue::Integer(config) => {
                    let default = match arg {
                        Some(v) => std::str::from_utf8(v)
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(parse_err)?,
                        None => config.default,
                    };
                    let register = raw::RedisModule_RegisterNumericConfig.ok_or("no config API")?;
                    register(
                        ctx,
                        name.as_ptr(),
                        default,
                        flags,
                        config.min,
                        config.max,
                        Some(get_integer),
                        Some(set_integer),
                        Some(apply),
                        privdata,
                    )
                }
                ConfigValue::Bool(config) => {
                    let default = match arg {
                        Some(b"yes") => true,
                        Some(b"no") => false,
                        Some(_) => return Err(parse_err()),
                        None => config.default,
                    };
                    let register = raw::RedisModule_RegisterBoolConfig.ok_or("no config API")?;
                    register(
                        ctx,
                        name.as_ptr(),
                        c_int::from(default),
                        flags,
                        Some(get_bool),
                        Some(set_bool),
                        Some(apply),
                        privdata,
                    )
                }
                ConfigValue::Text(config) => {
                    let default = arg.unwrap_or(config.default_text().as_bytes());
                    config.check(default)?;
                    let default = CString::new(default).map_err(|_| parse_err())?;
                    let register = raw::RedisModule_RegisterStringConfig.ok_or("no config API")?;
                    register(
                        ctx,
                        name.as_ptr(),
                        default.as_ptr(),
                        flags,
                        Some(get_text),
                        Some(set_text),
                        Some(apply),
                        privdata,
                    )
                }
            }
        };
        if status == ERR {
            return Err(format!("could not register config '{}'", spec.name));
        }
    }
    // SAFETY: the live load context, after every config is registered.
    unsafe {
        if let Some(load) = raw::RedisModule_LoadConfigs
            && load(ctx) == ERR
        {
            return Err("the configs did not load (the server log says which value)".into());
        }
    }
    Ok(())
}

fn subscribe(ctx: *mut raw::RedisModuleCtx) -> Result<(), String> {
    type Callback =
        unsafe extern "C" fn(*mut raw::RedisModuleCtx, raw::RedisModuleEvent, u64, *mut c_void);
    let mut events: Vec<(u64, Callback)> = vec![
        (raw::REDISMODULE_EVENT_CRON_LOOP, on_cron),
        (
            raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
            on_role_changed,
        ),
        (raw::REDISMODULE_EVENT_MODULE_CHANGE, on_module_changed),
        (raw::REDISMODULE_EVENT_REPLICA_CHANGE, on_replica_changed),
    ];
    if super::calls::per_client_db_available() {
        events.push((raw::REDISMODULE_EVENT_CLIENT_CHANGE, on_client_changed));
    }
    // SAFETY: the live load context; the callbacks are functions of this module.
    unsafe {
        let register = raw::RedisModule_RegisterCommandFilter
            .ok_or("this server has no command filter API")?;
        // NOSELF: the module's own RM_Call (COMMAND, INFO, CONFIG GET) is not counted.
        let filter = register(
            ctx,
            Some(filter_callback),
            raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
        );
        if filter.is_null() {
            return Err("could not register the command filter".into());
        }
        let subscribe =
            raw::RedisModule_SubscribeToServerEvent.ok_or("this server has no server events")?;
        for (id, callback) in events {
            let event = raw::RedisModuleEvent { id, dataver: 1 };
            if subscribe(ctx, event, Some(callback)) == ERR {
                return Err(format!("could not subscribe to server event {id}"));
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
    let result = guard("a command", Err(INTERNAL_ERROR.to_owned()), || {
        dispatch(ctx, &args)
    });
    let written = guard("a reply", false, || {
        reply(ctx, result);
        true
    });
    if !written {
        reply(ctx, Err(INTERNAL_ERROR.to_owned()));
    }
    OK
}

fn dispatch(ctx: *mut raw::RedisModuleCtx, args: &[&[u8]]) -> CommandResult {
    let module = module().ok_or("ERR hotkey is not loaded")?;
    let (name, rest) = args.split_first().ok_or("ERR no command")?;
    let spec = module
        .commands
        .iter()
        .find(|c| name.eq_ignore_ascii_case(c.name.as_bytes()))
        .ok_or("ERR unknown hotkey command")?;
    (spec.run)(&Context::new(ctx), rest)
}

fn reply(ctx: *mut raw::RedisModuleCtx, result: CommandResult) {
    match result {
        Ok(frame) => write(ctx, &frame),
        Err(text) => {
            let text = cstring(&text);
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

/// The config behind a callback's `privdata`.
fn config_value(privdata: *mut c_void) -> Option<ConfigValue> {
    module()?.configs.get(privdata as usize).map(|c| c.value)
}

extern "C" fn get_integer(_name: *const c_char, privdata: *mut c_void) -> c_longlong {
    guard("CONFIG GET", 0, || match config_value(privdata) {
        Some(ConfigValue::Integer(config)) => config.get(),
        _ => 0,
    })
}

extern "C" fn set_integer(
    _name: *const c_char,
    new: c_longlong,
    privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    guard("CONFIG SET", ERR, || match config_value(privdata) {
        Some(ConfigValue::Integer(config)) => {
            config.set(new);
            OK
        }
        _ => ERR,
    })
}

extern "C" fn get_bool(_name: *const c_char, privdata: *mut c_void) -> c_int {
    guard("CONFIG GET", 0, || match config_value(privdata) {
        Some(ConfigValue::Bool(config)) => c_int::from(config.get()),
        _ => 0,
    })
}

extern "C" fn set_bool(
    _name: *const c_char,
    new: c_int,
    privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    guard("CONFIG SET", ERR, || match config_value(privdata) {
        Some(ConfigValue::Bool(config)) => {
            config.set(new != 0);
            OK
        }
        _ => ERR,
    })
}

extern "C" fn get_text(_name: *const c_char, privdata: *mut c_void) -> *mut raw::RedisModuleString {
    let text = guard("CONFIG GET", String::new(), || {
        match config_value(privdata) {
            Some(ConfigValue::Text(config)) => legal(&config.get()),
            _ => String::new(),
        }
    });
    let s = create_string(&text);
    // Kept until the next read of this config (the server copies it at once) or unload.
    let previous = CONFIG_STRINGS.with(|strings| {
        strings
            .get_mut(privdata as usize)
            .map(|slot| std::mem::replace(slot, s))
    });
    if let Some(Some(old)) = previous {
        free_string(old);
    }
    s
}

extern "C" fn set_text(
    _name: *const c_char,
    new: *mut raw::RedisModuleString,
    privdata: *mut c_void,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    // SAFETY: the server's string, live for the duration of the call.
    let bytes = unsafe { bytes_of(new) };
    let result = guard(
        "CONFIG SET",
        Err(INTERNAL_ERROR.to_owned()),
        || match config_value(privdata) {
            Some(ConfigValue::Text(config)) => config.set(bytes),
            _ => Err("not a text config".to_owned()),
        },
    );
    match result {
        Ok(()) => OK,
        Err(text) => {
            if !err.is_null() {
                // SAFETY: `err` points to the server's out-parameter; it takes the string and
                // frees it.
                unsafe { *err = create_string(&legal(&text)) };
            }
            ERR
        }
    }
}

extern "C" fn apply(
    _ctx: *mut raw::RedisModuleCtx,
    _privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    if let Some(module) = module() {
        guard("a config change", (), module.config_changed);
    }
    OK
}

fn create_string(text: &str) -> *mut raw::RedisModuleString {
    // SAFETY: a NULL context makes a string the caller owns; the buffer is copied.
    unsafe {
        raw::RedisModule_CreateString.map_or(ptr::null_mut(), |create| {
            create(ptr::null_mut(), text.as_ptr().cast(), text.len())
        })
    }
}

fn free_string(s: *mut raw::RedisModuleString) {
    if s.is_null() {
        return;
    }
    // SAFETY: `s` was made by `create_string` (NULL context) and is freed once.
    unsafe {
        if let Some(free) = raw::RedisModule_FreeString {
            free(ptr::null_mut(), s);
        }
    }
}

extern "C" fn info_callback(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    let mut sink = InfoSink::default();
    if let Some(module) = module() {
        guard("INFO", (), || (module.info)(&mut sink));
    }
    sink.field("internal_errors", internal_errors());
    // SAFETY: the live INFO context; every C string outlives the call that reads it. An empty
    // section name makes the server name the section after the module (`# hotkey`).
    unsafe {
        let (Some(section), Some(add)) = (
            raw::RedisModule_InfoAddSection,
            raw::RedisModule_InfoAddFieldCString,
        ) else {
            return;
        };
        if section(ctx, c"".as_ptr()) == ERR {
            return;
        }
        for (name, value) in &sink.fields {
            add(ctx, cstring(name).as_ptr(), cstring(value).as_ptr());
        }
    }
}

/// Runs a server-event handler with the event's context, if the module is loaded.
fn event(what: &str, ctx: *mut raw::RedisModuleCtx, f: impl FnOnce(&Module, &Context)) {
    if let Some(module) = module() {
        guard(what, (), || f(module, &Context::new(ctx)));
    }
}

extern "C" fn on_cron(
    ctx: *mut raw::RedisModuleCtx,
    _: raw::RedisModuleEvent,
    _: u64,
    _: *mut c_void,
) {
    event("the cron", ctx, |m, ctx| (m.cron)(ctx));
}

extern "C" fn on_role_changed(
    ctx: *mut raw::RedisModuleCtx,
    _: raw::RedisModuleEvent,
    subevent: u64,
    _: *mut c_void,
) {
    let replica = subevent == raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_REPLICA;
    event("a role change", ctx, |m, ctx| {
        (m.role_changed)(ctx, replica)
    });
}

extern "C" fn on_module_changed(
    ctx: *mut raw::RedisModuleCtx,
    _: raw::RedisModuleEvent,
    _: u64,
    _: *mut c_void,
) {
    event("a module change", ctx, |m, ctx| (m.modules_changed)(ctx));
}

extern "C" fn on_replica_changed(
    ctx: *mut raw::RedisModuleCtx,
    _: raw::RedisModuleEvent,
    _: u64,
    _: *mut c_void,
) {
    event("a replica change", ctx, |m, ctx| (m.replicas_changed)(ctx));
}

extern "C" fn on_client_changed(
    _ctx: *mut raw::RedisModuleCtx,
    _: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    if data.is_null() {
        return;
    }
    // SAFETY: for REDISMODULE_EVENT_CLIENT_CHANGE the server passes a RedisModuleClientInfo
    // (version 1, the one subscribed to) valid for the duration of the callback.
    let id = unsafe { (*(data as *const raw::RedisModuleClientInfo)).id };
    let connected = subevent == raw::REDISMODULE_SUBEVENT_CLIENT_CHANGE_CONNECTED;
    if let Some(module) = module() {
        guard("a client change", (), || {
            (module.client_changed)(id, connected)
        });
    }
}

extern "C" fn filter_callback(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    if let Some(module) = module() {
        guard("the command filter", (), || {
            (module.filter)(&FilterCommand::new(fctx))
        });
    }
}
