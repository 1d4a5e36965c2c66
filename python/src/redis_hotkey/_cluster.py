"""What the sync and asyncio ``RedisCluster`` share: one router per master, the choice of a
command's router by the slot of its first key, read-your-writes for cluster pipelines, and the
routers' views summed over the shards.

A cluster is a set of single-master loops (the book, "Redis Cluster"): each master's module
publishes its shard's hot set on a sharded channel. A client keeps one router per master it has
sent a keyed command to, and decides a command by the router of the shard that serves its first
key's slot: writes and cold reads go through redis-py's cluster client as usual (slot map,
``MOVED``/``ASK``, retries); reads of that shard's hot keys go to the router's cache (filled
from that master, tracked there) or to the shard's replicas (``READONLY``). A router whose
master no longer serves the slot (resharding, failover) is not asked: the slot's new master
gets its own.

Commands that name no key follow the one keyless rule (``_commands.keyless_group``): every
master or every node with the replies merged, one random master, or refused with ``NotRouted``
naming the command, as the Rust router refuses them; in a cluster pipeline too
(``KeylessPipeline``). ``SCAN`` goes over every master with one cursor (``_scan``). A call
that picks its nodes (``target_nodes=``) and redis-py's ``CLUSTER`` commands (``cluster_*()``)
go where redis-py sends them.
"""

from __future__ import annotations

import random
import threading
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis
from redis.exceptions import ClusterDownError, RedisClusterException, ResponseError

from ._commands import (
    ALL_MASTERS_ALL_OK,
    ALL_MASTERS_CONCAT,
    ALL_MASTERS_SUM,
    ALL_NODES,
    RANDOM_MASTER,
    REFUSED,
    keyless_group,
)
from ._flow import Flavour
from ._options import Metrics, Options
from ._scan import ClusterCursor, MasterOrder, ScanStep, node_reply, scan_step

NOT_ROUTED = (
    "not routed on a cluster: it names no key, and no one node's reply means what it means on "
    "one server"
)
"""The words of ``NotRouted`` after the command's name (the Rust router's ``NOT_ROUTED``)."""


class NotRouted(RedisClusterException):
    """On a cluster: the command names no key and is about one connection or one node
    (``INFO``, ``CONFIG``, ``SELECT``, ``WAIT``...), so no choice of node keeps its meaning; it
    was not sent. ``target_nodes=`` names the nodes to send it to."""

    def __init__(self, command: str) -> None:
        super().__init__(f"{command}: {NOT_ROUTED}; pass target_nodes= to choose the nodes")
        self.command = command


def _name(args: Sequence[Any]) -> bytes:
    """The command's name in lower case (the first word of ``"CLUSTER INFO"``)."""
    if not args:
        return b""
    first = args[0]
    text = first if isinstance(first, bytes) else str(first).encode()
    return text.split(b" ", 1)[0].lower()


def is_scan(args: Sequence[Any]) -> bool:
    """``SCAN`` (by name: it names no key, and needs no command table to know it)."""
    return _name(args) == b"scan"


