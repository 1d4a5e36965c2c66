"""``redis_hotkey.RedisCluster``: a ``redis.cluster.RedisCluster`` that routes like
``redis_hotkey.Redis``, one router per shard.

A cluster is a set of single-master loops (README, "Redis Cluster"): each master's module
publishes its shard's hot set on a sharded channel. This client keeps one ``Router`` per master
it has sent a keyed command to, built on redis-py's own client of that node (so settings, TLS
and reply parsing are the cluster's), and decides a command by the router of the shard that
serves its first key's slot: writes and cold reads go through ``RedisCluster`` as usual (slot
map, ``MOVED``/``ASK``, retries); reads of that shard's hot keys go to the router's cache
(filled from that master, tracked there) or to the shard's replicas (``READONLY``). A router
whose master no longer serves the slot (resharding, failover) is not asked: the slot's new
master gets its own.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, ClassVar

import redis
from redis.cluster import RedisCluster as _RedisCluster

from ._options import Metrics, Options
from ._sync import Router


class RedisCluster(_RedisCluster):
    """A drop-in ``redis.cluster.RedisCluster`` that follows the hotkey module on every master.
    Router settings: ``RedisCluster(..., hotkey=Options(...))``."""

    hotkey_options: ClassVar[Options] = Options()

    def __init__(self, *args: Any, hotkey: Options | None = None, **kwargs: Any) -> None:
        # Before the parent's __init__: it sends commands (COMMAND) through execute_command.
        self._hotkey_settings = hotkey or type(self).hotkey_options
        # Master "host:port" → its router.
        self._hotkey_routers: dict[str, Router] = {}
        self._hotkey_lock = threading.Lock()
        super().__init__(*args, **kwargs)
        routers = self._hotkey_routers
        weakref.finalize(self, _stop_all, routers)

    def _hotkey_router(self, args: tuple[Any, ...]) -> Router | None:
        """The router of the shard that serves the first key of ``args``, if it has one."""
        if len(args) < 2:
            return None
        try:
            slot = self.keyslot(args[1])
            node = self.nodes_manager.get_node_from_slot(slot)
        except (redis.RedisError, IndexError, TypeError):
            return None
        router = self._hotkey_routers.get(node.name)
        if router is None:
            with self._hotkey_lock:
                router = self._hotkey_routers.get(node.name)
                if router is None:
                    client = self.get_redis_connection(node)
                    router = Router(client, self._hotkey_settings, cluster=True)
                    router.ensure_started()
                    self._hotkey_routers[node.name] = router
        return router

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        base = super().execute_command
        if "target_nodes" in kwargs:
            return base(*args, **kwargs)
        router = self._hotkey_router_for(args)
        if router is None:
            return base(*args, **kwargs)
        return router.execute(base, args, kwargs)

    def _hotkey_router_for(self, args: tuple[Any, ...]) -> Router | None:
        """The router of ``args``' shard. The command table says where the key is; the slot is
        that of the first key (a cluster rejects multi-slot commands anyway)."""
        if not args:
            return None
        any_router = next(iter(self._hotkey_routers.values()), None)
        if any_router is not None and any_router.core.table.synced:
            argv = any_router._args(args)
            spec = any_router.core.commands.lookup(argv)
            if spec is None:
                return None
            keys = spec.keys(argv)
            if not keys:
                return None
            return self._hotkey_router((args[0], keys[0][0]))
        # No router knows the command table yet: the second argument is the key of most keyed
        # commands, and a router there learns the table.
        return self._hotkey_router(args)

    def close(self) -> None:
        _stop_all(self._hotkey_routers)
        super().close()

    # The routers' view, summed or merged over the shards.

    def hotkey_metrics(self) -> Metrics:
        totals: dict[str, int] = {}
        for router in list(self._hotkey_routers.values()):
            for name, value in vars(router.metrics()).items():
                totals[name] = totals.get(name, 0) + value
        return Metrics(**totals)

    def hotkey_route(self, *args: Any) -> str:
        router = self._hotkey_router_for(args)
        return "master" if router is None else router.route(args)

    def hotkey_synced(self) -> bool:
        """True while every shard's router this client started follows its module."""
        routers = list(self._hotkey_routers.values())
        return bool(routers) and all(r.is_synced() for r in routers)

    def hotkey_keys(self) -> dict[bytes, Any]:
        keys: dict[bytes, Any] = {}
        for router in list(self._hotkey_routers.values()):
            keys.update(router.hot_keys())
        return keys

    def hotkey_replicas(self) -> list[tuple[str, bool]]:
        return [r for router in list(self._hotkey_routers.values()) for r in router.replicas()]

    def hotkey_start(self) -> None:
        """Starts a router on every master now (else each starts with the first command for a
        key of its shard)."""
        for node in self.get_primaries():
            with self._hotkey_lock:
                if node.name not in self._hotkey_routers:
                    router = Router(
                        self.get_redis_connection(node), self._hotkey_settings, cluster=True
                    )
                    router.ensure_started()
                    self._hotkey_routers[node.name] = router


def _stop_all(routers: dict[str, Router]) -> None:
    for router in list(routers.values()):
        router.stop()
