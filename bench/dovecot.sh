#!/bin/sh
# The benchmark's origin: a private Dovecot in the foreground, configured from
# bench/dovecot.conf.in (sized for 10 000 held sessions), with the mailboxes of
# scripts/make-mail.py (user "bench": message 1 = 1 KiB, 2 = 1 MiB, 3 = 20 MiB;
# every password is "secret").
#
#   bench/dovecot.sh DIR PORT [POP3S_PORT CERT KEY]
#
# With POP3S_PORT, CERT and KEY (PEM chain and key, e.g. from scripts/make-certs.sh) the
# instance also listens with implicit TLS on POP3S_PORT (`ssl = yes`, so PORT offers STLS
# too; cleartext logins stay allowed): the bench's "Dovecot POP3S" target.
#
# DIR must not exist or be empty.  The script execs `dovecot -F`, so its pid is
# Dovecot's master: SIGTERM stops the instance.  Listens on 127.0.0.1 only.
set -eu

die() { echo "bench/dovecot.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || [ $# -eq 5 ] || die "usage: $0 DIR PORT [POP3S_PORT CERT KEY]"
case $2 in ''|*[!0-9]*) die "PORT must be a number: $2" ;; esac
PORT=$2
SSL=no POP3S_PORT=0
if [ $# -eq 5 ]; then
    case $3 in ''|*[!0-9]*) die "POP3S_PORT must be a number: $3" ;; esac
    [ -r "$4" ] || die "cannot read the certificate $4"
    [ -r "$5" ] || die "cannot read the key $5"
    SSL=yes POP3S_PORT=$3 CERT=$4 KEY=$5
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${POP3FILTER_MAIL_CACHE:-${CARGO_TARGET_DIR:-$ROOT/target}/testmail-cache}

DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)
[ -x "$DOVECOT" ] || die "dovecot is not installed (scripts/install-deps.sh)"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
[ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
case $DIR in *[!A-Za-z0-9/._+-]*) die "unsupported characters in $DIR" ;; esac

if [ "$(id -u)" -eq 0 ]; then
    # Helpers as Dovecot's own users, mail processes as nobody.
    INTERNAL_USER=dovecot INTERNAL_GROUP=dovecot LOGIN_USER=dovenull
    MAILUID=$(id -u nobody):$(getent group nogroup | cut -d: -f3)
    chmod 755 "$DIR"
else
    INTERNAL_USER=$(id -un) INTERNAL_GROUP=$(id -gn) LOGIN_USER=$(id -un)
    MAILUID=$(id -u):$(id -g)
fi

sed -e "s|@DIR@|$DIR|g" -e "s|@PORT@|$PORT|g" -e "s|@LISTEN@|127.0.0.1|g" \
    -e "s|@INTERNAL_USER@|$INTERNAL_USER|g" -e "s|@INTERNAL_GROUP@|$INTERNAL_GROUP|g" \
    -e "s|@LOGIN_USER@|$LOGIN_USER|g" -e "s|@SSL@|$SSL|g" -e "s|@POP3S_PORT@|$POP3S_PORT|g" \
    "$ROOT/bench/dovecot.conf.in" >"$DIR/dovecot.conf"
# The certificate and key, copied into DIR/tls/ (read by Dovecot's config process);
# dovecot.conf includes DIR/tls.conf, which exists only with TLS.
if [ "$SSL" = yes ]; then
    mkdir -p "$DIR/tls"
    chmod 700 "$DIR/tls"
    cp "$CERT" "$DIR/tls/cert.pem"
    cp "$KEY" "$DIR/tls/key.pem"
    chmod 600 "$DIR/tls/key.pem"
    printf 'ssl_cert = <%s\nssl_key = <%s\n' "$DIR/tls/cert.pem" "$DIR/tls/key.pem" >"$DIR/tls.conf"
fi
python3 "$ROOT/scripts/make-mail.py" "$DIR/mail" --cache "$CACHE" --chown "$MAILUID"
for maildir in "$DIR"/mail/*/; do
    user=$(basename "$maildir")
    echo "$user:{PLAIN}secret:${MAILUID%:*}:${MAILUID#*:}::$DIR/mail/$user::"
done >"$DIR/passwd"
chmod 644 "$DIR/passwd"
mkdir -p "$DIR/run" "$DIR/state"
: >"$DIR/dovecot.log"

# 12 000 clients per login process need as many descriptors: raise the limits
# (the hard one only where we may: root with CAP_SYS_RESOURCE).
ulimit -Hn 65536 2>/dev/null || true
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec "$DOVECOT" -F -c "$DIR/dovecot.conf"
