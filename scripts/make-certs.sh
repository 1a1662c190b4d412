#!/bin/sh
# Make a throw-away CA and a server certificate it signed, for the demo and the tests.
#
#   scripts/make-certs.sh DIR [NAME]
#
# Writes DIR/ca.pem (the CA, to give clients: curl --cacert, --origin-ca), DIR/cert.pem and
# DIR/key.pem (the server's chain and key, for --tls-cert/--tls-key or Dovecot's ssl_cert).
# The server certificate is for DNS:localhost and IP:127.0.0.1 (and DNS:NAME when given),
# marked CA:FALSE: a bare `openssl req -x509` certificate is a CA certificate, which rustls
# refuses as a server's own. Needs the openssl command.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [NAME]" >&2; exit 2; }
DIR=$1
NAME=${2:-}
mkdir -p "$DIR"
cd "$DIR"
SAN="DNS:localhost,IP:127.0.0.1"
[ -z "$NAME" ] || SAN="$SAN,DNS:$NAME"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
    -subj "/CN=pop3filter throw-away CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout key.pem -out cert.csr -subj "/CN=localhost" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=%s\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    "$SAN" >cert.ext
openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 30 \
    -extfile cert.ext 2>/dev/null
rm -f cert.csr cert.ext ca.srl
chmod 644 ca.pem cert.pem key.pem
