//! The configs: registration with their defaults (from `loadmodule` arguments when given) and
//! the server's get/set/apply callbacks, each under the guard.

use std::ffi::{CString, c_char, c_int, c_longlong, c_void};
use std::ptr;

use redis_module::raw;

use super::calls::bytes_of;
use super::cell::MainThread;
use super::entry::{ERR, INTERNAL_ERROR, OK, cstring, module};
use super::guard::guard;
use super::module::{ConfigValue, Module};
use crate::text::legal;

/// The last value handed out per text config (the server copies it; the module frees it on
/// the next read of the same config and at unload).
static CONFIG_STRINGS: MainThread<Vec<*mut raw::RedisModuleString>> = MainThread::new(Vec::new());

/// Frees the config strings (at unload).
pub(super) fn release() {
    CONFIG_STRINGS.with(|strings| {
        for s in strings.drain(..) {
            free_string(s);
        }
        strings.shrink_to_fit();
    });
}

/// The value a `loadmodule` argument gives config `name`, if any (the last one wins).
fn arg_value<'a>(args: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    args.chunks_exact(2)
        .filter(|pair| pair[0] == name.as_bytes())
        .map(|pair| pair[1])
        .next_back()
}

pub(super) fn register(
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
