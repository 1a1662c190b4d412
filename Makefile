# pop3filter: a thin wrapper over cargo and the scripts in scripts/.
#   make run    demo Dovecot + the proxy in the foreground (Ctrl-C stops both)
#   make test   every test, against a real Dovecot
#   make lint   rustfmt and clippy
#   make doc    API docs of the workspace

export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

.PHONY: all build run test lint doc clean deps

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

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

doc:
	$(CARGO) doc --workspace --no-deps

clean:
	$(CARGO) clean
