"""``redis_hotkey.RedisCluster``: a ``redis.cluster.RedisCluster`` that routes like
``redis_hotkey.Redis``, one router per shard (``_cluster`` says how), each built on redis-py's
own client of its master (so settings, TLS and reply parsing are the cluster's).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any, ClassVar

from redis.cluster import ClusterPipeline as _ClusterPipeline
from redis.cluster import RedisCluster as _RedisCluster

from ._cluster import (
    ClusterRouters,
    KeylessPipeline,
    is_scan,
    merge_keyless,
    unblock_keyless,
)
from ._flow import Flavour
from ._options import Options
from ._sync import Router


class RedisCluster(ClusterRouters, _RedisCluster):
    """A drop-in ``redis.cluster.RedisCluster`` that follows the hotkey module on every master.
    Router settings: ``RedisCluster(..., hotkey=Options(...))``."""

    hotkey_options: ClassVar[Options] = Options()

    def __init__(self, *args: Any, hotkey: Options | None = None, **kwargs: Any) -> None:
        self._hotkey_init(hotkey, type(self).hotkey_options)
        super().__init__(*args, **kwargs)
        weakref.finalize(self, _stop_all, self._hotkey_routers)

    def _hotkey_new_router(self, node: Any) -> Flavour:
        router = Router(self.get_redis_connection(node), self._hotkey_settings, cluster=True)
        router.ensure_started()
        return router

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        base = super().execute_command
        if "target_nodes" in kwargs:
            return base(*args, **kwargs)
        if is_scan(args):
            scan = self._hotkey_scan(args)
            if scan is None:
                return (0, [])
            step, command = scan
            return self._hotkey_scanned(step, base(*command, target_nodes=step.node, **kwargs))
        keyless = self._hotkey_keyless(args)
        if keyless is not None:
            group, nodes = keyless
            return merge_keyless(group, base(*args, target_nodes=nodes, **kwargs))
        router = self._hotkey_router_for(args)
        if not isinstance(router, Router):
            return base(*args, **kwargs)
        return router.execute(base, args, kwargs)

    def _hotkey_scan_iter(self, match: Any, count: Any, _type: Any, **kwargs: Any) -> Iterator[Any]:
        cursor = 0
        while True:
            cursor, keys = self.scan(cursor, match, count, _type, **kwargs)
            yield from keys
            if cursor == 0:
                return

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """redis-py's cluster pipeline; the keys its commands write count as this client's
        writes (read-your-writes), each on its shard's router."""
        pipe: Any = super().pipeline(transaction, shard_hint)
        # redis-py versions build their pipeline with different arguments: take the one built
        # and give it the recording methods.
        pipe.__class__ = ClusterPipeline
        pipe._hotkey_cluster = self
        pipe._hotkey_stack = []
        pipe._hotkey_routed = []
        return pipe

    def close(self) -> None:
        _stop_all(self._hotkey_routers)
        super().close()

    def hotkey_start(self) -> None:
        """Starts a router on every master now (else each starts with the first command for a
        key of its shard)."""
        for node in self.get_primaries():
            self._hotkey_node_router(node)


class ClusterPipeline(KeylessPipeline, _ClusterPipeline):
    """``redis.cluster.ClusterPipeline`` that follows the keyless rule (``KeylessPipeline``) and
    tells the shards' routers which keys it wrote."""

    _hotkey_cluster: RedisCluster
    _hotkey_stack: list[tuple[tuple[Any, ...], dict[str, Any]]]

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        queued = self._hotkey_queue(super().execute_command, len(self), args, kwargs)
        self._hotkey_stack.append((args, kwargs))
        return queued

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack, self._hotkey_stack = self._hotkey_stack, []
        routed = self._hotkey_take_routed()
        try:
            if not routed:
                return super().execute(raise_on_error)
            replies = super().execute(raise_on_error=False)
            return self._hotkey_merged(routed, replies, raise_on_error)
        finally:
            # Even when a reply is lost, the write may have happened.
            if stack:
                self._hotkey_cluster._hotkey_wrote_pipeline(stack)

    # Not the RESET command of the command mixins: the pipeline's own, which empties it.
    def reset(self) -> None:  # type: ignore[override]
        super().reset()
        self._hotkey_stack = []
        self._hotkey_routed = []


unblock_keyless(ClusterPipeline, _RedisCluster)


def _stop_all(routers: dict[str, Flavour]) -> None:
    for router in list(routers.values()):
        if isinstance(router, Router):
            router.stop()
