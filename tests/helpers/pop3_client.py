#!/usr/bin/env python3
"""pop3_client: Python's poplib against mailslot-pop3d, for pop3.bats.

usage: pop3_client.py PORT USER PASSWORD [--stls CA | --ssl CA] [--auth-plain]
                      [--out DIR] [--dele N,...] [--drop] [--hold SECONDS]

Logs in (USER/PASS, or AUTH PLAIN with --auth-plain), after stls() or
over POP3_SSL with CA as the only trust anchor, then prints
"stat COUNT OCTETS", "uidl N UID" per message and, with --out, RETRs every
message into DIR/N (the octets as they came, CRLF line ends, dot-stuffing
undone) and checks that LIST's size, the +OK's size and the octets agree
("sizes ok").  --dele marks messages; --drop then ends the connection
without QUIT; --hold waits that long before QUIT (a session kept open).
Exits 1 with "error ..." when the server refuses.
"""
import argparse
import base64
import os
import poplib
import ssl
import sys
import time


def connect(args):
    if args.ssl:
        ctx = ssl.create_default_context(cafile=args.ssl)
        return poplib.POP3_SSL("127.0.0.1", args.port, context=ctx, timeout=20)
    p = poplib.POP3("127.0.0.1", args.port, timeout=20)
    if args.stls:
        p.stls(context=ssl.create_default_context(cafile=args.stls))
    return p


def login(p, args):
    if args.auth_plain:
        token = base64.b64encode(b"\0" + args.user.encode() + b"\0" + args.password.encode()).decode()
        resp = p._shortcmd("AUTH PLAIN " + token)
    else:
        p.user(args.user)
        resp = p.pass_(args.password)
    return resp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("--stls")
    ap.add_argument("--ssl")
    ap.add_argument("--auth-plain", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--dele", default="")
    ap.add_argument("--drop", action="store_true")
    ap.add_argument("--hold", type=float, default=0)
    args = ap.parse_args()
    try:
        p = connect(args)
        login(p, args)
        count, octets = p.stat()
        print("stat %d %d" % (count, octets))
        _, uidls, _ = p.uidl()
        for line in uidls:
            print("uidl " + line.decode())
        if args.out:
            _, listing, _ = p.list()
            sizes = dict((int(a), int(b)) for a, b in (l.split() for l in listing))
            ok = True
            for n in sorted(sizes):
                resp, lines, _ = p.retr(n)
                data = b"".join(l + b"\r\n" for l in lines)
                with open(os.path.join(args.out, str(n)), "wb") as f:
                    f.write(data)
                said = int(resp.split()[1])
                if not (sizes[n] == said == len(data)):
                    ok = False
                    print("size mismatch %d: list %d ok %d octets %d" % (n, sizes[n], said, len(data)))
            print("sizes ok" if ok else "sizes wrong")
        for n in filter(None, args.dele.split(",")):
            p.dele(int(n))
        if args.hold:
            time.sleep(args.hold)
        if args.drop:
            p.sock.close()
            print("dropped")
            return 0
        print(p.quit().decode())
    except (poplib.error_proto, OSError, ssl.SSLError) as e:
        msg = e.args[0] if e.args else e
        print("error %s" % (msg.decode() if isinstance(msg, bytes) else msg))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
