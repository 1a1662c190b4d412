#!/usr/bin/env python3
"""Fetch every message of a mailbox with Python's poplib (used by
tests/big_and_clients.rs and the TLS tests).

    poplib_fetch.py PORT USER PASSWORD [MODE CAFILE]

Connects to 127.0.0.1:PORT, logs in with USER/PASS and writes to stdout
    COUNT <n>\n
then for each message
    MSG <number> <length>\n<message as poplib returns it, lines joined with CRLF>
and QUITs.  poplib does the dot-unstuffing; its 2048-octet line limit is
raised because one test message has a 100000-character line.

MODE is plain (the default), ssl (POP3_SSL: implicit TLS) or stls (STLS
before login); with TLS the server's certificate is verified against CAFILE
only, for the name 127.0.0.1 (ssl.create_default_context).  In stls mode the
CAPA before STLS must list STLS, and the CAPA after it must not.
"""

import poplib
import ssl
import sys

poplib._MAXLINE = 1 << 20

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
mode = sys.argv[4] if len(sys.argv) > 4 else "plain"
if mode == "plain":
    client = poplib.POP3("127.0.0.1", port, timeout=30)
else:
    context = ssl.create_default_context(cafile=sys.argv[5])
    if mode == "ssl":
        client = poplib.POP3_SSL("127.0.0.1", port, timeout=30, context=context)
    elif mode == "stls":
        client = poplib.POP3("127.0.0.1", port, timeout=30)
        if "STLS" not in client.capa():
            sys.exit("CAPA before STLS does not list STLS")
        client.stls(context=context)
        if "STLS" in client.capa():
            sys.exit("CAPA after STLS still lists STLS")
    else:
        sys.exit("unknown mode " + mode)
client.user(user)
client.pass_(password)
count, _size = client.stat()
out = sys.stdout.buffer
out.write(b"COUNT %d\n" % count)
for n in range(1, count + 1):
    _resp, lines, _octets = client.retr(n)
    body = b"".join(line + b"\r\n" for line in lines)
    out.write(b"MSG %d %d\n" % (n, len(body)))
    out.write(body)
client.quit()
out.flush()
