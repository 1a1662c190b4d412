#!/usr/bin/env python3
"""An oracle for stripmime that nobody here wrote: CPython's `email` parser.

    tests/mime_oracle.py STRIPMIME [--cases N] [--seed S]

Driven by tests/stripmime.rs. Two parts:

1. Random MIME trees (depth, media types, transfer encodings, CRLF/LF/mixed line ends,
   padding after delimiters, preambles and epilogues, plain/quoted/RFC 2231 boundaries,
   multipart/digest parts without Content-Type, message/rfc822 and message/global parts, and
   parts the censor must not look inside: message/partial, base64 message/rfc822). Each is
   run through stripmime with a random censor list. Python's `email` parses input and output,
   and the two trees are walked side by side: every entity the list censors is a text/plain
   leaf whose body is the note, whose Content-* fields were replaced and whose other fields
   are as they were; every entity not censored has the same fields, preamble, epilogue and
   body as in the input. The expected output is also built from the tree and compared byte
   for byte (line ends included, which the parser does not show).
2. CPython's own test messages (test/test_email/data/msg_*.txt): stripmime must exit 0 on
   each, and with a list that matches nothing the output must be byte-identical.

Exits 0 when every check passed; otherwise prints the failing case (its input is kept in a
file) and exits 1. Standard library only; the trees are made in mime_oracle_trees.py.
"""

import argparse
import email
import email.policy
import glob
import os
import random
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mime_oracle_trees import LISTS, NOTES, Gen, censored, parse_list, render, render_note  # noqa: E402

POLICY = email.policy.default

# --- comparing what Python's email sees ---------------------------------------------------

class Mismatch(Exception):
    pass


def raw_payload(msg):
    p = msg._payload  # the parser's text, bytes kept as surrogates
    return p.encode("ascii", "surrogateescape") if isinstance(p, str) else p


def same(a, b, path):
    """Two parsed entities are the same: fields, preamble, epilogue, body, recursively."""
    if list(a.raw_items()) != list(b.raw_items()):
        raise Mismatch("%s: fields differ:\n  %r\n  %r" % (path, list(a.raw_items()), list(b.raw_items())))
    if a.is_multipart() != b.is_multipart():
        raise Mismatch("%s: multipart in one, not the other" % path)
    if not a.is_multipart():
        if raw_payload(a) != raw_payload(b):
            raise Mismatch("%s: bodies differ" % path)
        return
    if (a.preamble, a.epilogue) != (b.preamble, b.epilogue):
        raise Mismatch("%s: preamble or epilogue differs" % path)
    pa, pb = a.get_payload(), b.get_payload()
    if len(pa) != len(pb):
        raise Mismatch("%s: %d parts, then %d" % (path, len(pa), len(pb)))
    for i, (x, y) in enumerate(zip(pa, pb)):
        same(x, y, "%s/%d" % (path, i))


def walk(node, a, b, expect, message, path, leaves):
    """Checks output entity `b` against input entity `a`, the tree `node` saying what they are."""
    ranges, paragraphs, ascii_note = expect
    if a.get_content_type() != node.media_type:
        raise Mismatch("%s: Python reads the input as %s, the tree says %s"
                       % (path, a.get_content_type(), node.media_type))
    if censored(ranges, node.media_type):
        leaves.append(("note", node.media_type))
        if b.is_multipart() or b.get_content_type() != "text/plain":
            raise Mismatch("%s: censored %s is %s" % (path, node.media_type, b.get_content_type()))
        want_note = render_note(paragraphs, node.media_type, node.eol).rstrip(b"\r\n")
        if raw_payload(b).rstrip(b"\r\n") != want_note:
            raise Mismatch("%s: note is %r" % (path, raw_payload(b)))
        drop = ("content-type", "content-transfer-encoding", "content-disposition", "content-md5")
        kept = [(k, v) for k, v in a.raw_items()
                if not ((message and k.lower().startswith("content-")) or (not message and k.lower() in drop))]
        kept += [("Content-Type", "text/plain" + ("" if ascii_note else "; charset=utf-8")),
                 ("Content-Transfer-Encoding", "7bit" if ascii_note else "8bit")]
        if list(b.raw_items()) != kept:
            raise Mismatch("%s: fields of the note: %r, want %r" % (path, list(b.raw_items()), kept))
        return
    if node.kind in ("leaf", "opaque"):
        leaves.append(("kept", node.media_type))
        return same(a, b, path)
    if list(a.raw_items()) != list(b.raw_items()):
        raise Mismatch("%s: fields differ" % path)
    if node.kind == "message":
        return walk(node.inner, a.get_payload(0), b.get_payload(0), expect, True, path + "/msg", leaves)
    if (a.preamble, a.epilogue) != (b.preamble, b.epilogue):
        raise Mismatch("%s: preamble or epilogue differs" % path)
    pa, pb = a.get_payload(), b.get_payload()
    if not (len(pa) == len(pb) == len(node.parts)):
        raise Mismatch("%s: %d parts in, %d out, %d made" % (path, len(pa), len(pb), len(node.parts)))
    for i, (part, x, y) in enumerate(zip(node.parts, pa, pb)):
        walk(part, x, y, expect, False, "%s/%d" % (path, i), leaves)


