#!/usr/bin/env python3
"""hotkey-proxy against twemproxy and direct connections, side by side (issue 20's targets; run
by hand or by `make bench-proxy`; the numbers are reported, not asserted).

One redis-server with the hotkey module on core 0; twemproxy (Debian's nutcracker, one server
connection, so it pipelines every client over one link) and hotkey-proxy (one worker thread)
on core 1, started once and kept up for every round. redis-benchmark (50 clients) runs cold
SET and GET over ``-r`` random keys and a hot GET of one key, at ``-P 1`` and ``-P 16``, the
variants interleaved run by run and their order rotated each round; medians are reported.

redis-benchmark shares core 1 with the proxies (``--bench-cpu`` to change it): the server's
core stays the server's, so the direct baseline and the server's CPU per request are not
disturbed by the load generator, and both proxies compete with the same load generator for
their core. Unpinned, redis-benchmark also runs on core 0, and the server's figures move with
where the scheduler put it.

For each run: requests per second and p50 latency (redis-benchmark ``--csv``), CPU-seconds per
100k requests of the proxy and of redis-server (utime + stime from /proc/PID/stat), and the
share of the commands that reached the master (INFO commandstats). Before each hot GET through
hotkey-proxy the key is read until the proxy's ``hotkey_proxy_hot_keys`` gauge is above 0.
Last, each process's RSS growth per idle client with 5,000 clients connected.

    scripts/bench-proxy.py [--rounds N] [--requests N] [--variants direct,twemproxy,hotkey-proxy]
                           [--proxy-bin PATH] [--bench-cpu 1|any]

Exits non-zero only when something fails to run (a binary missing, a process that dies, a
redis-benchmark that fails, SETs that do not reach the master). Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "target" / "release" / "libhotkey.so"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIENTS = 50
KEYSPACE = 100_000
HOT_KEY = b"hot:key"
# redis-benchmark's own SET values are 3 bytes (-d 3): the hot key holds as many.
HOT_VALUE = b"xxx"
IDLE_CLIENTS = 5_000
PIPELINES = (1, 16)
SERVER_CPU = 0
PROXY_CPU = 1
READY_SECONDS = 10.0
HOT_SECONDS = 15.0
RUN_SECONDS = 300.0
STOP_SECONDS = 10.0
VARIANTS = ("direct", "twemproxy", "hotkey-proxy")


class BenchError(Exception):
    """Something failed to run: the message says what."""


@dataclass(frozen=True)
class Test:
    """One redis-benchmark workload: its arguments and the command whose calls the master counts."""

    name: str
    args: tuple[str, ...]
    command: str
    hot: bool


TESTS = (
    Test("cold SET", ("-r", str(KEYSPACE), "-t", "set"), "set", hot=False),
    Test("cold GET", ("-r", str(KEYSPACE), "-t", "get"), "get", hot=False),
    Test("hot GET", ("GET", HOT_KEY.decode()), "get", hot=True),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def encode(*args: bytes) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Client:
    """A blocking RESP2 connection, just enough for PING, SET, GET and INFO."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def call(self, *args: bytes) -> object:
        self.sock.sendall(encode(*args))
        return self.read()

    def read(self) -> object:
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise BenchError(f"127.0.0.1:{self.port} closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise BenchError(f"error reply: {rest.decode(errors='replace')}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise BenchError(f"unexpected RESP2 type {kind!r}")


class Process:
    """A child pinned with taskset (which execs it, so the PID is the process's own)."""

    def __init__(
        self, stack: contextlib.ExitStack, name: str, argv: list[str], cpu: int, log: Path
    ) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                ["taskset", "-c", str(cpu), *argv], stdout=out, stderr=subprocess.STDOUT
            )
        stack.callback(self.stop)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        rc = self.popen.poll()
        if rc is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise BenchError(
                f"{self.name} exited with status {rc}; its log ends:\n" + "\n".join(tail)
            )

    def cpu_ticks(self) -> int:
        """utime + stime of every thread, in clock ticks."""
        self.check_alive()
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # The command name (field 2) may hold spaces: fields are counted after its ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        return int(fields[11]) + int(fields[12])

    def rss_kib(self) -> int:
        self.check_alive()
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError(f"no VmRSS in /proc/{self.pid}/status ({self.name})")

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            print(
                f"warning: {self.name} ignored SIGTERM for {STOP_SECONDS:.0f} s; killed",
                file=sys.stderr,
            )
            self.popen.kill()
            self.popen.wait()


