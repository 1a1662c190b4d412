#!/usr/bin/env python3
"""Create the test mailboxes for the pop3filter test origin (Dovecot).

    scripts/make-mail.py MAILDIR [--cache CACHEDIR] [--chown UID:GID]
    scripts/make-mail.py --describe

Writes one maildir per user under MAILDIR (MAILDIR/<user>/{cur,new,tmp}).
The output is fully deterministic: the same bytes, file names, UIDs and
UIDVALIDITY every time, so POP3 sizes, UIDLs and digests are stable.

Every message is stored in cur/ with LF line endings under a name of the form
    <time>.M<n>P1.pop3filter,S=<size>,W=<crlf-size>:2,S
where <time> grows with the message number, and each maildir gets a
dovecot-uidlist that pins message n to UID n, so Dovecot's POP3 message
numbers follow the order of the lists built below (see MAILBOXES).

With --cache, the messages are generated once into CACHEDIR (keyed by a hash
of this script) and hard-linked into MAILDIR (copied if linking fails).
Dovecot never rewrites a message file in place (DELE only unlinks), so the
links are safe; directories and dovecot-uidlist are private to each MAILDIR.
--chown gives those private directories and files to the mail user.

Standard library only.
"""

import argparse
import base64
import hashlib
import os
import shutil
import sys
import tempfile
import time

PASSWORD = "secret"  # documentation only: scripts/dovecot.sh writes the passwd file
BASE_TIME = 1700000000
UIDVALIDITY = 1700000000
HOST = "pop3filter"
MIB = 1024 * 1024


# --- message building -------------------------------------------------------

