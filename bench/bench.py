#!/usr/bin/env python3
"""`make bench`: pop3filter side by side with a direct connection and its peers.

    bench/bench.py [--rounds N] [--quick] [--out DIR] [--only plain|tls|censor|storm]

Starts one private Dovecot (bench/dovecot.sh) and, in front of it, every target: pop3filter,
pop3filter -t cat, socat, nginx's mail proxy.  Then runs the workloads with bench/loadgen,
interleaving the targets (session by session in workloads 1-3, run by run in 4), and reports
medians over the rounds as ratios to `direct`.  Writes OUT/latest.md, OUT/latest.svg and
OUT/latest.json (default OUT: bench/results) and prints the tables.

The TLS part: clients speak implicit TLS (POP3S) to pop3filter's --pop3s-port listener, to a
second nginx with `listen ... ssl`, and to the same Dovecot's own POP3S listener (the relays
reach the origin in cleartext), with a throw-away certificate from scripts/make-certs.sh.

Workloads (see issue 5 and bench/README.md):
  1  500 sequential sessions: greeting, USER/PASS, RETR 1 KiB, QUIT   p50/p99 per session
  2  one session, 200 sequential RETRs of 1 MiB                        p50/p99 per RETR
  3  one session, 5 RETRs of 20 MiB                                    MiB/s, daemon peak RSS
  4  16 parallel clients, sessions with a 1 MiB RETR, 2000 sessions or 30 s   sessions/s, MiB/s
  5  10 000 sessions held after the greeting (pop3filter only)         RSS per session, CAPA+QUIT
  6  CPU of the relay per GiB relayed, over workloads 3 and 4
TLS (targets: direct in cleartext for reference, pop3filter, nginx, Dovecot POP3S):
  T2 one TLS session, 200 sequential RETRs of 1 MiB                     p50/p99 per RETR
  T3 one TLS session, 5 RETRs of 20 MiB                                 MiB/s, daemon peak RSS
  T4 16 parallel clients, new TLS sessions (handshake, USER/PASS, RETR 1 KiB, QUIT),
     2000 sessions or 10 s                                              sessions/s, CPU/session
  T5 2000 TLS sessions held after handshake and greeting (pop3filter only)   RSS per session
  T6 CPU per GiB relayed, over T2 and T3
The censor part (issue 11), run first:
  C  standalone, a ~200 MiB message from a file to /dev/null: stripmime, cat, altermime, a Python
     `email` script (bench/py_strip.py); (a) a list matching nothing, (b) the big part censored
                                                                        wall time, peak RSS
  M2 one session, 200 sequential RETRs of 1 MiB: pop3filter -M 'image/*' beside pop3filter   p50/p99
  M3 one session, 5 RETRs of 20 MiB, the same targets                  MiB/s, peak RSS, CPU
  SP 200 RETRs of 1 KiB: -t cat (run directly) beside -t 'cat #' (through /bin/sh)   p50/p99
  ST the storm, 20 times: 300 sessions pipeline 5 RETRs of 1 KiB at once while one more times a
     NOOP every 2 ms; through -t cat and without -t      p50/p99/max of the NOOPs sent in the storms

Standard library only.  Expects target/release/{pop3filter,loadgen,stripmime} to be built.
"""

import argparse
import base64
import datetime
import hashlib
import html
import json
import os
import platform
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
POP3FILTER = os.path.join(TARGET_DIR, "release", "pop3filter")
LOADGEN = os.path.join(TARGET_DIR, "release", "loadgen")
STRIPMIME = os.path.join(TARGET_DIR, "release", "stripmime")
PY_STRIP = os.path.join(ROOT, "bench", "py_strip.py")
GNU_TIME = "/usr/bin/time"
MIB = 1024 * 1024
GIB = 1024 * MIB
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

TARGETS = ["direct", "pop3filter", "pop3filter -t cat", "socat", "nginx"]
RELAYS = TARGETS[1:]
# The TLS part: "direct" is the cleartext reference; the others speak implicit TLS to clients.
TLS_TARGETS = ["direct", "pop3filter tls", "nginx tls", "dovecot pop3s"]
TLS_RELAYS = TLS_TARGETS[1:]
TLS_LABEL = {"direct": "direct (cleartext)", "pop3filter tls": "pop3filter", "nginx tls": "nginx",
             "dovecot pop3s": "Dovecot POP3S"}
BUFFER = 32768  # pop3filter's default -b
HOLD = 10000
HOLD_TLS = 2000
# The censor part (issue 11): pop3filter with -M, and with -t run directly or through the shell.
CENSOR_DAEMONS = {
    "pop3filter-ref": [],
    "pop3filter-M": ["-M", "image/*"],
    "pop3filter-tcat": ["-t", "cat"],
    "pop3filter-tsh": ["-t", "cat #"],
}
CENSOR_LABEL = {"direct": "direct", "pop3filter-ref": "pop3filter", "pop3filter-M": "pop3filter -M 'image/*'",
                "pop3filter-tcat": "-t cat (run directly)", "pop3filter-tsh": "-t 'cat #' (through /bin/sh -c)"}
M_TARGETS = ["direct", "pop3filter-ref", "pop3filter-M"]   # M2, M3
SP_TARGETS = ["pop3filter-ref", "pop3filter-tcat", "pop3filter-tsh"]  # SP
ST_TARGETS = ["pop3filter-ref", "pop3filter-tcat"]  # ST: the storm without -t, with -t cat
# Standalone: each tool reads the big message from a file and writes to /dev/null; case "a" a list
# that matches nothing in it, case "b" its big application/x-cd-image part censored.
TOOLS = ["cat", "stripmime", "altermime", "python email"]
CASES = {"a": ("video/*", "video/.*"), "b": ("application/x-cd-image", "application/x-cd-image")}
CASE_LABEL = {"a": "(a) a list matching nothing", "b": "(b) the big part censored"}


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------

