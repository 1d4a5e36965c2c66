//! `HOTKEY.ROUTES`: the whole hot set with its advice, the healthy replicas, and the `seq` and
//! `run_id` of the last event, for a router to start from or resync to. A separate command
//! from `HOTKEY.ROUTE`, so that no key name is ever read as a subcommand.

use hotkey_protocol::{Address, Role, Routes};
use redis_module::Context;

use super::{CommandResult, visible_to, with_state, wrong_arity};
use crate::config;

pub fn run(ctx: &Context, args: &[&[u8]]) -> CommandResult {
    if !args.is_empty() {
        return Err(wrong_arity("hotkey.routes"));
    }
    let visible = visible_to(ctx);
    let (snapshot, replica) = with_state(|s| (s.routes(visible), s.is_replica()))?;
    let (host, port) = crate::server::master_address(ctx)?;
    let routes = Routes {
        seq: snapshot.seq,
        run_id: snapshot.run_id,
        channel: config::CHANNEL.name(),
        sharded: false,
        role: if replica { Role::Replica } else { Role::Master },
        cluster: None,
        master: Address { host, port },
        replicas: snapshot.replicas,
        keys: snapshot.keys,
    };
    Ok(routes.to_frame())
}
