#!/usr/bin/env python3
"""smtpchat: talk to an SMTP server line by line, as a careful client does.

usage: smtpchat.py HOST PORT < script
Waits for the greeting, then sends each script line with CRLF and prints
every reply line it gets back.  A line "<<DATA" starts raw message text,
sent as is (CRLF added per line) until a line ">>", after which one reply
is awaited.  A line "!raw BYTES" sends Python-escaped bytes with no CRLF
added and waits for one reply; "!sleep SECONDS" pauses.  Replies are read
with a timeout so a test never hangs.
"""
import socket
import sys
import time


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            break
        text = line.decode("latin-1").rstrip("\r\n")
        lines.append(text)
        if len(text) < 4 or text[3] != "-":
            break
    for text in lines:
        print(text, flush=True)
    return lines


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    sock = socket.create_connection((host, port), timeout=timeout)
    f = sock.makefile("rb")
    try:
        read_reply(f)
        data_mode = False
        for raw in sys.stdin.read().split("\n"):
            if data_mode:
                if raw == ">>":
                    data_mode = False
                    read_reply(f)
                else:
                    sock.sendall(raw.encode("latin-1") + b"\r\n")
                continue
            if raw == "<<DATA":
                data_mode = True
            elif raw.startswith("!raw "):
                payload = raw[5:].encode("latin-1").decode("unicode_escape").encode("latin-1")
                sock.sendall(payload)
                read_reply(f)
            elif raw.startswith("!sleep "):
                time.sleep(float(raw[7:]))
            elif raw == "":
                continue
            else:
                sock.sendall(raw.encode("latin-1") + b"\r\n")
                if not read_reply(f):
                    break
    except (socket.timeout, ConnectionError) as e:
        print("smtpchat: %s" % e, flush=True)
    sock.close()


if __name__ == "__main__":
    main()
