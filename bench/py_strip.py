#!/usr/bin/env python3
"""The censor as a user would write it with Python's `email` package, for `make bench` to
measure stripmime against: stdin to stdout, FILTER_MEDIAS (comma-separated, `type/*` allowed)
and FILTER_MSG as for stripmime.  It holds the whole message (parsed) in memory."""
import email, email.generator, email.policy, fnmatch, os, sys

types = [t.split(";")[0].strip().lower() for t in os.environ.get("FILTER_MEDIAS", "").split(",")]
types = [t for t in types if t]
note = os.environ.get("FILTER_MSG") or "This part of the message was removed: its type (%s) is not allowed."
msg = email.message_from_binary_file(sys.stdin.buffer, policy=email.policy.compat32)
for part in msg.walk():
    ctype = part.get_content_type()
    if part is not msg and any(fnmatch.fnmatchcase(ctype, t) for t in types):
        for h in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-MD5"):
            del part[h]
        part.set_payload(note.replace("%s", ctype) + "\n")
        part["Content-Type"] = "text/plain"
        part["Content-Transfer-Encoding"] = "7bit"
email.generator.BytesGenerator(sys.stdout.buffer, mangle_from_=False).flatten(msg)
