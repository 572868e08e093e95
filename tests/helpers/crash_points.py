#!/usr/bin/env python3
"""crash_points: SIGKILL mailslot-smtpd or mailslot-relay at every system call
of a session, deterministically, and check what the crash leaves.

The kill comes from strace's fault injection:
    strace -e inject=NAME:signal=SIGKILL:when=N
delivers SIGKILL as the Nth call of NAME is entered; the kernel sees the
fatal signal before it runs the call, so the process dies exactly before
that call and the calls before it have all happened.  A clean run under
strace lists the calls of one session; then every call in the chosen
window (say, from the 354 reply to the 250) gets its own run, killed just
before it.  Each killed run's own trace names the call it died at, so a
label is never a guess even if the calls of two runs differ by a read.  A
run that never makes its call (it took another path) is checked all the
same and counted as "not reached"; more than a quarter of those fails.

  crash_points.py smtpd --smtpd BIN --relay BIN --work DIR
        [--scenario plain|quoted] [--window data|after-dot] [--report FILE]
    A TCP session (the handler gets the accepted socket as stdin/stdout,
    as under inetd) sends one message of about 150 KiB to alice and bob
    (mbox; alice already holds a message) and someone@remote.example
    (queued).  "quoted" puts "From " lines in the body, so the append goes
    through the mboxrd-quoting copy (pwrite) instead of copy_file_range.
    The window "data" starts at the 354 reply, "after-dot" after the last
    read of the message.  After each kill:
      1. right after the crash: if the client got 250, alice and bob each
         hold one whole copy and the queue holds the entry for the remote
         recipient (env/ names it, msg/ is the message byte for byte); any
         message in a mailbox is whole, except a last, partial one under a
         stale dotlock that records the append (repair pending); no env/
         without its msg/;
      2. the next delivery to alice and bob (a clean session, lock timeout
         2 s) gets 250, and then every mailbox holds only whole messages,
         the interrupted one at most once (exactly once after a 250), and
         no dotlock is left;
      3. leftovers in the queue (msg/ without env/, files in tmp/) are
         listed, then aged 25 hours and swept by a mailslot-relay run
         (entries made not due first, so nothing is delivered): no
         leftover may survive the sweep, and no entry may lose its msg/.

  crash_points.py sendmail --sendmail BIN --enqueue BIN --relay BIN --work DIR [--report FILE]
    The same message, recipients and checks, injected by mailslot-sendmail;
    the mailslot-enqueue it runs is killed at every call from its first
    read of the request (before it, nothing is written) to its exit, and
    exit status 0 counts as the 250.

  crash_points.py relay --smtpd-cmd CMD --relay-cmd CMD --queue DIR
        --remote-maildir DIR --rcpt ADDR [--report FILE]
    The handler CMD (terminal mode) queues one message for ADDR; the relay
    CMD runs the queue, killed at every call from its first write to the
    remote server to its exit; then a second relay run (not killed) must
    leave the queue empty, the remote Maildir must hold one or two whole
    copies (two: the kill came after the remote's 250 and before the entry
    was removed; at-least-once), never a partial one, and leftovers are
    swept as above.

Prints one line per kill point and a summary; exit 1 when any check
failed (each failure is printed with "VIOLATION").
"""
import argparse
import mailbox
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time

SENDER = "s@remote.example"
LOCAL_RCPTS = ["alice", "bob"]
REMOTE_RCPT = "someone@remote.example"
MSG_SIZE = 150 * 1024
TRACE_LINE = re.compile(r"^(?:(\d+) +)?([a-z_0-9]+)\((.*)$")


# ------------------------------------------------------------------ messages

def make_message(msg_id, quoted, size=MSG_SIZE):
    """Headers and body with LF line ends, deterministic from msg_id."""
    rng = random.Random(msg_id)
    head = ("From: <%s>\nTo: <alice@example.org>\nSubject: crash %s\nX-Crash-Id: %s\n"
            "Message-ID: <%s@crash.test>\n\n" % (SENDER, msg_id, msg_id, msg_id)).encode()
    lines = [b"Token " + msg_id.encode()]
    total = len(head) + len(lines[0])
    n = 0
    while total < size:
        n += 1
        k = rng.randrange(12)
        if k == 0:
            line = b"." * rng.randint(1, 3) + b" a line that needs dot-stuffing %d" % n
        elif k == 1:
            line = b""
        elif k == 2 and quoted:
            line = b">" * rng.randint(0, 2) + b"From line %d that mboxrd quotes" % n
        else:
            line = b"%d " % n + bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(rng.randint(10, 120)))
        lines.append(line)
        total += len(line) + 1
    return head + b"\n".join(lines) + b"\n"


