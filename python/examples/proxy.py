"""The seed's own redis-py snippet, pointed at hotkey-proxy instead of a server it picks by hand.

Plain redis-py and no ``redis_hotkey`` import: the code is the seed's but for host and port.
The proxy sends the write to the master and, once ``leaderboard:global`` is hot, serves its
reads from its cache or a replica; the application does not change.

Start a master with the module and the proxy in front of it (from the repository's root,
after ``cargo build --release -p hotkey -p hotkey-proxy``):

    redis-server --port 7379 --loadmodule target/release/libhotkey.so
    target/release/hotkey-proxy --listen 127.0.0.1:6380 redis://127.0.0.1:7379

then run this file against the proxy (``--host``/``--port``, default 127.0.0.1:6380):

    python/.venv/bin/python python/examples/proxy.py [--host 127.0.0.1] [--port 6380]

It adds a point to ``player:42`` and prints the top ten it read back, one ``member score``
line each.
"""

from __future__ import annotations

import argparse
from typing import cast

import redis


def main() -> None:
    parser = argparse.ArgumentParser(description="The seed's leaderboard snippet, via a proxy.")
    parser.add_argument("--host", default="127.0.0.1", help="the proxy's host (127.0.0.1)")
    parser.add_argument("--port", type=int, default=6380, help="the proxy's port (6380)")
    args = parser.parse_args()

    # The seed's code, unchanged but for host and port.
    r = redis.StrictRedis(host=args.host, port=args.port)
    r.zincrby("leaderboard:global", 1, "player:42")
    top = r.zrevrange("leaderboard:global", 0, 9, withscores=True)

    # The printing is not the seed's: redis-py types the reply loosely, this is its shape.
    for member, score in cast("list[tuple[bytes, float]]", top):
        print(f"{member.decode(errors='backslashreplace')} {score}")


if __name__ == "__main__":
    main()
