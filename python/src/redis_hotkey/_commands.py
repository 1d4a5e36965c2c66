"""Which arguments of a command are keys, and whether each is read or written.

A port of ``protocol/src/command_table.rs``: the table is built from the server's own
``COMMAND`` reply (read over RESP2, so key specs are flat field-value lists), so it knows
exactly the commands this server has, module commands included. Key positions come from the
key specs; a spec the table cannot follow (type ``unknown``, flagged ``incomplete``) makes the
command *movable*, and the router then sends it to the master. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

# Commands that run other commands (the module counts their inner calls).
SCRIPT_COMMANDS = frozenset(
    {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "exec", "multi"}
)


class Kind(Enum):
    KEYS = "keys"
    SCRIPT = "script"
    KEYLESS = "keyless"


@dataclass(frozen=True)
class _Index:
    index: int


@dataclass(frozen=True)
class _Keyword:
    keyword: bytes
    start_from: int


@dataclass(frozen=True)
class _Range:
    last_key: int
    key_step: int
    limit: int


@dataclass(frozen=True)
class _KeyNum:
    key_num_idx: int
    first_key: int
    key_step: int


@dataclass(frozen=True)
class _KeySpec:
    begin: _Index | _Keyword
    find: _Range | _KeyNum
    write: bool


@dataclass
class CommandSpec:
    """One command (or ``container|subcommand``) of the table."""

    name: str
    kind: Kind
    movable: bool
    readonly: bool
    blocking: bool
    deterministic: bool
    has_subcommands: bool
    key_specs: tuple[_KeySpec, ...] = ()
    single_key: tuple[int, bool] | None = field(default=None)
    writes_its_read_keys: bool = False
    """Flagged ``write``, yet no key spec writes: the write is to the keys it names.
    ``XREADGROUP``'s stream is ``RO`` in its spec, but it moves the group's pending list, which
    ``XPENDING`` and ``XINFO`` show."""

    def keys(self, args: Sequence[bytes]) -> list[tuple[bytes, bool]]:
        """The keys of ``args`` (the command name first) with their access (True = write).

        Positions outside the arguments are skipped: the server rejects a malformed command.
        """
        argc = len(args)
        if self.single_key is not None:
            pos, write = self.single_key
            return [(args[pos], write)] if pos < argc else []
        out: list[tuple[bytes, bool]] = []
        for spec in self.key_specs:
            start = _start(spec.begin, args, argc)
            if start is None:
                continue
            find = spec.find
            if isinstance(find, _Range):
                if find.last_key >= 0:
                    last = start + find.last_key
                else:
                    from_end = argc + find.last_key
                    if from_end < start:
                        continue
                    last = from_end
                    if find.last_key == -1 and find.limit > 1:
                        span = (argc - start) // find.limit
                        last = start + max(span - 1, 0)
                last = min(last, argc - 1)
                i = start
                while i <= last:
                    out.append((args[i], spec.write))
                    i += max(find.key_step, 1)
            else:
                n = _count(args, start + find.key_num_idx)
                if not n:
                    continue
                i = start + find.first_key
                for _ in range(n):
                    if i >= argc:
                        break
                    out.append((args[i], spec.write))
                    i += max(find.key_step, 1)
        return out


def may_block(spec: CommandSpec, args: Sequence[bytes]) -> bool:
    """Whether the call needs a connection of its own, as in the Rust rule: flagged
    ``blocking``, but ``XREAD`` and ``XREADGROUP`` only with ``BLOCK``, and never ``WAIT`` or
    ``WAITAOF`` (flagged ``blocking`` by Valkey 9), which wait for the writes of the connection
    they are sent on. (redis-py's pool gives every call a connection of its own anyway.)"""
    if not spec.blocking:
        return False
    if spec.name in ("xread", "xreadgroup"):
        return any(a.lower() == b"block" for a in args)
    return spec.name not in ("wait", "waitaof")


# Keyless groups (``hotkey_protocol::keyless``): where a command that names no key goes among
# several masters. A standalone router sends them all to its master.
ALL_MASTERS_SUM = "all_masters:sum"
ALL_MASTERS_CONCAT = "all_masters:concat"
ALL_MASTERS_ALL_OK = "all_masters:all_ok"
ALL_NODES = "all_nodes"
RANDOM_MASTER = "random_master"
REFUSED = "refused"
_KEYLESS_BY_NAME = {
    b"dbsize": ALL_MASTERS_SUM,
    b"keys": ALL_MASTERS_CONCAT,
    b"flushall": ALL_MASTERS_ALL_OK,
    b"flushdb": ALL_MASTERS_ALL_OK,
    b"ping": ALL_NODES,
    b"randomkey": RANDOM_MASTER,
    b"publish": RANDOM_MASTER,
    **{name.encode(): RANDOM_MASTER for name in SCRIPT_COMMANDS - {"exec", "multi"}},
}


def keyless_group(args: Sequence[bytes]) -> str:
    """The group of a keyless command, from its name and (for ``SCRIPT``) subcommand, as
    ``hotkey_protocol::keyless::group`` decides it. Anything not listed is refused: a wrong
    node would answer it silently, a refusal says so."""
    if not args:
        return REFUSED
    name = args[0].lower()
    if name == b"script" and len(args) > 1 and args[1].lower() in (b"load", b"flush"):
        return ALL_NODES
    return _KEYLESS_BY_NAME.get(name, REFUSED)


def _count(args: Sequence[bytes], i: int) -> int | None:
    if i >= len(args):
        return None
    arg = args[i]
    if not arg or len(arg) > 18 or not arg.isdigit():
        return None
    return int(arg)


def _start(begin: _Index | _Keyword, args: Sequence[bytes], argc: int) -> int | None:
    if isinstance(begin, _Index):
        return begin.index if begin.index < argc else None
    keyword = begin.keyword.lower()
    found: int | None = None
    if begin.start_from >= 0:
        for i in range(begin.start_from, argc):
            if args[i].lower() == keyword:
                found = i
                break
    else:
        first = max(argc + begin.start_from, 0)
        for i in range(first, 0, -1):
            if i < argc and args[i].lower() == keyword:
                found = i
                break
    if found is None or found + 1 >= argc:
        return None
    return found + 1


class CommandTable:
    """Lower-case name (``object|encoding`` for subcommands) → spec."""

    def __init__(self, specs: dict[bytes, CommandSpec] | None = None) -> None:
        self._specs: dict[bytes, CommandSpec] = specs or {}

    @classmethod
    def from_command_reply(cls, reply: object) -> CommandTable:
        """Builds the table from a RESP2 ``COMMAND`` reply; entries it cannot read are left out."""
        table = cls()
        if isinstance(reply, list):
            for entry in reply:
                table._add(entry, None)
        return table

    def _add(self, entry: object, parent: str | None) -> None:
        spec = _parse_entry(entry)
        if spec is None:
            return
        if isinstance(entry, list) and len(entry) > 9 and isinstance(entry[9], list):
            for sub in entry[9]:
                self._add(sub, spec.name)
        if parent is not None and "|" not in spec.name:
            spec.name = f"{parent}|{spec.name}"
        self._specs[spec.name.encode()] = spec

    def __len__(self) -> int:
        return len(self._specs)

    def lookup(self, args: Sequence[bytes]) -> CommandSpec | None:
        """The spec of the command in ``args`` (its subcommand's, for containers)."""
        if not args:
            return None
        spec = self._specs.get(args[0].lower())
        if spec is None or not spec.has_subcommands:
            return spec
        if len(args) < 2:
            return None
        return self._specs.get(args[0].lower() + b"|" + args[1].lower())


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, str):
        return value
    return None


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [s for s in (_text(v) for v in value) if s is not None]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field(flat: object, name: str) -> object:
    """The value of ``name`` in a flat field-value list (RESP2's shape of a map)."""
    if isinstance(flat, dict):
        for k, v in flat.items():
            if (_text(k) or "").lower() == name:
                return v
        return None
    if not isinstance(flat, list):
        return None
    for i in range(0, len(flat) - 1, 2):
        if (_text(flat[i]) or "").lower() == name:
            return flat[i + 1]
    return None