class Procs:
    """Every process we started, stopped (by pid) on exit."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, log_path, **kw):
        """Starts argv; None if it cannot be run at all (not installed)."""
        out = open(log_path, "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True, **kw)
        except OSError as e:
            out.write(("cannot run %s: %s\n" % (argv[0], e)).encode())
            return None
        finally:
            out.close()
        p.bench_name = name
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM):
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Its own process group (start_new_session): the leader and what it forked.
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            except ProcessLookupError:
                pass
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p, signal.SIGQUIT if p.bench_name.startswith("nginx") else signal.SIGTERM)


def free_ports(n, base):
    ports, port = [], base
    while len(ports) < n and port < 65000:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            ports.append(port)
        except OSError:
            pass
        finally:
            s.close()
        port += 1
    return ports


def wait_greeting(port, proc=None, timeout=20.0, ca=None):
    """Waits for a +OK greeting on port; through TLS, verified against ca, when given."""
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as raw:
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if ctx else raw
                if s.recv(3) == b"+OK":
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:  # ssl.SSLError included
            pass
        time.sleep(0.1)
    return False


def wait_listening(port, proc, timeout=20.0):
    """Waits until port accepts connections (while proc runs)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def proc_status(pid, field):
    """A kB field of /proc/PID/status, in bytes (None if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def tree_cpu(pid):
    """CPU seconds of pid and its live descendants, reaped children included
    (utime + stime + cutime + cstime of every process in the tree)."""
    kids = children_map()
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(kids.get(p, []))
    return total / CLK_TCK


def comm_cpu(root, comm):
    """CPU seconds of the live processes named comm in root's tree (utime + stime + cutime +
    cstime of each)."""
    kids = children_map()
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, []))
        try:
            with open("/proc/%d/comm" % p) as f:
                if f.read().strip() != comm:
                    continue
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):
            continue
    return total / CLK_TCK


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0, needs ptrace rights on pid)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_loadgen_lines(args, timeout=600):
    """Runs loadgen; its JSON lines, or one error object."""
    argv = [LOADGEN] + [str(a) for a in args]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [{"ok": 0, "errors": 1, "first_error": "loadgen timed out after %d s" % timeout}]
    lines = [l for l in r.stdout.decode(errors="replace").splitlines() if l.startswith("{")]
    if r.returncode != 0 or not lines:
        return [{"ok": 0, "errors": 1,
                 "first_error": "loadgen failed (%d): %s" % (r.returncode,
                                                             r.stderr.decode(errors="replace")[-300:])}]
    return [json.loads(l) for l in lines]


def run_loadgen(args, timeout=600):
    return run_loadgen_lines(args, timeout)[-1]


def version(argv):
    try:
        r = subprocess.run(argv, capture_output=True, timeout=10)
        out = (r.stdout + r.stderr).decode(errors="replace").strip().splitlines()
        return out[0] if out else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not available"


# --- the bench ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.procs = Procs()
        self.tmp = tempfile.mkdtemp(prefix="pop3filter-bench.")
        os.chmod(self.tmp, 0o755)
        self.ports = free_ports(40, int(os.environ.get("BENCH_PORT_BASE", "21500")))
        self.port = {}
        self.pid = {}      # target -> Popen of the relay (nginx: the master)
        self.cmd = {}      # target -> argv, to restart after a crash
        self.problems = []
        self.unavailable = {}  # target -> why
        self.results = {}  # (workload, target) -> list of per-round dicts
        self.extra = {}
        self.plain = args.only in (None, "plain")
        self.tls = args.only in (None, "tls")
        self.censor = args.only in (None, "censor", "storm")
        self.storm_only = args.only == "storm"  # of the censor part, only ST
        self.certs = None  # the scratch dir of scripts/make-certs.sh once made
        self.auth = None

    def problem(self, msg):
        log("PROBLEM: " + msg)
        self.problems.append(msg)

    # -- setup --
    def make_certs(self):
        """A throw-away CA and server certificate for the TLS part (scripts/make-certs.sh)."""
        d = os.path.join(self.tmp, "certs")
        try:
            r = subprocess.run([os.path.join(ROOT, "scripts", "make-certs.sh"), d], capture_output=True,
                               timeout=60)
            ok = r.returncode == 0
            why = (r.stdout + r.stderr).decode(errors="replace").strip()[-300:]
        except (OSError, subprocess.TimeoutExpired) as e:
            ok, why = False, str(e)
        if not ok:
            for t in TLS_RELAYS:
                self.unavailable[t] = "no certificate: scripts/make-certs.sh failed: %s" % why
            self.problem("TLS part skipped: scripts/make-certs.sh failed: %s" % why)
            self.tls = False
            return
        self.certs = {k: os.path.join(d, k + ".pem") for k in ("ca", "cert", "key")}

    def start_dovecot(self):
        port = self.ports.pop(0)
        d = os.path.join(self.tmp, "dovecot")
        argv = [os.path.join(ROOT, "bench", "dovecot.sh"), d, str(port)]
        if self.tls:
            # The same Dovecot also listens with implicit TLS: the "Dovecot POP3S" target.
            self.port["dovecot pop3s"] = self.ports.pop(0)
            argv += [str(self.port["dovecot pop3s"]), self.certs["cert"], self.certs["key"]]
        self.dovecot = self.procs.start("dovecot", argv, os.path.join(self.tmp, "dovecot.out"))
        if self.dovecot is None or not wait_greeting(port, self.dovecot):
            sys.exit("bench: Dovecot did not start; see %s/dovecot.out and %s/dovecot.log" % (self.tmp, d))
        self.origin = port
        self.port["direct"] = port
        if self.tls and not wait_greeting(self.port["dovecot pop3s"], self.dovecot, ca=self.certs["ca"]):
            self.unavailable["dovecot pop3s"] = "Dovecot's POP3S listener did not answer (see %s/dovecot.log)" % d
            self.problem(self.unavailable["dovecot pop3s"])
        # The reference messages: the maildir files with LF -> CRLF.
        cur = os.path.join(d, "mail", "bench", "cur")
        self.msgfile, self.expect = {}, {}
        for n, name in enumerate(sorted(os.listdir(cur)), 1):
            with open(os.path.join(cur, name), "rb") as f:
                data = f.read().replace(b"\n", b"\r\n")
            self.msgfile[n] = os.path.join(cur, name)
            self.expect[n] = "%d:%s" % (len(data), hashlib.sha256(data).hexdigest())
        self.size = {n: int(e.split(":")[0]) for n, e in self.expect.items()}
        for n in (1, 2, 3):
            r = run_loadgen(["fetch", "-p", port, "-m", n, "-e", self.expect[n]])
            if r.get("matches") is not True:
                sys.exit("bench: a direct fetch of message %d does not match the maildir file: %s" % (n, r))
        log("Dovecot on %d; references: %s" % (port, ", ".join(
            "msg %d = %d octets" % (n, self.size[n]) for n in sorted(self.size))))

    def start_target(self, target):
        if target in os.environ.get("BENCH_SKIP", "").split(","):
            self.unavailable[target] = "skipped (BENCH_SKIP)"
            return False
        port = self.port.get(target) or self.ports.pop(0)
        self.port[target] = port
        logf = os.path.join(self.tmp, target.replace(" ", "_") + ".log")
        tls = target in TLS_RELAYS
        if target == "pop3filter tls":
            # Its POP3S listener is the target; the plain one (-p) is there because it must be.
            argv = self.pop3filter_tls_argv(port, self.mgmt_port("plain " + target), self.mgmt_port(target))
        elif target in CENSOR_DAEMONS:
            argv = [POP3FILTER] + CENSOR_DAEMONS[target] + [
                "-l", "127.0.0.1", "-p", str(port), "-P", str(self.origin), "-o", str(self.mgmt_port(target)),
                "-u", "bench:bench", "127.0.0.1"]
        elif target.startswith("pop3filter"):
            argv = [POP3FILTER, "-l", "127.0.0.1", "-p", str(port), "-P", str(self.origin),
                    "-o", str(self.mgmt_port(target)), "-u", "bench:bench", "127.0.0.1"]
            if target.endswith("cat"):
                argv[1:1] = ["-t", "cat"]
        elif target == "socat":
            # backlog: socat's default of 5 makes 16 parallel connects overflow the accept
            # queue, and the dropped handshakes stall for a SYN-ACK retransmit (1 s, 3 s, ...).
            argv = ["socat", "TCP-LISTEN:%d,bind=127.0.0.1,nodelay,fork,reuseaddr,backlog=1024" % port,
                    "TCP:127.0.0.1:%d,nodelay" % self.origin]
        elif target in ("nginx", "nginx tls"):
            argv = self.nginx_argv(target, port)
            if argv is None:
                return False
        p = self.procs.start(target, argv, logf)
        if p is None:
            self.unavailable[target] = "cannot run %s (not installed? bench/install-deps.sh)" % argv[0]
            self.problem("%s: %s" % (target, self.unavailable[target]))
            return False
        self.pid[target] = p
        self.cmd[target] = argv
        if not wait_greeting(port, p, ca=self.certs["ca"] if tls else None):
            self.procs.stop(p)
            del self.pid[target]
            tail = open(logf, errors="replace").read()[-400:]
            if target.startswith("nginx"):
                err = os.path.join(self.tmp, target.replace(" ", "-"), "error.log")
                if os.path.exists(err):
                    tail += open(err, errors="replace").read()[-400:]
            self.unavailable[target] = "did not start: " + " ".join(tail.split())[-300:]
            self.problem("%s did not start (log %s)" % (target, logf))
            return False
        return True

    def pop3filter_tls_argv(self, pop3s_port, plain_port, mgmt_port):
        return [POP3FILTER, "-l", "127.0.0.1", "-p", str(plain_port), "--tls-cert", self.certs["cert"],
                "--tls-key", self.certs["key"], "--pop3s-port", str(pop3s_port), "-P", str(self.origin),
                "-o", str(mgmt_port), "-u", "bench:bench", "127.0.0.1"]

    def mgmt_port(self, target):
        key = "mgmt " + target
        if key not in self.port:
            self.port[key] = self.ports.pop(0)
        return self.port[key]

    def nginx_argv(self, target, port):
        """nginx (target "nginx") or nginx with TLS on its listener ("nginx tls"), each its own
        instance under its own prefix; both ask the one auth_http endpoint."""
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        module = next((m for m in ("/usr/lib/nginx/modules/ngx_mail_module.so",
                                   "/usr/share/nginx/modules/ngx_mail_module.so")
                       if os.path.exists(m)), None)
        if nginx is None or module is None:
            self.unavailable[target] = ("not installed (packages nginx-light, libnginx-mod-mail; "
                                        "bench/install-deps.sh)")
            log("%s: %s" % (target, self.unavailable[target]))
            return None
        prefix = os.path.join(self.tmp, target.replace(" ", "-"))
        os.makedirs(prefix, exist_ok=True)
        if self.auth is None:
            self.auth_port = self.ports.pop(0)
            self.auth = self.procs.start("nginx-auth", [sys.executable, os.path.join(ROOT, "bench", "nginx-auth.py"),
                                                        str(self.auth_port), str(self.origin)],
                                         os.path.join(self.tmp, "nginx-auth.log"))
            # nginx greets before it asks auth_http: wait for the endpoint, or the first logins fail.
            if self.auth is not None and not wait_listening(self.auth_port, self.auth):
                self.procs.stop(self.auth)
                self.auth = None
        if self.auth is None:
            self.unavailable[target] = "its auth_http endpoint (bench/nginx-auth.py) did not start"
            return None
        with open(os.path.join(ROOT, "bench", "nginx.conf.in")) as f:
            conf = f.read()
        user = "user nobody nogroup;" if os.getuid() == 0 else ""
        tls = target == "nginx tls"
        for k, v in (("PREFIX", prefix), ("PORT", port), ("AUTH_PORT", self.auth_port),
                     ("ORIGIN_PORT", self.origin), ("MAIL_MODULE", module), ("USER_LINE", user),
                     ("SSL", " ssl" if tls else ""), ("TLS", "" if tls else "#"),
                     ("CERT", self.certs["cert"] if tls else "none"),
                     ("KEY", self.certs["key"] if tls else "none")):
            conf = conf.replace("@%s@" % k, str(v))
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(conf)
        return [nginx, "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"),
                "-e", os.path.join(prefix, "error.log"), "-g", "daemon off;"]

    def alive(self, target, when):
        """Checks that the relay still runs; restarts it after a crash."""
        p = self.pid.get(target)
        if p is None or p.poll() is None:
            return True
        self.problem("%s exited (status %s) during %s; restarted" % (target, p.returncode, when))
        self.procs.stop(p)
        del self.pid[target]
        self.start_target(target)
        return False

    # -- workloads --
    def record(self, workload, target, r):
        self.results.setdefault((workload, target), []).append(r)
        if r.get("errors"):
            self.problem("workload %s, %s: %d error(s), first: %s" % (workload, target, r["errors"], r.get("first_error")))

    def order(self, rnd, targets=TARGETS):
        live = [t for t in targets if self.live(t)]
        k = rnd % len(live)
        return live[k:] + live[:k]

    def live(self, t):
        if t == "direct":
            return True
        if t == "dovecot pop3s":
            return self.tls and t not in self.unavailable
        return t in self.pid

    def cpu(self, t):
        """CPU seconds so far of what serves target t; None for direct.  Dovecot POP3S: its
        pop3-login processes, which terminate TLS and proxy the cleartext to the pop3 process
        (the pop3 process's work, reading the mail, is the origin's, as for every target)."""
        if t == "dovecot pop3s":
            return comm_cpu(self.dovecot.pid, "pop3-login")
        relay = self.pid.get(t)
        return None if relay is None else tree_cpu(relay.pid)

    def tls_reserve(self):
        """Seconds kept for the TLS part while the plain part sizes workload 4."""
        if not self.tls:
            return 0
        a = self.args
        return a.rounds * len(TLS_TARGETS) * a.t4_secs + 60 + (20 if a.hold else 0)

    def run_workloads(self):
        a = self.args
        rounds = a.rounds
        spec = [
            ("1", ["sessions", "-m", 1, "-n", a.w1]),
            ("2", ["retrs", "-m", 2, "-n", a.w2]),
            ("3", ["retrs", "-m", 3, "-n", a.w3]),
            ("4", ["parallel", "-m", 2, "-n", a.w4, "-c", 16, "-d", a.w4_secs]),
        ]
        for w, lg in spec:
            t0 = time.time()
            if w == "4":
                # Workload 4 is "2000 sessions or 30 s" per run; on a slow or busy machine the
                # time cap comes down so that the whole run stays within the budget.
                runs = rounds * len(self.order(0))
                left = a.budget - (time.time() - self.t_start) - (40 if a.hold else 5) - self.tls_reserve()
                cap = max(5.0, min(float(a.w4_secs), left / runs))
                self.extra["w4_cap_s"] = round(cap, 1)
                lg = lg[:-1] + [round(cap, 1)]
                if cap < a.w4_secs:
                    log("workload 4: time cap %.1f s per run (budget %d s)" % (cap, a.budget))
            msg = lg[lg.index("-m") + 1]
            for rnd in range(rounds):
                order = self.order(rnd)
                if w == "4":
                    # One target at a time: parallel clients of two targets would share the CPU.
                    for target in order:
                        self.measured(w, rnd, [target], lg + ["-p", self.port[target], "-e", self.expect[msg]])
                else:
                    # All targets in one loadgen run, alternating session by session (RETR by
                    # RETR), so that background load weighs on every target alike.
                    ports = ",".join(str(self.port[t]) for t in order)
                    self.measured(w, rnd, order, lg + ["-p", ports, "-e", self.expect[msg]])
            log("workload %s: %d round(s) in %.0f s" % (w, rounds, time.time() - t0))

    def run_tls_workloads(self):
        """T2-T4: the TLS counterparts of workloads 2-4 (T4 with the 1 KiB message: new
        sessions per second), the same interleaving."""
        a = self.args
        rounds = a.rounds
        tls_ports = [str(self.port[t]) for t in TLS_RELAYS if self.live(t)]
        tls_args = ["--tls", self.certs["ca"], "--tls-ports", ",".join(tls_ports)]
        spec = [
            ("T2", ["retrs", "-m", 2, "-n", a.t2]),
            ("T3", ["retrs", "-m", 3, "-n", a.t3]),
            ("T4", ["parallel", "-m", 1, "-n", a.t4, "-c", 16, "-d", a.t4_secs]),
        ]
        for w, lg in spec:
            t0 = time.time()
            if w == "T4":
                runs = rounds * len(self.order(0, TLS_TARGETS))
                left = a.budget - (time.time() - self.t_start) - (20 if a.hold else 5)
                cap = max(3.0, min(float(a.t4_secs), left / runs))
                self.extra["t4_cap_s"] = round(cap, 1)
                lg = lg[:-1] + [round(cap, 1)]
                if cap < a.t4_secs:
                    log("workload T4: time cap %.1f s per run (budget %d s)" % (cap, a.budget))
            msg = lg[lg.index("-m") + 1]
            for rnd in range(rounds):
                order = self.order(rnd, TLS_TARGETS)
                if w == "T4":
                    for target in order:
                        self.measured(w, rnd, [target], lg + tls_args + ["-p", self.port[target],
                                                                        "-e", self.expect[msg]])
                else:
                    ports = ",".join(str(self.port[t]) for t in order)
                    self.measured(w, rnd, order, lg + tls_args + ["-p", ports, "-e", self.expect[msg]])
            log("workload %s: %d round(s) in %.0f s" % (w, rounds, time.time() - t0))

    def measured(self, w, rnd, targets, args):
        """One loadgen run over `targets`, with each relay's CPU (and for workload 3 the
        pop3filters' peak RSS) around it."""
        before = {}
        for t in targets:
            cpu = self.cpu(t)
            if cpu is None:
                continue
            relay = self.pid.get(t)
            b = before[t] = {"cpu": cpu}
            if w in ("3", "T3", "M3") and t.startswith("pop3filter"):
                b["hwm_lifetime"] = proc_status(relay.pid, "VmHWM")
                b["hwm_reset"] = reset_hwm(relay.pid)
                b["rss_before"] = proc_status(relay.pid, "VmRSS")
                b["hwm_before"] = proc_status(relay.pid, "VmHWM")
        lines = run_loadgen_lines(args)
        by_port = {l.get("port"): l for l in lines}
        for t in targets:
            r = dict(by_port.get(self.port[t]) or (lines[-1] if len(targets) == 1 else
                     {"ok": 0, "errors": 1, "first_error": "no result from loadgen: %s" % lines[-1]}))
            r["round"] = rnd
            relay = self.pid.get(t)
            if t in before and (relay is not None or t == "dovecot pop3s"):
                b = before[t]
                r["cpu_s"] = self.cpu(t) - b["cpu"]
                if "rss_before" in b:
                    hwm = proc_status(relay.pid, "VmHWM")
                    r.update(b, hwm_after=hwm)
                    del r["cpu"]
                    if b["rss_before"] is not None and hwm is not None:
                        r["growth"] = hwm - (b["rss_before"] if b["hwm_reset"] else b["hwm_before"])
                if relay is not None:
                    self.alive(t, "workload %s round %d" % (w, rnd + 1))
            self.record(w, t, r)

    # -- the censor part (issue 11) --
    def run_censor(self):
        """The standalone censors side by side, then pop3filter with -M, with -t run directly or
        through the shell, and the storm (with --only storm, the storm alone)."""
        a = self.args
        t0 = time.time()
        daemons = ST_TARGETS if self.storm_only else list(CENSOR_DAEMONS)
        if not self.storm_only:
            self.standalone()
            log("censor part: standalone in %.0f s" % (time.time() - t0))
        for t in daemons:
            self.start_target(t)
        log("censor part targets: " + ", ".join("%s :%d" % (CENSOR_LABEL[t], self.port[t])
                                                for t in daemons if self.live(t)))
        spec = [("M2", M_TARGETS, ["retrs", "-m", 2, "-n", a.m2]),
                ("M3", M_TARGETS, ["retrs", "-m", 3, "-n", a.m3]),
                ("SP", SP_TARGETS, ["retrs", "-m", 1, "-n", a.sp])]
        for w, targets, lg in [] if self.storm_only else spec:
            t1 = time.time()
            msg = lg[lg.index("-m") + 1]
            for rnd in range(a.rounds):
                order = self.order(rnd, targets)
                ports = ",".join(str(self.port[t]) for t in order)
                self.measured(w, rnd, order, lg + ["-p", ports, "-e", self.expect[msg]])
            log("workload %s: %d round(s) in %.0f s" % (w, a.rounds, time.time() - t1))
        # The storm: one target at a time (each storm has the machine to itself), the order
        # rotating. The same storm a.storms times over, and only the NOOPs sent while one is under
        # way count, however long each target takes to get through it.
        t1 = time.time()
        storm = ["storm", "-m", 1, "-e", self.expect[1], "-c", a.storm, "--storms", a.storms,
                 "--pipeline", 5, "--interval-ms", a.storm_interval, "--control", self.origin]
        for rnd in range(a.rounds):
            for t in self.order(rnd, ST_TARGETS):
                self.measured("ST", rnd, [t], storm + ["-p", self.port[t]])
        log("workload ST: %d round(s) in %.0f s" % (a.rounds, time.time() - t1))
        for t in daemons:
            if t in self.pid:
                self.procs.stop(self.pid.pop(t))
        self.extra["max_filters_default"] = "4 per core: %d here" % (4 * (os.cpu_count() or 1))
        log("censor part: %.0f s" % (time.time() - t0))

    def make_message(self, path, mib):
        """The standalone censors' message: a multipart with a text part, a small PNG and an
        application/x-cd-image part of about `mib` MiB in base64, CRLF line ends (as POP3 has
        them).  Returns its length and SHA-256."""
        nl = b"\r\n"
        png = base64.b64encode(bytes.fromhex(
            "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
            "0000000d49444154789c63f8ffffff7f0009fb03fd2a86e38a0000000049454e44ae426082"))
        head = nl.join([
            b"From: Ana <ana@example.org>", b"To: Bo <bo@example.org>", b"Subject: the disc",
            b"Date: Tue, 14 Nov 2023 22:13:20 +0000", b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="=_big"', b"",
            b"This is a multi-part message in MIME format.", b"--=_big",
            b"Content-Type: text/plain; charset=us-ascii", b"", b"Here is the CD image, and a dot.", b"--=_big",
            b'Content-Type: image/png; name="dot.png"', b"Content-Transfer-Encoding: base64",
            b'Content-Disposition: attachment; filename="dot.png"', b"", png, b"--=_big",
            b'Content-Type: application/x-cd-image; name="disc.iso"', b"Content-Transfer-Encoding: base64",
            b'Content-Disposition: attachment; filename="disc.iso"', b"", b""])
        raw = hashlib.shake_256(b"bench-cd-image").digest(57 * 16384)  # 76-character lines
        b64 = base64.b64encode(raw)
        block = nl.join(b64[i:i + 76] for i in range(0, len(b64), 76)) + nl
        tail = nl.join([b"--=_big", b"Content-Type: text/plain", b"", b"The end.", b"--=_big--", b""])
        sha = hashlib.sha256()
        with open(path, "wb") as f:
            for part in [head] + [block] * max(1, round(mib * MIB / len(block))) + [tail]:
                f.write(part)
                sha.update(part)
        return os.path.getsize(path), sha.hexdigest()

    def tool_argv(self, tool, case):
        """argv and environment of a standalone censor for a case."""
        medias, regex = CASES[case]
        env = dict(os.environ, FILTER_MEDIAS=medias)
        env.pop("FILTER_MSG", None)
        return {"cat": ["cat"], "stripmime": [STRIPMIME],
                "altermime": ["altermime", "--input=-", "--remove=" + regex],
                "python email": [sys.executable, PY_STRIP]}[tool], env

    def timed_run(self, tool, case, path):
        """One run of a tool on `path`, stdout to /dev/null: wall seconds from the spawn to the
        exit, user and system CPU (wait4).  Spawned straight from here (posix_spawn: no shell,
        no GNU time in between), since cat and stripmime take some tens of milliseconds; the
        peak RSS wait4 gives is no use here (a child's counts what its parent had when it
        exec'd), so memory_run measures that."""
        argv, env = self.tool_argv(tool, case)
        errlog = os.path.join(self.tmp, "standalone.err")
        with open(path, "rb") as fin, open(os.devnull, "wb") as dn, open(errlog, "ab") as err:
            acts = [(os.POSIX_SPAWN_DUP2, fin.fileno(), 0), (os.POSIX_SPAWN_DUP2, dn.fileno(), 1),
                    (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
            t0 = time.perf_counter()
            try:
                pid = os.posix_spawnp(argv[0], argv, env, file_actions=acts)
            except OSError as e:
                return {"error": "%s: %s" % (argv[0], e)}
            _, status, ru = os.wait4(pid, 0)
            wall = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        r = {"wall_s": round(wall, 6), "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "rc": rc}
        if rc != 0:
            r["error"] = "%s exited with status %d (%s)" % (tool, rc, errlog)
        return r

    def memory_run(self, tool, case, path):
        """One run of a tool on `path` under GNU time, for its peak RSS (`%M`: the tool's own,
        GNU time being a small program) and its exit status."""
        argv, env = self.tool_argv(tool, case)
        out = os.path.join(self.tmp, "time.out")
        with open(path, "rb") as fin:
            try:
                r = subprocess.run([GNU_TIME, "-o", out, "-f", "%M %e %x"] + argv, stdin=fin,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as e:
                return {"error": str(e)}
        try:
            with open(out) as f:
                rss, wall, rc = f.read().split()[-3:]
            return {"maxrss_kib": int(rss), "time_wall_s": float(wall), "rc": int(rc)}
        except (OSError, ValueError):
            return {"error": "no figures from %s (status %s)" % (GNU_TIME, r.returncode)}

    def output_of(self, tool, case, path):
        """What a tool writes for `path` (not timed), or None."""
        argv, env = self.tool_argv(tool, case)
        try:
            with open(path, "rb") as fin:
                r = subprocess.run(argv, stdin=fin, capture_output=True, env=env, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout if r.returncode == 0 else None

    def output_digest(self, tool, case, path):
        """The length and SHA-256 of what a tool writes for `path` (not timed), or None."""
        argv, env = self.tool_argv(tool, case)
        sha, n = hashlib.sha256(), 0
        with open(path, "rb") as fin:
            p = subprocess.Popen(argv, stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
                sha.update(chunk)
                n += len(chunk)
            p.stdout.close()
        return (n, sha.hexdigest()) if p.wait() == 0 else None

    def standalone(self):
        """Standalone censors on the big message: stripmime, cat, altermime and a Python `email`
        script, interleaved round by round; peak RSS and what each writes, on a 1 MiB message
        of the same shape."""
        a = self.args
        big, small = os.path.join(self.tmp, "big.eml"), os.path.join(self.tmp, "small.eml")
        t0 = time.time()
        size, sha = self.make_message(big, a.big_mib)
        ssize, _ = self.make_message(small, 1)
        res = self.extra["standalone"] = {"size": size, "small_size": ssize, "gen_s": round(time.time() - t0, 1),
                                          "unavailable": {}, "checks": {}, "small": {}}
        log("standalone: a %d-octet message made in %.1f s" % (size, time.time() - t0))
        tools = []
        for tool in TOOLS:
            exe = {"cat": "cat", "stripmime": STRIPMIME, "altermime": "altermime",
                   "python email": sys.executable}[tool]
            if not (os.access(exe, os.X_OK) or shutil.which(exe)):
                res["unavailable"][tool] = ("not installed (package altermime; bench/install-deps.sh)"
                                            if tool == "altermime" else "%s not found" % exe)
                self.problem("standalone %s: %s" % (tool, res["unavailable"][tool]))
            else:
                tools.append(tool)
        # Into the page cache, so that no tool pays for the disk.
        with open(big, "rb") as f:
            while f.read(1 << 20):
                pass
        # What a run costs with nothing to do: the spawn, cat's start and exit.
        empty = os.path.join(self.tmp, "empty")
        open(empty, "wb").close()
        res["spawn_overhead_s"] = med([self.timed_run("cat", "a", empty).get("wall_s") for _ in range(5)])
        for rnd in range(a.rounds):
            k = rnd % len(tools)
            for tool in tools[k:] + tools[:k]:
                # The fast ones take some tens of milliseconds: several runs each round.
                reps = a.fast_reps if tool in ("cat", "stripmime") else 1
                for case in CASES:
                    for _ in range(reps):
                        r = self.timed_run(tool, case, big)
                        r["round"] = rnd
                        self.record("C" + case, tool, r)
                        if r.get("error"):
                            self.problem("standalone %s %s: %s" % (tool, case, r["error"]))
        # Peak RSS, on the big message and on the 1 MiB one (is memory flat?), and what each tool
        # writes for the 1 MiB one.
        memory = os.access(GNU_TIME, os.X_OK)
        if not memory:
            self.problem("standalone: no peak RSS figures: %s not found (package time)" % GNU_TIME)
        with open(small, "rb") as f:
            small_in = f.read()
        lines = small_in.split(b"\r\n")
        png_line = lines[lines.index(b'Content-Disposition: attachment; filename="dot.png"') + 2]
        cd_line = lines[lines.index(b'Content-Disposition: attachment; filename="disc.iso"') + 2]
        for tool in tools:
            for case in CASES:
                key = "%s|%s" % (tool, case)
                if memory:
                    res.setdefault("big", {})[key] = self.memory_run(tool, case, big)
                r = self.memory_run(tool, case, small) if memory else {}
                out = self.output_of(tool, case, small)
                res["small"][key] = dict(r, **describe_output(out, small_in, png_line, cd_line))
                for k, m in ((key, r), (key + " (big)", res.get("big", {}).get(key, {}))):
                    if m.get("error") or m.get("rc"):
                        self.problem("standalone %s under GNU time: %s" % (k, m.get("error") or "status %s" % m["rc"]))
        # stripmime on the big message: unchanged in (a); in (b) what it writes for the 1 MiB one.
        if "stripmime" in tools:
            res["checks"]["a"] = self.output_digest("stripmime", "a", big) == (size, sha)
            res["checks"]["b"] = self.output_of("stripmime", "b", big) == self.output_of("stripmime", "b", small)
            for case, ok in res["checks"].items():
                if not ok:
                    self.problem("stripmime on the big message, case %s: not the expected output" % case)
        for path in (big, small, empty):
            os.unlink(path)

    def spawn_cost(self):
        n = self.args.spawn
        self.extra["spawn"] = run_loadgen(["spawn", "-n", n, "-t", "cat"])
        self.extra["spawn_1mib"] = run_loadgen(["spawn", "-n", n, "-t", "cat", "-i", self.msgfile[2]])

    def hold(self, tls=False):
        """Workload 5 (T5 with tls: the sessions through TLS, handshake and greeting done) on a
        fresh pop3filter, so that "idle" means idle."""
        n = self.args.t5 if tls else self.args.hold
        name = "workload T5" if tls else "workload 5"
        port, mgmt = self.ports.pop(0), self.ports.pop(0)
        if tls:
            plain = self.ports.pop(0)
            argv = self.pop3filter_tls_argv(port, plain, mgmt)
            tls_args = ["--tls", self.certs["ca"]]
        else:
            argv = [POP3FILTER, "-l", "127.0.0.1", "-p", str(port), "-P", str(self.origin), "-o", str(mgmt),
                    "-u", "bench:bench", "127.0.0.1"]
            tls_args = []
        logf = os.path.join(self.tmp, "pop3filter-hold%s.log" % ("-tls" if tls else ""))
        p = self.procs.start("pop3filter-hold", argv, logf)
        res = {"requested": n, "nofile_hard": resource.getrlimit(resource.RLIMIT_NOFILE)[1]}
        self.extra["hold_tls" if tls else "hold"] = res
        if not wait_greeting(port, p, ca=self.certs["ca"] if tls else None):
            self.problem("%s: pop3filter did not start" % name)
            return
        # One whole session first, so that one-time allocations are not counted per session.
        run_loadgen(["sessions", "-p", port, "-m", 1, "-n", 1, "-e", self.expect[1]] + tls_args)
        time.sleep(0.5)
        res["rss_idle"] = proc_status(p.pid, "VmRSS")
        t0 = time.time()
        # A short timeout: once the daemon is out of descriptors, a client it accepted waits for
        # its greeting (it is not turned away), and each thread would wait that long per try.
        lg = subprocess.Popen([LOADGEN, "hold", "-p", str(port), "-n", str(n), "-c", "8", "-T", "5"] + tls_args,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        held = None
        for line in lg.stdout:
            ev = json.loads(line)
            if ev.get("event") == "held":
                held = ev
                break
        if held is None:
            self.problem("%s: loadgen hold failed: %s" % (name, lg.stderr.read().decode(errors="replace")[-300:]))
            lg.kill()
            lg.wait()
            self.procs.stop(p)
            return
        time.sleep(1.0)
        res.update(held=held["held"], open_errors=held["open_errors"], open_first_error=held["first_error"],
                   open_s=held["open_s"], loadgen_nofile=held["nofile"], tls=held.get("tls"))
        res["rss_held"] = proc_status(p.pid, "VmRSS")
        try:
            res["daemon_fds"] = len(os.listdir("/proc/%d/fd" % p.pid))
        except OSError:
            res["daemon_fds"] = None
        res["daemon_nofile"] = None
        try:
            with open("/proc/%d/limits" % p.pid) as f:
                for line in f:
                    if line.startswith("Max open files"):
                        res["daemon_nofile"] = int(line.split()[3])
        except (OSError, ValueError, IndexError):
            pass
        res["daemon_alive_held"] = p.poll() is None
        lg.stdin.write(b"go\n")
        lg.stdin.flush()
        final = json.loads(lg.stdout.readline() or b"{}")
        lg.wait()
        res["answered"] = final.get("ok", 0)
        res["answer_errors"] = final.get("errors")
        res["answer_first_error"] = final.get("first_error")
        res["answer_p50_ms"] = final.get("lat_p50_ms")
        res["seconds"] = time.time() - t0
        res["daemon_alive_after"] = p.poll() is None
        if res["held"] and res["rss_held"] is not None and res["rss_idle"] is not None:
            res["per_session"] = (res["rss_held"] - res["rss_idle"]) / res["held"]
        if held["open_errors"]:
            why = ""
            if res.get("daemon_nofile") and res["daemon_nofile"] < 2 * n + 64:
                why = (" (environment: pop3filter's descriptor limit is %d, two per session are needed)"
                       % res["daemon_nofile"])
            self.problem("%s: %d of %d sessions not opened%s; first error: %s"
                         % (name, held["open_errors"], n, why, held["first_error"]))
        if final.get("errors"):
            self.problem("%s: %d held sessions did not answer CAPA+QUIT; first: %s"
                         % (name, final["errors"], final.get("first_error")))
        if not res["daemon_alive_after"]:
            self.problem("%s: pop3filter exited (status %s)" % (name, p.returncode))
        self.procs.stop(p)
        log("%s: held %s of %d in %.1f s, %s answered CAPA+QUIT" % (name, held["held"], n, held["open_s"], res["answered"]))
        res["log"] = logf

    def scan_logs(self):
        """Warnings and errors in the daemons' logs (the access log goes there too)."""
        found = {}
        for name in sorted(os.listdir(self.tmp)):
            if not (name.startswith("pop3filter") and name.endswith(".log")):
                continue
            counts, first = {}, None
            with open(os.path.join(self.tmp, name), errors="replace") as f:
                for line in f:
                    parts = line.split(" ", 2)
                    if len(parts) >= 2 and parts[1] in ("WARN", "ERROR"):
                        counts[parts[1]] = counts.get(parts[1], 0) + 1
                        first = first or line.strip()
            if counts:
                found[name] = {"counts": counts, "first": first}
        self.extra["daemon_log"] = found
        dlog = os.path.join(self.tmp, "dovecot", "dovecot.log")
        notes = {}
        try:
            with open(dlog, errors="replace") as f:
                for line in f:
                    for level in ("Warning:", "Error:", "Fatal:", "Panic:"):
                        if level in line and "Killed with signal 15" not in line:
                            key = line.split(level, 1)[1].strip()[:120]
                            notes[key] = notes.get(key, 0) + 1
        except OSError:
            pass
        self.extra["dovecot_log"] = notes

    def machine(self):
        def git(*a):
            try:
                return subprocess.run(["git", "-C", ROOT] + list(a), capture_output=True,
                                      timeout=10).stdout.decode().strip()
            except (OSError, subprocess.TimeoutExpired):
                return ""
        model = "?"
        try:
            with open("/proc/cpuinfo") as f:
                model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
        except OSError:
            pass
        mem = proc_status_meminfo()
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(),
            "cpu": model,
            "memory_gib": round(mem / GIB, 1) if mem else None,
            "kernel": platform.release(),
            "os": os_release(),
            "loadavg_start": open("/proc/loadavg").read().split()[:3],
            "commit": git("rev-parse", "--short=12", "HEAD") or "unknown",
            "commit_subject": git("log", "-1", "--format=%s"),
            "dirty": bool(dirty),
            "dovecot": version(["dovecot", "--version"]),
            "nginx": version(["nginx", "-v"]),
            "openssl": version(["openssl", "version"]),
            "socat": socat_version(),
            "pop3filter": version([POP3FILTER, "-v"]),
            "altermime": " ".join(version(["altermime", "--version"]).split()[:2]),
            "python": platform.python_version(),
            "rounds": self.args.rounds,
        }

    def run(self):
        t0 = self.t_start = time.time()
        meta = self.machine()
        try:
            if self.tls:
                self.make_certs()
            self.start_dovecot()
            if self.censor:
                # First: its time then counts in what workloads 4 and T4 leave for themselves.
                self.run_censor()
            if self.plain:
                for t in RELAYS:
                    self.start_target(t)
                log("targets: " + ", ".join("%s :%d" % (t, self.port[t]) for t in TARGETS if self.live(t))
                    + ("; unavailable: " + ", ".join(self.unavailable) if self.unavailable else ""))
                self.spawn_cost()
                self.run_workloads()
                if self.args.hold:
                    self.hold()
                # The plain relays are done: stopped, so that they idle on nothing during the TLS part.
                for t in RELAYS:
                    if t in self.pid:
                        self.procs.stop(self.pid.pop(t), signal.SIGQUIT if t == "nginx" else signal.SIGTERM)
            if self.tls:
                for t in ("pop3filter tls", "nginx tls"):
                    self.start_target(t)
                log("TLS targets: " + ", ".join("%s :%d" % (t, self.port[t]) for t in TLS_TARGETS if self.live(t))
                    + ("; unavailable: " + ", ".join(t for t in TLS_RELAYS if t in self.unavailable)
                       if any(t in self.unavailable for t in TLS_RELAYS) else ""))
                self.run_tls_workloads()
                if self.args.hold:
                    self.hold(tls=True)
            self.extra["auth_cpu_s"] = tree_cpu(self.auth.pid) if self.auth else None
        finally:
            self.procs.stop_all()
        self.scan_logs()
        meta["seconds"] = round(time.time() - t0)
        meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        return meta


def describe_output(out, src, png_line, cd_line):
    """What a censor made of the 1 MiB message: the facts the report shows."""
    if out is None:
        return {"output": None}
    return {"output": len(out), "identical": out == src,
            "crlf_kept": out.count(b"\n") == out.count(b"\r\n") and b"\r\n" in out,
            "png_kept": png_line in out, "cd_kept": cd_line in out,
            "note": b"removed" in out, "close_delimiter": b"--=_big--" in out,
            "delimiters": out.count(b"--=_big")}


def proc_status_meminfo():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def os_release():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def socat_version():
    out = version(["socat", "-V"])
    try:
        r = subprocess.run(["socat", "-V"], capture_output=True, timeout=10)
        for line in r.stdout.decode(errors="replace").splitlines():
            if "version" in line:
                return " ".join(line.split()[:3])
    except (OSError, subprocess.TimeoutExpired):
        pass
    return out


# --- analysis ----------------------------------------------------------------------------

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Analysis:
    def __init__(self, bench, meta):
        self.b = bench
        self.meta = meta
        self.v = {}  # (workload, metric, target) -> median value
        self.compute()

    def runs(self, w, t):
        return self.b.results.get((w, t), [])

    def m(self, w, t, key):
        return med([r.get(key) for r in self.runs(w, t) if r.get("ok")])

    def window(self, w, t):
        """Median over the rounds of the samples in 40-60 ms: where a Nagle / delayed-ACK stall
        (40 ms on Linux) puts a session or RETR that usually takes a few ms."""
        return med([sum(r["lat_hist_5ms"][8:12]) for r in self.runs(w, t)
                    if r.get("ok") and r.get("lat_hist_5ms")])

    def compute(self):
        size = self.b.size
        for t in TARGETS:
            v = self.v
            v[("1", "p50", t)] = self.m("1", t, "lat_p50_ms")
            v[("1", "p99", t)] = self.m("1", t, "lat_p99_ms")
            v[("1", "ge40", t)] = self.m("1", t, "lat_ge_40ms")
            v[("1", "in4060", t)] = self.window("1", t)
            v[("2", "p50", t)] = self.m("2", t, "lat_p50_ms")
            v[("2", "p99", t)] = self.m("2", t, "lat_p99_ms")
            v[("2", "ge40", t)] = self.m("2", t, "lat_ge_40ms")
            v[("2", "in4060", t)] = self.window("2", t)
            v[("3", "mibs", t)] = self.m("3", t, "mib_s")
            v[("3", "growth", t)] = self.m("3", t, "growth")
            v[("3", "hwm", t)] = self.m("3", t, "hwm_after")
            v[("4", "sps", t)] = self.m("4", t, "sessions_s")
            v[("4", "mibs", t)] = self.m("4", t, "mib_s")
            v[("4", "p50", t)] = self.m("4", t, "lat_p50_ms")
            # Throughput by message size, for the chart: octets per p50 time.
            p1, p2 = v[("1", "p50", t)], v[("2", "p50", t)]
            v[("tp", "1k", t)] = size[1] / MIB / (p1 / 1e3) if p1 else None
            v[("tp", "1m", t)] = size[2] / MIB / (p2 / 1e3) if p2 else None
            v[("tp", "20m", t)] = v[("3", "mibs", t)]
            v[("tp", "1mx16", t)] = v[("4", "mibs", t)]
            # Workload 6: CPU per GiB over workloads 3 and 4, per round, then the median.
            per_round = []
            r3, r4 = self.runs("3", t), self.runs("4", t)
            for a, b in zip(r3, r4):
                cpu = (a.get("cpu_s") or 0) + (b.get("cpu_s") or 0)
                nbytes = (a.get("rx_bytes") or 0) + (b.get("rx_bytes") or 0)
                if "cpu_s" in a and "cpu_s" in b and nbytes:
                    per_round.append(cpu / (nbytes / GIB))
            v[("6", "cpu", t)] = med(per_round)
            v[("6", "cpu3", t)] = med([r["cpu_s"] / (r["rx_bytes"] / GIB) for r in r3
                                       if "cpu_s" in r and r.get("rx_bytes")])
            v[("6", "cpu4", t)] = med([r["cpu_s"] / (r["rx_bytes"] / GIB) for r in r4
                                       if "cpu_s" in r and r.get("rx_bytes")])
        for t in TLS_TARGETS:
            v = self.v
            for k in ("p50", "p99"):
                v[("T2", k, t)] = self.m("T2", t, "lat_%s_ms" % k)
            v[("T2", "ge40", t)] = self.m("T2", t, "lat_ge_40ms")
            v[("T2", "in4060", t)] = self.window("T2", t)
            v[("T3", "mibs", t)] = self.m("T3", t, "mib_s")
            v[("T3", "growth", t)] = self.m("T3", t, "growth")
            v[("T4", "sps", t)] = self.m("T4", t, "sessions_s")
            v[("T4", "p50", t)] = self.m("T4", t, "lat_p50_ms")
            v[("T4", "p99", t)] = self.m("T4", t, "lat_p99_ms")
            v[("T4", "cpu_ms", t)] = med([r["cpu_s"] * 1e3 / r["ok"] for r in self.runs("T4", t)
                                          if "cpu_s" in r and r.get("ok")])
            # T6: CPU per GiB over T2 and T3, per round, then the median.
            per_round = []
            r2, r3 = self.runs("T2", t), self.runs("T3", t)
            for a, b in zip(r2, r3):
                nbytes = (a.get("rx_bytes") or 0) + (b.get("rx_bytes") or 0)
                if "cpu_s" in a and "cpu_s" in b and nbytes:
                    per_round.append((a["cpu_s"] + b["cpu_s"]) / (nbytes / GIB))
            v[("T6", "cpu", t)] = med(per_round)
            v[("T6", "cpu2", t)] = med([r["cpu_s"] / (r["rx_bytes"] / GIB) for r in r2
                                        if "cpu_s" in r and r.get("rx_bytes")])
            v[("T6", "cpu3", t)] = med([r["cpu_s"] / (r["rx_bytes"] / GIB) for r in r3
                                        if "cpu_s" in r and r.get("rx_bytes")])

        self.compute_censor()

    def compute_censor(self):
        v = self.v
        for case in CASES:
            w = "C" + case
            for tool in TOOLS:
                runs = [r for r in self.runs(w, tool) if "wall_s" in r and not r.get("error")]
                v[(w, "n", tool)] = len(runs)
                v[(w, "wall", tool)] = med([r["wall_s"] for r in runs])
                v[(w, "cpu", tool)] = med([r["user_s"] + r["sys_s"] for r in runs])
                sa = self.b.extra.get("standalone", {})
                key = "%s|%s" % (tool, case)
                v[(w, "rss", tool)] = sa.get("big", {}).get(key, {}).get("maxrss_kib")
                v[(w, "rss_small", tool)] = sa.get("small", {}).get(key, {}).get("maxrss_kib")
        for t in M_TARGETS:
            v[("M2", "p50", t)] = self.m("M2", t, "lat_p50_ms")
            v[("M2", "p99", t)] = self.m("M2", t, "lat_p99_ms")
            v[("M3", "mibs", t)] = self.m("M3", t, "mib_s")
            v[("M3", "growth", t)] = self.m("M3", t, "growth")
            v[("M3", "cpu", t)] = med([r["cpu_s"] / (r["rx_bytes"] / GIB) for r in self.runs("M3", t)
                                       if "cpu_s" in r and r.get("rx_bytes")])
        for t in SP_TARGETS:
            v[("SP", "p50", t)] = self.m("SP", t, "lat_p50_ms")
            v[("SP", "p99", t)] = self.m("SP", t, "lat_p99_ms")
            v[("SP", "min", t)] = self.m("SP", t, "lat_min_ms")
        for t in ST_TARGETS:
            # p50/p99/max and the control's: the NOOPs sent while a storm was under way.
            for k, key in (("p50", "lat_p50_ms"), ("p99", "lat_p99_ms"), ("max", "lat_max_ms"),
                           ("samples", "samples"), ("storm_ms", "storm_ms"), ("storm_ms_max", "storm_ms_max"),
                           ("open_s", "open_s"), ("retrs", "storm_retrs"), ("retrs_s", "storm_retrs_per_s"),
                           ("ctl_samples", "control_samples"), ("ctl_p50", "control_p50_ms"),
                           ("ctl_p99", "control_p99_ms"), ("ctl_max", "control_max_ms")):
                v[("ST", k, t)] = self.m("ST", t, key)

    def negotiated(self, t):
        """What the TLS sessions to t negotiated (loadgen's "tls" field), every distinct value."""
        seen = []
        for w in ("T2", "T3", "T4"):
            for r in self.runs(w, t):
                if r.get("tls") and r["tls"] not in seen:
                    seen.append(r["tls"])
        return seen

    def get(self, w, metric, t):
        return self.v.get((w, metric, t))

    def ratio(self, w, metric, t, base="direct"):
        a, b = self.get(w, metric, t), self.get(w, metric, base)
        if a is None or b is None or b == 0:
            return None
        return a / b

    # -- targets --
    def checks(self):
        """[(target text, measured text, limit text, passed or None, margin text)]"""
        out = []
        if self.b.plain:
            self.plain_checks(out)
        if self.b.tls:
            self.tls_checks(out)
        if self.b.censor:
            if not self.b.storm_only:
                self.censor_checks(out)
            self.storm_checks(out)
        return out

    def censor_checks(self, out):
        sa = self.b.extra.get("standalone", {})
        gone = sa.get("unavailable", {})
        mib = self.b.args.big_mib
        for case in CASES:
            w = "C" + case
            s, c, alt = (self.get(w, "wall", t) for t in ("stripmime", "cat", "altermime"))
            label = "stripmime %s, %d MiB: wall time vs cat" % (CASE_LABEL[case], mib)
            if s and c:
                out.append((label, "%.1f ms vs %.1f ms (%.2f×)" % (s * 1e3, c * 1e3, s / c), "≤ 2×", s / c <= 2,
                            "%+.0f %% vs the limit" % ((s / c / 2 - 1) * 100)))
            else:
                out.append((label, "n/a", "≤ 2×", None, ""))
            label = "stripmime %s, %d MiB: times faster than altermime" % (CASE_LABEL[case], mib)
            if s and alt:
                out.append((label, "%.1f ms vs %.1f ms (%.1f×)" % (s * 1e3, alt * 1e3, alt / s), "≥ 4×",
                            alt / s >= 4, "%+.0f %% vs the limit" % ((alt / s / 4 - 1) * 100)))
            else:
                out.append((label, "n/a" + (" (%s)" % gone["altermime"] if "altermime" in gone else ""), "≥ 4×",
                            None, ""))
            big, small = self.get(w, "rss", "stripmime"), self.get(w, "rss_small", "stripmime")
            label = "stripmime %s: peak RSS, %d MiB vs 1 MiB message (memory flat)" % (CASE_LABEL[case], mib)
            if big is not None and small is not None:
                out.append((label, "%d KiB vs %d KiB" % (big, small), "≤ 1 MiB message + 1024 KiB",
                            big - small <= 1024, "%+d KiB" % (big - small - 1024)))
            else:
                out.append((label, "n/a", "≤ 1 MiB message + 1024 KiB", None, ""))
        P, M = "pop3filter-ref", "pop3filter-M"
        a, b = self.get("M3", "mibs", P), self.get("M3", "mibs", M)
        label = "-M, M3 time per MiB (20 MiB RETRs) vs the plain relay"
        if a and b:
            out.append((label, "%.1f vs %.1f MiB/s (%.3f×)" % (b, a, a / b), "≤ 1.10×", a / b <= 1.10,
                        "%+.1f %% vs the limit" % ((a / b / 1.10 - 1) * 100)))
        else:
            out.append((label, "n/a", "≤ 1.10×", None, ""))
        a, b = self.get("M2", "p50", P), self.get("M2", "p50", M)
        label = "-M, M2 p50 RETR 1 MiB − the plain relay's"
        if a is not None and b is not None:
            out.append((label, "%.3f ms (%.2f vs %.2f ms)" % (b - a, b, a), "< 0.2 ms", b - a < 0.2,
                        "%+.3f ms" % (b - a - 0.2)))
        else:
            out.append((label, "n/a", "< 0.2 ms", None, ""))
        g = self.get("M3", "growth", M)
        out.append(("-M, M3 peak RSS growth over %d × 20 MiB" % self.b.args.m3,
                    "n/a" if g is None else "%.0f KiB" % (g / 1024), "< 1024 KiB",
                    None if g is None else g < MIB, "" if g is None else "%+.0f KiB" % ((g - MIB) / 1024)))

    def storm_checks(self, out):
        P, T = "pop3filter-ref", "pop3filter-tcat"
        a, b = self.get("ST", "p99", P), self.get("ST", "p99", T)
        label = "storm: NOOP p99 under the storms with -t cat vs without -t"
        if a and b is not None:
            out.append((label, "%.2f ms vs %.2f ms (%.2f×; %s vs %s NOOPs)" % (
                b, a, b / a, whole(self.get("ST", "samples", T)), whole(self.get("ST", "samples", P))),
                "≤ 2×", b / a <= 2, "%+.0f %% vs the limit" % ((b / a / 2 - 1) * 100)))
        else:
            out.append((label, "n/a", "≤ 2×", None, ""))

    def tls_checks(self, out):
        P, N = "pop3filter tls", "nginx tls"
        why = self.b.unavailable.get(N) or self.b.unavailable.get(P)

        def vs_nginx(label, w, metric, higher_is_better, digits, unit):
            a, b = self.get(w, metric, P), self.get(w, metric, N)
            if a is None or b is None or not b:
                out.append((label, "n/a" + (" (%s)" % why if why else ""), "", None, ""))
                return
            if higher_is_better:
                ok, limit = a >= b, "≥ nginx"
            else:
                ok, limit = a < b, "< nginx"
            out.append((label, "%.*f %s vs %.*f %s (%.2f×)" % (digits, a, unit, digits, b, unit, a / b),
                        limit, ok, "%+.0f %%" % ((a / b - 1) * 100)))

        vs_nginx("TLS, T3 throughput (20 MiB RETRs) vs nginx", "T3", "mibs", True, 1, "MiB/s")
        vs_nginx("TLS, T4 new TLS sessions per second vs nginx", "T4", "sps", True, 1, "/s")
        vs_nginx("TLS, T6 CPU per GiB relayed (T2 + T3) vs nginx", "T6", "cpu", False, 2, "s")
        h = self.b.extra.get("hold_tls")
        if h:
            held, ans, n = h.get("held") or 0, h.get("answered") or 0, h.get("requested")
            out.append(("TLS, T5 sessions held, then answering CAPA+QUIT", "%d held, %d answered" % (held, ans),
                        "%d and %d" % (n, n), held == n and ans == n, "%+d" % (min(held, ans) - n)))
            ps = h.get("per_session")
            lim = 64 * 1024
            if ps is not None:
                out.append(("TLS, T5 RSS per idle TLS session", "%.1f KiB" % (ps / 1024), "< 64 KiB",
                            ps < lim, "%+.0f %%" % ((ps / lim - 1) * 100)))
            else:
                out.append(("TLS, T5 RSS per idle TLS session", "n/a", "< 64 KiB", None, ""))

    def plain_checks(self, out):
        P = "pop3filter"

        def slower(w, metric, higher_is_better, limit, t=P, label=""):
            r = self.ratio(w, metric, t)
            if r is None:
                out.append((label, "n/a", "", None, ""))
                return
            # Express everything as "time ratio": for throughput, direct/target.
            tr = 1 / r if higher_is_better else r
            ok = tr <= limit
            margin = ("%+.1f %% vs the limit" % ((tr / limit - 1) * 100))
            out.append((label, "%.3f× direct" % tr, "≤ %.2f×" % limit, ok, margin))

        slower("1", "p50", False, 1.05, label="plain relay, w1 p50 session time")
        slower("2", "p50", False, 1.05, label="plain relay, w2 p50 RETR time")
        slower("3", "mibs", True, 1.05, label="plain relay, w3 time per MiB (direct MiB/s ÷ ours)")
        slower("4", "sps", True, 1.05, label="plain relay, w4 time per session (direct sessions/s ÷ ours)")
        slower("4", "mibs", True, 1.05, label="plain relay, w4 time per MiB (direct MiB/s ÷ ours)")
        for w in ("1", "2"):
            n = self.args_count(w)
            ours, base = self.get(w, "in4060", P), self.get(w, "in4060", "direct")
            ge, ged = self.get(w, "ge40", P), self.get(w, "ge40", "direct")
            p99, p99d = self.get(w, "p99", P), self.get(w, "p99", "direct")
            if ours is None or base is None:
                out.append(("plain relay, no 40 ms mode in w%s" % w, "n/a", "", None, ""))
                continue
            share, dshare = ours / n * 100, base / n * 100
            ok = share <= dshare + 1.0
            out.append(("plain relay, no 40 ms mode in w%s (share of samples in 40–60 ms)" % w,
                        "%.1f %% (direct %.1f %%); all ≥ 40 ms: %.1f %% (direct %.1f %%); p99 %.2f ms "
                        "(direct %.2f)" % (share, dshare, ge / n * 100, ged / n * 100, p99, p99d),
                        "≤ direct + 1 point", ok, "%+.1f points" % (share - dshare)))
        slower("3", "mibs", True, 1.25, t=P + " -t cat", label="-t cat, w3 time per MiB")
        # -t cat on w2: the extra time over direct against the filter's spawn cost.
        sp = self.b.extra.get("spawn", {}).get("lat_p50_ms")
        c, d = self.get("2", "p50", P + " -t cat"), self.get("2", "p50", "direct")
        if sp is not None and c is not None and d is not None:
            extra = c - d
            allowed = sp + 0.05 * d
            out.append(("-t cat, w2 p50 RETR time − direct", "%.2f ms (spawn of sh -c cat: %.2f ms)" % (extra, sp),
                        "≤ spawn + 5 %% of direct = %.2f ms" % allowed, extra <= allowed,
                        "%+.2f ms" % (extra - allowed)))
        for t in (P, P + " -t cat"):
            g = self.get("3", "growth", t)
            if g is None:
                out.append(("%s, w3 peak RSS growth" % t, "n/a", "", None, ""))
                continue
            out.append(("%s, w3 peak RSS growth over 5 × 20 MiB" % t, "%.0f KiB" % (g / 1024), "< 1024 KiB",
                        g < MIB, "%+.0f KiB" % ((g - MIB) / 1024)))
        h = self.b.extra.get("hold")
        if h:
            held, ans, n = h.get("held") or 0, h.get("answered") or 0, h.get("requested")
            margin = "%+d" % (min(held, ans) - n)
            if h.get("daemon_nofile") and h["daemon_nofile"] < 2 * n + 64 and held < n:
                margin += " (descriptor limit %d here, see above)" % h["daemon_nofile"]
            out.append(("w5, sessions held, then answering CAPA+QUIT", "%d held, %d answered" % (held, ans),
                        "%d and %d" % (n, n), held == n and ans == n, margin))
            ps = h.get("per_session")
            lim = 2 * BUFFER + 4096
            if ps is not None:
                out.append(("w5, RSS per held session", "%.0f B" % ps, "≤ %d B (2 × %d + 4 KiB)" % (lim, BUFFER),
                            ps <= lim, "%+.0f %%" % ((ps / lim - 1) * 100)))
        a, b = self.get("6", "cpu", P), self.get("6", "cpu", "nginx")
        if a is not None and b is not None:
            out.append(("w6, CPU per GiB relayed vs nginx", "%.2f s vs %.2f s (%.2f×)" % (a, b, a / b),
                        "< nginx", a < b, "%+.0f %%" % ((a / b - 1) * 100)))
        else:
            out.append(("w6, CPU per GiB relayed vs nginx", "n/a (%s)" % self.b.unavailable.get("nginx", "?"),
                        "< nginx", None, ""))

    def args_count(self, w):
        return {"1": self.b.args.w1, "2": self.b.args.w2}[w]


# --- output ------------------------------------------------------------------------------

def fmt(v, digits=2):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 100:
        return "%.1f" % v
    return "%.*f" % (digits, v)


def whole(v):
    return "—" if v is None else "%.0f" % v


def cell(an, w, metric, t, higher_is_better=False, digits=2):
    v = an.get(w, metric, t)
    if t in an.b.unavailable and v is None:
        return "n/a"
    if v is None:
        return "—"
    runs = an.runs(w, t)
    flag = " ⚠" if any(r.get("errors") for r in runs) else ""
    if metric == "ge40":
        return "%d (%d)%s" % (v, an.get(w, "in4060", t) or 0, flag)
    if t == "direct":
        return fmt(v, digits) + flag
    r = an.ratio(w, metric, t)
    return "%s (%s×)%s" % (fmt(v, digits), "%.2f" % r if r is not None else "—", flag)


def vs_nginx(an, w, metric):
    if metric == "ge40":
        return ""
    a, b = an.get(w, metric, "pop3filter"), an.get(w, metric, "nginx")
    return "%.2f×" % (a / b) if a is not None and b else "—"


def markdown(an):
    b, meta = an.b, an.meta
    a = b.args
    L = []
    L.append("# pop3filter benchmark")
    L.append("")
    part = "" if a.only is None else " (only %s: `--only %s`)" % (
        {"plain": "the plain part", "tls": "the TLS part", "censor": "the censor part",
         "storm": "the storm, ST"}[a.only], a.only)
    L.append("- date: %s; `make bench` took %d s%s" % (meta["date"], meta["seconds"], part))
    L.append("- machine: %d cores (%s), %s GiB, kernel %s, %s; load average at start %s, at end %s"
             % (meta["cores"], meta["cpu"], meta["memory_gib"], meta["kernel"], meta["os"],
                " ".join(meta["loadavg_start"]), " ".join(meta["loadavg_end"])))
    L.append("- commit: `%s` (%s)%s" % (meta["commit"], meta["commit_subject"],
                                        ", with uncommitted changes in the working tree" if meta["dirty"] else ""))
    L.append("- %s; origin %s; peers: %s, %s%s" % (
        meta["pop3filter"], meta["dovecot"] and "Dovecot " + meta["dovecot"], meta["socat"], meta["nginx"],
        "; TLS: %s on the nginx and Dovecot side, rustls 0.23 (ring) in pop3filter and the load generator"
        % meta.get("openssl", "?").split(" (")[0] if b.tls else "")
             + ("; censor part: %s, Python %s" % (meta.get("altermime"), meta.get("python")) if b.censor else ""))
    L.append("- %d rounds per workload, targets interleaved (see the notes); "
             "every figure is the median over the rounds; in parentheses the ratio to `direct`%s." % (
                 a.rounds, "; last column: pop3filter's figure divided by nginx's (below 1 is better for times "
                 "and CPU, above 1 for rates)" if b.plain or b.tls else ""))
    L.append("")
    if b.plain:
        markdown_plain(an, L)
    if b.tls:
        markdown_tls(an, L)
    if b.censor:
        L.append("## Censor and filters (issue 11)")
        L.append("")
        if not b.storm_only:
            markdown_censor(an, L)
        markdown_storm(an, L)
    L.append("## Targets")
    L.append("")
    L.append("| target | measured | limit | result | margin |")
    L.append("|---|---|---|---|---|")
    for label, meas, lim, ok, margin in an.checks():
        L.append("| %s | %s | %s | %s | %s |" % (label, meas, lim,
                                                "n/a" if ok is None else ("**pass**" if ok else "**FAIL**"), margin))
    L.append("")
    L.append("## Notes")
    L.append("")
    L.append("- Every retrieved message was checked (length and SHA-256 after un-dot-stuffing, against the "
             "maildir file with CRLF line ends); a ⚠ marks a cell with errors, listed below.")
    if b.plain:
        notes_plain(an, L)
    if b.tls:
        notes_tls(an, L)
    if b.censor:
        notes_censor(an, L)
    L.append("- Dovecot: bench/dovecot.conf.in (the test origin's settings; pop3-login in high-performance "
             "mode; one pop3 process per logged-in session, Dovecot's default). All targets share it.")
    if b.unavailable:
        for t, why in b.unavailable.items():
            L.append("- `%s`: %s" % (t, why))
    if b.problems:
        L.append("")
        L.append("## Problems seen")
        L.append("")
        for p in b.problems:
            L.append("- " + p)
    logs = b.extra.get("daemon_log") or {}
    if logs:
        L.append("")
        L.append("Daemon log warnings/errors: " + "; ".join(
            "%s: %s (first: `%s`)" % (n, d["counts"], d["first"][:200]) for n, d in logs.items()))
    dl = b.extra.get("dovecot_log") or {}
    if dl:
        L.append("")
        L.append("Dovecot log warnings/errors: " + "; ".join("`%s` × %d" % (k, n) for k, n in list(dl.items())[:8]))
    L.append("")
    L.append(("Chart: [latest.svg](latest.svg). " if b.plain else "") + "Raw numbers: [latest.json](latest.json).")
    return "\n".join(L) + "\n"


def markdown_plain(an, L):
    b = an.b
    a = b.args
    hdr = "| workload | metric | " + " | ".join("`%s`" % t for t in TARGETS) + " | pop3filter ÷ nginx |"
    L.append(hdr)
    L.append("|" + "---|" * (len(TARGETS) + 3))

    def row(wlabel, mlabel, w, metric, hib=False, digits=2, only=None):
        cells = []
        for t in TARGETS:
            if only and t not in only:
                cells.append("")
            else:
                cells.append(cell(an, w, metric, t, hib, digits))
        L.append("| %s | %s | %s | %s |" % (wlabel, mlabel, " | ".join(cells), vs_nginx(an, w, metric)
                                            if not only or "nginx" in only else ""))

    row("1: %d sessions, RETR 1 KiB" % a.w1, "p50 ms / session", "1", "p50")
    row("", "p99 ms / session", "1", "p99")
    row("", "sessions ≥ 40 ms (in 40–60 ms)", "1", "ge40", digits=0)
    row("2: one session, %d × RETR 1 MiB" % a.w2, "p50 ms / RETR", "2", "p50")
    row("", "p99 ms / RETR", "2", "p99")
    row("", "RETRs ≥ 40 ms (in 40–60 ms)", "2", "ge40", digits=0)
    row("3: one session, %d × RETR 20 MiB" % a.w3, "MiB/s", "3", "mibs", True, 1)
    L.append("| | peak RSS growth KiB | | %s | %s | | | |" % (
        kib(an.get("3", "growth", "pop3filter")), kib(an.get("3", "growth", "pop3filter -t cat"))))
    row("4: 16 parallel, RETR 1 MiB, %d sessions or %s s" % (a.w4, b.extra.get("w4_cap_s", a.w4_secs)),
        "sessions/s", "4", "sps", True, 1)
    row("", "MiB/s", "4", "mibs", True, 1)
    row("", "p50 ms / session", "4", "p50", False, 1)
    L.append("| 6: relay CPU per GiB (w3 + w4) | CPU s / GiB | | %s |" % " | ".join(
        fmt(an.get("6", "cpu", t)) if t not in b.unavailable else "n/a" for t in RELAYS) + " %s |" % vs_nginx(an, "6", "cpu"))
    L.append("| | w3 only (streaming 20 MiB) | | %s |" % " | ".join(
        fmt(an.get("6", "cpu3", t)) if t not in b.unavailable else "n/a" for t in RELAYS) + " %s |" % vs_nginx(an, "6", "cpu3"))
    L.append("| | w4 only (1 MiB sessions) | | %s |" % " | ".join(
        fmt(an.get("6", "cpu4", t)) if t not in b.unavailable else "n/a" for t in RELAYS) + " %s |" % vs_nginx(an, "6", "cpu4"))
    L.append("")
    h = b.extra.get("hold")
    if h:
        L.append("Workload 5 (pop3filter only, fresh daemon, default %d KiB buffers): %d sessions requested, "
                 "**%s held** after the greeting (opened in %s s), **%s answered CAPA and QUIT** afterwards; "
                 "RSS idle %s KiB, with the sessions held %s KiB: **%s bytes per session** "
                 "(limit 2 × %d + 4096 = %d). Descriptors: the daemon had %s open, limit %s."
                 % (BUFFER // 1024, h["requested"], h.get("held"), h.get("open_s"), h.get("answered"),
                    kib(h.get("rss_idle")), kib(h.get("rss_held")), fmt(h.get("per_session"), 0),
                    BUFFER, 2 * BUFFER + 4096, h.get("daemon_fds"), h.get("daemon_nofile")))
        hold_limits(h, L)
    sp, sp1 = b.extra.get("spawn", {}), b.extra.get("spawn_1mib", {})
    L.append("Filter cost, measured alone (`/bin/sh -c cat` spawned, stdin closed at once, waited for): "
             "p50 %s ms; with the 1 MiB message piped through it: p50 %s ms." % (
                 fmt(sp.get("lat_p50_ms")), fmt(sp1.get("lat_p50_ms"))))
    L.append("")


def hold_limits(h, L):
    """The descriptor-limit and first-error lines under a workload 5 / T5 paragraph."""
    if h.get("daemon_nofile") and h["daemon_nofile"] < 2 * h["requested"] + 64:
        L.append("")
        L.append("**Environment limit:** the hard RLIMIT_NOFILE here is %d and cannot be raised (no "
                 "CAP_SYS_RESOURCE); pop3filter needs two descriptors per session (client and origin), "
                 "so at most about %d sessions fit. On a machine where root may raise the limit, the "
                 "harness raises it to 65536." % (h["daemon_nofile"], (h["daemon_nofile"] - 16) // 2))
    errs = [("opening", h.get("open_first_error")), ("CAPA/QUIT", h.get("answer_first_error"))]
    errs = ["%s: `%s`" % (k, v) for k, v in errs if v]
    if errs:
        L.append("")
        L.append("First errors: " + "; ".join(errs) + ".")
    L.append("")


def ms(v, digits=2):
    return "—" if v is None else "%.*f" % (digits, v * 1e3)


def what_it_writes(sa, tool):
    """What a standalone censor made of the 1 MiB message, in words, from describe_output."""
    def facts(case):
        return sa.get("small", {}).get("%s|%s" % (tool, case), {})
    fa, fb = facts("a"), facts("b")
    if not fa.get("output") or not fb.get("output"):
        return "—"
    if fa.get("identical"):
        ta = "(a) the input, byte for byte"
    else:
        ta = "(a) changed: %s" % (", ".join(
            ([] if fa.get("crlf_kept") else ["CRLF → LF"]) + ([] if fa.get("png_kept") else ["the PNG gone"]))
            or "%d octets" % fa["output"])
    tb = "(b) " + ("the part kept" if fb.get("cd_kept") else "the part removed")
    tb += ", a note in its place" if fb.get("note") else ", no note"
    if not fb.get("close_delimiter"):
        tb += ", the close delimiter lost"
    if not fb.get("crlf_kept"):
        tb += ", CRLF → LF"
    return "%s; %s" % (ta, tb)


def markdown_censor(an, L):
    b = an.b
    a = b.args
    sa = b.extra.get("standalone", {})
    gone = sa.get("unavailable", {})
    L.append("Standalone: each tool reads a %s-octet message (a multipart/mixed: a text part, a 70-octet "
             "image/png, an application/x-cd-image part of %d MiB in base64, a closing text part; CRLF line "
             "ends) from a file in the page cache and writes to /dev/null. (a) a censor list that matches "
             "nothing in it (`video/*`; altermime `--remove='video/.*'`), (b) the big part censored "
             "(`application/x-cd-image`). Wall time: the median of %d runs for cat and stripmime (%d per "
             "round), of %d for the others, with the CPU time (user + system) of the same runs; peak RSS from one run under GNU time (`%%M`); the last two "
             "columns on a 1 MiB message of the same shape." % (sa.get("size", "?"), a.big_mib, a.rounds * a.fast_reps,
                                              a.fast_reps, a.rounds))
    L.append("")
    L.append("| tool | (a) wall ms (CPU ms) | (a) peak RSS KiB | (b) wall ms (CPU ms) | (b) peak RSS KiB | "
             "÷ stripmime (a) / (b) | "
             "peak RSS KiB, 1 MiB (a) / (b) | what it writes (1 MiB message) |")
    L.append("|---|---|---|---|---|---|---|---|")
    cmd = {"cat": "`cat`", "stripmime": "`stripmime` (FILTER_MEDIAS)",
           "altermime": "`altermime --input=- --remove=REGEX`", "python email": "`bench/py_strip.py`"}
    for tool in TOOLS:
        if tool in gone:
            L.append("| %s | n/a: %s | | | | | | |" % (cmd[tool], gone[tool]))
            continue
        cells = []
        for case in CASES:
            w = "C" + case
            cells += ["%s (%s)" % (ms(an.get(w, "wall", tool), 1), ms(an.get(w, "cpu", tool), 0)),
                      kib_(an.get(w, "rss", tool))]
        ratios = []
        for case in CASES:
            t, sm = an.get("C" + case, "wall", tool), an.get("C" + case, "wall", "stripmime")
            ratios.append("%.2f×" % (t / sm) if t and sm else "—")
        small = " / ".join(kib_(an.get("C" + case, "rss_small", tool)) for case in CASES)
        L.append("| %s | %s | %s | %s | %s |" % (cmd[tool], " | ".join(cells), " / ".join(ratios), small,
                                               what_it_writes(sa, tool)))
    L.append("")
    chk = sa.get("checks", {})
    if chk:
        L.append("stripmime on the %d MiB message: (a) output identical to the input: %s; (b) output the same "
                 "as for the 1 MiB message: %s." % (a.big_mib, "yes" if chk.get("a") else "**no**",
                                                    "yes" if chk.get("b") else "**no**"))
        L.append("")
    L.append("In the daemon: `pop3filter -M 'image/*'` (no part of the bench messages is an image: the output "
             "is byte-identical, and checked) beside the plain relay, interleaved RETR by RETR in one loadgen "
             "run per round as in workloads 2 and 3.")
    L.append("")
    L.append("| workload | metric | `direct` | `pop3filter` | `pop3filter -M 'image/*'` | -M ÷ pop3filter |")
    L.append("|---|---|---|---|---|---|")

    def mrow(wl, ml, w, metric, hib=False, digits=2):
        cells = [cell(an, w, metric, t, hib, digits) for t in M_TARGETS]
        x, y = an.get(w, metric, "pop3filter-ref"), an.get(w, metric, "pop3filter-M")
        L.append("| %s | %s | %s | %s |" % (wl, ml, " | ".join(cells), "%.3f×" % (y / x) if x and y else "—"))

    mrow("M2: one session, %d × RETR 1 MiB" % a.m2, "p50 ms / RETR", "M2", "p50")
    mrow("", "p99 ms / RETR", "M2", "p99")
    mrow("M3: one session, %d × RETR 20 MiB" % a.m3, "MiB/s", "M3", "mibs", True, 1)
    L.append("| | peak RSS growth KiB | | %s | %s | |" % (kib(an.get("M3", "growth", "pop3filter-ref")),
                                                         kib(an.get("M3", "growth", "pop3filter-M"))))
    x, y = an.get("M3", "cpu", "pop3filter-ref"), an.get("M3", "cpu", "pop3filter-M")
    L.append("| | relay CPU s / GiB | | %s | %s | %s |" % (fmt(x), fmt(y), "%.2f×" % (y / x) if x and y else "—"))
    L.append("")
    L.append("Spawning: one session per target, %d × RETR of the 1 KiB message, interleaved RETR by RETR. "
             "`-t cat` has no shell syntax, so pop3filter runs `cat` itself; the `#` of `-t 'cat #'` makes "
             "it run `/bin/sh -c 'cat #'`." % a.sp)
    L.append("")
    L.append("| RETR 1 KiB | %s |" % " | ".join("`%s`" % CENSOR_LABEL[t] for t in SP_TARGETS))
    L.append("|---|---|---|---|")
    for k in ("p50", "p99", "min"):
        L.append("| %s ms / RETR | %s |" % (k, " | ".join(fmt(an.get("SP", k, t)) for t in SP_TARGETS)))
    p0, pd, ps = (an.get("SP", "p50", t) for t in SP_TARGETS)
    m0, md, mss = (an.get("SP", "min", t) for t in SP_TARGETS)
    if None not in (p0, pd, ps, m0, md, mss):
        L.append("")
        L.append("Running the command directly saves **%.2f ms per RETR** at p50 (%.0f %% of the shell's "
                 "%.2f ms); the filter adds %.2f ms to a plain RETR run directly, %.2f ms through the shell. "
                 "Between the fastest RETRs, which the machine's other work touches least: %.2f ms saved."
                 % (ps - pd, (ps - pd) / ps * 100, ps, pd - p0, ps - p0, mss - md))
    L.append("")


def markdown_storm(an, L):
    b = an.b
    a = b.args
    L.append("The storm: %d sessions log in; then, all at once, each sends 5 × `RETR 1` (the 1 KiB message) "
             "in one write and reads the replies (each checked); the storm is over at the last reply, and "
             "%d storms run one after the other, 0.2 s apart. One more session, logged in before, sends a "
             "NOOP every %g ms from each storm's start for as long as that storm lasts, each timed from "
             "sending it to its reply (a late one goes at once, so where NOOPs take longer than the step "
             "fewer are sent): the NOOP p50/p99/max are over every NOOP sent under a storm, none in the "
             "quiet after it, so a target that gets through the same storm faster is judged on fewer "
             "samples, not on idle time. The control: a third session sends the same NOOPs, half a step "
             "later, straight to Dovecot, which the storm loads only through the machine they share (what "
             "the proxy adds is roughly the difference). With `-t cat` (at most `--max-filters` at once, "
             "default %s) and without `-t`, one at a time, %d rounds."
             % (a.storm, a.storms, a.storm_interval, b.extra.get("max_filters_default", "?"), a.rounds))
    L.append("")
    L.append("| storm | `pop3filter` (no -t) | `pop3filter -t cat` | -t ÷ no -t |")
    L.append("|---|---|---|---|")
    for label, k, d in (("NOOPs sent under a storm", "samples", 0),
                        ("… their p50 ms", "p50", 2), ("… their p99 ms", "p99", 2), ("… their max ms", "max", 1),
                        ("control, the same NOOPs straight to Dovecot", "ctl_samples", 0),
                        ("… p50 ms", "ctl_p50", 2), ("… p99 ms", "ctl_p99", 2), ("… max ms", "ctl_max", 1),
                        ("a storm, release to the last reply: median ms", "storm_ms", 0),
                        ("… the longest, ms", "storm_ms_max", 0),
                        ("RETRs checked, all storms", "retrs", 0), ("… per second of storm", "retrs_s", 0),
                        ("logging in the sessions took, s", "open_s", 2)):
        x, y = an.get("ST", k, "pop3filter-ref"), an.get("ST", k, "pop3filter-tcat")
        r = "%.2f×" % (y / x) if x and y is not None and k in (
            "p50", "p99", "max", "ctl_p99", "retrs_s", "storm_ms") else ""
        L.append("| %s | %s | %s | %s |" % (label, fmt(x, d) if d else whole(x), fmt(y, d) if d else whole(y), r))
    L.append("")


def kib_(v):
    return "—" if v is None else "%d" % v


def notes_censor(an, L):
    b = an.b
    sa = b.extra.get("standalone", {})
    if b.storm_only:
        L.append("- Of the censor part only the storm was run (`--only storm`).")
    else:
        notes_standalone(sa, L)
    L.append("- The censor part's daemons: `pop3filter [-M 'image/*' | -t cat | -t 'cat #'] -l 127.0.0.1 -p PORT "
             "-P ORIGIN -o MGMTPORT -u bench:bench 127.0.0.1`; M3's peak RSS and CPU as in workload 3.")
    L.append("- The storm's NOOPs go on a fixed %g ms schedule; one that comes due while the previous is "
             "still waiting goes as soon as that one is answered, so a stall shows in several samples, not one."
             % b.args.storm_interval)


def notes_standalone(sa, L):
    L.append("- Censor part: run first, before the plain part, against the same Dovecot. Standalone wall "
             "times: each tool spawned straight from the harness (posix_spawn, stdin the file, stdout "
             "/dev/null), from the spawn to its exit, its start included (cat with an empty input: %s ms); "
             "the tools in turn, the order rotating from round to round. Peak RSS: one more run of each "
             "under `/usr/bin/time -f %%M` (a child's peak counts what its parent had when it exec'd, so "
             "none below GNU time's own, about 1.6 MiB: cat's figure). `bench/py_strip.py` is the ~20-line "
             "Python `email` censor (message_from_binary_file, parts of a matching type replaced by a "
             "text/plain note, BytesGenerator)." % ms(sa.get("spawn_overhead_s")))


def vs_nginx_tls(an, w, metric):
    if metric == "ge40":
        return ""
    a, b = an.get(w, metric, "pop3filter tls"), an.get(w, metric, "nginx tls")
    return "%.2f×" % (a / b) if a is not None and b else "—"


def markdown_tls(an, L):
    b = an.b
    a = b.args
    L.append("## TLS")
    L.append("")
    L.append("Clients speak implicit TLS (POP3S) to `pop3filter` (its `--pop3s-port` listener), to `nginx` "
             "(`listen … ssl` in its mail server block) and to `Dovecot POP3S` (the origin's own POP3S "
             "listener); the two relays reach the same Dovecot in cleartext. `direct (cleartext)` is the "
             "plain reference, no TLS anywhere. One throw-away certificate (RSA 2048, scripts/make-certs.sh) "
             "for all three; the load generator verifies it and resumes no session (every session is a "
             "full handshake).")
    L.append("")
    hdr = "| workload | metric | " + " | ".join("`%s`" % TLS_LABEL[t] for t in TLS_TARGETS) + " | pop3filter ÷ nginx |"
    L.append(hdr)
    L.append("|" + "---|" * (len(TLS_TARGETS) + 3))

    def row(wlabel, mlabel, w, metric, hib=False, digits=2, relays_only=False):
        cells = []
        for t in TLS_TARGETS:
            if relays_only and t == "direct":
                cells.append("")
            elif relays_only:
                v = an.get(w, metric, t)
                cells.append("n/a" if v is None and t in b.unavailable else fmt(v, digits))
            else:
                cells.append(cell(an, w, metric, t, hib, digits))
        L.append("| %s | %s | %s | %s |" % (wlabel, mlabel, " | ".join(cells), vs_nginx_tls(an, w, metric)))

    row("T2: one TLS session, %d × RETR 1 MiB" % a.t2, "p50 ms / RETR", "T2", "p50")
    row("", "p99 ms / RETR", "T2", "p99")
    row("", "RETRs ≥ 40 ms (in 40–60 ms)", "T2", "ge40", digits=0)
    row("T3: one TLS session, %d × RETR 20 MiB" % a.t3, "MiB/s", "T3", "mibs", True, 1)
    L.append("| | peak RSS growth KiB | | %s | | | |" % kib(an.get("T3", "growth", "pop3filter tls")))
    row("T4: 16 parallel, new TLS sessions with RETR 1 KiB, %d sessions or %s s"
        % (a.t4, b.extra.get("t4_cap_s", a.t4_secs)), "sessions/s", "T4", "sps", True, 1)
    row("", "p50 ms / session", "T4", "p50", False, 1)
    row("", "p99 ms / session", "T4", "p99", False, 1)
    row("", "CPU ms / session", "T4", "cpu_ms", False, 2, relays_only=True)
    row("T6: CPU per GiB (T2 + T3)", "CPU s / GiB", "T6", "cpu", False, 2, relays_only=True)
    row("", "T2 only (1 MiB RETRs)", "T6", "cpu2", False, 2, relays_only=True)
    row("", "T3 only (20 MiB RETRs)", "T6", "cpu3", False, 2, relays_only=True)
    L.append("")
    h = b.extra.get("hold_tls")
    if h:
        L.append("T5 (pop3filter only, fresh daemon, default %d KiB buffers): %d TLS sessions requested, "
                 "**%s held** after the handshake and the greeting (opened in %s s), **%s answered CAPA and "
                 "QUIT** afterwards; RSS idle %s KiB, with the sessions held %s KiB: **%s KiB per idle TLS "
                 "session** (target: under 64 KiB). Descriptors: the daemon had %s open, limit %s."
                 % (BUFFER // 1024, h["requested"], h.get("held"), h.get("open_s"), h.get("answered"),
                    kib(h.get("rss_idle")), kib(h.get("rss_held")),
                    fmt(h["per_session"] / 1024, 1) if h.get("per_session") is not None else "—",
                    h.get("daemon_fds"), h.get("daemon_nofile")))
        hold_limits(h, L)
    seen = ["`%s`: %s" % (TLS_LABEL[t], ", ".join(an.negotiated(t)) or "—") for t in TLS_RELAYS]
    L.append("Negotiated (as the load generator saw it): " + "; ".join(seen) + ".")
    L.append("")


def notes_plain(an, L):
    b = an.b
    a = b.args
    L.append("- Workloads 1–3: one loadgen run per round covers every target, alternating session by "
             "session (w1) or RETR by RETR (w2, w3: one session per target), every cycle in a new "
             "shuffled order; workload 4 runs one target at a time, the order rotating from round to round.")
    L.append("- Latency: workload 1 from before `connect` to the QUIT reply; workload 2 from sending RETR to "
             "the final `.`. Workload 2 runs its 200 RETRs in one session per target. Throughput uses the message octets "
             "(CRLF form: 1 KiB = %d, 1 MiB = %d, 20 MiB = %d octets)." % (b.size[1], b.size[2], b.size[3]))
    L.append("- 40 ms mode: a Nagle / delayed-ACK stall adds about 40 ms to a session or RETR that "
             "usually takes a few ms, so the check counts the samples that took 40–60 ms; slower outliers "
             "(stalls of the shared machine, seen in `direct` too) are in the ≥ 40 ms count only.")
    L.append("- Peak RSS growth: VmHWM after the workload minus VmRSS before it, VmHWM reset first "
             "(`/proc/PID/clear_refs` = 5).")
    L.append("- CPU: utime + stime + cutime + cstime of the relay's process tree from /proc (socat's and "
             "pop3filter's children are reaped, so they land in cutime; nginx: master + workers, "
             "`worker_processes auto`), per GiB the client received. The nginx auth_http endpoint "
             "(Python) is not counted: %s CPU s over the whole run." % fmt(b.extra.get("auth_cpu_s")))
    L.append("- Peers: `socat TCP-LISTEN:PORT,nodelay,fork,reuseaddr,backlog=1024 TCP:127.0.0.1:ORIGIN,nodelay` "
             "(the backlog raised from socat's 5, which stalls parallel connects for a SYN-ACK retransmit); "
             "nginx from bench/nginx.conf.in (`pop3_auth plain`, auth_http answered by bench/nginx-auth.py). "
             "pop3filter: `-l 127.0.0.1 -p PORT -P ORIGIN -o MGMTPORT -u bench:bench 127.0.0.1`, release build, "
             "access log at the default level to a file.")
    cap = b.extra.get("w4_cap_s")
    w4runs = [r for t in TARGETS for r in an.runs("4", t)]
    capped = sum(1 for r in w4runs if (r.get("ok") or 0) + (r.get("errors") or 0) < a.w4)
    if cap is not None and cap < a.w4_secs:
        L.append("- Workload 4's time cap was %.1f s per run instead of %d s, to keep the run within its "
                 "budget (%d s); %d of %d runs reached it before %d sessions. Rates are per wall second "
                 "either way." % (cap, a.w4_secs, a.budget, capped, len(w4runs), a.w4))
    elif capped:
        L.append("- Workload 4: %d of %d runs reached the %d s cap before %d sessions." % (
            capped, len(w4runs), a.w4_secs, a.w4))


def notes_tls(an, L):
    b = an.b
    a = b.args
    L.append("- TLS part: run after the plain part (its relays stopped by then), the same way: T2 and T3 one "
             "loadgen run per round over every TLS target, RETR by RETR in a new shuffled order each cycle "
             "(one TLS session per target); T4 one target at a time, the order rotating. T4's session time "
             "runs from before `connect` (TCP and TLS handshakes included) to the QUIT reply.")
    L.append("- TLS targets: pop3filter `-l 127.0.0.1 -p PLAIN --tls-cert cert.pem --tls-key key.pem "
             "--pop3s-port PORT -P ORIGIN -o MGMTPORT -u bench:bench 127.0.0.1` (rustls defaults: TLS 1.2 "
             "and 1.3); nginx: a second instance from bench/nginx.conf.in with `listen 127.0.0.1:PORT ssl`, "
             "`ssl_certificate`, `ssl_certificate_key`, `ssl_protocols TLSv1.2 TLSv1.3` (nginx 1.22 leaves "
             "TLSv1.3 out of its default), its TLS defaults otherwise; Dovecot: the origin "
             "itself with `ssl = yes`, `ssl_cert`, `ssl_key` and an `inet_listener pop3s` "
             "(bench/dovecot.sh), its TLS defaults otherwise.")
    L.append("- TLS CPU: pop3filter and nginx as in workload 6 (the relay's process tree). Dovecot POP3S: "
             "its pop3-login processes only, which terminate the TLS and proxy the cleartext to the pop3 "
             "process (in high-performance mode, as configured); the pop3 process's work is the origin's, "
             "uncounted for every target. In T4 Dovecot's figure also holds the login handling that the "
             "relays leave to the origin. Octets: the plaintext the client received.")
    cap = b.extra.get("t4_cap_s")
    runs = [r for t in TLS_TARGETS for r in an.runs("T4", t)]
    capped = sum(1 for r in runs if (r.get("ok") or 0) + (r.get("errors") or 0) < a.t4)
    if cap is not None and cap < a.t4_secs:
        L.append("- T4's time cap was %.1f s per run instead of %d s, to keep the run within its budget "
                 "(%d s); %d of %d runs reached it before %d sessions. Rates are per wall second either way."
                 % (cap, a.t4_secs, a.budget, capped, len(runs), a.t4))
    elif capped:
        L.append("- T4: %d of %d runs reached the %d s cap before %d sessions; rates are per wall second."
                 % (capped, len(runs), a.t4_secs, a.t4))


def kib(v):
    return "—" if v is None else "%.0f" % (v / 1024)


def svg(an):
    groups = [("1k", "1 KiB (whole session)"), ("1m", "1 MiB (RETR)"), ("20m", "20 MiB (RETR)"),
              ("1mx16", "1 MiB × 16 parallel")]
    colors = {"direct": "#4d4d4d", "pop3filter": "#1f77b4", "pop3filter -t cat": "#6baed6",
              "socat": "#2ca02c", "nginx": "#d62728"}
    W, H = 900, 460
    left, right, top, bottom = 70, 20, 60, 110
    ph = H - top - bottom
    gw = (W - left - right) / len(groups)
    bw = gw * 0.8 / len(TARGETS)
    ratios = [an.ratio("tp", g, t) for g, _ in groups for t in TARGETS]
    ymax = max([1.2] + [r * 1.1 for r in ratios if r is not None])
    ymax = (int(ymax * 5) + 1) / 5.0

    def y(v):
        return top + ph - v / ymax * ph

    o = []
    o.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
             'font-family="sans-serif" font-size="12">' % (W, H, W, H))
    o.append('<rect width="100%" height="100%" fill="white"/>')
    m = an.meta
    o.append('<text x="%d" y="22" font-size="16" font-weight="bold">Throughput by message size, relative to direct '
             '(labels: MiB/s)</text>' % left)
    o.append('<text x="%d" y="40" fill="#555">%s · %d cores · kernel %s · commit %s%s · median of %d rounds</text>'
             % (left, html.escape(m["date"]), m["cores"], html.escape(m["kernel"]), m["commit"],
                "+" if m["dirty"] else "", m["rounds"]))
    step = 0.2 if ymax <= 1.6 else 0.5
    v = 0.0
    while v <= ymax + 1e-9:
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>' % (
            left, W - right, y(v), y(v), "#999" if abs(v - 1) < 1e-9 else "#e5e5e5"))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%.0f %%</text>' % (left - 6, y(v) + 4, v * 100))
        v += step
    for gi, (g, label) in enumerate(groups):
        x0 = left + gi * gw + gw * 0.1
        for ti, t in enumerate(TARGETS):
            r = an.ratio("tp", g, t)
            x = x0 + ti * bw
            if r is None:
                o.append('<text x="%.1f" y="%.1f" text-anchor="middle" fill="#999" font-size="10">n/a</text>'
                         % (x + bw / 2, y(0) - 4))
                continue
            o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %.2f MiB/s '
                     '(%.0f %% of direct)</title></rect>' % (x + 1, y(r), bw - 2, y(0) - y(r), colors[t],
                                                             html.escape(t), html.escape(label),
                                                             an.get("tp", g, t), r * 100))
            o.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%s</text>' % (
                x + bw / 2, y(r) - 3, fmt(an.get("tp", g, t), 1)))
        o.append('<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>' % (left + gi * gw + gw / 2, y(0) + 18,
                                                                              html.escape(label)))
    lx = left
    for t in TARGETS:
        o.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, H - 62, colors[t]))
        name = t + (" (n/a)" if t in an.b.unavailable else "")
        o.append('<text x="%d" y="%d">%s</text>' % (lx + 16, H - 52, html.escape(name)))
        lx += 30 + 7 * len(name)
    o.append('<text x="%d" y="%d" fill="#555" font-size="11">1 KiB: message octets per p50 session time '
             '(workload 1, login included) · 1 MiB: per p50 RETR time (workload 2)</text>' % (left, H - 20))
    o.append('<text x="%d" y="%d" fill="#555" font-size="11">20 MiB: over 5 RETRs (workload 3) · '
             '1 MiB × 16: aggregate of 16 parallel clients (workload 4)</text>' % (left, H - 6))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def console_table(an):
    rows = [("w1 p50 ms", "1", "p50"), ("w1 p99 ms", "1", "p99"), ("w2 p50 ms", "2", "p50"),
            ("w2 p99 ms", "2", "p99"), ("w3 MiB/s", "3", "mibs"), ("w4 sessions/s", "4", "sps"),
            ("w4 MiB/s", "4", "mibs"), ("w6 CPU s/GiB", "6", "cpu")]
    width = 22
    out = ["%-14s" % "" + "".join("%*s" % (width, t) for t in TARGETS)]
    for label, w, metric in rows:
        line = "%-14s" % label
        for t in TARGETS:
            if w == "6":
                v = an.get(w, metric, t)
                text = "" if t == "direct" else ("n/a" if v is None else fmt(v))
            else:
                text = cell(an, w, metric, t)
            line += "%*s" % (width, text)
        out.append(line)
    return "\n".join(out)


