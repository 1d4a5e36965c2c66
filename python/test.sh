#!/usr/bin/env bash
# The Python router's checks (`make test-python`): ruff, mypy --strict and pytest with the
# newest redis-py (python/.venv), then pytest again with the oldest supported, redis-py 5.0.0
# (python/.venv-redis5). The venvs are made once and reused; the tests need the module and the
# proxy built (`cargo build --release -p hotkey -p hotkey-proxy`, or
# HOTKEY_MODULE=/path/to/libhotkey.so and HOTKEY_PROXY=/path/to/hotkey-proxy).
set -euo pipefail
cd "$(dirname "$0")"

NEWEST_REDIS="redis>=8,<9"
OLDEST_REDIS="redis==5.0.0"

venv() { # venv DIR REDIS_SPEC
  if [ ! -x "$1/bin/python" ]; then
    python3 -m venv "$1"
  fi
  "$1/bin/pip" install -q --disable-pip-version-check -e ".[test]" "$2"
}

venv .venv "$NEWEST_REDIS"
# `--no-tests`: only make the venvs (for `make bench-python`).
[ "${1:-}" = "--no-tests" ] && exit 0
venv .venv-redis5 "$OLDEST_REDIS"

.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
.venv/bin/mypy
echo "--- pytest, $(.venv/bin/python -c 'import redis; print("redis-py", redis.__version__)')"
.venv/bin/pytest -q
echo "--- pytest, $(.venv-redis5/bin/python -c 'import redis; print("redis-py", redis.__version__)')"
.venv-redis5/bin/pytest -q
