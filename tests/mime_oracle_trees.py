"""Random MIME trees for tests/mime_oracle.py, and what the censor must make of them.

A tree is a Node per entity; `render(tree)` gives the message's bytes, and
`render(tree, expect)` the bytes stripmime must write for it: the entities the censor list
matches become the note (written here from the issue's rules, apart from the censor's code),
the rest stays byte for byte. The censor list is matched by `censored`, written from RFC 9110.
"""

# The censor lists the trees are run through, and the notes.
LISTS = [
    "image/*",
    "image/png,image/jpeg",
    "image/*, image/png;q=0",
    "application/*, application/pdf;q=0",
    "*/*, text/*;q=0",
    "message/rfc822",
    "message/*",
    "multipart/alternative",
    "multipart/digest",
    "text/html, audio/*",
    "text/plain",
    "x-none/x-none",
    "*/*",
]

NOTES = [
    ["Removed: %s."],
    ["A part (%s) was taken out.", "Ask the sender for another copy."],
    ["Se quitó una parte de tipo %s."],
]


def parse_list(text):
    ranges = []
    for element in text.split(","):
        element = element.strip()
        if not element:
            continue
        essence, *params = [p.strip() for p in element.split(";")]
        kind, sub = essence.lower().split("/")
        q0 = any(p.lower().replace(" ", "") in ("q=0", "q=0.0") for p in params)
        ranges.append((kind, sub, q0))
    return ranges


def censored(ranges, media_type):
    kind, sub = media_type.split("/")
    best = None  # (specificity, q0)
    for rk, rs, q0 in ranges:
        if rk == "*":
            spec = 0
        elif rk == kind and rs == "*":
            spec = 1
        elif rk == kind and rs == sub:
            spec = 2
        else:
            continue
        if best is None or spec > best[0] or (spec == best[0] and q0):
            best = (spec, q0)
    return best is not None and not best[1]


def render_note(paragraphs, media_type, eol):
    lines = []
    for i, p in enumerate(paragraphs):
        if i:
            lines.append("")
        lines.append(p.replace("%s", media_type))
    return "".join(line + eol for line in lines).encode("utf-8")


# --- random trees -------------------------------------------------------------------------

BCHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=?"
LEAF_TYPES = [
    "text/plain", "text/html", "image/png", "image/jpeg", "image/gif", "application/pdf",
    "application/octet-stream", "audio/mpeg", "video/mp4", "application/x-cd-image",
]


class Node:
    """An entity: header lines (without line ends), then a body of one kind.

    kind: 'leaf' (body: lines), 'multi' (parts, preamble, epilogue, boundary), 'message'
    (inner: the Node of the message inside), 'opaque' (a message/* part the censor must not
    look inside; body: lines).
    """

    def __init__(self, kind, media_type, headers, eol, **kw):
        self.kind = kind
        self.media_type = media_type  # the effective type, lowercase
        self.headers = headers
        self.eol = eol
        self.__dict__.update(kw)


