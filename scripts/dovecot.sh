#!/bin/sh
# Run a private Dovecot POP3 server in the foreground: the pop3filter test origin.
#
#   scripts/dovecot.sh DIR PORT
#   DOVECOT_TLS_CERT=FILE DOVECOT_TLS_KEY=FILE [DOVECOT_POP3S_PORT=PORT] scripts/dovecot.sh DIR PORT
#
# Creates the instance in DIR (which must not exist or be empty): dovecot.conf
# from tests/dovecot/dovecot.conf.in, a passwd file, and the test mailboxes
# from scripts/make-mail.py.  Then it execs `dovecot -F`, so the caller's pid is
# Dovecot's master process: SIGTERM or Ctrl-C stops it and its children.
# It listens on 127.0.0.1 (and ::1 when available) only.  Every user's
# password is "secret".  Log: DIR/dovecot.log.
#
# Several instances can run at once with different DIRs and PORTs.
# Generated mail is cached in ${CARGO_TARGET_DIR:-target}/testmail-cache
# (override with POP3FILTER_MAIL_CACHE).
#
# TLS (optional; without these variables the instance has no TLS at all):
#   DOVECOT_TLS_CERT=FILE DOVECOT_TLS_KEY=FILE  PEM certificate chain and key:
#       `ssl = yes`, so the POP3 port offers STLS (plaintext logins stay
#       allowed). Both files are copied into DIR/tls/ (Dovecot's config
#       process reads them there, as the user who started it).
#   DOVECOT_POP3S_PORT=PORT  also an implicit-TLS (POP3S) listener on PORT
#       (needs the certificate and key).
#
# Fleet (optional; without these variables nothing changes):
#   DOVECOT_TRUSTED_NETWORKS="CIDR ..."  login_trusted_networks: peers there are
#       greeted "+OK [XCLIENT] ..." and may send XCLIENT (a proxy's client address).
#   DOVECOT_AUTH_PENALTY=yes  keep Dovecot's per-IP auth-failure penalty (a failed
#       login delays the next logins from that IP by 2 s and more); by default the
#       test origin has none, so that one bad-password test cannot stall the others.
#   DOVECOT_HAPROXY_PORT=PORT  also a listener on PORT with `haproxy = yes`: every
#       connection there must begin with a PROXY header (v1 or v2) from
#       DOVECOT_HAPROXY_TRUSTED_NETWORKS (haproxy_trusted_networks; default, when
#       the port is given, "127.0.0.0/8 ::1/128").
set -eu

die() { echo "dovecot.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 DIR PORT"
case $2 in
    ''|*[!0-9]*) die "PORT must be a number: $2" ;;
esac
PORT=$2

TLS_CERT=${DOVECOT_TLS_CERT:-}
TLS_KEY=${DOVECOT_TLS_KEY:-}
POP3S_PORT=${DOVECOT_POP3S_PORT:-}
if [ -n "$TLS_CERT$TLS_KEY" ]; then
    [ -n "$TLS_CERT" ] && [ -n "$TLS_KEY" ] ||
        die "DOVECOT_TLS_CERT and DOVECOT_TLS_KEY go together"
    [ -r "$TLS_CERT" ] || die "cannot read DOVECOT_TLS_CERT: $TLS_CERT"
    [ -r "$TLS_KEY" ] || die "cannot read DOVECOT_TLS_KEY: $TLS_KEY"
    SSL=yes
else
    SSL=no
fi
case $POP3S_PORT in
    '') POP3S_PORT=0 ;;
    *[!0-9]*) die "DOVECOT_POP3S_PORT must be a number: $POP3S_PORT" ;;
    *) [ "$SSL" = yes ] || die "DOVECOT_POP3S_PORT needs DOVECOT_TLS_CERT and DOVECOT_TLS_KEY" ;;
esac

TRUSTED_NETWORKS=${DOVECOT_TRUSTED_NETWORKS:-}
case ${DOVECOT_AUTH_PENALTY:-no} in
    yes) PENALTY_MODE=0600 ;; # Dovecot's own default: auth reaches anvil, the penalty applies
    no) PENALTY_MODE=0 ;;
    *) die "DOVECOT_AUTH_PENALTY must be yes or no: $DOVECOT_AUTH_PENALTY" ;;
esac
HAPROXY_PORT=${DOVECOT_HAPROXY_PORT:-}
HAPROXY_TRUSTED_NETWORKS=${DOVECOT_HAPROXY_TRUSTED_NETWORKS:-}
case $HAPROXY_PORT in
    '') HAPROXY_PORT=0 ;;
    *[!0-9]*) die "DOVECOT_HAPROXY_PORT must be a number: $HAPROXY_PORT" ;;
    *) HAPROXY_TRUSTED_NETWORKS=${HAPROXY_TRUSTED_NETWORKS:-127.0.0.0/8 ::1/128} ;;
esac
for nets in "$TRUSTED_NETWORKS" "$HAPROXY_TRUSTED_NETWORKS"; do
    case $nets in
        *[!0-9A-Fa-f.:/\ ,]*) die "unsupported characters in a network list: $nets" ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TEMPLATE=$ROOT/tests/dovecot/dovecot.conf.in
CACHE=${POP3FILTER_MAIL_CACHE:-${CARGO_TARGET_DIR:-$ROOT/target}/testmail-cache}

