"""What the tests share: a routed client on a server, and waits on what it sees."""

from __future__ import annotations

from typing import Any

import redis_hotkey
from conftest import SLOWDOWN, WAIT, wait_until
from servers import Server


def routed(
    server: Server, protocol: int = 2, options: redis_hotkey.Options | None = None, **kwargs: Any
) -> redis_hotkey.Redis:
    """A routed client of ``server``, once it follows the module's hot set."""
    client = redis_hotkey.Redis(
        host="127.0.0.1", port=server.port, protocol=protocol, hotkey=options, **kwargs
    )
    wait_until("the router is synced", client.hotkey_synced)
    return client


def wait_for_route(client: redis_hotkey.Redis, target: str, *args: Any) -> None:
    wait_until(
        f"route({args}) == {target} (hot keys {client.hotkey_keys()}, "
        f"replicas {client.hotkey_replicas()}, {client.hotkey_metrics()})",
        lambda: client.hotkey_route(*args) == target,
    )


def wait_for_replicas(client: redis_hotkey.Redis, n: int) -> None:
    def ready() -> bool:
        replicas = client.hotkey_replicas()
        return len(replicas) == n and all(up for _, up in replicas)

    wait_until(f"{n} replicas in rotation", ready)


def pin(server: Server, key: bytes | str) -> None:
    """``HOTKEY.PIN key``: the key is read-hot at once, whatever its rate."""
    server.client().execute_command("HOTKEY.PIN", key)


def set_replicated(master: Server, key: bytes | str, value: bytes | str, replicas: int) -> None:
    """``SET key value`` on ``master``, acknowledged by its ``replicas`` (``WAIT`` on the
    connection that wrote)."""
    client = master.client(single_connection_client=True)
    client.set(key, value)
    assert client.execute_command("WAIT", replicas, int(WAIT * SLOWDOWN * 1000)) == replicas
    client.close()


NO_CACHE = redis_hotkey.Options(cache=False)
CACHE_TTL = ("cache-ttl-ms", "60000")