class ClusterRouters:
    """The routers of a cluster client, one per master (``host:port``), mixed into redis-py's
    sync or asyncio ``RedisCluster``; the flavour makes a router of a node."""

    _hotkey_settings: Options
    _hotkey_routers: dict[str, Flavour]
    # redis-py's, on the cluster client this is mixed into.
    keyslot: Any
    nodes_manager: Any
    get_nodes: Any
    get_primaries: Any

    def _hotkey_init(self, hotkey: Options | None, default: Options) -> None:
        # Before the parent's __init__: the sync one sends commands (COMMAND) through
        # execute_command.
        self._hotkey_settings = hotkey or default
        self._hotkey_routers = {}
        self._hotkey_masters = MasterOrder()
        # A threading lock in both flavours: nothing is awaited while it is held.
        self._hotkey_lock = threading.Lock()

    @abstractmethod
    def _hotkey_new_router(self, node: Any) -> Flavour:
        """A started router of the master ``node``."""

    def _hotkey_node_router(self, node: Any) -> Flavour:
        router = self._hotkey_routers.get(node.name)
        if router is None:
            with self._hotkey_lock:
                router = self._hotkey_routers.get(node.name)
                if router is None:
                    router = self._hotkey_new_router(node)
                    self._hotkey_routers[node.name] = router
        return router

    def _hotkey_router(self, key: Any) -> Flavour | None:
        """The router of the shard that serves ``key``, if the slot map knows that shard."""
        try:
            node = self.nodes_manager.get_node_from_slot(self.keyslot(key))
        except (redis.RedisError, RedisClusterException, IndexError, KeyError, TypeError):
            return None
        if node is None:
            return None
        return self._hotkey_node_router(node)

    def _hotkey_router_for(self, args: Sequence[Any]) -> Flavour | None:
        """The router of ``args``' shard. The command table says where the key is; the slot is
        that of the first key (a cluster rejects multi-slot commands anyway)."""
        if not args:
            return None
        any_router = next(iter(self._hotkey_routers.values()), None)
        if any_router is not None and any_router.core.table.synced:
            argv = any_router._args(args)
            spec = any_router.core.commands.lookup(argv)
            if spec is None:
                return None
            keys = spec.keys(argv)
            return self._hotkey_router(keys[0][0]) if keys else None
        # No router knows the command table yet: the second argument is the key of most keyed
        # commands, and a router there learns the table.
        return self._hotkey_router(args[1]) if len(args) > 1 else None

    def _hotkey_keyless(self, args: Sequence[Any]) -> tuple[str, Any] | None:
        """For a command that names no key, its group of the one keyless rule
        (``_commands.keyless_group``) and the nodes to send it to; None for a keyed command, a
        ``CLUSTER`` one (redis-py's ``cluster_*()``), or while no router has read the command
        table (redis-py's own routing then; the default master's router is started, so the
        rule applies as soon as it has). A refused one raises ``NotRouted``."""
        if not args or _name(args) == b"cluster":
            return None
        routers = list(self._hotkey_routers.values())
        router = next((r for r in routers if len(r.core.commands) > 0), None)
        if router is None:
            if not routers:
                self._hotkey_start_default()
            return None
        argv = router._args(args)
        spec = router.core.commands.lookup(argv)
        if spec is None or spec.keys(argv):
            return None
        group = keyless_group(argv)
        if group == REFUSED:
            raise NotRouted(argv[0].decode("utf-8", "replace").upper())
        if group == ALL_NODES:
            return group, self.get_nodes()
        masters = self.get_primaries()
        if group == RANDOM_MASTER:
            return group, random.choice(masters)
        return group, masters

    def _hotkey_start_default(self) -> None:
        # None until the asyncio client's first command has read the slot map.
        node = getattr(self.nodes_manager, "default_node", None)
        if node is not None and node.server_type == "primary":
            self._hotkey_node_router(node)

    def _hotkey_scan(self, args: Sequence[Any]) -> tuple[ScanStep, tuple[Any, ...]] | None:
        """``SCAN cursor [MATCH p] [COUNT n] [TYPE t]`` over the cluster: the master to ask and
        the command for it (that node's own cursor); None when no master is left after the
        cursor's slot (the scan is over)."""
        if len(args) < 2:
            raise ResponseError("wrong number of arguments for 'scan' command")
        cursor = ClusterCursor.parse(args[1])
        slots = self.nodes_manager.slots_cache
        if not slots:
            raise ClusterDownError("SCAN: the slot map names no master")
        primaries = {node.name for node in self.get_primaries()}
        step = scan_step(cursor, slots, self._hotkey_masters.masters(slots, primaries))
        if step is None:
            return None
        return step, ("SCAN", str(step.at.node_cursor), *args[2:])

    @staticmethod
    def _hotkey_scanned(step: ScanStep, reply: Any) -> tuple[int, list[Any]]:
        """The caller's ``(cursor, keys)`` from the reply of ``step``'s master."""
        node_next, keys = node_reply(reply)
        return step.at.next(node_next, step.next_shard), keys

    def scan_iter(
        self, match: Any = None, count: Any = None, _type: Any = None, **kwargs: Any
    ) -> Any:
        """Every key of every master, through the cluster cursor; with ``target_nodes=``,
        redis-py's scan of those nodes."""
        if "target_nodes" in kwargs:
            return super().scan_iter(match, count, _type, **kwargs)  # type: ignore[misc]
        return self._hotkey_scan_iter(match, count, _type, **kwargs)

    @abstractmethod
    def _hotkey_scan_iter(self, match: Any, count: Any, _type: Any, **kwargs: Any) -> Any:
        """The flavour's iterator over a cluster scan."""

    def _hotkey_wrote_pipeline(
        self, stack: Sequence[tuple[Sequence[Any], Mapping[str, Any]]]
    ) -> None:
        """A cluster pipeline ran: the keys its commands write count as this client's writes,
        each on the router of its shard."""
        by_router: dict[int, tuple[Flavour, list[tuple[Sequence[Any], Mapping[str, Any]]]]] = {}
        for args, options in stack:
            router = self._hotkey_router_for(args)
            if router is not None:
                by_router.setdefault(id(router), (router, []))[1].append((args, options))
        for router, commands in by_router.values():
            router.wrote_pipeline(commands)

    # The routers' view, summed or merged over the shards.

    def hotkey_metrics(self) -> Metrics:
        """The routers' counters, summed over the shards."""
        totals: dict[str, int] = {}
        for router in list(self._hotkey_routers.values()):
            for name, value in vars(router.metrics()).items():
                totals[name] = totals.get(name, 0) + value
        return Metrics(**totals)

    def hotkey_route(self, *args: Any) -> str:
        """Where a call would go now: ``master``, ``replica`` or ``cache`` (no I/O)."""
        router = self._hotkey_router_for(args)
        return "master" if router is None else router.route(args)

    def hotkey_synced(self) -> bool:
        """True while every shard's router this client started follows its module."""
        routers = list(self._hotkey_routers.values())
        return bool(routers) and all(r.is_synced() for r in routers)

    def hotkey_keys(self) -> dict[bytes, Any]:
        """The hot keys of every shard, with their module's advice."""
        keys: dict[bytes, Any] = {}
        for router in list(self._hotkey_routers.values()):
            keys.update(router.hot_keys())
        return keys

    def hotkey_replicas(self) -> list[tuple[str, bool]]:
        """Every shard's healthy replicas and whether each is in rotation."""
        return [r for router in list(self._hotkey_routers.values()) for r in router.replicas()]


