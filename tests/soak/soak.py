#!/usr/bin/env python3
"""soak: many concurrent SMTP clients, then every delivery checked byte for byte.

  soak.py send --port P --results FILE [--messages N] [--clients C] [--seed S]
      C threads share the N messages of the plan (made from the seed) and
      send them over loopback, each session carrying 1 to 5 messages before
      QUIT.  One result line (JSON) per message: id, reply code, queue id,
      tries.  A 4xx reply is retried (up to 3 tries, after a short pause),
      as a real client would.  Prints the elapsed time and rates.

  soak.py setup DIR
      Writes DIR/users and DIR/aliases for the plan's mailboxes.

  soak.py check --spool DIR --format mbox|maildir|mh --results FILE [--seed S]
      Reads every mailbox with Python's mailbox module.  Each message must
      be one of the plan, byte for byte: Return-Path:, Delivered-To:, the
      Received: field naming the queue id of its 250, then the message as
      sent with LF line ends (mboxrd-quoted in an mbox).  Each message that
      got a 250 must be in the mailbox of every recipient (aliases
      expanded, duplicates once) exactly once, and in no other.  Prints the
      counts; exit 1 on any difference.

The plan (sizes, recipients) is a function of the seed, so check rebuilds
it without a file.  Sizes are log-uniform between 1 KiB and 1 MiB (both
ends included); 60% of messages go to one recipient (a third of those to
the one shared mailbox "hot"), 30% to two to four users, 10% to the alias
"team" (u01 u02 u03), sometimes with u01 named again as well.  Bodies are
slices of a pool of lines with every hard case in it ("From " lines for
mboxrd, ">From ", lines starting with dots, empty lines, 998-octet lines,
8-bit UTF-8), cut at line ends; the pool is kept in wire form too (CRLF,
dot-stuffed), so sending costs no per-message conversion.
"""
import argparse
import json
import mailbox
import math
import os
import random
import re
import socket
import sys
import threading
import time

USERS = ["u%02d" % i for i in range(1, 21)] + ["hot"]
ALIASES = {"team": ["u01", "u02", "u03"]}
DOMAIN = "example.org"
SENDER = "soak@remote.example"
MIN_SIZE, MAX_SIZE = 1024, 1024 * 1024
POOL_LINES = 30000


def build_pool(seed):
    rng = random.Random("pool-%s" % seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_=+/()<>"
    utf8 = "Gr\u00fc\u00dfe na\u00efve caf\u00e9 \u2014 \u65e5\u672c\u8a9e \u2713".encode()
    lines = []
    for n in range(POOL_LINES):
        k = rng.randrange(40)
        if k < 2:
            line = b">" * rng.randrange(3) + b"From pool line %d, which mboxrd quotes" % n
        elif k < 4:
            line = b"." * rng.randint(1, 3) + (b" dots %d" % n if rng.random() < 0.7 else b"")
        elif k < 7:
            line = b""
        elif k == 7:
            line = utf8 + b" %d" % n
        elif k == 8 and rng.random() < 0.2:
            line = bytes(rng.choice(alphabet) for _ in range(998))
        else:
            line = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 100)))
        lines.append(line + b"\n")
    lf_off, wire_off = [0], [0]
    wire_lines = []
    for line in lines:
        w = line[:-1].replace(b"\r", b"")
        if w.startswith(b"."):
            w = b"." + w
        w += b"\r\n"
        wire_lines.append(w)
        lf_off.append(lf_off[-1] + len(line))
        wire_off.append(wire_off[-1] + len(w))
    # the pool twice over, so any run of lines up to the pool's length is
    # one contiguous slice
    lf = b"".join(lines) * 2
    wire = b"".join(wire_lines) * 2
    total_lf, total_wire = lf_off[-1], wire_off[-1]
    lf_off += [o + total_lf for o in lf_off[1:]]
    wire_off += [o + total_wire for o in wire_off[1:]]
    return lf, wire, lf_off, wire_off


