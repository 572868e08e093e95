#!/usr/bin/env python3
"""log_journal: a stand-in for journald's native socket, for tests.

usage: log_journal.py SOCKET OUTFILE SECONDS
Binds an AF_UNIX datagram socket at SOCKET, prints "ready" once bound,
and appends every datagram received to OUTFILE, separated by a line
"--", until SECONDS have passed without one.
"""
import socket
import sys

path, out, quiet = sys.argv[1], sys.argv[2], float(sys.argv[3])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.settimeout(quiet)
print("ready", flush=True)
with open(out, "ab") as f:
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        f.write(data + b"--\n")
        f.flush()
