//! `HOTKEY.ROUTE key [READ|WRITE] [DB n]`: where one operation on a key should go.
//!
//! Writes and operations on cold keys go to the master. Reads of a read-hot key go to the
//! next healthy replica (round-robin), or to the master when none is healthy. The key must be
//! readable by the caller's ACL.

use crate::ffi::{Arg, ArgKind, CommandDocs};
use hotkey_protocol::Role;
use redis_module::Context;

use super::{
    CommandError, CommandResult, Cursor, DB_ARG, KEY_ARG, check_read, databases, parse_db,
    with_state,
};
use crate::ffi;

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
    pub fn parse(args: &[&[u8]], databases: u32) -> Result<Route, CommandError> {
        let mut c = Cursor::new(args, "hotkey.route");
        let mut route = Route {
            key: c.required()?.to_vec(),
            op: Op::Read,
            db: None,
        };
        let mut op_given = false;
        while let Some(name) = c.option(&["READ", "WRITE", "DB"])? {
            match name {
                "DB" => route.db = Some(parse_db(c.value("DB")?, databases)?),
                _ if op_given => return Err(CommandError::BothOps),
                op => {
                    op_given = true;
                    route.op = if op == "READ" { Op::Read } else { Op::Write };
                }
            }
        }
        Ok(route)
    }
}

/// What `COMMAND DOCS` says.
pub const DOCS: CommandDocs = CommandDocs {
    summary: "Tells where one read or write of a key should go: the master or a replica.",
    complexity: "O(1)",
    since: "0.1.0",
    arity: -2,
    keyed: true,
    args: &[
        KEY_ARG,
        Arg::required(
            "operation",
            ArgKind::OneOf(&[Arg::token("READ"), Arg::token("WRITE")]),
        )
        .optional()
        .summary("the operation asked about (default READ)"),
        DB_ARG,
    ],
};

pub fn run(ctx: &Context, args: &[&[u8]]) -> CommandResult {
    let route = Route::parse(args, databases()?)?;
    check_read(ctx, &route.key)?;
    let db = route.db.unwrap_or_else(|| ffi::selected_db(ctx));
    let answer = with_state(|s| s.route(db, &route.key, route.op == Op::Write))?;
    let reply = match answer.replica {
        Some(replica) => hotkey_protocol::Route::new(
            Role::Replica,
            replica.host,
            replica.port,
            answer.hot,
            answer.cache_ttl_ms,
        ),
        None => {
            let (host, port) = crate::server::master_address(ctx).ok_or(CommandError::NoAddress)?;
            hotkey_protocol::Route::new(Role::Master, host, port, answer.hot, answer.cache_ttl_ms)
        }
    };
    Ok(reply.to_frame())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Route, CommandError> {
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
            CommandError::WrongArity {
                command: "hotkey.route"
            }
        );
        assert_eq!(err(&["k", "READ", "WRITE"]), CommandError::BothOps);
        assert_eq!(
            err(&["k", "READ", "READ"]),
            CommandError::GivenTwice { option: "READ" }
        );
        assert_eq!(err(&["k", "DB"]), CommandError::NeedsValue { option: "DB" });
        assert_eq!(
            err(&["k", "DB", "16"]),
            CommandError::BadDb { databases: 16 }
        );
        assert_eq!(
            err(&["k", "GET"]),
            CommandError::UnknownOption {
                option: b"GET".to_vec(),
                command: "hotkey.route"
            }
        );
    }
}
