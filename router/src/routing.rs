//! Where a command goes, decided from the server's command table and the route table alone
//! (no I/O), so it is unit-tested and benchmarked without a server, and checked with the
//! Python router's rule against one corpus (`protocol/testdata/routing*.json`, run over every
//! recorded `COMMAND` table by `routing/corpus.rs`).
//!
//! The rule, in order:
//! 1. Commands the table does not know, keyless commands, scripts and transactions, and
//!    commands whose keys only the server can find go to the master. So do commands that may
//!    block (`BLPOP`, `XREAD … BLOCK`), on a connection of their own; `XREAD` and
//!    `XREADGROUP` without `BLOCK` do not block and follow the other rules. `WAIT` and
//!    `WAITAOF` (flagged `blocking` by Valkey 9, not by Redis 7) stay on the shared
//!    connection: they wait for the writes of the connection they are sent on, and a
//!    connection of their own has none.
//! 2. A script that may write (`EVAL`, `EVALSHA`, `FCALL`: their key specs say `RW`) writes
//!    every key it declares: the server cannot tell which ones it touches, so neither can the
//!    router, and a key left out would be served stale from the cache (or a lagging replica)
//!    right after this router's own write, until the server's invalidation arrives. The `_RO`
//!    variants write nothing.
//! 3. A command that writes any key (or is not flagged `readonly`) goes to the master; the
//!    keys it writes are returned so the router can invalidate them. A command flagged `write`
//!    none of whose key specs writes writes all its keys
//!    ([`CommandSpec::writes_its_read_keys`](hotkey_protocol::command_table::CommandSpec::writes_its_read_keys):
//!    `XREADGROUP`).
//! 4. A read goes off the master only when every key it reads is hot. It may be cached when it
//!    reads exactly one key, its reply is deterministic and the advice gives a cache TTL; it
//!    may go to a replica when the advice of every key says `reads_to: replicas`.

use std::time::Duration;

use hotkey_protocol::ReadsTo;
use hotkey_protocol::command_table::{Access, CommandKind, CommandTable};

use crate::table::RouteTable;

/// Where one command was (or would be) sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    Master,
    Replica,
    Cache,
}

/// The decision for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<'a> {
    /// The master, with no bookkeeping.
    Master,
    /// The master; these keys are written.
    Write(Vec<&'a [u8]>),
    /// The master, on a connection of its own (the command may block); these keys are written.
    Blocking(Vec<&'a [u8]>),
    /// Every key read is hot.
    HotRead(HotRead<'a>),
}

/// A read of hot keys only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotRead<'a> {
    /// The keys read (each once).
    pub keys: Vec<&'a [u8]>,
    /// Cache the reply for this long, read under this epoch (single-key deterministic reads
    /// whose advice gives a TTL).
    pub cache: Option<(Duration, u64)>,
    /// The advice of every key sends reads to replicas.
    pub replicas: bool,
}

/// Decides where `args` (the command name first) goes.
pub fn plan<'a>(commands: &CommandTable, table: &RouteTable, args: &[&'a [u8]]) -> Plan<'a> {
    let Some(spec) = commands.lookup(args) else {
        return Plan::Master;
    };
    let may_block = spec.blocking && may_block(&spec.name, args);
    if spec.kind == CommandKind::Script {
        let mut writes: Vec<&'a [u8]> = Vec::new();
        spec.for_each_key(args, |pos, access| {
            if access == Access::Write && !writes.contains(&args[pos]) {
                writes.push(args[pos]);
            }
        });
        return if writes.is_empty() {
            Plan::Master
        } else {
            Plan::Write(writes)
        };
    }
    if spec.kind != CommandKind::Keys || spec.movable {
        return if may_block {
            Plan::Blocking(Vec::new())
        } else {
            Plan::Master
        };
    }
    let mut reads: Vec<&'a [u8]> = Vec::new();
    let mut writes: Vec<&'a [u8]> = Vec::new();
    spec.for_each_key(args, |pos, access| {
        let key = args[pos];
        let list = match access {
            Access::Read => &mut reads,
            Access::Write => &mut writes,
        };
        if !list.contains(&key) {
            list.push(key);
        }
    });
    if spec.writes_its_read_keys() {
        writes = std::mem::take(&mut reads);
    }
    if may_block {
        return Plan::Blocking(writes);
    }
    if !writes.is_empty() || !spec.readonly {
        return Plan::Write(writes);
    }
    if reads.is_empty() || !table.is_synced() {
        return Plan::Master;
    }
    let mut replicas = true;
    let mut cache = None;
    for key in &reads {
        let Some(entry) = table.get(key) else {
            return Plan::Master;
        };
        replicas &= entry.advice.reads_to == ReadsTo::Replicas;
        if reads.len() == 1 && spec.deterministic && entry.advice.cache_ttl_ms > 0 {
            cache = Some((
                Duration::from_millis(entry.advice.cache_ttl_ms),
                entry.epoch,
            ));
        }
    }
    Plan::HotRead(HotRead {
        keys: reads,
        cache,
        replicas,
    })
}

/// Whether a command flagged `blocking` needs a connection of its own as called: `XREAD` and
/// `XREADGROUP` only with `BLOCK`; `WAIT` and `WAITAOF` never (see rule 1); the others
/// (`BLPOP`, `BRPOPLPUSH`, …) always.
fn may_block(name: &str, args: &[&[u8]]) -> bool {
    match name {
        "xread" | "xreadgroup" => args.iter().any(|a| a.eq_ignore_ascii_case(b"block")),
        "wait" | "waitaof" => false,
        _ => true,
    }
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
