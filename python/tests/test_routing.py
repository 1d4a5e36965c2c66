"""Where calls go: writes and cold reads to the master, hot reads to replicas, and replies the
same as plain redis-py's for every call, in RESP2 and RESP3, decoded or not."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import redis_hotkey
from conftest import Servers, wait_until
from helpers import NO_CACHE, pin, routed, set_replicated, wait_for_replicas, wait_for_route


def test_writes_and_cold_reads_go_to_the_master(servers: Servers, protocol: int) -> None:
    master, _ = servers.replicated(n=1)
    client = routed(master, protocol, NO_CACHE)
    wait_for_replicas(client, 1)
    client.set("cold", "1")
    assert client.get("cold") == b"1"
    assert client.hotkey_route("GET", "cold") == "master"
    m = client.hotkey_metrics()
    assert (m.master, m.replica, m.cache_hits) == (2, 0, 0)


def test_hot_reads_go_to_a_replica(servers: Servers, protocol: int) -> None:
    master, (replica,) = servers.replicated(n=1)
    set_replicated(master, "hot", "v", 1)
    client = routed(master, protocol, NO_CACHE)
    wait_for_replicas(client, 1)
    pin(master, "hot")
    wait_for_route(client, "replica", "GET", "hot")
    before = replica.calls("get")
    for _ in range(5):
        assert client.get("hot") == b"v"
    assert replica.calls("get") - before == 5
    assert client.hotkey_metrics().replica == 5
    # A read of a hot key and a cold one goes to the master.
    assert client.hotkey_route("MGET", "hot", "cold") == "master"


def _whole(score: bytes | str | float) -> int:
    """A custom score cast (redis-py applies it to the reply)."""
    return round(float(score))


def _calls(client: redis.Redis) -> list[Any]:
    client.delete("lb", "h", "s")
    client.zadd("lb", {"ada": 1.5, "bob": 2})
    client.hset("h", mapping={"f": "1", "g": "2"})
    client.sadd("s", "a", "b")
    return [
        client.zrevrange("lb", 0, 9, withscores=True),
        client.zrange("lb", 0, 9, desc=True, withscores=True),
        client.zscore("lb", "ada"),
        client.hgetall("h"),
        client.smembers("s"),
        client.get("missing"),
        client.zrangebyscore("lb", 0, 10, withscores=True, score_cast_func=_whole),
    ]


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decoded"])
@pytest.mark.parametrize("cache", [False, True], ids=["replicas", "cache"])
def test_replies_are_what_redis_py_returns(
    servers: Servers, protocol: int, decode: bool, cache: bool
) -> None:
    master, _ = servers.replicated([("cache-ttl-ms", "60000")], n=1)
    plain = master.client(protocol=protocol, decode_responses=decode)
    expected = _calls(plain)
    from redis_hotkey import Options

    client = routed(
        master, protocol, Options(cache=cache, read_your_writes=0.0), decode_responses=decode
    )
    wait_for_replicas(client, 1)
    pinned = ("lb", "h", "s", "missing")
    for key in pinned:
        pin(master, key)
    # Every pinned key, not only the first: a read of one whose event the router has not yet
    # applied goes to the master.
    wait_until(
        f"every pinned key hot in the router ({client.hotkey_keys()})",
        lambda: all(k.encode() in client.hotkey_keys() for k in pinned),
    )
    target = "cache" if cache else "replica"
    wait_for_route(client, target, "ZREVRANGE", "lb", "0", "9")
    # WAIT on the connection that wrote: the replica has every write.
    assert plain.execute_command("WAIT", 1, 5000) == 1
    first = _calls_read_only(client)
    second = _calls_read_only(client)
    assert first == expected
    assert second == expected
    m = client.hotkey_metrics()
    if cache:
        # Replies of unordered output (SMEMBERS, HGETALL) are not cached: replicas serve them.
        assert m.cache_hits > 0
        assert m.hot_reads_to_master == m.cache_misses
        assert m.cache_hits + m.cache_misses + m.replica == 2 * len(expected)
    else:
        assert m.replica == 2 * len(expected)


def _calls_read_only(client: redis.Redis) -> list[Any]:
    return [
        client.zrevrange("lb", 0, 9, withscores=True),
        client.zrange("lb", 0, 9, desc=True, withscores=True),
        client.zscore("lb", "ada"),
        client.hgetall("h"),
        client.smembers("s"),
        client.get("missing"),
        client.zrangebyscore("lb", 0, 10, withscores=True, score_cast_func=_whole),
    ]


def test_binary_keys_are_routed_and_reported(servers: Servers, protocol: int) -> None:
    master, _ = servers.replicated(n=1)
    key = b"\xff\x00bin"
    set_replicated(master, key, b"\x00\x01", 1)
    client = routed(master, protocol, NO_CACHE)
    wait_for_replicas(client, 1)
    pin(master, key)
    wait_for_route(client, "replica", "GET", key)
    assert client.get(key) == b"\x00\x01"
    assert key in client.hotkey_keys()


def test_reads_after_own_writes_go_to_the_master(servers: Servers, protocol: int) -> None:
    master, _ = servers.replicated(n=1)
    client = routed(master, protocol, NO_CACHE)
    wait_for_replicas(client, 1)
    for key in ("a", "b", "c", "d"):
        pin(master, key)
    wait_for_route(client, "replica", "GET", "a")
    client.set("a", "1")
    assert client.hotkey_route("GET", "a") == "master"
    assert client.hotkey_route("GET", "b") == "replica"
    pipe = client.pipeline()
    pipe.set("b", "2")
    pipe.get("c")
    pipe.execute()
    assert client.hotkey_route("GET", "b") == "master"
    assert client.hotkey_route("GET", "c") == "replica"
    client.eval("redis.call('SET', KEYS[1], 'x')", 1, "c")
    assert client.hotkey_route("GET", "c") == "master"
    script = client.register_script("return redis.call('INCR', KEYS[1])")
    script(keys=["d"])
    assert client.hotkey_route("GET", "d") == "master"
    assert client.get("a") == b"1"


def test_locks_and_transactions_work_through_the_router(servers: Servers, protocol: int) -> None:
    master = servers.master()
    client = routed(master, protocol)
    with client.lock("job", timeout=5):
        assert client.get("job") is not None
    assert client.get("job") is None

    def incr(pipe: redis.client.Pipeline) -> None:
        value = int(pipe.get("n") or 0)
        pipe.multi()
        pipe.set("n", value + 1)

    client.transaction(incr, "n")
    assert client.get("n") == b"1"


def test_a_client_wraps_an_existing_one(servers: Servers) -> None:
    from redis_hotkey import wrap

    master = servers.master()
    plain = master.client(decode_responses=True)
    client = wrap(plain)
    client.set("k", "v")
    assert client.get("k") == "v"
    assert client.connection_pool is plain.connection_pool


def test_hot_reads_go_to_the_replicas_round_robin(servers: Servers, protocol: int) -> None:
    master, (first, second) = servers.replicated(n=2)
    set_replicated(master, "hot", "v", 2)
    client = routed(master, protocol, NO_CACHE)
    wait_for_replicas(client, 2)
    pin(master, "hot")
    wait_for_route(client, "replica", "GET", "hot")
    before = (first.calls("get"), second.calls("get"))
    for _ in range(10):
        assert client.get("hot") == b"v"
    assert (first.calls("get") - before[0], second.calls("get") - before[1]) == (5, 5)


def test_a_client_of_another_database_follows_that_database_only(
    servers: Servers, protocol: int
) -> None:
    master = servers.master([("cache-ttl-ms", "60000")])
    client = routed(master, protocol, db=1)
    master.client().execute_command("HOTKEY.PIN", "zero", "DB", "0")
    master.client().execute_command("HOTKEY.PIN", "one", "DB", "1")
    wait_for_route(client, "cache", "GET", "one")
    assert client.hotkey_route("GET", "zero") == "master"
    assert set(client.hotkey_keys()) == {b"one"}


def test_a_server_without_the_module_serves_everything(servers: Servers, protocol: int) -> None:
    server = servers.master(module=False)
    client = redis_hotkey.Redis(host="127.0.0.1", port=server.port, protocol=protocol)
    client.set("k", "v")
    assert client.get("k") == b"v"
    assert not client.hotkey_synced()
    assert client.hotkey_route("GET", "k") == "master"
    client.close()


def test_from_url_takes_the_database_of_the_url(servers: Servers, protocol: int) -> None:
    master = servers.master([("cache-ttl-ms", "60000")])
    client = redis_hotkey.Redis.from_url(
        f"redis://127.0.0.1:{master.port}/2?protocol={protocol}", decode_responses=True
    )
    assert isinstance(client, redis_hotkey.Redis)
    wait_until("synced", client.hotkey_synced)
    client.set("k", "v")
    master.client().execute_command("HOTKEY.PIN", "k", "DB", "2")
    wait_until("k is hot", lambda: b"k" in client.hotkey_keys())
    assert client.get("k") == "v"
    assert master.client(db=2).get("k") == b"v"
    client.close()
