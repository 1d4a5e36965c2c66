# hotkey — see README.md.
PORT ?= 7379

.PHONY: all build deps run stop test test-valkey lint bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cargo build --release

run: build
	PORT=$(PORT) scripts/run.sh

stop:
	-redis-cli -p $(PORT) shutdown nosave

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
	scripts/bench-hook.sh

clean:
	cargo clean
