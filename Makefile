# hotkey — see README.md.
# Arguments for `make run`, e.g. ARGS="--seconds 60 --no-cache" (see `leaderboard --help`).
ARGS ?=

.PHONY: all build deps run test test-valkey lint bench clean

all: build

deps:
	@scripts/install-deps.sh

# The module (target/release/libhotkey.so) and the hotkey tool (target/release/hotkey).
build: deps
	cargo build --release
	cargo build --release -p hotkey-cli

# The seed story, live: a master and two replicas on free loopback ports, a leaderboard that
# turns hot, its reads moving off the master. Stops the servers at the end or on Ctrl-C.
run: build
	cargo run --release -p hotkey-demo --bin leaderboard -- $(ARGS)

test: deps
	cargo test --workspace --all-targets && cargo test --workspace --doc

test-valkey: deps
	scripts/test-valkey.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: build
	cargo bench --bench tracker
	cargo bench --bench tick
	cargo bench --bench detect
	cargo bench -p hotkey-router --bench route
	cargo bench -p hotkey-demo --bench offload
	scripts/bench-hook.sh

clean:
	cargo clean
