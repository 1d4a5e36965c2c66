#!/usr/bin/env bash
# Installs what a fresh Debian machine with a Rust toolchain lacks to build and test hotkey:
# redis-server and redis-benchmark (Debian's redis-server, redis-tools), libclang-dev
# (redis-module's build runs bindgen), tmux and openssl (the hotkey tool's live view is tested
# in a real terminal, its TLS against certificates made for the test) and python3-venv (the Python router's tests). As root it installs them; otherwise it
# prints the command.
#
#   scripts/install-deps.sh           # what `make`, `make test` and `make lint` need
#   scripts/install-deps.sh --bench   # and what only `make bench` needs: nutcracker (twemproxy
#                                     # 0.5, the proxy scripts/bench-proxy.py measures against)
set -euo pipefail

bench=
case "${1:-}" in
  "") ;;
  --bench) bench=1 ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || missing+=(redis-tools)
# bindgen loads libclang.so itself, with the clang headers beside it (libclang-dev); libclang-cpp
# is another library and does not do, so check for the file bindgen opens.
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || missing+=(libclang-dev)
command -v tmux >/dev/null || missing+=(tmux)
# The hotkey tool's TLS test makes its certificates with openssl.
command -v openssl >/dev/null || missing+=(openssl)
# The Python router's tests make venvs: Debian splits venv and ensurepip into python3-venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# Not a test dependency: only the proxy benchmark runs twemproxy.
[ -z "$bench" ] || command -v nutcracker >/dev/null || missing+=(nutcracker)
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "hotkey needs: ${missing[*]}. Run as root: apt-get update && $cmd" >&2
  exit 1
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
# Debian's packages start a redis-server service on 6379 (and nutcracker one on 22121) where
# systemd runs; hotkey never uses them, so leave them as the packages set them up.
