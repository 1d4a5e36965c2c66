"""The sync router: the I/O of ``_flow`` run on the caller's thread, and the link on a thread
of its own (``_flow`` says what both do)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import redis

from ._connections import node_kwargs
from ._core import Core, ReplicaPool
from ._flow import Flavour, Served, Steps, T, TrackedPool, follow_module
from ._options import Options
from ._routes import Replica

_routers: weakref.WeakSet[Router] = weakref.WeakSet()


def drive(steps: Steps[T]) -> T:
    """Runs ``steps`` whose I/O has happened by the time it is yielded: each result goes
    straight back (an error was raised inside ``steps`` already)."""
    try:
        result = next(steps)
        while True:
            result = steps.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


def _after_fork_in_child() -> None:
    # The link thread did not survive the fork, and its sockets are the parent's: forget them
    # (without closing: the parent still uses them) and start over on the next command.
    for router in list(_routers):
        router._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _TrackedPool(TrackedPool, redis.ConnectionPool):
    def _on_connect(self, conn: Any) -> None:
        drive(self._tracking_on(conn))


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


class Router(Flavour):
    """Follows the module for one client (its pool) and routes its calls. ``cluster``: the
    pool reaches one master of a cluster, whose replicas need ``READONLY``."""

    def __init__(self, client: redis.Redis, options: Options, cluster: bool = False) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        super().__init__(client, options, cluster)
        _routers.add(self)

    # What this flavour does its own way.

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _fill_client(self) -> redis.Redis:
        kwargs = dict(self.pool.connection_kwargs)
        pool = _TrackedPool(self, self.pool.connection_class, **kwargs)
        client = redis.Redis(connection_pool=pool)
        client.response_callbacks = self.response_callbacks
        return client

    def _replica_client(self, replica: Replica) -> redis.Redis:
        cls, kwargs = node_kwargs(
            self.pool, replica.host, replica.port, self.options.replica_timeout
        )
        pool_class = _ReadonlyPool if self.cluster else redis.ConnectionPool
        client = redis.Redis(connection_pool=pool_class(connection_class=cls, **kwargs))
        client.response_callbacks = self.response_callbacks
        return client

    def _new_lock(self) -> threading.Lock:
        return threading.Lock()

    def _spawn(self, steps: Steps[None]) -> None:
        threading.Thread(
            target=drive, args=(steps,), daemon=True, name="redis-hotkey-probe"
        ).start()

    def read(self, conn: Any, timeout: float) -> Any:
        return conn.read_response() if conn.can_read(timeout=timeout) else None

    # Life cycle.

    def ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                steps = follow_module(weakref.ref(self), self._stop.wait)
                self._thread = threading.Thread(
                    target=drive, args=(steps,), daemon=True, name="redis-hotkey-link"
                )
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        drive(self.shut())

    def _forked(self) -> None:
        self._thread = None
        self._start_lock = threading.Lock()
        self._probing = threading.Lock()
        self.control_id = None
        self.core = Core(self.options, self.core.table.db)
        self.fill = self._fill_client()
        self._rotation = ReplicaPool()

    def execute(self, base: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        """Runs one call where the hot set says; ``base`` runs it on the caller's own pool."""
        if self._thread is None:
            self.ensure_started()
        steps = self.call(base, args, options)
        return steps.value if isinstance(steps, Served) else drive(steps)