def console_table_tls(an):
    rows = [("T2 p50 ms", "T2", "p50"), ("T2 p99 ms", "T2", "p99"), ("T3 MiB/s", "T3", "mibs"),
            ("T4 sessions/s", "T4", "sps"), ("T4 CPU ms/sess", "T4", "cpu_ms"), ("T6 CPU s/GiB", "T6", "cpu")]
    width = 22
    out = ["%-15s" % "TLS" + "".join("%*s" % (width, TLS_LABEL[t]) for t in TLS_TARGETS)]
    for label, w, metric in rows:
        line = "%-15s" % label
        for t in TLS_TARGETS:
            if metric in ("cpu", "cpu_ms"):
                v = an.get(w, metric, t)
                text = "" if t == "direct" else ("n/a" if v is None else fmt(v))
            else:
                text = cell(an, w, metric, t)
            line += "%*s" % (width, text)
        out.append(line)
    h = an.b.extra.get("hold_tls")
    if h and h.get("per_session") is not None:
        out.append("T5: %s of %d TLS sessions held, %.1f KiB per idle TLS session" % (
            h.get("held"), h["requested"], h["per_session"] / 1024))
    return "\n".join(out)


def console_table_censor(an):
    out = []
    if not an.b.storm_only:
        console_censor(an, out)
    out.append("%-22s%16s%16s" % ("storm × %d" % an.b.args.storms, "no -t", "-t cat"))
    for k in ("p50", "p99", "max"):
        out.append("%-22s" % ("ST NOOP %s ms" % k) + "".join("%16s" % fmt(an.get("ST", k, t)) for t in ST_TARGETS))
    for label, k in (("ST NOOPs", "samples"), ("ST storm median ms", "storm_ms")):
        out.append("%-22s" % label + "".join("%16s" % whole(an.get("ST", k, t)) for t in ST_TARGETS))
    return "\n".join(out)


