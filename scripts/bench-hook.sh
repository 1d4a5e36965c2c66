#!/usr/bin/env bash
# The cost of hotkey's command filter: server CPU time per request with the module (counting
# every command, and with default sampling) against the same redis-server binary without it.
#
#   scripts/bench-hook.sh                 # CPU time: variants interleaved, medians of rounds
#   ROUNDS=7 REQUESTS=4000000 scripts/bench-hook.sh
#   CALLGRIND=1 scripts/bench-hook.sh     # also instructions per request under callgrind
#                                         # (none, filter-only, count-all, sampling at 1 in 64)
#   REDIS_SERVER=~/.cache/hotkey-servers/bin/redis-8.6.2-server scripts/bench-hook.sh
#
# Server pinned to core 0, redis-benchmark to core 1 (-t set,get -P 16 -r 1000000). CPU time is
# the sum over the server's threads of /proc/PID/task/*/schedstat (nanoseconds on the CPU),
# read just before and after each run, divided by the requests served. On Redis ≥ 8.6 two more
# variants run a built-in HOTKEYS session (METRICS 1 NET, and METRICS 2 CPU NET) for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER=${REDIS_SERVER:-redis-server}
BENCH=${REDIS_BENCHMARK:-redis-benchmark}
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-2000000}
PORT=${PORT:-7479}
SO=$PWD/target/release/libhotkey.so
[ -f "$SO" ] || { echo "no $SO: run 'make' first" >&2; exit 1; }
DIR=$(mktemp -d /tmp/hotkey-bench.XXXXXX)
PID=
cleanup() { [ -z "$PID" ] || kill "$PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

# name → server arguments
declare -A ARGS=(
  [none]=""
  # Loaded but not counting: what a command filter costs as such (the server's part).
  [filter-only]="--loadmodule $SO enabled no"
  [count-all]="--loadmodule $SO sample-max 1"
  [default]="--loadmodule $SO"
  # Under callgrind the server is ~50× slower: adaptive sampling would see a quiet node, a
  # second of decay would span few requests, and each tick (about 27,000 instructions, most of
  # them reading INFO replication) would fall on 50× fewer requests. These pin sampling at its
  # busiest (1 in 64), what a loaded node runs at, stop the decay, and tick 50× less often, so
  # the count does not depend on speed.
  [cg-count-all]="--loadmodule $SO sample-max 1 half-life-ms 86400000 tick-ms 5000"
  [cg-sampled]="--loadmodule $SO sample-quiet-ops 0 half-life-ms 86400000 tick-ms 5000"
)
VARIANTS=(none filter-only count-all default)
if "$SERVER" --version | grep -qE 'v=(8\.([6-9]|[1-9][0-9])|9)'; then
  ARGS[hotkeys-net]=""
  ARGS[hotkeys-cpu-net]=""
  VARIANTS+=(hotkeys-net hotkeys-cpu-net)
fi

start() {  # $1 = variant, $2… = wrapper (e.g. valgrind)
  local v=$1; shift
  # shellcheck disable=SC2086
  "$@" "$SERVER" --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
    --logfile "$DIR/$v.log" ${ARGS[$v]} &
  PID=$!
  for _ in $(seq 600); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$PORT" ping >/dev/null
  case "$v" in
    hotkeys-net) redis-cli -p "$PORT" HOTKEYS START METRICS 1 NET >/dev/null ;;
    hotkeys-cpu-net) redis-cli -p "$PORT" HOTKEYS START METRICS 2 CPU NET >/dev/null ;;
  esac
}
stop() { redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; wait "$PID" 2>/dev/null || true; PID=; }
cpu_ns() { cat /proc/"$PID"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
load() {  # $1 = requests
  taskset -c 1 "$BENCH" -p "$PORT" -t set,get -P 16 -r 1000000 -n "$1" -q >/dev/null
}

echo "server: $("$SERVER" --version | cut -c1-40); $ROUNDS rounds of $REQUESTS requests"
declare -A RESULTS
for round in $(seq "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do
    start "$v" taskset -c 0
    load 100000  # warm up: connections, key space, sampling tuned
    before=$(cpu_ns)
    load "$REQUESTS"
    after=$(cpu_ns)
    stop
    # set,get each send REQUESTS requests
    ns=$(awk -v a="$after" -v b="$before" -v n="$REQUESTS" 'BEGIN {printf "%.1f", (a - b) / (2 * n)}')
    RESULTS[$v]="${RESULTS[$v]:-} $ns"
    echo "round $round $v: $ns ns/request"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base=$(echo "${RESULTS[none]}" | median)
echo
echo "| variant | server CPU ns/request (median of $ROUNDS) | × without module |"
echo "| --- | --- | --- |"
for v in "${VARIANTS[@]}"; do
  m=$(echo "${RESULTS[$v]}" | median)
  awk -v v="$v" -v m="$m" -v b="$base" 'BEGIN {printf "| %s | %.1f | ×%.3f |\n", v, m, m / b}'
done

[ "${CALLGRIND:-0}" = 1 ] || exit 0
command -v valgrind >/dev/null || { echo "CALLGRIND=1 needs valgrind" >&2; exit 1; }
N=${CALLGRIND_REQUESTS:-100000}
echo
echo "| variant | instructions/request (callgrind, (I(2N) - I(N)) / N, N = $N) |"
echo "| --- | --- |"
instructions() {  # $1 = variant, $2 = requests → total Ir of the server
  local out=$DIR/cg.$1.$2
  start "$1" valgrind --tool=callgrind --callgrind-out-file="$out" --log-file="$out.log"
  load "$2"
  stop
  awk '/^summary:/ {print $2}' "$out"
}
for v in none filter-only cg-count-all cg-sampled; do
  i1=$(instructions "$v" "$N")
  i2=$(instructions "$v" $((2 * N)))
  awk -v v="$v" -v a="$i1" -v b="$i2" -v n="$N" 'BEGIN {printf "| %s | %.0f |\n", v, (b - a) / (2 * n)}'
done
