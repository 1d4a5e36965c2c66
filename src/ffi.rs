//! Every raw call into the server that the `redis-module` crate does not wrap, in one place.
//!
//! The rest of the crate is `#![deny(unsafe_code)]`; each `unsafe` block here says why the
//! pointers it touches are valid.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::ffi::{CString, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::alloc::RedisAlloc;
use redis_module::{Context, raw};

use crate::command_table::Args;
use crate::state;
use crate::tracker::Access;

/// State that only Redis's main thread touches.
///
/// A `RefCell` in a `static`: the borrow flag catches re-entry, and no lock is taken on the
/// filter's path.
pub struct MainThread<T>(RefCell<T>);

// SAFETY: Redis calls a module's command filter, commands, server-event and config callbacks
// on its main thread only, and this module starts no threads, so the cell is never touched
// from two threads.
unsafe impl<T> Sync for MainThread<T> {}

impl<T> MainThread<T> {
    pub const fn new(value: T) -> MainThread<T> {
        MainThread(RefCell::new(value))
    }

    /// Runs `f` on the value; None when it is already borrowed (re-entry), so the caller
    /// skips rather than panics inside the server.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.0.try_borrow_mut().ok().map(|mut v| f(&mut v))
    }
}

/// A context for `GetCommandKeysWithFlags`, which wants one but the filter has none.
static KEYS_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(ptr::null_mut());

/// Registers the command filter and the client connect/disconnect events.
pub fn register(ctx: &Context) -> Result<(), &'static str> {
    // SAFETY: the API pointers were filled in by RedisModule_Init before OnLoad runs; `ctx` is
    // the live load context.
    unsafe {
        let register = raw::RedisModule_RegisterCommandFilter
            .ok_or("this server has no command filter API")?;
        // NOSELF: the module's own RM_Call (COMMAND, CLIENT LIST, CONFIG GET) is not counted.
        let filter = register(
            ctx.ctx,
            Some(filter_command),
            raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
        );
        if filter.is_null() {
            return Err("could not register the command filter");
        }
        if let Some(detached) = raw::RedisModule_GetDetachedThreadSafeContext {
            KEYS_CTX.store(detached(ctx.ctx), Ordering::Relaxed);
        }
        let subscribe =
            raw::RedisModule_SubscribeToServerEvent.ok_or("this server has no server events")?;
        let replica_change = raw::RedisModuleEvent {
            id: raw::REDISMODULE_EVENT_REPLICA_CHANGE,
            dataver: 1,
        };
        if subscribe(ctx.ctx, replica_change, Some(replica_changed)) != raw::REDISMODULE_OK as c_int
        {
            return Err("could not subscribe to replica changes");
        }
        if per_client_db_available() {
            let event = raw::RedisModuleEvent {
                id: raw::REDISMODULE_EVENT_CLIENT_CHANGE,
                dataver: 1,
            };
            if subscribe(ctx.ctx, event, Some(client_change)) != raw::REDISMODULE_OK as c_int {
                return Err("could not subscribe to client changes");
            }
        }
    }
    Ok(())
}

