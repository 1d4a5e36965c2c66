"""``redis_hotkey.asyncio.Redis``: the asyncio flavour of ``redis_hotkey.Redis``, with the same
routing, cache and rules (``_flow``); the link to the module is an asyncio task of the loop that
first uses the client.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, ClassVar

import redis.asyncio
from redis.asyncio.client import Pipeline as _Pipeline
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection

from ._connections import node_kwargs
from ._flow import Flavour, Served, Steps, T, TrackedPool, Views, follow_module
from ._options import Options
from ._routes import Replica

__all__ = ["Options", "Pipeline", "Redis"]


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


class _Router(Flavour):
    def __init__(self, client: redis.asyncio.Redis, options: Options) -> None:
        self._stopped = False
        self.task: asyncio.Task[None] | None = None
        super().__init__(client, options)

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
        client = redis.asyncio.Redis(
            connection_pool=redis.asyncio.ConnectionPool(connection_class=cls, **kwargs)
        )
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