class Plan:
    def __init__(self, seed, n):
        self.seed = seed
        self.n = n
        self.lf, self.wire, self.lf_off, self.wire_off = build_pool(seed)
        rng = random.Random("plan-%s" % seed)
        self.msgs = []
        for i in range(n):
            if i % 997 == 0:
                size = MIN_SIZE
            elif i % 997 == 1:
                size = MAX_SIZE
            else:
                size = int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))
            r = rng.random()
            if r < 0.6:
                rcpts = ["hot" if rng.random() < 1 / 3 else rng.choice(USERS[:-1])]
            elif r < 0.9:
                rcpts = rng.sample(USERS, rng.randint(2, 4))
            else:
                rcpts = ["team"] + (["u01"] if rng.random() < 0.5 else [])
            self.msgs.append((i, size, rcpts, rng.randrange(POOL_LINES)))

    @staticmethod
    def mailboxes(rcpts):
        out = []
        for r in rcpts:
            for u in ALIASES.get(r, [r]):
                if u not in out:
                    out.append(u)
        return out

    def header(self, i, rcpts):
        return ("From: Soak <%s>\nTo: %s\nSubject: soak message %d\nX-Soak-Id: %d\n"
                "Message-ID: <%d.%s@soak.test>\nMIME-Version: 1.0\n"
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                % (SENDER, ", ".join("<%s@%s>" % (r, DOMAIN) for r in rcpts), i, i, i, self.seed)).encode()

    def _span(self, i, size, start):
        """Pool lines [start, end) making the body about size octets."""
        token = b"Soak-Token %d\n" % i
        want = self.lf_off[start] + max(size - len(token) - 300, 1)
        lo, hi = start + 1, start + POOL_LINES
        while lo < hi:  # first end whose offset reaches want
            mid = (lo + hi) // 2
            if self.lf_off[mid] < want:
                lo = mid + 1
            else:
                hi = mid
        return token, lo

    def message_lf(self, i):
        _, size, rcpts, start = self.msgs[i]
        token, end = self._span(i, size, start)
        return self.header(i, rcpts) + token + self.lf[self.lf_off[start]:self.lf_off[end]]

    def message_wire(self, i):
        _, size, rcpts, start = self.msgs[i]
        token, end = self._span(i, size, start)
        head = self.header(i, rcpts).replace(b"\n", b"\r\n")
        return head + token.replace(b"\n", b"\r\n") + self.wire[self.wire_off[start]:self.wire_off[end]] + b".\r\n"


# ------------------------------------------------------------------ send

class Client:
    def __init__(self, port, timeout=120):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        code, _ = self.reply()
        if code != 220:
            raise OSError("greeting %s" % code)
        code, _ = self.cmd(b"EHLO soak.test")
        if code != 250:
            raise OSError("EHLO %s" % code)

    def reply(self):
        while True:
            line = self.f.readline()
            if not line:
                raise OSError("connection closed")
            if line[3:4] != b"-":
                return int(line[:3]), line.decode("latin-1").rstrip()

    def cmd(self, line):
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def send(self, rcpts, data):
        code, text = self.cmd(b"MAIL FROM:<%s> BODY=8BITMIME SIZE=%d" % (SENDER.encode(), len(data)))
        if code != 250:
            return code, text
        for r in rcpts:
            code, text = self.cmd(b"RCPT TO:<%s@%s>" % (r.encode(), DOMAIN.encode()))
            if code != 250:
                self.cmd(b"RSET")
                return code, text
        code, text = self.cmd(b"DATA")
        if code != 354:
            return code, text
        self.sock.sendall(data)
        return self.reply()

    def close(self):
        try:
            self.cmd(b"QUIT")
        except OSError:
            pass
        self.f.close()
        self.sock.close()


def cmd_send(args):
    plan = Plan(args.seed, args.messages)
    lock = threading.Lock()
    todo = list(range(args.messages))
    todo.reverse()
    results = []
    errors = []

    def worker(w):
        rng = random.Random("worker-%d-%s" % (w, args.seed))
        client, left = None, 0
        while True:
            with lock:
                if not todo or len(errors) > 10:
                    break
                i = todo.pop()
            _, size, rcpts, _ = plan.msgs[i]
            data = plan.message_wire(i)
            for attempt in range(1, 4):
                try:
                    if client is None:
                        client, left = Client(args.port), rng.randint(1, 5)
                    code, text = client.send(rcpts, data)
                except OSError as e:
                    code, text = None, str(e)
                    client = None
                if code == 250:
                    break
                if client is not None and (code is None or code >= 500):
                    break
                time.sleep(0.2 * attempt)
            m = re.match(r"250 2\.0\.0 Ok: queued as (\w+)", text or "")
            with lock:
                results.append({"id": i, "code": code, "qid": m.group(1) if m else None,
                                "tries": attempt, "size": len(data)})
                if code != 250:
                    errors.append("message %d: %s %s" % (i, code, text))
            left -= 1
            if client is not None and left <= 0:
                client.close()
                client = None
        if client is not None:
            client.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    with open(args.results, "w") as f:
        for r in sorted(results, key=lambda r: r["id"]):
            f.write(json.dumps(r) + "\n")
    ok = sum(1 for r in results if r["code"] == 250)
    octets = sum(r["size"] for r in results if r["code"] == 250)
    deliveries = sum(len(Plan.mailboxes(plan.msgs[r["id"]][2])) for r in results if r["code"] == 250)
    retried = sum(1 for r in results if r["tries"] > 1)
    print("sent %d of %d messages (%d retried after a 4xx) in %.1f s with %d clients: %.1f msg/s, "
          "%.1f MiB/s on the wire, %d deliveries (%.1f/s)"
          % (ok, args.messages, retried, elapsed, args.clients, ok / elapsed, octets / elapsed / 2**20,
             deliveries, deliveries / elapsed), flush=True)
    for e in errors[:10]:
        print("ERROR " + e)
    return 0 if ok == args.messages else 1