def mboxrd_quote(data):
    return re.sub(rb"(?m)^(?=>*From )", b">", data)


def wire(data):
    """The message as SMTP sends it: CRLF, dot-stuffed, with the final dot."""
    crlf = data.replace(b"\n", b"\r\n")
    return re.sub(rb"(?m)^\.", b"..", crlf) + b".\r\n"


RECEIVED = re.compile(rb"Received: [^\n]*\n(?:\t[^\n]*\n)*")


def classify_stored(raw, rcpt, known):
    """What a stored message is: ("whole", id), ("partial", id or None)."""
    m = re.search(rb"^X-Crash-Id: (\S+)$", raw, re.M)
    msg_id = m.group(1).decode() if m else None
    if msg_id not in known:
        return "partial", msg_id
    prefix = b"Return-Path: <%s>\nDelivered-To: %s\n" % (SENDER.encode(), rcpt.encode())
    tail = known[msg_id]
    if not raw.startswith(prefix) or not raw.endswith(tail):
        return "partial", msg_id
    middle = raw[len(prefix):len(raw) - len(tail)]
    if not RECEIVED.fullmatch(middle):
        return "partial", msg_id
    return "whole", msg_id


# ------------------------------------------------------------------ strace

def strace_argv(trace, inject=None, follow=True):
    """follow=False traces the started process alone: mailslot-smtpd's
    monitor, which delivers, and not its session child (strace counts
    when=N per process, so a followed child would be killed at its own
    Nth call too).  -s 256 shows the privsep replies' text."""
    argv = ["strace", "-qq", "-y", "-s", "256", "-o", trace]
    if follow:
        argv.insert(1, "-f")
    if inject:
        argv += ["-e", "inject=%s:signal=SIGKILL:when=%d" % inject]
    return argv


def read_trace(path):
    """[(pid, name, rest)] of a trace, in order; unfinished/resumed lines
    of -f are rare here (one process), and are taken as they come."""
    calls = []
    with open(path, errors="replace") as f:
        for line in f:
            m = TRACE_LINE.match(line)
            if m:
                calls.append((int(m.group(1) or 0), m.group(2), m.group(3).rstrip("\n")))
    return calls


def kill_points(calls, start, end):
    """(name, N) for every call in calls[start:end], N counted per name."""
    seen = {}
    points = []
    for i, (_, name, rest) in enumerate(calls[:end]):
        seen[name] = seen.get(name, 0) + 1
        if i >= start and name not in ("exit_group", "exit"):
            points.append((name, seen[name], rest))
    return points


def killed_at(trace):
    """The last call in a killed run's trace, shortened for the report."""
    calls = read_trace(trace)
    if not calls:
        return "?"
    _, name, rest = calls[-1]
    rest = re.sub(r"\s+", " ", rest)
    return "%s(%s" % (name, rest[:90])


# ------------------------------------------------------------------ smtpd mode

