"""What the sync and asyncio routers do, written once: the route of each call and the link that
follows the module.

Each piece is a generator that yields every I/O it makes and gets the result back: in the
sync router the I/O has already run when it is yielded (``conn.read_response()`` is the reply),
in the asyncio one it is an awaitable (``conn.read_response()`` is a coroutine) that the driver
awaits, sending the result or throwing the error back in at the ``yield``. redis-py's sync and
asyncio classes have the same methods, so one expression serves both; where they differ (making
clients, reading with a timeout, starting a thread or a task) the router's flavour says how
(``Flavour``). The drivers are ``_sync.drive`` and ``asyncio.drive``.

The link owns two RESP2 connections to the master:
- *control*: subscribed to the module's channel and to ``__redis__:invalidate``, where the
  server sends the invalidations of the fill connections (``CLIENT TRACKING … REDIRECT``).
  RESP2 on purpose: redis-py's RESP3 pub/sub drops invalidation pushes, and a RESP2 redirect
  target receives them as ordinary messages of that channel.
- *admin*: ``COMMAND``, ``HOTKEY.ROUTES`` and ``HOTKEY.REPORT``.
Cache fills go through a pool of *fill* connections (the caller's settings and protocol, so a
reply parses exactly as on the caller's client), each switched to tracking with its redirect
to the control connection as it connects.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Hashable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._commands import CommandTable
from ._connections import link_connection
from ._core import HOT, MASTER, WRITE, ArgEncoder, Core, HotRead, ReplicaPool, cache_key
from ._options import Metrics, Options
from ._routes import Applied, EventKind, ProtocolError, Replica, parse_message, parse_routes

log = logging.getLogger("redis_hotkey")

T = TypeVar("T")

Steps = Generator[Any, Any, T]
"""A piece of the router: yields each I/O, gets its result back, returns a ``T``."""

INVALIDATE_CHANNEL = b"__redis__:invalidate"

# Replies of a replica that mean "not now" rather than an answer: the read goes elsewhere.
UNAVAILABLE_REPLIES = ("LOADING", "MASTERDOWN", "TRYAGAIN")

# Reconnects of a link that never synced back off from this, doubling.
FIRST_RETRY_DELAY = 0.05


def close(client: Any) -> Any:
    """Closes a client the router made, with its pool (``close()`` leaves a pool it was given):
    the I/O to yield."""
    return client.connection_pool.disconnect()


def retry_delay(previous: float, synced: bool, options: Options) -> float:
    """The pause before the next connect: short after a link that synced (one outage, one
    quick retry), else doubling up to ``reconnect_max_delay``."""
    if synced:
        return FIRST_RETRY_DELAY
    return min(previous * 2, max(options.reconnect_max_delay, FIRST_RETRY_DELAY))


def report_args(counts: Mapping[bytes, int]) -> list[Any]:
    """``HOTKEY.REPORT key n [key n …]``."""
    args: list[Any] = ["HOTKEY.REPORT"]
    for key, n in counts.items():
        args += [key, n]
    return args


class Served(NamedTuple):
    """The reply of a call answered without I/O."""

    value: Any


class TrackedPool:
    """The fill connections' pool (mixed into redis-py's sync or asyncio pool): each
    connection, as it connects, runs ``_tracking_on`` (through ``_on_connect``, which the
    flavour's pool defines)."""

    _on_connect: Callable[[Any], Any]

    def __init__(self, router: Flavour, connection_class: type[Any], **kwargs: Any) -> None:
        super().__init__(connection_class=connection_class, **kwargs)  # type: ignore[call-arg]
        self._router = weakref.ref(router)

    def make_connection(self) -> Any:
        conn = super().make_connection()  # type: ignore[misc]
        conn.register_connect_callback(self._on_connect)
        return conn

    def _tracking_on(self, conn: Any) -> Steps[None]:
        """``conn`` just connected: tracking on, its invalidations redirected to the control
        connection."""
        router = self._router()
        control_id = router.control_id if router is not None else None
        if control_id is None:
            raise RedisConnectionError("hotkey router: no control connection to track into")
        yield conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", control_id)
        yield conn.read_response()
        if router is not None and getattr(conn, "_hotkey_tracked", False):
            # A reconnect: replies filled before were tracked on the lost connection only.
            router.core.invalidated(None)
        conn._hotkey_tracked = True


class Flavour(ABC):
    """One router (sync or asyncio): the route of each call, the replicas in rotation, and
    what the two flavours do differently."""

    def __init__(self, client: Any, options: Options, cluster: bool = False) -> None:
        self.cluster = cluster
        self.options = options
        self.pool: Any = client.connection_pool
        self.response_callbacks = client.response_callbacks
        db = int(self.pool.connection_kwargs.get("db", 0) or 0)
        self.core = Core(options, db)
        self._args = ArgEncoder(self.pool.get_encoder())
        self.control_id: int | None = None
        self._rotation: ReplicaPool[Any] = ReplicaPool()
        # threading.Lock in both flavours: only ever tried without blocking.
        self._probing = threading.Lock()
        self.fill = self._fill_client()

    # What the flavours do differently.

    @property
    @abstractmethod
    def stopped(self) -> bool:
        """The router was closed: the link ends, its hot set stays forgotten."""

    @abstractmethod
    def _fill_client(self) -> Any:
        """A client of the master on a ``TrackedPool``, with the caller's settings."""

    @abstractmethod
    def _replica_client(self, replica: Replica) -> Any:
        """A client of ``replica`` with the caller's settings (not connected yet)."""

    @abstractmethod
    def _new_lock(self) -> Any:
        """A lock for callers of this flavour to wait on (``acquire()`` is I/O to yield)."""

    @abstractmethod
    def _spawn(self, steps: Steps[None]) -> None:
        """Runs ``steps`` beside the caller and the link (a thread, a task)."""

    @abstractmethod
    def read(self, conn: Any, timeout: float) -> Any:
        """The I/O that reads the next message of ``conn``, or None after ``timeout``."""

    # Routing.

    def call(
        self, base: Any, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Steps[Any] | Served:
        """One call where the hot set says (``base`` runs it on the caller's own pool): the
        steps to drive, or the reply when no I/O is needed (a cache hit, the common hot read,
        answered without the cost of driving steps)."""
        core = self.core
        argv = self._args(args)
        kind, what = core.plan(argv)
        if kind == MASTER:
            core.counters.bump("master")
            return self._on_master(base, args, options)
        if kind == WRITE:
            assert not isinstance(what, HotRead)
            core.counters.bump("master")
            return self._write(what, base, args, options)
        assert isinstance(what, HotRead)
        if not core.recently_written(what.keys):
            # Without a control connection a fill would not be tracked: no caching then.
            if what.cache_ttl > 0 and self.options.cache and self.control_id is not None:
                ckey = cache_key(argv, options)
                if ckey is not None:
                    hit, value = core.cache_get(ckey, what.keys[0])
                    if hit:
                        return Served(self._hit(what, value))
                    return self._fill(ckey, what, args, options)
            if what.replicas:
                return self._off_master(what, base, args, options)
        return self._hot_on_master(base, args, options)

    def _on_master(self, base: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Steps[Any]:
        return (yield base(*args, **options))

    def _write(
        self, keys: tuple[bytes, ...], base: Any, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Steps[Any]:
        try:
            return (yield base(*args, **options))
        finally:
            # Even when the reply is lost, the write may have happened.
            self.core.wrote(keys)

    def _hot_on_master(
        self, base: Any, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Steps[Any]:
        self.core.counters.bump("hot_reads_to_master")
        self.core.counters.bump("master")
        return (yield base(*args, **options))

    def _off_master(
        self, read: HotRead, base: Any, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Steps[Any]:
        answered, reply = yield from self._on_replica(read, args, options)
        if answered:
            return reply
        return (yield from self._hot_on_master(base, args, options))

    def _hit(self, read: HotRead, value: Any) -> Any:
        self.core.counters.bump("cache_hits")
        self.core.served_elsewhere(read.keys)
        return value

    def _fill(
        self, ckey: Hashable, read: HotRead, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Steps[Any]:
        core = self.core
        key = read.keys[0]
        # Concurrent misses of one reply make one fill: the others wait for it and hit.
        lock = core.fill_lock(ckey, self._new_lock)
        yield lock.acquire()
        try:
            hit, value = core.cache_get(ckey, key)
            if hit:
                return self._hit(read, value)
            try:
                core.counters.bump("cache_misses")
                core.counters.bump("hot_reads_to_master")
                core.counters.bump("master")
                value = yield self.fill.execute_command(*args, **options)
                core.cache_put(ckey, key, read, value)
                return value
            finally:
                core.fill_done(ckey)
        finally:
            lock.release()

    def _on_replica(
        self, read: HotRead, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Steps[tuple[bool, Any]]:
        core = self.core
        while True:
            picked = self._rotation.pick()
            if picked is None:
                return False, None
            replica, client = picked
            try:
                reply = yield client.execute_command(*args, **options)
            except ResponseError as e:
                if not str(e).startswith(UNAVAILABLE_REPLIES):
                    core.counters.bump("replica")
                    raise
                self._replica_failed(replica, e)
            # ValueError: redis-py 5.0 checks a pooled connection to a killed replica by
            # reading a buffer it already closed ("I/O operation on closed file"). A
            # ValueError of the arguments would be raised again by the master, so it is
            # not hidden.
            except (RedisConnectionError, RedisTimeoutError, OSError, ValueError) as e:
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
        self._rotation.fail(replica)

    def wrote_pipeline(self, stack: Sequence[tuple[Sequence[Any], Mapping[str, Any]]]) -> None:
        """A pipeline (or MULTI/EXEC) ran on the master: its writes count as this client's."""
        core = self.core
        for args, _ in stack:
            if not args:
                continue
            kind, what = core.plan(self._args(args))
            if kind == WRITE:
                assert not isinstance(what, HotRead)
                core.wrote(what)
        core.counters.bump("master")

    def route(self, args: tuple[Any, ...]) -> str:
        """Where a call would go now: ``master``, ``replica`` or ``cache`` (no I/O)."""
        core = self.core
        kind, what = core.plan(self._args(args))
        if kind != HOT:
            return "master"
        assert isinstance(what, HotRead)
        if core.recently_written(what.keys):
            return "master"
        if what.cache_ttl > 0 and self.options.cache:
            return "cache"
        if what.replicas and self._rotation.up() > 0:
            return "replica"
        return "master"

    # Views.

    def metrics(self) -> Metrics:
        return self.core.counters.snapshot()

    def is_synced(self) -> bool:
        return self.core.table.synced

    def hot_keys(self) -> dict[bytes, Any]:
        return {k: v[0] for k, v in self.core.table.keys.items()}

    def replicas(self) -> list[tuple[str, bool]]:
        return self._rotation.all()

    # Life cycle and replicas.

    def shut(self) -> Steps[None]:
        """Forgets the hot set and closes the clients the router made."""
        self.core.forget()
        yield close(self.fill)
        for client in self._rotation.set(()):
            yield close(client)

    def set_replicas(self, replicas: tuple[Replica, ...]) -> Steps[None]:
        for gone in self._rotation.set(replicas):
            yield close(gone)

    def probe_later(self) -> None:
        # Beside the link: a replica that does not answer must not hold up invalidations.
        if self._rotation.down() and not self._probing.locked():
            self._spawn(self.probe())

    def probe(self) -> Steps[None]:
        """Connects to the replicas out of rotation; those answering PING come back. One
        probe at a time."""
        if not self._probing.acquire(blocking=False):
            return
        try:
            for replica in self._rotation.down():
                client = self._replica_client(replica)
                try:
                    yield client.ping()
                except (RedisError, OSError):
                    yield close(client)
                    continue
                old = self._rotation.restore(replica, client)
                if old is not None and old is not client:
                    yield close(old)
        finally:
            self._probing.release()


class Views:
    """The router's view, on ``redis_hotkey.Redis`` and its asyncio twin."""

    _hotkey: Flavour

    def hotkey_metrics(self) -> Metrics:
        """The router's counters (``master``, ``replica``, ``cache_hits``, …)."""
        return self._hotkey.metrics()

    def hotkey_route(self, *args: Any) -> str:
        """Where a call with these arguments would go now: ``master``, ``replica`` or
        ``cache`` (no I/O)."""
        return self._hotkey.route(args)

    def hotkey_synced(self) -> bool:
        """True while the router follows the module's hot set (else all goes to the master)."""
        return self._hotkey.is_synced()

    def hotkey_keys(self) -> dict[bytes, Any]:
        """The hot keys of this client's database, with the module's advice."""
        return self._hotkey.hot_keys()

    def hotkey_replicas(self) -> list[tuple[str, bool]]:
        """The replicas the module calls healthy (``host:port``) and whether each is in
        rotation."""
        return self._hotkey.replicas()


def follow_module(ref: weakref.ref[Flavour], pause: Callable[[float], Any]) -> Steps[None]:
    """The link: follows the module while a session lasts, reconnects with back-off
    (``pause(seconds)``, the I/O that waits), until the router is stopped or garbage."""
    delay = FIRST_RETRY_DELAY
    while True:
        router = ref()
        if router is None or router.stopped:
            return
        link = Link(router)
        del router
        try:
            reason = yield from link.run()
        finally:
            yield from link.close()
        if link.router.stopped:
            return
        # Once per outage: the attempts that follow fail the same way.
        level = logging.WARNING if link.synced_once else logging.DEBUG
        log.log(level, "hotkey router: link to the master lost (%s); reconnecting", reason)
        delay = retry_delay(delay, link.synced_once, link.options)
        # The pause must not keep the router alive.
        del link
        yield pause(delay)


class Link:
    """One session of the link: its connections, and the loop that follows the module."""

    def __init__(self, router: Flavour) -> None:
        self.router = router
        self.core = router.core
        self.options = router.options
        self.admin: Any = None
        self.control: Any = None
        self.channel: bytes | None = None
        self.subscribe, self.unsubscribe = "SUBSCRIBE", "UNSUBSCRIBE"
        self.synced_once = False

    def close(self) -> Steps[None]:
        self.core.forget()
        self.router.control_id = None
        # Tracking redirected to the control connection ends with it.
        yield self.router.fill.connection_pool.disconnect()
        for conn in (self.admin, self.control):
            if conn is not None:
                yield conn.disconnect()

    def run(self) -> Steps[str]:
        """Connects and follows the module; returns why the session ended."""
        try:
            yield from self._connect()
            return (yield from self._follow())
        except (RedisError, OSError, ProtocolError) as e:
            return str(e) or type(e).__name__

    def _call(self, *args: Any) -> Steps[Any]:
        yield self.admin.send_command(*args)
        return (yield self.admin.read_response())

    def _connect(self) -> Steps[None]:
        router, core, options = self.router, self.core, self.options
        self.admin = link_connection(router.pool, options.connect_timeout)
        yield self.admin.connect()
        table = CommandTable.from_command_reply((yield from self._call("COMMAND")))
        if len(table) == 0:
            raise ProtocolError("the master's COMMAND reply has no commands the router can read")
        core.commands = table
        self.control = link_connection(router.pool, options.connect_timeout)
        yield self.control.connect()
        yield self.control.send_command("CLIENT", "ID")
        control_id = int((yield self.control.read_response()))
        yield self.control.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
        yield from self._await_subscribed(INVALIDATE_CHANNEL)
        # Fill connections of an older control connection lost their redirect target.
        yield router.fill.connection_pool.disconnect()
        router.control_id = control_id
        core.counters.bump("connects")
        yield from self._sync(first=True)

    def _sync(self, first: bool = False) -> Steps[None]:
        """Subscribes to the module's channel, then reads ``HOTKEY.ROUTES``: no event falls
        between the two (those the snapshot holds are skipped by their ``seq``)."""
        try:
            routes = parse_routes((yield from self._call("HOTKEY.ROUTES")))
        except ResponseError as e:
            log.warning("hotkey router: %s; routing everything to the master", e)
            self.core.forget()
            return
        channel = routes.channel.encode()
        if channel != self.channel:
            if self.channel is not None:
                yield self.control.send_command(self.unsubscribe, self.channel)
            # In a cluster the shard's channel is sharded: SSUBSCRIBE, on this shard's master.
            self.subscribe, self.unsubscribe = (
                ("SSUBSCRIBE", "SUNSUBSCRIBE") if routes.sharded else ("SUBSCRIBE", "UNSUBSCRIBE")
            )
            yield self.control.send_command(self.subscribe, channel)
            self.channel = channel
            yield from self._await_subscribed(channel)
            routes = parse_routes((yield from self._call("HOTKEY.ROUTES")))
        self.core.table.load(routes)
        self.core.cache_clear()
        yield from self.router.set_replicas(routes.replicas)
        if not first:
            self.core.counters.bump("resyncs")
        self.synced_once = True
        self.router.probe_later()

    def _await_subscribed(self, channel: bytes) -> Steps[None]:
        """Reads the control connection until the server confirms the subscription to
        ``channel`` (applying invalidations that arrive meanwhile)."""
        deadline = time.monotonic() + self.options.connect_timeout
        while time.monotonic() < deadline:
            message = yield self.router.read(self.control, 0.05)
            if message is None:
                continue
            if isinstance(message, list) and message[:2] in (
                [b"subscribe", channel],
                [b"ssubscribe", channel],
            ):
                return
            yield from self._on_message(message)
        raise RedisTimeoutError(f"no confirmation of SUBSCRIBE {channel!r}")

    def _follow(self) -> Steps[str]:
        options = self.options
        now = time.monotonic()
        heard = now
        next_report = now + options.report_interval
        next_probe = now + options.probe_interval
        while not self.router.stopped:
            if self.router.core is not self.core:
                return "forked"
            now = time.monotonic()
            wait = min(heard + options.heartbeat_timeout, next_report, next_probe) - now
            message = yield self.router.read(self.control, max(min(wait, 0.2), 0.001))
            if message is not None:
                if (yield from self._on_message(message)):
                    heard = time.monotonic()
                continue
            now = time.monotonic()
            if now >= heard + options.heartbeat_timeout:
                log.warning(
                    "hotkey router: no message from the module for %ss; re-reading the hot set",
                    options.heartbeat_timeout,
                )
                yield from self._sync()
                heard = time.monotonic()
            if now >= next_report:
                yield from self._report()
                next_report = now + options.report_interval
            if now >= next_probe:
                self.router.probe_later()
                next_probe = now + options.probe_interval
        return "stopped"

    def _on_message(self, message: Any) -> Steps[bool]:
        """Applies one message of the control connection; True when it came from the module
        this link follows."""
        if self.router.stopped:
            # The router was closed: its hot set stays forgotten.
            return False
        if not isinstance(message, list) or len(message) < 3:
            return False
        kind, channel, payload = message[0], message[1], message[2]
        if kind == b"sunsubscribe" and channel == self.channel:
            # The shard's slots moved away from the channel's slot: the server ended the
            # subscription. Re-read the hot set, which names the new channel.
            self.channel = None
            yield from self._sync()
            return True
        if kind not in (b"message", b"smessage"):
            return False
        if channel == INVALIDATE_CHANNEL:
            self.core.invalidated(payload if isinstance(payload, list) else None)
            return False
        if channel != self.channel:
            return False
        try:
            event = parse_message(payload)
        except ProtocolError as e:
            log.warning("hotkey router: unreadable event (%s); re-reading the hot set", e)
            yield from self._sync()
            return True
        applied = self.core.table.apply(event)
        if applied is Applied.OTHER_NODE:
            return False
        if applied is Applied.IN_ORDER:
            if event.kind is EventKind.REPLICAS:
                yield from self.router.set_replicas(event.replicas)
                self.router.probe_later()
        elif applied is not Applied.OLD:
            log.warning(
                "hotkey router: %s at seq %s; re-reading the hot set", applied.value, event.seq
            )
            yield from self._sync()
        return True

    def _report(self) -> Steps[None]:
        counts = self.core.take_served()
        if not counts:
            return
        try:
            yield from self._call(*report_args(counts))
        except ResponseError as e:
            self.core.counters.bump("report_errors")
            log.warning("hotkey router: HOTKEY.REPORT refused: %s", e)
            return
        except (RedisError, OSError):
            self.core.counters.bump("report_errors")
            self.core.restore_served(counts)
            raise
        self.core.counters.bump("reports")