# ------------------------------------------------------------------ check

RECEIVED = re.compile(rb"Received: from soak\.test \(\[127\.0\.0\.1\]\)\n\tby [^ \n]+ \(mailslot\) with ESMTP id "
                      rb"(\w+)(?:\n\tfor <[^>\n]+>)?;\n\t[^\n]+\n")


def mboxrd_quote(data):
    return re.sub(rb"(?m)^(?=>*From )", b">", data)


def cmd_check(args):
    results = {}
    with open(args.results) as f:
        for line in f:
            r = json.loads(line)
            results[r["id"]] = r
    plan = Plan(args.seed, max(results) + 1 if results else 0)
    want = {}   # (user, id) -> 1
    for i, r in results.items():
        if r["code"] == 250:
            for u in Plan.mailboxes(plan.msgs[i][2]):
                want[(u, i)] = 1
    seen = {}
    errors = []
    total_octets = 0
    for user in USERS:
        path = os.path.join(args.spool, user)
        if not os.path.exists(path):
            continue
        box = {"mbox": mailbox.mbox, "maildir": mailbox.Maildir, "mh": mailbox.MH}[args.format](
            path, create=False)
        prefix = b"Return-Path: <%s>\nDelivered-To: %s@%s\n" % (SENDER.encode(), user.encode(), DOMAIN.encode())
        for key in box.iterkeys():
            raw = box.get_bytes(key)
            total_octets += len(raw)
            m = re.search(rb"^X-Soak-Id: (\d+)$", raw[:4096], re.M)
            i = int(m.group(1)) if m else None
            if i is None or i not in results:
                errors.append("%s/%s: not a message of the plan: %r" % (user, key, raw[:200]))
                continue
            seen[(user, i)] = seen.get((user, i), 0) + 1
            body = plan.message_lf(i)
            if args.format == "mbox":
                body = mboxrd_quote(body)
            rec = RECEIVED.match(raw, len(prefix))
            if not raw.startswith(prefix) or not rec or rec.end() + len(body) != len(raw) or \
                    raw[rec.end():] != body:
                errors.append("%s/%s: message %d differs from what was sent (%d octets, expected %d + headers)"
                              % (user, key, i, len(raw), len(body)))
            elif rec.group(1).decode() != results[i]["qid"]:
                errors.append("%s/%s: message %d has queue id %s, its 250 said %s"
                              % (user, key, i, rec.group(1).decode(), results[i]["qid"]))
        box.close()
    for k, n in seen.items():
        if n != 1:
            errors.append("%s holds message %d %d times" % (k[0], k[1], n))
        if k not in want:
            errors.append("%s holds message %d, which was not sent to it (or not accepted)" % k)
    missing = [k for k in want if k not in seen]
    for k in missing[:20]:
        errors.append("%s lacks message %d" % k)
    print("checked %d deliveries in %d mailboxes (%.1f MiB): expected %d, found %d, missing %d, errors %d"
          % (sum(seen.values()), len({u for u, _ in seen}), total_octets / 2**20, len(want),
             sum(seen.values()), len(missing), len(errors)), flush=True)
    for e in errors[:30]:
        print("ERROR " + e)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--messages", type=int, default=10000)
    s.add_argument("--clients", type=int, default=50)
    s.add_argument("--seed", default="1")
    c = sub.add_parser("check")
    c.add_argument("--spool", required=True)
    c.add_argument("--format", choices=["mbox", "maildir", "mh"], default="mbox")
    c.add_argument("--results", required=True)
    c.add_argument("--seed", default="1")
    u = sub.add_parser("setup")
    u.add_argument("dir")
    args = ap.parse_args()
    if args.cmd == "setup":
        with open(os.path.join(args.dir, "users"), "w") as f:
            f.write("".join(u + "\n" for u in USERS))
        with open(os.path.join(args.dir, "aliases"), "w") as f:
            f.write("".join("%s: %s\n" % (a, ", ".join(m)) for a, m in ALIASES.items()))
        return 0
    return {"send": cmd_send, "check": cmd_check}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
