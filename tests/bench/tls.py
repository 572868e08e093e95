#!/usr/bin/env python3
"""tls.py - time SMTP sessions inside TLS, or hold idle ones, for tests/bench/tls.sh.

  tls.py time KIND HOST PORT N     N sequential sessions; prints the median
                                   and the 90th percentile in ms
  tls.py idle HOST PORT N          N connections after STARTTLS and EHLO,
                                   held until a line on standard input

KIND: starttls-auth (STARTTLS, AUTH PLAIN, one 2 KiB message, QUIT),
smtps-auth (the same in implicit TLS) or starttls (no AUTH).  The user is
alice, password "alice secret", the recipient bench@bench.example.  Every
session is new: no TLS session is offered for resumption.  Any reply other
than the expected one ends the run with status 1.
"""
import smtplib
import socket
import ssl
import statistics
import sys
import time

BODY = "Subject: bench\r\n\r\n" + ("x" * 76 + "\r\n") * 26  # about 2 KiB


def context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def session(kind, host, port, ctx):
    if kind == "smtps-auth":
        s = smtplib.SMTP_SSL(host, port, local_hostname="client.test", context=ctx)
    else:
        s = smtplib.SMTP(host, port, local_hostname="client.test")
        s.starttls(context=ctx)
    if kind.endswith("-auth"):
        s.login("alice", "alice secret")
    refused = s.sendmail("alice@bench.example", ["bench@bench.example"], BODY)
    if refused:
        raise RuntimeError("refused: %r" % refused)
    s.quit()


def time_sessions(kind, host, port, n):
    ctx = context()
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        session(kind, host, port, ctx)
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    print("%.2f %.2f" % (statistics.median(ms), ms[int(len(ms) * 0.9) - 1]))


def hold(host, port, n):
    ctx = context()
    held = []
    for _ in range(n):
        s = smtplib.SMTP(host, port, local_hostname="client.test")
        s.starttls(context=ctx)
        s.ehlo()
        held.append(s)
    print("held", len(held), flush=True)
    sys.stdin.readline()


def main():
    try:
        if sys.argv[1] == "time":
            time_sessions(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        else:
            hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    except (OSError, smtplib.SMTPException, RuntimeError) as e:
        sys.exit("tls.py: %s" % e)


if __name__ == "__main__":
    main()
