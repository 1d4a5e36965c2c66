//! What the module asks of the server through the module API, off the filter's path: the
//! command table, clients' databases, configs, `INFO replication`, its own address, and
//! publishing events.

use hotkey_protocol::Message;
use redis_module::{Context, RedisValue};

use crate::client_db::ClientDbs;
use crate::command_table::{CommandReply, CommandTable};
use crate::replicas::Replication;
use crate::{config, ffi, state};

pub fn read_command_table(ctx: &Context) -> CommandTable {
    match ctx.call("COMMAND", &[] as &[&str]) {
        Ok(reply) => CommandTable::from_command_reply(&to_reply(reply)),
        Err(_) => CommandTable::default(),
    }
}

/// Every connected client with its database now (from `CLIENT LIST`): at load, and when the
/// module starts following databases.
pub fn connected_clients(ctx: &Context) -> ClientDbs {
    let mut dbs = ClientDbs::default();
    let Some(text) = call_text(ctx, "CLIENT", &["LIST"]) else {
        return dbs;
    };
    for line in text.lines() {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let (Some(id), Some(db)) = (field("id"), field("db")) {
            dbs.connect_in(id, db as u32);
        }
    }
    dbs
}

pub fn config_get_u32(ctx: &Context, name: &str) -> Option<u32> {
    config_get_text(ctx, name)?.parse().ok()
}

fn config_get_text(ctx: &Context, name: &str) -> Option<String> {
    match ctx.call("CONFIG", &["GET", name]).ok()? {
        RedisValue::Array(v) => match v.get(1)? {
            RedisValue::BulkString(s) | RedisValue::SimpleString(s) => Some(s.clone()),
            RedisValue::StringBuffer(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        },
        _ => None,
    }
}

fn to_reply(v: RedisValue) -> CommandReply {
    match v {
        RedisValue::Integer(i) => CommandReply::Int(i),
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => {
            CommandReply::Str(s.into_bytes())
        }
        RedisValue::SimpleStringStatic(s) => CommandReply::Str(s.as_bytes().to_vec()),
        RedisValue::StringBuffer(b) => CommandReply::Str(b),
        RedisValue::BulkRedisString(s) => CommandReply::Str(s.as_slice().to_vec()),
        RedisValue::Array(a) => CommandReply::Array(a.into_iter().map(to_reply).collect()),
        _ => CommandReply::Nil,
    }
}

/// `CLUSTER NODES` now (in cluster mode).
pub fn cluster_nodes(ctx: &Context) -> Option<String> {
    call_text(ctx, "CLUSTER", &["NODES"])
}

/// What `INFO replication` says now.
pub fn replication(ctx: &Context) -> Option<Replication> {
    call_text(ctx, "INFO", &["replication"]).map(|text| Replication::parse(&text))
}

/// Publishes messages on the configured channel, in order.
pub fn publish(ctx: &Context, messages: &[Message]) {
    if messages.is_empty() {
        return;
    }
    let base = config::CHANNEL.name();
    let Some(channel) = state::with(|s| s.event_channel(&base)) else {
        return;
    };
    if !channel.publishes {
        return;
    }
    for m in messages {
        ffi::publish(ctx, &channel.name, &m.to_json(), channel.sharded);
    }
}

/// Where the master is, for `HOTKEY.ROUTE` and `HOTKEY.ROUTES`: on a replica, its master as
/// INFO shows it; on the master, the address the caller reached it at (`laddr` of its TCP
/// connection), since a server does not know the name clients use for it. A caller without
/// one (a script, a unix socket) gets the address the server is bound to, when it is bound to
/// one; else None.
pub fn master_address(ctx: &Context) -> Option<(String, u16)> {
    if let Some(Some(addr)) = state::with(|s| s.master_address()) {
        return Some(addr);
    }
    let id = ffi::client_id(ctx).to_string();
    let caller = call_text(ctx, "CLIENT", &["LIST", "ID", id.as_str()]);
    if let Some(addr) = caller.as_deref().and_then(parse_laddr) {
        return Some(addr);
    }
    let bound = config_get_text(ctx, "bind")
        .as_deref()
        .and_then(specific_address);
    match (bound, config_get_u32(ctx, "port")) {
        (Some(host), Some(port)) if port > 0 => Some((host, port as u16)),
        _ => None,
    }
}

/// The first address of a `bind` value that is one interface, not a wildcard.
fn specific_address(bind: &str) -> Option<String> {
    bind.split_whitespace()
        .map(|a| a.trim_start_matches('-'))
        .find(|a| !matches!(*a, "*" | "::*" | "0.0.0.0" | "::" | ""))
        .map(str::to_owned)
}

/// The text reply of a command run through the module API.
fn call_text(ctx: &Context, command: &str, args: &[&str]) -> Option<String> {
    match ctx.call(command, args).ok()? {
        RedisValue::BulkString(s) | RedisValue::SimpleString(s) => Some(s),
        RedisValue::StringBuffer(b) | RedisValue::VerbatimString((_, b)) => {
            Some(String::from_utf8_lossy(&b).into_owned())
        }
        _ => None,
    }
}

/// `host:port` of the `laddr=` field of a CLIENT LIST line, for a TCP connection (a unix
/// socket's has port 0); IPv6 comes in brackets.
fn parse_laddr(line: &str) -> Option<(String, u16)> {
    let laddr = line.split(' ').find_map(|f| f.strip_prefix("laddr="))?;
    let (host, port) = laddr.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok()?;
    (port > 0 && !host.is_empty()).then(|| (host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_from_client_list_and_bind() {
        let line = "id=7 addr=127.0.0.1:51000 laddr=127.0.0.1:7379 fd=8 name= db=0";
        assert_eq!(parse_laddr(line), Some(("127.0.0.1".into(), 7379)));
        assert_eq!(
            parse_laddr("id=7 addr=[::1]:5 laddr=[::1]:7380 fd=8"),
            Some(("::1".into(), 7380))
        );
        assert_eq!(
            parse_laddr("id=7 addr=/tmp/r.sock:0 laddr=/tmp/r.sock:0 fd=8"),
            None
        );
        assert_eq!(parse_laddr(""), None);
        assert_eq!(specific_address("* -::*"), None);
        assert_eq!(specific_address("0.0.0.0"), None);
        assert_eq!(specific_address("127.0.0.1 -::1"), Some("127.0.0.1".into()));
    }
}
