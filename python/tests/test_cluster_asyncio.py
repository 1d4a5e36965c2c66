"""``redis_hotkey.asyncio.RedisCluster``: the sync cluster client's routing, cache,
read-your-writes, failover and slot moves, on asyncio."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
from redis.cluster import RedisCluster as PlainCluster

import redis_hotkey
import redis_hotkey.asyncio
from conftest import Servers, wait_until
from helpers import CACHE_TTL, NO_CACHE
from servers import Cluster, Server
from test_asyncio import until
from test_cluster import KEYS, manual_failover, node_of, pin, replica_of


async def clients(
    cluster: Cluster, options: redis_hotkey.Options | None = None
) -> tuple[PlainCluster, redis_hotkey.asyncio.RedisCluster]:
    nodes = cluster.startup_nodes
    plain = PlainCluster(startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in nodes])
    routed = redis_hotkey.asyncio.RedisCluster(
        startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in nodes],
        hotkey=options,
    )
    await routed.hotkey_start()
    await until("every shard's router is synced", routed.hotkey_synced)
    return plain, routed


def test_hot_keys_of_every_shard_are_cached(servers: Servers) -> None:
    cluster = servers.cluster(3, 0, [CACHE_TTL])

    async def body() -> None:
        plain, routed = await clients(cluster)
        for key in KEYS:
            plain.set(key, f"v-{key}")
            pin(plain, key)
        await until(
            "every key cached",
            lambda: all(routed.hotkey_route("GET", k) == "cache" for k in KEYS),
        )
        for _ in range(3):
            for key in KEYS:
                assert await routed.get(key) == f"v-{key}".encode()
        m = routed.hotkey_metrics()
        assert (m.cache_misses, m.cache_hits) == (3, 6)
        assert await routed.get("cold") is None
        plain.set("b", "new")

        async def new_value() -> bool:
            return await routed.get("b") == b"new"

        await until("the new value", new_value)
        # Read-your-writes: this client's write is read back at once.
        await routed.set("c", "mine")
        assert routed.hotkey_route("GET", "c") == "master"
        assert await routed.get("c") == b"mine"
        await routed.aclose()

    asyncio.run(body())


def test_hot_reads_go_to_the_shard_replica(servers: Servers) -> None:
    cluster = servers.cluster(3, 1)

    async def body() -> None:
        plain, routed = await clients(cluster, NO_CACHE)
        plain.set("a", "v")
        node = plain.nodes_manager.get_node_from_slot(plain.keyslot("a"))
        plain.execute_command("WAIT", 1, 5000, target_nodes=node)
        pin(plain, "a")
        await until("a to a replica", lambda: routed.hotkey_route("GET", "a") == "replica")
        for _ in range(5):
            assert await routed.get("a") == b"v"
        assert routed.hotkey_metrics().replica == 5
        await routed.aclose()

    asyncio.run(body())


def test_a_pipelines_writes_are_read_back_from_their_masters(servers: Servers) -> None:
    cluster = servers.cluster(3, 0, [CACHE_TTL])

    async def body() -> None:
        plain, routed = await clients(cluster, redis_hotkey.Options(read_your_writes=60.0))
        for key in KEYS:
            plain.set(key, "old")
            pin(plain, key)
        await until(
            "every key cached",
            lambda: all(routed.hotkey_route("GET", k) == "cache" for k in KEYS),
        )
        assert [await routed.get(k) for k in KEYS] == [b"old"] * 3
        pipe = routed.pipeline()
        for key in KEYS:
            pipe.set(key, f"new-{key}")
        pipe.get("cold")
        assert await pipe.execute() == [True, True, True, None]
        assert [routed.hotkey_route("GET", k) for k in KEYS] == ["master"] * 3
        assert [await routed.get(k) for k in KEYS] == [f"new-{k}".encode() for k in KEYS]
        await routed.aclose()

    asyncio.run(body())


def test_the_router_follows_a_shard_failover(servers: Servers) -> None:
    # A short node timeout: the election after CLUSTER FAILOVER takes a few of them.
    cluster = servers.cluster(3, 1, [CACHE_TTL, ("heartbeat-ms", "200")], node_timeout_ms=1000)

    async def body() -> None:
        plain, routed = await clients(cluster, redis_hotkey.Options(reconnect_max_delay=0.2))
        plain.set("a", "old")
        pin(plain, "a")
        await until("a cached", lambda: routed.hotkey_route("GET", "a") == "cache")
        assert await routed.get("a") == b"old"
        master = plain.nodes_manager.get_node_from_slot(plain.keyslot("a"))
        replica = replica_of(cluster, master.port)
        replica.client().execute_command("CLUSTER", "FAILOVER")
        wait_until(
            "the replica is a master",
            lambda: replica.client().info()["role"] == "master",
            within=30,
        )

        async def write_ok() -> bool:
            try:
                await routed.set("a", "new")
                return True
            except redis.RedisError:
                return False

        await until("a write reaches the new master", write_ok)
        assert await routed.get("a") == b"new"
        replica.client().execute_command("HOTKEY.PIN", "a")
        await until("a cached again", lambda: routed.hotkey_route("GET", "a") == "cache")
        plain.set("a", "newer")

        async def newer() -> bool:
            return await routed.get("a") == b"newer"

        await until("the newer value", newer)
        await routed.aclose()

    asyncio.run(body())


def test_writes_through_a_manual_failover_leak_no_error(servers: Servers) -> None:
    # As the sync client's test: the old master holds writes while it hands over, then answers
    # MOVED; the caller sees only the write's reply.
    cluster = servers.cluster(3, 1, node_timeout_ms=1000)

    async def body() -> None:
        plain, routed = await clients(cluster, redis_hotkey.Options(reconnect_max_delay=0.2))
        master = node_of(cluster, plain, "counter")
        replica = replica_of(cluster, master.port)
        acked: list[int] = []
        errors: list[redis.RedisError] = []
        stop = asyncio.Event()

        async def write() -> None:
            while not stop.is_set():
                try:
                    acked.append(await routed.incr("counter"))
                except redis.RedisError as e:
                    errors.append(e)
                await asyncio.sleep(0.005)

        writer = asyncio.create_task(write())
        try:
            await until("writes before the failover", lambda: len(acked) >= 20)
            # In a thread: the writer goes on while the failover is waited for.
            await asyncio.to_thread(manual_failover, replica, master)
            after = len(acked)
            await until("writes after the failover", lambda: len(acked) >= after + 20)
        finally:
            stop.set()
            await writer
        assert not errors, f"a manual failover leaks errors: {errors}"
        assert all(a < b for a, b in itertools.pairwise(acked)), acked
        # The last acknowledged write is on the new master.
        assert replica.client().get("counter") == str(acked[-1]).encode()
        await routed.aclose()

    asyncio.run(body())


def setslot(node: Server, slot: int, how: str, owner: Server) -> None:
    owner_id = owner.client().execute_command("CLUSTER", "MYID")
    node.client().execute_command("CLUSTER", "SETSLOT", slot, how, owner_id)


def test_a_migrated_slot_is_read_from_its_new_master(servers: Servers) -> None:
    cluster = servers.cluster(3, 0, [CACHE_TTL])

    async def body() -> None:
        plain, routed = await clients(cluster)
        plain.set("a", "v1")
        pin(plain, "a")
        await until("a cached", lambda: routed.hotkey_route("GET", "a") == "cache")
        assert await routed.get("a") == b"v1"
        slot = plain.keyslot("a")
        source = node_of(cluster, plain, "a")
        target = node_of(cluster, plain, "b")
        assert source.port != target.port
        setslot(target, slot, "IMPORTING", source)
        setslot(source, slot, "MIGRATING", target)
        source.client().execute_command(
            "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", "a"
        )
        # Migrating: the write follows ASK to the importing master.
        await routed.set("a", "v2")
        for node in cluster.nodes:
            setslot(node, slot, "NODE", target)
        target.client().set("a", "v3")

        async def v3() -> bool:
            return await routed.get("a") == b"v3"

        await until("the new owner's value", v3)
        await routed.aclose()

    asyncio.run(body())


def test_keyless_commands_see_every_shard(servers: Servers) -> None:
    cluster = servers.cluster(3, 0)

    async def body() -> None:
        _, routed = await clients(cluster)
        for key in KEYS:
            await routed.set(key, "v")
        assert await routed.dbsize() == 3
        assert sorted(await routed.keys("*")) == [b"a", b"b", b"c"]
        assert await routed.randomkey() in (b"a", b"b", b"c")
        # redis-py 5.0's asyncio RedisCluster has no publish().
        assert await routed.execute_command("PUBLISH", "news", "nobody listens") == 0
        assert await routed.ping() is True
        assert await routed.flushall() is True
        assert [n.client().dbsize() for n in cluster.nodes] == [0, 0, 0]
        await routed.aclose()

    asyncio.run(body())


def test_keyless_commands_the_rule_refuses_name_themselves(servers: Servers) -> None:
    cluster = servers.cluster(3, 0)

    async def body() -> None:
        _, routed = await clients(cluster)
        refused: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("INFO", routed.info),
            ("CONFIG", lambda: routed.config_get("maxmemory")),
            ("WAIT", lambda: routed.execute_command("WAIT", 0, 0)),
        ]
        for name, call in refused:
            with pytest.raises(redis_hotkey.NotRouted, match=f"^{name}: not routed on a cluster"):
                await call()
        masters = routed.get_primaries()
        infos = await routed.info("server", target_nodes=masters)
        assert sorted(infos) == sorted(n.name for n in masters)
        assert await routed.execute_command("WAIT", 0, 0, target_nodes=masters[0]) == 0
        assert (await routed.cluster_info())["cluster_state"] == "ok"
        await routed.aclose()

    asyncio.run(body())


def test_keyless_commands_in_a_pipeline_follow_the_rule(servers: Servers) -> None:
    cluster = servers.cluster(3, 0)

    async def body() -> None:
        _, routed = await clients(cluster)
        pipe = routed.pipeline()
        for key in KEYS:
            pipe.set(key, "v")
        pipe.dbsize().keys("*").ping().randomkey().script_load("return 1").get("a")
        replies = await pipe.execute()
        assert replies[:3] == [True, True, True]
        dbsize, keys, ping, randomkey, sha, value = replies[3:]
        assert dbsize == await routed.dbsize() == 3
        assert sorted(keys) == [b"a", b"b", b"c"]
        assert ping is True
        assert randomkey in (b"a", b"b", b"c")
        for node in cluster.nodes:
            assert node.client().script_exists(sha) == [True]
        assert value == b"v"
        # SCAN takes the step of the cluster cursor that a single call takes.
        cursor, scanned = 0, []
        while True:
            (cursor, keys), value = await pipe.scan(cursor).get("a").execute()
            scanned += keys
            if cursor == 0:
                break
        assert sorted(scanned) == [b"a", b"b", b"c"]
        pipe.script_flush().flushall().dbsize().set("b", "v").flushdb()
        assert await pipe.execute() == [True, True, 0, True, True]
        assert [n.client().dbsize() for n in cluster.nodes] == [0, 0, 0]
        pipe.set("a", "v")
        for command in (("INFO",), ("CONFIG", "GET", "maxmemory"), ("TIME",), ("WAIT", 0, 0)):
            with pytest.raises(
                redis_hotkey.NotRouted, match=f"^{command[0]}: not routed on a cluster"
            ):
                pipe.execute_command(*command)
        assert await pipe.get("a").execute() == [True, b"v"]
        pipe.dbsize().incr("a")
        dbsize, error = await pipe.execute(raise_on_error=False)
        assert dbsize == 1
        assert isinstance(error, redis.ResponseError)
        with pytest.raises(redis.ResponseError, match=r"^Command # 2 of pipeline caused error"):
            await pipe.dbsize().incr("a").execute()
        await routed.aclose()

    asyncio.run(body())


def test_scan_goes_over_every_master_with_one_cursor(servers: Servers) -> None:
    cluster = servers.cluster(3, 0)

    async def body() -> None:
        plain, routed = await clients(cluster)
        strings = sorted(f"k{i}".encode() for i in range(200))
        hashes = sorted(f"hash:{i}".encode() for i in range(20))
        for key in strings:
            plain.set(key, "v")
        for key in hashes:
            plain.hset(key, "f", "v")
        seen: list[Any] = []
        cursor = 0
        while True:
            cursor, keys = await routed.scan(cursor, count=10)
            seen += keys
            if cursor == 0:
                break
        assert sorted(seen) == sorted(strings + hashes), "a full SCAN returns each key once"
        assert sorted([k async for k in routed.scan_iter()]) == sorted(strings + hashes)
        assert sorted([k async for k in routed.scan_iter(match="hash:*")]) == hashes
        with pytest.raises(redis.ResponseError, match=r"^invalid cursor$"):
            await routed.execute_command("SCAN", "x1")
        masters = routed.get_primaries()
        per_node = [k async for k in routed.scan_iter(target_nodes=masters)]
        assert sorted(per_node) == sorted(strings + hashes)
        await routed.aclose()

    asyncio.run(body())
