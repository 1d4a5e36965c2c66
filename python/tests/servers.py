"""Real redis-server processes for the tests: each on a free loopback port (never 6379) with
its own temporary directory, the hotkey module loaded, waited for until it answers PING, and
always stopped (SIGTERM, then SIGKILL) and removed by the fixture that started it.

``HOTKEY_MODULE`` names the module's ``.so`` (default: ``target/release/libhotkey.so`` of this
repository); ``HOTKEY_REDIS_SERVER`` the server binary (default: ``redis-server`` on PATH).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
# A hot threshold no test load reaches: only pinned keys are hot, and a pinned key never turns
# write-hot (which would make its advised cache TTL 0) however often it is written.
NO_DETECTION = ("hot-threshold", "1000000000")


def module_path() -> Path:
    path = Path(os.environ.get("HOTKEY_MODULE", REPO / "target" / "release" / "libhotkey.so"))
    if not path.is_file():
        raise RuntimeError(
            f"the module is not built: {path} does not exist "
            "(run `cargo build --release -p hotkey`, or set HOTKEY_MODULE to the .so)"
        )
    return path


def server_binary() -> str:
    return os.environ.get("HOTKEY_REDIS_SERVER", "redis-server")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(bus: bool = False) -> int:
    """A free loopback port (never 6379); with ``bus``, its cluster-bus port (+10000) free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 6379 and (not bus or (port + 10000 < 65536 and _free(port + 10000))):
            return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Process:
    """One server process; ``stop()`` kills it and removes its directory."""

    def __init__(self, kind: str, args: Sequence[str], port: int, directory: Path) -> None:
        self.kind = kind
        self.port = port
        self.dir = directory
        self.log = directory / f"{kind}.log"
        self._out = open(directory / "stdout.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [server_binary(), *args], stdout=self._out, stderr=subprocess.STDOUT, cwd=directory
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers_ping(port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"{kind} on port {port} did not start: {' '.join(args)}\n{tail}")
            time.sleep(0.02)

    def log_tail(self) -> str:
        text = ""
        for f in (self.log, self.dir / "stdout.log"):
            if f.exists():
                text += f.read_text(errors="replace")[-3000:]
        return text

    def kill(self) -> None:
        """SIGKILL, as a crash: the port and the directory stay for a restart."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Server(Process):
    """A redis-server with the module: for tests every access counted (``sample-max 1``) and
    detection off (only pinned keys are hot); with ``detect``, the module's defaults."""

    def __init__(
        self,
        module_args: Sequence[tuple[str, str]] = (),
        replica_of: Server | None = None,
        port: int | None = None,
        detect: bool = False,
        module: bool = True,
        cluster: bool = False,
    ) -> None:
        self.module_args = list(module_args)
        port = port or free_port(bus=cluster)
        directory = Path(tempfile.mkdtemp(prefix="hotkey-py-server-"))
        argv = [
            *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(directory), "--logfile", str(directory / "server.log")),
            *("--enable-module-command", "yes", "--repl-diskless-sync-delay", "0"),
        ]
        if cluster:
            # Each node its own nodes.conf, in its own --dir.
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            argv += ["--cluster-node-timeout", "5000"]
        if module:
            argv += ["--loadmodule", str(module_path())]
        if module and not detect:
            argv += ["sample-max", "1", *NO_DETECTION]
        for name, value in module_args:
            argv += [name, value]
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of.port)]
        super().__init__("server", argv, port, directory)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def calls(self, command: str) -> int:
        """Calls of ``command`` (lower case) this server executed (``INFO commandstats``)."""
        stats = self.client().info("commandstats")
        entry = stats.get(f"cmdstat_{command}")
        return int(entry["calls"]) if entry else 0


class Sentinel(Process):
    """A sentinel monitoring ``master`` as ``name`` (down after 1 s)."""

    def __init__(self, master: Server, name: str) -> None:
        port = free_port()
        directory = Path(tempfile.mkdtemp(prefix="hotkey-py-sentinel-"))
        config = directory / "sentinel.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\nlogfile {directory / 'sentinel.log'}\n"
            f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {name} 1000\n"
            f"sentinel failover-timeout {name} 5000\n"
            f"sentinel parallel-syncs {name} 1\n"
        )
        super().__init__("sentinel", [str(config), "--sentinel"], port, directory)


class Cluster:
    """``masters`` x ``replicas`` cluster nodes with the module, created with
    ``redis-cli --cluster create``, returned once every node says ``cluster_state:ok`` and every
    replica is in sync. ``stop()`` stops every node."""

    def __init__(self, masters: int, replicas: int, args: Sequence[tuple[str, str]] = ()) -> None:
        self.nodes: list[Server] = []
        try:
            for _ in range(masters * (1 + replicas)):
                self.nodes.append(Server(args, cluster=True))
            cli = os.environ.get("HOTKEY_REDIS_CLI", "redis-cli")
            addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
            created = subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *addresses,
                    "--cluster-replicas",
                    str(replicas),
                    "--cluster-yes",
                ],
                capture_output=True,
                timeout=60,
            )
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout!r}")
            deadline = time.monotonic() + 30
            while not self._settled():
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not settle within 30 s")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def _settled(self) -> bool:
        for node in self.nodes:
            client = node.client()
            if client.cluster("info")["cluster_state"] != "ok":
                return False
            replication = client.info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        return True

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
