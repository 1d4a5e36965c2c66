//! What the crate asks of the server outside the filter: ACL key checks, publishing, the
//! caller's database and id, the cluster id, databases' sizes, and the log.

use std::ffi::{CStr, CString, c_int};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::{Context, raw};

use crate::text::legal;

/// A detached context of this module: for log lines from anywhere, and for
/// `GetCommandKeysWithFlags`, which wants a context the filter does not have.
static DETACHED: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(ptr::null_mut());

/// Makes the detached context (at load).
pub(super) fn open_detached(ctx: *mut raw::RedisModuleCtx) {
    // SAFETY: `ctx` is the live load context; the detached context is freed once, at unload
    // or after a failed load (`close_detached`).
    unsafe {
        if let Some(detached) = raw::RedisModule_GetDetachedThreadSafeContext {
            DETACHED.store(detached(ctx), Ordering::Relaxed);
        }
    }
}

/// Frees the detached context (at unload).
pub(super) fn close_detached() {
    let ctx = DETACHED.swap(ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: `ctx` came from GetDetachedThreadSafeContext and is freed once (swapped out).
    unsafe {
        if let (false, Some(free)) = (ctx.is_null(), raw::RedisModule_FreeThreadSafeContext) {
            free(ctx);
        }
    }
}

pub(super) fn detached() -> *mut raw::RedisModuleCtx {
    DETACHED.load(Ordering::Relaxed)
}

/// How loud a log line is (the server's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Warning,
    Notice,
}

/// Writes a line to the server's log, as printable ASCII.
pub fn log(level: LogLevel, text: &str) {
    let level: &CStr = match level {
        LogLevel::Warning => c"warning",
        LogLevel::Notice => c"notice",
    };
    // Escaped text has no NUL.
    let line = CString::new(legal(text)).unwrap_or_default();
    // SAFETY: the detached context is live while the module is loaded, or NULL, which RM_Log
    // accepts; the format is a constant "%s" and the argument a valid C string.
    unsafe {
        if let Some(log) = raw::RedisModule_Log {
            log(detached(), level.as_ptr(), c"%s".as_ptr(), line.as_ptr());
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

/// Publishes `message` on `channel`: with `sharded`, to the subscribers of the shard that
/// serves the channel's slot (sharded pub/sub: the message stays inside this shard), else to
/// every subscriber of the channel (in a cluster, of every node). Returns how many received it.
pub fn publish(ctx: &Context, channel: &str, message: &str, sharded: bool) -> usize {
    // SAFETY: `ctx` is a live context of a command or server event; both strings are created
    // with it and freed here once, after the publish call, which copies what it keeps.
    unsafe {
        let publish = if sharded {
            raw::RedisModule_PublishMessageShard
        } else {
            raw::RedisModule_PublishMessage
        };
        let (Some(create), Some(publish), Some(free)) = (
            raw::RedisModule_CreateString,
            publish,
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

/// The node's cluster id (40 hex digits) when the server runs in cluster mode and the cluster
/// is initialised (after modules load).
pub fn cluster_node_id() -> Option<String> {
    // SAFETY: GetMyClusterID returns NULL outside cluster mode, else the node's id: exactly
    // REDISMODULE_NODE_ID_LEN bytes owned by the server, not NUL-terminated, copied at once.
    unsafe {
        let id = raw::RedisModule_GetMyClusterID?();
        if id.is_null() {
            return None;
        }
        let id = std::slice::from_raw_parts(id.cast::<u8>(), raw::REDISMODULE_NODE_ID_LEN as usize);
        id.iter()
            .all(u8::is_ascii_alphanumeric)
            .then(|| String::from_utf8_lossy(id).into_owned())
    }
}

/// The database the caller of the current command has selected.
pub fn selected_db(ctx: &Context) -> u32 {
    // SAFETY: `ctx` is a live command context.
    let db = unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |get| get(ctx.ctx)) };
    u32::try_from(db).unwrap_or(0)
}

/// The id of the client running the current command.
pub fn client_id(ctx: &Context) -> u64 {
    // SAFETY: `ctx` is a live command context.
    unsafe { raw::RedisModule_GetClientId.map_or(0, |get| get(ctx.ctx)) }
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

/// The bytes of a server string, valid while the string is.
///
/// # Safety
/// `s` is NULL or a live `RedisModuleString`, which outlives the returned slice.
pub(super) unsafe fn bytes_of<'a>(s: *mut raw::RedisModuleString) -> &'a [u8] {
    if s.is_null() {
        return &[];
    }
    // SAFETY: per the contract, `s` is live; StringPtrLen gives its buffer and length.
    unsafe {
        let Some(ptr_len) = raw::RedisModule_StringPtrLen else {
            return &[];
        };
        let mut len = 0usize;
        let p = ptr_len(s, &mut len);
        if p.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}