class Smtpd:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.template = os.path.join(self.work, "template")
        self.cur = os.path.join(self.work, "cur")
        self.violations = []
        self.known = {}      # id -> the message as an mbox stores it after the Received: (quoted)
        self.plain = {}      # id -> the message as received (LF line ends)

    def handler_argv(self, root, lock_timeout=None):
        argv = [self.args.smtpd, "--spool", root + "/mail", "--queue", root + "/queue",
                "--users", root + "/users", "--aliases", root + "/aliases",
                "--domain", "example.org", "--hostname", "mx.test", "--user", self.args.user,
                "--log", "stderr", "--relay", "yes"]
        if lock_timeout:
            argv += ["--lock-timeout", str(lock_timeout)]
        return argv

    def session(self, root, msg_id, rcpts, prefix=None, lock_timeout=None):
        """One SMTP session over TCP; returns (last code or None, qid, step)."""
        data = make_message(msg_id, self.args.scenario == "quoted")
        self.known[msg_id] = mboxrd_quote(data)
        self.plain[msg_id] = data
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        c = socket.create_connection(ls.getsockname())
        s, _ = ls.accept()
        ls.close()
        log = open(os.path.join(self.work, "smtpd.log"), "ab")
        p = subprocess.Popen((prefix or []) + self.handler_argv(root, lock_timeout), stdin=s, stdout=s,
                             stderr=log, close_fds=True)
        s.close()
        c.settimeout(30)
        f = c.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if not line:
                    return None, b""
                if line[3:4] != b"-":
                    return int(line[:3]), line

        steps = [None, b"EHLO client.test\r\n", b"MAIL FROM:<%s>\r\n" % SENDER.encode()]
        steps += [b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts]
        steps += [b"DATA\r\n", wire(data)]
        code, qid, step = None, None, "greeting"
        try:
            for i, cmd in enumerate(steps):
                if cmd is not None:
                    c.sendall(cmd)
                    step = cmd.split(b" ")[0].split(b":")[0].strip().decode() if i < len(steps) - 1 else "dot"
                code, line = reply()
                if code is None:
                    break
                if i == len(steps) - 1:
                    m = re.match(rb"250 2\.0\.0 Ok: queued as (\w+)", line)
                    qid = m.group(1).decode() if m else None
            if code is not None:
                c.sendall(b"QUIT\r\n")
                reply()
        except OSError:
            code = None
        # the file object holds the socket too: close both, or the handler
        # waits out its linger time for our end of the connection
        f.close()
        c.close()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        return (code if step == "dot" else None), qid, step

    def prepare(self):
        """What the runs need besides the template (nothing here)."""

    def tracer(self, trace, inject=None):
        """The prefix that traces (and with inject kills) the process that delivers."""
        return strace_argv(trace, inject, follow=False)

    def window(self, calls):
        """(first, end, text): the kill points of a clean run's calls."""
        # the monitor's side of the session: requests arrive by recvfrom,
        # replies leave by sendmsg; the DATA reply carries the spool file
        sock_writes = [i for i, (_, n, r) in enumerate(calls) if n == "sendmsg"]
        reads = [i for i, (_, n, r) in enumerate(calls) if n == "recvfrom"]
        w354 = next(i for i in sock_writes if "SCM_RIGHTS" in calls[i][2])
        w250 = next(i for i in sock_writes if 'Ok: queued' in calls[i][2])
        last_read = max(i for i in reads if i < w250)
        start = w354 if self.args.window == "data" else last_read + 1
        # and a few calls past the 250: a kill after the reply must find
        # everything in place
        return (start, min(w250 + 4, len(calls)), "from %s to just after the 250 reply"
                % ("the 354 reply" if self.args.window == "data" else "the dot"))

    def build_template(self):
        shutil.rmtree(self.work, ignore_errors=True)
        self.prepare()
        for d in ("mail", "queue"):
            os.makedirs(os.path.join(self.template, d))
        with open(os.path.join(self.template, "users"), "w") as f:
            f.write("alice\nbob\n")
        open(os.path.join(self.template, "aliases"), "w").close()
        code, _, _ = self.session(self.template, "seed", ["alice@example.org"])
        if code != 250:
            sys.exit("crash_points: the seed delivery failed (%s); see %s/smtpd.log" % (code, self.work))

    def reset(self):
        shutil.rmtree(self.cur, ignore_errors=True)
        shutil.copytree(self.template, self.cur)

    def violation(self, label, text):
        self.violations.append("%s: %s" % (label, text))
        print("VIOLATION %s: %s" % (label, text), flush=True)

    def mbox_state(self, user):
        path = os.path.join(self.cur, "mail", user)
        if not os.path.exists(path):
            return []
        box = mailbox.mbox(path, create=False)
        out = []
        for key in box.keys():
            out.append(classify_stored(box.get_bytes(key), "%s@example.org" % user, self.known))
        box.close()
        return out

    def lock_record(self, user):
        """None without a dotlock, else (text, record, has_marker): the
        record of an append is the user.mailslot.append attribute, or the
        text "mailslot PID INODE START END" where attributes are missing."""
        lock = os.path.join(self.cur, "mail", user + ".lock")
        if not os.path.exists(lock):
            return None
        try:
            rec = os.getxattr(lock, "user.mailslot.append").decode()
        except OSError:
            rec = ""
        with open(lock, "rb") as f:
            text = f.read().decode("latin-1").strip()
        marker = bool(rec) or bool(re.fullmatch(r"mailslot \d+ \d+ \d+ \d+", text))
        return text, rec, marker

    def queue_state(self):
        q = os.path.join(self.cur, "queue")
        ls = {d: sorted(os.listdir(os.path.join(q, d))) if os.path.isdir(os.path.join(q, d)) else []
              for d in ("env", "msg", "tmp")}
        return ls

    def check_queue_entry(self, label, qid, msg_id):
        q = os.path.join(self.cur, "queue")
        try:
            env = open(os.path.join(q, "env", qid)).read()
            msg = open(os.path.join(q, "msg", qid), "rb").read()
        except OSError as e:
            self.violation(label, "entry %s not whole in the queue: %s" % (qid, e))
            return
        if not re.search(r"^rcpt \d+ \d+ - %s$" % re.escape(REMOTE_RCPT), env, re.M):
            self.violation(label, "entry %s does not name %s: %r" % (qid, REMOTE_RCPT, env))
        data = self.plain[msg_id]
        if not msg.endswith(data) or not RECEIVED.fullmatch(msg[:len(msg) - len(data)]):
            self.violation(label, "msg/%s is not the message as received" % qid)

    def run(self):
        a = self.args
        self.build_template()
        rcpts = ["alice@example.org", "bob@example.org", REMOTE_RCPT]
        # the clean run: which calls, in which order
        self.reset()
        trace = os.path.join(self.work, "clean.trace")
        code, _, _ = self.session(self.cur, "clean", rcpts, prefix=self.tracer(trace))
        if code != 250:
            sys.exit("crash_points: the clean run failed (%s)" % code)
        calls = read_trace(trace)
        start, end, text = self.window(calls)
        points = kill_points(calls, start, end)
        print("# %s: %d calls in the session, %d kill points %s" % (a.scenario, len(calls), len(points), text),
              flush=True)
        stats = {"250": 0, "no reply": 0, "partial pending repair": 0, "leftovers": 0,
                 "queued without 250": 0, "delivered without 250": 0}
        phases = {}
        missed = 0
        report = open(a.report, "a") if a.report else None
        for k, (name, n, _) in enumerate(points):
            label = "%s %s#%d" % (a.scenario, name, n)
            msg_id = "%s-%d" % (a.scenario, k)
            self.reset()
            ktrace = os.path.join(self.work, "kill.trace")
            code, qid, step = self.session(self.cur, msg_id, rcpts,
                                           prefix=self.tracer(ktrace, (name, n)))
            phase, where = self.phase(ktrace)
            with open(ktrace, errors="replace") as f:
                killed = "+++ killed by SIGKILL" in f.read()
            if not killed:
                # the run took another path (one read fewer, say) and never
                # made that call: it is checked all the same
                phase = "not-reached"
                missed += 1
            phases[phase] = phases.get(phase, 0) + 1
            stats["250" if code == 250 else "no reply"] += 1
            notes = self.check_crash(label, msg_id, code, qid, stats)
            notes += self.check_next(label, msg_id, code, k)
            notes += self.check_sweep(label, stats)
            line = "%-28s %-16s %-8s %s | %s" % (label, phase, code or "-", where, ", ".join(notes) or "clean")
            print(line, flush=True)
            if report:
                report.write(line + "\n")
        print("# %s: %d kill points; %s" % (a.scenario, len(points),
              ", ".join("%s %d" % kv for kv in sorted(phases.items()))), flush=True)
        print("# %s: %s" % (a.scenario, ", ".join("%s %d" % kv for kv in stats.items())), flush=True)
        if missed > len(points) // 4:
            self.violation(a.scenario, "%d of %d kill points were not reached: the runs differ too much"
                           % (missed, len(points)))
        print("# %s: %d violations" % (a.scenario, len(self.violations)), flush=True)
        return 1 if self.violations else 0

    @staticmethod
    def phase(trace):
        """A name for the kill point, from the killed run's own trace: the
        call it died at, and whether the handler had finished reading the
        message (txn_commit starts with an fstat of the spool file)."""
        calls = read_trace(trace)
        if not calls:
            return "?", "?"
        _, name, rest = calls[-1]
        where = "%s(%s" % (name, re.sub(r"\s+", " ", rest)[:90])
        first = rest.split(",")[0]
        after_354 = [i for i, (_, n, r) in enumerate(calls) if n == "sendmsg" and "SCM_RIGHTS" in r]
        if not after_354:
            return "before-DATA", where
        spool_fstat = [i for i, (_, n, r) in enumerate(calls)
                       if i > after_354[0] and n == "newfstatat" and "(deleted)" in r.split(",")[0]]
        if not spool_fstat:
            return "before-dot", where
        # a path, or (the handler works from the spool's descriptor) a
        # name looked up in it: openat(5</x/mail>, "alice.lock", ...)
        m = (re.search(r"/mail/\w+(\.lock)?[>\"]", rest[:300]) or
             re.search(r"/mail>, \"\w+(\.lock)?[\".]", rest[:300]))
        if m:
            return ("dotlock" if m.group(1) else "mbox-append"), where
        if name == "newfstatat" and "(deleted)" in first:
            return "after-dot", where
        if name == "pread64" and "(deleted)" in first:
            return "mbox-append", where   # reading the spool to quote it
        if "/queue/" in rest[:300]:
            return "queue-commit", where
        if name == "sendmsg" and "Ok: queued" in rest:
            return "250-reply", where
        if any(n == "sendmsg" and "Ok: queued" in r for _, n, r in calls[:-1]):
            return "after-250", where
        if name == "write" and first.startswith("2<"):
            return "log", where
        return "after-dot", where

    def check_crash(self, label, msg_id, code, qid, stats):
        notes = []
        for user in LOCAL_RCPTS:
            state = self.mbox_state(user)
            lock = self.lock_record(user)
            copies = [s for s in state if s == ("whole", msg_id)]
            for i, (kind, mid) in enumerate(state):
                if kind == "whole":
                    continue
                if i == len(state) - 1 and lock and lock[2]:
                    notes.append("%s: partial last message, repair pending" % user)
                    stats["partial pending repair"] += 1
                else:
                    self.violation(label, "%s holds a partial message %s (position %d of %d, lock %r)"
                                   % (user, mid, i + 1, len(state), lock))
            if ("whole", "seed") not in state and user == "alice":
                self.violation(label, "alice lost the message she had")
            if code == 250 and len(copies) != 1:
                self.violation(label, "%s has %d copies of a message answered 250" % (user, len(copies)))
            if code != 250 and copies:
                notes.append("%s has it without a 250" % user)
                stats["delivered without 250"] += 1
            if lock:
                notes.append("%s.lock left (text %r%s)" % (user, lock[0], ", record" if lock[1] else ""))
        q = self.queue_state()
        for qid_ in q["env"]:
            if qid_ not in q["msg"]:
                self.violation(label, "env/%s has no msg/: an entry that can never be delivered" % qid_)
        if code == 250:
            if not qid or qid not in q["env"]:
                self.violation(label, "answered 250 (%s) but no queue entry for %s" % (qid, REMOTE_RCPT))
            else:
                self.check_queue_entry(label, qid, msg_id)
        elif q["env"]:
            notes.append("queued without 250")
            stats["queued without 250"] += 1
        orphans = [m for m in q["msg"] if m not in q["env"]]
        if orphans or q["tmp"]:
            notes.append("leftovers msg/%s tmp/%s" % (",".join(orphans) or "-", ",".join(q["tmp"]) or "-"))
            stats["leftovers"] += 1
        return notes

    def check_next(self, label, msg_id, code, k):
        """The next delivery to both mailboxes repairs what the crash left."""
        after = "after-%s-%d" % (self.args.scenario, k)
        locks = {u: self.lock_record(u) for u in LOCAL_RCPTS}
        t0 = time.monotonic()
        c2, _, _ = self.session(self.cur, after, ["alice@example.org", "bob@example.org"], lock_timeout=2)
        took = time.monotonic() - t0
        notes = []
        if c2 != 250:
            self.violation(label, "the next delivery got %s after %.1f s (see smtpd.log)" % (c2, took))
        for user in LOCAL_RCPTS:
            state = self.mbox_state(user)
            bad = [s for s in state if s[0] != "whole"]
            if bad:
                self.violation(label, "%s still holds partial messages after the next delivery: %s" % (user, bad))
            n = state.count(("whole", msg_id))
            if n > 1 or (code == 250 and n != 1):
                self.violation(label, "%s holds %d copies of the interrupted message" % (user, n))
            if c2 == 250 and state.count(("whole", after)) != 1:
                why = ""
                if locks[user] is not None:
                    why = (" (deferred: the %s.lock the kill left, text %r, still blocks the mailbox after "
                           "%.1f s)" % (user, locks[user][0], took))
                self.violation(label, "the next message did not reach %s%s" % (user, why))
            elif os.path.exists(os.path.join(self.cur, "mail", user + ".lock")):
                self.violation(label, "%s.lock is still there after the next delivery" % user)
        return notes

    def check_sweep(self, label, stats):
        q = os.path.join(self.cur, "queue")
        return sweep_check(self, label, q, [self.args.relay, "--queue", q, "--user", self.args.user,
                                            "--log", "stderr", "--dns-server", "127.0.0.1:9"],
                           os.path.join(self.work, "relay.log"))


