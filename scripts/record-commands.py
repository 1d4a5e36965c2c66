#!/usr/bin/env python3
"""Records the raw ``COMMAND`` reply of each server into protocol/testdata/command/<name>.json.

The routing corpus (protocol/testdata/routing.json) is checked against these tables in Rust and
in Python, so the recording is language-neutral JSON: an array stays an array, an integer a
number, a nil ``null``, and a string a JSON string when it is UTF-8 (else ``{"b64": ...}``).
RESP2, as the routers read it (key specs as flat field-value arrays). Entries and subcommands
are sorted by name (the server lists them in hash order), so a re-recording diffs cleanly.

    scripts/record-commands.py                       # every server below that is installed
    scripts/record-commands.py redis-7.2.4           # just one

Each server runs on a free loopback port with a scratch directory and is shut down after.
Standard library only.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "protocol" / "testdata" / "command"
BIN = Path(os.environ.get("HOTKEY_SERVERS", Path.home() / ".cache" / "hotkey-servers")) / "bin"
# name → server binary (redis-server on PATH is Debian's Redis 7.0).
SERVERS = {
    "redis-7.0.15": "redis-server",
    "redis-7.2.4": str(BIN / "redis-7.2.4-server"),
    "valkey-9.1.2": str(BIN / "valkey-9.1.2-server"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Resp2:
    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def read(self) -> object:
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise EOFError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError(f"unexpected RESP2 type {kind!r}")


def command(sock: socket.socket, *args: bytes) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def to_json(value: object) -> object:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def sort_by_name(entries: list[Any]) -> list[Any]:
    """Entries, and their subcommands, by name: the server lists them in hash order, which
    changes from run to run."""
    for e in entries:
        if len(e) > 9 and isinstance(e[9], list):
            e[9] = sort_by_name(e[9])
    return sorted(entries, key=lambda e: str(e[0]))


def record(name: str, binary: str) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        server = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                scratch,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.05)
            with sock:
                sock.sendall(command(sock, b"COMMAND"))
                reply = Resp2(sock).read()
        finally:
            server.terminate()
            server.wait(timeout=10)
    if not isinstance(reply, list):
        raise RuntimeError(f"{name}: COMMAND replied {reply!r}")
    entries = sort_by_name([to_json(e) for e in reply])
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    lines = (json.dumps(e, separators=(",", ":")) for e in entries)
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n")
    print(f"{path.relative_to(ROOT)}: {len(entries)} commands")


def main() -> None:
    names = sys.argv[1:] or list(SERVERS)
    for name in names:
        binary = SERVERS.get(name)
        if binary is None:
            sys.exit(f"record-commands: unknown server {name}; known: {' '.join(SERVERS)}")
        record(name, binary)


if __name__ == "__main__":
    main()
