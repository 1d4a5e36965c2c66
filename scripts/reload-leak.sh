#!/usr/bin/env bash
# What a MODULE UNLOAD + MODULE LOAD of hotkey costs in server memory: starts a server on a free
# loopback port with the module, runs redis-benchmark GET/SET traffic against it, reloads the
# module WARM_UP times, reads used_memory, reloads it CYCLES more times, reads it again, and
# prints the growth per reload. The figure in the README's Security section comes from here.
#
#   scripts/reload-leak.sh                                   # Debian's redis-server, 200 cycles
#   HOTKEY_REDIS_SERVER=~/.cache/hotkey-servers/bin/valkey-9.1.2-server scripts/reload-leak.sh
#
# MODULE=path/to/libhotkey.so (default target/release/libhotkey.so, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${CYCLES:-200}
WARM_UP=${WARM_UP:-10}
SERVER=${HOTKEY_REDIS_SERVER:-redis-server}
MODULE=${MODULE:-target/release/libhotkey.so}
[ -f "$MODULE" ] || cargo build --release -p hotkey
MODULE=$(realpath "$MODULE")

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
cli() { redis-cli -p "$port" "$@"; }
server_pid= bench_pid=
cleanup() {
  [ -z "$bench_pid" ] || kill "$bench_pid" 2>/dev/null || true
  [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  rm -rf "$dir"
}
trap cleanup EXIT

"$SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/server.log" --enable-module-command yes --loadmodule "$MODULE" &
server_pid=$!
for _ in $(seq 100); do [ "$(cli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
[ "$(cli ping 2>/dev/null)" = PONG ] || { echo "the server did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }

redis-benchmark -p "$port" -t get,set -r 1000 -c 4 -l -q >/dev/null 2>&1 &
bench_pid=$!

reload() {
  [ "$(cli module unload hotkey)" = OK ] || { echo "MODULE UNLOAD failed" >&2; exit 1; }
  [ "$(cli module load "$MODULE")" = OK ] || { echo "MODULE LOAD failed" >&2; tail "$dir/server.log" >&2; exit 1; }
}
# The lowest of a few readings: a client buffer full at one instant does not count.
used_memory() {
  for _ in 1 2 3 4 5; do cli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; sleep 0.02; done | sort -n | head -1
}

for _ in $(seq "$WARM_UP"); do reload; done
before=$(used_memory)
for _ in $(seq "$CYCLES"); do reload; done
after=$(used_memory)
kill -0 "$bench_pid" 2>/dev/null || { echo "the traffic stopped during the reloads" >&2; exit 1; }
echo "$("$SERVER" --version | cut -c1-40): used_memory $before -> $after over $CYCLES reloads" \
     "after $WARM_UP: $(( (after - before) / CYCLES )) bytes per reload"