class Gen:
    def __init__(self, rng, eol_mode):
        self.rng = rng
        self.eol_mode = eol_mode
        self.used = set()

    def eol(self, inherited):
        if self.eol_mode == "mixed":
            return self.rng.choice(["\r\n", "\n"])
        return inherited

    def boundary(self):
        r = self.rng
        while True:
            n = r.choice([1, 2, 5, 12, 30, 70]) if r.random() < 0.8 else r.randint(71, 150)
            b = "".join(r.choice(BCHARS) for _ in range(n))
            if r.random() < 0.1 and n > 2:
                b = b[0] + " " + b[1:]  # a space inside (needs quotes)
            if b not in self.used:
                self.used.add(b)
                return b

    def boundary_param(self, b):
        r = self.rng
        style = r.randrange(5)
        # (CPython's parser takes no apostrophe in a value that is not quoted.)
        token = all(c.isalnum() or c in "+_-." for c in b)
        if style == 0 and token:
            return "boundary=" + b
        if style == 2 and len(b) >= 2:
            cut = r.randint(1, len(b) - 1)
            return 'boundary*0="%s"; boundary*1="%s"' % (b[:cut], b[cut:])
        if style == 3:
            enc = "".join(c if c.isalnum() else "%%%02X" % ord(c) for c in b)
            return "boundary*=us-ascii'en'" + enc
        if style == 4 and len(b) >= 2:
            cut = r.randint(1, len(b) - 1)
            enc = "".join(c if c.isalnum() else "%%%02X" % ord(c) for c in b[:cut])
            return "boundary*0*=''%s;\t\n boundary*1=\"%s\"" % (enc, b[cut:])
        return 'boundary="%s"' % b

    def ct_line(self, media_type, params=""):
        # No comment or fold inside or before `type/subtype`: CPython's get_content_type does
        # not skip them (the censor does; its unit tests have those shapes).
        r = self.rng
        kind, sub = media_type.split("/")
        name = r.choice(["Content-Type", "content-type", "CONTENT-TYPE", "Content-type"])
        value = r.choice([kind + "/" + sub, kind.upper() + "/" + sub, media_type.upper()])
        sep = r.choice([": ", ":", ":  ", ":\t"])
        if params:
            fold = r.choice(["; ", ";\n\t", ";\n  "])
            return name + sep + value + fold + params
        return name + sep + value

    def body_lines(self, n, eight_bit=False):
        r = self.rng
        lines = []
        for _ in range(n):
            c = r.randrange(8)
            if c == 0:
                lines.append("")
            elif c == 1:
                lines.append("-~ dash line " + str(r.randrange(1000)))
            elif c == 2:
                lines.append("--~not a delimiter")
            elif c == 3 and eight_bit:
                lines.append("caf\u00e9 \u00fcber na\u00efve")
            elif c == 4:
                lines.append("".join(r.choice("ABCDEFGHabcdefgh0123456789+/") for _ in range(76)))
            else:
                lines.append("Some text, line %d." % r.randrange(10000))
        return lines

    def extra_headers(self):
        r = self.rng
        h = []
        if r.random() < 0.3:
            h.append("Content-Disposition: attachment; filename=\"f%d.bin\"" % r.randrange(99))
        if r.random() < 0.2:
            h.append("Content-ID: <id%d@example.org>" % r.randrange(999))
        if r.random() < 0.1:
            h.append("Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==")
        if r.random() < 0.2:
            h.append("X-Note: folded\n\tcontinuation")
        r.shuffle(h)
        return h

    def part(self, depth, eol, in_digest):
        """A body part of a multipart."""
        r = self.rng
        eol = self.eol(eol)
        roll = r.random()
        if in_digest and roll < 0.5:
            # No Content-Type: message/rfc822 by default.
            inner = self.message(depth + 1, eol)
            return Node("message", "message/rfc822", self.extra_headers(), eol, inner=inner)
        if depth < 4 and roll < 0.25:
            return self.multi(depth + 1, eol, self.extra_headers())
        if depth < 4 and roll < 0.35:
            sub = r.choice(["rfc822", "global"])
            cte = r.choice([None, None, "7bit", "8bit", "binary"])
            headers = [self.ct_line("message/" + sub)] + self.extra_headers()
            if cte:
                headers.append("Content-Transfer-Encoding: " + cte)
            inner = self.message(depth + 1, eol)
            return Node("message", "message/" + sub, headers, eol, inner=inner)
        if roll < 0.4:
            # message/* the censor does not look inside (CPython does).
            media, cte = r.choice([
                ("message/partial", None),
                ("message/rfc822", "base64"),
                ("message/global", "quoted-printable"),
            ])
            headers = [self.ct_line(media, "id=\"x@y\"; number=1" if "partial" in media else "")]
            if cte:
                headers.append("Content-Transfer-Encoding: " + cte)
            body = ["Subject: inside", "Content-Type: image/png", "", "PNGDATA"]
            return Node("opaque", media, headers, eol, lines=body)
        # A part without Content-Type is text/plain, but in a digest.
        return self.leaf(eol, not in_digest and r.random() < 0.1)

    def leaf(self, eol, no_ct=False):
        r = self.rng
        media = r.choice(LEAF_TYPES)
        cte = r.choice([None, "7bit", "8bit", "base64", "quoted-printable", "binary"])
        headers = []
        if no_ct:
            media = "text/plain"
        else:
            params = r.choice(["", "name=\"a file.dat\"", "charset=utf-8", "charset=\"us-ascii\" (c)"])
            headers.append(self.ct_line(media, params))
        if cte:
            headers.append("Content-Transfer-Encoding: " + cte)
        headers += self.extra_headers()
        r.shuffle(headers)
        lines = self.body_lines(r.randrange(0, 8), cte in ("8bit", "binary"))
        return Node("leaf", media, headers, eol, lines=lines)

    def multi(self, depth, eol, headers):
        r = self.rng
        sub = r.choice(["mixed", "mixed", "alternative", "related", "digest", "x-custom"])
        b = self.boundary()
        headers = [self.ct_line("multipart/" + sub, self.boundary_param(b))] + headers
        # At least one part (RFC 2046; CPython reads a multipart without any as text).
        n = r.randrange(1, 5) if depth < 4 else 1
        parts = [self.part(depth, eol, sub == "digest") for _ in range(n)]
        preamble = self.body_lines(r.randrange(0, 3)) if r.random() < 0.5 else []
        epilogue = self.body_lines(r.randrange(0, 3)) if r.random() < 0.5 else []
        pads = [r.choice(["", "", " ", "\t", "  \t"]) for _ in range(n + 1)]
        return Node("multi", "multipart/" + sub, headers, eol, parts=parts, boundary=b,
                    preamble=preamble, epilogue=epilogue, pads=pads)

    def message(self, depth, eol):
        """A message: its own fields, then a leaf or a multipart body."""
        r = self.rng
        own = ["From: someone@example.org", "Subject: test %d" % r.randrange(1000)]
        if r.random() < 0.5:
            own.append("MIME-Version: 1.0")
        if depth < 4 and r.random() < 0.6:
            node = self.multi(depth, eol, [])
        else:
            node = self.leaf(eol, r.random() < 0.2)
        node.headers = own + node.headers
        return node


