"""The sync router: the link thread that follows the module, and the routing of each call.

The link thread owns two RESP2 connections to the master:
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
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._commands import CommandTable
from ._connections import link_connection, node_kwargs
from ._core import HOT, MASTER, WRITE, ArgEncoder, Core, HotRead, ReplicaPool, cache_key
from ._options import Metrics, Options
from ._routes import Applied, EventKind, ProtocolError, Replica, parse_message, parse_routes

log = logging.getLogger("redis_hotkey")

INVALIDATE_CHANNEL = b"__redis__:invalidate"

# Replies of a replica that mean "not now" rather than an answer: the read goes elsewhere.
UNAVAILABLE_REPLIES = ("LOADING", "MASTERDOWN", "TRYAGAIN")

_routers: weakref.WeakSet[Router] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The link thread did not survive the fork, and its sockets are the parent's: forget them
    # (without closing: the parent still uses them) and start over on the next command.
    for router in list(_routers):
        router._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _TrackedPool(redis.ConnectionPool):
    """The fill connections: each one, as it connects, turns on tracking with its
    invalidations redirected to the control connection."""

    def __init__(self, router: Router, connection_class: type[Any], **kwargs: Any) -> None:
        super().__init__(connection_class=connection_class, **kwargs)
        self._router = weakref.ref(router)

    def make_connection(self) -> Any:
        conn = super().make_connection()
        conn.register_connect_callback(self._on_connect)
        return conn

    def _on_connect(self, conn: Any) -> None:
        router = self._router()
        control_id = router._control_id if router is not None else None
        if control_id is None:
            raise RedisConnectionError("hotkey router: no control connection to track into")
        conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", control_id)
        conn.read_response()
        if router is not None and getattr(conn, "_hotkey_tracked", False):
            # A reconnect: replies filled before were tracked on the lost connection only.
            router.core.invalidated(None)
        conn._hotkey_tracked = True


class _ReadonlyPool(redis.ConnectionPool):
    """Connections to a cluster replica: ``READONLY`` as each connects, so the replica serves
    reads of its shard's slots instead of answering ``MOVED``."""

    def make_connection(self) -> Any:
        conn = super().make_connection()
        conn.register_connect_callback(self._on_connect)
        return conn

    def _on_connect(self, conn: Any) -> None:
        conn.send_command("READONLY")
        conn.read_response()


