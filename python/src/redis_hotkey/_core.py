"""What the sync and asyncio routers share: the decision where a command goes (from the command
table and the hot set alone, no I/O), the cache, the read-your-writes window, the counts for
``HOTKEY.REPORT`` and the replicas in rotation.

The rule, as in the Rust router (book, "Where a command goes"; both are checked against
``protocol/testdata/routing*.json`` by ``tests/test_corpus.py`` and ``routing/corpus.rs``):
1. Commands the table does not know, keyless commands, scripts and transactions, and commands
   whose keys only the server can find go to the master. So do calls that may block
   (``_commands.may_block``: not ``XREAD`` without ``BLOCK``, which is a read).
2. A script whose key specs say ``RW`` (``EVAL``, ``EVALSHA``, ``FCALL``) writes every key it
   declares: nobody but the script knows which ones it touches, and a key left out would be
   served stale from the cache right after this client's own write. ``_RO`` scripts write
   nothing.
3. A command that writes any key, or is not flagged ``readonly``, goes to the master; the keys
   it writes (all its keys for ``XREADGROUP``: ``writes_its_read_keys``) are invalidated in the
   cache and enter the read-your-writes window.
4. A read goes off the master only when every key it reads is hot and none was written by this
   client within the window: to the cache when it reads exactly one key, its reply is
   deterministic and the advice gives a TTL; to a replica when every key's advice says
   ``reads_to: replicas`` and one is in rotation; else to the master.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from ._commands import CommandTable, Kind, may_block
from ._options import Counters, Options
from ._routes import Replica, RouteTable

MASTER = 0
WRITE = 1
HOT = 2

C = TypeVar("C")
L = TypeVar("L")


class HotRead(NamedTuple):
    """A read of hot keys only. (A named tuple: made on every hot read, and a frozen
    dataclass costs several times more to build.)"""

    keys: tuple[bytes, ...]
    cache_ttl: float
    """Seconds to cache the reply (0: not cacheable)."""
    epoch: int
    """The key's epoch when routed (for the cache)."""
    replicas: bool


Plan = tuple[int, tuple[bytes, ...]] | tuple[int, HotRead]


class ArgEncoder:
    """Arguments as the server sees them: redis-py's encoding of the client (its ``encoding``
    and ``encoding_errors``), and a command name with spaces (``"CONFIG GET"``) split as
    redis-py's packer splits it. ``bytes`` and ``str`` take a fast path; the rest goes
    through redis-py's own encoder."""

    def __init__(self, encoder: Any) -> None:
        self._encode = encoder.encode
        self._encoding: str = encoder.encoding
        self._errors: str = encoder.encoding_errors

    def __call__(self, args: Sequence[Any]) -> tuple[bytes, ...]:
        out: list[bytes] = []
        for i, arg in enumerate(args):
            kind = type(arg)
            if kind is bytes:
                out.append(arg)
            elif kind is str:
                if i == 0 and " " in arg:
                    out += (part.encode() for part in arg.split())
                else:
                    out.append(arg.encode(self._encoding, self._errors))
            else:
                out.append(self._encode(arg))
        return tuple(out)