def console_censor(an, out):
    out.append("%-22s%14s%14s%14s%14s" % ("standalone ms / KiB", "cat", "stripmime", "altermime", "python email"))
    for case in CASES:
        w = "C" + case
        out.append("%-22s" % ("(%s) wall ms" % case) + "".join("%14s" % ms(an.get(w, "wall", t), 1) for t in TOOLS))
        out.append("%-22s" % ("(%s) peak RSS KiB" % case) + "".join("%14s" % kib_(an.get(w, "rss", t)) for t in TOOLS))
    out.append("")
    out.append("%-22s%16s%16s%16s" % ("", "direct", "pop3filter", "-M 'image/*'"))
    out.append("%-22s" % "M2 p50 ms / RETR" + "".join("%16s" % fmt(an.get("M2", "p50", t)) for t in M_TARGETS))
    out.append("%-22s" % "M3 MiB/s" + "".join("%16s" % fmt(an.get("M3", "mibs", t), 1) for t in M_TARGETS))
    out.append("%-22s%16s%16s%16s" % ("RETR 1 KiB", "no -t", "-t cat", "-t 'cat #'"))
    out.append("%-22s" % "SP p50 ms / RETR" + "".join("%16s" % fmt(an.get("SP", "p50", t)) for t in SP_TARGETS))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    p.add_argument("--quick", action="store_true", help="small workloads, to try the harness")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    p.add_argument("--no-hold", action="store_true", help="skip workloads 5 and T5")
    p.add_argument("--only", choices=("plain", "tls", "censor", "storm"),
                   help="run only the plain part (workloads 1-6), only the TLS part (T2-T6), only the "
                        "censor part (standalone censors, M2, M3, SP, ST) or only the storm (ST)")
    p.add_argument("--budget", type=int, default=int(os.environ.get("BENCH_BUDGET", "720")),
                   help="seconds this script may take; the time caps of workloads 4 and T4 shrink to fit (720)")
    a = p.parse_args()
    a.w1, a.w2, a.w3, a.w4, a.w4_secs, a.hold, a.spawn = 500, 200, 5, 2000, 30, HOLD, 200
    a.t2, a.t3, a.t4, a.t4_secs, a.t5 = 200, 5, 2000, 10, HOLD_TLS
    if a.quick:
        a.w1, a.w2, a.w3, a.w4, a.w4_secs, a.hold, a.spawn = 50, 20, 2, 100, 10, 1000, 20
        a.t2, a.t3, a.t4, a.t4_secs, a.t5 = 20, 2, 100, 5, 200
    a.big_mib, a.fast_reps, a.m2, a.m3, a.sp = 200, 3, 200, 5, 200
    # The storm: sessions, how many storms, one NOOP every so many ms.
    a.storm, a.storms, a.storm_interval = 300, 20, 2
    if a.quick:
        a.big_mib, a.fast_reps, a.m2, a.m3, a.sp = 20, 2, 20, 2, 20
        a.storm, a.storms = 50, 5
    if a.no_hold:
        a.hold = a.t5 = 0
    for path in (POP3FILTER, LOADGEN) + ((STRIPMIME,) if a.only in (None, "censor") else ()):
        if not os.access(path, os.X_OK):
            sys.exit("bench: %s is missing; run `cargo build --release --workspace` first" % path)
    # Descriptors for workload 5: as many as we may (children inherit the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
            break
        except (ValueError, OSError):
            continue
    bench = Bench(a)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        meta = bench.run()
    except KeyboardInterrupt:
        bench.procs.stop_all()
        sys.exit("bench: interrupted")
    an = Analysis(bench, meta)
    os.makedirs(a.out, exist_ok=True)
    md = markdown(an)
    with open(os.path.join(a.out, "latest.md"), "w") as f:
        f.write(md)
    if bench.plain:
        with open(os.path.join(a.out, "latest.svg"), "w") as f:
            f.write(svg(an))
    with open(os.path.join(a.out, "latest.json"), "w") as f:
        json.dump({"meta": meta, "args": vars(a), "sizes": bench.size, "unavailable": bench.unavailable,
                   "problems": bench.problems, "extra": bench.extra,
                   "runs": {"%s|%s" % k: v for k, v in bench.results.items()},
                   "checks": an.checks()}, f, indent=1, default=str)
    print()
    if bench.plain:
        print(console_table(an))
        print()
    if bench.tls:
        print(console_table_tls(an))
        print()
    if bench.censor:
        print(console_table_censor(an))
        print()
    for label, meas, lim, ok, margin in an.checks():
        print("%-6s %s: %s (limit %s; %s)" % ("n/a" if ok is None else ("PASS" if ok else "FAIL"), label, meas, lim, margin))
    print()
    print("bench: wrote %s/latest.md,%s latest.json (%d s)"
          % (os.path.relpath(a.out, os.getcwd()), " latest.svg," if bench.plain else "", meta["seconds"]))
    if bench.problems or os.environ.get("BENCH_KEEP"):
        print("bench: logs kept in %s" % bench.tmp)
    else:
        shutil.rmtree(bench.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
