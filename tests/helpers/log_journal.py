#!/usr/bin/env python3
"""log_journal: a stand-in for journald's native socket, for tests.

usage: log_journal.py SOCKET OUTFILE SECONDS [export]
Binds an AF_UNIX datagram socket at SOCKET, prints "ready" once bound,
and appends every datagram received to OUTFILE, separated by a line
"--", until SECONDS have passed without one, or, after SIGTERM, until
the datagrams already queued are read.

With "export", OUTFILE gets the journal export format instead (what
systemd-journal-remote(8) reads to write a real journal file): each
datagram followed by the fields journald itself adds, the time it was
received (__REALTIME_TIMESTAMP), the sender's pid from its credentials,
the host name and a boot id, and a blank line.
"""
import signal
import socket
import sys
import time

path, out, quiet = sys.argv[1], sys.argv[2], float(sys.argv[3])
export = len(sys.argv) > 4 and sys.argv[4] == "export"
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(path)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
sock.settimeout(0.05)
print("ready", flush=True)
boot = "0" * 31 + "1"
host = socket.gethostname()
last = time.monotonic()
with open(out, "ab") as f:
    while True:
        try:
            data, anc, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(12))
        except socket.timeout:
            if stop or time.monotonic() - last >= quiet:
                break
            continue
        last = time.monotonic()
        if not export:
            f.write(data + b"--\n")
        else:
            pid = 0
            for level, kind, cred in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = int.from_bytes(cred[0:4], sys.byteorder)
            now = time.time_ns() // 1000
            mono = time.monotonic_ns() // 1000
            trusted = "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n_PID=%d\n" \
                "_HOSTNAME=%s\n_TRANSPORT=journal\n" % (now, mono, boot, pid, host)
            f.write(trusted.encode() + data + b"\n")
        f.flush()