def _parse_entry(entry: object) -> CommandSpec | None:
    if not isinstance(entry, list) or not entry:
        return None
    name = _text(entry[0])
    if name is None:
        return None
    name = name.lower()
    flags = set(_strings(entry[2] if len(entry) > 2 else None))
    writes = "write" in flags
    tips = _strings(entry[7] if len(entry) > 7 else None)
    deterministic = not any(t.startswith("nondeterministic_output") for t in tips)
    has_subcommands = len(entry) > 9 and isinstance(entry[9], list) and bool(entry[9])
    movable = False
    key_specs: list[_KeySpec] = []
    raw_specs = entry[8] if len(entry) > 8 and isinstance(entry[8], list) else []
    for raw in raw_specs:
        spec = _parse_key_spec(raw, writes)
        if spec is None:
            movable = True
        else:
            key_specs.append(spec)
    # `movablekeys` with keyword or keynum specs is followed here; without any spec (a module
    # command with a getkeys callback) only the server knows.
    movable = movable or ("movablekeys" in flags and not key_specs)
    first = _int(entry[3]) if len(entry) > 3 else None
    if not key_specs and first and first > 0:
        last = _int(entry[4]) if len(entry) > 4 else None
        last = first if last is None else last
        step = max(_int(entry[5]) or 1 if len(entry) > 5 else 1, 1)
        key_specs.append(
            _KeySpec(_Index(first), _Range(last if last < 0 else last - first, step, 0), writes)
        )
    if name in SCRIPT_COMMANDS:
        kind = Kind.SCRIPT
    elif not key_specs and not movable:
        kind = Kind.KEYLESS
    else:
        kind = Kind.KEYS
    single_key = None
    if len(key_specs) == 1:
        only = key_specs[0]
        if (
            isinstance(only.begin, _Index)
            and isinstance(only.find, _Range)
            and only.find.last_key == 0
        ):
            single_key = (only.begin.index, only.write)
    return CommandSpec(
        name=name,
        kind=kind,
        movable=movable and kind is Kind.KEYS,
        readonly="readonly" in flags,
        blocking="blocking" in flags,
        deterministic=deterministic,
        has_subcommands=has_subcommands,
        key_specs=tuple(key_specs),
        single_key=single_key,
        writes_its_read_keys=writes and bool(key_specs) and not any(k.write for k in key_specs),
    )


