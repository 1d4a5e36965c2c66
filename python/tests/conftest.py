"""Fixtures: servers started and always stopped (also when a test fails), and waits."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
import redis

from servers import Cluster, Sentinel, Server


def _slowdown() -> float:
    text = os.environ.get("HOTKEY_TEST_SLOWDOWN", "1")
    try:
        factor = float(text)
    except ValueError:
        factor = 0.0
    if not factor >= 1.0 or factor == float("inf"):
        raise ValueError(f"HOTKEY_TEST_SLOWDOWN={text!r}: expected a number >= 1")
    return factor


SLOWDOWN = _slowdown()
"""``HOTKEY_TEST_SLOWDOWN`` (a float >= 1, default 1): multiplies every deadline, as in the
Rust harness, for a machine too loaded or slow for the defaults."""

WAIT = 15.0
"""Deadline for what takes a tick, an event or a probe to show (~100 ms to ~1 s), before
scaling by ``SLOWDOWN``."""

PROTOCOLS = [2, 3]


def wait_until(what: str, ready: Callable[[], bool], within: float = WAIT) -> None:
    """Polls ``ready`` until it is true; fails naming ``what`` after ``within`` seconds times
    ``SLOWDOWN``."""
    limit = within * SLOWDOWN
    deadline = time.monotonic() + limit
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {limit}s for: {what}")
        time.sleep(0.02)


class Servers:
    """Starts servers for one test and stops them all at its end."""

    def __init__(self) -> None:
        self.started: list[Server | Sentinel | Cluster] = []

    def master(
        self, args: Sequence[tuple[str, str]] = (), port: int | None = None, module: bool = True
    ) -> Server:
        server = Server(args, port=port, module=module)
        self.started.append(server)
        return server

    def replicated(
        self, args: Sequence[tuple[str, str]] = (), n: int = 1
    ) -> tuple[Server, list[Server]]:
        master = self.master(args)
        replicas = []
        for _ in range(n):
            replica = Server(args, replica_of=master)
            self.started.append(replica)
            replicas.append(replica)
        # A replica whose link is up may still miss the writes since its sync until its first
        # REPLCONF ACK; a write every replica acknowledged proves the stream flows.
        client = master.client()
        client.set("replicated", "1")
        acked = client.execute_command("WAIT", n, int(WAIT * 1000))
        assert acked == n, "replicas that acknowledged a write"
        return master, replicas

    def sentinel(self, master: Server, name: str) -> Sentinel:
        sentinel = Sentinel(master, name)
        self.started.append(sentinel)
        conn = redis.Redis(host="127.0.0.1", port=sentinel.port)
        wait_until(
            "the sentinel knows the master",
            lambda: conn.sentinel_get_master_addr_by_name(name) is not None,
        )
        return sentinel

    def cluster(
        self,
        masters: int,
        replicas: int,
        args: Sequence[tuple[str, str]] = (),
        node_timeout_ms: int = 5000,
    ) -> Cluster:
        cluster = Cluster(masters, replicas, args, node_timeout_ms)
        self.started.append(cluster)
        return cluster

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.stop_all()


@pytest.fixture(params=PROTOCOLS, ids=lambda p: f"resp{p}")
def protocol(request: pytest.FixtureRequest) -> int:
    return int(request.param)
