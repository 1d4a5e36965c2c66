"""Fixtures: servers started and always stopped (also when a test fails), and waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import pytest
import redis

from servers import Cluster, Sentinel, Server

WAIT = 15.0
"""Deadline for what takes a tick, an event or a probe to show (~100 ms to ~1 s)."""

PROTOCOLS = [2, 3]


def wait_until(what: str, ready: Callable[[], bool], within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within}s for: {what}")
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

    def cluster(self, masters: int, replicas: int, args: Sequence[tuple[str, str]] = ()) -> Cluster:
        cluster = Cluster(masters, replicas, args)
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
