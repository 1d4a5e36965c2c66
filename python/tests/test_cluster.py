"""``redis_hotkey.RedisCluster``: one router per shard, each following its master's module on
the shard's sharded channel; hot reads served from the cache or the shard's replicas."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster as PlainCluster

import redis_hotkey
from conftest import SLOWDOWN, WAIT, Servers, wait_until
from helpers import CACHE_TTL, NO_CACHE
from redis_hotkey._commands import keyless_group
from redis_hotkey._routes import parse_routes
from servers import Cluster, Server


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


def _next(pubsub: redis.client.PubSub, kind: str) -> dict[str, Any]:
    """The next message of type ``kind`` (``subscribe``, ``message``) on ``pubsub``, waiting up
    to 10 s for it; any other it reads on the way is named in the failure. (``get_message``
    may return None before its timeout: with redis-py 5.0 on Valkey 9.1.2 one call did.)"""
    deadline = time.monotonic() + 10
    other = []
    while (left := deadline - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)
        if message is not None and message["type"] == kind:
            found: dict[str, Any] = message
            return found
        other.append(message)
    raise AssertionError(f"no {kind} message within 10 s; read instead: {other}")


def _message(pubsub: redis.client.PubSub) -> bytes:
    """The data of the next published message on ``pubsub``."""
    data = _next(pubsub, "message")["data"]
    assert isinstance(data, bytes)
    return data


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


def test_the_router_follows_a_shard_failover(servers: Servers) -> None:
    # A short node timeout: the election after CLUSTER FAILOVER takes a few of them.
    cluster = servers.cluster(3, 1, [CACHE_TTL, ("heartbeat-ms", "200")], node_timeout_ms=1000)
    plain, routed = clients(cluster, redis_hotkey.Options(reconnect_max_delay=0.2))
    plain.set("a", "old")
    pin(plain, "a")
    wait_until("a cached", lambda: routed.hotkey_route("GET", "a") == "cache")
    assert routed.get("a") == b"old"
    master = plain.nodes_manager.get_node_from_slot(plain.keyslot("a"))
    replica = replica_of(cluster, master.port)
    replica.client().execute_command("CLUSTER", "FAILOVER")
    wait_until(
        "the replica is a master", lambda: replica.client().info()["role"] == "master", within=30
    )

    def write_ok() -> bool:
        try:
            routed.set("a", "new")
            return True
        except redis.RedisError:
            return False

    wait_until("a write reaches the new master", write_ok)
    assert routed.get("a") == b"new"
    replica.client().execute_command("HOTKEY.PIN", "a")
    wait_until("a cached again", lambda: routed.hotkey_route("GET", "a") == "cache")
    plain.set("a", "newer")
    wait_until("the newer value", lambda: routed.get("a") == b"newer")
    routed.close()


def replica_of(cluster: Cluster, port: int) -> Server:
    """The node that replicates the master at ``port``."""
    return next(
        n for n in cluster.nodes
        if n.client().info("replication").get("master_port") == port
    )  # fmt: skip


def node_of(cluster: Cluster, plain: PlainCluster, key: str) -> Server:
    """The node that serves ``key``, as ``plain``'s slot map says."""
    port = plain.nodes_manager.get_node_from_slot(plain.keyslot(key)).port
    return next(n for n in cluster.nodes if n.port == port)


def role(node: Server) -> str:
    """``ROLE``'s first word on ``node``: ``master`` or ``slave``."""
    return bytes(node.client().execute_command("ROLE")[0]).decode()


def manual_failover(replica: Server, master: Server) -> None:
    """``CLUSTER FAILOVER`` on ``replica``, asked again until it is the master and ``master`` its
    replica: a manual failover that got no votes gives up after 5 s."""
    deadline = time.monotonic() + 2 * WAIT * SLOWDOWN
    while True:
        replica.client().execute_command("CLUSTER", "FAILOVER")
        asked = time.monotonic()
        while time.monotonic() - asked < 6:
            if role(replica) == "master" and role(master) == "slave":
                return
            time.sleep(0.05)
        assert time.monotonic() < deadline, f"port {replica.port} did not take over"