def sweep_check(ctx, label, q, relay_argv, log):
    """Age every file in msg/ and tmp/ by 25 hours, make every entry not due,
    run the relay: what is left must be whole entries only."""
    st = {d: sorted(os.listdir(os.path.join(q, d))) if os.path.isdir(os.path.join(q, d)) else []
          for d in ("env", "msg", "tmp")}
    if not [m for m in st["msg"] if m not in st["env"]] and not st["tmp"]:
        return []
    old = time.time() - 25 * 3600
    for d in ("msg", "tmp"):
        for name in st[d]:
            os.utime(os.path.join(q, d, name), (old, old))
    for name in st["env"]:
        p = os.path.join(q, "env", name)
        text = open(p).read()
        text = re.sub(r"(?m)^rcpt (\d+) \d+ ", r"rcpt \1 9999999999 ", text)
        with open(p, "w") as f:
            f.write(text)
    with open(log, "ab") as lf:
        rc = subprocess.run(relay_argv, stdout=lf, stderr=lf, timeout=60).returncode
    after = {d: sorted(os.listdir(os.path.join(q, d))) for d in ("env", "msg", "tmp")}
    if rc != 0:
        ctx.violation(label, "the sweeping relay run exited %d" % rc)
    left = [m for m in after["msg"] if m not in after["env"]] + ["tmp/" + t for t in after["tmp"]]
    if left:
        ctx.violation(label, "the relay's sweep left %s" % left)
    lost = [e for e in st["env"] if e in st["msg"] and e not in after["msg"]]
    if lost:
        ctx.violation(label, "the sweep removed the message of live entries %s" % lost)
    return ["swept"]


