//! The global allocator.

use std::alloc::{GlobalAlloc, Layout, System};

use redis_module::alloc::RedisAlloc;
use redis_module::raw;

/// Redis's allocator (so `INFO memory` and `maxmemory` see the module's memory) once the server
/// has handed its API over, the system's before that and in processes that are not Redis
/// (unit tests, benchmarks).
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
