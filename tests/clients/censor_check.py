#!/usr/bin/env python3
"""Checks messages that went through pop3filter's censor (-M) against the same messages
fetched straight from Dovecot (used by tests/censor.rs).

    censor_check.py [--censored TYPES] [--note PARAGRAPH]... ORIGDIR OUTDIR

ORIGDIR holds the messages as fetched directly, OUTDIR the same messages as fetched through
the proxy by the same client, one message a file; files are paired by their Message-ID.
TYPES is a comma-separated list of the exact leaf media types the test expects censored
(the test's own table, not a media range); the notes are the -m paragraphs (none: the
default note).

For every pair, two checks:

1. Python's `email` parses both and walks the trees side by side: a leaf whose type is in
   TYPES must be a text/plain leaf whose fields are the original's minus Content-Type,
   Content-Transfer-Encoding, Content-Disposition and Content-MD5 (every Content-* field for
   a message), plus `Content-Type: text/plain` (`; charset=utf-8` for a non-ASCII note) and
   `Content-Transfer-Encoding: 7bit` (8bit), and whose body is the note; every other leaf has
   the same fields and the same raw body; multiparts and message/rfc822 parts keep their
   fields, preamble and epilogue.
2. The expected output is built byte for byte from the original (delimiter lines, line ends,
   everything not censored copied; each censored entity rewritten as above) and must equal
   the output exactly.

Prints, per message in Message-ID order, `<message-id> <leaf> <leaf>...`, a censored leaf
written `type!`; exits 1 with a description of the first difference. Standard library only.
"""

import argparse
import email
import email.policy
import os
import re
import sys
import textwrap

sys.dont_write_bytecode = True

POLICY = email.policy.default
DROPPED = ("content-type", "content-transfer-encoding", "content-disposition", "content-md5")
WRAP = 76


class Mismatch(Exception):
    pass


def note_text(paragraphs, media_type, eol):
    """The note for `media_type`, every line ended with `eol` (bytes)."""
    if not any(p.strip() for p in paragraphs):
        paragraphs = ["This part of the message was removed by the mail proxy: "
                      "its type (%s) is not allowed."]
    lines = []
    for i, p in enumerate(paragraphs):
        if i:
            lines.append("")
        text = re.sub(r"%[s%]", lambda m: media_type if m.group() == "%s" else "%", p)
        lines.extend(textwrap.wrap(text, width=WRAP, break_long_words=False,
                                   break_on_hyphens=False) or [""])
    return "".join(line + eol for line in lines).encode("utf-8")


def is_ascii(paragraphs):
    return all(p.isascii() for p in paragraphs)


def new_fields(paragraphs):
    ascii_note = is_ascii(paragraphs)
    return [("Content-Type", "text/plain" + ("" if ascii_note else "; charset=utf-8")),
            ("Content-Transfer-Encoding", "7bit" if ascii_note else "8bit")]


def kept(name, message):
    name = name.lower()
    return not (name.startswith("content-") if message else name in DROPPED)


# --- 1. what Python's email sees ---------------------------------------------------------

def raw_payload(msg):
    p = msg._payload  # the parser's text, 8-bit bytes kept as surrogates
    return p.encode("ascii", "surrogateescape") if isinstance(p, str) else p


def same(a, b, path):
    if list(a.raw_items()) != list(b.raw_items()):
        raise Mismatch("%s: fields differ:\n  %r\n  %r" % (path, list(a.raw_items()), list(b.raw_items())))
    if a.is_multipart() != b.is_multipart():
        raise Mismatch("%s: multipart in one, not in the other" % path)
    if not a.is_multipart():
        if raw_payload(a) != raw_payload(b):
            raise Mismatch("%s: bodies differ:\n  %r\n  %r"
                           % (path, raw_payload(a)[:200], raw_payload(b)[:200]))


def walk(a, b, censored, paragraphs, eol, message, path, leaves):
    """Output entity `b` against original entity `a`; appends the leaves to `leaves`."""
    ctype = a.get_content_type()
    if ctype in censored:
        leaves.append(ctype + "!")
        if b.is_multipart() or b.get_content_type() != "text/plain":
            raise Mismatch("%s: censored %s came out as %s" % (path, ctype, b.get_content_type()))
        want = [(k, v) for k, v in a.raw_items() if kept(k, message)] + new_fields(paragraphs)
        if list(b.raw_items()) != want:
            raise Mismatch("%s: fields of the note %r, want %r" % (path, list(b.raw_items()), want))
        note = note_text(paragraphs, ctype, eol)
        # The line end before a delimiter belongs to the delimiter: compare without it.
        if raw_payload(b).rstrip(b"\r\n") != note.rstrip(b"\r\n"):
            raise Mismatch("%s: note %r, want %r" % (path, raw_payload(b), note))
        return
    if a.is_multipart():
        if list(a.raw_items()) != list(b.raw_items()):
            raise Mismatch("%s: fields differ:\n  %r\n  %r" % (path, list(a.raw_items()), list(b.raw_items())))
        if not b.is_multipart():
            raise Mismatch("%s: %s is no multipart any more" % (path, ctype))
        if ctype == "message/rfc822":
            return walk(a.get_payload(0), b.get_payload(0), censored, paragraphs, eol, True,
                        path + "/msg", leaves)
        if (a.preamble, a.epilogue) != (b.preamble, b.epilogue):
            raise Mismatch("%s: preamble or epilogue differs" % path)
        pa, pb = a.get_payload(), b.get_payload()
        if len(pa) != len(pb):
            raise Mismatch("%s: %d parts, then %d" % (path, len(pa), len(pb)))
        for i, (x, y) in enumerate(zip(pa, pb)):
            walk(x, y, censored, paragraphs, eol, False, "%s/%d" % (path, i), leaves)
        return
    leaves.append(ctype)
    same(a, b, path)