def headers(user, n, subject, extra=()):
    """Standard header block (LF endings, no trailing blank line)."""
    date = "Tue, 14 Nov 2023 22:%02d:%02d +0000" % (13 + n // 60, n % 60)
    lines = [
        "From: Sender Example <sender@example.org>",
        "To: %s <%s@pop3filter.test>" % (user.capitalize(), user),
        "Subject: %s" % subject,
        "Date: %s" % date,
        "Message-ID: <%s-%d@pop3filter.test>" % (user, n),
    ]
    lines.extend(extra)
    return ("\n".join(lines) + "\n").encode("ascii")


def counter_lines(seed, size):
    """Exactly `size` bytes of deterministic text: numbered lines of 48..83
    characters plus LF, the text taken from a SHAKE-256 stream of `seed`."""
    raw = hashlib.shake_256(seed).digest(size // 2 + 64)
    text = raw.hex().encode("ascii")
    out = []
    total = pos = i = 0
    while total < size:
        width = 40 + raw[i] % 36
        out.append(b"%07d %s\n" % (i, text[pos:pos + width]))
        total += width + 9
        pos += width
        i += 1
    body = b"".join(out)
    if len(body) > size:  # trim the last line, keep the final LF
        body = body[: size - 1] + b"\n"
    return body


def filler_text(size):
    """About `size` bytes of plain prose-like text in lines under 72 chars."""
    words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
             "eiusmod tempor incididunt ut labore et dolore magna aliqua").split()
    out, line, total, i = [], [], 0, 0
    while total < size:
        word = words[i % len(words)]
        i += 1
        if len(" ".join(line + [word])) > 70:
            text = " ".join(line) + "\n"
            out.append(text)
            total += len(text)
            line = []
        line.append(word)
    return "".join(out).encode("ascii")


def dot_heavy(head, size, align=32 * 1024):
    """`head`, a blank line and a body of lines drawn from ".", "..", "...x",
    ".x", "" and "a" (picked by a SHAKE-256 stream), about `size` bytes in
    wire form: CRLF line ends and dot-stuffed, the bytes that follow RETR's
    status line.  At every multiple of `align` of that wire form sits a lone
    ".": its stuffing dot is the last byte before the multiple, its own dot
    the first one at it (the lines before it fill the gap exactly).  The last
    line is a lone "." too."""
    choices = (b".", b"..", b"...x", b".x", b"", b"a")

    def wire(line):  # CRLF and the stuffing dot
        return len(line) + line.startswith(b".") + 2

    picks = hashlib.shake_256(b"dot-heavy").digest(size)
    at = sum(wire(line) for line in head.split(b"\n")[:-1]) + wire(b"")
    lines, mark, i = [], align - 1, 0  # where the next lone dot's stuffing goes
    while at < size:
        gap = mark - at
        if gap > 10:  # room for any line and a gap that can still be filled
            line = choices[picks[i] % len(choices)]
            i += 1
        else:  # fill the gap (never 1 byte) with dots, "" or "a"; at 0, the mark
            line = {2: b"", 3: b"a", 5: b".."}.get(gap, b".")
            if gap == 0:
                mark += align
        lines.append(line)
        at += wire(line)
    lines.append(b".")
    return head + b"\n" + b"".join(line + b"\n" for line in lines)


def alice():
    msgs = []

    # 1: small plain message, about 1 KiB.
    msgs.append(headers("alice", 1, "Small plain message")
                + b"\n" + filler_text(760))

    # 2: lines starting with '.', which POP3 must dot-stuff.
    msgs.append(headers("alice", 2, "Lines starting with dots") + b"\n" + (
        b"The next line is a single dot:\n"
        b".\n"
        b"The next line is two dots:\n"
        b"..\n"
        b".hola\n"
        b"... three dots\n"
        b". dot space\n"
        b"Not at start: a . b .. c\n"
        b".\n"
        b"Last line, after another lone dot.\n"))

    # 3: 8-bit body: UTF-8 text and, deliberately, some raw Latin-1 bytes.
    msgs.append(headers("alice", 3, "8-bit text", extra=(
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit")) + b"\n"
        + "Hola, ¿qué tal? Ñandú, pingüino, café.\n".encode("utf-8")
        + "Grüße aus Köln. Ελληνικά. 日本語. ✓ €\n".encode("utf-8")
        + b"Raw Latin-1 follows: " + "ñ é ü ß".encode("latin-1") + b"\n"
        + b"All 8-bit bytes: " + bytes(range(0x80, 0x100)) + b"\n"
        + b"End of the 8-bit message.\n")

    # 4: one body line of 100 000 characters (plus LF).
    long_line = (b"0123456789abcdefghijklmnopqrstuvwxyz" * 2778)[:100000]
    msgs.append(headers("alice", 4, "One line of 100000 characters")
                + b"\nBefore the long line.\n" + long_line
                + b"\nAfter the long line.\n")

    # 5: the last line has no newline.
    msgs.append(headers("alice", 5, "No final newline")
                + b"\nThis message's last line\nhas no line terminator.")

    # 6: repeated Date: headers, a folded header, and header-like body lines.
    msgs.append(headers("alice", 6, "Several Date lines", extra=(
        "Date: Wed, 15 Nov 2023 08:00:00 +0100",
        "X-Folded: first part of a folded header",
        "\tsecond part of the folded header",
        "Received: from relay.example.org by mx.pop3filter.test;",
        " Tue, 14 Nov 2023 22:00:00 +0000")) + (
        b"\nDate: this body line looks like a header\n"
        b"From someone at the start of a line (mbox-style)\n"
        b"Subject: also not a header\n"))

    # 7: multipart/mixed with a small base64 attachment.
    attachment = bytes((i * 7 + 3) % 256 for i in range(600))
    b64 = base64.encodebytes(attachment).decode("ascii")
    msgs.append(headers("alice", 7, "Multipart with attachment", extra=(
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=-=pop3filter-boundary=-="')) + (
        "\nThis is a multi-part message in MIME format.\n"
        "\n--=-=pop3filter-boundary=-=\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\nThe attachment below is 600 bytes of binary data.\n"
        "\n--=-=pop3filter-boundary=-=\n"
        "Content-Type: application/octet-stream; name=\"data.bin\"\n"
        "Content-Transfer-Encoding: base64\n"
        "Content-Disposition: attachment; filename=\"data.bin\"\n"
        "\n" + b64 +
        "\n--=-=pop3filter-boundary=-=--\n").encode("ascii"))

    # 8: about 140 KB (over four 32 KiB buffers) of dot-heavy lines, a lone
    # "." at every multiple of 32 KiB of the wire form (issue 9: the filter's
    # re-stuffing lost dots where the proxy's ring buffer wrapped).  Keep it
    # last: tests rely on the numbers of messages 1 to 7.
    msgs.append(dot_heavy(headers("alice", 8, "Dot-stuffed lines across buffer boundaries"),
                          140000))
    return msgs


def big():
    return [headers("big", 1, "20 MiB message") + b"\n"
            + counter_lines(b"big", 20 * MIB)]


def bench():
    def sized(n, subject, seed, total):
        head = headers("bench", n, subject) + b"\n"
        return head + counter_lines(seed, total - len(head))
    return [sized(1, "1 KiB message", b"bench-1k", 1024),
            sized(2, "1 MiB message", b"bench-1m", MIB),
            sized(3, "20 MiB message", b"bench-20m", 20 * MIB)]


# --- the censor's mailboxes (tests/censor.rs) --------------------------------

def b64_blob(seed, size, head=b""):
    """`head` then deterministic bytes, `size` in all, base64 in 76-column lines (LF)."""
    data = head + hashlib.shake_256(seed).digest(size - len(head))
    return base64.encodebytes(data).decode("ascii")


PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
GIF_HEAD = b"GIF89a"
PDF_HEAD = b"%PDF-1.4\n"


def mime_box():
    """user mime: one message per MIME shape the censor must handle. tests/censor.rs knows
    each message's leaf types in order; keep them in step."""
    msgs = []
    mv = "MIME-Version: 1.0"

    # 1: multipart/mixed: text (with lines that POP3 dot-stuffs), PNG, JPEG (its
    # Content-Type folded), PDF (with Content-MD5); a preamble and an epilogue.
    msgs.append(headers("mime", 1, "Mixed: text, PNG, JPEG and PDF", extra=(
        mv, 'Content-Type: multipart/mixed; boundary="mix-1"')) + (
        "\nThis is a multi-part message in MIME format.\n"
        "\n--mix-1\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\nThree attachments follow: a PNG, a JPEG and a PDF.\n"
        ".a line that starts with a dot\n"
        ".\n"
        "..\n"
        "Content-Type: image/png\n"
        "(that line is body text, not a header)\n"
        "\n--mix-1\n"
        'Content-Type: image/png; name="pixel.png"\n'
        "Content-Transfer-Encoding: base64\n"
        'Content-Disposition: attachment; filename="pixel.png"\n'
        "Content-ID: <png-1@pop3filter.test>\n"
        "\n" + b64_blob(b"mime-1-png", 3000, PNG_HEAD) +
        "\n--mix-1\n"
        "Content-Type: image/jpeg;\n"
        '\tname="photo.jpg"\n'
        "Content-Transfer-Encoding: base64\n"
        "Content-Disposition: attachment;\n"
        '\tfilename="photo.jpg"\n'
        "\n" + b64_blob(b"mime-1-jpeg", 5000, JPEG_HEAD) +
        "\n--mix-1\n"
        'Content-Type: application/pdf; name="report.pdf"\n'
        "Content-Transfer-Encoding: base64\n"
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
        'Content-Disposition: attachment; filename="report.pdf"\n'
        "\n" + b64_blob(b"mime-1-pdf", 4000, PDF_HEAD) +
        "\n--mix-1--\n"
        "\nThe epilogue.\n").encode("ascii"))

    # 2: a forward: text, a message/rfc822 whose message is multipart (text + PNG), and a
    # message/rfc822 whose message is itself a JPEG.
    msgs.append(headers("mime", 2, "Fwd: two image messages", extra=(
        mv, "Content-Type: multipart/mixed; boundary=fwd-outer")) + (
        "\n--fwd-outer\n"
        "Content-Type: text/plain\n"
        "\nTwo messages are forwarded below.\n"
        "\n--fwd-outer\n"
        "Content-Type: message/rfc822\n"
        "Content-Disposition: inline\n"
        "\nFrom: Carol <carol@example.org>\n"
        "To: Sender Example <sender@example.org>\n"
        "Subject: Holiday picture\n"
        "Date: Mon, 13 Nov 2023 10:00:00 +0000\n"
        "Message-ID: <carol-1@example.org>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="fwd-inner"\n'
        "\n--fwd-inner\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\nThe beach, as promised.\n"
        "\n--fwd-inner\n"
        "Content-Type: image/png\n"
        "Content-Transfer-Encoding: base64\n"
        "\n" + b64_blob(b"mime-2-png", 2000, PNG_HEAD) +
        "\n--fwd-inner--\n"
        "\n--fwd-outer\n"
        "Content-Type: message/rfc822\n"
        "\nFrom: Dave <dave@example.org>\n"
        "Subject: Scan\n"
        "Date: Mon, 13 Nov 2023 11:00:00 +0000\n"
        "MIME-Version: 1.0\n"
        "Content-Type: image/jpeg\n"
        "Content-Transfer-Encoding: base64\n"
        "Content-Disposition: inline; filename=scan.jpg\n"
        "\n" + b64_blob(b"mime-2-jpeg", 1500, JPEG_HEAD) +
        "\n--fwd-outer--\n").encode("ascii"))

    # 3: multipart/related: a multipart/alternative (text, HTML), then the HTML's PNG and GIF.
    msgs.append(headers("mime", 3, "Related with an alternative inside", extra=(
        mv, 'Content-Type: multipart/related; boundary="rel-3";',
        '  type="multipart/alternative"')) + (
        "\n--rel-3\n"
        'Content-Type: multipart/alternative; boundary="alt-3"\n'
        "\n--alt-3\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\nA logo and a spinner.\n"
        "\n--alt-3\n"
        "Content-Type: text/html; charset=us-ascii\n"
        '\n<p>A logo <img src="cid:logo@x"> and a spinner <img src="cid:spin@x">.</p>\n'
        "\n--alt-3--\n"
        "\n--rel-3\n"
        "Content-Type: image/png\n"
        "Content-Transfer-Encoding: base64\n"
        "Content-ID: <logo@x>\n"
        "Content-Disposition: inline\n"
        "\n" + b64_blob(b"mime-3-png", 1200, PNG_HEAD) +
        "\n--rel-3\n"
        "Content-Type: image/gif\n"
        "Content-Transfer-Encoding: base64\n"
        "Content-ID: <spin@x>\n"
        "\n" + b64_blob(b"mime-3-gif", 900, GIF_HEAD) +
        "\n--rel-3--\n").encode("ascii"))

    # 4: the message itself is a GIF.
    msgs.append(headers("mime", 4, "A GIF and nothing else", extra=(
        mv, "Content-Type: image/gif; name=anim.gif", "Content-Transfer-Encoding: base64",
        "Content-Disposition: inline; filename=anim.gif")) + (
        "\n" + b64_blob(b"mime-4-gif", 2500, GIF_HEAD)).encode("ascii"))

    # 5 (CRLF in the file) and 6 (LF): text, an image and a PDF.
    def text_image_pdf(n, subject, image):
        return headers("mime", n, subject, extra=(
            mv, "Content-Type: multipart/mixed; boundary=\"eol-%d\"" % n)) + (
            "\n--eol-%d\n"
            "Content-Type: text/plain\n"
            "\nAn image and a PDF.\n"
            "\n--eol-%d\n"
            "Content-Type: %s\n"
            "Content-Transfer-Encoding: base64\n"
            "\n%s"
            "\n--eol-%d\n"
            "Content-Type: application/pdf\n"
            "Content-Transfer-Encoding: base64\n"
            "\n%s"
            "\n--eol-%d--\n" % (
                n, n, image, b64_blob(b"mime-%d-img" % n, 1800, PNG_HEAD), n,
                b64_blob(b"mime-%d-pdf" % n, 1000, PDF_HEAD), n)).encode("ascii")
    msgs.append(text_image_pdf(5, "CRLF line ends in the file", "image/png")
                .replace(b"\n", b"\r\n"))
    msgs.append(text_image_pdf(6, "LF line ends in the file", "image/jpeg"))

    # 7: no MIME at all; body lines that look like MIME headers.
    msgs.append(headers("mime", 7, "Plain, no MIME") + (
        b"\nContent-Type: image/png\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\nThese lines are the body of a message without MIME headers.\n"))
    return msgs


def mimebig_box():
    """user mimebig: one multipart/mixed of about 21 MB: text, a 15 MiB CD image (base64),
    a PNG, text."""
    return [headers("mimebig", 1, "A CD image of 15 MiB", extra=(
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="big-1"')) + (
        "\n--big-1\n"
        "Content-Type: text/plain\n"
        "\nThe disc image is attached.\n"
        "\n--big-1\n"
        'Content-Type: application/x-cd-image; name="disc.iso"\n'
        "Content-Transfer-Encoding: base64\n"
        'Content-Disposition: attachment; filename="disc.iso"\n'
        "\n" + b64_blob(b"mimebig-iso", 15 * MIB) +
        "\n--big-1\n"
        "Content-Type: image/png\n"
        "Content-Transfer-Encoding: base64\n"
        "\n" + b64_blob(b"mimebig-png", 1000, PNG_HEAD) +
        "\n--big-1\n"
        "Content-Type: text/plain\n"
        "\nAfter the disc image.\n"
        "\n--big-1--\n").encode("ascii")]


# user -> function returning the messages in POP3 order (message 1 first)
MAILBOXES = {"alice": alice, "big": big, "bench": bench, "empty": lambda: [],
             "mime": mime_box, "mimebig": mimebig_box}


# --- maildir writing --------------------------------------------------------

def base_name(n, data):
    crlf_size = len(data) + data.count(b"\n") - data.count(b"\r\n")
    return "%d.M%dP1.%s,S=%d,W=%d" % (BASE_TIME + n, n, HOST, len(data), crlf_size)


def uidlist(user, names):
    guid = hashlib.sha256(b"guid:" + user.encode()).hexdigest()[:32]
    lines = ["3 V%d N%d G%s" % (UIDVALIDITY, len(names) + 1, guid)]
    lines += ["%d :%s" % (uid, name) for uid, name in enumerate(names, 1)]
    return ("\n".join(lines) + "\n").encode("ascii")


def generate(root):
    """Write the message files and uidlists into root/<user>/."""
    for user, make in MAILBOXES.items():
        cur = os.path.join(root, user, "cur")
        os.makedirs(cur)
        names = []
        for n, data in enumerate(make(), 1):
            name = base_name(n, data)
            names.append(name)
            with open(os.path.join(cur, name + ":2,S"), "wb") as f:
                f.write(data)
        with open(os.path.join(root, user, "dovecot-uidlist"), "wb") as f:
            f.write(uidlist(user, names))


def cached(cache):
    """Return a directory with generated mail, building it if needed."""
    with open(os.path.abspath(__file__), "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    final = os.path.join(cache, key)
    if os.path.isdir(final):
        return final
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".build-", dir=cache)
    try:
        generate(tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, final)  # atomic; loses harmlessly to a concurrent build
    except OSError:
        if not os.path.isdir(final):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Drop caches made by other versions of this script, and builds that
    # were interrupted (older than an hour).
    for old in os.listdir(cache):
        path = os.path.join(cache, old)
        try:
            stale = not old.startswith(".") or os.path.getmtime(path) < time.time() - 3600
        except OSError:  # removed meanwhile by a concurrent run
            continue
        if old != key and stale:
            shutil.rmtree(path, ignore_errors=True)
    return final


def install(src, dest, owner):
    """Give dest private maildirs whose messages are links to src's files."""
    def own(path):
        if owner is not None:
            os.chown(path, *owner)
    os.makedirs(dest, exist_ok=True)
    for user in MAILBOXES:
        udir = os.path.join(dest, user)
        os.mkdir(udir, 0o700)
        own(udir)
        for sub in ("cur", "new", "tmp"):
            os.mkdir(os.path.join(udir, sub), 0o700)
            own(os.path.join(udir, sub))
        shutil.copyfile(os.path.join(src, user, "dovecot-uidlist"),
                        os.path.join(udir, "dovecot-uidlist"))
        own(os.path.join(udir, "dovecot-uidlist"))
        scur = os.path.join(src, user, "cur")
        for name in sorted(os.listdir(scur)):
            s, d = os.path.join(scur, name), os.path.join(udir, "cur", name)
            try:
                os.link(s, d)
            except OSError:
                shutil.copyfile(s, d)
                own(d)


def describe():
    for user, make in MAILBOXES.items():
        msgs = make()
        print("%s (password %s): %d messages" % (user, PASSWORD, len(msgs)))
        for n, data in enumerate(msgs, 1):
            subject = next(l for l in data.split(b"\n") if l.startswith(b"Subject:"))
            print("  %d  %9d bytes  %s" % (n, len(data), subject[9:].decode()))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("maildir", nargs="?", help="where to create <user>/ maildirs")
    p.add_argument("--cache", help="generate once here and hard-link from it")
    p.add_argument("--chown", metavar="UID:GID", help="owner of the maildirs")
    p.add_argument("--describe", action="store_true", help="list the mailboxes")
    args = p.parse_args()
    if args.describe:
        describe()
        return
    if not args.maildir:
        p.error("MAILDIR is required")
    owner = None
    if args.chown:
        uid, _, gid = args.chown.partition(":")
        owner = (int(uid), int(gid or uid))
    os.umask(0o022)
    if args.cache:
        src = cached(os.path.abspath(args.cache))
    else:
        src = tempfile.mkdtemp(prefix=".mail-", dir=os.path.dirname(
            os.path.abspath(args.maildir)) or ".")
        generate(src)
    try:
        install(src, args.maildir, owner)
    finally:
        if not args.cache:
            shutil.rmtree(src, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