/// Frees what `register` created; the server unregisters the filter and events itself.
pub fn unregister() {
    let keys_ctx = KEYS_CTX.swap(ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: `keys_ctx` came from GetDetachedThreadSafeContext and is freed once (swapped out).
    unsafe {
        if let (false, Some(free)) = (keys_ctx.is_null(), raw::RedisModule_FreeThreadSafeContext) {
            free(keys_ctx);
        }
    }
}

/// Whether the filter can tell clients apart (Redis ≥ 7.2, Valkey): then each client's
/// selected database is known; on Redis 7.0 it is not.
pub fn per_client_db_available() -> bool {
    // SAFETY: reading a function pointer the server filled in at init.
    let get_client_id = unsafe { raw::RedisModule_CommandFilterGetClientId };
    get_client_id.is_some()
}

extern "C" fn filter_command(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    state::on_command(&FilterCommand { fctx });
}

extern "C" fn client_change(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    if data.is_null() {
        return;
    }
    // SAFETY: for REDISMODULE_EVENT_CLIENT_CHANGE the server passes a RedisModuleClientInfo
    // (version 1, the one we subscribed with) valid for the duration of the callback.
    let id = unsafe { (*(data as *const raw::RedisModuleClientInfo)).id };
    state::client_changed(
        id,
        subevent == raw::REDISMODULE_SUBEVENT_CLIENT_CHANGE_CONNECTED,
    );
}

extern "C" fn replica_changed(
    ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    crate::on_replica_change(&Context::new(ctx));
}

/// Publishes `message` on `channel` (to this node's subscribers). Returns how many
/// received it.
pub fn publish(ctx: &Context, channel: &str, message: &str) -> usize {
    // SAFETY: `ctx` is a live context of a command or server event; both strings are created
    // with it and freed here once, after PublishMessage, which copies what it keeps.
    unsafe {
        let (Some(create), Some(publish), Some(free)) = (
            raw::RedisModule_CreateString,
            raw::RedisModule_PublishMessage,
            raw::RedisModule_FreeString,
        ) else {
            return 0;
        };
        let c = create(ctx.ctx, channel.as_ptr().cast(), channel.len());
        let m = create(ctx.ctx, message.as_ptr().cast(), message.len());
        let receivers = if c.is_null() || m.is_null() {
            0
        } else {
            publish(ctx.ctx, c, m)
        };
        for s in [c, m] {
            if !s.is_null() {
                free(ctx.ctx, s);
            }
        }
        usize::try_from(receivers).unwrap_or(0)
    }
}

/// Adds an ACL category where the server lets modules do so (Redis ≥ 7.4, Valkey 8). Where
/// it cannot, or the category exists already, [`set_acl_categories`] goes without it.
pub fn add_acl_category(ctx: &Context, name: &str) {
    let Ok(name) = CString::new(name) else {
        return;
    };
    // SAFETY: called from OnLoad with its live context; the C string outlives the call.
    unsafe {
        if let Some(add) = raw::RedisModule_AddACLCategory {
            add(ctx.ctx, name.as_ptr());
        }
    }
}

/// Puts a command of this module in ACL categories, plus `hotkey` where the server has it (the
/// module adds it on Redis ≥ 7.4). A no-op on servers that cannot set module command
/// categories (Redis 7.0); the README says how to restrict the commands there.
pub fn set_acl_categories(ctx: &Context, command: &str, categories: &str) -> Result<(), String> {
    // SAFETY: called from OnLoad with its live context, as SetCommandACLCategories requires;
    // GetCommand returns the command registered above or NULL; the C strings outlive the calls.
    unsafe {
        let (Some(get), Some(set)) = (
            raw::RedisModule_GetCommand,
            raw::RedisModule_SetCommandACLCategories,
        ) else {
            return Ok(());
        };
        let name = CString::new(command).map_err(|e| e.to_string())?;
        let cmd = get(ctx.ctx, name.as_ptr());
        if cmd.is_null() {
            return Err(format!("command {command} is not registered"));
        }
        for text in [format!("{categories} hotkey"), categories.to_owned()] {
            let c = CString::new(text).map_err(|e| e.to_string())?;
            if set(cmd, c.as_ptr()) == raw::REDISMODULE_OK as c_int {
                return Ok(());
            }
        }
        Err(format!(
            "could not put {command} in ACL categories '{categories}'"
        ))
    }
}

/// The database the caller of the current command has selected.
pub fn selected_db(ctx: &Context) -> u32 {
    // SAFETY: `ctx` is a live command context.
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |get| get(ctx.ctx)) as u32 }
}

/// The id of the client running the current command.
pub fn client_id(ctx: &Context) -> u64 {
    // SAFETY: `ctx` is a live command context.
    unsafe { raw::RedisModule_GetClientId.map_or(0, |get| get(ctx.ctx)) }
}

/// The command a filter callback is looking at.
pub struct FilterCommand {
    fctx: *mut raw::RedisModuleCommandFilterCtx,
}