# --- 2. the expected bytes -----------------------------------------------------------------

def lines(data):
    """`data` split after every LF (a CR alone is no line end)."""
    out, start = [], 0
    for m in re.finditer(b"\n", data):
        out.append(data[start:m.end()])
        start = m.end()
    if start < len(data):
        out.append(data[start:])
    return out


def eol_of(line):
    return line[-2:] if line.endswith(b"\r\n") else line[-1:] if line.endswith(b"\n") else b""


def split_entity(data):
    """(header lines, the blank line, body) of an entity; the header ends at an empty line."""
    at = 0
    header = []
    for line in lines(data):
        if line in (b"\r\n", b"\n"):
            return header, line, data[at + len(line):]
        header.append(line)
        at += len(line)
    return header, b"", b""


def fields(header):
    """The header lines grouped into fields (a field with its continuation lines)."""
    out = []
    for line in header:
        if line[:1] in (b" ", b"\t") and out:
            out[-1] += line
        else:
            out.append(line)
    return out


def expected(data, censored, paragraphs, message, owned_eol):
    """What the censor must make of entity `data`. `owned_eol`: the line end after the entity
    belongs to a delimiter, so `data` does not end with one (a note then loses its last)."""
    header, blank, body = split_entity(data)
    parsed = email.message_from_bytes(b"".join(header) + b"\n", policy=POLICY)
    ctype = parsed.get_content_type()
    eol = eol_of(header[-1]) if header else b"\r\n"
    if ctype in censored:
        out = [f for f in fields(header) if kept(f.split(b":", 1)[0].decode("ascii", "replace"), message)]
        out += [("%s: %s" % kv).encode("ascii") + eol for kv in new_fields(paragraphs)]
        note = note_text(paragraphs, ctype, eol.decode("ascii"))
        if owned_eol:
            note = note[:-len(eol)]
        return b"".join(out) + eol + note
    head = b"".join(header) + blank
    if ctype == "message/rfc822":
        return head + expected(body, censored, paragraphs, True, owned_eol)
    boundary = parsed.get_boundary() if parsed.get_content_maintype() == "multipart" else None
    if boundary is None:
        return data
    delimiter = re.compile(b"--" + re.escape(boundary.encode("ascii")) + b"(--)?[ \t]*\r?\n?$")
    out = [head]
    part = None  # the lines of the part being read, after a delimiter
    closed = False
    for line in lines(body):
        if not closed and delimiter.match(line):
            if part is not None:
                out.append(close_part(b"".join(part), censored, paragraphs))
            out.append(line)
            closed = line.rstrip(b" \t\r\n").endswith(b"--")
            part = None if closed else []
        elif part is not None:
            part.append(line)
        else:  # the preamble, or the epilogue
            out.append(line)
    if part is not None:
        raise Mismatch("the original has no close delimiter for %r" % boundary)
    return b"".join(out)


def close_part(data, censored, paragraphs):
    """A part's bytes up to the next delimiter: the last line end is the delimiter's."""
    eol = eol_of(data)
    inner = data[:len(data) - len(eol)]
    return expected(inner, censored, paragraphs, False, True) + eol


def first_difference(a, b):
    at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    return "at byte %d of %d/%d: original-based %r, got %r" % (
        at, len(a), len(b), a[max(0, at - 60):at + 60], b[max(0, at - 60):at + 60])


# --- driver --------------------------------------------------------------------------------

def by_message_id(directory):
    found = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        mid = email.message_from_bytes(data, policy=email.policy.compat32)["Message-ID"]
        if mid is None or mid in found:
            raise Mismatch("%s/%s: no Message-ID, or a second one %r" % (directory, name, mid))
        found[mid.strip()] = data
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--censored", default="")
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("origdir")
    ap.add_argument("outdir")
    args = ap.parse_args()
    censored = {t for t in args.censored.split(",") if t}
    try:
        orig, out = by_message_id(args.origdir), by_message_id(args.outdir)
        if sorted(orig) != sorted(out):
            raise Mismatch("messages differ: %r direct, %r proxied" % (sorted(orig), sorted(out)))
        for mid in sorted(orig):
            a, b = orig[mid], out[mid]
            try:
                header = split_entity(a)[0]
                eol = (eol_of(header[-1]) if header else b"\r\n").decode("ascii")
                leaves = []
                walk(email.message_from_bytes(a, policy=POLICY),
                     email.message_from_bytes(b, policy=POLICY),
                     censored, args.note, eol, True, "msg", leaves)
                want = expected(a, censored, args.note, True, False)
                if b != want:
                    raise Mismatch("bytes differ " + first_difference(want, b))
            except Mismatch as e:
                raise Mismatch("%s: %s" % (mid, e))
            print(mid, " ".join(leaves))
    except Mismatch as e:
        print("censor_check: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
