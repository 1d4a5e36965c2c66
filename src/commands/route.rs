//! `HOTKEY.ROUTE key [READ|WRITE] [DB n]`: where one operation on a key should go.
//!
//! Writes and operations on cold keys go to the master. Reads of a read-hot key go to the
//! next healthy replica (round-robin), or to the master when none is healthy. The key must be
//! readable by the caller's ACL.

use hotkey_protocol::{ReadsTo, Role, field};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::reply::Reply;
use super::{Cursor, NOT_LOADED, arguments, check_read, databases, parse_db};
use crate::ffi;
use crate::state;

/// The operation asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
}

/// A parsed `HOTKEY.ROUTE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub key: Vec<u8>,
    pub op: Op,
    pub db: Option<u32>,
}

impl Route {
    pub fn parse(args: &[&[u8]], databases: u32) -> Result<Route, String> {
        let mut c = Cursor::new(args, "hotkey.route");
        let mut route = Route {
            key: c.required()?.to_vec(),
            op: Op::Read,
            db: None,
        };
        let mut op_given = false;
        while let Some(name) = c.option(&["READ", "WRITE", "DB"])? {
            match name.as_str() {
                "DB" => route.db = Some(parse_db(c.value("DB")?, databases)?),
                _ if op_given => return Err(BOTH_OPS.into()),
                op => {
                    op_given = true;
                    route.op = if op == "READ" { Op::Read } else { Op::Write };
                }
            }
        }
        Ok(route)
    }
}

pub const BOTH_OPS: &str = "ERR READ and WRITE are exclusive";

/// Where the operation goes.
struct Target {
    role: Role,
    host: String,
    port: u16,
    hot: bool,
    cache_ttl_ms: u64,
}

pub fn run(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let args = arguments(&args);
    let databases = databases()?;
    let route = Route::parse(&args, databases).map_err(RedisError::String)?;
    check_read(ctx, &route.key)?;
    let db = route.db.unwrap_or_else(|| ffi::selected_db(ctx));
    let replica = state::with(|s| {
        let entry = s.hot_entry(db, &route.key)?;
        let advice = s.hot_set.advice(entry);
        let to_replica = route.op == Op::Read && advice.reads_to == ReadsTo::Replicas;
        let replica = if to_replica {
            s.replicas.next_healthy()
        } else {
            None
        };
        let ttl = if route.op == Op::Read {
            advice.cache_ttl_ms
        } else {
            0
        };
        Some((replica, ttl))
    })
    .ok_or(RedisError::Str(NOT_LOADED))?;
    let target = match replica {
        Some((Some(r), ttl)) => Target {
            role: Role::Replica,
            host: r.host,
            port: r.port,
            hot: true,
            cache_ttl_ms: ttl,
        },
        hot => {
            let (host, port) = crate::server::master_address(ctx)?;
            Target {
                role: Role::Master,
                host,
                port,
                hot: hot.is_some(),
                cache_ttl_ms: hot.map_or(0, |(_, ttl)| ttl),
            }
        }
    };
    let r = Reply(ctx);
    r.map(5);
    r.field(field::ROLE).bytes(target.role.as_str().as_bytes());
    r.field(field::HOST).bytes(target.host.as_bytes());
    r.field(field::PORT).int(i64::from(target.port));
    r.field(field::HOT).int(i64::from(target.hot));
    r.field(field::CACHE_TTL_MS).int(target.cache_ttl_ms as i64);
    Ok(RedisValue::NoReply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Route, String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        Route::parse(&args, 16)
    }

    #[test]
    fn the_key_comes_first_and_options_follow() {
        assert_eq!(
            parse(&["k"]),
            Ok(Route {
                key: b"k".to_vec(),
                op: Op::Read,
                db: None
            })
        );
        assert_eq!(
            parse(&["DB", "write", "db", "3"]),
            Ok(Route {
                key: b"DB".to_vec(),
                op: Op::Write,
                db: Some(3)
            }),
            "a key named like an option is still the key"
        );
    }

    #[test]
    fn every_bad_argument_names_the_problem() {
        let err = |a: &[&str]| parse(a).unwrap_err();
        assert_eq!(
            err(&[]),
            "ERR wrong number of arguments for 'hotkey.route' command"
        );
        assert_eq!(err(&["k", "READ", "WRITE"]), BOTH_OPS);
        assert_eq!(err(&["k", "READ", "READ"]), "ERR READ given twice");
        assert_eq!(err(&["k", "DB"]), "ERR DB needs a value");
        assert_eq!(
            err(&["k", "DB", "16"]),
            "ERR DB must be an integer from 0 to 15"
        );
        assert_eq!(
            err(&["k", "GET"]),
            "ERR unknown option 'GET' for HOTKEY.ROUTE"
        );
    }
}