def merge_keyless(group: str, reply: Any) -> Any:
    """One reply of a keyless command sent to several nodes: redis-py hands a dict, node name
    to reply, when it has no merge of its own for the command."""
    if not isinstance(reply, dict):
        return reply
    replies = list(reply.values())
    if group == ALL_MASTERS_SUM:
        return sum(replies)
    if group == ALL_MASTERS_CONCAT:
        return [item for part in replies for item in part]
    if group in (ALL_MASTERS_ALL_OK, ALL_NODES):
        first = replies[0] if replies else True
        if any(r != first for r in replies):
            raise ResponseError(f"the nodes disagree: {reply!r}")
        return first
    return reply


KEYLESS_METHODS = (
    "dbsize",
    "keys",
    "flushall",
    "flushdb",
    "ping",
    "randomkey",
    "publish",
    "script_load",
    "script_flush",
    "scan",
)
"""The methods of the commands the keyless rule sends somewhere, and of ``SCAN``, which
redis-py's cluster pipelines block (no one node answers them); ``KeylessPipeline`` routes
them."""


def unblock_keyless(pipeline: type, client: type) -> None:
    """Gives ``pipeline`` the client's ``KEYLESS_METHODS`` (each queues its command through
    ``execute_command``) in place of redis-py's blocked ones; those the client lacks
    (redis-py 5.0's asyncio cluster client has no ``publish()``) stay as they are."""
    for name in KEYLESS_METHODS:
        method = getattr(client, name, None)
        if method is not None:
            setattr(pipeline, name, method)


