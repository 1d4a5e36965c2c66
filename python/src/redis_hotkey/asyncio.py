"""``redis_hotkey.asyncio.Redis`` and ``redis_hotkey.asyncio.RedisCluster``: the asyncio
flavours of ``redis_hotkey.Redis`` and ``redis_hotkey.RedisCluster``, with the same routing,
cache and rules (``_flow``, ``_cluster``); each router's link to its module is an asyncio task
of the loop that first uses the client.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import redis.asyncio
from redis.asyncio.client import Pipeline as _Pipeline
from redis.asyncio.cluster import ClusterPipeline as _ClusterPipeline
from redis.asyncio.cluster import RedisCluster as _RedisCluster
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection

from ._cluster import (
    ClusterRouters,
    KeylessPipeline,
    is_scan,
    merge_keyless,
    unblock_keyless,
)
from ._connections import node_kwargs
from ._flow import Flavour, Served, Steps, T, TrackedPool, Views, follow_module
from ._options import Options
from ._routes import Replica

__all__ = ["ClusterPipeline", "Options", "Pipeline", "Redis", "RedisCluster"]


async def drive(steps: Steps[T]) -> T:
    """Runs ``steps`` whose every yield is an awaitable: awaits it and sends the result back,
    or throws its error (cancellation included) back in where it was yielded."""
    try:
        pending = next(steps)
        while True:
            try:
                result = await pending
            except BaseException as e:
                pending = steps.throw(e)
            else:
                pending = steps.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


class _TrackedPool(TrackedPool, redis.asyncio.ConnectionPool):
    async def _on_connect(self, conn: Any) -> None:
        await drive(self._tracking_on(conn))


class _ReadonlyPool(redis.asyncio.ConnectionPool):
    """Connections to a cluster replica: ``READONLY`` as each connects, so the replica serves
    reads of its shard's slots instead of answering ``MOVED``."""

    def make_connection(self) -> Any:
        conn = super().make_connection()  # type: ignore[no-untyped-call]
        conn.register_connect_callback(self._on_connect)
        return conn

    async def _on_connect(self, conn: Any) -> None:
        await conn.send_command("READONLY")
        await conn.read_response()


