"""``redis_hotkey.RedisCluster``: one router per shard, each following its master's module on
the shard's sharded channel; hot reads served from the cache or the shard's replicas."""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster as PlainCluster

import redis_hotkey
from conftest import Servers, wait_until
from helpers import CACHE_TTL, NO_CACHE
from servers import Cluster


def clients(
    cluster: Cluster, options: redis_hotkey.Options | None = None
) -> tuple[PlainCluster, redis_hotkey.RedisCluster]:
    plain = PlainCluster(
        startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in cluster.startup_nodes]
    )
    routed = redis_hotkey.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in cluster.startup_nodes],
        hotkey=options,
    )
    routed.hotkey_start()
    wait_until("every shard's router is synced", routed.hotkey_synced)
    return plain, routed


def pin(plain: PlainCluster, key: str) -> None:
    """``HOTKEY.PIN`` on the master that serves ``key`` (the module declares its key)."""
    node = plain.nodes_manager.get_node_from_slot(plain.keyslot(key))
    plain.execute_command("HOTKEY.PIN", key, target_nodes=node)


# Keys of three different slots, and so (3 masters) of different shards.
KEYS = ("a", "b", "c")


def test_hot_keys_of_every_shard_are_cached(servers: Servers) -> None:
    cluster = servers.cluster(3, 0, [CACHE_TTL])
    plain, routed = clients(cluster)
    shards = {plain.nodes_manager.get_node_from_slot(plain.keyslot(k)).name for k in KEYS}
    assert len(shards) == 3, "the keys are on three shards"
    for key in KEYS:
        plain.set(key, f"v-{key}")
        pin(plain, key)
    wait_until(
        "every key cached", lambda: all(routed.hotkey_route("GET", k) == "cache" for k in KEYS)
    )
    for _ in range(3):
        for key in KEYS:
            assert routed.get(key) == f"v-{key}".encode()
    m = routed.hotkey_metrics()
    assert (m.cache_misses, m.cache_hits) == (3, 6)
    assert routed.hotkey_route("GET", "cold") == "master"
    assert routed.get("cold") is None
    # Another client writes: the shard's master invalidates the router's copy.
    plain.set("b", "new")
    wait_until("the new value", lambda: routed.get("b") == b"new")
    routed.set("c", "mine")
    assert routed.get("c") == b"mine"
    routed.close()


def test_hot_reads_go_to_the_shard_replica(servers: Servers) -> None:
    cluster = servers.cluster(3, 1)
    plain, routed = clients(cluster, NO_CACHE)
    plain.set("a", "v")
    node = plain.nodes_manager.get_node_from_slot(plain.keyslot("a"))
    plain.execute_command("WAIT", 1, 5000, target_nodes=node)
    pin(plain, "a")
    wait_until("a to a replica", lambda: routed.hotkey_route("GET", "a") == "replica")
    for _ in range(5):
        assert routed.get("a") == b"v"
    m = routed.hotkey_metrics()
    assert m.replica == 5
    routed.close()
