"""The routing corpus (``protocol/testdata/routing*.json``) through the Python rule, with every
recorded ``COMMAND`` table (``protocol/testdata/command/*.json``): the same files the Rust rule
passes (``router/src/routing/corpus.rs``), so the two cannot drift apart. No server: the
fixtures are the servers' own recorded replies."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from redis_hotkey._commands import CommandTable, Kind, keyless_group, may_block
from redis_hotkey._core import HOT, Core, HotRead
from redis_hotkey._options import Options
from redis_hotkey._routes import Advice, Routes

TESTDATA = Path(__file__).resolve().parents[2] / "protocol" / "testdata"
# Fewer cases than this run on one server means the files were not read as meant.
MIN_CASES_PER_SERVER = 500

Observed = tuple[str, bool, list[bytes], list[bytes], int]


def _bytes(value: Any) -> bytes:
    """A string of the corpus: JSON text, or ``{"b64": ...}`` for bytes that are not UTF-8."""
    if isinstance(value, str):
        return value.encode()
    return base64.b64decode(value["b64"])


def _reply(value: Any) -> object:
    """A recorded reply as redis-py reads it over RESP2: strings as bytes."""
    if isinstance(value, list):
        return [_reply(v) for v in value]
    if value is None or isinstance(value, int):
        return value
    return _bytes(value)


def _servers() -> list[tuple[str, CommandTable]]:
    paths = sorted((TESTDATA / "command").glob("*.json"))
    return [
        (p.stem, CommandTable.from_command_reply(_reply(json.loads(p.read_text())))) for p in paths
    ]


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for name in ("routing.json", "routing-table.json"):
        cases += json.loads((TESTDATA / name).read_text())["cases"]
    return cases


def _core(commands: CommandTable, case: dict[str, Any]) -> Core:
    core = Core(Options(), 0)
    core.commands = commands
    hot = tuple(
        (0, _bytes(h["key"]), Advice(h["reads_to"] == "replicas", h["cache_ttl_ms"]))
        for h in case.get("hot", [])
    )
    core.table.load(
        Routes(seq=0, run_id="corpus", channel="__hotkey__", sharded=False, replicas=(), keys=hot)
    )
    if case.get("synced", True) is False:
        core.table.unsync()
    return core


def _observed(core: Core, argv: tuple[bytes, ...]) -> Observed:
    spec = core.commands.lookup(argv)
    blocking = spec is not None and may_block(spec, argv) and spec.kind is not Kind.SCRIPT
    kind, what = core.plan(argv)
    if kind == HOT:
        assert isinstance(what, HotRead)
        ttl = round(what.cache_ttl * 1000)
        target = "cache" if ttl > 0 else "replica" if what.replicas else "master"
        return (target, False, list(what.keys), [], ttl)
    assert isinstance(what, tuple)
    return ("master", blocking, [], [k for k in what if isinstance(k, bytes)], 0)


def _expected(e: dict[str, Any]) -> Observed:
    return (
        e["target"],
        e.get("blocking", False),
        [_bytes(k) for k in e.get("reads", [])],
        [_bytes(k) for k in e.get("writes", [])],
        e.get("cache_ttl_ms", 0),
    )


@pytest.mark.parametrize("server,commands", [pytest.param(n, t, id=n) for n, t in _servers()])
def test_the_rule_passes_the_routing_corpus(server: str, commands: CommandTable) -> None:
    failures: list[str] = []
    ran = 0
    for case in _cases():
        if "only" in case and server not in case["only"]:
            continue
        argv = tuple(_bytes(a) for a in case["argv"])
        # A command this server lacks is skipped on this server only; a case about commands
        # no server knows says so.
        if commands.lookup(argv) is None and not case.get("unknown", False):
            continue
        ran += 1
        got = _observed(_core(commands, case), argv)
        want = _expected(case["expect"])
        if got != want:
            failures.append(f"{case['name']}: got {got}, want {want}")
        group = case["expect"].get("keyless")
        if group is not None and keyless_group(argv) != group:
            failures.append(f"{case['name']}: keyless group {keyless_group(argv)}, want {group}")
    assert ran >= MIN_CASES_PER_SERVER, f"only {ran} cases ran"
    assert not failures, "\n".join(failures)
