"""The two cluster rules Python keeps a copy of, held to their Rust source so the copies cannot
drift apart: the keyless groups (``_commands.keyless_group`` against the table of
``protocol/src/keyless.rs``, read from the file) and the ``SCAN`` cursor (``_scan`` against
``protocol/src/scan.rs``: its constants, read from the file, and its tests' vectors). No
server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from redis.exceptions import ResponseError

from redis_hotkey import _commands
from redis_hotkey._commands import REFUSED, keyless_group
from redis_hotkey._scan import (
    INVALID_CURSOR,
    SLOT_BITS,
    ClusterCursor,
    MasterOrder,
    masters_by_lowest_slot,
    scan_step,
)

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol" / "src"


def _rust_strings(text: str) -> list[str]:
    return re.findall(r'"([^"]*)"', text)


def _rust_keyless_rule() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """``keyless::group`` read from its source: each branch's command names and
    ``(container, subcommand)`` pairs, with the group's corpus name (``as_str``)."""
    source = (PROTOCOL / "keyless.rs").read_text()
    arms = re.findall(r'(KeylessGroup::\w+(?:\(Aggregate::\w+\))?) => "([^"]+)"', source)
    names: dict[str, str] = dict(arms)
    scripts_source = (PROTOCOL / "command_table.rs").read_text()
    scripts = re.search(r"pub const SCRIPTS: &\[&str\] = &\[(.*?)\];", scripts_source, re.S)
    assert scripts is not None, "SCRIPTS in command_table.rs"
    body = source[source.index("pub fn group") : source.index("#[cfg(test)]")]
    branches = re.findall(
        r"if (.*?) \{\s*(KeylessGroup::\w+(?:\(Aggregate::\w+\))?)\s*\}", body, re.S
    )
    assert len(branches) >= 5, f"the branches of keyless::group: {branches}"
    by_name: dict[str, str] = {}
    by_sub: dict[tuple[str, str], str] = {}
    for condition, group in branches:
        rest = condition
        for listed in re.findall(r"named\(&\[(.*?)\]\)", condition, re.S):
            by_name.update(dict.fromkeys(_rust_strings(listed), names[group]))
        rest = re.sub(r"named\(&\[.*?\]\)", "", rest, flags=re.S)
        if "named(SCRIPTS)" in rest:
            by_name.update(dict.fromkeys(_rust_strings(scripts.group(1)), names[group]))
            rest = rest.replace("named(SCRIPTS)", "")
        for container, subs in re.findall(r'is\(0, "(\w+)"\) && \((.*?)\)\)', rest, re.S):
            for sub in re.findall(r'is\(1, "(\w+)"\)', subs):
                by_sub[(container, sub)] = names[group]
        rest = re.sub(r'is\(0, "\w+"\) && \(.*?\)\)', "", rest, flags=re.S)
        # Anything else in a condition is a shape this reader does not know: fail, not skip.
        assert re.fullmatch(r"[\s|()]*", rest), f"unread condition in keyless.rs: {rest!r}"
    return by_name, by_sub


def test_the_keyless_groups_are_those_of_keyless_rs() -> None:
    by_name, by_sub = _rust_keyless_rule()
    assert by_name and by_sub, "keyless.rs lists commands"
    for name, group in by_name.items():
        assert keyless_group([name.upper().encode()]) == group, name
    for (container, sub), group in by_sub.items():
        assert keyless_group([container.encode(), sub.upper().encode(), b"x"]) == group
        assert keyless_group([container.encode(), b"other"]) == REFUSED
    # Nothing listed in Python that Rust refuses.
    listed = {name.decode() for name in _commands._KEYLESS_BY_NAME}
    assert listed == set(by_name)
    assert keyless_group([b"INFO"]) == keyless_group([b"SCAN", b"0"]) == REFUSED


def test_the_cursor_layout_is_that_of_scan_rs() -> None:
    source = (PROTOCOL / "scan.rs").read_text()
    assert re.search(rf"const SLOT_BITS: u32 = {SLOT_BITS};", source)
    assert f'INVALID_CURSOR: &str = "ERR {INVALID_CURSOR}";' in source


# The vectors of protocol/src/scan.rs's tests.


def test_zero_starts_at_slot_zero_from_the_nodes_start() -> None:
    assert ClusterCursor.parse(b"0") == ClusterCursor(slot=0, node_cursor=0)
    assert ClusterCursor.parse(0) == ClusterCursor.parse("0")


def test_a_cursor_round_trips_through_its_decimal_form() -> None:
    at = ClusterCursor(slot=5461, node_cursor=0)
    following = at.next(1234, 10923)
    assert following == 1234 << 14 | 5461 == 20223317
    assert ClusterCursor.parse(str(following)) == ClusterCursor(slot=5461, node_cursor=1234)


def test_a_finished_shard_moves_to_the_next_and_the_last_ends_the_scan() -> None:
    at = ClusterCursor(slot=5461, node_cursor=99)
    assert at.next(0, 10923) == 10923
    assert at.next(0, None) == 0


@pytest.mark.parametrize(
    "bad", [b"", b"-1", b"abc", b"1 ", b"18446744073709551616", b"+1", -1, 1 << 64, True, 1.0]
)
def test_bad_cursors_get_redis_words(bad: Any) -> None:
    with pytest.raises(ResponseError, match=f"^{INVALID_CURSOR}$"):
        ClusterCursor.parse(bad)


def test_a_node_cursor_too_large_to_carry_is_an_error_not_a_wrong_cursor() -> None:
    at = ClusterCursor(slot=1, node_cursor=0)
    with pytest.raises(ResponseError):
        at.next(1 << 50, None)
    assert at.next((1 << 50) - 1, None) == ((1 << 50) - 1) << 14 | 1


class Node(NamedTuple):
    name: str


def test_a_scan_goes_over_the_masters_in_the_order_of_their_lowest_slots() -> None:
    a, b, c = Node("a"), Node("b"), Node("c")
    # b serves two ranges (one below c's), a slot is served by nobody.
    slots = {0: [b], 1: [b], 2: [a], 3: [a], 5: [c], 6: [b]}
    masters = masters_by_lowest_slot(slots)
    assert masters == [(0, b), (2, a), (5, c)]

    def step(cursor: int) -> tuple[Any, ...] | None:
        found = scan_step(ClusterCursor.parse(cursor), slots, masters)
        return None if found is None else (found.node, found.at, found.next_shard)

    assert step(0) == (b, (0, 0), 2)
    # A cursor of b's second range is still b's, from where it was.
    assert step(7 << 14 | 6) == (b, (6, 7), 2)
    assert step(2) == (a, (2, 0), 5)
    # No master serves slot 4: the next shard after it, from its start.
    assert step(9 << 14 | 4) == (c, (5, 0), None)
    assert step(100) is None


def test_the_order_of_masters_is_read_again_when_it_no_longer_holds() -> None:
    a, b, c = Node("a"), Node("b"), Node("c")
    slots = {0: [a], 1: [a], 2: [b], 3: [b]}
    order = MasterOrder()
    first = order.masters(slots, {"a", "b"})
    assert first == [(0, a), (2, b)]
    # A slot moving between listed masters keeps the list.
    slots[1] = [b]
    assert order.masters(slots, {"a", "b"}) is first
    # A master gone from the slot it is listed by, or a new master: read again.
    slots[2] = [c]
    assert order.masters(slots, {"a", "b", "c"}) == [(0, a), (1, b), (2, c)]
    slots[0] = [Node("a")]
    assert order.masters(slots, {"a", "b", "c"})[0][1] is slots[0][0]
