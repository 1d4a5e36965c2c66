"""Following the module through gaps, restarts, silence, failed replicas and a failover."""

from __future__ import annotations

import json
import os
import signal
import time

import redis

import redis_hotkey
from conftest import WAIT, Servers, wait_until
from helpers import (
    CACHE_TTL,
    NO_CACHE,
    pin,
    routed,
    set_replicated,
    wait_for_replicas,
    wait_for_route,
)
from servers import NO_DETECTION, module_path


def _routes(client: redis.Redis) -> dict[bytes, object]:
    reply = client.execute_command("HOTKEY.ROUTES")
    return (
        dict(zip(reply[::2], reply[1::2], strict=True)) if isinstance(reply, list) else dict(reply)
    )


def test_a_gap_in_seq_makes_a_resync(servers: Servers) -> None:
    master = servers.master([("heartbeat-ms", "60000")])
    client = routed(master)
    routes = _routes(master.client())
    run_id = routes[b"run_id"].decode()  # type: ignore[attr-defined]
    seq = int(routes[b"seq"])  # type: ignore[call-overload]
    event = {
        "v": 1,
        "seq": seq + 5,
        "run_id": run_id,
        "ts_ms": 0,
        "event": "heartbeat",
        "hot_keys": 0,
        "replicas": 0,
    }
    master.client().publish("__hotkey__", json.dumps(event))
    wait_until("a resync", lambda: client.hotkey_metrics().resyncs >= 1)
    assert client.hotkey_synced()


def test_a_new_run_id_makes_a_resync(servers: Servers) -> None:
    master = servers.master([("heartbeat-ms", "60000")])
    client = routed(master)
    event = {
        "v": 1,
        "seq": 1,
        "run_id": "f" * 40,
        "ts_ms": 0,
        "event": "heartbeat",
        "hot_keys": 0,
        "replicas": 0,
    }
    master.client().publish("__hotkey__", json.dumps(event))
    wait_until("a resync", lambda: client.hotkey_metrics().resyncs >= 1)


def test_missed_heartbeats_make_a_resync(servers: Servers) -> None:
    master = servers.master([("heartbeat-ms", "60000")])
    client = routed(master, options=redis_hotkey.Options(heartbeat_timeout=0.3))
    wait_until("a resync", lambda: client.hotkey_metrics().resyncs >= 1)
    assert client.hotkey_synced()


