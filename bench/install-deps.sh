#!/bin/sh
# Install what `make bench` needs beyond scripts/install-deps.sh (Debian, apt-get):
# the peers it compares pop3filter with — socat, and nginx's mail proxy (nginx-light
# plus libnginx-mod-mail).
#
#   bench/install-deps.sh
#
# Idempotent: apt-get runs only when something is missing.  Never reads stdin.  The
# packages' services are not started (a temporary policy-rc.d answers "no" while
# apt-get runs): the benchmark runs its own nginx under a temporary prefix.
# Exits non-zero if something could not be installed; `make bench` then goes on
# and its table says which peer is missing.
set -eu

WANTED="socat nginx-light libnginx-mod-mail"

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=""
for pkg in $WANTED; do
    installed "$pkg" || missing="$missing $pkg"
done
[ -n "$missing" ] || exit 0

command -v apt-get >/dev/null 2>&1 || {
    echo "bench/install-deps: missing:$missing, and there is no apt-get" >&2
    exit 1
}
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "bench/install-deps: missing:$missing; run as root (no sudo found)" >&2
    exit 1
fi

POLICY=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$POLICY" ]; then
    # "action forbidden by policy": keep the system nginx from starting on port 80.
    if printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null 2>&1 &&
        $SUDO chmod 755 "$POLICY"; then
        made_policy=yes
    fi
fi
cleanup() { [ -z "$made_policy" ] || $SUDO rm -f "$POLICY"; }
trap cleanup EXIT

echo "bench/install-deps: installing:$missing" >&2
status=0
# shellcheck disable=SC2086  # word splitting of $SUDO and $missing is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || status=$?
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    --no-install-recommends $missing </dev/null || status=$?

for pkg in $WANTED; do
    installed "$pkg" || { echo "bench/install-deps: $pkg is still missing" >&2; status=1; }
done
exit $status