@dataclass
class Variant:
    """Where redis-benchmark connects, and the proxy process in between (none when direct)."""

    name: str
    port: int
    proxy: Process | None
    metrics_port: int | None = None


def wait_ready(port: int, processes: list[Process]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        for p in processes:
            p.check_alive()
        try:
            c = Client(port, timeout=1.0)
            try:
                if c.call(b"PING") == b"PONG":
                    return
            finally:
                c.close()
        except (OSError, BenchError):
            pass
        if time.monotonic() > deadline:
            names = ", ".join(p.name for p in processes)
            raise BenchError(
                f"port {port} did not answer PING within {READY_SECONDS:.0f} s ({names})"
            )
        time.sleep(0.05)


def start_server(stack: contextlib.ExitStack, tmp: Path) -> tuple[Process, int]:
    if not MODULE.is_file():
        raise BenchError(f"no {MODULE}: run 'cargo build --release -p hotkey' first")
    port = free_port()
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp),
        "--loadmodule",
        str(MODULE),
    ]
    server = Process(stack, "redis-server", argv, SERVER_CPU, tmp / "redis.log")
    wait_ready(port, [server])
    return server, port


def start_twemproxy(
    stack: contextlib.ExitStack, tmp: Path, master_port: int, server: Process
) -> Variant:
    port = free_port()
    conf = tmp / "nutcracker.yml"
    # One server connection: twemproxy pipelines every client over it, as the issue measures.
    conf.write_text(
        "bench:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  hash: fnv1a_64\n"
        "  distribution: ketama\n"
        "  redis: true\n"
        "  server_connections: 1\n"
        "  auto_eject_hosts: false\n"
        "  servers:\n"
        f"    - 127.0.0.1:{master_port}:1\n"
    )
    argv = [
        "nutcracker",
        "-c",
        str(conf),
        "-s",
        str(free_port()),
        "-a",
        "127.0.0.1",
        "-o",
        str(tmp / "nutcracker.log"),
    ]
    proxy = Process(stack, "twemproxy", argv, PROXY_CPU, tmp / "nutcracker.out")
    wait_ready(port, [server, proxy])
    return Variant("twemproxy", port, proxy)


def start_hotkey_proxy(
    stack: contextlib.ExitStack, tmp: Path, binary: Path, master_port: int, server: Process
) -> Variant:
    port, metrics = free_port(), free_port()
    argv = [
        str(binary),
        "--listen",
        f"127.0.0.1:{port}",
        "--metrics",
        f"127.0.0.1:{metrics}",
        "--threads",
        "1",
        f"redis://127.0.0.1:{master_port}",
    ]
    proxy = Process(stack, "hotkey-proxy", argv, PROXY_CPU, tmp / "hotkey-proxy.log")
    wait_ready(port, [server, proxy])
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            hot_keys_gauge(metrics)
            break
        except BenchError:
            proxy.check_alive()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return Variant("hotkey-proxy", port, proxy, metrics)


def fetch_metrics(port: int) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2.0) as reply:
            text: str = reply.read().decode(errors="replace")
            return text
    except (OSError, urllib.error.URLError) as e:
        raise BenchError(f"{url}: {e}") from e


def hot_keys_gauge(port: int) -> float:
    """The sum of the proxy's ``hotkey_proxy_hot_keys`` samples (over any labels)."""
    total, found = 0.0, False
    for line in fetch_metrics(port).splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name != "hotkey_proxy_hot_keys":
            continue
        try:
            total += float(line.rsplit(maxsplit=1)[1])
        except (IndexError, ValueError) as e:
            raise BenchError(f"/metrics on port {port}: bad sample {line!r}") from e
        found = True
    if not found:
        raise BenchError(f"/metrics on port {port} has no hotkey_proxy_hot_keys gauge")
    return total


def warm_up(variant: Variant, server: Process) -> None:
    """Reads the hot key through the proxy until the proxy reports it hot."""
    proxy, metrics_port = variant.proxy, variant.metrics_port
    if proxy is None or metrics_port is None:
        raise BenchError(f"{variant.name} has no proxy and /metrics to warm up")
    c = Client(variant.port)
    batch = encode(b"GET", HOT_KEY) * 100
    deadline = time.monotonic() + HOT_SECONDS
    try:
        while hot_keys_gauge(metrics_port) <= 0:
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{variant.name} did not report {HOT_KEY.decode()} hot within "
                    f"{HOT_SECONDS:.0f} s (hotkey_proxy_hot_keys stayed 0)"
                )
            server.check_alive()
            proxy.check_alive()
            c.sock.sendall(batch)
            for _ in range(100):
                got = c.read()
                if got != HOT_VALUE:
                    raise BenchError(f"GET {HOT_KEY.decode()} through {variant.name} gave {got!r}")
    finally:
        c.close()


