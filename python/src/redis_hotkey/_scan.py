"""``SCAN`` over a cluster through one cursor, as ``hotkey_protocol::scan`` (``protocol/src/
scan.rs``) makes it for the Rust router and the proxy, so a cursor means the same everywhere:
``node_cursor << 14 | slot``, in decimal. The slot names the shard being scanned (its lowest
slot when the scan moved to it), so the cursor still means that shard after the slot map is
read again; ``0`` is both the start and, from a reply, the end. The masters are scanned one
after another in the order of their lowest slots, each key of a shard that stays put once.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from redis.exceptions import ResponseError

SLOT_BITS = 14
SLOT_MASK = (1 << SLOT_BITS) - 1
_MAX = (1 << 64) - 1

INVALID_CURSOR = "invalid cursor"
"""Redis's ``ERR invalid cursor``, as redis-py raises it (``ResponseError``, ``ERR `` cut)."""


class ClusterCursor(NamedTuple):
    """A position in a scan over a cluster: a slot of the shard, and that node's cursor."""

    slot: int
    node_cursor: int

    @staticmethod
    def parse(cursor: Any) -> ClusterCursor:
        """The cursor a caller passed (an int, or its decimal text as ``str`` or ``bytes``);
        anything else is ``ResponseError("invalid cursor")``, as from Redis."""
        if isinstance(cursor, bool):
            raise ResponseError(INVALID_CURSOR)
        if isinstance(cursor, int):
            value = cursor
        else:
            text = cursor.decode("latin-1") if isinstance(cursor, bytes) else cursor
            if not isinstance(text, str) or not text.isascii() or not text.isdigit():
                raise ResponseError(INVALID_CURSOR)
            value = int(text)
        if not 0 <= value <= _MAX:
            raise ResponseError(INVALID_CURSOR)
        return ClusterCursor(value & SLOT_MASK, value >> SLOT_BITS)

    def next(self, node_next: int, next_shard: int | None) -> int:
        """The cursor after the master of ``self.slot`` replied ``node_next``: this shard
        further on, or once it is done (``node_next`` 0) the start of the shard whose lowest
        slot is ``next_shard`` (None: the scan is over, 0)."""
        if node_next == 0:
            return 0 if next_shard is None else next_shard & SLOT_MASK
        if node_next >> (64 - SLOT_BITS):
            raise ResponseError(
                f"the node's SCAN cursor {node_next} is too large to carry with its slot"
            )
        return node_next << SLOT_BITS | self.slot & SLOT_MASK


class ScanStep(NamedTuple):
    """One call of a cluster scan: the master to ask, from where, and what comes after it."""

    node: Any
    at: ClusterCursor
    next_shard: int | None


Masters = list[tuple[int, Any]]
"""The masters of a slot map, each with its lowest slot, in that order."""


def masters_by_lowest_slot(slots: Mapping[int, Sequence[Any]]) -> Masters:
    """The masters of a slot map (slot → nodes, the master first, as redis-py keeps it)."""
    lowest: dict[str, tuple[int, Any]] = {}
    for slot in sorted(slots):
        nodes = slots[slot]
        if nodes and nodes[0].name not in lowest:
            lowest[nodes[0].name] = (slot, nodes[0])
    return sorted(lowest.values(), key=lambda entry: entry[0])


class MasterOrder:
    """``masters_by_lowest_slot``, kept between calls (reading 16,384 slots costs about a
    millisecond): read again when the masters are not those listed, or a listed master no
    longer owns (as the same node object) the slot it is listed by. A slot that moves between
    listed masters leaves the list usable: a cursor names its shard by any slot it owns, and
    every master is still scanned once."""

    def __init__(self) -> None:
        self._masters: Masters = []

    def masters(self, slots: Mapping[int, Sequence[Any]], primaries: set[str]) -> Masters:
        masters = self._masters
        if (
            not masters
            or {node.name for _, node in masters} != primaries
            or any(not slots.get(low) or slots[low][0] is not node for low, node in masters)
        ):
            masters = self._masters = masters_by_lowest_slot(slots)
        return masters


def scan_step(
    cursor: ClusterCursor, slots: Mapping[int, Sequence[Any]], masters: Masters
) -> ScanStep | None:
    """Where ``cursor`` goes on: the master serving its slot, or, when none does, the first
    whose lowest slot comes after it, from its start; None when no master is left."""
    owners = slots.get(cursor.slot)
    index = next(
        (i for i, (_, node) in enumerate(masters) if owners and node.name == owners[0].name),
        None,
    )
    at = cursor
    if index is None:
        index = next((i for i, (low, _) in enumerate(masters) if low > cursor.slot), None)
        if index is None:
            return None
        at = ClusterCursor(masters[index][0], 0)
    next_shard = masters[index + 1][0] if index + 1 < len(masters) else None
    return ScanStep(masters[index][1], at, next_shard)


def node_reply(reply: Any) -> tuple[int, list[Any]]:
    """A node's ``SCAN`` reply as redis-py's cluster client hands it for one target node:
    ``(cursor, keys)``, or ``({node: cursor}, keys)`` where it merges per node."""
    cursor, keys = reply
    if isinstance(cursor, dict):
        (cursor,) = cursor.values()
    return int(cursor), list(keys)
