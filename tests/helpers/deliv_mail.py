#!/usr/bin/env python3
"""deliv_mail: send test messages with smtplib and check mailboxes with
Python's mailbox module, byte for byte.  Used by delivery.bats, crash.bats
and privileges.bats.

  deliv_mail.py send (--port P | --exec CMD [--log FILE]) --to ADDR...
        [--from ADDR] [--count N] [--tag TAG] [--size BYTES] [--record FILE]
        [--kill-child-of PID (--kill-after SECONDS | --kill-at-growth FILE N)]
        [--mid-data kill|drop]
      Sends COUNT messages in one SMTP session with BODY=8BITMIME.  Each
      body is generated from its id (lines "From ", ">From ", ".", empty
      lines, 8-bit bytes, lines of 998 octets) and padded to SIZE.  Prints
      "RCPT <addr> <code>", "DATA <code> <text>" and "AFTERDOT <seconds>"
      per message; appends one JSON line per message to FILE: {"id", "code",
      "size", "to"} (the body is generated again from id and size).
      --message SIZE:RCPT,RCPT (repeatable) replaces --count/--size/--to
      with a list of messages of their own sizes and recipients.  code is
      "killed" when the handler was killed before it answered.
      --exec runs the handler with a socket pair on its stdin/stdout (network
      mode, no listener needed).  --kill-child-of: SIGKILL the handler (the
      only child of PID, as under systemd-socket-activate --accept) SECONDS
      after the final dot, or (--kill-at-growth PATH OCTETS) as soon as
      the file PATH (or the files in the directory PATH) has grown by OCTETS.  --mid-data: send half the
      message, then SIGKILL the handler (kill) or close the connection (drop).

  deliv_mail.py check FORMAT PATH RECORD... [--delivered-to ADDR]
        [--return-path ADDR] [--for RCPT] [--quiet]
      FORMAT is mbox, maildir, mh or numbered.  Every message in the mailbox must
      carry an X-Deliv-Id of a record, appear once, start with Return-Path:
      and Delivered-To:, and have exactly the recorded body (mbox: mboxrd-
      quoted on disk, and unquoting gives the sent body back).  Records
      with code 250 must all be there, records refused (4xx/5xx) must not,
      "killed" ones may.  With --for, only records sent to RCPT count, and
      a message sent to others must not be there.  Prints "count N", then
      "ok"; exit 1 with the reason otherwise.

  deliv_mail.py check-queue QUEUE QID RECORD...
      QUEUE/msg/QID starts with Received: and holds a recorded body as sent.
  deliv_mail.py count FORMAT PATH      messages Python's reader finds
  deliv_mail.py body ID [SIZE]         the body the sender would use
  deliv_mail.py hold-lock FILE         lockf FILE, print "locked", wait
  deliv_mail.py status CMD...          run the handler on a pipe, wait for
      the greeting, print Uid/Gid/Groups/CapEff/CapPrm from /proc, QUIT
"""
import argparse
import email.parser
import fcntl
import json
import mailbox
import os
import random
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time

LONG_MAX = 998


