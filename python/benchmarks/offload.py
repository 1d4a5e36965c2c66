"""How many hot reads still reach the master once the module found the key hot (run by hand
or by `make bench-python`; not a test).

A master and two replicas with the module's default detection; one routed client writes
``ZADD leaderboard:global`` 100 times a second, reader threads on another read
``ZREVRANGE leaderboard:global 0 9 WITHSCORES`` as fast as they can. Once the readers' router
has the key in its hot set, the reads of the next ``--seconds`` are split by where they were
served. Twice: with the cache off (hot reads to the replicas) and on.

    python/.venv/bin/python python/benchmarks/offload.py [--seconds N] [--readers N]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import redis_hotkey
from servers import Server

KEY = "leaderboard:global"


def run(master: Server, cache: bool, seconds: float, readers: int) -> None:
    options = redis_hotkey.Options(cache=cache)
    writer = redis_hotkey.Redis(host="127.0.0.1", port=master.port)
    reader = redis_hotkey.Redis(host="127.0.0.1", port=master.port, hotkey=options)
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            writer.zadd(KEY, {f"player:{n % 1000}": n})
            n += 1
            stop.wait(0.01)

    def read() -> None:
        while not stop.is_set():
            reader.zrevrange(KEY, 0, 9, withscores=True)

    threads = [threading.Thread(target=write)]
    threads += [threading.Thread(target=read) for _ in range(readers)]
    for t in threads:
        t.start()
    try:
        start = time.monotonic()
        while KEY.encode() not in reader.hotkey_keys():
            if time.monotonic() - start > 30:
                raise SystemExit("the key did not turn hot within 30 s")
            time.sleep(0.005)
        detected = time.monotonic() - start
        before = reader.hotkey_metrics()
        time.sleep(seconds)
        after = reader.hotkey_metrics()
    finally:
        stop.set()
        for t in threads:
            t.join()
    master_reads = after.master - before.master
    replica_reads = after.replica - before.replica
    cache_reads = after.cache_hits - before.cache_hits
    total = master_reads + replica_reads + cache_reads
    mode = "cache on " if cache else "cache off"
    print(
        f"{mode}: hot after {detected:.2f} s; next {seconds:.0f} s: {total / seconds:,.0f} "
        f"reads/s — master {master_reads / total:.2%}, replicas {replica_reads / total:.2%}, "
        f"cache {cache_reads / total:.2%}"
    )
    print(f"           {after}")
    writer.close()
    reader.close()
    master.client().delete(KEY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--readers", type=int, default=4)
    args = parser.parse_args()
    master = Server(detect=True)
    replicas = [Server(detect=True, replica_of=master) for _ in range(2)]
    try:
        for cache in (False, True):
            # A fresh key each run: wait for the previous one to cool down first.
            while KEY.encode() in _hot(master):
                time.sleep(0.1)
            run(master, cache, args.seconds, args.readers)
    finally:
        for server in (*replicas, master):
            server.stop()


def _hot(master: Server) -> set[bytes]:
    reply = master.client(protocol=2).execute_command("HOTKEY.TOP", "COUNT", "10")
    hot = set()
    for entry in reply:
        fields = dict(zip(entry[::2], entry[1::2], strict=True))
        if fields.get(b"hot") == 1:
            hot.add(fields[b"key"])
    return hot


if __name__ == "__main__":
    main()