DOVECOT=$(command -v dovecot || true)
[ -z "$DOVECOT" ] && [ -x /usr/sbin/dovecot ] && DOVECOT=/usr/sbin/dovecot
[ -n "$DOVECOT" ] || die "dovecot is not installed (run scripts/install-deps.sh)"
POP3_BIN=
for libexec in /usr/lib/dovecot /usr/libexec/dovecot /usr/local/libexec/dovecot; do
    [ -x "$libexec/pop3" ] && POP3_BIN=$libexec/pop3 && break
done
[ -n "$POP3_BIN" ] || die "dovecot's POP3 server is not installed (package dovecot-pop3d)"
command -v python3 >/dev/null || die "python3 is not installed"

mkdir -p "$1"
DIR=$(cd "$1" && pwd)
[ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
case $DIR in
    *[!A-Za-z0-9/._+-]*) die "unsupported characters in instance path: $DIR" ;;
esac

# Who runs what.  As root, the mail processes run as nobody and the helper
# processes as Dovecot's own unprivileged users; otherwise all run as us.
if [ "$(id -u)" -eq 0 ]; then
    INTERNAL_USER=dovecot
    INTERNAL_GROUP=dovecot
    LOGIN_USER=dovenull
    id "$INTERNAL_USER" >/dev/null 2>&1 || die "user $INTERNAL_USER does not exist"
    id "$LOGIN_USER" >/dev/null 2>&1 || die "user $LOGIN_USER does not exist"
    MAILUID=$(id -u nobody):$(getent group nogroup | cut -d: -f3)
    [ "$MAILUID" != ":" ] || die "user nobody / group nogroup not found"
    chmod 755 "$DIR"
    # The mail processes must be able to reach DIR.
    if command -v runuser >/dev/null && ! runuser -u nobody -- test -x "$DIR"; then
        die "$DIR is not reachable by user nobody (check its parents' permissions)"
    fi
else
    INTERNAL_USER=$(id -un)
    INTERNAL_GROUP=$(id -gn)
    LOGIN_USER=$INTERNAL_USER
    MAILUID=$(id -u):$(id -g)
fi

LISTEN=127.0.0.1
if grep -qs '^00000000000000000000000000000001 ' /proc/net/if_inet6; then
    LISTEN="127.0.0.1, ::1"
fi

sed -e "s|@DIR@|$DIR|g" -e "s|@PORT@|$PORT|g" -e "s|@LISTEN@|$LISTEN|g" \
    -e "s|@INTERNAL_USER@|$INTERNAL_USER|g" -e "s|@INTERNAL_GROUP@|$INTERNAL_GROUP|g" \
    -e "s|@LOGIN_USER@|$LOGIN_USER|g" -e "s|@SSL@|$SSL|g" -e "s|@POP3S_PORT@|$POP3S_PORT|g" \
    -e "s|@TRUSTED_NETWORKS@|$TRUSTED_NETWORKS|g" -e "s|@PENALTY_MODE@|$PENALTY_MODE|g" \
    -e "s|@HAPROXY_PORT@|$HAPROXY_PORT|g" \
    -e "s|@HAPROXY_TRUSTED_NETWORKS@|$HAPROXY_TRUSTED_NETWORKS|g" \
    "$TEMPLATE" >"$DIR/dovecot.conf"

# The certificate and key go to DIR/tls/; dovecot.conf includes DIR/tls.conf, which
# exists only with TLS.
if [ "$SSL" = yes ]; then
    mkdir -p "$DIR/tls"
    chmod 700 "$DIR/tls"
    cp "$TLS_CERT" "$DIR/tls/cert.pem"
    cp "$TLS_KEY" "$DIR/tls/key.pem"
    chmod 644 "$DIR/tls/cert.pem"
    chmod 600 "$DIR/tls/key.pem"
    printf 'ssl_cert = <%s\nssl_key = <%s\n' "$DIR/tls/cert.pem" "$DIR/tls/key.pem" >"$DIR/tls.conf"
fi

python3 "$ROOT/scripts/make-mail.py" "$DIR/mail" --cache "$CACHE" --chown "$MAILUID"

# passwd-file: user:{PLAIN}password:uid:gid::home::  (one line per mailbox)
: >"$DIR/passwd"
for maildir in "$DIR"/mail/*/; do
    user=$(basename "$maildir")
    echo "$user:{PLAIN}secret:${MAILUID%:*}:${MAILUID#*:}::$DIR/mail/$user::" >>"$DIR/passwd"
done
chmod 644 "$DIR/passwd"
mkdir -p "$DIR/run" "$DIR/state"
: >"$DIR/dovecot.log"

# Dovecot wants enough file descriptors for its client limits; ask, don't insist.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$SSL" = yes ]; then
    echo "dovecot.sh: POP3 with STLS on port $PORT, POP3S on port $POP3S_PORT, instance $DIR" >&2
else
    echo "dovecot.sh: POP3 on port $PORT, instance $DIR" >&2
fi
[ "$HAPROXY_PORT" = 0 ] ||
    echo "dovecot.sh: POP3 behind a PROXY header on port $HAPROXY_PORT" >&2
exec "$DOVECOT" -F -c "$DIR/dovecot.conf"
