#!/bin/sh
# `make run`: a demo Dovecot with the sample mailboxes on 127.0.0.1:11000 and pop3filter in
# the foreground in front of it on port 1110 (STLS offered) and 1995 (POP3S), with a
# throw-away certificate made for the demo. Ctrl-C stops both.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ORIGIN_PORT=${ORIGIN_PORT:-11000}
PORT=${PORT:-1110}
POP3S_PORT=${POP3S_PORT:-1995}
BIN=${BIN:-$ROOT/target/release/pop3filter}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/pop3filter-demo.XXXXXX")
chmod 755 "$DIR"

"$ROOT/scripts/make-certs.sh" "$DIR/certs"
"$ROOT/scripts/dovecot.sh" "$DIR/dovecot" "$ORIGIN_PORT" &
DOVECOT=$!
cleanup() {
    kill "$DOVECOT" 2>/dev/null || true
    wait "$DOVECOT" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait for Dovecot's greeting.
i=0
until python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$ORIGIN_PORT),1); sys.exit(0 if s.recv(3)==b'+OK' else 1)" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "demo: Dovecot did not start; its log:" >&2
        cat "$DIR/dovecot/dovecot.log" >&2 || true
        exit 1
    fi
    sleep 0.1
done

cat <<MSG

  Demo Dovecot (origin) on 127.0.0.1:$ORIGIN_PORT; pop3filter on port $PORT in front of it.
  Users: alice, big, bench, empty, mime, mimebig; every password is "secret".

  Try, from another terminal:
    curl -u alice:secret pop3://127.0.0.1:$PORT/          # list alice's messages
    curl -u alice:secret pop3://127.0.0.1:$PORT/1         # fetch message 1
    python3 -c 'import poplib; p=poplib.POP3("127.0.0.1",$PORT); p.user("alice"); p.pass_("secret"); print(p.stat()); p.quit()'

  Over TLS (the demo's throw-away CA is $DIR/certs/ca.pem):
    curl --cacert $DIR/certs/ca.pem -u alice:secret pop3s://localhost:$POP3S_PORT/1
    curl --cacert $DIR/certs/ca.pem --ssl-reqd -u alice:secret pop3://localhost:$PORT/1   # STLS

  Manage it:
    target/release/spcpctl -u admin:secret stats
    target/release/spcpctl -u admin:secret set-transformation "grep -v '^Date:'"

  Censor attachments (mime's messages have images, PDFs and forwarded messages):
    target/release/spcpctl -u admin:secret set-censor 'image/*'
    curl -u mime:secret pop3://127.0.0.1:$PORT/1          # each image is a short note now

  Ctrl-C stops both.

MSG
"$BIN" -u admin:secret -l 127.0.0.1 -p "$PORT" -P "$ORIGIN_PORT" \
    --tls-cert "$DIR/certs/cert.pem" --tls-key "$DIR/certs/key.pem" --pop3s-port "$POP3S_PORT" \
    127.0.0.1