def copy_reply(value: Any) -> Any:
    """A copy of a cached reply the caller may change without changing the cache."""
    if value is None or isinstance(value, (bytes, str, int, float, bool)):
        return value
    if isinstance(value, list):
        return [copy_reply(v) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(copy_reply(v) for v in value)
    if isinstance(value, dict) and type(value) is dict:
        return {k: copy_reply(v) for k, v in value.items()}
    if isinstance(value, set) and type(value) is set:
        return set(value)
    return copy.deepcopy(value)


class ReplicaPool(Generic[C]):
    """The replicas hot reads may go to: the module's healthy ones minus those that failed
    this router (out of rotation until a probe answers). Round-robin over the rest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: list[tuple[Replica, C | None]] = []
        self._next = 0

    def set(self, replicas: Sequence[Replica]) -> list[C]:
        """The replicas are now ``replicas``; known ones keep their client, new ones wait for a
        probe. Returns the clients of the replicas that left, to close."""
        with self._lock:
            old = dict(self._nodes)
            self._nodes = [(r, old.pop(r, None)) for r in replicas]
            return [c for c in old.values() if c is not None]

    def pick(self) -> tuple[Replica, C] | None:
        with self._lock:
            n = len(self._nodes)
            for i in range(n):
                replica, client = self._nodes[(self._next + i) % n]
                if client is not None:
                    self._next = (self._next + i + 1) % n
                    return replica, client
            return None

    def fail(self, replica: Replica) -> C | None:
        """``replica`` failed a read: out of rotation. Returns its client, to close."""
        return self._put(replica, None)

    def restore(self, replica: Replica, client: C) -> C | None:
        """A probe of ``replica`` answered: back in rotation with ``client``."""
        return self._put(replica, client)

    def _put(self, replica: Replica, client: C | None) -> C | None:
        with self._lock:
            for i, (r, old) in enumerate(self._nodes):
                if r == replica:
                    self._nodes[i] = (r, client)
                    return old
            return client

    def down(self) -> list[Replica]:
        with self._lock:
            return [r for r, c in self._nodes if c is None]

    def up(self) -> int:
        with self._lock:
            return sum(1 for _, c in self._nodes if c is not None)

    def all(self) -> list[tuple[str, bool]]:
        with self._lock:
            return [(f"{r.host}:{r.port}", c is not None) for r, c in self._nodes]


class Core:
    """The router's state, shared by the caller's threads and the link."""

    def __init__(self, options: Options, db: int) -> None:
        self.options = options
        self.commands = CommandTable()
        self.table = RouteTable(db)
        self.counters = Counters()
        # command (args, options) → (reply, key, epoch, expires at, size).
        self._cache: dict[Hashable, tuple[Any, bytes, int, float, int]] = {}
        self.cache_bytes = 0
        """The sizes (``reply_size``) of the cached commands and replies, summed."""
        self._cache_lock = threading.Lock()
        # command → the lock of its fill in progress (a threading.Lock or an asyncio.Lock).
        self._fill_locks: dict[Hashable, Any] = {}
        # key → when its read-your-writes window ends.
        self._recent: dict[bytes, float] = {}
        self._recent_lock = threading.Lock()
        # key → reads served off the master since the last report.
        self._served: dict[bytes, int] = {}
        self._served_lock = threading.Lock()

    # The decision.

    def plan(self, args: tuple[bytes, ...]) -> Plan:
        spec = self.commands.lookup(args)
        if spec is None:
            return (MASTER, ())
        if spec.kind is Kind.SCRIPT:
            written = tuple(dict.fromkeys(k for k, w in spec.keys(args) if w))
            return (WRITE, written) if written else (MASTER, ())
        if spec.kind is not Kind.KEYS or spec.movable:
            return (MASTER, ())
        table = self.table
        single = spec.single_key
        if single is not None and not spec.blocking:
            # The common shape (GET k, SET k v, ZREVRANGE k …), without building key lists.
            pos, write = single
            if pos >= len(args):
                return (MASTER, ())
            key = args[pos]
            if write or not spec.readonly:
                return (WRITE, (key,) if write or spec.writes_its_read_keys else ())
            entry = table.keys.get(key) if table.synced else None
            if entry is None:
                return (MASTER, ())
            advice, epoch = entry
            ttl = advice.cache_ttl_ms / 1000.0 if spec.deterministic else 0.0
            return (HOT, HotRead((key,), ttl, epoch, advice.replicas))
        keys = spec.keys(args)
        if spec.writes_its_read_keys:
            writes = tuple(dict.fromkeys(k for k, _ in keys))
        else:
            writes = tuple(dict.fromkeys(k for k, w in keys if w))
        if writes or not spec.readonly or may_block(spec, args):
            return (WRITE, writes)
        if not table.synced or not keys:
            return (MASTER, ())
        reads = tuple(dict.fromkeys(k for k, _ in keys))
        hot = table.keys
        replicas = True
        cache_ttl = 0.0
        epoch = 0
        for key in reads:
            entry = hot.get(key)
            if entry is None:
                return (MASTER, ())
            advice, epoch = entry
            replicas = replicas and advice.replicas
            if len(reads) == 1 and spec.deterministic and advice.cache_ttl_ms > 0:
                cache_ttl = advice.cache_ttl_ms / 1000.0
        return (HOT, HotRead(reads, cache_ttl, epoch, replicas))

    # Read-your-writes and invalidation.

    def wrote(self, keys: Sequence[bytes]) -> None:
        """This client wrote ``keys``: drop their cached replies and read them from the master
        for the read-your-writes window."""
        if not keys:
            return
        for key in keys:
            if self.table.invalidate(key):
                self.counters.bump("invalidations")
        until = time.monotonic() + self.options.read_your_writes
        with self._recent_lock:
            recent = self._recent
            for key in keys:
                recent.pop(key, None)
                recent[key] = until
            # Oldest first: dicts keep insertion order.
            while len(recent) > self.options.read_your_writes_keys:
                del recent[next(iter(recent))]

    def recently_written(self, keys: Sequence[bytes]) -> bool:
        recent = self._recent
        if not recent:
            return False
        now = time.monotonic()
        return any(recent.get(k, 0.0) > now for k in keys)

    def invalidated(self, keys: Sequence[bytes] | None) -> None:
        """The server says ``keys`` changed (None: every key, e.g. ``FLUSHALL``)."""
        if keys is None:
            self.counters.bump("invalidations", self.table.invalidate_all())
            return
        for key in keys:
            if self.table.invalidate(key):
                self.counters.bump("invalidations")

    # The cache.

    def cache_get(self, ckey: Hashable, key: bytes) -> tuple[bool, Any]:
        """The cached reply of a command, if it was read under the key's current epoch and has
        not expired."""
        entry = self._cache.get(ckey)
        if entry is None:
            return False, None
        value, _, epoch, expires, size = entry
        current = self.table.keys.get(key)
        if current is None or current[1] != epoch or expires <= time.monotonic():
            with self._cache_lock:
                if self._cache.get(ckey) is entry:
                    del self._cache[ckey]
                    self.cache_bytes -= size
            return False, None
        return True, copy_reply(value)

    def cache_put(self, ckey: Hashable, key: bytes, read: HotRead, value: Any) -> None:
        """Keeps the reply of a fill read under ``read.epoch`` (served only while the key keeps
        that epoch). The oldest replies go to keep the cache within ``cache_capacity_bytes``
        (and ``cache_max_entries`` when set); a reply larger than the whole cache is not kept."""
        size = reply_size(ckey) + reply_size(value)
        bound = self.options.cache_capacity_bytes
        max_entries = self.options.cache_max_entries
        with self._cache_lock:
            cache = self._cache
            old = cache.pop(ckey, None)
            if old is not None:
                self.cache_bytes -= old[4]
            if size > bound:
                return
            expires = time.monotonic() + read.cache_ttl
            cache[ckey] = (copy_reply(value), key, read.epoch, expires, size)
            self.cache_bytes += size
            # Oldest first: dicts keep insertion order.
            while self.cache_bytes > bound or (
                max_entries is not None and len(cache) > max_entries
            ):
                self.cache_bytes -= cache.pop(next(iter(cache)))[4]

    def fill_lock(self, ckey: Hashable, make: Callable[[], L]) -> L:
        """The lock that callers missing the same reply share while one of them fills it."""
        with self._cache_lock:
            lock = self._fill_locks.get(ckey)
            if lock is None:
                lock = self._fill_locks[ckey] = make()
            return lock

    def fill_done(self, ckey: Hashable) -> None:
        """The fill of ``ckey`` ended; later misses make a lock of their own."""
        with self._cache_lock:
            self._fill_locks.pop(ckey, None)

    def cache_clear(self) -> None:
        with self._cache_lock:
            self._cache = {}
            self.cache_bytes = 0

    # Reports.

    def served_elsewhere(self, keys: Sequence[bytes]) -> None:
        with self._served_lock:
            served = self._served
            for key in keys:
                served[key] = served.get(key, 0) + 1

    def take_served(self) -> dict[bytes, int]:
        with self._served_lock:
            served, self._served = self._served, {}
            return served

    def restore_served(self, counts: dict[bytes, int]) -> None:
        with self._served_lock:
            for key, n in counts.items():
                self._served[key] = self._served.get(key, 0) + n

    # The hot set.

    def forget(self) -> None:
        """Forgets the hot set and the cache: everything goes to the master."""
        self.table.unsync()
        self.cache_clear()


# What a value costs besides its strings' lengths (a reference and a small object), as the Rust
# router counts a fixed size per reply value: a reply of many small numbers is not free.
VALUE_COST = 16


def reply_size(value: Any) -> int:
    """Roughly the bytes a reply (or a cache key: the call's arguments) holds, counted as the
    Rust router counts them: the lengths of its strings, and ``VALUE_COST`` per value."""
    if isinstance(value, (bytes, str, bytearray, memoryview)):
        return VALUE_COST + len(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return VALUE_COST + sum(reply_size(v) for v in value)
    if isinstance(value, dict):
        return VALUE_COST + sum(reply_size(k) + reply_size(v) for k, v in value.items())
    return VALUE_COST


def cache_key(args: tuple[bytes, ...], options: dict[str, Any]) -> Hashable | None:
    """The cache entry of a call: its arguments and the options that shape redis-py's parse of
    the reply (``withscores``, ``score_cast_func``…). None when an option cannot be hashed."""
    if not options or (len(options) == 1 and "keys" in options):
        return args
    items = tuple(sorted((k, v) for k, v in options.items() if k != "keys"))
    try:
        hash(items)
    except TypeError:
        return None
    return (args, items)
