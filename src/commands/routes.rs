//! `HOTKEY.ROUTES`: the whole hot set with its advice, the healthy replicas, and the `seq` and
//! `run_id` of the last event, for a router to start from or resync to. A separate command
//! from `HOTKEY.ROUTE`, so that no key name is ever read as a subcommand.

use crate::ffi::CommandDocs;
use hotkey_protocol::{Address, Routes};
use redis_module::Context;

use super::{CommandError, CommandResult, visible_to, with_state};
use crate::config;

/// What `COMMAND DOCS` says.
pub const DOCS: CommandDocs = CommandDocs {
    summary: "Returns the hot set with its advice, the healthy replicas and the event channel, for a router to sync to.",
    complexity: "O(H) where H is the number of hot keys",
    since: "0.1.0",
    arity: 1,
    keyed: false,
    args: &[],
};

pub fn run(ctx: &Context, args: &[&[u8]]) -> CommandResult {
    if !args.is_empty() {
        return Err(CommandError::WrongArity {
            command: "hotkey.routes",
        }
        .into());
    }
    let visible = visible_to(ctx);
    let base = config::CHANNEL.name();
    let snapshot = with_state(|s| s.routes(&base, visible))?;
    let (host, port) = crate::server::master_address(ctx).ok_or(CommandError::NoAddress)?;
    let mut routes = Routes::new(
        snapshot.seq,
        snapshot.run_id,
        snapshot.channel.name,
        snapshot.role,
        Address::new(host, port),
    );
    routes.sharded = snapshot.channel.sharded;
    routes.cluster = snapshot.cluster;
    routes.replicas = snapshot.replicas;
    routes.keys = snapshot.keys;
    Ok(routes.to_frame())
}