# ------------------------------------------------------------------ sendmail mode

class Sendmail(Smtpd):
    """The same message, recipients and checks as the smtpd mode, injected
    by mailslot-sendmail -i -f SENDER: the process killed is the
    mailslot-enqueue it runs (the one that writes anything), at every call
    from its first read of the request to its exit; exit status 0 stands
    for the 250.  The
    message carries Date: and Message-ID:, so that what is stored is the
    Received: field and the message as sent, as in the smtpd mode."""

    def prepare(self):
        self.bin = os.path.join(self.work, "bin")
        os.makedirs(self.bin)
        # mailslot-sendmail runs the mailslot-enqueue in its own directory:
        # here a script that runs the real one under strace when asked
        shutil.copy(self.args.sendmail, os.path.join(self.bin, "mailslot-sendmail"))
        wrapper = os.path.join(self.bin, "mailslot-enqueue")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\n[ -n "$CRASH_TRACE" ] || exec %s\n'
                    'exec strace -qq -y -s 256 -o "$CRASH_TRACE" $CRASH_INJECT %s\n'
                    % (shlex.quote(self.args.enqueue), shlex.quote(self.args.enqueue)))
        os.chmod(wrapper, 0o755)

    def tracer(self, trace, inject=None):
        env = {"CRASH_TRACE": trace, "CRASH_INJECT": ""}
        if inject:
            env["CRASH_INJECT"] = "-e inject=%s:signal=SIGKILL:when=%d" % inject
        return env

    def window(self, calls):
        # before its first read of the request it has only read its
        # configuration and changed its credentials: a kill there is the
        # same as one at that read
        first = next(i for i, (_, n, r) in enumerate(calls) if n == "read" and r.startswith("0<"))
        return first, len(calls), "from mailslot-enqueue's first read of the request to its exit"

    def session(self, root, msg_id, rcpts, prefix=None, lock_timeout=None):
        data = b"Date: Tue, 01 Dec 2026 12:00:00 +0000\n" + make_message(msg_id, False)
        self.known[msg_id] = mboxrd_quote(data)
        self.plain[msg_id] = data
        conf = os.path.join(root, "conf")
        with open(conf, "w") as f:
            f.write("spool = %s/mail\nqueue = %s/queue\nusers = %s/users\naliases = %s/aliases\n"
                    "domain = example.org\nhostname = mx.test\nuser = %s\nlog = stderr\n"
                    % (root, root, root, root, self.args.user))
            if lock_timeout:
                f.write("lock-timeout = %d\n" % lock_timeout)
        env = dict(os.environ, MAILSLOT_CONFIG=conf, **(prefix or {}))
        with open(os.path.join(self.work, "sendmail.log"), "ab") as log:
            rc = subprocess.run([os.path.join(self.bin, "mailslot-sendmail"), "-i", "-f", SENDER] + rcpts,
                                input=data, env=env, stdout=log, stderr=log, timeout=60).returncode
        if rc != 0:
            return None, None, "dot"
        # the entry that holds this message: its queue id
        q = os.path.join(root, "queue")
        qid = None
        for name in os.listdir(os.path.join(q, "env")) if os.path.isdir(os.path.join(q, "env")) else []:
            try:
                if b"X-Crash-Id: %s\n" % msg_id.encode() in open(os.path.join(q, "msg", name), "rb").read():
                    qid = name
            except OSError:
                pass
        return 250, qid, "dot"

    @staticmethod
    def phase(trace):
        """The kill point by what the call touches."""
        calls = read_trace(trace)
        if not calls:
            return "?", "?"
        _, name, rest = calls[-1]
        where = "%s(%s" % (name, re.sub(r"\s+", " ", rest)[:90])
        if re.search(r"/mail/\w+\.lock|/mail>, \"\w+\.lock", rest[:300]):
            return "dotlock", where
        if re.search(r"/mail/\w+[>\"]|/mail>, \"\w+\"", rest[:300]) or (name == "pread64" and "(deleted)" in rest):
            return "mbox-append", where
        if "/queue" in rest[:300]:
            return "queue", where
        if name == "read" and rest.startswith("0<"):
            return "request", where
        return "other", where