def test_writes_through_a_manual_failover_leak_no_error(servers: Servers) -> None:
    # The old master holds writes while it hands over, then answers MOVED: the router follows
    # it, and its caller sees only the write's reply.
    cluster = servers.cluster(3, 1, node_timeout_ms=1000)
    plain, routed = clients(cluster, redis_hotkey.Options(reconnect_max_delay=0.2))
    master = node_of(cluster, plain, "counter")
    replica = replica_of(cluster, master.port)
    acked: list[int] = []
    errors: list[redis.RedisError] = []
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            try:
                acked.append(routed.incr("counter"))
            except redis.RedisError as e:
                errors.append(e)
            time.sleep(0.005)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait_until("writes before the failover", lambda: len(acked) >= 20)
        manual_failover(replica, master)
        after = len(acked)
        wait_until("writes after the failover", lambda: len(acked) >= after + 20)
    finally:
        stop.set()
        writer.join()
    assert not errors, f"a manual failover leaks errors: {errors}"
    assert all(a < b for a, b in itertools.pairwise(acked)), acked
    # The last acknowledged write is on the new master.
    assert replica.client().get("counter") == str(acked[-1]).encode()
    routed.close()


def test_events_of_another_node_are_not_applied(servers: Servers) -> None:
    # No heartbeat for a minute, and no resync on silence: the router's seq stays where the
    # test left it.
    cluster = servers.cluster(3, 0, [("heartbeat-ms", "60000")])
    plain, routed = clients(cluster, redis_hotkey.Options(heartbeat_timeout=60.0))
    name = plain.nodes_manager.get_node_from_slot(plain.keyslot("a")).name
    router = routed._hotkey_routers[name]
    node = next(n for n in cluster.nodes if name.endswith(f":{n.port}"))
    routes = parse_routes(node.client().execute_command("HOTKEY.ROUTES"))
    assert routes.node_id is not None and routes.sharded
    before = router.metrics().resyncs
    seq = router.core.table.seq

    def hot(key: str, node_id: str, run_id: str) -> str:
        fields = {"v": 1, "seq": seq + 1, "run_id": run_id, "ts_ms": 0, "node_id": node_id}
        advice = {"db": 0, "key": key, "reads_to": "master", "cache_ttl_ms": 0}
        return json.dumps({**fields, "event": "hot", **advice})

    publisher = node.client()
    # Another node's count: a new run id and the next seq, neither of them this node's.
    publisher.execute_command("SPUBLISH", routes.channel, hot("theirs", "0" * 40, "f" * 40))
    publisher.execute_command(
        "SPUBLISH", routes.channel, hot("mine", routes.node_id, routes.run_id)
    )
    wait_until("the node's own event applies", lambda: b"mine" in router.hot_keys())
    assert b"theirs" not in router.hot_keys()
    assert router.metrics().resyncs == before
    routed.close()


def test_a_pipelines_writes_are_read_back_from_their_masters(servers: Servers) -> None:
    cluster = servers.cluster(3, 0, [CACHE_TTL])
    plain, routed = clients(cluster, redis_hotkey.Options(read_your_writes=60.0))
    for key in KEYS:
        plain.set(key, "old")
        pin(plain, key)
    wait_until(
        "every key cached", lambda: all(routed.hotkey_route("GET", k) == "cache" for k in KEYS)
    )
    assert [routed.get(k) for k in KEYS] == [b"old"] * 3
    pipe = routed.pipeline()
    for key in KEYS:
        pipe.set(key, f"new-{key}")
    pipe.get("cold")
    assert pipe.execute() == [True, True, True, None]
    # Each shard's router knows its key was written: read from the master, not the cache
    # (whose invalidation may not have arrived yet).
    assert [routed.hotkey_route("GET", k) for k in KEYS] == ["master"] * 3
    assert [routed.get(k) for k in KEYS] == [f"new-{k}".encode() for k in KEYS]
    assert routed.hotkey_route("GET", "cold") == "master"
    routed.close()


