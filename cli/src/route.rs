//! `hotkey route KEY`: `HOTKEY.ROUTE` on the node that owns the key — the master a Sentinel
//! names, or in a cluster the master of the key's slot, following one `MOVED`/`ASK`.

use hotkey_protocol::Route;
use hotkey_protocol::cluster::{Redirect, key_slot, serves};
use redis::Value;
use serde_json::json;

use crate::Discovery;
use crate::discover::{Role, Seeds, Topology};
use crate::node::{Endpoint, describe};

/// Discovery found no node to ask (followed by why).
pub const NO_NODE: &str = "no node to ask";
/// A second redirection after the one followed.
pub const REDIRECTED_TWICE: &str = "redirected twice (the cluster is resharding): try again";
/// A redirection whose address the tool cannot read.
pub const BAD_REDIRECT: &str = "unexpected redirection address";
/// A `HOTKEY.ROUTE` reply the tool cannot read.
pub const BAD_ROUTE_REPLY: &str = "unexpected HOTKEY.ROUTE reply";

/// Where the operation goes, and who said so.
pub struct Answer {
    /// The node that answered.
    pub node: String,
    /// The key's slot, in a cluster.
    pub slot: Option<u16>,
    pub route: Route,
}

impl Answer {
    pub fn text(&self) -> String {
        let slot = self
            .slot
            .map(|s| format!(" (slot {s})"))
            .unwrap_or_default();
        format!(
            "node {}{slot}\nrole {}\nhost {}\nport {}\nhot {}\ncache_ttl_ms {}\n",
            self.node,
            self.route.role.as_str(),
            self.route.host,
            self.route.port,
            u8::from(self.route.hot),
            self.route.cache_ttl_ms
        )
    }

    pub fn json(&self) -> String {
        json!({
            "node": self.node,
            "slot": self.slot,
            "role": self.route.role.as_str(),
            "host": self.route.host,
            "port": self.route.port,
            "hot": self.route.hot,
            "cache_ttl_ms": self.route.cache_ttl_ms,
        })
        .to_string()
    }
}

pub fn ask(
    seeds: &Seeds,
    how: &Discovery,
    key: &[u8],
    write: bool,
    db: Option<u32>,
) -> Result<Answer, String> {
    let slot = how.cluster.then(|| key_slot(key));
    let target = owner(seeds, how, slot)?;
    let mut cmd = redis::cmd("HOTKEY.ROUTE");
    cmd.arg(key).arg(if write { "WRITE" } else { "READ" });
    if let Some(db) = db {
        cmd.arg("DB").arg(db);
    }
    let (node, reply) = match run(&target, &cmd, false) {
        Ok(reply) => (target, reply),
        Err(Failure::Redirect(redirect)) => {
            let next = redirected(&target, &redirect)?;
            match run(&next, &cmd, redirect.is_ask()) {
                Ok(reply) => (next, reply),
                Err(Failure::Redirect { .. }) => {
                    return Err(format!("{}: {REDIRECTED_TWICE}", next.addr));
                }
                Err(Failure::Other(e)) => return Err(e),
            }
        }
        Err(Failure::Other(e)) => return Err(e),
    };
    let route =
        Route::from_redis(&reply).map_err(|e| format!("{}: {BAD_ROUTE_REPLY}: {e}", node.addr))?;
    Ok(Answer {
        node: node.addr,
        slot,
        route,
    })
}

/// The node to ask first: the given one, the master a Sentinel names, or the master serving
/// `slot`.
fn owner(seeds: &Seeds, how: &Discovery, slot: Option<u16>) -> Result<Endpoint, String> {
    if !how.cluster && how.sentinel.is_none() {
        return seeds
            .endpoints
            .first()
            .cloned()
            .ok_or_else(|| NO_NODE.to_string());
    }
    let topology = Topology::discover(seeds, how);
    let serving = |n: &&crate::discover::Node| match (slot, &n.shard) {
        (Some(slot), Some(shard)) => serves(&shard.slots, slot),
        _ => true,
    };
    topology
        .nodes
        .iter()
        .filter(|n| n.role == Role::Master)
        .find(serving)
        .map(|n| n.endpoint.clone())
        .ok_or_else(|| format!("{NO_NODE}: {}", topology.errors.join("; ")))
}

enum Failure {
    Redirect(Redirect),
    Other(String),
}

/// The node a redirection names; a redirection without a host names the asked node's host.
fn redirected(asked: &Endpoint, redirect: &Redirect) -> Result<Endpoint, String> {
    let (host, port) = redirect
        .host_port()
        .ok_or_else(|| format!("{}: {BAD_REDIRECT}: {}", asked.addr, redirect.address()))?;
    let host = match host.is_empty() {
        true => asked.host(),
        false => host,
    };
    Ok(asked.at(host, port))
}

fn run(endpoint: &Endpoint, cmd: &redis::Cmd, asking: bool) -> Result<Value, Failure> {
    let mut conn = endpoint.connect().map_err(Failure::Other)?;
    if asking {
        let _: Value = redis::cmd("ASKING")
            .query(&mut conn)
            .map_err(|e| Failure::Other(endpoint.problem(&e)))?;
    }
    cmd.query(&mut conn)
        .map_err(|e| match Redirect::from_redis(&e) {
            Some(redirect) => Failure::Redirect(redirect),
            None => Failure::Other(format!("{}: {}", endpoint.addr, describe(&e))),
        })
}
