#!/bin/sh
# Install what the project needs (Debian/Ubuntu, apt-get).
#
#   scripts/install-deps.sh               the tools the test suite needs
#   scripts/install-deps.sh PKG[:CMD]...  these packages instead (bench/install-deps.sh)
#
# Idempotent and quick: every package is checked first (with dpkg, and with
# `command -v CMD` when a command is named), and apt-get (including
# `apt-get update`) runs only when something is missing.  Never reads stdin.
# The test suite also needs Python's prometheus_client (tests/metrics.rs reads
# /metrics with its parsers): when python3 cannot import it, it is installed
# with pip (for whichever python3 is first on PATH), or else from Debian.
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
haproxy:haproxy
systemd:systemd-socket-activate
"
PYTHON_MODULES=yes
[ $# -eq 0 ] || { WANTED="$*"; PYTHON_MODULES=""; }

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

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    SUDO=none
fi

made_policy=""
cleanup() { [ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT

# apt-get install PKG... (apt-get update first), best effort: the caller checks.
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: missing packages: $*; and apt-get is not available" >&2
        return 1
    fi
    if [ "$SUDO" = none ]; then
        echo "install-deps: missing packages: $*; run as root (no sudo found)" >&2
        return 1
    fi
    POLICY=/usr/sbin/policy-rc.d
    if [ ! -e "$POLICY" ]; then
        # "action forbidden by policy": keep system services (nginx on port 80,
        # the system Dovecot) from starting.
        if printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null 2>&1 &&
            $SUDO chmod 755 "$POLICY"; then
            made_policy=yes
        fi
    fi
    echo "install-deps: installing: $*" >&2
    # shellcheck disable=SC2086  # word splitting of $SUDO is intended
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || true
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        --no-install-recommends "$@" </dev/null || true
}

# prometheus_client for python3: pip first (it serves any python3, a pyenv one
# too; Debian's own python3 wants --break-system-packages, which the variable
# gives the pip versions that know it), then Debian's package.
python_modules() {
    [ -n "$PYTHON_MODULES" ] || return 0
    python3 -c 'import prometheus_client' >/dev/null 2>&1 && return 0
    echo "install-deps: installing python3 module prometheus_client" >&2
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
        --no-input prometheus-client </dev/null >/dev/null 2>&1 ||
        apt_install python3-prometheus-client
    python3 -c 'import prometheus_client' >/dev/null 2>&1 && return 0
    echo "install-deps: cannot install python3 module prometheus_client" >&2
    return 1
}

missing=$(each_missing | tr '\n' ' ')
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086  # one argument per package
    apt_install $missing || exit 1
    still=$(each_missing | tr '\n' ' ')
    if [ -n "$still" ]; then
        echo "install-deps: still missing after apt-get install: $still" >&2
        exit 1
    fi
fi
python_modules
