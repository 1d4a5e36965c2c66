//! The module in a Redis Cluster: each node names itself, each shard's events stay in the
//! shard (sharded pub/sub on a channel in one of its slots), keys of other shards are
//! redirected, and hot keys follow their slots through migration and failover.

use std::time::Duration;

use hotkey_protocol::cluster::{key_slot, serves};
use hotkey_protocol::{Event, Message, Role, Routes};
use hotkey_testkit::{ChannelListener, Cluster, Node, info_hotkey, load};
use redis::Connection;

fn routes(conn: &mut Connection) -> Routes {
    let v: redis::Value = redis::cmd("HOTKEY.ROUTES").query(conn).expect("ROUTES");
    Routes::from_redis(&v).expect("a ROUTES reply")
}

/// A subscriber to the events of `node`'s shard, on the channel `node` names once it serves
/// slots (a promoted replica claims them just after it becomes master; the module reads its
/// place again at every tick until then).
fn listen(node: &Node) -> (ChannelListener, Routes) {
    let r =
        hotkey_testkit::wait_until("HOTKEY.ROUTES naming slots", Duration::from_secs(3), || {
            let r = routes(&mut node.conn());
            if r.cluster.as_ref().is_some_and(|c| !c.slots.is_empty()) {
                Ok(r)
            } else {
                Err(format!("{r:?}"))
            }
        });
    assert!(r.sharded, "a cluster node names a sharded channel: {r:?}");
    (ChannelListener::new(&node.addr(), &r.channel, true), r)
}

fn a_cluster() -> Cluster {
    Cluster::builder(3, 1)
        .module_arg("heartbeat-ms", "200")
        .module_arg("hot-threshold", "500")
        .module_arg("cooldown-ms", "500")
        .start()
}

/// A key whose slot `node` serves.
fn key_on(cluster: &Cluster, node: &Node, prefix: &str) -> Vec<u8> {
    (0..)
        .map(|i| format!("{prefix}:{i}").into_bytes())
        .find(|k| cluster.node_for_key(k).id == node.id)
        .expect("some key lands on every master")
}

fn is_hot_key(m: &Message, key: &[u8]) -> bool {
    matches!(&m.event, Event::Hot(k) if k.key.bytes().ok().as_deref() == Some(key))
}

fn is_cold_key(m: &Message, key: &[u8]) -> bool {
    matches!(&m.event, Event::Cold(k) if k.key.bytes().ok().as_deref() == Some(key))
}

