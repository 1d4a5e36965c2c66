"""The hot set as the router keeps it, without a server: events in ``seq`` order, gaps, restarts,
epochs, and the wire format (binary keys as ``key_b64``)."""

from __future__ import annotations

import json

import pytest

from redis_hotkey._routes import (
    Advice,
    Applied,
    EventKind,
    ProtocolError,
    RouteTable,
    parse_message,
    parse_routes,
)

RUN = "a" * 40


def event(seq: int, name: str, run_id: str = RUN, **fields: object) -> bytes:
    return encode(seq, name, run_id, fields)


def encode(seq: int, name: str, run_id: str, fields: dict[str, object]) -> bytes:
    envelope: dict[str, object] = {"v": 1, "seq": seq, "run_id": run_id, "ts_ms": 0}
    return json.dumps({**envelope, "event": name, **fields}).encode()


def hot(seq: int, key: str = "k") -> bytes:
    state = {"db": 0, "key": key, "reads_per_sec": 1.0, "writes_per_sec": 0.0, "read_hot": True}
    return encode(seq, "hot", RUN, {**state, "reads_to": "replicas", "cache_ttl_ms": 100})


def snapshot(seq: int = 10) -> list[object]:
    key = [b"db", 0, b"key", b"k", b"reads_to", b"master", b"cache_ttl_ms", 0]
    return [
        b"seq", seq, b"run_id", RUN.encode(), b"channel", b"__hotkey__",
        b"master", [b"host", b"127.0.0.1", b"port", 1],
        b"replicas", [[b"host", b"127.0.0.1", b"port", 2, b"lag_ms", 0]],
        b"keys", [key],
    ]  # fmt: skip


def synced() -> RouteTable:
    table = RouteTable(0)
    table.load(parse_routes(snapshot()))
    return table


def test_a_snapshot_is_loaded() -> None:
    table = synced()
    assert table.synced and table.seq == 10
    assert table.keys[b"k"][0] == Advice(replicas=False, cache_ttl_ms=0)
    assert [(r.host, r.port) for r in table.replicas] == [("127.0.0.1", 2)]


def test_events_apply_in_order_and_old_ones_are_skipped() -> None:
    table = synced()
    assert table.apply(parse_message(hot(9, "old"))) is Applied.OLD
    assert b"old" not in table.keys
    assert table.apply(parse_message(hot(11, "new"))) is Applied.IN_ORDER
    assert table.keys[b"new"][0] == Advice(replicas=True, cache_ttl_ms=100)
    cold = event(12, "cold", db=0, key="new", reads_per_sec=0.0, writes_per_sec=0.0)
    assert table.apply(parse_message(cold)) is Applied.IN_ORDER
    assert b"new" not in table.keys


def test_a_gap_or_a_new_run_asks_for_a_resync() -> None:
    table = synced()
    assert table.apply(parse_message(hot(13))) is Applied.GAP
    assert table.apply(parse_message(event(11, "heartbeat", run_id="b" * 40))) is Applied.NEW_RUN
    table.unsync()
    assert table.apply(parse_message(hot(11))) is Applied.NOT_SYNCED
    assert table.keys == {}


def test_in_a_cluster_only_the_followed_nodes_events_apply() -> None:
    table = RouteTable(0)
    table.load(parse_routes([*snapshot(), b"node_id", b"me", b"slots", [[0, 16383]]]))
    assert table.node_id == "me"
    # Another node's count of seq and run id: neither a gap nor a restart of this one.
    other = parse_message(event(500, "hot", run_id="b" * 40, node_id="other", db=0, key="o"))
    assert other.node_id == "other"
    assert table.apply(other) is Applied.OTHER_NODE
    assert b"o" not in table.keys and table.seq == 10
    mine = parse_message(event(11, "hot", node_id="me", db=0, key="m", reads_to="master"))
    assert table.apply(mine) is Applied.IN_ORDER
    assert b"m" in table.keys and table.seq == 11


def test_outside_a_cluster_events_name_no_node() -> None:
    table = synced()
    assert table.node_id is None
    assert parse_message(hot(11)).node_id is None
    # A node id on one side only: the event is taken as the followed node's.
    named = parse_message(event(11, "heartbeat", node_id="me"))
    assert table.apply(named) is Applied.IN_ORDER


def test_an_invalidation_changes_the_epoch_of_a_hot_key_only() -> None:
    table = synced()
    before = table.keys[b"k"][1]
    assert table.invalidate(b"k")
    assert table.keys[b"k"][1] != before
    assert not table.invalidate(b"cold")
    # An update keeps the epoch: the advice changed, not the data.
    epoch = table.keys[b"k"][1]
    table.apply(parse_message(hot(11)))
    assert table.keys[b"k"][1] == epoch


def test_binary_keys_travel_as_base64() -> None:
    message = parse_message(
        event(1, "hot", db=0, key_b64="/wBiaW4=", reads_to="master", cache_ttl_ms=0)
    )
    assert message.kind is EventKind.HOT and message.key == b"\xff\x00bin"


def test_unknown_events_are_ignored_and_bad_ones_are_errors() -> None:
    assert parse_message(event(1, "something-new")).kind is EventKind.OTHER
    with pytest.raises(ProtocolError):
        parse_message(b"{not json")
    with pytest.raises(ProtocolError):
        parse_message(event(1, "hot", db=0))
    with pytest.raises(ProtocolError, match="missing field 'replicas'"):
        parse_routes([b"run_id", b"x"])
