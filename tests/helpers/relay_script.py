#!/usr/bin/python3
"""relay_script: an SMTP server that follows a script, for relay.bats.

usage: python3 relay_script.py ADDR PORT DIR SCRIPT [--rcvbuf N] [--maxseg N]

Serves one connection at a time, each by the same SCRIPT, one step a line:
  send TEXT            send TEXT and CRLF (TEXT may be empty)
  sleep SECONDS        wait
  read                 read one line from the client
  data                 read the message text up to the line "."
  trickle N SECONDS    read the message text up to ".", N octets at a time,
                       SECONDS apart (a server that takes the text slowly)
  close                close the connection
At the end of the script the connection is read until the client closes it.
Everything received goes to DIR/transcript ("C: line", octet counts for
the text); DIR/ready appears once it listens.  --rcvbuf and --maxseg make
the receive buffer and the segment size small, so that a slow reader
holds the client back instead of the kernel's buffers absorbing the text.
Stops on SIGTERM.
"""
import argparse
import os
import socket
import sys
import time


def log(directory, text):
    with open(os.path.join(directory, "transcript"), "a") as f:
        f.write(text + "\n")


def serve(conn, steps, directory):
    buf = b""

    def readline():
        nonlocal buf
        while b"\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                raise EOFError
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def read_text(step, pause):
        nonlocal buf
        total = len(buf)
        while not (b"\r\n.\r\n" in buf or buf.startswith(b".\r\n")):
            chunk = conn.recv(step)
            if not chunk:
                raise EOFError
            buf = (buf + chunk)[-8:]
            total += len(chunk)
            if pause:
                time.sleep(pause)
        buf = b""
        log(directory, "C: <text of %d octets>" % total)

    for step in steps:
        verb, _, arg = step.partition(" ")
        if verb == "send":
            conn.sendall(arg.encode() + b"\r\n")
        elif verb == "sleep":
            time.sleep(float(arg))
        elif verb == "read":
            log(directory, "C: " + readline())
        elif verb == "data":
            read_text(65536, 0)
        elif verb == "trickle":
            n, pause = arg.split()
            read_text(int(n), float(pause))
        elif verb == "close":
            return
        else:
            sys.exit("unknown step: " + step)
    while True:
        line = readline()
        log(directory, "C: " + line)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("dir")
    p.add_argument("script")
    p.add_argument("--rcvbuf", type=int)
    p.add_argument("--maxseg", type=int)
    a = p.parse_args()
    with open(a.script) as f:
        steps = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]
    family = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # set before listen, so that accepted sockets inherit them
    if a.rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    if a.maxseg:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, a.maxseg)
    s.bind((a.addr, a.port))
    s.listen(4)
    open(os.path.join(a.dir, "ready"), "w").close()
    while True:
        conn, _ = s.accept()
        log(a.dir, "connect")
        try:
            serve(conn, steps, a.dir)
        except (EOFError, ConnectionError):
            pass
        conn.close()
        log(a.dir, "closed")


if __name__ == "__main__":
    main()
