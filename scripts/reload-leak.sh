#!/usr/bin/env bash
# What a MODULE UNLOAD + MODULE LOAD of hotkey costs in server memory: starts a server on a free
# loopback port with the module, runs redis-benchmark GET/SET traffic against it, reloads the
# module WARM_UP times, reads used_memory, reloads it CYCLES more times, reads it again, and
# prints the growth per reload. The figure in the book's Security page comes from here.
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

traffic() { redis-benchmark -p "$port" -t get,set -r 1000 -c 4 -l -q >/dev/null 2>&1 & bench_pid=$!; }
stop_traffic() {
  kill -0 "$bench_pid" 2>/dev/null || { echo "the traffic stopped during the reloads" >&2; exit 1; }
  kill "$bench_pid"; wait "$bench_pid" 2>/dev/null || true; bench_pid=
}
reload() {
  [ "$(cli module unload hotkey)" = OK ] || { echo "MODULE UNLOAD failed" >&2; exit 1; }
  [ "$(cli module load "$MODULE")" = OK ] || { echo "MODULE LOAD failed" >&2; tail "$dir/server.log" >&2; exit 1; }
}
# used_memory in the same state each time: no traffic, each of redis-benchmark's 1000 keys
# written and read once since the last load (the module tracks the same keys), the slow log
# (which reloads may enter) empty, the lowest of five readings; repeated until two in a row
# agree, as the first passes after a load still grow the server's structures (~25 KB).
reading() {
  for i in $(seq 0 999); do printf 'SET key:%012d xxx\r\nGET key:%012d\r\n' "$i" "$i"; done | cli --pipe >/dev/null
  cli slowlog reset >/dev/null
  for _ in 1 2 3 4 5; do cli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; sleep 0.02; done | sort -n | head -1
}
used_memory() {
  local last now
  last=$(reading)
  for _ in 1 2 3 4 5; do
    now=$(reading)
    [ "$now" = "$last" ] && break
    last=$now
  done
  echo "$last"
}

traffic
for _ in $(seq "$WARM_UP"); do reload; done
stop_traffic
before=$(used_memory)
traffic
for _ in $(seq "$CYCLES"); do reload; done
stop_traffic
after=$(used_memory)
echo "$("$SERVER" --version | cut -d' ' -f1-3): used_memory $before -> $after over $CYCLES reloads" \
     "under GET/SET traffic: $(( (after - before) / CYCLES )) bytes per reload"