def run(stripmime, data, medias, note_lines):
    env = dict(os.environ, FILTER_MEDIAS=medias, FILTER_MSG="\n".join(note_lines))
    p = subprocess.run([stripmime], input=data, env=env, capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def keep(data, what):
    fd, name = tempfile.mkstemp(prefix="mime-oracle-", suffix=".eml")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    print("  %s kept in %s" % (what, name))


def random_trees(stripmime, cases, seed):
    rng = random.Random(seed)
    stats = {"note": 0, "kept": 0}
    for case in range(cases):
        eol_mode = rng.choice(["\r\n", "\n", "mixed"])
        gen = Gen(rng, eol_mode)
        tree = gen.message(0, "\r\n" if eol_mode == "mixed" else eol_mode)
        medias = rng.choice(LISTS)
        paragraphs = rng.choice(NOTES)
        ascii_note = all(p.isascii() for p in paragraphs)
        expect = (parse_list(medias), paragraphs, ascii_note)
        data = render(tree)
        want = render(tree, expect)
        code, out, err = run(stripmime, data, medias, paragraphs)
        try:
            if code != 0:
                raise Mismatch("exit status %d: %s" % (code, err.decode(errors="replace")))
            # The only problem well-formed input may have: an encoded message/* part, which
            # the censor does not look inside.
            for line in err.decode(errors="replace").splitlines():
                if "encoded message/* part" not in line:
                    raise Mismatch("a problem reported on well-formed input: %s" % line)
            leaves = []
            walk(tree, email.message_from_bytes(data, policy=POLICY),
                 email.message_from_bytes(out, policy=POLICY), expect, True, "msg", leaves)
            if out != want:
                at = next(i for i in range(min(len(out), len(want)) + 1)
                          if i == min(len(out), len(want)) or out[i] != want[i])
                raise Mismatch("bytes differ at %d: got %r, want %r" % (at, out[at - 40:at + 40], want[at - 40:at + 40]))
            for kind, _ in leaves:
                stats[kind] += 1
        except Mismatch as e:
            print("case %d (seed %d, list %r): %s" % (case, seed, medias, e))
            keep(data, "input")
            keep(out, "output")
            return False
    print("oracle: %d random trees, %d entities censored, %d kept identical"
          % (cases, stats["note"], stats["kept"]))
    return stats["note"] > 0 and stats["kept"] > 0


def corpus_dir():
    try:
        import test.test_email  # noqa: F401  (CPython's own test package)
        d = os.path.join(os.path.dirname(test.test_email.__file__), "data")
        if glob.glob(os.path.join(d, "msg_*.txt")):
            return d
    except ImportError:
        pass
    found = sorted(glob.glob("/usr/lib/python3*/test/test_email/data"))
    return found[-1] if found else None


def cpython_corpus(stripmime):
    d = corpus_dir()
    if d is None:
        print("oracle: SKIPPED CPython's test messages: the 'test' package is not installed "
              "(Debian: libpython3.X-testsuite)")
        return True
    files = sorted(glob.glob(os.path.join(d, "msg_*.txt")))
    images_left = 0
    for name in files:
        with open(name, "rb") as f:
            data = f.read()
        for medias in ["x-none/x-none", "image/*", "text/plain", "*/*", "multipart/*, message/*"]:
            code, out, err = run(stripmime, data, medias, ["Removed %s."])
            if code != 0:
                print("%s with %r: exit status %d: %s" % (name, medias, code, err.decode(errors="replace")))
                return False
            if medias == "x-none/x-none" and out != data:
                print("%s: a list that matches nothing changed the message" % name)
                return False
            if medias == "image/*":
                msg = email.message_from_bytes(out, policy=POLICY)
                images_left += sum(1 for p in msg.walk() if p.get_content_maintype() == "image")
    print("oracle: %d CPython test messages from %s, each through 5 lists: no failure, "
          "byte-identical with a list that matches nothing (%d image parts Python still "
          "finds after image/*, inside parts the censor does not parse)" % (len(files), d, images_left))
    return len(files) > 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stripmime")
    ap.add_argument("--cases", type=int, default=400)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    ok = random_trees(args.stripmime, args.cases, args.seed)
    ok = cpython_corpus(args.stripmime) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
