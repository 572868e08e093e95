#!/usr/bin/env python3
"""privsep_probe.py: look at the two processes of one mailslot-smtpd connection.

    privsep_probe.py BINARY (--port PORT | --exec CMD) status
    privsep_probe.py BINARY (--port PORT | --exec CMD) forbid GDB_EXPR TOKEN

The client connects (or runs CMD with pipes), reads the greeting and says
EHLO.  The session process is the one whose executable is BINARY, whose
parent runs BINARY too (the monitor), and which is no such parent itself
(under --listen the acceptor is the monitor's parent); exactly one such
pair must exist, or, with --port, exactly one whose session holds this
client's connection (the acceptor's spare is another pair, waiting).

status: prints "session FIELD VALUE..." and "monitor FIELD VALUE..." for the
credential lines of /proc/PID/status, then QUIT and the reply.

forbid: sends one message whose body holds TOKEN and prints the reply to
the final dot; then gdb makes the session evaluate GDB_EXPR (a call that
makes a forbidden system call), and the probe prints "closed" when the
connection ends without a further reply, or what it read instead.
"""
import argparse
import os
import socket
import subprocess
import sys
import time

FIELDS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd",
          "NoNewPrivs", "Seccomp")


def exe_of(pid):
    try:
        return os.path.realpath("/proc/%d/exe" % pid)
    except OSError:
        return None


def status_of(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = " ".join(value.split())
    return out


def server_inode(client):
    """The inode of the server's end of client's TCP connection."""
    port = client.getsockname()[1]
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port:
                    return fields[9]
    return None


def holds(pid, inode):
    try:
        return any(os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode
                   for fd in os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return False


def find_pair(binary, client=None, timeout=5.0):
    target = os.path.realpath(binary)
    deadline = time.time() + timeout
    while True:
        pairs = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if exe_of(pid) != target:
                continue
            try:
                ppid = int(status_of(pid)["PPid"])
            except (OSError, KeyError, ValueError):
                continue
            if exe_of(ppid) == target:
                pairs.append((pid, ppid))
        # under --listen the acceptor runs BINARY too: its child, the
        # monitor, is a parent in a pair of its own, and not a session
        parents = {ppid for _, ppid in pairs}
        pairs = [(pid, ppid) for pid, ppid in pairs if pid not in parents]
        if client is not None and len(pairs) > 1:
            inode = server_inode(client)
            pairs = [(pid, ppid) for pid, ppid in pairs if holds(pid, inode)]
        if len(pairs) == 1:
            return pairs[0]
        if time.time() > deadline:
            sys.exit("expected one session/monitor pair, found %r" % pairs)
        time.sleep(0.05)


class Conn:
    def __init__(self, args):
        if args.port:
            self.sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
            self.rf = self.sock.makefile("rb")
            self.send = self.sock.sendall
        else:
            self.proc = subprocess.Popen(args.exec, shell=True, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE)
            self.rf = self.proc.stdout
            self.send = lambda b: (self.proc.stdin.write(b), self.proc.stdin.flush())

    def reply(self):
        lines = []
        while True:
            line = self.rf.readline().decode("latin-1")
            if not line:
                return " | ".join(lines) if lines else None
            lines.append(line.rstrip("\r\n"))
            if len(line) < 4 or line[3] != "-":
                return " | ".join(lines)

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--port", type=int)
    ap.add_argument("--exec")
    ap.add_argument("action", choices=["status", "forbid"])
    ap.add_argument("rest", nargs="*")
    args = ap.parse_args()
    c = Conn(args)
    print("greeting " + (c.reply() or "none"))
    print("ehlo " + c.cmd("EHLO probe.example").split(" | ")[-1])
    session, monitor = find_pair(args.binary, c.sock if args.port else None)
    if args.action == "status":
        for who, pid in (("session", session), ("monitor", monitor)):
            st = status_of(pid)
            for f in FIELDS:
                print("%s %s %s" % (who, f, st.get(f, "")))
        print("quit " + (c.cmd("QUIT") or "none"))
        return
    expr, token = args.rest
    print("mail " + c.cmd("MAIL FROM:<probe@example.net>"))
    print("rcpt " + c.cmd("RCPT TO:<alice@example.org>"))
    print("data " + c.cmd("DATA"))
    print("dot " + c.cmd("Subject: probe\r\n\r\n" + token + "\r\n."))
    gdb = subprocess.run(["gdb", "-p", str(session), "-batch", "-ex", "call " + expr],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = gdb.stdout.decode("latin-1")
    print("gdb " + ("SIGSYS" if "SIGSYS" in out else out.replace("\n", " | ")))
    try:
        after = c.reply()
    except (ConnectionResetError, socket.timeout) as e:
        after = "error " + type(e).__name__
    print("closed" if after is None else "after " + after)


if __name__ == "__main__":
    main()
