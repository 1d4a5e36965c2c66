"""The cache: hot keys only, served under the epoch it was filled under, invalidated by the
server's tracking when anyone writes, flushed when the control connection is replaced."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import redis_hotkey
from conftest import Servers, wait_until
from helpers import CACHE_TTL, pin, routed, wait_for_route
from servers import Server


def cached(
    servers: Servers, protocol: int, key: str, value: str
) -> tuple[Server, redis_hotkey.Redis]:
    """A master advising a minute of cache TTL, ``key`` = ``value`` on it and pinned, and a
    routed client that serves ``key`` from its cache."""
    master = servers.master([CACHE_TTL])
    master.client().set(key, value)
    client = routed(master, protocol)
    pin(master, key)
    wait_for_route(client, "cache", "GET", key)
    return master, client


def test_hot_reads_are_served_from_the_cache(servers: Servers, protocol: int) -> None:
    master, client = cached(servers, protocol, "hot", "v")
    before = master.calls("get")
    for _ in range(20):
        assert client.get("hot") == b"v"
    m = client.hotkey_metrics()
    assert master.calls("get") - before == m.cache_misses
    assert m.cache_misses == 1
    assert m.cache_hits == 19
    assert client.hotkey_route("GET", "cold") == "master"


def test_a_cache_hit_is_a_copy(servers: Servers, protocol: int) -> None:
    master, client = cached(servers, protocol, "lb", "unused")
    master.client().delete("lb")
    master.client().zadd("lb", {"ada": 1, "bob": 2})
    expected = master.client(protocol=protocol).zrevrange("lb", 0, 9, withscores=True)
    first: list[Any] = client.zrevrange("lb", 0, 9, withscores=True)
    first.append(("eve", 3.0))
    first[0] = ("mallory", 0.0)
    assert client.zrevrange("lb", 0, 9, withscores=True) == expected
    assert client.hotkey_metrics().cache_hits >= 1


def test_a_write_by_another_client_invalidates(servers: Servers, protocol: int) -> None:
    master, client = cached(servers, protocol, "hot", "old")
    assert client.get("hot") == b"old"
    assert client.get("hot") == b"old"
    master.client().set("hot", "new")
    wait_until("the router reads the new value", lambda: client.get("hot") == b"new")
    assert client.hotkey_metrics().invalidations >= 1


def test_reads_never_go_back_to_an_older_value(servers: Servers, protocol: int) -> None:
    """A fill that raced with a write is never served: under a writer, the values read through
    the cache only grow, and the last write is seen once it stops."""
    master, client = cached(servers, protocol, "counter", "0")
    stop = threading.Event()
    last: list[int] = [0]

    def write() -> None:
        writer = master.client()
        while not stop.is_set():
            last[0] = int(writer.incr("counter"))

    thread = threading.Thread(target=write)
    thread.start()
    seen: list[int] = []
    try:
        for _ in range(3000):
            seen.append(int(client.get("counter") or 0))
    finally:
        stop.set()
        thread.join()
    assert seen == sorted(seen), "a read went back to an older value"
    wait_until("the last write is read", lambda: int(client.get("counter") or 0) == last[0])
    m = client.hotkey_metrics()
    assert m.cache_hits > 0 and m.invalidations > 0


def test_the_cache_is_flushed_when_the_control_connection_is_replaced(
    servers: Servers, protocol: int
) -> None:
    master, client = cached(servers, protocol, "hot", "old")
    assert client.get("hot") == b"old"
    plain = master.client()
    # The control connection is the only pub/sub client: killing it loses the invalidations.
    plain.client_kill_filter(_type="pubsub")
    plain.set("hot", "new")
    wait_until("the router reconnects", lambda: client.hotkey_metrics().connects >= 2)
    assert client.get("hot") == b"new"
    wait_for_route(client, "cache", "GET", "hot")
    assert client.get("hot") == b"new"


def test_the_cache_can_be_turned_off(servers: Servers, protocol: int) -> None:
    master = servers.master([CACHE_TTL])
    client = routed(master, protocol, redis_hotkey.Options(cache=False))
    pin(master, "hot")
    wait_until("hot", lambda: b"hot" in client.hotkey_keys())
    assert client.hotkey_route("GET", "hot") == "master"
    client.get("hot")
    assert client.hotkey_metrics().cache_hits == 0


def test_an_entry_is_fetched_again_after_its_ttl(servers: Servers, protocol: int) -> None:
    master = servers.master([("cache-ttl-ms", "200")])
    master.client().set("hot", "v")
    client = routed(master, protocol)
    pin(master, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    assert client.get("hot") == b"v"
    assert client.get("hot") == b"v"
    assert client.hotkey_metrics().cache_misses == 1

    # Read on until a read is a miss again: with nothing written, only the TTL ends the entry.
    def missed_again() -> bool:
        assert client.get("hot") == b"v"
        return client.hotkey_metrics().cache_misses >= 2

    wait_until("a cache miss after the TTL", missed_again)
    metrics = client.hotkey_metrics()
    assert (metrics.cache_misses, metrics.invalidations, metrics.resyncs) == (2, 0, 0), metrics


def test_a_client_always_reads_its_own_writes(servers: Servers, protocol: int) -> None:
    _, client = cached(servers, protocol, "hot", "0")
    for i in range(200):
        client.set("hot", i)
        assert client.get("hot") == str(i).encode()
    # Read-your-writes sent the reads to the master: the cache never served an old value.
    assert client.hotkey_route("GET", "hot") == "master"


def test_concurrent_misses_share_one_fill(servers: Servers, protocol: int) -> None:
    master, client = cached(servers, protocol, "hot", "v")
    readers = 8
    barrier = threading.Barrier(readers)
    results: list[object] = []

    def read() -> None:
        barrier.wait()
        results.append(client.get("hot"))

    before = master.calls("get")
    threads = [threading.Thread(target=read) for _ in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"v"] * readers
    assert master.calls("get") - before == 1
    m = client.hotkey_metrics()
    assert (m.cache_misses, m.cache_hits) == (1, readers - 1)


def test_the_cache_stays_within_its_bound_in_bytes(servers: Servers, protocol: int) -> None:
    capacity = 20_000
    master = servers.master([CACHE_TTL])
    master.client().set("big", "x" * 2_000)
    client = routed(master, protocol, redis_hotkey.Options(cache_capacity_bytes=capacity))
    pin(master, "big")
    wait_for_route(client, "cache", "GETRANGE", "big", 0, 999)
    core = client._hotkey.core
    # 200 different replies of about 1 kB each: ten times what the cache may hold.
    ends = range(999, 1199)
    for end in ends:
        assert client.getrange("big", 0, end) == b"x" * (end + 1)
        assert 0 < core.cache_bytes <= capacity
    assert client.hotkey_metrics().cache_misses == len(ends)
    # The newest replies stayed, the oldest went.
    assert client.getrange("big", 0, ends[-1]) == b"x" * (ends[-1] + 1)
    assert client.hotkey_metrics().cache_hits == 1
    assert client.getrange("big", 0, ends[0]) == b"x" * (ends[0] + 1)
    assert client.hotkey_metrics().cache_misses == len(ends) + 1


def test_a_reply_larger_than_the_cache_is_not_kept(servers: Servers, protocol: int) -> None:
    master = servers.master([CACHE_TTL])
    master.client().set("big", "x" * 2_000)
    client = routed(master, protocol, redis_hotkey.Options(cache_capacity_bytes=1_000))
    pin(master, "big")
    wait_for_route(client, "cache", "GET", "big")
    for _ in range(3):
        assert client.get("big") == b"x" * 2_000
    assert client.hotkey_metrics().cache_misses == 3
    assert client._hotkey.core.cache_bytes == 0


def test_the_entry_bound_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="cache_capacity_bytes"):
        redis_hotkey.Options(cache_max_entries=10)