class Router:
    """Follows the module for one client (its pool) and routes its calls. ``cluster``: the
    pool reaches one master of a cluster, whose replicas need ``READONLY``."""

    def __init__(self, client: redis.Redis, options: Options, cluster: bool = False) -> None:
        self.cluster = cluster
        self.options = options
        self.pool: Any = client.connection_pool
        self.response_callbacks = client.response_callbacks
        db = int(self.pool.connection_kwargs.get("db", 0) or 0)
        self.core = Core(options, db)
        self._args = ArgEncoder(self.pool.get_encoder())
        self._control_id: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._pid = os.getpid()
        self.fill = self._fill_client()
        self._rotation: ReplicaPool[redis.Redis] = ReplicaPool()
        self._probing = threading.Lock()
        _routers.add(self)

    def _fill_client(self) -> redis.Redis:
        kwargs = dict(self.pool.connection_kwargs)
        pool = _TrackedPool(self, self.pool.connection_class, **kwargs)
        client = redis.Redis(connection_pool=pool)
        client.response_callbacks = self.response_callbacks
        return client

    # Life cycle.

    def ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=_run_link,
                    args=(weakref.ref(self), self._stop),
                    daemon=True,
                    name="redis-hotkey-link",
                )
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.core.forget()
        self.fill.close()
        for client in self._rotation.set(()):
            client.close()

    def _forked(self) -> None:
        self._pid = os.getpid()
        self._thread = None
        self._start_lock = threading.Lock()
        self._control_id = None
        self.core = Core(self.options, self.core.table.db)
        self.fill = self._fill_client()
        self._rotation = ReplicaPool()
        self._probing = threading.Lock()

    # Routing.

    def execute(self, base: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        """Runs one call where the hot set says; ``base`` runs it on the caller's own pool."""
        if self._thread is None:
            self.ensure_started()
        core = self.core
        argv = self._args(args)
        kind, what = core.plan(argv)
        if kind == MASTER:
            core.counters.bump("master")
            return base(*args, **options)
        if kind == WRITE:
            assert not isinstance(what, HotRead)
            core.counters.bump("master")
            try:
                return base(*args, **options)
            finally:
                # Even when the reply is lost, the write may have happened.
                core.wrote(what)
        assert isinstance(what, HotRead)
        return self._hot_read(base, argv, what, args, options)

    def _hot_read(
        self,
        base: Any,
        argv: tuple[bytes, ...],
        read: HotRead,
        args: tuple[Any, ...],
        options: dict[str, Any],
    ) -> Any:
        core = self.core
        if not core.recently_written(read.keys):
            # Without a control connection a fill would not be tracked: no caching then.
            if read.cache_ttl > 0 and self.options.cache and self._control_id is not None:
                ckey = cache_key(argv, options)
                if ckey is not None:
                    return self._cached(ckey, read, args, options)
            if read.replicas:
                answered, reply = self._on_replica(read, args, options)
                if answered:
                    return reply
        core.counters.bump("hot_reads_to_master")
        core.counters.bump("master")
        return base(*args, **options)

    def _cached(
        self, ckey: Any, read: HotRead, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Any:
        core = self.core
        key = read.keys[0]
        hit, value = core.cache_get(ckey, key)
        if not hit:
            # Concurrent misses of one reply make one fill: the others wait for it and hit.
            with core.fill_lock(ckey, threading.Lock):
                hit, value = core.cache_get(ckey, key)
                if not hit:
                    try:
                        return self._fill(ckey, read, args, options)
                    finally:
                        core.fill_done(ckey)
        core.counters.bump("cache_hits")
        core.served_elsewhere(read.keys)
        return value

    def _fill(
        self, ckey: Any, read: HotRead, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Any:
        core = self.core
        core.counters.bump("cache_misses")
        core.counters.bump("hot_reads_to_master")
        core.counters.bump("master")
        value = self.fill.execute_command(*args, **options)
        core.cache_put(ckey, read.keys[0], read, value)
        return value

    def _on_replica(
        self, read: HotRead, args: tuple[Any, ...], options: dict[str, Any]
    ) -> tuple[bool, Any]:
        core = self.core
        while True:
            picked = self._rotation.pick()
            if picked is None:
                return False, None
            replica, client = picked
            try:
                reply = client.execute_command(*args, **options)
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
        argv = self._args(args)
        kind, what = core.plan(argv)
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

    # The link's side.

    def set_replicas(self, replicas: tuple[Replica, ...]) -> None:
        for gone in self._rotation.set(replicas):
            gone.close()

    def probe(self) -> None:
        """Connects to the replicas out of rotation; those answering PING come back. One
        probe at a time."""
        if not self._probing.acquire(blocking=False):
            return
        try:
            self._probe_down()
        finally:
            self._probing.release()

    def _probe_down(self) -> None:
        for replica in self._rotation.down():
            cls, kwargs = node_kwargs(
                self.pool, replica.host, replica.port, self.options.replica_timeout
            )
            pool_class = _ReadonlyPool if self.cluster else redis.ConnectionPool
            client = redis.Redis(connection_pool=pool_class(connection_class=cls, **kwargs))
            client.response_callbacks = self.response_callbacks
            try:
                client.ping()
            except (RedisError, OSError):
                client.close()
                continue
            old = self._rotation.restore(replica, client)
            if old is not None and old is not client:
                old.close()


def _run_link(ref: weakref.ref[Router], stop: threading.Event) -> None:
    """The link thread: follows the module while the link lasts, reconnects with back-off,
    until the router is stopped or garbage."""
    delay = 0.05
    while not stop.is_set():
        router = ref()
        if router is None:
            return
        link = _Link(router, stop)
        reason = link.run()
        del router
        if stop.is_set():
            link.close()
            return
        # Once per outage: the attempts that follow fail the same way.
        level = logging.WARNING if link.synced_once else logging.DEBUG
        log.log(level, "hotkey router: link to the master lost (%s); reconnecting", reason)
        link.close()
        delay = (
            0.05
            if link.synced_once
            else min(delay * 2, max(link.options.reconnect_max_delay, 0.05))
        )
        stop.wait(delay)


class _Link:
    """One session of the link: its connections, and the loop that follows the module."""

    def __init__(self, router: Router, stop: threading.Event) -> None:
        self.router = router
        self.core = router.core
        self.options = router.options
        self.stop = stop
        self.admin: Any = None
        self.control: Any = None
        self.channel: bytes | None = None
        self.subscribe, self.unsubscribe = "SUBSCRIBE", "UNSUBSCRIBE"
        self.synced_once = False

    def close(self) -> None:
        core = self.core
        core.forget()
        self.router._control_id = None
        # Tracking redirected to the control connection ends with it.
        self.router.fill.connection_pool.disconnect()
        for conn in (self.admin, self.control):
            if conn is not None:
                conn.disconnect()

    def run(self) -> str:
        try:
            self._connect()
            return self._follow()
        except (RedisError, OSError, ProtocolError) as e:
            return str(e) or type(e).__name__

    def _call(self, *args: Any) -> Any:
        self.admin.send_command(*args)
        return self.admin.read_response()

    def _connect(self) -> None:
        router, core, options = self.router, self.core, self.options
        self.admin = link_connection(router.pool, options.connect_timeout)
        self.admin.connect()
        table = CommandTable.from_command_reply(self._call("COMMAND"))
        if len(table) == 0:
            raise ProtocolError("the master's COMMAND reply has no commands the router can read")
        core.commands = table
        self.control = link_connection(router.pool, options.connect_timeout)
        self.control.connect()
        self.control.send_command("CLIENT", "ID")
        control_id = int(self.control.read_response())
        self.control.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
        self._await_subscribed(INVALIDATE_CHANNEL)
        # Fill connections of an older control connection lost their redirect target.
        router.fill.connection_pool.disconnect()
        router._control_id = control_id
        core.counters.bump("connects")
        self._sync(first=True)

    def _sync(self, first: bool = False) -> None:
        """Subscribes to the module's channel, then reads ``HOTKEY.ROUTES``: no event falls
        between the two (those the snapshot holds are skipped by their ``seq``)."""
        try:
            routes = parse_routes(self._call("HOTKEY.ROUTES"))
        except ResponseError as e:
            log.warning("hotkey router: %s; routing everything to the master", e)
            self.core.forget()
            return
        channel = routes.channel.encode()
        if channel != self.channel:
            if self.channel is not None:
                self.control.send_command(self.unsubscribe, self.channel)
            # In a cluster the shard's channel is sharded: SSUBSCRIBE, on this shard's master.
            self.subscribe, self.unsubscribe = (
                ("SSUBSCRIBE", "SUNSUBSCRIBE") if routes.sharded else ("SUBSCRIBE", "UNSUBSCRIBE")
            )
            self.control.send_command(self.subscribe, channel)
            self.channel = channel
            self._await_subscribed(channel)
            routes = parse_routes(self._call("HOTKEY.ROUTES"))
        self.core.table.load(routes)
        self.core.cache_clear()
        self.router.set_replicas(routes.replicas)
        if not first:
            self.core.counters.bump("resyncs")
        self.synced_once = True
        self._probe()

    def _await_subscribed(self, channel: bytes) -> None:
        """Reads the control connection until the server confirms the subscription to
        ``channel`` (applying invalidations that arrive meanwhile)."""
        deadline = time.monotonic() + self.options.connect_timeout
        while time.monotonic() < deadline:
            if not self.control.can_read(timeout=0.05):
                continue
            message = self.control.read_response()
            if isinstance(message, list) and message[:2] in (
                [b"subscribe", channel],
                [b"ssubscribe", channel],
            ):
                return
            self._on_message(message)
        raise RedisTimeoutError(f"no confirmation of SUBSCRIBE {channel!r}")

    def _follow(self) -> str:
        options = self.options
        now = time.monotonic()
        heard = now
        next_report = now + options.report_interval
        next_probe = now + options.probe_interval
        while not self.stop.is_set():
            if self.router.core is not self.core:
                return "forked"
            now = time.monotonic()
            wait = min(heard + options.heartbeat_timeout, next_report, next_probe) - now
            if self.control.can_read(timeout=max(min(wait, 0.2), 0.0)):
                message = self.control.read_response()
                if self._on_message(message):
                    heard = time.monotonic()
                continue
            now = time.monotonic()
            if now >= heard + options.heartbeat_timeout:
                log.warning(
                    "hotkey router: no message from the module for %ss; re-reading the hot set",
                    options.heartbeat_timeout,
                )
                self._sync()
                heard = time.monotonic()
            if now >= next_report:
                self._report()
                next_report = now + options.report_interval
            if now >= next_probe:
                self._probe()
                next_probe = now + options.probe_interval
        return "stopped"

    def _on_message(self, message: Any) -> bool:
        """Applies one message of the control connection; True when it came from the module."""
        if self.stop.is_set():
            # The router was closed: its hot set stays forgotten.
            return False
        if not isinstance(message, list) or len(message) < 3:
            return False
        kind, channel, payload = message[0], message[1], message[2]
        if kind == b"sunsubscribe" and channel == self.channel:
            # The shard's slots moved away from the channel's slot: the server ended the
            # subscription. Re-read the hot set, which names the new channel.
            self.channel = None
            self._sync()
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
            self._sync()
            return True
        applied = self.core.table.apply(event)
        if applied is Applied.IN_ORDER:
            if event.kind is EventKind.REPLICAS:
                self.router.set_replicas(event.replicas)
                self._probe()
        elif applied is not Applied.OLD:
            log.warning(
                "hotkey router: %s at seq %s; re-reading the hot set", applied.value, event.seq
            )
            self._sync()
        return True

    def _probe(self) -> None:
        # Off the link thread: a replica that does not answer must not hold up invalidations.
        if self.router._rotation.down():
            threading.Thread(
                target=self.router.probe, daemon=True, name="redis-hotkey-probe"
            ).start()

    def _report(self) -> None:
        counts = self.core.take_served()
        if not counts:
            return
        args: list[Any] = ["HOTKEY.REPORT"]
        for key, n in counts.items():
            args += [key, n]
        try:
            self._call(*args)
        except ResponseError as e:
            self.core.counters.bump("report_errors")
            log.warning("hotkey router: HOTKEY.REPORT refused: %s", e)
            return
        except (RedisError, OSError):
            self.core.counters.bump("report_errors")
            self.core.restore_served(counts)
            raise
        self.core.counters.bump("reports")