def test_the_router_follows_a_restarted_master(servers: Servers, protocol: int) -> None:
    master = servers.master([CACHE_TTL])
    master.client().set("hot", "old")
    client = routed(master, protocol, redis_hotkey.Options(reconnect_max_delay=0.2))
    pin(master, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    assert client.get("hot") == b"old"
    port = master.port
    master.kill()
    wait_until("the router notices", lambda: not client.hotkey_synced())
    assert client.hotkey_route("GET", "hot") == "master"
    restarted = servers.master([CACHE_TTL], port=port)
    restarted.client().set("hot", "new")
    wait_until("the router syncs again", client.hotkey_synced)
    assert client.get("hot") == b"new"
    pin(restarted, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    assert client.get("hot") == b"new"
    assert client.hotkey_metrics().connects >= 2


def test_a_failed_replica_leaves_the_rotation(servers: Servers, protocol: int) -> None:
    master, (replica, _) = servers.replicated(n=2)
    set_replicated(master, "hot", "v", 2)
    client = routed(master, protocol, NO_CACHE)
    wait_for_replicas(client, 2)
    pin(master, "hot")
    wait_for_route(client, "replica", "GET", "hot")
    # A replica that hangs (the module still calls it healthy for seconds): reads time out.
    replica.proc.send_signal(signal.SIGSTOP)
    try:
        for _ in range(10):
            assert client.get("hot") == b"v"
        m = client.hotkey_metrics()
        assert m.replica_errors == 1
        assert m.replica == 10
        assert (f"127.0.0.1:{replica.port}", True) not in client.hotkey_replicas()
    finally:
        replica.proc.send_signal(signal.SIGCONT)
    wait_for_replicas(client, 2)


def test_a_killed_replica_leaves_the_rotation(servers: Servers, protocol: int) -> None:
    master, (replica, _) = servers.replicated(n=2)
    set_replicated(master, "hot", "v", 2)
    client = routed(master, protocol, NO_CACHE)
    wait_for_replicas(client, 2)
    pin(master, "hot")
    wait_for_route(client, "replica", "GET", "hot")
    replica.kill()
    for _ in range(10):
        assert client.get("hot") == b"v"
    assert client.hotkey_metrics().replica == 10
    wait_for_replicas(client, 1)


def test_reports_keep_the_module_counting(servers: Servers) -> None:
    master = servers.master([CACHE_TTL])
    master.client().set("hot", "v")
    client = routed(master)
    pin(master, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    for _ in range(50):
        client.get("hot")
    wait_until("a report", lambda: client.hotkey_metrics().reports >= 1)
    info = master.client().info("hotkey")
    assert int(info["hotkey_reported_reads"]) >= 49


def test_the_router_follows_a_sentinel_failover(servers: Servers, protocol: int) -> None:
    master, (replica,) = servers.replicated([CACHE_TTL], n=1)
    sentinel = servers.sentinel(master, "hotkey-test")
    manager = redis.sentinel.Sentinel([("127.0.0.1", sentinel.port)], protocol=protocol)
    cls = redis_hotkey.Redis.using(redis_hotkey.Options(reconnect_max_delay=0.2))
    client = manager.master_for("hotkey-test", redis_class=cls)
    wait_until("synced", client.hotkey_synced)
    client.set("hot", "v")
    pin(master, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    master.kill()

    def promoted() -> bool:
        try:
            return bool(manager.discover_master("hotkey-test")[1] == replica.port)
        except redis.sentinel.MasterNotFoundError:
            return False

    wait_until("the sentinel promotes the replica", promoted, within=60)

    def write_ok() -> bool:
        try:
            client.set("after", "1")
            return True
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
            return False

    wait_until("a write succeeds on the promoted master", write_ok, within=WAIT)
    wait_until("synced to the new master", client.hotkey_synced)
    assert client.get("after") == b"1"
    pin(replica, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    assert client.get("hot") == b"v"


def test_a_forked_child_follows_on_its_own(servers: Servers) -> None:
    master = servers.master([CACHE_TTL])
    master.client().set("hot", "v")
    client = routed(master)
    pin(master, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            assert client.get("hot") == b"v"
            deadline = time.monotonic() + WAIT
            while client.hotkey_route("GET", "hot") != "cache" and time.monotonic() < deadline:
                time.sleep(0.02)
            ok = client.get("hot") == b"v" and client.hotkey_route("GET", "hot") == "cache"
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child did not route through its cache"
    assert client.get("hot") == b"v"


def test_a_reloaded_module_is_resynced(servers: Servers) -> None:
    master = servers.master([CACHE_TTL, ("heartbeat-ms", "100")])
    client = routed(master, options=redis_hotkey.Options(heartbeat_timeout=0.3))
    pin(master, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    admin = master.client()
    admin.execute_command("MODULE", "UNLOAD", "hotkey")
    wait_until("everything goes to the master", lambda: not client.hotkey_synced())
    assert client.hotkey_route("GET", "hot") == "master"
    admin.execute_command(
        "MODULE", "LOAD", str(module_path()), "sample-max", "1", *NO_DETECTION,
        "cache-ttl-ms", "60000", "heartbeat-ms", "100",
    )  # fmt: skip
    wait_until("synced to the new run", client.hotkey_synced)
    pin(master, "hot")
    wait_for_route(client, "cache", "GET", "hot")
    assert client.hotkey_metrics().resyncs >= 1
