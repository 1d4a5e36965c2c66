"""The module's hot set as the router keeps it: ``HOTKEY.ROUTES`` snapshots and the numbered
events, applied in ``seq`` order. Pure: no I/O.

Each hot key carries an *epoch* that changes whenever something may have written the key (an
invalidation from the server, this client's own write, a resync). A cached reply remembers the
epoch it was read under and is served only while the key still has it, so a fill that raced
with a write is never served.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass
from enum import Enum


class ProtocolError(Exception):
    """A reply or event of the module that does not read as the documented format."""


@dataclass(frozen=True)
class Advice:
    """Where the module says a hot key's reads go, and how long they may be cached."""

    replicas: bool
    cache_ttl_ms: int


@dataclass(frozen=True)
class Replica:
    host: str
    port: int


@dataclass(frozen=True)
class Routes:
    """A parsed ``HOTKEY.ROUTES`` reply."""

    seq: int
    run_id: str
    channel: str
    sharded: bool
    """Subscribe with ``SSUBSCRIBE`` (a cluster: the shard's sharded channel)."""
    replicas: tuple[Replica, ...]
    keys: tuple[tuple[int, bytes, Advice], ...]
    node_id: str | None = None
    """In a cluster: the answering node's cluster id (``CLUSTER MYID``)."""


class EventKind(Enum):
    HOT = "hot"
    UPDATE = "update"
    COLD = "cold"
    REPLICAS = "replicas"
    OTHER = "other"


@dataclass(frozen=True)
class Message:
    """One event of the module's channel."""

    seq: int
    run_id: str
    kind: EventKind
    db: int = 0
    key: bytes | None = None
    advice: Advice | None = None
    replicas: tuple[Replica, ...] = ()
    node_id: str | None = None
    """In a cluster: the publishing node's cluster id."""


class Applied(Enum):
    IN_ORDER = "in order"
    OLD = "old"
    GAP = "gap"
    NEW_RUN = "new run"
    NOT_SYNCED = "not synced"
    OTHER_NODE = "another node's"


def _text(value: object, name: str) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, str):
        return value
    raise ProtocolError(f"bad value of field '{name}'")


def _number(value: object, name: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, str)):
        try:
            return int(value)
        except ValueError:
            pass
    raise ProtocolError(f"bad value of field '{name}'")


def _fields(value: object, what: str) -> dict[str, object]:
    """A map reply: a RESP2 flat field-value list (or a dict)."""
    if isinstance(value, dict):
        return {_text(k, "field name"): v for k, v in value.items()}
    if isinstance(value, list) and len(value) % 2 == 0:
        return {_text(value[i], "field name"): value[i + 1] for i in range(0, len(value), 2)}
    raise ProtocolError(f"{what}: not a map")


def _get(fields: dict[str, object], name: str) -> object:
    if name not in fields:
        raise ProtocolError(f"missing field '{name}'")
    return fields[name]


def _replica(value: object) -> Replica:
    f = _fields(value, "replica")
    return Replica(_text(_get(f, "host"), "host"), _number(_get(f, "port"), "port"))


def _advice(reads_to: object, ttl: object) -> Advice:
    return Advice(_text(reads_to, "reads_to") == "replicas", _number(ttl, "cache_ttl_ms"))


def parse_routes(reply: object) -> Routes:
    """Parses a ``HOTKEY.ROUTES`` reply read over RESP2 (bytes, not decoded)."""
    f = _fields(reply, "HOTKEY.ROUTES reply")
    replicas = _get(f, "replicas")
    keys = _get(f, "keys")
    if not isinstance(replicas, list) or not isinstance(keys, list):
        raise ProtocolError("HOTKEY.ROUTES reply: replicas and keys must be arrays")
    hot: list[tuple[int, bytes, Advice]] = []
    for entry in keys:
        k = _fields(entry, "hot key")
        key = _get(k, "key")
        if not isinstance(key, bytes):
            raise ProtocolError("bad value of field 'key'")
        advice = _advice(_get(k, "reads_to"), _get(k, "cache_ttl_ms"))
        hot.append((_number(_get(k, "db"), "db"), key, advice))
    return Routes(
        seq=_number(_get(f, "seq"), "seq"),
        run_id=_text(_get(f, "run_id"), "run_id"),
        channel=_text(_get(f, "channel"), "channel"),
        # Absent from modules older than the cluster support: classic pub/sub.
        sharded=_number(f.get("sharded", 0), "sharded") == 1,
        replicas=tuple(_replica(r) for r in replicas),
        keys=tuple(hot),
        node_id=_text(f["node_id"], "node_id") if "node_id" in f else None,
    )


def _event_key(obj: dict[str, object]) -> bytes:
    if isinstance(obj.get("key"), str):
        return str(obj["key"]).encode()
    b64 = obj.get("key_b64")
    if isinstance(b64, str):
        try:
            return base64.b64decode(b64, validate=True)
        except binascii.Error as e:
            raise ProtocolError(f"bad key_b64: {e}") from e
    raise ProtocolError("a key event without key or key_b64")