def make_body(msg_id, size=0):
    """A body of LF-ended lines that exercises every quoting rule."""
    rng = random.Random(msg_id)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_=+/()<>"
    lines = [
        b"Token " + msg_id.encode(),
        b"From the first line of a paragraph, which mbox must quote",
        b">From an already quoted line",
        b">>From a doubly quoted line",
        b"From",
        b"From:not a separator",
        b" From indented, left alone",
        b".",
        b"..",
        b".leading dot " + msg_id.encode(),
        b"",
        b"",
        "Gr\u00fc\u00dfe, na\u00efve caf\u00e9 \u2014 \u65e5\u672c\u8a9e \u2713".encode("utf-8"),
        b"latin-1 bytes: \xe9t\xe9 \xff\xfe\x80\x81",
        b"x" * LONG_MAX,
        ("".join(rng.choice(alphabet) for _ in range(rng.randint(900, LONG_MAX - 1)))).encode(),
    ]
    rng.shuffle(lines)
    out = b"\n".join(lines) + b"\n"
    # pad with varied lines ("From " and dot lines included) up to the size
    # asked: a pool of lines, repeated in blocks each with a numbered line
    pool = []
    for n in range(256):
        k = rng.randint(0, 9)
        if k == 0:
            line = b"From pool line %d of %s" % (n, msg_id.encode())
        elif k == 1:
            line = b">From pool line %d" % n
        elif k == 2:
            line = b"." * rng.randint(1, 3) + b" dots %d" % n
        elif k == 3:
            line = b""
        else:
            line = ("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))).encode()
        pool.append(line + b"\n")
    chunks = [out]
    total = len(out)
    block = 0
    while total < size:
        block += 1
        start = rng.randrange(len(pool))
        piece = b"From block %d of %s\n" % (block, msg_id.encode()) + b"".join(pool[start:] + pool[:start])
        chunks.append(piece)
        total += len(piece)
    if rng.random() < 0.3:
        chunks.append(b"\n")  # a body that ends in an empty line
    return b"".join(chunks)


def make_message(msg_id, sender, rcpts, size=0):
    head = (
        "From: <%s>\nTo: %s\nSubject: deliv %s\nX-Deliv-Id: %s\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        % (sender or "nobody@remote.example", ", ".join("<%s>" % r for r in rcpts), msg_id, msg_id)
    ).encode()
    body = make_body(msg_id, size)
    return head + body, body


# (zero-width lookaheads and a constant replacement: fast on 20 MB bodies)
def mboxrd_quote(body):
    return re.sub(rb"(?m)^(?=>*From )", b">", body)


def mboxrd_unquote(body):
    return re.sub(rb"(?m)^>(?=>*From )", b"", body)


def child_of(ppid, timeout=5.0):
    """The only child of ppid (the handler under systemd-socket-activate)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        kids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[1]) == ppid:
                kids.append(int(d))
        if len(kids) == 1:
            return kids[0]
        time.sleep(0.01)
    raise SystemExit("deliv_mail: no single child of %d" % ppid)


def grown_size(path):
    """Size of a file, or the sum over the files of a directory."""
    try:
        if os.path.isdir(path):
            return sum(e.stat().st_size for e in os.scandir(path) if e.is_file(follow_symlinks=False))
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def open_session(args):
    proc = None
    if args.exec:
        mine, theirs = socket.socketpair()
        log = open(args.log, "ab") if args.log else subprocess.DEVNULL
        proc = subprocess.Popen(["/bin/sh", "-c", "exec " + args.exec], stdin=theirs, stdout=theirs,
                                stderr=log, close_fds=True)
        theirs.close()
        mine.settimeout(args.timeout)
        s = smtplib.SMTP(timeout=args.timeout)
        s.sock = mine
        s.file = None
        code, msg = s.getreply()
        if code != 220:
            raise SystemExit("deliv_mail: greeting %d %s" % (code, msg))
    else:
        s = smtplib.SMTP("127.0.0.1", args.port, timeout=args.timeout)
    return s, proc


def cmd_send(args):
    s, proc = open_session(args)
    args.handler_pid = proc.pid if proc else None
    s.ehlo("client.test")
    records = []
    plan = [(args.size, args.to)] * args.count
    if args.message:
        plan = [(int(m.split(":", 1)[0]), m.split(":", 1)[1].split(",")) for m in args.message]
    for i, (size, to) in enumerate(plan):
        msg_id = "%s-%d-%d" % (args.tag, os.getpid(), i)
        data, body = make_message(msg_id, args.sender, to, size)
        rec = {"id": msg_id, "code": None, "size": size, "to": to}
        records.append(rec)
        code, text = s.mail(args.sender, ["BODY=8BITMIME", "SIZE=%d" % len(data)])
        if code != 250:
            print("MAIL %d %s" % (code, text.decode("latin-1")), flush=True)
            rec["code"] = code
            s.rset()
            continue
        accepted = 0
        for r in to:
            code, text = s.rcpt(r)
            print("RCPT %s %d" % (r, code), flush=True)
            accepted += code == 250
        if not accepted:
            rec["code"] = 554
            s.rset()
            continue
        rec["code"] = send_data(s, data, args)
        if rec["code"] == "killed":
            break
    if args.record:
        with open(args.record, "a") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
    if not args.kill_child_of and not args.mid_data:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass
    if proc:
        print("EXIT %d" % proc.wait(timeout=args.timeout), flush=True)


def send_data(s, data, args):
    """DATA, the message, the dot; with --kill-child-of, SIGKILL the handler
    --kill-after seconds after the dot.  Prints the reply and the seconds
    from the dot to it ("AFTERDOT")."""
    pid = child_of(args.kill_child_of) if args.kill_child_of else args.handler_pid
    kill_after_dot = bool(args.kill_child_of)
    code, text = s.docmd("DATA")
    if code != 354:
        print("DATA %d %s" % (code, text.decode("latin-1")), flush=True)
        return code
    q = smtplib._quote_periods(data.replace(b"\n", b"\r\n"))
    initial_size = grown_size(args.kill_at_growth[0]) if args.kill_at_growth else 0
    if args.mid_data:
        s.sock.sendall(q[:len(q) // 2])
        time.sleep(0.3)
        if args.mid_data == "kill":
            os.kill(pid, signal.SIGKILL)
        else:
            s.sock.shutdown(socket.SHUT_RDWR)
        print("DATA cut after %d of %d octets" % (len(q) // 2, len(q)), flush=True)
        return "killed"
    s.sock.sendall(q + b".\r\n")
    t0 = time.time()
    if kill_after_dot:
        if args.kill_at_growth:
            # kill as soon as the file has grown by so many octets: in the
            # middle of its append
            path, grow = args.kill_at_growth[0], int(args.kill_at_growth[1])
            target = initial_size + grow
            deadline = time.time() + 30
            while time.time() < deadline and grown_size(path) < target:
                pass
        else:
            time.sleep(args.kill_after)
        os.kill(pid, signal.SIGKILL)
    try:
        code, text = s.getreply()
    except (smtplib.SMTPException, OSError):
        code, text = -1, b""
    # a killed monitor leaves the session to say 421: that is a kill too
    result = code if code > 0 and not (kill_after_dot and code == 421) else "killed"
    print("DATA %s %s" % (result, text.decode("latin-1")), flush=True)
    print("AFTERDOT %.3f" % (time.time() - t0), flush=True)
    return result


def load_records(paths):
    recs = {}
    for p in paths:
        with open(p) as f:
            for line in f:
                r = json.loads(line)
                r["body"] = make_body(r["id"], r["size"])
                recs[r["id"]] = r
    return recs


def open_box(fmt, path):
    # numbered is MH with a status file beside each message: the MH reader
    # skips names that are not numbers
    readers = {"mbox": mailbox.mbox, "maildir": mailbox.Maildir, "mh": mailbox.MH, "numbered": mailbox.MH}
    return readers[fmt](path, create=False)


def cmd_check(args):
    recs = load_records(args.records)
    if args.rcpt_for:
        want = args.rcpt_for.lower()
        for r in recs.values():
            r["mine"] = want in [t.lower() for t in r.get("to", [])]
    box = open_box(args.format, args.path)
    seen = {}
    errors = []
    for key in box.keys():
        raw = box.get_bytes(key)
        head, sep, body = raw.partition(b"\n\n")
        if not sep:
            errors.append("message %s has no header/body separator: %r" % (key, raw[:200]))
            continue
        hdr = email.parser.BytesHeaderParser().parsebytes(head + b"\n\n")
        msg_id = hdr.get("X-Deliv-Id")
        lines = head.split(b"\n")
        if not lines[0].startswith(b"Return-Path: <") or not lines[1].startswith(b"Delivered-To: "):
            errors.append("message %s does not start with Return-Path:, Delivered-To: %r" % (key, lines[:2]))
        if len(hdr.get_all("Return-Path", [])) != 1 or len(hdr.get_all("Delivered-To", [])) != 1:
            errors.append("message %s: Return-Path:/Delivered-To: not exactly once" % key)
        if args.delivered_to and lines[1] != b"Delivered-To: " + args.delivered_to.encode():
            errors.append("message %s: %r, expected Delivered-To: %s" % (key, lines[1], args.delivered_to))
        if args.return_path is not None and lines[0] != b"Return-Path: <" + args.return_path.encode() + b">":
            errors.append("message %s: %r, expected Return-Path: <%s>" % (key, lines[0], args.return_path))
        if msg_id not in recs:
            errors.append("message %s has unknown id %r (a fragment or a foreign message?) %r"
                          % (key, msg_id, raw[:300]))
            continue
        if not recs[msg_id].get("mine", True):
            errors.append("message %s (%s) was not addressed to %s" % (key, msg_id, args.rcpt_for))
        if msg_id in seen:
            errors.append("message %s: id %s appears twice (also %s)" % (key, msg_id, seen[msg_id]))
        seen[msg_id] = key
        want = recs[msg_id]["body"]
        if args.format == "mbox":
            if body != mboxrd_quote(want):
                errors.append("message %s (%s): body differs from the mboxrd-quoted body sent (%d vs %d bytes)%s"
                              % (key, msg_id, len(body), len(mboxrd_quote(want)), first_diff(body, mboxrd_quote(want))))
            elif mboxrd_unquote(body) != want:
                errors.append("message %s (%s): unquoting does not give the body sent" % (key, msg_id))
        elif body != want:
            errors.append("message %s (%s): body differs (%d vs %d bytes)%s"
                          % (key, msg_id, len(body), len(want), first_diff(body, want)))
    for msg_id, r in recs.items():
        if not r.get("mine", True):
            continue
        if r["code"] == 250 and msg_id not in seen:
            errors.append("accepted message %s is missing" % msg_id)
        if isinstance(r["code"], int) and r["code"] != 250 and msg_id in seen:
            errors.append("message %s was refused with %s but was delivered" % (msg_id, r["code"]))
    if not args.quiet:
        print("count %d" % len(seen))
    if errors:
        for e in errors[:20]:
            print("ERROR " + e)
        sys.exit(1)
    print("ok")


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return " at byte %d: got %r, want %r" % (i, a[max(0, i - 20):i + 40], b[max(0, i - 20):i + 40])
    return " (one is a prefix of the other at %d)" % n


def cmd_check_queue(args):
    """The queued message file holds the message as sent (no quoting)."""
    recs = load_records(args.records)
    with open(os.path.join(args.queue, "msg", args.qid), "rb") as f:
        raw = f.read()
    head, sep, body = raw.partition(b"\n\n")
    hdr = email.parser.BytesHeaderParser().parsebytes(head + b"\n\n")
    msg_id = hdr.get("X-Deliv-Id")
    if not head.startswith(b"Received: ") or msg_id not in recs:
        raise SystemExit("ERROR queued message %s: no Received: first or unknown id %r" % (args.qid, msg_id))
    if body != recs[msg_id]["body"]:
        raise SystemExit("ERROR queued message %s: body differs%s" % (args.qid, first_diff(body, recs[msg_id]["body"])))
    print("ok %s" % msg_id)


def cmd_count(args):
    box = open_box(args.format, args.path)
    print(len(box.keys()))


def cmd_body(args):
    sys.stdout.buffer.write(make_body(args.id, args.size))


def cmd_hold_lock(args):
    fd = os.open(args.file, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(args.seconds)


def cmd_status(args):
    p = subprocess.Popen(args.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    greeting = p.stdout.readline().decode("latin-1").rstrip()
    print("greeting " + greeting)
    with open("/proc/%d/status" % p.pid) as f:
        for line in f:
            if line.split(":")[0] in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapInh", "CapAmb"):
                print(" ".join(line.split()))
    p.stdin.write(b"QUIT\n")
    p.stdin.close()
    print("after " + p.stdout.read().decode("latin-1").strip())
    print("exit %d" % p.wait(timeout=10))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--port", type=int)
    s.add_argument("--exec")
    s.add_argument("--log")
    s.add_argument("--from", dest="sender", default="sender@remote.example")
    s.add_argument("--to", action="append", default=[])
    s.add_argument("--message", action="append", metavar="SIZE:RCPT[,RCPT...]")
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--tag", default="m")
    s.add_argument("--size", type=int, default=0)
    s.add_argument("--record")
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--kill-child-of", type=int)
    s.add_argument("--kill-after", type=float, default=0)
    s.add_argument("--kill-at-growth", nargs=2, metavar=("FILE", "OCTETS"))
    s.add_argument("--mid-data", choices=["kill", "drop"])
    c = sub.add_parser("check")
    c.add_argument("format")
    c.add_argument("path")
    c.add_argument("records", nargs="+")
    c.add_argument("--delivered-to")
    c.add_argument("--return-path")
    c.add_argument("--quiet", action="store_true")
    c.add_argument("--for", dest="rcpt_for")
    n = sub.add_parser("count")
    n.add_argument("format")
    n.add_argument("path")
    b = sub.add_parser("body")
    b.add_argument("id")
    b.add_argument("size", type=int, nargs="?", default=0)
    h = sub.add_parser("hold-lock")
    h.add_argument("file")
    h.add_argument("seconds", type=float, nargs="?", default=60)
    q = sub.add_parser("check-queue")
    q.add_argument("queue")
    q.add_argument("qid")
    q.add_argument("records", nargs="+")
    st = sub.add_parser("status")
    st.add_argument("argv", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    {"send": cmd_send, "check": cmd_check, "count": cmd_count, "body": cmd_body,
     "hold-lock": cmd_hold_lock, "check-queue": cmd_check_queue, "status": cmd_status}[args.cmd](args)


if __name__ == "__main__":
    main()