def command_calls(master: Client, command: str) -> int:
    info = master.call(b"INFO", b"commandstats")
    if not isinstance(info, bytes):
        raise BenchError(f"INFO commandstats replied {info!r}")
    prefix = f"cmdstat_{command}:calls="
    for line in info.decode().splitlines():
        if line.startswith(prefix):
            return int(line[len(prefix) :].split(",", 1)[0])
    return 0


@dataclass(frozen=True)
class Sample:
    rps: float
    p50_ms: float
    proxy_cpu: float | None  # CPU-seconds per 100k requests
    server_cpu: float
    on_master: float  # share of the requests the master executed


# The columns of redis-benchmark 7.0's --csv that are read (rps and p50), and the ones before.
CSV_HEADER = ["test", "rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms"]


def run_benchmark(
    variant: Variant, test: Test, pipeline: int, requests: int, bench_cpu: int | None
) -> tuple[float, float]:
    pin = ["taskset", "-c", str(bench_cpu)] if bench_cpu is not None else []
    argv = [
        *pin,
        "redis-benchmark",
        "-h",
        "127.0.0.1",
        "-p",
        str(variant.port),
        "-c",
        str(CLIENTS),
        "-n",
        str(requests),
        "-P",
        str(pipeline),
        "--csv",
        *test.args,
    ]
    what = f"redis-benchmark {test.name} -P {pipeline} through {variant.name}"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_SECONDS)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{what} did not finish within {RUN_SECONDS:.0f} s") from e
    rows = [line.replace('"', "").split(",") for line in done.stdout.splitlines()]
    if done.returncode != 0 or len(rows) != 2 or rows[0][:5] != CSV_HEADER:
        raise BenchError(f"{what} failed (status {done.returncode}):\n{done.stdout}{done.stderr}")
    return float(rows[1][1]), float(rows[1][4])


def measure(
    variant: Variant,
    test: Test,
    pipeline: int,
    requests: int,
    server: Process,
    master: Client,
    bench_cpu: int | None,
) -> Sample:
    calls = command_calls(master, test.command)
    proxy_ticks = variant.proxy.cpu_ticks() if variant.proxy else 0
    server_ticks = server.cpu_ticks()
    rps, p50 = run_benchmark(variant, test, pipeline, requests, bench_cpu)
    server_ticks = server.cpu_ticks() - server_ticks
    proxy_cpu = None
    if variant.proxy:
        proxy_cpu = (variant.proxy.cpu_ticks() - proxy_ticks) / CLK_TCK * 100_000 / requests
    executed = command_calls(master, test.command) - calls
    if test.command == "set" and executed != requests:
        raise BenchError(
            f"{test.name} -P {pipeline} through {variant.name}: {executed} of {requests} "
            "SETs reached the master"
        )
    server_cpu = server_ticks / CLK_TCK * 100_000 / requests
    return Sample(rps, p50, proxy_cpu, server_cpu, executed / requests)


def idle_rss_per_client(process: Process, port: int) -> tuple[int, float]:
    """RSS before, and its growth per client once IDLE_CLIENTS clients have each had a PONG."""
    before = process.rss_kib()
    socks: list[socket.socket] = []
    try:
        for _ in range(IDLE_CLIENTS):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10.0))
        for s in socks:
            s.sendall(encode(b"PING"))
        for i, s in enumerate(socks):
            got = b""
            while not got.endswith(b"\r\n"):
                chunk = s.recv(64)
                if not chunk:
                    raise BenchError(f"{process.name} closed idle client {i + 1} of {IDLE_CLIENTS}")
                got += chunk
            if got != b"+PONG\r\n":
                raise BenchError(f"{process.name} answered PING with {got!r} (client {i + 1})")
        after = process.rss_kib()
    except OSError as e:
        raise BenchError(f"{process.name}: opening {IDLE_CLIENTS} idle clients: {e}") from e
    finally:
        for s in socks:
            s.close()
    return before, (after - before) * 1024 / IDLE_CLIENTS


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def median(xs: list[float | None]) -> float | None:
    present = [x for x in xs if x is not None]
    return statistics.median(present) if present else None


Key = tuple[str, str, int]  # variant, test, pipeline


