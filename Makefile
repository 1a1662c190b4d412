# pop3filter: a thin wrapper over cargo and the scripts in scripts/.
#   make run    demo Dovecot + the proxy in the foreground (Ctrl-C stops both)
#   make test   every test, against a real Dovecot
#   make soak   the fault and load suites five times over
#   make lint   rustfmt and clippy
#   make doc    API docs of the workspace

export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

.PHONY: all build run test soak lint doc clean deps bench

all: build

deps:
	@scripts/install-deps.sh

build:
	$(CARGO) build --release --workspace

run: deps build
	@scripts/demo.sh

test: deps
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace

# The fault, load and shutdown suites five times over, to shake out timing-dependent failures.
soak: deps
	$(CARGO) build --workspace --all-targets
	for i in 1 2 3 4 5; do \
	  $(CARGO) test --test faults_origin --test faults_origin_filter --test faults_client \
	    --test faults_client_input --test faults_filter \
	    --test shutdown --test load --test limits --test spcp_random || exit 1; \
	done

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Throughput, latency, memory and CPU beside a direct connection, socat and nginx (issue 5);
# writes bench/results/latest.{md,svg,json}. See bench/README.md.
bench: deps
	@bench/install-deps.sh || echo "bench: a peer could not be installed; its row will say so" >&2
	$(CARGO) build --release --workspace
	@python3 bench/bench.py

doc:
	$(CARGO) doc --workspace --no-deps

clean:
	$(CARGO) clean