# ------------------------------------------------------------------ relay mode

class Relay:
    def __init__(self, args):
        self.args = args
        self.violations = []

    def violation(self, label, text):
        self.violations.append("%s: %s" % (label, text))
        print("VIOLATION %s: %s" % (label, text), flush=True)

    def submit(self, msg_id):
        data = make_message(msg_id, True, 40 * 1024)
        script = b"HELO client.test\nMAIL FROM:<alice@example.org>\nRCPT TO:<%s>\nDATA\n" % self.args.rcpt.encode()
        script += re.sub(rb"(?m)^\.", b"..", data) + b".\nQUIT\n"
        out = subprocess.run(shlex.split(self.args.smtpd_cmd), input=script, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=60).stdout
        m = re.search(rb"^250 2\.0\.0 Ok: queued as (\w+)", out, re.M)
        if not m:
            sys.exit("crash_points: the message was not queued: %r" % out)
        return m.group(1).decode(), data

    def remote_copies(self, label, msg_id, data):
        """Whole copies of msg_id in the remote Maildir; partial ones are violations."""
        n = 0
        new = os.path.join(self.args.remote_maildir, "new")
        tmpdir = os.path.join(self.args.remote_maildir, "tmp")
        # the remote handler may still be finishing the delivery the killed
        # relay started (tmp/ then new/): give it a moment to settle
        time.sleep(0.2)
        deadline = time.monotonic() + 10
        while os.path.isdir(tmpdir) and os.listdir(tmpdir) and time.monotonic() < deadline:
            time.sleep(0.05)
        box = mailbox.Maildir(self.args.remote_maildir, factory=None, create=False)
        for key in box.keys():
            raw = box.get_bytes(key)
            m = re.search(rb"^X-Crash-Id: (\S+)$", raw, re.M)
            if not m or m.group(1).decode() != msg_id:
                continue
            # the remote added Return-Path:, Delivered-To: and its Received:,
            # the sender's Received: came before the message
            if not raw.endswith(data) or not raw.startswith(b"Return-Path: <alice@example.org>\n"):
                self.violation(label, "the remote holds a partial or altered copy %s" % key)
                continue
            n += 1
        tmp = os.listdir(os.path.join(self.args.remote_maildir, "tmp")) if os.path.isdir(new) else []
        if tmp:
            self.violation(label, "the remote Maildir has files in tmp/: %s" % tmp)
        return n

    def relay(self, prefix=None):
        with open(self.args.log, "ab") as lf:
            return subprocess.run((prefix or []) + shlex.split(self.args.relay_cmd), stdout=lf, stderr=lf,
                                  timeout=120).returncode

    def run(self):
        a = self.args
        work = os.path.dirname(os.path.abspath(a.log))
        trace = os.path.join(work, "relay-clean.trace")
        _, data = self.submit("relay-clean")
        if self.relay(strace_argv(trace)) != 0:
            sys.exit("crash_points: the clean relay run failed; see %s" % a.log)
        calls = read_trace(trace)
        first = next(i for i, (_, n, r) in enumerate(calls) if n == "write" and "socket:" in r.split(",")[0]
                     and "EHLO" in r)
        points = kill_points(calls, first, len(calls))
        if self.remote_copies("clean", "relay-clean", data) != 1:
            sys.exit("crash_points: the clean relay run did not deliver one copy")
        print("# relay: %d calls in a run, %d kill points from the EHLO write to the exit" % (len(calls), len(points)),
              flush=True)
        tally = {1: 0, 2: 0}
        leftovers = missed = 0
        report = open(a.report, "a") if a.report else None
        for k, (name, n, _) in enumerate(points):
            label = "relay %s#%d" % (name, n)
            msg_id = "relay-%d" % k
            qid, data = self.submit(msg_id)
            ktrace = os.path.join(work, "relay-kill.trace")
            rc = self.relay(strace_argv(ktrace, (name, n)))
            where = killed_at(ktrace)
            notes = []
            if rc == 0:
                # the run took another path (one read fewer, say) and never
                # made that call: it is checked all the same
                notes.append("kill point not reached")
                missed += 1
            elif rc != -9:
                self.violation(label, "the killed relay run exited %s" % rc)
            before = self.remote_copies(label, msg_id, data)
            q = {d: sorted(os.listdir(os.path.join(a.queue, d))) for d in ("env", "msg", "tmp")}
            if qid in q["env"] and qid not in q["msg"]:
                self.violation(label, "env/%s without msg/ after the kill" % qid)
            if before and qid in q["env"]:
                notes.append("remote has it, still queued")
            if self.relay() != 0:
                self.violation(label, "the second relay run failed")
            copies = self.remote_copies(label, msg_id, data)
            q = {d: sorted(os.listdir(os.path.join(a.queue, d))) for d in ("env", "msg", "tmp")}
            if qid in q["env"]:
                self.violation(label, "still queued after the second run")
            if copies not in (1, 2):
                self.violation(label, "the remote holds %d copies" % copies)
            else:
                tally[copies] += 1
            orphans = [m for m in q["msg"] if m not in q["env"]]
            if orphans or q["tmp"]:
                leftovers += 1
                notes.append("leftovers msg/%s tmp/%s" % (",".join(orphans) or "-", ",".join(q["tmp"]) or "-"))
                relay_argv = shlex.split(a.relay_cmd)
                notes += sweep_check(self, label, a.queue, relay_argv, a.log)
            line = "%-22s copies=%d %s | %s" % (label, copies, where, ", ".join(notes) or "clean")
            print(line, flush=True)
            if report:
                report.write(line + "\n")
        print("# relay: %d kill points (%d not reached); one copy %d, two copies (at-least-once) %d; "
              "leftovers after the second run %d" % (len(points), missed, tally[1], tally[2], leftovers), flush=True)
        if missed > len(points) // 4:
            self.violation("relay", "%d of %d kill points were not reached: the runs differ too much" %
                           (missed, len(points)))
        print("# relay: %d violations" % len(self.violations), flush=True)
        return 1 if self.violations else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("smtpd")
    s.add_argument("--smtpd", required=True)
    s.add_argument("--relay", required=True)
    s.add_argument("--work", required=True)
    s.add_argument("--user", default=None)
    s.add_argument("--scenario", choices=["plain", "quoted"], default="plain")
    s.add_argument("--window", choices=["data", "after-dot"], default="data")
    s.add_argument("--report")
    m = sub.add_parser("sendmail")
    for opt in ("--sendmail", "--enqueue", "--relay", "--work"):
        m.add_argument(opt, required=True)
    for opt in ("--user", "--report"):
        m.add_argument(opt)
    r = sub.add_parser("relay")
    r.add_argument("--smtpd-cmd", required=True)
    r.add_argument("--relay-cmd", required=True)
    r.add_argument("--queue", required=True)
    r.add_argument("--remote-maildir", required=True)
    r.add_argument("--rcpt", required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--report")
    args = ap.parse_args()
    if args.mode in ("smtpd", "sendmail"):
        if not args.user:
            import pwd
            args.user = pwd.getpwuid(os.getuid()).pw_name
        if args.mode == "sendmail":
            args.scenario, args.window = "sendmail", None
            sys.exit(Sendmail(args).run())
        sys.exit(Smtpd(args).run())
    sys.exit(Relay(args).run())


if __name__ == "__main__":
    main()