@dataclass(frozen=True)
class _Routed:
    """A command of a cluster pipeline that the client routes itself: queued in redis-py's
    pipeline once per node of ``nodes`` from position ``at`` (for no node when a ``SCAN``
    cursor is at the end); ``answer`` makes its one reply of its nodes' replies."""

    at: int
    nodes: tuple[str, ...]
    answer: Callable[[Sequence[Any]], Any]

    def merge(self, replies: Sequence[Any]) -> Any:
        """The command's reply: the first error if a node failed, else what a single call
        answers."""
        error = next((r for r in replies if isinstance(r, Exception)), None)
        if error is not None:
            return error
        try:
            return self.answer(replies)
        except ResponseError as disagree:
            return disagree


def _keyless_answer(group: str, nodes: tuple[str, ...], replies: Sequence[Any]) -> Any:
    if len(replies) == 1:
        return replies[0]
    return merge_keyless(group, dict(zip(nodes, replies, strict=True)))


def _scan_answer(step: ScanStep | None, replies: Sequence[Any]) -> Any:
    if step is None:
        return (0, [])
    return ClusterRouters._hotkey_scanned(step, replies[0])


class KeylessPipeline:
    """The one keyless rule in a cluster pipeline, mixed into the sync and asyncio
    ``ClusterPipeline``: a refused command raises ``NotRouted`` when queued (as a single call
    does before sending anything: the pipeline is not sent half-known), and one of another
    group is queued once per node of its group with ``target_nodes=`` that node (redis-py 5.0
    refuses a pipelined command with several targets; 8.x routes each command by its own
    policy), its replies merged into one at its place in the pipeline's reply list. ``SCAN``
    takes the step of the cluster cursor that a single call takes."""

    _hotkey_cluster: ClusterRouters
    _hotkey_routed: list[_Routed]

    def _hotkey_queue(
        self,
        queue: Callable[..., Any],
        queued: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Queues ``args`` with redis-py's ``queue``, which holds ``queued`` commands so far.
        A command that names its nodes and a keyed one go as redis-py queues them; so does a
        keyless one while no router has read the command table."""
        cluster = self._hotkey_cluster
        if "target_nodes" in kwargs:
            return queue(*args, **kwargs)
        if is_scan(args):
            scan = cluster._hotkey_scan(args)
            if scan is None:
                # The cursor is at the end: answered without a node.
                self._hotkey_routed.append(_Routed(queued, (), partial(_scan_answer, None)))
                return self
            step, command = scan
            answer = partial(_scan_answer, step)
            self._hotkey_routed.append(_Routed(queued, (step.node.name,), answer))
            return queue(*command, target_nodes=step.node, **kwargs)
        keyless = cluster._hotkey_keyless(args)
        if keyless is None:
            return queue(*args, **kwargs)
        group, nodes = keyless
        targets = nodes if isinstance(nodes, list) else [nodes]
        names = tuple(n.name for n in targets)
        pipe = None
        for node in targets:
            pipe = queue(*args, target_nodes=node, **kwargs)
        self._hotkey_routed.append(_Routed(queued, names, partial(_keyless_answer, group, names)))
        return pipe

    def _hotkey_take_routed(self) -> list[_Routed]:
        routed, self._hotkey_routed = self._hotkey_routed, []
        return routed

    @staticmethod
    def _hotkey_merged(
        routed: Sequence[_Routed], replies: Sequence[Any], raise_on_error: bool
    ) -> list[Any]:
        """The pipeline's replies, one per command queued by the caller, from redis-py's (run
        with ``raise_on_error=False`` when it holds a ``_Routed`` command, so that the first error
        raised is numbered by the caller's position)."""
        merged = list(replies)
        for command in reversed(routed):
            end = command.at + len(command.nodes)
            merged[command.at : end] = [command.merge(merged[command.at : end])]
        if raise_on_error:
            for number, reply in enumerate(merged, 1):
                if isinstance(reply, Exception):
                    first = reply.args[0] if reply.args else repr(reply)
                    message = f"Command # {number} of pipeline caused error: {first}"
                    reply.args = (message, *reply.args[1:])
                    raise reply
        return merged