impl Args for FilterCommand {
    #[inline]
    fn count(&self) -> usize {
        // SAFETY: `fctx` is the live filter context of this callback.
        unsafe {
            match raw::RedisModule_CommandFilterArgsCount {
                Some(count) => usize::try_from(count(self.fctx)).unwrap_or(0),
                None => 0,
            }
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&[u8]> {
        let i = c_int::try_from(i).ok()?;
        // SAFETY: `fctx` is the live filter context; ArgGet returns NULL out of range, else a
        // string owned by the client's argv that outlives this callback (and so `&self`);
        // StringPtrLen gives its bytes and length.
        unsafe {
            let arg = raw::RedisModule_CommandFilterArgGet?(self.fctx, i);
            if arg.is_null() {
                return None;
            }
            let mut len = 0usize;
            let p = raw::RedisModule_StringPtrLen?(arg, &mut len);
            if p.is_null() {
                return None;
            }
            Some(std::slice::from_raw_parts(p.cast::<u8>(), len))
        }
    }
}

impl state::Command for FilterCommand {
    #[inline]
    fn client_id(&self) -> Option<u64> {
        // SAFETY: `fctx` is the live filter context.
        unsafe { raw::RedisModule_CommandFilterGetClientId.map(|id| id(self.fctx)) }
    }

    fn movable_keys(&self, f: &mut dyn FnMut(usize, Option<Access>)) {
        let argc = self.count();
        // SAFETY: the strings come from the live filter context; GetCommandKeysWithFlags reads
        // them and returns two arrays of `num_keys` ints allocated with the module allocator,
        // which are freed here once.
        unsafe {
            let (Some(arg_get), Some(get_keys), Some(free)) = (
                raw::RedisModule_CommandFilterArgGet,
                raw::RedisModule_GetCommandKeysWithFlags,
                raw::RedisModule_Free,
            ) else {
                return;
            };
            let argv: Vec<*mut raw::RedisModuleString> =
                (0..argc).map(|i| arg_get(self.fctx, i as c_int)).collect();
            if argv.iter().any(|a| a.is_null()) {
                return;
            }
            let mut num_keys: c_int = 0;
            let mut flags: *mut c_int = ptr::null_mut();
            let positions = get_keys(
                KEYS_CTX.load(Ordering::Relaxed),
                argv.as_ptr().cast_mut(),
                argc as c_int,
                &mut num_keys,
                &mut flags,
            );
            if positions.is_null() {
                return;
            }
            let n = usize::try_from(num_keys).unwrap_or(0);
            for k in 0..n {
                let pos = *positions.add(k);
                let flag = if flags.is_null() { 0 } else { *flags.add(k) } as u32;
                let access = if flag & raw::REDISMODULE_CMD_KEY_RO != 0 {
                    Some(Access::Read)
                } else if flag
                    & (raw::REDISMODULE_CMD_KEY_RW
                        | raw::REDISMODULE_CMD_KEY_OW
                        | raw::REDISMODULE_CMD_KEY_RM)
                    != 0
                {
                    Some(Access::Write)
                } else {
                    None
                };
                if let Ok(pos) = usize::try_from(pos) {
                    f(pos, access);
                }
            }
            free(positions.cast());
            if !flags.is_null() {
                free(flags.cast());
            }
        }
    }
}

/// Checks keys against the calling user's ACL key patterns (read access).
pub struct KeyReadCheck {
    user: *mut raw::RedisModuleUser,
}

impl KeyReadCheck {
    /// The check for the user of the client running the current command; None when the user
    /// cannot be found (the caller then shows no keys).
    pub fn for_caller(ctx: &Context) -> Option<KeyReadCheck> {
        // SAFETY: `ctx` is a live command context; the user name string is freed once; the
        // module user is owned by the returned value and freed on drop.
        unsafe {
            let name = raw::RedisModule_GetCurrentUserName?(ctx.ctx);
            if name.is_null() {
                return None;
            }
            let user = raw::RedisModule_GetModuleUserFromUserName?(name);
            raw::RedisModule_FreeString?(ptr::null_mut(), name);
            (!user.is_null()).then_some(KeyReadCheck { user })
        }
    }

    /// Whether the user may read `key`.
    pub fn can_read(&self, key: &[u8]) -> bool {
        // SAFETY: `self.user` is live until drop; the key string is created and freed here.
        unsafe {
            let (Some(create), Some(check), Some(free)) = (
                raw::RedisModule_CreateString,
                raw::RedisModule_ACLCheckKeyPermissions,
                raw::RedisModule_FreeString,
            ) else {
                return false;
            };
            let s = create(ptr::null_mut(), key.as_ptr().cast(), key.len());
            if s.is_null() {
                return false;
            }
            // ACCESS asks for read permission; Redis 7.0 refuses RO here (EINVAL).
            let flags = raw::REDISMODULE_CMD_KEY_ACCESS;
            let ok = check(self.user, s, flags as c_int) == raw::REDISMODULE_OK as c_int;
            free(ptr::null_mut(), s);
            ok
        }
    }
}

impl Drop for KeyReadCheck {
    fn drop(&mut self) {
        // SAFETY: the user came from GetModuleUserFromUserName and is freed once.
        unsafe {
            if let Some(free) = raw::RedisModule_FreeModuleUser {
                free(self.user);
            }
        }
    }
}

/// The global allocator: Redis's (so `INFO memory` and `maxmemory` see the module's memory)
/// once the server has handed its API over, the system's before that and in processes that
/// are not Redis (unit tests, benchmarks).
pub struct ModuleAlloc;

#[inline]
fn in_redis() -> bool {
    // SAFETY: reading a function pointer that RedisModule_Init fills in once, before any
    // allocation of the module's; it is never cleared.
    let alloc = unsafe { raw::RedisModule_Alloc };
    alloc.is_some()
}

// SAFETY: each call forwards to one of two allocators; a block is always freed by the one that
// made it, because the choice flips once (at RedisModule_Init, before the module allocates) and
// never back, and outside Redis it never flips.
unsafe impl GlobalAlloc for ModuleAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if in_redis() {
                RedisAlloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees, to the allocator that made `ptr`.
        unsafe {
            if in_redis() {
                RedisAlloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }
}

/// Whether any database other than 0 (of the first `databases`) holds keys. Cheap: a size
/// read per database, no command run.
pub fn other_databases_have_keys(ctx: &Context, databases: u32) -> bool {
    // SAFETY: `ctx` is a live context of a server event; SelectDb only changes which database
    // that context's own client points at, and the original one is selected back.
    unsafe {
        let (Some(get), Some(select), Some(size)) = (
            raw::RedisModule_GetSelectedDb,
            raw::RedisModule_SelectDb,
            raw::RedisModule_DbSize,
        ) else {
            return false;
        };
        let original = get(ctx.ctx);
        let mut found = false;
        for db in 1..databases.min(c_int::MAX as u32) as c_int {
            if select(ctx.ctx, db) == raw::REDISMODULE_OK as c_int && size(ctx.ctx) > 0 {
                found = true;
                break;
            }
        }
        select(ctx.ctx, original);
        found
    }
}
