//! The node's place in a Redis Cluster, from `CLUSTER NODES`: its id, its role, and the slots
//! its shard serves (a replica's are its master's). Pure: the tick reads the text, the
//! protocol crate parses it, this picks the node out.

use hotkey_protocol::Role;
use hotkey_protocol::cluster::{SlotRange, parse_cluster_nodes};

/// This node as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub node_id: String,
    pub role: Role,
    /// The slots the shard serves, sorted; slots being imported or migrated count where the
    /// cluster says they live now (`[slot->-id]` markers are not ranges).
    pub slots: Vec<SlotRange>,
}

impl ClusterView {
    /// Parses `CLUSTER NODES` for the node with id `node_id`. None when its line is missing or
    /// the reply is malformed (the tick then keeps the view it had).
    pub fn parse(nodes: &str, node_id: &str) -> Option<ClusterView> {
        let lines = parse_cluster_nodes(nodes).ok()?;
        let me = lines.iter().find(|l| l.id == node_id)?;
        Some(ClusterView {
            node_id: node_id.to_owned(),
            role: if me.is_replica() {
                Role::Replica
            } else {
                Role::Master
            },
            slots: me.shard_slots(&lines),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30004@40004 slave 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922 12000 [12001->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [12001-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
";

    #[test]
    fn a_master_serves_its_own_slots() {
        let me = ClusterView::parse(NODES, "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f").unwrap();
        assert_eq!(me.role, Role::Master);
        assert_eq!(
            me.slots,
            [SlotRange {
                start: 0,
                end: 5460
            }]
        );
    }

    #[test]
    fn a_replica_serves_its_masters_slots() {
        let me = ClusterView::parse(NODES, "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca").unwrap();
        assert_eq!(me.role, Role::Replica);
        assert_eq!(
            me.slots,
            [
                SlotRange {
                    start: 5461,
                    end: 10922
                },
                SlotRange {
                    start: 12000,
                    end: 12000
                }
            ]
        );
    }

    #[test]
    fn unknown_nodes_and_odd_fields() {
        assert_eq!(ClusterView::parse(NODES, "nobody"), None);
        let bad_slot = format!("{NODES}abc 127.0.0.1:1@2 master - 0 0 1 connected 10-5\n");
        assert_eq!(
            ClusterView::parse(&bad_slot, "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"),
            None,
            "a malformed reply is no view"
        );
        let lone = "abc 127.0.0.1:1@2 myself,master - 0 0 1 connected\n";
        assert_eq!(ClusterView::parse(lone, "abc").unwrap().slots, []);
    }
}
