#!/bin/sh
# Install the tools the test suite needs (Debian/Ubuntu, apt-get).
#
#   scripts/install-deps.sh
#
# Idempotent and quick: every package is checked first, and apt-get (including
# `apt-get update`) runs only when something is missing.  Never reads stdin.
# Uses sudo when not running as root (and sudo is available).
set -eu

# package:command pairs; a command of "-" means "ask dpkg only".
WANTED="
dovecot-core:dovecot
dovecot-pop3d:-
curl:curl
python3:python3
fetchmail:fetchmail
mpop:mpop
socat:socat
"

installed() {
    # $1 = package, $2 = command (or -)
    if [ "$2" != "-" ] && ! command -v "$2" >/dev/null 2>&1; then
        return 1
    fi
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [ "$status" = "install ok installed" ]
}

missing=""
for pair in $WANTED; do
    pkg=${pair%%:*}
    cmd=${pair#*:}
    installed "$pkg" "$cmd" || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing packages:$missing, and apt-get is not available" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "install-deps: missing packages:$missing; run as root (no sudo found)" >&2
    exit 1
fi

echo "install-deps: installing:$missing" >&2
# shellcheck disable=SC2086  # word splitting of $SUDO and $missing is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    --no-install-recommends $missing </dev/null

# (Installing dovecot-core may also start the system-wide Dovecot service.
# The tests do not use it: scripts/dovecot.sh runs private instances.)
for pair in $WANTED; do
    pkg=${pair%%:*}
    cmd=${pair#*:}
    if ! installed "$pkg" "$cmd"; then
        echo "install-deps: $pkg still missing after apt-get install" >&2
        exit 1
    fi
done
