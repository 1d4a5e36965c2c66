"""``redis_hotkey.asyncio.Redis``: the same routing, cache and link as the sync client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio.sentinel

import redis_hotkey
import redis_hotkey.asyncio
from conftest import WAIT, Servers
from helpers import CACHE_TTL, NO_CACHE, pin, set_replicated
from servers import Server


async def until(
    what: str, ready: Callable[[], bool | Awaitable[bool]], within: float = WAIT
) -> None:
    deadline = time.monotonic() + within
    while True:
        result = ready()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within}s for: {what}")
        await asyncio.sleep(0.02)


async def routed(
    server: Server, protocol: int, options: redis_hotkey.Options | None = None
) -> redis_hotkey.asyncio.Redis:
    client = redis_hotkey.asyncio.Redis(
        host="127.0.0.1", port=server.port, protocol=protocol, hotkey=options
    )
    await client.hotkey_start()
    await until("the router is synced", client.hotkey_synced)
    return client


def test_hot_reads_go_to_a_replica(servers: Servers, protocol: int) -> None:
    master, (replica,) = servers.replicated(n=1)
    set_replicated(master, "hot", "v", 1)

    async def body() -> None:
        client = await routed(master, protocol, NO_CACHE)
        await until(
            "a replica", lambda: client.hotkey_replicas() == [(f"127.0.0.1:{replica.port}", True)]
        )
        assert await client.get("cold") is None
        pin(master, "hot")
        await until("hot", lambda: client.hotkey_route("GET", "hot") == "replica")
        before = replica.calls("get")
        for _ in range(5):
            assert await client.get("hot") == b"v"
        assert replica.calls("get") - before == 5
        m = client.hotkey_metrics()
        assert (m.replica, m.master) == (5, 1)
        await client.aclose()

    asyncio.run(body())


def test_cache_hits_and_invalidation_by_another_client(servers: Servers, protocol: int) -> None:
    master = servers.master([CACHE_TTL])
    master.client().set("hot", "old")

    async def body() -> None:
        client = await routed(master, protocol)
        pin(master, "hot")
        await until("cached", lambda: client.hotkey_route("GET", "hot") == "cache")
        before = master.calls("get")
        # Concurrent misses share one fill.
        assert await asyncio.gather(*(client.get("hot") for _ in range(10))) == [b"old"] * 10
        assert master.calls("get") - before == 1
        m = client.hotkey_metrics()
        assert (m.cache_misses, m.cache_hits) == (1, 9)
        master.client().set("hot", "new")

        async def fresh() -> bool:
            return bool(await client.get("hot") == b"new")

        await until("the new value", fresh)
        assert client.hotkey_metrics().invalidations >= 1
        await until("a report", lambda: client.hotkey_metrics().reports >= 1)
        await client.aclose()

    asyncio.run(body())


def test_reads_after_own_writes_go_to_the_master(servers: Servers, protocol: int) -> None:
    master = servers.master([CACHE_TTL])

    async def body() -> None:
        client = await routed(master, protocol)
        for key in ("a", "b", "c"):
            pin(master, key)
        await until("cached", lambda: client.hotkey_route("GET", "a") == "cache")
        await client.set("a", "1")
        assert client.hotkey_route("GET", "a") == "master"
        pipe = client.pipeline()
        pipe.set("b", "2")
        pipe.get("c")
        assert await pipe.execute() == [True, None]
        assert client.hotkey_route("GET", "b") == "master"
        assert client.hotkey_route("GET", "c") == "cache"
        assert await client.get("b") == b"2"
        await client.aclose()

    asyncio.run(body())


def test_the_router_follows_a_restarted_master(servers: Servers, protocol: int) -> None:
    master = servers.master([CACHE_TTL])
    port = master.port

    async def body() -> None:
        client = await routed(master, protocol, redis_hotkey.Options(reconnect_max_delay=0.2))
        master.kill()
        await until("the router notices", lambda: not client.hotkey_synced())
        restarted = servers.master([CACHE_TTL], port=port)
        restarted.client().set("hot", "v")
        await until("synced again", client.hotkey_synced)
        pin(restarted, "hot")
        await until("cached", lambda: client.hotkey_route("GET", "hot") == "cache")
        assert await client.get("hot") == b"v"
        assert client.hotkey_metrics().connects >= 2
        await client.aclose()

    asyncio.run(body())


def test_the_router_follows_a_sentinel_failover(servers: Servers, protocol: int) -> None:
    master, (replica,) = servers.replicated([CACHE_TTL], n=1)
    sentinel = servers.sentinel(master, "hotkey-test")

    async def body() -> None:
        manager = redis.asyncio.sentinel.Sentinel([("127.0.0.1", sentinel.port)], protocol=protocol)
        cls = redis_hotkey.asyncio.Redis.using(redis_hotkey.Options(reconnect_max_delay=0.2))
        client = manager.master_for("hotkey-test", redis_class=cls)
        await client.hotkey_start()
        await until("synced", client.hotkey_synced)
        await client.set("hot", "v")
        pin(master, "hot")
        await until("cached", lambda: client.hotkey_route("GET", "hot") == "cache")
        master.kill()

        async def write_ok() -> bool:
            try:
                await client.set("after", "1")
                return True
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
                return False

        await until("a write succeeds on the promoted master", write_ok, within=60)
        await until("synced to the new master", client.hotkey_synced)
        assert await client.get("after") == b"1"
        pin(replica, "hot")
        await until("cached", lambda: client.hotkey_route("GET", "hot") == "cache")
        assert await client.get("hot") == b"v"
        await client.aclose()

    asyncio.run(body())
