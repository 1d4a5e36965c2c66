#!/usr/bin/env python3
"""Writes protocol/testdata/routing-table.json: two routing cases for every command with keys
in the recorded ``COMMAND`` tables (protocol/testdata/command/*.json), one with its keys cold and
one with them all hot, and one case for every keyless command.

The argv of each case is built from the command's own key specs (a placeholder key ``k1``,
``k2``, ... where a spec finds one, ``x`` elsewhere, padded to the arity), and the expected plan
follows from the recorded flags: the rule as the book states it, applied once more by a
reader who did not write either router. A command whose specs this builder cannot lay out in
one argv (two specs that both run to the end) is listed on stderr and left to the hand-written
cases (routing.json). Scripts and transactions are left to those too.

    scripts/gen-routing-cases.py          # after scripts/record-commands.py

Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TESTDATA = Path(__file__).resolve().parent.parent / "protocol" / "testdata"
SKIP = {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "exec", "multi"}
HOT = {"reads_to": "replicas", "cache_ttl_ms": 100}


class Unlaid(Exception):
    """The specs cannot be laid out in one argv."""


def fields(flat: list[Any]) -> dict[str, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def walk(entries: list[Any]) -> Any:
    for e in entries:
        yield e
        yield from walk(e[9])


def layout(entry: list[Any]) -> tuple[list[str], list[tuple[str, bool]]]:
    """An argv for ``entry`` and its keys (name, written) in the order the specs find them."""
    name = entry[0]
    words = name.split("|")
    argv: dict[int, str] = {i: w.upper() for i, w in enumerate(words)}
    keys: list[tuple[str, bool]] = []
    writes_flag = "write" in entry[2]
    closed = False  # a spec ran to the end: nothing may follow

    def put(pos: int, token: str) -> None:
        if closed or argv.get(pos, token) != token:
            raise Unlaid(name)
        argv[pos] = token

    def end() -> int:
        return max(argv) + 1

    for raw in entry[8]:
        spec = fields(raw)
        flags = [f.upper() for f in spec["flags"]]
        written = writes_flag
        if "RO" in flags:
            written = False
        elif {"RW", "OW", "RM"} & set(flags):
            written = True
        begin, find = fields(spec["begin_search"]), fields(spec["find_keys"])
        bspec, fspec = fields(begin["spec"]), fields(find["spec"])
        if begin["type"] == "index":
            start = bspec["index"]
        elif begin["type"] == "keyword":
            at = max(end(), bspec["startfrom"]) if bspec["startfrom"] >= 0 else end()
            put(at, bspec["keyword"])
            start = at + 1
        else:
            raise Unlaid(name)

        def key(pos: int, written: bool = written) -> None:
            k = f"k{len(keys) + 1}"
            put(pos, k)
            keys.append((k, written))

        if find["type"] == "range":
            last, step, limit = fspec["lastkey"], max(fspec["keystep"], 1), fspec["limit"]
            if last >= 0:
                for pos in range(start, start + last + 1, step):
                    key(pos)
            else:
                key(start)
                key(start + step)
                tail = 2 * step * (limit - 1) if limit > 1 else -last - 1 + step - 1
                at = end()
                for i in range(tail):
                    put(at + i, "x")
                closed = True
        elif find["type"] == "keynum":
            idx, first, step = fspec["keynumidx"], fspec["firstkey"], max(fspec["keystep"], 1)
            put(start + idx, "2")
            key(start + first)
            key(start + first + step)
        else:
            raise Unlaid(name)
    arity = entry[1]
    want = abs(arity)
    if end() < want:
        if closed:
            raise Unlaid(name)
        for i in range(end(), want):
            argv[i] = "x"
    argv_list = [argv.get(i, "x") for i in range(end())]
    if arity > 0 and len(argv_list) != arity:
        raise Unlaid(name)
    return argv_list, keys


def movable(entry: list[Any]) -> bool:
    specs = [fields(raw) for raw in entry[8]]
    if not specs:
        return "movablekeys" in entry[2]
    return any(
        "INCOMPLETE" in [f.upper() for f in s["flags"]]
        or fields(s["begin_search"])["type"] not in ("index", "keyword")
        or fields(s["find_keys"])["type"] not in ("range", "keynum")
        for s in specs
    )


def blocks(entry: list[Any], argv: list[str]) -> bool:
    if "blocking" not in entry[2]:
        return False
    if entry[0] in ("xread", "xreadgroup"):
        return any(a.upper() == "BLOCK" for a in argv)
    return entry[0] not in ("wait", "waitaof")


def expect(
    entry: list[Any], argv: list[str], keys: list[tuple[str, bool]], hot: bool
) -> dict[str, Any]:
    def once(ks: Any) -> list[str]:
        return list(dict.fromkeys(ks))

    if movable(entry):
        return {"target": "master", "blocking": blocks(entry, argv), "writes": []}
    writes = once(k for k, w in keys if w)
    reads = once(k for k, w in keys if not w)
    if not writes and "write" in entry[2] and keys:
        writes, reads = once(k for k, _ in keys), []
    if blocks(entry, argv):
        return {"target": "master", "blocking": True, "writes": writes}
    if writes or "readonly" not in entry[2] or not hot or not reads:
        return {"target": "master", "writes": writes}
    deterministic = not any(t.startswith("nondeterministic_output") for t in entry[7])
    if len(reads) == 1 and deterministic:
        return {"target": "cache", "reads": reads, "cache_ttl_ms": HOT["cache_ttl_ms"]}
    return {"target": "replica", "reads": reads}


def main() -> None:
    # (name, argv, hot) → expected plan → servers.
    found: dict[str, dict[str, Any]] = {}
    unlaid: set[str] = set()
    servers = sorted(p.stem for p in (TESTDATA / "command").glob("*.json"))
    for server in servers:
        for entry in walk(json.loads((TESTDATA / "command" / f"{server}.json").read_text())):
            name = entry[0]
            if name in SKIP or entry[9]:
                continue
            try:
                argv, keys = layout(entry)
            except Unlaid:
                unlaid.add(name)
                continue
            states = [False, True] if keys else [False]
            for hot in states:
                case: dict[str, Any] = {
                    "name": f"{name}: {'its keys hot' if hot else ('cold' if keys else 'no key')}",
                    "argv": argv,
                }
                if hot:
                    case["hot"] = [{"key": k, **HOT} for k in dict.fromkeys(k for k, _ in keys)]
                case["expect"] = expect(entry, argv, keys, hot)
                ident = json.dumps([case["argv"], case.get("hot")])
                plans = found.setdefault(ident, {})
                plans.setdefault(json.dumps(case), []).append(server)
    cases = []
    for plans in found.values():
        for text, on in plans.items():
            case = json.loads(text)
            if len(plans) > 1:
                case["only"] = on
            cases.append(case)
    cases.sort(key=lambda c: (c["name"], c.get("only", [])))
    about = (
        "Generated by scripts/gen-routing-cases.py from the recorded COMMAND tables; "
        "do not edit (hand-written cases: routing.json)."
    )
    lines = ",\n".join("  " + json.dumps(c) for c in cases)
    (TESTDATA / "routing-table.json").write_text(
        '{"about": ' + json.dumps(about) + ',\n "cases": [\n' + lines + "\n]}\n"
    )
    print(f"routing-table.json: {len(cases)} cases from {', '.join(servers)}")
    if unlaid:
        print(
            f"left to routing.json (specs not laid out): {' '.join(sorted(unlaid))}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