def test_keyless_commands_see_every_shard(servers: Servers) -> None:
    # The groups of the one keyless rule (_commands.keyless_group, protocol/src/keyless.rs),
    # as the routed client answers them on three masters.
    cluster = servers.cluster(3, 0)
    _, routed = clients(cluster)
    assert keyless_group([b"DBSIZE"]) == "all_masters:sum"
    assert keyless_group([b"KEYS", b"*"]) == "all_masters:concat"
    assert keyless_group([b"FLUSHALL"]) == keyless_group([b"FLUSHDB"]) == "all_masters:all_ok"
    assert keyless_group([b"PING"]) == keyless_group([b"SCRIPT", b"LOAD", b"x"]) == "all_nodes"
    assert keyless_group([b"RANDOMKEY"]) == "random_master"
    for key in KEYS:
        routed.set(key, "v")
    assert routed.dbsize() == 3
    assert sorted(routed.keys("*")) == [b"a", b"b", b"c"]
    assert routed.randomkey() in (b"a", b"b", b"c")
    # PUBLISH on a random master: the cluster carries it to every node's subscribers; the
    # reply counts the subscribers of the node that took it.
    assert keyless_group([b"PUBLISH", b"news", b"m"]) == "random_master"
    subscribers = [node.client().pubsub() for node in cluster.nodes]
    for pubsub in subscribers:
        pubsub.subscribe("news")
        _next(pubsub, "subscribe")
    assert [routed.publish("news", str(n)) for n in range(3)] == [1, 1, 1]
    for pubsub in subscribers:
        # Published on different nodes, they may arrive in any order.
        got = sorted(_message(pubsub) for _ in range(3))
        assert got == [b"0", b"1", b"2"], "every node's subscriber gets every message"
        pubsub.close()
    assert routed.ping() is True
    sha = routed.script_load("return 1")
    for node in cluster.nodes:
        assert node.client().script_exists(sha) == [True]
    assert routed.script_flush() is True
    for node in cluster.nodes:
        assert node.client().script_exists(sha) == [False]
    assert routed.flushall() is True
    assert routed.dbsize() == 0
    routed.set("b", "v")
    assert routed.flushdb() is True
    assert [n.client().dbsize() for n in cluster.nodes] == [0, 0, 0]
    routed.close()


def test_keyless_commands_the_rule_refuses_name_themselves(servers: Servers) -> None:
    # The rule's refused group is not sent (the Rust router's NotRouted); a call that picks its
    # nodes, and redis-py's CLUSTER commands, go where redis-py sends them.
    cluster = servers.cluster(3, 0)
    _, routed = clients(cluster)
    refused: list[tuple[str, Callable[[], Any]]] = [
        ("INFO", routed.info),
        ("CONFIG", lambda: routed.config_get("maxmemory")),
        ("WAIT", lambda: routed.execute_command("WAIT", 0, 0)),
        ("SELECT", lambda: routed.execute_command("SELECT", 0)),
        ("TIME", routed.time),
        ("PUBSUB", routed.pubsub_channels),
    ]
    for name, call in refused:
        with pytest.raises(redis_hotkey.NotRouted, match=f"^{name}: not routed on a cluster"):
            call()
    masters = routed.get_primaries()
    infos = routed.info("server", target_nodes=masters)
    assert sorted(infos) == sorted(n.name for n in masters)
    one = routed.config_get("maxmemory", target_nodes=masters[0])
    assert set(one) == {"maxmemory"}
    assert routed.execute_command("WAIT", 0, 0, target_nodes=masters[0]) == 0
    assert routed.cluster_info()["cluster_state"] == "ok"
    assert routed.cluster_keyslot("a") == routed.keyslot("a")
    routed.close()