class _Router(Flavour):
    """``cluster``: the client reaches one master of a cluster, whose replicas need
    ``READONLY``."""

    def __init__(
        self, client: redis.asyncio.Redis, options: Options, cluster: bool = False
    ) -> None:
        self._stopped = False
        self.task: asyncio.Task[None] | None = None
        super().__init__(client, options, cluster)

    # What this flavour does its own way.

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _fill_client(self) -> redis.asyncio.Redis:
        kwargs = dict(self.pool.connection_kwargs)
        client = redis.asyncio.Redis(
            connection_pool=_TrackedPool(self, self.pool.connection_class, **kwargs)
        )
        client.response_callbacks = self.response_callbacks
        return client

    def _replica_client(self, replica: Replica) -> redis.asyncio.Redis:
        cls, kwargs = node_kwargs(
            self.pool,
            replica.host,
            replica.port,
            self.options.replica_timeout,
            AsyncConnection,
            AsyncSSLConnection,
        )
        pool_class = _ReadonlyPool if self.cluster else redis.asyncio.ConnectionPool
        client = redis.asyncio.Redis(connection_pool=pool_class(connection_class=cls, **kwargs))
        client.response_callbacks = self.response_callbacks
        return client

    def _new_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    def _spawn(self, steps: Steps[None]) -> None:
        asyncio.get_running_loop().create_task(drive(steps))

    def read(self, conn: Any, timeout: float) -> Any:
        return conn.read_response(timeout=timeout)

    # Life cycle.

    def ensure_started(self) -> None:
        if self._stopped or (self.task is not None and not self.task.done()):
            return
        steps = follow_module(weakref.ref(self), asyncio.sleep)
        self.task = asyncio.get_running_loop().create_task(drive(steps))

    async def stop(self) -> None:
        self._stopped = True
        if self.task is not None:
            self.task.cancel()
        await drive(self.shut())

    async def execute(self, base: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        if self.task is None or self.task.done():
            self.ensure_started()
        steps = self.call(base, args, options)
        return steps.value if isinstance(steps, Served) else await drive(steps)


# A second base makes mypy compare redis-py's own command mixins, which disagree on one method.
class Redis(Views, redis.asyncio.Redis):  # type: ignore[misc]
    """A drop-in ``redis.asyncio.Redis`` that routes like ``redis_hotkey.Redis``. The link to
    the module starts with the first command (it needs a running loop)."""

    hotkey_options: ClassVar[Options] = Options()
    _hotkey: _Router

    def __init__(self, *args: Any, hotkey: Options | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hotkey = _Router(self, hotkey or type(self).hotkey_options)

    @classmethod
    def using(cls, options: Options) -> type[Redis]:
        """This class with other router settings (for ``master_for(redis_class=…)``)."""
        return type(cls.__name__, (cls,), {"hotkey_options": options})

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await self._hotkey.execute(super().execute_command, args, options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe._hotkey = self._hotkey
        return pipe

    async def hotkey_start(self) -> None:
        """Starts following the module now (else the first command starts it)."""
        self._hotkey.ensure_started()

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self._hotkey.stop()
        parent = getattr(super(), "aclose", None)
        if parent is not None:
            await parent(close_connection_pool)
        else:
            await super().close(close_connection_pool)


class Pipeline(_Pipeline):
    """``redis.asyncio.client.Pipeline`` that tells the router which keys it wrote."""

    _hotkey: _Router

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = [(args, options) for args, options in self.command_stack]
        try:
            return await super().execute(raise_on_error)
        finally:
            if stack:
                self._hotkey.wrote_pipeline(stack)


# As for Redis: redis-py's own command mixins disagree on one method.
class RedisCluster(ClusterRouters, _RedisCluster):  # type: ignore[misc]
    """A drop-in ``redis.asyncio.cluster.RedisCluster`` that follows the hotkey module on every
    master, as ``redis_hotkey.RedisCluster`` does. Router settings: ``RedisCluster(...,
    hotkey=Options(...))``. A shard's router starts with the first command for one of its keys
    (or ``hotkey_start()``)."""

    hotkey_options: ClassVar[Options] = Options()

    def __init__(self, *args: Any, hotkey: Options | None = None, **kwargs: Any) -> None:
        self._hotkey_init(hotkey, type(self).hotkey_options)
        super().__init__(*args, **kwargs)

    def _hotkey_new_router(self, node: Any) -> Flavour:
        # A client of the node with the cluster's settings and reply parsing, as the node's own
        # connections have them.
        pool = redis.asyncio.ConnectionPool(
            connection_class=node.connection_class, **node.connection_kwargs
        )
        client = redis.asyncio.Redis(connection_pool=pool)
        client.response_callbacks = node.response_callbacks
        router = _Router(client, self._hotkey_settings, cluster=True)
        router.ensure_started()
        return router

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        base = super().execute_command
        if "target_nodes" in kwargs:
            return await base(*args, **kwargs)
        if is_scan(args):
            # The slot map is read by the first command.
            await self.initialize()
            scan = self._hotkey_scan(args)
            if scan is None:
                return (0, [])
            step, command = scan
            reply = await base(*command, target_nodes=step.node, **kwargs)
            return self._hotkey_scanned(step, reply)
        keyless = self._hotkey_keyless(args)
        if keyless is not None:
            group, nodes = keyless
            return merge_keyless(group, await base(*args, target_nodes=nodes, **kwargs))
        router = self._hotkey_router_for(args)
        if not isinstance(router, _Router):
            return await base(*args, **kwargs)
        return await router.execute(base, args, kwargs)

    async def _hotkey_scan_iter(
        self, match: Any, count: Any, _type: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        cursor = 0
        while True:
            cursor, keys = await self.scan(cursor, match, count, _type, **kwargs)
            for key in keys:
                yield key
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

    async def hotkey_start(self) -> None:
        """Starts a router on every master now (else each starts with the first command for a
        key of its shard)."""
        await self.initialize()
        for node in self.get_primaries():
            self._hotkey_node_router(node)

    async def _hotkey_stop(self) -> None:
        routers = list(self._hotkey_routers.values())
        self._hotkey_routers.clear()
        for router in routers:
            if isinstance(router, _Router):
                await router.stop()

    async def aclose(self, *args: Any, **kwargs: Any) -> None:
        await self._hotkey_stop()
        parent = getattr(super(), "aclose", None)
        if parent is not None:
            await parent(*args, **kwargs)
        else:
            await super().close(*args, **kwargs)

    async def close(self, *args: Any, **kwargs: Any) -> None:
        """The routers stop, then the cluster client closes (redis-py 5.0 has no ``aclose``)."""
        await self._hotkey_stop()
        await super().close(*args, **kwargs)


# As for Redis: redis-py's own command mixins disagree on one method.
class ClusterPipeline(KeylessPipeline, _ClusterPipeline):  # type: ignore[misc]
    """``redis.asyncio.cluster.ClusterPipeline`` that follows the keyless rule
    (``KeylessPipeline``) and tells the shards' routers which keys it wrote."""

    _hotkey_cluster: RedisCluster
    _hotkey_stack: list[tuple[tuple[Any, ...], dict[str, Any]]]

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        queued = self._hotkey_queue(super().execute_command, len(self), args, kwargs)
        self._hotkey_stack.append((args, kwargs))
        return queued

    async def execute(self, raise_on_error: bool = True, *args: Any, **kwargs: Any) -> list[Any]:
        stack, self._hotkey_stack = self._hotkey_stack, []
        routed = self._hotkey_take_routed()
        try:
            if not routed:
                return await super().execute(raise_on_error, *args, **kwargs)
            replies = await super().execute(False, *args, **kwargs)
            return self._hotkey_merged(routed, replies, raise_on_error)
        finally:
            # Even when a reply is lost, the write may have happened.
            if stack:
                self._hotkey_cluster._hotkey_wrote_pipeline(stack)

    # redis-py 8's pipeline reset (5.0's asyncio cluster pipeline has none), not the RESET
    # command of the command mixins.
    async def reset(self) -> None:  # type: ignore[override]
        self._hotkey_stack = []
        self._hotkey_routed = []
        parent = getattr(super(), "reset", None)
        if parent is not None:
            await parent()


unblock_keyless(ClusterPipeline, _RedisCluster)
