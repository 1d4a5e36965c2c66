"""The seed story with redis-py, made real (``make run-python``, or run this file).

The code this project starts from picked a replica by hand for ``leaderboard:global`` and sent
``ZADD`` to the master. Here the application code is plain redis-py — game servers ``ZADD``,
players ``ZREVRANGE leaderboard:global 0 9 WITHSCORES`` — on ``redis_hotkey.Redis``: when the
tournament ends and the leaderboard turns hot, its reads move off the master by themselves.

A master and two replicas with the module (its default detection) on free loopback ports;
every second, the share of the leaderboard reads served by the master, the replicas and the
cache; a summary before and after detection. The servers stop at the end or on Ctrl-C.

    python/.venv/bin/python python/examples/leaderboard.py [--seconds 20] [--no-cache]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

# The servers are started the way the tests start them (free ports, own directories).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import redis_hotkey
from redis_hotkey import Metrics
from servers import Server

LEADERBOARD = "leaderboard:global"


def shares(a: Metrics, b: Metrics) -> tuple[int, float, float, float]:
    """Reads between two snapshots of the players' router, and the master/replica/cache shares."""
    master = b.master - a.master
    replica = b.replica - a.replica
    cache = b.cache_hits - a.cache_hits
    total = master + replica + cache
    if total == 0:
        return 0, 0.0, 0.0, 0.0
    return total, master / total, replica / total, cache / total


def main() -> None:
    parser = argparse.ArgumentParser(description="The leaderboard demo through redis-hotkey.")
    parser.add_argument("--seconds", type=int, default=20, help="run this long (default 20)")
    parser.add_argument("--calm-seconds", type=int, default=5, help="calm before the surge")
    parser.add_argument("--replicas", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--players", type=int, default=4, help="reader threads (default 4)")
    parser.add_argument("--no-cache", action="store_true", help="hot reads go to replicas")
    args = parser.parse_args()

    master = Server(detect=True)
    replicas = [Server(detect=True, replica_of=master) for _ in range(args.replicas)]
    print(f"master 127.0.0.1:{master.port}, replicas {[r.port for r in replicas]}")
    stop = threading.Event()
    surge = threading.Event()
    threads: list[threading.Thread] = []
    clients: list[redis_hotkey.Redis] = []
    try:
        # The application's code: two clients, as a game server and a web tier would have.
        game_server = redis_hotkey.Redis(host="127.0.0.1", port=master.port)
        players = redis_hotkey.Redis(
            host="127.0.0.1",
            port=master.port,
            decode_responses=True,
            hotkey=redis_hotkey.Options(cache=not args.no_cache),
        )

        clients += [game_server, players]

        def write_scores() -> None:
            n = 0
            while not stop.is_set():
                game_server.zadd(LEADERBOARD, {f"player:{n % 500}": n})
                n += 1
                stop.wait(0.01)

        def read_top_ten() -> None:
            while not stop.is_set():
                players.zrevrange(LEADERBOARD, 0, 9, withscores=True)
                if not surge.is_set():
                    # Calm: 50 reads a second per player, under the hot threshold.
                    stop.wait(1 / 50)

        threads = [threading.Thread(target=write_scores)]
        threads += [threading.Thread(target=read_top_ten) for _ in range(args.players)]
        for t in threads:
            t.start()
        print(
            f"{'time':>5}  {'leaderboard':<22} {'reads/s':>8} {'master':>8} "
            f"{'replicas':>9} {'cache':>7}"
        )
        start = time.monotonic()
        last = players.hotkey_metrics()
        at_surge: Metrics | None = None
        at_detection: Metrics | None = None
        for second in range(1, args.seconds + 1):
            time.sleep(max(start + second - time.monotonic(), 0))
            if second == args.calm_seconds and not surge.is_set():
                print(f"--- {second} s: the tournament ends: players read as fast as they can ---")
                surge.set()
                at_surge = players.hotkey_metrics()
            now = players.hotkey_metrics()
            hot = LEADERBOARD.encode() in players.hotkey_keys()
            if hot and at_detection is None:
                at_detection = now
                print(f"--- {second} s: {LEADERBOARD} is hot; the router moves its reads ---")
            total, m, r, c = shares(last, now)
            state = (
                f"HOT, reads to {players.hotkey_route('ZREVRANGE', LEADERBOARD, 0, 9)}"
                if hot
                else "cold"
            )
            print(f"{second:>4}s  {state:<22} {total:>8,} {m:>8.1%} {r:>9.1%} {c:>7.1%}")
            last = now
        end = players.hotkey_metrics()
        print("\nsummary of the leaderboard reads:")
        if at_surge is not None:
            before = at_detection or end
            total, m, r, c = shares(at_surge, before)
            print(f"  surge, before detection: {total:>9,} reads, master {m:.1%}")
        if at_detection is not None:
            total, m, r, c = shares(at_detection, end)
            print(
                f"  after detection:         {total:>9,} reads, master {m:.1%}, "
                f"replicas {r:.1%}, cache {c:.1%}"
            )
        print(f"  players' router: {end}")
    except KeyboardInterrupt:
        print("interrupted")
    finally:
        stop.set()
        surge.set()
        for t in threads:
            t.join()
        for client in clients:
            client.close()
        for server in (*replicas, master):
            server.stop()
        print("servers stopped")


if __name__ == "__main__":
    main()
