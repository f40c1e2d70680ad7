# Palisade: `make run` starts the demo, `make test` runs every test.
# Everything a target needs is installed by scripts/ (idempotent).

CARGO ?= cargo
VENV  := .venv
WASM  := target/wasm32-wasip1/release/palisade.wasm
CLI   := target/release/palisade

.PHONY: all build wasm images deps test lint unit e2e js fuzz run run-nginx bench clean

all: build wasm

build:
	$(CARGO) build --release --bin palisade

wasm:
	bash scripts/build-wasm.sh

# The filter and companion images, as OCI layouts and docker-archives in
# target/images/, without a container engine daemon; prints their digests.
images: build wasm
	bash scripts/install-system-deps.sh
	bash scripts/build-images.sh

deps:
	bash scripts/install-system-deps.sh
	bash scripts/install-envoy.sh
	bash scripts/install-js-tools.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	bash scripts/build-wasm.sh --clippy

# Unit tests start a real redis-server and the JS tests need Node: both come
# from deps, so a fresh machine can run any of these targets first.
unit: deps
	$(CARGO) test

js: deps
	node --test tests/js/

e2e: deps build wasm
	$(VENV)/bin/pytest -q tests/e2e

# The parsers under bounded fuzzing (examples/fuzz.rs): FUZZ_SECONDS per
# target, in release unless FUZZ_PROFILE is emptied; FUZZ_ARGS go to the
# harness. `make test` runs it briefly, in the debug build the unit tests
# already made, where compiling a policy takes ~0.3 s: its hang limit is
# raised to match.
FUZZ_SECONDS ?= 60
FUZZ_PROFILE ?= --release
FUZZ_ARGS ?=
fuzz:
	$(CARGO) run $(FUZZ_PROFILE) --example fuzz -- --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

test: lint unit js e2e
	$(MAKE) fuzz FUZZ_SECONDS=2 FUZZ_PROFILE= FUZZ_ARGS="--hang-ms 10000"

run: deps build wasm
	bash scripts/run-demo.sh

run-nginx: deps build
	PROXY=nginx bash scripts/run-demo.sh

bench: deps build wasm
	$(CARGO) bench --bench engine
	bash scripts/bench-envoy.sh
	bash scripts/bench-companion.sh
	bash scripts/bench-nginx.sh
	bash scripts/bench-scoring.sh
	$(VENV)/bin/python scripts/bench-abuse.py

clean:
	$(CARGO) clean