def report(
    samples: dict[Key, list[Sample]],
    memory: dict[str, tuple[int, float]],
    variants: list[str],
    args: argparse.Namespace,
    loads: tuple[float, float],
) -> None:
    med: dict[Key, dict[str, float | None]] = {}
    for key, ss in samples.items():
        med[key] = {
            "rps": median([s.rps for s in ss]),
            "p50": median([s.p50_ms for s in ss]),
            "proxy_cpu": median([s.proxy_cpu for s in ss]),
            "server_cpu": median([s.server_cpu for s in ss]),
            "on_master": median([s.on_master for s in ss]),
        }

    # The rounds' lowest and highest throughput: how far apart the rounds were.
    spread = {
        key: f"{min(s.rps for s in ss):,.0f} to {max(s.rps for s in ss):,.0f}"
        for key, ss in samples.items()
    }

    def added_p50(v: str, t: str, p: int) -> float | None:
        direct = med.get(("direct", t, p))
        mine = med.get((v, t, p))
        if direct is None or mine is None or v == "direct":
            return None
        a, b = mine["p50"], direct["p50"]
        return None if a is None or b is None else a - b

    pin = "unpinned" if args.bench_cpu is None else f"core {args.bench_cpu}"
    print(
        f"\n## hotkey-proxy vs twemproxy: medians of {args.rounds} rounds, {args.requests:,} "
        f"requests, {CLIENTS} clients, keyspace {KEYSPACE:,} (redis-server on core {SERVER_CPU}, "
        f"proxies on core {PROXY_CPU}, redis-benchmark {pin}; CPU in CPU-s per 100k requests)\n"
    )
    # Anything else on these two cores slows every variant and inflates CPU per request (more
    # wake-ups per batch): the load says how far the absolute figures are from an idle machine.
    print(f"1-minute load average: {loads[0]:.1f} at the start, {loads[1]:.1f} at the end.\n")
    print(
        "| test | -P | variant | ops/s | ops/s range | p50 ms | added p50 | proxy CPU "
        "| server CPU | on master |"
    )
    print("| --- | --: | --- | --: | --: | --: | --: | --: | --: | --: |")
    for t in TESTS:
        for p in PIPELINES:
            for v in variants:
                m = med[(v, t.name, p)]
                print(
                    f"| {t.name} | {p} | {v} | {fmt(m['rps'], ',.0f')} | {spread[(v, t.name, p)]} "
                    f"| {fmt(m['p50'], '.3f')} "
                    f"| {fmt(added_p50(v, t.name, p), '.3f')} | {fmt(m['proxy_cpu'], '.3f')} "
                    f"| {fmt(m['server_cpu'], '.3f')} | {fmt(m['on_master'], '.2%')} |"
                )

    print("\n## Idle clients: RSS growth per client with 5,000 connected\n")
    print("| process | RSS before KiB | bytes per client |")
    print("| --- | --: | --: |")
    for name, (before, per_client) in memory.items():
        print(f"| {name} | {before:,} | {per_client:,.0f} |")

    print("\n## Targets (issue 20): hotkey-proxy against twemproxy in the same run\n")
    if not {"twemproxy", "hotkey-proxy"} <= set(variants):
        print("Not computed: the targets need both twemproxy and hotkey-proxy among --variants.")
        return
    rows: list[tuple[str, float | None, str, bool | None]] = []

    def target(what: str, value: float | None, goal: str, met: bool | None) -> None:
        rows.append((what, value, goal, met))

    for t in TESTS:
        for p in PIPELINES:
            mine, twem = med[("hotkey-proxy", t.name, p)], med[("twemproxy", t.name, p)]
            r = ratio(mine["rps"], twem["rps"])
            floor = 1.3 if t.hot and p == 16 else 1.0
            target(
                f"{t.name} -P {p}: throughput ÷ twemproxy's",
                r,
                f"≥ {floor}",
                None if r is None else r >= floor,
            )
            if t.hot:
                continue
            r = ratio(added_p50("hotkey-proxy", t.name, p), added_p50("twemproxy", t.name, p))
            target(
                f"{t.name} -P {p}: added p50 ÷ twemproxy's", r, "≤ 1", None if r is None else r <= 1
            )
            r = ratio(mine["proxy_cpu"], twem["proxy_cpu"])
            target(
                f"{t.name} -P {p}: proxy CPU per request ÷ twemproxy's",
                r,
                "≤ 1",
                None if r is None else r <= 1,
            )
    for p in PIPELINES:
        mine, twem = med[("hotkey-proxy", "hot GET", p)], med[("twemproxy", "hot GET", p)]
        r = ratio(mine["server_cpu"], twem["server_cpu"])
        target(
            f"hot GET -P {p}: master CPU ÷ master CPU through twemproxy",
            r,
            "≤ 0.1",
            None if r is None else r <= 0.1,
        )
        share = mine["on_master"]
        target(
            f"hot GET -P {p}: share of hot reads on the master",
            share,
            "≤ 1 %",
            None if share is None else share <= 0.01,
        )
    memory_ratio = ratio(memory["hotkey-proxy"][1], memory["twemproxy"][1])
    target("idle client: RSS per connection ÷ twemproxy's", memory_ratio, "reported", None)

    print("| target | measured | goal | met |")
    print("| --- | --: | --- | --- |")
    for what, value, goal, met in rows:
        shown = fmt(value, ".2%") if "share" in what else fmt(value, ".2f")
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        print(f"| {what} | {shown} | {goal} | {verdict} |")
    print("\n(n/a: a ratio whose twemproxy side is 0 or negative, or a figure with no goal.)")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument(
        "--requests", type=int, default=200_000, help="requests per run (default 200000)"
    )
    ap.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)} (default all)",
    )
    ap.add_argument(
        "--proxy-bin",
        type=Path,
        default=ROOT / "target" / "release" / "hotkey-proxy",
        help="the hotkey-proxy binary (default %(default)s)",
    )
    ap.add_argument(
        "--bench-cpu",
        default=str(PROXY_CPU),
        choices=["0", "1", "any"],
        help="the core redis-benchmark is pinned to, or any (default %(default)s)",
    )
    args = ap.parse_args()
    args.bench_cpu = None if args.bench_cpu == "any" else int(args.bench_cpu)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants or len(set(variants)) != len(variants):
        ap.error(f"--variants {args.variants!r}: give each of {', '.join(VARIANTS)} at most once")
    if args.rounds < 1 or args.requests < 1:
        ap.error("--rounds and --requests must be at least 1")
    args.variants = variants
    return args


