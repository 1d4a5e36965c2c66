"""What routing costs a call (run by hand or by `make bench-python`; not a test):

- a GET of a cold key through ``redis_hotkey.Redis`` against plain ``redis.Redis`` (the
  router's overhead: encode the arguments, find the keys, look them up in the hot set);
- a GET served from the router's cache against a plain GET over loopback.

Both against one local master with the module; rounds alternate so drift hits both alike; the
median round is printed.

    python/.venv/bin/python python/benchmarks/route.py [--calls N] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import redis_hotkey
from servers import Server


def per_call(call: Callable[[], object], n: int) -> float:
    """Microseconds per call, over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    server = Server([("cache-ttl-ms", "600000")])
    try:
        plain = redis.Redis(host="127.0.0.1", port=server.port)
        routed = redis_hotkey.Redis(host="127.0.0.1", port=server.port)
        deadline = time.monotonic() + 10
        while not routed.hotkey_synced() and time.monotonic() < deadline:
            time.sleep(0.01)
        plain.set("cold", "v")
        plain.set("hot", "v")
        plain.execute_command("HOTKEY.PIN", "hot")
        while routed.hotkey_route("GET", "hot") != "cache" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert routed.hotkey_route("GET", "hot") == "cache", "the hot key is not cached"
        results: dict[str, list[float]] = {"plain": [], "cold": [], "hit": []}
        for _ in range(args.rounds):
            results["plain"].append(per_call(lambda: plain.get("cold"), args.calls))
            results["cold"].append(per_call(lambda: routed.get("cold"), args.calls))
            results["hit"].append(per_call(lambda: routed.get("hot"), args.calls))
        plain_us = statistics.median(results["plain"])
        cold_us = statistics.median(results["cold"])
        hit_us = statistics.median(results["hit"])
        print(f"redis-py {redis.__version__}, {args.rounds} rounds of {args.calls:,} calls")
        print(f"plain redis.Redis GET (cold key):  {plain_us:7.1f} us")
        print(
            f"redis_hotkey.Redis GET (cold key): {cold_us:7.1f} us "
            f"({(cold_us / plain_us - 1) * 100:+.1f} % over plain)"
        )
        print(
            f"redis_hotkey.Redis GET (cache hit):{hit_us:7.1f} us "
            f"({plain_us / hit_us:.1f}x faster than a plain GET)"
        )
        print(routed.hotkey_metrics())
        routed.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
