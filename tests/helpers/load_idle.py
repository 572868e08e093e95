#!/usr/bin/env python3
"""load_idle: hold many SMTP sessions open in the middle of a transaction.

usage: load_idle.py HOST PORT COUNT [--rcpt ADDR] [--window N] [--timeout S]

Opens COUNT connections (at most --window of them still being set up at a
time), and takes each through greeting, EHLO, MAIL FROM and RCPT TO, then
leaves it idle there, as a client that stalls before DATA.  Prints
"ready COUNT" once every session is at that point (or "error TEXT" and
exits 1), then reads commands on standard input, one a line:

  finish   end every session: the even-numbered ones with QUIT (and wait
           for the 221), the odd-numbered ones by closing the socket
           without a word; prints "done quit=N closed=N"
  (EOF)    the same as finish

One process and a selector: no thread per connection.  The file-descriptor
limit is raised to what COUNT needs, up to the hard limit (exit 2 if that
is too low).  Every wait has a deadline, so it never hangs a test.
"""
import argparse
import errno
import resource
import selectors
import socket
import sys
import time


class Session:
    __slots__ = ("n", "sock", "step", "buf", "lines")

    def __init__(self, n, sock):
        self.n = n
        self.sock = sock
        self.step = 0     # replies received so far
        self.buf = b""
        self.lines = []   # the last reply, for error messages


# the command sent after each reply, and the code that reply must have
def script(rcpt):
    return [
        (220, b"EHLO load.test\r\n"),
        (250, b"MAIL FROM:<load@remote.example>\r\n"),
        (250, b"RCPT TO:<%s>\r\n" % rcpt.encode()),
        (250, None),      # idle from here on
    ]


def raise_fd_limit(count):
    need = count + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        print("error the hard file-descriptor limit %d is below the %d needed" % (hard, need), flush=True)
        sys.exit(2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def replies(s, data):
    """Complete replies (lists of lines) found in s.buf after adding data."""
    s.buf += data
    out = []
    while b"\n" in s.buf:
        line, s.buf = s.buf.split(b"\n", 1)
        line = line.rstrip(b"\r")
        s.lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            out.append(s.lines)
            s.lines = []
    return out


def establish(args):
    steps = script(args.rcpt)
    sel = selectors.DefaultSelector()
    sessions = []
    pending = 0
    started = 0
    ready = 0
    deadline = time.monotonic() + args.timeout

    def start_one():
        nonlocal started, pending
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex((args.host, args.port))
        if err not in (0, errno.EINPROGRESS):
            raise SystemExit("error connect %d: %s" % (started, errno.errorcode.get(err, err)))
        s = Session(started, sock)
        sessions.append(s)
        sel.register(sock, selectors.EVENT_READ, s)
        started += 1
        pending += 1

    while ready < args.count:
        while started < args.count and pending < args.window:
            start_one()
        left = deadline - time.monotonic()
        if left <= 0:
            print("error only %d of %d sessions reached RCPT within %ds" % (ready, args.count, args.timeout),
                  flush=True)
            sys.exit(1)
        for key, _ in sel.select(timeout=min(left, 1.0)):
            s = key.data
            try:
                data = s.sock.recv(4096)
            except ConnectionError as e:
                print("error session %d: %s after %d replies" % (s.n, e, s.step), flush=True)
                sys.exit(1)
            if not data:
                print("error session %d: closed by the server after %d replies (%r)" % (s.n, s.step, s.lines),
                      flush=True)
                sys.exit(1)
            for reply in replies(s, data):
                code, command = steps[s.step]
                if not reply[-1].startswith(b"%d " % code):
                    print("error session %d: step %d wanted %d, got %r" % (s.n, s.step, code, reply), flush=True)
                    sys.exit(1)
                s.step += 1
                if command:
                    s.sock.sendall(command)
                else:
                    sel.unregister(s.sock)
                    pending -= 1
                    ready += 1
    sel.close()
    return sessions


def finish(sessions, timeout):
    sel = selectors.DefaultSelector()
    quit_n = closed = 0
    for s in sessions:
        if s.n % 2 == 0:
            s.sock.setblocking(True)
            s.sock.sendall(b"QUIT\r\n")
            s.sock.setblocking(False)
            s.buf = b""
            s.lines = []
            sel.register(s.sock, selectors.EVENT_READ, s)
        else:
            s.sock.close()
            closed += 1
    waiting = len(sel.get_map())
    deadline = time.monotonic() + timeout
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            print("error %d sessions did not answer QUIT" % waiting, flush=True)
            sys.exit(1)
        for key, _ in sel.select(timeout=min(left, 1.0)):
            s = key.data
            try:
                data = s.sock.recv(4096)
            except ConnectionError:
                data = b""
            done = not data
            for reply in replies(s, data):
                if not reply[-1].startswith(b"221 "):
                    print("error session %d: QUIT got %r" % (s.n, reply), flush=True)
                    sys.exit(1)
                quit_n += 1
                done = True
            if done:
                sel.unregister(s.sock)
                s.sock.close()
                waiting -= 1
    print("done quit=%d closed=%d" % (quit_n, closed), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--rcpt", default="alice@example.org")
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--timeout", type=int, default=60)
    args = ap.parse_args()
    raise_fd_limit(args.count)
    t0 = time.monotonic()
    sessions = establish(args)
    print("ready %d %.2fs" % (len(sessions), time.monotonic() - t0), flush=True)
    for line in sys.stdin:
        if line.strip() == "finish":
            break
    finish(sessions, args.timeout)


if __name__ == "__main__":
    main()
