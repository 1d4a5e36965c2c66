//! Where a command that names no key goes when there is more than one master (a cluster, the
//! proxy in front of one): one rule, shared by the routers and the proxy, and checked with
//! them against `protocol/testdata/routing.json`. A standalone router sends every keyless
//! command to its master; the group only matters where there is a choice.

use crate::command_table::SCRIPTS;

/// How the replies of a command sent to every master are merged into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Aggregate {
    /// Integers added up (`DBSIZE`).
    Sum,
    /// Arrays joined (`KEYS`).
    Concat,
    /// `OK` when every master said `OK`, else the first error (`FLUSHALL`).
    AllOk,
}

/// Where a keyless command goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeylessGroup {
    /// Every master, replies merged.
    AllMasters(Aggregate),
    /// Every node, replicas too (their state must match: `SCRIPT LOAD`); `OK` when all agree.
    AllNodes,
    /// Any one master: the reply of one is as good as another's (`RANDOMKEY`, a script that
    /// declares no key, `PUBLISH`, which a cluster carries to the subscribers of every node).
    RandomMaster,
    /// Not routed: the command is about one connection or one node (`SELECT`, `MULTI`, `INFO`,
    /// `SCAN`'s cursor), so no choice of node keeps its meaning. A front end may answer it
    /// itself.
    Refused,
}

impl KeylessGroup {
    /// The name used in the routing corpus: `all_masters:sum`, `all_nodes`, `refused`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            KeylessGroup::AllMasters(Aggregate::Sum) => "all_masters:sum",
            KeylessGroup::AllMasters(Aggregate::Concat) => "all_masters:concat",
            KeylessGroup::AllMasters(Aggregate::AllOk) => "all_masters:all_ok",
            KeylessGroup::AllNodes => "all_nodes",
            KeylessGroup::RandomMaster => "random_master",
            KeylessGroup::Refused => "refused",
        }
    }
}

/// The group of a keyless command, from its name (`args[0]`) and, for containers, its
/// subcommand (`args[1]`); case-insensitive. Anything not listed is refused: a wrong node
/// would answer it silently, a refusal says so.
pub fn group<A: AsRef<[u8]>>(args: &[A]) -> KeylessGroup {
    let is = |i: usize, word: &str| {
        args.get(i)
            .is_some_and(|a| a.as_ref().eq_ignore_ascii_case(word.as_bytes()))
    };
    let named = |words: &[&str]| words.iter().any(|w| is(0, w));
    if named(&["dbsize"]) {
        KeylessGroup::AllMasters(Aggregate::Sum)
    } else if named(&["keys"]) {
        KeylessGroup::AllMasters(Aggregate::Concat)
    } else if named(&["flushall", "flushdb"]) {
        KeylessGroup::AllMasters(Aggregate::AllOk)
    } else if named(&["ping"]) || (is(0, "script") && (is(1, "load") || is(1, "flush"))) {
        KeylessGroup::AllNodes
    } else if named(&["randomkey", "publish"]) || named(SCRIPTS) {
        KeylessGroup::RandomMaster
    } else {
        KeylessGroup::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_without_regard_to_case() {
        assert_eq!(group(&["DbSize"]), KeylessGroup::AllMasters(Aggregate::Sum));
        assert_eq!(
            group(&["script", "LOAD", "return 1"]),
            KeylessGroup::AllNodes
        );
        assert_eq!(group(&["SCRIPT", "EXISTS", "abc"]), KeylessGroup::Refused);
        assert_eq!(group(&["publish", "c", "m"]), KeylessGroup::RandomMaster);
        assert_eq!(group(&["PUBSUB", "CHANNELS"]), KeylessGroup::Refused);
        assert_eq!(group::<&str>(&[]), KeylessGroup::Refused);
    }
}
