"""Plain redis-py pointed at ``hotkey-proxy``: the replies are the server's, with RESP2 and
RESP3, sync and asyncio; a hot key is served from the proxy's cache and a write through it is
read at once. Nothing here imports ``redis_hotkey``: the proxy is for clients that cannot.

``HOTKEY_PROXY`` names the proxy's binary (default: ``target/release/hotkey-proxy`` of this
repository, built by ``make test-python``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from conftest import SLOWDOWN, WAIT, Servers, wait_until
from helpers import CACHE_TTL, pin
from servers import REPO, START_TIMEOUT, Server

EXAMPLE = REPO / "python" / "examples" / "proxy.py"
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+), metrics on 127\.0\.0\.1:(\d+)")
# Every byte value, CR LF and NUL among them: keys and values are bytes end to end.
BINARY = bytes(range(256)) + b"\r\n\x00"


def proxy_binary() -> Path:
    path = Path(os.environ.get("HOTKEY_PROXY", REPO / "target" / "release" / "hotkey-proxy"))
    if not path.is_file():
        raise RuntimeError(
            f"the proxy is not built: {path} does not exist "
            "(run `cargo build --release -p hotkey-proxy`, or set HOTKEY_PROXY to the binary)"
        )
    return path


class Proxy:
    """A ``hotkey-proxy`` in front of ``master`` on free ports (``--listen 127.0.0.1:0``; the
    ports are read from its log); ``stop()`` ends it (SIGTERM, then SIGKILL) and removes its
    directory."""

    def __init__(self, master: Server, args: Sequence[str] = ()) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hotkey-py-proxy-"))
        self.log = self.dir / "proxy.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 (closed in stop)
        argv = [str(proxy_binary()), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]
        self.proc = subprocess.Popen(
            [*argv, *args, master.url],
            stdout=subprocess.DEVNULL,
            stderr=self._out,
            env={**os.environ, "RUST_LOG": "hotkey_proxy=debug,hotkey_router=info"},
        )
        deadline = time.monotonic() + START_TIMEOUT * SLOWDOWN
        while (bound := LISTENING.search(self.log_text())) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = self.log_text()
                self.stop()
                raise RuntimeError(f"hotkey-proxy did not start: {' '.join(argv)}\n{text}")
            time.sleep(0.02)
        self.port = int(bound.group(1))
        self.metrics_port = int(bound.group(2))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def metric(self, sample: str) -> float:
        """The value of ``sample`` (a name with its labels, as exposed); 0 when absent, as a
        counter nothing has counted yet."""
        for line in self.metrics().splitlines():
            series, _, value = line.rpartition(" ")
            if series == sample:
                return float(value)
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def master(servers: Servers) -> Server:
    # A cached reply lives 60 s: a test sees invalidations, never an expiry.
    return servers.master([CACHE_TTL])


@pytest.fixture
def proxy(master: Server) -> Iterator[Proxy]:
    p = Proxy(master)
    try:
        yield p
    finally:
        # pytest shows a test's output only when it fails: then the proxy's log is there.
        print(f"--- hotkey-proxy's log\n{p.log_text()[-5000:]}")
        p.stop()


def corpus(r: redis.Redis) -> list[object]:
    """Calls over every basic data type, each reply as redis-py returns it; run directly and
    through the proxy, the lists must be equal."""
    replies: list[object] = [
        r.set("s", "v"),
        r.get("s"),
        r.get("missing"),
        r.append("s", "w"),
        r.getrange("s", 0, 0),
        r.strlen("s"),
        r.set(BINARY, BINARY),
        r.get(BINARY),
        r.mset({"a": "1", "b": BINARY}),
        r.mget("a", "b", "missing"),
        r.incrby("a", 41),
        r.incrbyfloat("f", 1.5),
        r.hset("h", mapping={"f1": "1", "f2": BINARY}),
        r.hgetall("h"),
        r.hget("h", "f1"),
        r.rpush("l", "x", "y", "z"),
        r.lrange("l", 0, -1),
        r.sadd("set", "m1", "m2"),
        r.smembers("set"),
        r.zadd("z", {"ada": 42, "bob": 7}),
        r.zincrby("z", 1, "bob"),
        r.zrevrange("z", 0, 9, withscores=True),
        r.zscore("z", "ada"),
        r.xadd("x", {"k": "v"}, id="1-1"),
        r.xrange("x"),
        r.pfadd("hll", "a", "b"),
        r.pfcount("hll"),
        r.exists("s", "l", "missing"),
        r.type("h"),
        r.getdel("s"),
        r.delete("a", "b", "missing"),
        r.eval("return {KEYS[1], ARGV[1], 7}", 1, "k", "arg"),
    ]
    try:
        r.lpush("h", "x")
    except redis.ResponseError as e:
        replies.append(str(e))
    return replies


def test_the_replies_through_the_proxy_are_the_servers(
    master: Server, proxy: Proxy, protocol: int
) -> None:
    direct = corpus(master.client(protocol=protocol))
    master.client().flushall()
    proxied = corpus(proxy.client(protocol=protocol))
    assert proxied == direct
    assert master.client().get(BINARY) == BINARY, "the binary write reached the master"


def test_pipelines_with_and_without_a_transaction(proxy: Proxy, protocol: int) -> None:
    client = proxy.client(protocol=protocol)
    pipe = client.pipeline(transaction=False)
    pipe.set("p", "1")
    pipe.incr("p")
    pipe.get("p")
    pipe.lpush("p", "x")
    pipe.get("missing")
    replies = pipe.execute(raise_on_error=False)
    assert replies[:3] == [True, 2, b"2"]
    assert isinstance(replies[3], redis.ResponseError)
    assert "WRONGTYPE" in str(replies[3])
    assert replies[4] is None

    tx = client.pipeline(transaction=True)
    tx.set("t", "a")
    tx.append("t", "b")
    tx.get("t")
    assert tx.execute() == [True, 2, b"ab"]

    # WATCH holds connection state: a write by another client between WATCH and EXEC aborts.
    other = proxy.client(protocol=protocol)
    with client.pipeline() as watched:
        watched.watch("t")
        other.set("t", "changed")
        watched.multi()
        watched.set("t", "mine")
        with pytest.raises(redis.WatchError):
            watched.execute()
    assert client.get("t") == b"changed"

    # The connection that held the transaction goes back to the pool and serves plain commands.
    def increment(p: redis.client.Pipeline) -> None:
        p.multi()
        p.incr("counter")

    assert client.transaction(increment, "counter") == [1]
    assert client.get("counter") == b"1"


def test_pubsub_messages_reach_subscribers(proxy: Proxy, protocol: int) -> None:
    client = proxy.client(protocol=protocol)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("news")
    pubsub.psubscribe("n*")
    # Both subscriptions are confirmed before anything is published.
    wait_until(
        "the channel subscription counted", lambda: client.pubsub_numsub("news") == [(b"news", 1)]
    )
    wait_until("the pattern subscription counted", lambda: client.pubsub_numpat() == 1)
    assert proxy.client(protocol=protocol).publish("news", BINARY) == 2

    messages: list[dict[str, Any]] = []

    def received() -> bool:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            messages.append(message)
        return len(messages) == 2

    wait_until("two messages", received)
    by_type = {m["type"]: m for m in messages}
    assert by_type["message"]["channel"] == b"news"
    assert by_type["message"]["data"] == BINARY
    assert by_type["pmessage"]["pattern"] == b"n*"
    assert by_type["pmessage"]["data"] == BINARY
    pubsub.unsubscribe()
    pubsub.punsubscribe()
    pubsub.close()
    wait_until(
        "the subscriptions are gone",
        lambda: client.pubsub_numpat() == 0 and client.pubsub_numsub("news") == [(b"news", 0)],
    )


def cache_hits(proxy: Proxy) -> float:
    return proxy.metric("hotkey_proxy_cache_hits_total")


def wait_until_cached(proxy: Proxy, read: Callable[[], object]) -> None:
    """Reads until the proxy counts a cache hit: the key is hot for it and its reply cached."""

    def hit() -> bool:
        before = cache_hits(proxy)
        read()
        return cache_hits(proxy) > before

    wait_until("a read served from the proxy's cache", hit)


def test_a_hot_key_is_served_from_the_cache_and_a_write_through_the_proxy_is_read_at_once(
    master: Server, proxy: Proxy, protocol: int
) -> None:
    writer = proxy.client(protocol=protocol)
    reader = proxy.client(protocol=protocol)
    writer.set("hot", "v1")
    pin(master, "hot")
    wait_until_cached(proxy, lambda: reader.get("hot"))
    hits = cache_hits(proxy)
    gets = master.calls("get")
    for _ in range(100):
        assert reader.get("hot") == b"v1"
    assert cache_hits(proxy) - hits >= 99
    assert master.calls("get") - gets <= 1, "hot reads reached the master"
    # The proxy drops the cached reply before it acknowledges a write: the next read, by any
    # client of the proxy, sees the write.
    for i in range(2, 30):
        value = f"v{i}".encode()
        assert writer.set("hot", value)
        assert reader.get("hot") == value, "a read after an acknowledged write is stale"


def test_a_cached_reply_is_the_servers_for_each_protocol(master: Server, proxy: Proxy) -> None:
    seed = master.client()
    seed.zadd("hot:z", {"ada": 42.5, "bob": 7})
    pin(master, "hot:z")

    # Scores are bulk strings under RESP2 and doubles under RESP3. (HGETALL would not do: its
    # output order is nondeterministic, so the proxy never caches it.)
    def hot_score(r: redis.Redis) -> object:
        return r.zscore("hot:z", "ada")

    def hot_top(r: redis.Redis) -> object:
        return r.zrevrange("hot:z", 0, 9, withscores=True)

    # RESP2 and RESP3 clients read the same hot keys in turn: each gets its own protocol's
    # reply, never the other's from the cache.
    for protocol in (2, 3, 2, 3):
        proxied = proxy.client(protocol=protocol)
        direct = master.client(protocol=protocol)
        for read in (hot_score, hot_top):
            wait_until_cached(proxy, functools.partial(read, proxied))
            assert read(proxied) == read(direct)


def test_asyncio_clients_see_the_servers_replies(proxy: Proxy, protocol: int) -> None:
    async def body() -> None:
        client = redis.asyncio.Redis(host="127.0.0.1", port=proxy.port, protocol=protocol)
        # Many commands in flight at once, over several of the pool's connections.
        keys = [f"k:{i}".encode() for i in range(50)]
        assert all(await asyncio.gather(*(client.set(k, k + BINARY) for k in keys)))
        assert await asyncio.gather(*(client.get(k) for k in keys)) == [k + BINARY for k in keys]
        tx = client.pipeline(transaction=True)
        tx.incr("n")
        tx.incr("n")
        tx.get("n")
        assert await tx.execute() == [1, 2, b"2"]
        pipe = client.pipeline(transaction=False)
        pipe.set("m", "x")
        pipe.get("m")
        assert await pipe.execute() == [True, b"x"]
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe("news")
        await until("subscribed", lambda: client.pubsub_numsub("news"), [(b"news", 1)])
        assert await client.publish("news", "hello") == 1
        message = await until_message(pubsub)
        assert (message["channel"], message["data"]) == (b"news", b"hello")
        await aclose(pubsub)
        await aclose(client)

    asyncio.run(body())


async def until(what: str, read: Callable[[], Any], expected: object) -> None:
    deadline = time.monotonic() + WAIT * SLOWDOWN
    while (got := await read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"waited for: {what} (last {got!r})")
        await asyncio.sleep(0.02)


async def until_message(pubsub: redis.asyncio.client.PubSub) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT * SLOWDOWN
    while (message := await pubsub.get_message(timeout=0.1)) is None:
        if time.monotonic() > deadline:
            raise AssertionError("waited for a message")
    return dict(message)


async def aclose(closable: redis.asyncio.Redis | redis.asyncio.client.PubSub) -> None:
    # `aclose()` came in redis-py 5.0.1 and deprecated `close()`; 5.0.0 has only `close()`.
    close = getattr(closable, "aclose", None) or closable.close
    await close()


def test_the_seeds_snippet_runs_against_the_proxy(master: Server, proxy: Proxy) -> None:
    run = [sys.executable, str(EXAMPLE), "--host", "127.0.0.1", "--port", str(proxy.port)]
    for expected in (1.0, 2.0):
        done = subprocess.run(run, capture_output=True, text=True, timeout=WAIT * SLOWDOWN)
        assert done.returncode == 0, done.stderr
        assert f"player:42 {expected}" in done.stdout.splitlines(), done.stdout
    assert master.client().zscore("leaderboard:global", "player:42") == 2.0
