#!/usr/bin/env bash
# `make run`: starts redis-server with the module on a loopback port, drives a skewed workload
# (a few keys far hotter than 100,000 others), prints HOTKEY.TOP, the events the module
# published and HOTKEY.ROUTE of the hot keys, and leaves the server up so you can poke at it.
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

# The module's events, as a subscriber sees them, while the workload runs.
redis-cli -p "$PORT" --raw SUBSCRIBE __hotkey__ > "$DIR/events.log" 2>&1 &
SUB=$!
trap 'kill $SUB 2>/dev/null || true' EXIT

echo "workload: 100,000 cold user keys, plus leaderboard:global read hot, counter:visits written hot"
LOAD=()
bench() { redis-benchmark -p "$PORT" -q "$@" >/dev/null & LOAD+=($!); }
bench -c 20 -n 400000 -P 16 -r 100000 GET user:__rand_int__
bench -c 4 -n 150000 -P 16 -r 100000 SET user:__rand_int__ x
bench -c 10 -n 200000 -P 16 ZREVRANGE leaderboard:global 0 9
bench -c 4 -n 60000 -P 16 INCR counter:visits
bench -c 2 -n 20000 -P 16 GET session:abc
sleep 2

# HOTKEY.TOP as a table: each entry is a flat field-value list in raw mode.
top() {
  cli --raw HOTKEY.TOP COUNT 6 | awk '
    BEGIN { printf "%-22s %4s %14s %14s %10s %4s\n", "key", "db", "reads/s", "writes/s", "error", "hot" }
    { f[++n] = $0 }
    n == 12 { printf "%-22s %4s %14.0f %14.0f %10.1f %4s\n", f[2], f[4], f[6], f[8], f[10], f[12]; n = 0 }'
}
echo
echo "HOTKEY.TOP COUNT 6, while the load runs:"
top
wait "${LOAD[@]}"
echo
echo "events on __hotkey__ (heartbeats left out):"
grep '^{' "$DIR/events.log" | grep -v '"heartbeat"' | cut -c1-160 | head -12
echo
for key in leaderboard:global counter:visits; do
  echo "HOTKEY.ROUTE $key: $(cli --raw HOTKEY.ROUTE "$key" | paste -sd ' ')"
done
echo
cli INFO hotkey | grep -E "tracked_keys|memory_bytes|commands_seen|sample_fraction|hot_keys|entry_level|last_seq"
cat <<MSG

The server is still running. Try:
  redis-cli -p $PORT HOTKEY.TOP COUNT 10 BY writes
  redis-cli -p $PORT HOTKEY.ROUTES
  redis-cli -p $PORT HOTKEY.PIN leaderboard:global TTL 60
  redis-cli -p $PORT SUBSCRIBE __hotkey__
  redis-cli -p $PORT INFO hotkey
  redis-cli -p $PORT CONFIG GET 'hotkey.*'
Stop it with:
  redis-cli -p $PORT shutdown nosave     (or: make stop)
MSG
