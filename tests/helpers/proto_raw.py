#!/usr/bin/env python3
"""proto_raw: send exact bytes to an SMTP server and print what comes back.

usage: proto_raw.py PORT [--no-greeting] [--timeout SECONDS] < script

Unlike smtpchat, nothing is added to what the script says to send, and
replies are only read when the script asks, so a test controls both the
bytes on the wire and how they are split into writes.  Unless
--no-greeting is given, the greeting is read (and printed) first.

Script, one operation per line (blank lines and lines starting with '#'
are ignored):
  send BYTES       send Python-escaped BYTES (\\r, \\n, \\x00 ...) in one write
  line TEXT        send TEXT plus CRLF, and read no reply
  cmd TEXT         send TEXT plus CRLF and read one reply
  fill N BYTE      send N copies of the escaped BYTE, in 64 KiB writes
  repeat N TEXT    send N lines TEXT+CRLF in one write ("%d" in TEXT is
                   replaced by 1..N); a thread sends, so replies can be read
  read N           read N replies (a multi-line reply counts once)
  sleep SECONDS    pause
  trickle S TEXT   send escaped TEXT one octet every S seconds; stops early,
                   printing "<stopped after N>", once the server says something
                   or closes the connection
  touch PATH       create the file PATH (tells a test how far the script got)
  hwm PPID         print "hwm KB": the largest VmHWM of PPID's children
                   (the handler that systemd-socket-activate started)
  eof              read and print lines until the server closes, then print
                   "<EOF>"
Every reply line is printed as received, without CRLF; a read that times
out prints "<timeout>" and ends the script; a closed connection where a
reply was expected prints "<EOF>" and ends it.
"""
import codecs
import os
import select
import socket
import sys
import threading
import time


class Closed(Exception):
    pass


def unescape(text):
    return codecs.decode(text.encode("latin-1"), "unicode_escape").encode("latin-1")


def read_line(f):
    line = f.readline()
    if not line:
        raise Closed()
    return line.decode("latin-1").rstrip("\r\n")


def read_reply(f):
    while True:
        text = read_line(f)
        print(text, flush=True)
        if len(text) < 4 or text[3] != "-":
            return


def children_hwm(ppid):
    best = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as st:
                fields = st.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != ppid:
                continue
            with open("/proc/%s/status" % pid) as st:
                for line in st:
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return best


def main():
    args = sys.argv[1:]
    port = int(args.pop(0))
    greeting = True
    timeout = 10.0
    while args:
        opt = args.pop(0)
        if opt == "--no-greeting":
            greeting = False
        elif opt == "--timeout":
            timeout = float(args.pop(0))
        else:
            sys.exit("proto_raw: unknown option %s" % opt)
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    f = sock.makefile("rb")
    senders = []
    try:
        if greeting:
            read_reply(f)
        for raw in sys.stdin.read().split("\n"):
            if not raw or raw.startswith("#"):
                continue
            op, _, rest = raw.partition(" ")
            if op == "send":
                sock.sendall(unescape(rest))
            elif op == "line":
                sock.sendall(rest.encode("latin-1") + b"\r\n")
            elif op == "cmd":
                sock.sendall(rest.encode("latin-1") + b"\r\n")
                read_reply(f)
            elif op == "fill":
                n, byte = rest.split(" ", 1)
                n, chunk = int(n), unescape(byte) * 65536
                while n > 0:
                    sock.sendall(chunk[:min(n, len(chunk))])
                    n -= len(chunk)
            elif op == "repeat":
                n, text = rest.split(" ", 1)
                payload = b"".join((text.replace("%d", str(i)) if "%d" in text else text).encode("latin-1")
                                   + b"\r\n" for i in range(1, int(n) + 1))
                t = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
                t.start()
                senders.append(t)
            elif op == "read":
                for _ in range(int(rest)):
                    read_reply(f)
            elif op == "sleep":
                time.sleep(float(rest))
            elif op == "trickle":
                delay, text = rest.split(" ", 1)
                sent = 0
                for b in unescape(text):
                    if select.select([sock], [], [], 0)[0]:
                        break
                    try:
                        sock.sendall(bytes([b]))
                    except OSError:
                        break
                    sent += 1
                    time.sleep(float(delay))
                else:
                    sent = -1
                if sent >= 0:
                    print("<stopped after %d>" % sent, flush=True)
            elif op == "touch":
                open(rest, "a").close()
            elif op == "hwm":
                print("hwm %d" % children_hwm(int(rest)), flush=True)
            elif op == "eof":
                while True:
                    print(read_line(f), flush=True)
            else:
                sys.exit("proto_raw: unknown operation %s" % op)
    except Closed:
        print("<EOF>", flush=True)
    except socket.timeout:
        print("<timeout>", flush=True)
    except ConnectionError as e:
        print("<%s>" % type(e).__name__, flush=True)
    for t in senders:
        t.join(1)
    sock.close()


if __name__ == "__main__":
    main()
