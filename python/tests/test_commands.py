"""The command table, built from a real server's COMMAND reply: the keys the router finds are
the keys the server declares, whatever redis-py passes as ``keys=``."""

from __future__ import annotations

import pytest

from conftest import Servers
from redis_hotkey._commands import CommandTable, Kind
from redis_hotkey._connections import link_connection


@pytest.fixture
def table(servers: Servers) -> CommandTable:
    server = servers.master()
    conn = link_connection(server.client().connection_pool, 2.0)
    conn.send_command("COMMAND")
    table = CommandTable.from_command_reply(conn.read_response())
    conn.disconnect()
    return table


def keys(table: CommandTable, *args: str) -> list[tuple[bytes, bool]]:
    argv = tuple(a.encode() for a in args)
    spec = table.lookup(argv)
    assert spec is not None, f"{args[0]} is in the table"
    return spec.keys(argv)


def test_single_key_reads_and_writes(table: CommandTable) -> None:
    assert keys(table, "GET", "k") == [(b"k", False)]
    assert keys(table, "set", "k", "v") == [(b"k", True)]
    assert keys(table, "ZREVRANGE", "lb", "0", "9", "WITHSCORES") == [(b"lb", False)]


def test_zrange_with_rev_reads_its_one_key(table: CommandTable) -> None:
    # redis-py's zrange(..., desc=True) passes no usable keys=; the table finds the key.
    assert keys(table, "ZRANGE", "lb", "0", "9", "REV", "WITHSCORES") == [(b"lb", False)]


def test_multi_key_commands(table: CommandTable) -> None:
    assert keys(table, "MGET", "a", "b") == [(b"a", False), (b"b", False)]
    assert keys(table, "MSET", "a", "1", "b", "2") == [(b"a", True), (b"b", True)]
    assert keys(table, "EVAL", "return 1", "2", "x", "y", "arg") == [(b"x", True), (b"y", True)]
    assert keys(table, "XREAD", "COUNT", "1", "STREAMS", "s1", "s2", "0", "0") == [
        (b"s1", False),
        (b"s2", False),
    ]


def test_flags(table: CommandTable) -> None:
    srandmember = table.lookup((b"SRANDMEMBER", b"s"))
    assert srandmember is not None and not srandmember.deterministic
    get = table.lookup((b"GET", b"k"))
    assert get is not None and get.readonly and get.deterministic
    blpop = table.lookup((b"BLPOP", b"l", b"0"))
    assert blpop is not None and blpop.blocking
    ping = table.lookup((b"PING",))
    assert ping is not None and ping.kind is Kind.KEYLESS
    exec_ = table.lookup((b"EXEC",))
    assert exec_ is not None and exec_.kind is Kind.SCRIPT


def test_subcommands_and_unknown_commands(table: CommandTable) -> None:
    assert keys(table, "OBJECT", "ENCODING", "k") == [(b"k", False)]
    assert table.lookup((b"NOSUCHCOMMAND", b"k")) is None
    assert table.lookup((b"OBJECT",)) is None
