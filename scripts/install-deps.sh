#!/bin/sh
# Install what the project needs (Debian/Ubuntu, apt-get).
#
#   scripts/install-deps.sh               the tools the test suite needs
#   scripts/install-deps.sh PKG[:CMD]...  these packages instead (bench/install-deps.sh)
#
# Idempotent and quick: every package is checked first (with dpkg, and with
# `command -v CMD` when a command is named), and apt-get (including
# `apt-get update`) runs only when something is missing.  Never reads stdin.
# Uses sudo when not running as root (and sudo is available).  The packages'
# system services are not started while apt-get runs (a temporary
# policy-rc.d says no): the tests and the benchmark run private instances.
set -eu

# package:command pairs; a package alone means "ask dpkg only".
WANTED="
dovecot-core:dovecot
dovecot-pop3d
curl:curl
openssl:openssl
python3:python3
fetchmail:fetchmail
mpop:mpop
socat:socat
openssl:openssl
systemd:systemd-socket-activate
"
[ $# -eq 0 ] || WANTED="$*"

installed() {
    # $1 = package, $2 = command (or empty)
    if [ -n "$2" ] && ! command -v "$2" >/dev/null 2>&1; then
        return 1
    fi
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

each_missing() {
    for pair in $WANTED; do
        pkg=${pair%%:*}
        cmd=${pair#"$pkg"}
        installed "$pkg" "${cmd#:}" || echo "$pkg"
    done
}

missing=$(each_missing | tr '\n' ' ')
[ -n "$missing" ] || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing packages: $missing; and apt-get is not available" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "install-deps: missing packages: $missing; run as root (no sudo found)" >&2
    exit 1
fi

POLICY=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$POLICY" ]; then
    # "action forbidden by policy": keep system services (nginx on port 80,
    # the system Dovecot) from starting.
    if printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null 2>&1 &&
        $SUDO chmod 755 "$POLICY"; then
        made_policy=yes
    fi
fi
cleanup() { [ -z "$made_policy" ] || $SUDO rm -f "$POLICY"; }
trap cleanup EXIT

echo "install-deps: installing: $missing" >&2
# shellcheck disable=SC2086  # word splitting of $SUDO and $missing is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || true
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    --no-install-recommends $missing </dev/null || true

still=$(each_missing | tr '\n' ' ')
if [ -n "$still" ]; then
    echo "install-deps: still missing after apt-get install: $still" >&2
    exit 1
fi