#[test]
fn each_shard_speaks_for_itself_on_its_own_channel() {
    let cluster = a_cluster();
    let masters = cluster.masters();
    // Identity: every node names itself, its role and its shard's slots.
    for node in cluster.nodes() {
        let r = routes(&mut node.conn());
        let me = r
            .cluster
            .clone()
            .unwrap_or_else(|| panic!("no node_id: {r:?}"));
        assert_eq!(me.node_id, node.id);
        let master = masters
            .iter()
            .find(|m| m.id == node.id || cluster.replicas(m).iter().any(|rep| rep.id == node.id))
            .expect("a master or a replica");
        assert_eq!(
            r.role,
            if master.id == node.id {
                Role::Master
            } else {
                Role::Replica
            }
        );
        assert!(!me.slots.is_empty());
        for range in &me.slots {
            assert_eq!(cluster.node_for_slot(range.start).id, master.id);
            assert_eq!(cluster.node_for_slot(range.end).id, master.id);
        }
        assert!(
            serves(&me.slots, key_slot(r.channel.as_bytes())),
            "{}",
            r.channel
        );
        assert_eq!(info_hotkey(&mut node.conn())["internal_errors"], "0");
    }
    // Events: a subscriber of each shard hears only its own master, and the replica names the
    // same channel as its master.
    let listeners: Vec<(ChannelListener, Routes, &Node)> = masters
        .iter()
        .map(|m| {
            let replica = cluster.replicas(m)[0];
            let on_replica = routes(&mut replica.conn());
            let (l, r) = listen(m);
            assert_eq!(on_replica.channel, r.channel, "master and replica agree");
            (l, r, *m)
        })
        .collect();
    let classic = ChannelListener::new(&masters[0].addr(), "__hotkey__", false);
    for (listener, r, master) in &listeners {
        let heard = listener.collect_for(Duration::from_millis(1200));
        let heartbeats = heard
            .iter()
            .filter(|m| matches!(m, Ok(m) if matches!(m.event, Event::Heartbeat(_))))
            .count();
        assert!(heartbeats >= 3, "heartbeats every 200 ms: {heard:?}");
        for m in &heard {
            let m = m.as_ref().unwrap_or_else(|raw| panic!("unreadable: {raw}"));
            assert_eq!(m.node_id.as_deref(), Some(master.id.as_str()), "{m:?}");
            assert_eq!(m.role, Some(Role::Master));
            assert_eq!(m.run_id, r.run_id, "one run per channel");
        }
        let seqs: Vec<u64> = heard.iter().flatten().map(|m| m.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "no gaps: {seqs:?}"
        );
    }
    assert!(
        classic.collect_for(Duration::from_millis(300)).is_empty(),
        "nothing goes out on the classic channel, which the bus would broadcast"
    );

    // ROUTE declares its key: another shard's key is redirected.
    let there = key_on(&cluster, masters[1], "elsewhere");
    let err = redis::cmd("HOTKEY.ROUTE")
        .arg(&there)
        .query::<redis::Value>(&mut masters[0].conn())
        .expect_err("a key of another shard");
    assert_eq!(err.code(), Some("MOVED"), "{err}");
    let text = err.to_string();
    assert!(text.contains(&masters[1].port.to_string()), "{text}");

    // Hot keys on two shards at once, each announced on its own shard's channel only.
    let a = key_on(&cluster, masters[0], "hot-a");
    let b = key_on(&cluster, masters[1], "hot-b");
    let loads: Vec<_> = [(a.clone(), masters[0]), (b.clone(), masters[1])]
        .into_iter()
        .map(|(key, node)| {
            let mut conn = node.conn();
            std::thread::spawn(move || load(&mut conn, &key, 3000, Duration::from_secs(2)))
        })
        .collect();
    let hot_a = listeners[0]
        .0
        .wait_for(Duration::from_secs(5), |m| is_hot_key(m, &a));
    let hot_b = listeners[1]
        .0
        .wait_for(Duration::from_secs(5), |m| is_hot_key(m, &b));
    assert!(
        hot_a.is_some() && hot_b.is_some(),
        "each shard detects its own key"
    );
    for l in loads {
        l.join().expect("load");
    }
    let keys = |node: &Node| -> Vec<Vec<u8>> {
        routes(&mut node.conn())
            .keys
            .into_iter()
            .map(|k| k.key)
            .collect()
    };
    assert!(keys(masters[0]).contains(&a) && !keys(masters[0]).contains(&b));
    assert!(keys(masters[1]).contains(&b) && !keys(masters[1]).contains(&a));
    let third: Vec<_> = listeners[2].0.collect_for(Duration::from_millis(300));
    assert!(
        third
            .iter()
            .flatten()
            .all(|m| matches!(m.event, Event::Heartbeat(_))),
        "the third shard hears nothing of the others' keys: {third:?}"
    );

    // Pinned and hot, then its slot moves away: it leaves the old owner with a cold event.
    hotkey_testkit::pin(&mut masters[0].conn(), &a, &[]);
    cluster.migrate_slot(key_slot(&a), masters[0], masters[2]);
    let cold = listeners[0]
        .0
        .wait_for(Duration::from_secs(5), |m| is_cold_key(m, &a));
    assert!(cold.is_some(), "the old owner announces the moved key cold");
    assert!(
        !keys(masters[0]).contains(&a),
        "no route for a key it no longer owns"
    );
    let err = redis::cmd("HOTKEY.ROUTE")
        .arg(&a)
        .query::<redis::Value>(&mut masters[0].conn())
        .expect_err("moved");
    assert_eq!(err.code(), Some("MOVED"), "{err}");

    // REPORT counts only the shard's own keys.
    let counted: i64 = redis::cmd("HOTKEY.REPORT")
        .arg(&b)
        .arg(5)
        .arg(&a)
        .arg(5)
        .query(&mut masters[1].conn())
        .expect("REPORT");
    assert_eq!(counted, 1, "a key of another shard is not counted");
}

#[test]
fn a_promoted_replica_takes_over_with_its_own_run() {
    let cluster = Cluster::builder(3, 1)
        .module_arg("heartbeat-ms", "200")
        .server_args(&["--cluster-node-timeout", "1000"])
        .start();
    let master = cluster.masters()[0];
    let replica = cluster.replicas(master)[0];
    let before = routes(&mut master.conn());
    let on_replica = routes(&mut replica.conn());
    assert_eq!(on_replica.role, Role::Replica);
    assert_ne!(
        on_replica.run_id, before.run_id,
        "each node runs its own module"
    );

    // A manual failover: the replica becomes the master, its module speaks for the shard.
    let () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut replica.conn())
        .expect("CLUSTER FAILOVER");
    let promoted = cluster.wait_for_failover(master);
    assert_eq!(promoted.id, replica.id);
    let (listener, after) = listen(promoted);
    assert_eq!(after.role, Role::Master);
    assert_eq!(
        after.run_id, on_replica.run_id,
        "the same module, now the master"
    );
    assert_eq!(
        after.cluster.as_ref().map(|c| c.slots.clone()),
        before.cluster.map(|c| c.slots)
    );
    let heard = listener
        .wait_for(Duration::from_secs(3), |m| {
            m.node_id.as_deref() == Some(promoted.id.as_str()) && m.role == Some(Role::Master)
        })
        .expect("the promoted node publishes for the shard");
    assert_eq!(heard.run_id, after.run_id);
    drop(listener);

    // A killed master: its replica is elected and takes over.
    let victim = cluster.masters()[1];
    let heir = cluster.replicas(victim)[0];
    let heir_run = routes(&mut heir.conn()).run_id;
    cluster.kill(victim);
    let successor = cluster.wait_for_failover(victim);
    assert_eq!(successor.id, heir.id);
    let (listener, r) = listen(successor);
    assert_eq!(r.role, Role::Master);
    assert_eq!(r.run_id, heir_run);
    assert!(
        listener
            .wait_for(Duration::from_secs(3), |m| m.node_id.as_deref()
                == Some(heir.id.as_str()))
            .is_some(),
        "the elected replica publishes for the shard"
    );
}