def parse_message(payload: bytes) -> Message:
    """Parses one event (a line of JSON); unknown events read as ``EventKind.OTHER``."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"bad event: {e}") from e
    if not isinstance(obj, dict):
        raise ProtocolError("bad event: not an object")
    seq = _number(obj.get("seq"), "seq")
    run_id = _text(obj.get("run_id"), "run_id")
    # Absent outside a cluster.
    node_id = _text(obj["node_id"], "node_id") if "node_id" in obj else None
    name = obj.get("event")
    kind = next((k for k in EventKind if k.value == name), EventKind.OTHER)
    if kind in (EventKind.HOT, EventKind.UPDATE, EventKind.COLD):
        advice = None
        if kind is not EventKind.COLD and "reads_to" in obj:
            advice = _advice(obj["reads_to"], obj.get("cache_ttl_ms", 0))
        db = _number(obj.get("db"), "db")
        return Message(seq, run_id, kind, db, _event_key(obj), advice, node_id=node_id)
    if kind is EventKind.REPLICAS:
        replicas = obj.get("replicas")
        if not isinstance(replicas, list):
            raise ProtocolError("bad value of field 'replicas'")
        nodes = tuple(_replica(r) for r in replicas)
        return Message(seq, run_id, kind, replicas=nodes, node_id=node_id)
    return Message(seq, run_id, kind, node_id=node_id)


class RouteTable:
    """The hot keys of one database, with epochs, and the healthy replicas.

    Unsynced (no hot keys, no replicas: everything goes to the master) until ``load`` and
    after ``unsync``. Thread-safe: the link thread writes, callers read.
    """

    def __init__(self, db: int) -> None:
        self.db = db
        self._lock = threading.Lock()
        self.synced = False
        self.run_id = ""
        self.seq = 0
        # In a cluster, the followed node's id: the run id and seq are that node's.
        self.node_id: str | None = None
        # key → (advice, epoch). Writers hold the lock; a reader's single `get` is atomic under
        # the GIL, so the hot path takes no lock.
        self.keys: dict[bytes, tuple[Advice, int]] = {}
        self.replicas: tuple[Replica, ...] = ()
        self._epoch = 0

    def load(self, routes: Routes) -> None:
        """Replaces everything with a snapshot; every key gets a fresh epoch."""
        with self._lock:
            keys: dict[bytes, tuple[Advice, int]] = {}
            for db, key, advice in routes.keys:
                if db == self.db:
                    self._epoch += 1
                    keys[key] = (advice, self._epoch)
            self.keys = keys
            self.replicas = routes.replicas
            self.run_id = routes.run_id
            self.seq = routes.seq
            self.node_id = routes.node_id
            self.synced = True

    def unsync(self) -> None:
        with self._lock:
            self.synced = False
            self.keys = {}
            self.replicas = ()

    def apply(self, message: Message) -> Applied:
        """Applies one message, in ``seq`` order. A message another node of the cluster
        published (classic pub/sub reaches every node) is not the followed node's: its ``seq``
        and ``run_id`` count another node's messages."""
        with self._lock:
            if None not in (message.node_id, self.node_id) and message.node_id != self.node_id:
                return Applied.OTHER_NODE
            if not self.synced:
                return Applied.NOT_SYNCED
            if message.run_id != self.run_id:
                return Applied.NEW_RUN
            if message.seq <= self.seq:
                return Applied.OLD
            if message.seq != self.seq + 1:
                return Applied.GAP
            self.seq = message.seq
            kind = message.kind
            if kind in (EventKind.HOT, EventKind.UPDATE) and message.db == self.db:
                assert message.key is not None
                if message.advice is None:
                    # A key event without advice cannot be routed: its reads go to the master.
                    self.keys.pop(message.key, None)
                else:
                    old = self.keys.get(message.key)
                    if old is None:
                        self._epoch += 1
                        epoch = self._epoch
                    else:
                        epoch = old[1]
                    self.keys[message.key] = (message.advice, epoch)
            elif kind is EventKind.COLD and message.db == self.db:
                assert message.key is not None
                self.keys.pop(message.key, None)
            elif kind is EventKind.REPLICAS:
                self.replicas = message.replicas
            return Applied.IN_ORDER

    def invalidate(self, key: bytes) -> bool:
        """Something may have written ``key``: its cached replies stop counting."""
        with self._lock:
            entry = self.keys.get(key)
            if entry is None:
                return False
            self._epoch += 1
            self.keys[key] = (entry[0], self._epoch)
            return True

    def invalidate_all(self) -> int:
        """Every cached reply stops counting; returns how many hot keys there were."""
        with self._lock:
            for key, (advice, _) in list(self.keys.items()):
                self._epoch += 1
                self.keys[key] = (advice, self._epoch)
            return len(self.keys)
