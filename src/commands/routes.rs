//! `HOTKEY.ROUTES`: the whole hot set with its advice, the healthy replicas, and the `seq` and
//! `run_id` of the last event, for a router to start from or resync to. A separate command
//! from `HOTKEY.ROUTE`, so that no key name is ever read as a subcommand.

use hotkey_protocol::{ReadsTo, field};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::reply::Reply;
use super::{NOT_LOADED, wrong_arity};
use crate::config;
use crate::ffi::KeyReadCheck;
use crate::state;

pub fn run(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::String(wrong_arity("hotkey.routes")));
    }
    let check = KeyReadCheck::for_caller(ctx);
    let snapshot = state::with(|s| {
        let keys: Vec<_> = s
            .hot_set
            .sorted()
            .into_iter()
            .filter(|e| check.as_ref().is_some_and(|c| c.can_read(&e.key)))
            .map(|e| (e.clone(), s.hot_set.advice(e)))
            .collect();
        (
            s.events.seq(),
            s.events.run_id().to_owned(),
            s.replicas.healthy(),
            keys,
        )
    })
    .ok_or(RedisError::Str(NOT_LOADED))?;
    let (seq, run_id, replicas, keys) = snapshot;
    let (host, port) = crate::server::master_address(ctx)?;
    let r = Reply(ctx);
    r.map(6);
    r.field(field::SEQ).int(seq as i64);
    r.field(field::RUN_ID).bytes(run_id.as_bytes());
    r.field(field::CHANNEL)
        .bytes(config::CHANNEL.get().as_bytes());
    r.field(field::MASTER).map(2);
    r.field(field::HOST).bytes(host.as_bytes());
    r.field(field::PORT).int(i64::from(port));
    r.field(field::REPLICAS).array(replicas.len());
    for replica in &replicas {
        r.map(3);
        r.field(field::HOST).bytes(replica.host.as_bytes());
        r.field(field::PORT).int(i64::from(replica.port));
        r.field(field::LAG_MS).int(replica.lag_ms as i64);
    }
    r.field(field::KEYS).array(keys.len());
    for (e, advice) in &keys {
        r.map(9);
        r.field(field::DB).int(i64::from(e.db));
        r.field(field::KEY).bytes(&e.key);
        r.field(field::READS_PER_SEC).double(e.reads_per_sec);
        r.field(field::WRITES_PER_SEC).double(e.writes_per_sec);
        r.field(field::READ_HOT).int(i64::from(advice.read_hot));
        r.field(field::WRITE_HOT).int(i64::from(advice.write_hot));
        r.field(field::PINNED).int(i64::from(advice.pinned));
        let to = if advice.reads_to == ReadsTo::Replicas {
            "replicas"
        } else {
            "master"
        };
        r.field(field::READS_TO).bytes(to.as_bytes());
        r.field(field::CACHE_TTL_MS).int(advice.cache_ttl_ms as i64);
    }
    Ok(RedisValue::NoReply)
}
