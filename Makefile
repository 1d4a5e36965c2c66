# hotkey — see README.md.
# Arguments for `make run`, e.g. ARGS="--seconds 60 --no-cache", or ARGS="--cluster" for the
# story on a Redis Cluster (see `leaderboard --help`).
ARGS ?=

.PHONY: all build deps run run-python test test-rust test-python test-valkey lint docs bench bench-python bench-proxy clean

all: build

deps:
	@scripts/install-deps.sh

# The module (target/release/libhotkey.so), the hotkey tool (target/release/hotkey) and the
# proxy (target/release/hotkey-proxy).
build: deps
	cargo build --release
	cargo build --release -p hotkey-cli -p hotkey-proxy

# The seed story, live: a master and two replicas on free loopback ports, a leaderboard that
# turns hot, its reads moving off the master. Stops the servers at the end or on Ctrl-C.
# ARGS="--proxy" runs it through hotkey-proxy, which the demo finds next to its own binary.
run: build
	cargo run --release -p hotkey-demo --bin leaderboard -- $(ARGS)

# The same story through the Python router (redis-hotkey), e.g. ARGS="--no-cache".
run-python: deps
	cargo build --release -p hotkey
	python/test.sh --no-tests
	python/.venv/bin/python python/examples/leaderboard.py $(ARGS)

# The Rust suites and the Python suite run side by side: both spend most of their time waiting
# on the servers they start, so two cores carry both (cargo's build lock orders their builds).
test: deps
	$(MAKE) --no-print-directory -j2 test-rust test-python

# The Rust suites under cargo-nextest (`cargo install cargo-nextest --locked`): each test in its
# own process with the deadline of .config/nextest.toml (SLOW after 60 s, killed after 5 min), so
# a test that hangs fails, named, and the rest of the run goes on. Nextest runs neither the
# benches' one-pass smoke runs (their own mains cannot list tests) nor doc tests: `cargo test`
# does. MAKEFLAGS= : cargo would try the parallel make's jobserver, which it is not handed.
test-rust: deps
	@cargo nextest --version >/dev/null 2>&1 || { echo "make test-rust needs cargo-nextest: cargo install cargo-nextest --locked" >&2; exit 1; }
	MAKEFLAGS= cargo nextest run --workspace --lib --bins --tests --examples
	MAKEFLAGS= cargo test --workspace --bench '*'
	MAKEFLAGS= cargo test --workspace --doc

# The Python router (python/): ruff, mypy --strict, and pytest against real servers with the
# newest redis-py and with 5.0.0, each in its own venv (python/.venv, python/.venv-redis5);
# plain redis-py against hotkey-proxy too, so the proxy is built beside the module.
test-python: deps
	MAKEFLAGS= cargo build --release -p hotkey -p hotkey-proxy
	python/test.sh

test-valkey: deps
	scripts/test-valkey.sh

# rustfmt, clippy (-D warnings, on top of the workspace's [workspace.lints]) and, for the Python
# router and the scripts, ruff (check and format) from the Python venv.
lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	python/test.sh --no-tests
	cd python && .venv/bin/ruff check --config pyproject.toml src tests benchmarks examples ../scripts
	cd python && .venv/bin/ruff format --config pyproject.toml --check src tests benchmarks examples ../scripts

# The book (docs/, mdBook) into target/book; mdbook comes from the crates registry the first
# time. `make test` checks the book without it (tests/book.rs, tests/module/docs.rs).
docs:
	@command -v mdbook >/dev/null 2>&1 || cargo install mdbook --locked
	mdbook build docs

bench: build
	cargo bench --bench tracker
	cargo bench --bench tick
	cargo bench --bench scale
	cargo bench --bench detect
	cargo bench --bench detect -- --cluster
	cargo bench --bench cluster_bus
	scripts/servers.sh redis-8.6.2 >/dev/null
	HOTKEY_REDIS_SERVER=$${HOTKEY_SERVERS:-$$HOME/.cache/hotkey-servers}/bin/redis-8.6.2-server cargo bench --bench top_accuracy
	cargo bench -p hotkey-router --bench route
	cargo bench -p hotkey-router --bench hit_threads
	cargo bench -p hotkey-router --bench hot_keys
	cargo bench -p hotkey-proxy --bench staleness
	cargo bench -p hotkey-proxy --bench cluster
	cargo bench -p hotkey-demo --bench offload
	scripts/bench-hook.sh
	$(MAKE) bench-python
	$(MAKE) bench-proxy

bench-python: deps
	cargo build --release -p hotkey
	python/test.sh --no-tests
	python/.venv/bin/python python/benchmarks/route.py
	python/.venv/bin/python python/benchmarks/offload.py

# hotkey-proxy against twemproxy (Debian's nutcracker) and direct connections, side by side:
# issue 20's targets as ratios measured in one run, e.g. ARGS="--rounds 5".
bench-proxy:
	@scripts/install-deps.sh --bench
	cargo build --release -p hotkey -p hotkey-proxy
	scripts/bench-proxy.py $(ARGS)

clean:
	cargo clean
