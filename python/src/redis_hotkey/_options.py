"""Settings and counters of a router."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, fields

CACHE_MAX_ENTRIES_DEPRECATED = (
    "Options.cache_max_entries is deprecated: the cache is bounded in bytes by "
    "cache_capacity_bytes (as in the Rust router)"
)


@dataclass(frozen=True)
class Options:
    """How a router behaves. Durations are in seconds."""

    cache: bool = True
    """Serve hot reads from the local cache when the module advises a TTL."""
    cache_capacity_bytes: int = 64 << 20
    """Bound of the cache, in bytes of commands and replies (roughly; the oldest go first)."""
    cache_max_entries: int | None = None
    """Deprecated (a warning when set): a bound on the replies kept, besides the bytes."""
    read_your_writes: float = 2.0
    """After this client writes a key, its reads of that key go to the master this long."""
    read_your_writes_keys: int = 100_000
    """How many recently written keys that window remembers."""
    report_interval: float = 1.0
    """How often ``HOTKEY.REPORT`` is sent."""
    heartbeat_timeout: float = 3.0
    """Silence on the channel after which the hot set is re-read."""
    replica_timeout: float = 0.5
    """A replica slower than this leaves the rotation."""
    probe_interval: float = 1.0
    """How often replicas out of rotation are tried again."""
    connect_timeout: float = 2.0
    """Time allowed to open the router's own connections."""
    reconnect_max_delay: float = 1.0
    """Longest pause between reconnect attempts of the link to the master."""

    def __post_init__(self) -> None:
        for name in ("report_interval", "heartbeat_timeout", "probe_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be above zero")
        if self.cache_capacity_bytes < 1 or self.read_your_writes_keys < 1:
            raise ValueError("cache_capacity_bytes and read_your_writes_keys must be at least 1")
        if self.cache_max_entries is not None:
            warnings.warn(CACHE_MAX_ENTRIES_DEPRECATED, DeprecationWarning, stacklevel=3)
            if self.cache_max_entries < 1:
                raise ValueError("cache_max_entries must be at least 1")


@dataclass(frozen=True)
class Metrics:
    """A snapshot of a router's counters, all since it started."""

    master: int = 0
    """Commands sent to the master through the router (cache fills included)."""
    replica: int = 0
    """Reads served by replicas."""
    cache_hits: int = 0
    """Reads served from the local cache."""
    cache_misses: int = 0
    """Cacheable reads fetched from the master."""
    hot_reads_to_master: int = 0
    """Reads of hot keys that went to the master anyway (fills, read-your-writes, no replica)."""
    invalidations: int = 0
    """Hot keys whose cached replies were dropped because the key was written."""
    resyncs: int = 0
    """Re-reads of the hot set after the first."""
    connects: int = 0
    """(Re)connections of the link to the master."""
    replica_errors: int = 0
    """Replica reads that failed or timed out."""
    reports: int = 0
    """``HOTKEY.REPORT`` sent."""
    report_errors: int = 0
    """``HOTKEY.REPORT`` that failed."""

    def __str__(self) -> str:
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


class Counters:
    """The live counters behind ``Metrics``; one lock, so no increment is lost between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys((f.name for f in fields(Metrics)), 0)

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def snapshot(self) -> Metrics:
        with self._lock:
            return Metrics(**self._values)