def _parse_key_spec(raw: object, command_writes: bool) -> _KeySpec | None:
    write: bool | None = None
    for flag in _strings(_field(raw, "flags")):
        upper = flag.upper()
        if upper == "RO":
            write = False
        elif upper in ("RW", "OW", "RM"):
            write = True
        elif upper == "INCOMPLETE":
            return None
    begin_raw = _field(raw, "begin_search")
    find_raw = _field(raw, "find_keys")
    begin_spec = _field(begin_raw, "spec")
    find_spec = _field(find_raw, "spec")
    begin: _Index | _Keyword
    begin_type = _text(_field(begin_raw, "type"))
    if begin_type == "index":
        index = _int(_field(begin_spec, "index"))
        if index is None or index < 0:
            return None
        begin = _Index(index)
    elif begin_type == "keyword":
        keyword = _text(_field(begin_spec, "keyword"))
        start_from = _int(_field(begin_spec, "startfrom"))
        if keyword is None or start_from is None:
            return None
        begin = _Keyword(keyword.encode(), start_from)
    else:
        return None

    def uint(name: str) -> int | None:
        value = _int(_field(find_spec, name))
        return value if value is not None and value >= 0 else None

    find: _Range | _KeyNum
    find_type = _text(_field(find_raw, "type"))
    if find_type == "range":
        last_key = _int(_field(find_spec, "lastkey"))
        step, limit = uint("keystep"), uint("limit")
        if last_key is None or step is None or limit is None:
            return None
        find = _Range(last_key, step, limit)
    elif find_type == "keynum":
        idx, first, step = uint("keynumidx"), uint("firstkey"), uint("keystep")
        if idx is None or first is None or step is None:
            return None
        find = _KeyNum(idx, first, step)
    else:
        return None
    return _KeySpec(begin, find, command_writes if write is None else write)
