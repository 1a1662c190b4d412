# pop3filter: a thin wrapper over cargo and the scripts in scripts/.
#   make run    demo Dovecot + the proxy in the foreground (Ctrl-C stops both)
#   make test   every test, against a real Dovecot
#   make soak   the fault, load, TLS-hostile, loop and restart suites five times over
#   make lint   rustfmt and clippy
#   make doc    API docs of the workspace
#   make install   binaries, man pages, systemd units and /etc/default/pop3filter, under
#                  $(DESTDIR)$(PREFIX) (PREFIX=/usr/local); builds the release first.
#                  BUILD=debug installs the debug binaries already built (by make test), as
#                  tests/install.rs does; UNITDIR, MANDIR, BINDIR and SYSCONFDIR move the parts.

export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

.PHONY: all build run test soak lint doc clean deps bench install install-build uninstall

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
# release (built by `make install`) or debug (taken as already built)
BUILD ?= release
BUILT ?= $(or $(CARGO_TARGET_DIR),target)/$(BUILD)
PROGRAMS = pop3filter spcpctl stripmime
UNITS = pop3filter.service pop3filter.socket pop3filter-pop3s.socket

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
	    --test shutdown --test load --test limits --test spcp_random \
	    --test tls_hostile --test metrics_hostile --test filter_spawn \
	    --test fleet_loop --test fleet_restart || exit 1; \
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

install-build:
ifeq ($(BUILD),release)
	$(CARGO) build --release --workspace
else
	@for p in $(PROGRAMS); do [ -x "$(BUILT)/$$p" ] || \
	  { echo "install: $(BUILT)/$$p is not built (cargo build, or BUILD=release)" >&2; exit 1; }; done
endif

# The units name the daemon by its installed path, and the environment file by SYSCONFDIR;
# an environment file already there is the operator's and is left alone.
install: install-build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	for p in $(PROGRAMS); do install -m 755 $(BUILT)/$$p $(DESTDIR)$(BINDIR)/$$p || exit 1; done
	install -m 644 docs/pop3filter.8 $(DESTDIR)$(MANDIR)/man8/pop3filter.8
	install -m 644 docs/spcpctl.1 docs/stripmime.1 $(DESTDIR)$(MANDIR)/man1/
	for u in $(UNITS); do \
	  sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/default/|$(SYSCONFDIR)/default/|g' \
	    contrib/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 644 $(DESTDIR)$(UNITDIR)/$$u \
	    || exit 1; \
	done
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/pop3filter ] || \
	  { sed -e 's|/usr/local/bin/|$(BINDIR)/|g' contrib/systemd/pop3filter.env \
	    > $(DESTDIR)$(SYSCONFDIR)/default/pop3filter && \
	    chmod 644 $(DESTDIR)$(SYSCONFDIR)/default/pop3filter; }

# Everything `make install` put there but the environment file, which holds the operator's
# options.
uninstall:
	for p in $(PROGRAMS); do rm -f $(DESTDIR)$(BINDIR)/$$p; done
	rm -f $(DESTDIR)$(MANDIR)/man8/pop3filter.8 $(DESTDIR)$(MANDIR)/man1/spcpctl.1 \
	  $(DESTDIR)$(MANDIR)/man1/stripmime.1
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
