//! The command filter's view of a command.

use std::ffi::c_int;
use std::ptr;

use hotkey_protocol::command_table::{Access, Args};
use redis_module::raw;

use super::cell::MainThread;

/// The argument vector handed to `GetCommandKeysWithFlags`, kept between calls so that a
/// command with movable keys does not allocate one each time.
static MOVABLE_ARGV: MainThread<Vec<*mut raw::RedisModuleString>> = MainThread::new(Vec::new());

/// The most arguments [`MOVABLE_ARGV`] keeps room for after a call: one huge command must not
/// hold its size for the life of the module.
const MOVABLE_ARGV_KEPT: usize = 1024;

/// The command a filter callback is looking at.
pub struct FilterCommand {
    fctx: *mut raw::RedisModuleCommandFilterCtx,
}

impl FilterCommand {
    pub(super) fn new(fctx: *mut raw::RedisModuleCommandFilterCtx) -> FilterCommand {
        FilterCommand { fctx }
    }

    /// The id of the client running it; None where the server cannot say (Redis 7.0).
    #[inline]
    pub fn client_id(&self) -> Option<u64> {
        // SAFETY: `fctx` is the live filter context.
        unsafe { raw::RedisModule_CommandFilterGetClientId.map(|id| id(self.fctx)) }
    }

    /// Asks the server for the key positions of the command: `f(position, access)` per key,
    /// with the access when the server gives one. For commands whose keys the table cannot find.
    /// The server allocates the positions it returns; the argument vector is reused. Skipped
    /// if re-entered.
    pub fn movable_keys(&self, f: &mut dyn FnMut(usize, Option<Access>)) {
        MOVABLE_ARGV.with(|argv| {
            self.movable_keys_with(argv, f);
            argv.clear();
            argv.shrink_to(MOVABLE_ARGV_KEPT);
        });
    }

    fn movable_keys_with(
        &self,
        argv: &mut Vec<*mut raw::RedisModuleString>,
        f: &mut dyn FnMut(usize, Option<Access>),
    ) {
        let argc = self.count();
        // SAFETY: the strings come from the live filter context; GetCommandKeysWithFlags reads
        // them and returns two arrays of `num_keys` ints allocated with the module allocator,
        // which are freed here once. The context is the module's detached one, live while the
        // module is loaded.
        unsafe {
            let (Some(arg_get), Some(get_keys), Some(free)) = (
                raw::RedisModule_CommandFilterArgGet,
                raw::RedisModule_GetCommandKeysWithFlags,
                raw::RedisModule_Free,
            ) else {
                return;
            };
            let ctx = super::calls::detached();
            if ctx.is_null() {
                return;
            }
            // Empty already unless a panic cut the last call short (the guard caught it).
            argv.clear();
            argv.extend((0..argc).map(|i| arg_get(self.fctx, i as c_int)));
            if argv.iter().any(|a| a.is_null()) {
                return;
            }
            let mut num_keys: c_int = 0;
            let mut flags: *mut c_int = ptr::null_mut();
            let positions = get_keys(
                ctx,
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
