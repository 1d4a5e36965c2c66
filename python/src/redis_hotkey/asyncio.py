"""``redis_hotkey.asyncio.Redis``: the asyncio flavour of ``redis_hotkey.Redis``, with the same
routing, cache and rules; the link to the module is an asyncio task of the loop that first
uses the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import redis.asyncio
from redis.asyncio.client import Pipeline as _Pipeline
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._commands import CommandTable
from ._connections import link_kwargs, node_kwargs
from ._core import HOT, MASTER, WRITE, ArgEncoder, Core, HotRead, ReplicaPool, cache_key
from ._options import Metrics, Options
from ._routes import Applied, EventKind, ProtocolError, Replica, parse_message, parse_routes
from ._sync import INVALIDATE_CHANNEL, UNAVAILABLE_REPLIES

__all__ = ["Options", "Pipeline", "Redis"]

log = logging.getLogger("redis_hotkey")


class _TrackedPool(redis.asyncio.ConnectionPool):
    """Fill connections: tracking on, redirected to the control connection, as each connects."""

    def __init__(self, router: _Router, connection_class: type[Any], **kwargs: Any) -> None:
        super().__init__(connection_class=connection_class, **kwargs)
        self._router = weakref.ref(router)

    def make_connection(self) -> Any:
        conn = super().make_connection()  # type: ignore[no-untyped-call]
        conn.register_connect_callback(self._on_connect)
        return conn

    async def _on_connect(self, conn: Any) -> None:
        router = self._router()
        control_id = router.control_id if router is not None else None
        if control_id is None:
            raise RedisConnectionError("hotkey router: no control connection to track into")
        await conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", control_id)
        await conn.read_response()
        if router is not None and getattr(conn, "_hotkey_tracked", False):
            router.core.invalidated(None)
        conn._hotkey_tracked = True


class _Router:
    def __init__(self, client: redis.asyncio.Redis, options: Options) -> None:
        self.options = options
        self.pool: Any = client.connection_pool
        self.response_callbacks = client.response_callbacks
        db = int(self.pool.connection_kwargs.get("db", 0) or 0)
        self.core = Core(options, db)
        self._args = ArgEncoder(self.pool.get_encoder())
        self.control_id: int | None = None
        self.stopped = False
        self.task: asyncio.Task[None] | None = None
        self.rotation: ReplicaPool[redis.asyncio.Redis] = ReplicaPool()
        self.probing = False
        kwargs = dict(self.pool.connection_kwargs)
        self.fill = redis.asyncio.Redis(
            connection_pool=_TrackedPool(self, self.pool.connection_class, **kwargs)
        )
        self.fill.response_callbacks = self.response_callbacks

    def ensure_started(self) -> None:
        if self.stopped or (self.task is not None and not self.task.done()):
            return
        self.task = asyncio.get_running_loop().create_task(_run_link(weakref.ref(self)))

    async def stop(self) -> None:
        self.stopped = True
        self.core.forget()
        if self.task is not None:
            self.task.cancel()
        await _close(self.fill)
        for client in self.rotation.set(()):
            await _close(client)

    async def execute(self, base: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        if self.task is None or self.task.done():
            self.ensure_started()
        core = self.core
        argv = self._args(args)
        kind, what = core.plan(argv)
        if kind == MASTER:
            core.counters.bump("master")
            return await base(*args, **options)
        if kind == WRITE:
            assert not isinstance(what, HotRead)
            core.counters.bump("master")
            try:
                return await base(*args, **options)
            finally:
                core.wrote(what)
        assert isinstance(what, HotRead)
        if not core.recently_written(what.keys):
            if what.cache_ttl > 0 and self.options.cache and self.control_id is not None:
                ckey = cache_key(argv, options)
                if ckey is not None:
                    return await self._cached(ckey, what, args, options)
            if what.replicas:
                answered, reply = await self._on_replica(what, args, options)
                if answered:
                    return reply
        core.counters.bump("hot_reads_to_master")
        core.counters.bump("master")
        return await base(*args, **options)

    async def _cached(
        self, ckey: Any, read: HotRead, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Any:
        core = self.core
        key = read.keys[0]
        hit, value = core.cache_get(ckey, key)
        if not hit:
            # Concurrent misses of one reply make one fill: the others wait for it and hit.
            async with core.fill_lock(ckey, asyncio.Lock):
                hit, value = core.cache_get(ckey, key)
                if not hit:
                    try:
                        core.counters.bump("cache_misses")
                        core.counters.bump("hot_reads_to_master")
                        core.counters.bump("master")
                        value = await self.fill.execute_command(*args, **options)
                        core.cache_put(ckey, key, read, value)
                        return value
                    finally:
                        core.fill_done(ckey)
        core.counters.bump("cache_hits")
        core.served_elsewhere(read.keys)
        return value

    async def _on_replica(
        self, read: HotRead, args: tuple[Any, ...], options: dict[str, Any]
    ) -> tuple[bool, Any]:
        core = self.core
        while True:
            picked = self.rotation.pick()
            if picked is None:
                return False, None
            replica, client = picked
            try:
                reply = await client.execute_command(*args, **options)
            except ResponseError as e:
                if not str(e).startswith(UNAVAILABLE_REPLIES):
                    core.counters.bump("replica")
                    raise
                self._replica_failed(replica, e)
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                self._replica_failed(replica, e)
            else:
                core.counters.bump("replica")
                core.served_elsewhere(read.keys)
                return True, reply

    def _replica_failed(self, replica: Replica, error: Exception) -> None:
        log.warning(
            "hotkey router: replica %s:%s failed (%s); out of rotation",
            replica.host,
            replica.port,
            error,
        )
        self.core.counters.bump("replica_errors")
        self.rotation.fail(replica)

    def wrote_pipeline(self, stack: Sequence[tuple[Sequence[Any], Mapping[str, Any]]]) -> None:
        core = self.core
        for args, _ in stack:
            if args:
                kind, what = core.plan(self._args(args))
                if kind == WRITE:
                    assert not isinstance(what, HotRead)
                    core.wrote(what)
        core.counters.bump("master")

    def route(self, args: tuple[Any, ...]) -> str:
        core = self.core
        kind, what = core.plan(self._args(args))
        if kind != HOT:
            return "master"
        assert isinstance(what, HotRead)
        if core.recently_written(what.keys):
            return "master"
        if what.cache_ttl > 0 and self.options.cache:
            return "cache"
        if what.replicas and self.rotation.up() > 0:
            return "replica"
        return "master"

    async def set_replicas(self, replicas: tuple[Replica, ...]) -> None:
        for gone in self.rotation.set(replicas):
            await _close(gone)

    async def probe(self) -> None:
        if self.probing:
            return
        self.probing = True
        try:
            for replica in self.rotation.down():
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
                try:
                    await client.ping()
                except (RedisError, OSError):
                    await _close(client)
                    continue
                old = self.rotation.restore(replica, client)
                if old is not None and old is not client:
                    await _close(old)
        finally:
            self.probing = False


async def _close(client: Any) -> None:
    close = getattr(client, "aclose", None) or client.close
    await close()


async def _run_link(ref: weakref.ref[_Router]) -> None:
    delay = 0.05
    while True:
        router = ref()
        if router is None or router.stopped:
            return
        link = _Link(router)
        del router
        try:
            reason = await link.run()
        finally:
            await link.close()
        if link.router.stopped:
            return
        level = logging.WARNING if link.synced_once else logging.DEBUG
        log.log(level, "hotkey router: link to the master lost (%s); reconnecting", reason)
        delay = (
            0.05
            if link.synced_once
            else min(delay * 2, max(link.router.options.reconnect_max_delay, 0.05))
        )
        del link
        await asyncio.sleep(delay)


class _Link:
    def __init__(self, router: _Router) -> None:
        self.router = router
        self.core = router.core
        self.options = router.options
        self.admin: Any = None
        self.control: Any = None
        self.channel: bytes | None = None
        self.synced_once = False

    def _connection(self) -> Any:
        cls, kwargs = link_kwargs(self.router.pool, self.options.connect_timeout)
        return cls(**kwargs)

    async def close(self) -> None:
        self.core.forget()
        self.router.control_id = None
        await self.router.fill.connection_pool.disconnect()
        for conn in (self.admin, self.control):
            if conn is not None:
                await conn.disconnect()

    async def run(self) -> str:
        try:
            await self._connect()
            return await self._follow()
        except (RedisError, OSError, ProtocolError) as e:
            return str(e) or type(e).__name__

    async def _call(self, *args: Any) -> Any:
        await self.admin.send_command(*args)
        return await self.admin.read_response()

    async def _connect(self) -> None:
        router, core = self.router, self.core
        self.admin = self._connection()
        await self.admin.connect()
        table = CommandTable.from_command_reply(await self._call("COMMAND"))
        if len(table) == 0:
            raise ProtocolError("the master's COMMAND reply has no commands the router can read")
        core.commands = table
        self.control = self._connection()
        await self.control.connect()
        await self.control.send_command("CLIENT", "ID")
        control_id = int(await self.control.read_response())
        await self.control.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
        await self._await_subscribed(INVALIDATE_CHANNEL)
        await router.fill.connection_pool.disconnect()
        router.control_id = control_id
        core.counters.bump("connects")
        await self._sync(first=True)

    async def _sync(self, first: bool = False) -> None:
        try:
            routes = parse_routes(await self._call("HOTKEY.ROUTES"))
        except ResponseError as e:
            log.warning("hotkey router: %s; routing everything to the master", e)
            self.core.forget()
            return
        channel = routes.channel.encode()
        if channel != self.channel:
            if self.channel is not None:
                await self.control.send_command("UNSUBSCRIBE", self.channel)
            await self.control.send_command("SUBSCRIBE", channel)
            self.channel = channel
            await self._await_subscribed(channel)
            routes = parse_routes(await self._call("HOTKEY.ROUTES"))
        self.core.table.load(routes)
        self.core.cache_clear()
        await self.router.set_replicas(routes.replicas)
        if not first:
            self.core.counters.bump("resyncs")
        self.synced_once = True
        self._probe()

    async def _read(self, timeout: float) -> Any:
        """The next message of the control connection, or None after ``timeout``."""
        return await self.control.read_response(timeout=timeout)

    async def _await_subscribed(self, channel: bytes) -> None:
        deadline = time.monotonic() + self.options.connect_timeout
        while time.monotonic() < deadline:
            message = await self._read(0.05)
            if isinstance(message, list) and message[:2] == [b"subscribe", channel]:
                return
            if message is not None:
                await self._on_message(message)
        raise RedisTimeoutError(f"no confirmation of SUBSCRIBE {channel!r}")

    async def _follow(self) -> str:
        options = self.options
        now = time.monotonic()
        heard = now
        next_report = now + options.report_interval
        next_probe = now + options.probe_interval
        while not self.router.stopped:
            now = time.monotonic()
            wait = min(heard + options.heartbeat_timeout, next_report, next_probe) - now
            message = await self._read(max(min(wait, 0.2), 0.001))
            if message is not None:
                if await self._on_message(message):
                    heard = time.monotonic()
                continue
            now = time.monotonic()
            if now >= heard + options.heartbeat_timeout:
                log.warning(
                    "hotkey router: no message from the module for %ss; re-reading the hot set",
                    options.heartbeat_timeout,
                )
                await self._sync()
                heard = time.monotonic()
            if now >= next_report:
                await self._report()
                next_report = now + options.report_interval
            if now >= next_probe:
                self._probe()
                next_probe = now + options.probe_interval
        return "stopped"

    async def _on_message(self, message: Any) -> bool:
        if self.router.stopped:
            # The router was closed: its hot set stays forgotten.
            return False
        if not isinstance(message, list) or len(message) < 3 or message[0] != b"message":
            return False
        channel, payload = message[1], message[2]
        if channel == INVALIDATE_CHANNEL:
            self.core.invalidated(payload if isinstance(payload, list) else None)
            return False
        if channel != self.channel:
            return False
        try:
            event = parse_message(payload)
        except ProtocolError as e:
            log.warning("hotkey router: unreadable event (%s); re-reading the hot set", e)
            await self._sync()
            return True
        applied = self.core.table.apply(event)
        if applied is Applied.IN_ORDER:
            if event.kind is EventKind.REPLICAS:
                await self.router.set_replicas(event.replicas)
                self._probe()
        elif applied is not Applied.OLD:
            log.warning(
                "hotkey router: %s at seq %s; re-reading the hot set", applied.value, event.seq
            )
            await self._sync()
        return True

    def _probe(self) -> None:
        # A task of its own: a replica that does not answer must not hold up invalidations.
        if self.router.rotation.down() and not self.router.probing:
            asyncio.get_running_loop().create_task(self.router.probe())

    async def _report(self) -> None:
        counts = self.core.take_served()
        if not counts:
            return
        args: list[Any] = ["HOTKEY.REPORT"]
        for key, n in counts.items():
            args += [key, n]
        try:
            await self._call(*args)
        except ResponseError as e:
            self.core.counters.bump("report_errors")
            log.warning("hotkey router: HOTKEY.REPORT refused: %s", e)
            return
        except (RedisError, OSError):
            self.core.counters.bump("report_errors")
            self.core.restore_served(counts)
            raise
        self.core.counters.bump("reports")


class Redis(redis.asyncio.Redis):
    """A drop-in ``redis.asyncio.Redis`` that routes like ``redis_hotkey.Redis``. The link to
    the module starts with the first command (it needs a running loop)."""

    hotkey_options: ClassVar[Options] = Options()

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

    def hotkey_metrics(self) -> Metrics:
        return self._hotkey.core.counters.snapshot()

    def hotkey_route(self, *args: Any) -> str:
        return self._hotkey.route(args)

    def hotkey_synced(self) -> bool:
        return self._hotkey.core.table.synced

    def hotkey_keys(self) -> dict[bytes, Any]:
        return {k: v[0] for k, v in self._hotkey.core.table.keys.items()}

    def hotkey_replicas(self) -> list[tuple[str, bool]]:
        return self._hotkey.rotation.all()


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
