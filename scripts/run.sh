#!/usr/bin/env bash
# `make run`: starts redis-server with the module on a loopback port, drives a skewed workload
# (a few keys far hotter than 100,000 others), prints HOTKEY.TOP, and leaves the server up so
# you can poke at it.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-7379}
DIR=${RUN_DIR:-/tmp/hotkey-run-$PORT}
SO=$PWD/target/release/libhotkey.so
[ -f "$SO" ] || { echo "no $SO: run 'make' first" >&2; exit 1; }
[ "$PORT" != 6379 ] || { echo "refusing port 6379: pick another PORT" >&2; exit 1; }

cli() { redis-cli -p "$PORT" "$@"; }
if cli ping >/dev/null 2>&1; then
  echo "a server already answers on port $PORT; stopping it"
  cli shutdown nosave >/dev/null 2>&1 || true
  sleep 0.5
fi
mkdir -p "$DIR"
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --save "" --appendonly no \
  --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" \
  --loadmodule "$SO"
for _ in $(seq 50); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
cli ping >/dev/null || { echo "redis-server did not start; see $DIR/redis.log" >&2; exit 1; }
echo "redis-server with hotkey on 127.0.0.1:$PORT (log: $DIR/redis.log)"

echo "workload: 100,000 cold user keys, plus leaderboard:global read hot, counter:visits written hot"
bench() { redis-benchmark -p "$PORT" -q "$@" >/dev/null; }
bench -c 20 -n 400000 -P 16 -r 100000 GET user:__rand_int__ &
bench -c 4 -n 150000 -P 16 -r 100000 SET user:__rand_int__ x &
bench -c 10 -n 200000 -P 16 ZREVRANGE leaderboard:global 0 9 &
bench -c 4 -n 60000 -P 16 INCR counter:visits &
bench -c 2 -n 20000 -P 16 GET session:abc &
sleep 2

# HOTKEY.TOP as a table: each entry is a flat field-value list in raw mode.
top() {
  cli --raw HOTKEY.TOP COUNT 6 | awk '
    BEGIN { printf "%-22s %4s %14s %14s %10s\n", "key", "db", "reads/s", "writes/s", "error" }
    { f[++n] = $0 }
    n == 12 { printf "%-22s %4s %14.0f %14.0f %10.1f\n", f[2], f[4], f[6], f[8], f[10]; n = 0 }'
}
echo
echo "HOTKEY.TOP COUNT 6, while the load runs:"
top
wait
echo
cli INFO hotkey | grep -E "tracked_keys|memory_bytes|commands_seen|commands_sampled|sample_fraction"
cat <<MSG

The server is still running. Try:
  redis-cli -p $PORT HOTKEY.TOP COUNT 10 BY writes
  redis-cli -p $PORT INFO hotkey
  redis-cli -p $PORT CONFIG GET 'hotkey.*'
Stop it with:
  redis-cli -p $PORT shutdown nosave     (or: make stop)
MSG
