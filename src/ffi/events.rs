//! INFO, the server events and the command filter: the callbacks the server makes while the
//! module runs, each under the guard.

use std::ffi::{c_int, c_void};

use redis_module::{Context, raw};

use super::entry::{ERR, cstring, module};
use super::filter::FilterCommand;
use super::guard::{guard, internal_errors};
use super::module::{InfoSink, Module};

/// Registers the INFO section and the command filter, and subscribes to the server events.
pub(super) fn subscribe(ctx: *mut raw::RedisModuleCtx) -> Result<(), String> {
    // SAFETY: the live load context; the callback is a function of this module.
    unsafe {
        if let Some(register) = raw::RedisModule_RegisterInfoFunc
            && register(ctx, Some(info_callback)) == ERR
        {
            return Err("could not register the INFO section".into());
        }
    }

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