def render(node, expect=None, message=True):
    """The bytes of an entity; with `expect` = (ranges, paragraphs, ascii), what the censor
    must make of it. `message` says the entity is a message (top-level or inside a
    message/rfc822), which loses every Content-* field when censored."""
    eol = node.eol
    out = []
    if expect and censored(expect[0], node.media_type):
        ranges, paragraphs, ascii_note = expect
        drop = ("content-type", "content-transfer-encoding", "content-disposition", "content-md5")
        for h in node.headers:
            name = h.split(":", 1)[0].lower()
            if (message and name.startswith("content-")) or (not message and name in drop):
                continue
            out.append(h.replace("\n", eol) + eol)
        out.append("Content-Type: text/plain" + ("" if ascii_note else "; charset=utf-8") + eol)
        out.append("Content-Transfer-Encoding: " + ("7bit" if ascii_note else "8bit") + eol)
        out.append(eol)
        return "".join(out).encode("utf-8") + render_note(paragraphs, node.media_type, eol)
    for h in node.headers:
        out.append(h.replace("\n", eol) + eol)
    out.append(eol)
    head = "".join(out).encode("utf-8")
    if node.kind in ("leaf", "opaque"):
        return head + "".join(line + eol for line in node.lines).encode("utf-8")
    if node.kind == "message":
        return head + render(node.inner, expect, True)
    body = [head]
    for line in node.preamble:
        body.append((line + eol).encode("utf-8"))
    for i, part in enumerate(node.parts):
        body.append(("--" + node.boundary + node.pads[i] + eol).encode("utf-8"))
        body.append(render(part, expect, False))
    body.append(("--" + node.boundary + "--" + node.pads[-1] + eol).encode("utf-8"))
    for line in node.epilogue:
        body.append((line + eol).encode("utf-8"))
    return b"".join(body)