def test_keyless_commands_in_a_pipeline_follow_the_rule(servers: Servers) -> None:
    # As single calls do: each of the rule's groups answers its merged reply at its place in
    # the pipeline's replies; a refused command raises NotRouted when queued, and the pipeline
    # keeps what was queued before it. (redis-py's pipeline blocks dbsize(), keys()...; with
    # execute_command(), redis-py 8 answers DBSIZE from one node and redis-py 5.0 refuses
    # FLUSHALL and SCRIPT LOAD: "Too many targets".)
    cluster = servers.cluster(3, 0)
    _, routed = clients(cluster)
    pipe = routed.pipeline()
    for key in KEYS:
        pipe.set(key, "v")
    pipe.dbsize().keys("*").ping().randomkey().script_load("return 1").get("a")
    replies = pipe.execute()
    assert replies[:3] == [True, True, True]
    dbsize, keys, ping, randomkey, sha, value = replies[3:]
    assert dbsize == routed.dbsize() == 3
    assert sorted(keys) == [b"a", b"b", b"c"]
    assert ping is True
    assert randomkey in (b"a", b"b", b"c")
    assert sha == routed.script_load("return 1")
    for node in cluster.nodes:
        assert node.client().script_exists(sha) == [True]
    assert value == b"v"
    # SCAN takes the step of the cluster cursor that a single call takes.
    cursor, scanned = 0, []
    while True:
        (cursor, keys), value = pipe.scan(cursor).get("a").execute()
        scanned += keys
        if cursor == 0:
            break
    assert sorted(scanned) == [b"a", b"b", b"c"]
    pipe.script_flush().flushall().dbsize().set("b", "v").flushdb()
    assert pipe.execute() == [True, True, 0, True, True]
    assert [n.client().dbsize() for n in cluster.nodes] == [0, 0, 0]
    pipe.set("a", "v")
    refused: list[tuple[str, Callable[[], Any]]] = [
        ("INFO", lambda: pipe.execute_command("INFO")),
        ("CONFIG", lambda: pipe.execute_command("CONFIG", "GET", "maxmemory")),
        ("TIME", lambda: pipe.execute_command("TIME")),
        ("WAIT", lambda: pipe.execute_command("WAIT", 0, 0)),
    ]
    for name, queue in refused:
        with pytest.raises(redis_hotkey.NotRouted, match=f"^{name}: not routed on a cluster"):
            queue()
    assert pipe.get("a").execute() == [True, b"v"]
    # An error is numbered by its place among the commands queued, not among the copies sent.
    pipe.dbsize().incr("a")
    dbsize, error = pipe.execute(raise_on_error=False)
    assert dbsize == 1
    assert isinstance(error, redis.ResponseError)
    with pytest.raises(redis.ResponseError, match=r"^Command # 2 of pipeline caused error"):
        pipe.dbsize().incr("a").execute()
    routed.close()


def test_scan_goes_over_every_master_with_one_cursor(servers: Servers) -> None:
    cluster = servers.cluster(3, 0)
    plain, routed = clients(cluster)
    strings = sorted(f"k{i}".encode() for i in range(200))
    hashes = sorted(f"hash:{i}".encode() for i in range(20))
    for key in strings:
        plain.set(key, "v")
    for key in hashes:
        plain.hset(key, "f", "v")
    masters = sorted(routed.get_primaries(), key=lambda n: min(slots_of(routed)[n.name]))
    lowest = [min(slots_of(routed)[n.name]) for n in masters]
    assert lowest[0] == 0
    # Cursor by cursor: the slot part names the shard, the shards come in slot order, and each
    # key comes once.
    seen: list[Any] = []
    shards: list[int] = []
    cursor = 0
    while True:
        cursor, keys = routed.scan(cursor, count=10)
        seen += keys
        if cursor == 0:
            break
        slot, node_cursor = cursor & 0x3FFF, cursor >> 14
        owner = routed.nodes_manager.get_node_from_slot(slot).name
        shards.append(next(i for i, n in enumerate(masters) if n.name == owner))
        if node_cursor == 0:
            assert slot in lowest, "a shard starts at its lowest slot"
    assert sorted(seen) == sorted(strings + hashes), "a full SCAN returns each key once"
    assert shards == sorted(shards) and set(shards) == {0, 1, 2}
    assert sorted(routed.scan_iter()) == sorted(strings + hashes)
    assert sorted(routed.scan_iter(match="hash:*")) == hashes
    assert sorted(routed.scan_iter(_type="hash", count=5)) == hashes
    with pytest.raises(redis.ResponseError, match=r"^invalid cursor$"):
        routed.execute_command("SCAN", "x1")
    # Picking the nodes is redis-py's scan: one cursor per node.
    per_node: Any = routed.scan(0, count=1000, target_nodes=masters[0])
    cursors, keys = per_node
    assert list(cursors) == [masters[0].name] and keys
    assert sorted(routed.scan_iter(target_nodes=masters)) == sorted(strings + hashes)
    routed.close()


def slots_of(client: Any) -> dict[str, list[int]]:
    """Each master's slots (name → slots), from the client's slot map."""
    slots: dict[str, list[int]] = {}
    for slot, nodes in client.nodes_manager.slots_cache.items():
        slots.setdefault(nodes[0].name, []).append(slot)
    return slots