def main() -> None:
    args = parse_args()
    variants: list[str] = args.variants
    if "hotkey-proxy" in variants and not args.proxy_bin.is_file():
        raise BenchError(
            f"no hotkey-proxy binary at {args.proxy_bin}: run 'cargo build --release -p "
            "hotkey-proxy' or pass --proxy-bin (or leave hotkey-proxy out of --variants)"
        )
    # Each of 5,000 idle clients holds a descriptor in this script and in the process it reaches,
    # which inherits the limit.
    want = IDLE_CLIENTS + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        raise BenchError(
            f"the open-files hard limit is {hard}: {IDLE_CLIENTS} idle clients need {want}"
        )
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    load_before = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="hotkey-bench-proxy.") as d,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(d)
        server, master_port = start_server(stack, tmp)
        by_name: dict[str, Variant] = {"direct": Variant("direct", master_port, None)}
        if "twemproxy" in variants:
            by_name["twemproxy"] = start_twemproxy(stack, tmp, master_port, server)
        if "hotkey-proxy" in variants:
            by_name["hotkey-proxy"] = start_hotkey_proxy(
                stack, tmp, args.proxy_bin, master_port, server
            )
        master = Client(master_port)
        master.call(b"SET", HOT_KEY, HOT_VALUE)
        samples: dict[Key, list[Sample]] = {}
        for r in range(args.rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for t in TESTS:
                for p in PIPELINES:
                    for v in order:
                        variant = by_name[v]
                        if t.hot and v == "hotkey-proxy":
                            warm_up(variant, server)
                        s = measure(variant, t, p, args.requests, server, master, args.bench_cpu)
                        samples.setdefault((v, t.name, p), []).append(s)
                        print(
                            f"round {r + 1}/{args.rounds} {t.name} -P {p} {v}: {s.rps:,.0f} "
                            f"ops/s, p50 {s.p50_ms:.3f} ms",
                            file=sys.stderr,
                        )
        master.close()
        memory: dict[str, tuple[int, float]] = {}
        for v in variants:
            variant = by_name[v]
            process = variant.proxy if variant.proxy else server
            name = v if variant.proxy else "redis-server (direct)"
            memory[name] = idle_rss_per_client(process, variant.port)
    report(samples, memory, variants, args, (load_before, os.getloadavg()[0]))


if __name__ == "__main__":
    try:
        main()
    except (BenchError, OSError) as e:
        print(f"bench-proxy: {e}", file=sys.stderr)
        sys.exit(1)
