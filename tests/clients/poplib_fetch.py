#!/usr/bin/env python3
"""Fetch every message of a mailbox with Python's poplib (used by
tests/big_and_clients.rs).

    poplib_fetch.py PORT USER PASSWORD

Connects to 127.0.0.1:PORT, logs in with USER/PASS and writes to stdout
    COUNT <n>\n
then for each message
    MSG <number> <length>\n<message as poplib returns it, lines joined with CRLF>
and QUITs.  poplib does the dot-unstuffing; its 2048-octet line limit is
raised because one test message has a 100000-character line.
"""

import poplib
import sys

poplib._MAXLINE = 1 << 20

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
client = poplib.POP3("127.0.0.1", port, timeout=30)
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
