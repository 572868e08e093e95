#!/usr/bin/python3
"""relay_sink: a foreign SMTP server for relay.bats, built on aiosmtpd.

usage: /usr/bin/python3 relay_sink.py ADDR PORT DIR [options]
  --reject ADDRESS=REPLY   answer RCPT TO:<ADDRESS> with REPLY ("550 5.1.1 ...")
  --data-delay SECONDS     wait this long before answering the final dot
  --size-limit BYTES       announce SIZE BYTES and hold the client to it
  --starttls CERT KEY      offer STARTTLS with this certificate chain and key
  --require-tls            with --starttls: refuse MAIL before STARTTLS (530)
  --weak-tls               with --starttls: TLS 1.2 with RSA key exchange only
                           (no forward secrecy; no suite mailslot takes)
  --smtps CERT KEY         TLS from the first octet (RFC 8314) instead
  --auth USER:PASSWORD     require AUTH (PLAIN, LOGIN) with these credentials
                           before MAIL; offered only inside TLS
  --no-plain               offer AUTH LOGIN only
Each accepted message is stored as DIR/N.eml (the bytes received, after
dot-unstuffing, with CRLF turned into LF as a mailbox holds it), its envelope as DIR/N.env ("from <a>" then
one "rcpt <b>" a line), the MAIL parameters as DIR/N.opts (one a line),
and the number of octets that came after 354, CRLFs and all, as DIR/N.size
(the dot-unstuffed text, which RFC 1870 counts), the TLS protocol and
cipher it came under as DIR/N.tls ("TLSv1.3 TLS_AES_256_GCM_SHA384", or
"none"), the user it was authenticated as as DIR/N.auth ("none").
DIR/sessions gets one line per EHLO, DIR/auth one per AUTH attempt
("PLAIN alice ok", "LOGIN bob refused").
Needs Debian's python3-aiosmtpd, so run it with /usr/bin/python3, not a
python3 from a virtual environment.  Stops on SIGTERM.
"""
import argparse
import asyncio
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, directory, rejects, delay):
        self.dir = directory
        self.rejects = rejects
        self.delay = delay
        self.count = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with open(os.path.join(self.dir, "sessions"), "a") as f:
            f.write("EHLO %s from %s tls=%s\n" % (hostname, session.peer[0], tls_of(server).replace(" ", "/")))
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rejects.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.dir, str(n))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content.replace(b"\r\n", b"\n"))
        os.rename(base + ".eml.tmp", base + ".eml")
        with open(base + ".opts", "w") as f:
            f.write("".join("%s\n" % o for o in envelope.mail_options))
        with open(base + ".size", "w") as f:
            f.write("%d\n" % len(envelope.original_content))
        with open(base + ".tls", "w") as f:
            f.write(tls_of(server) + "\n")
        with open(base + ".auth", "w") as f:
            login = session.auth_data.login.decode() if session.authenticated else "none"
            f.write(login + "\n")
        with open(base + ".env", "w") as f:
            # aiosmtpd gives the null reverse-path as "<>"
            sender = "" if envelope.mail_from == "<>" else envelope.mail_from
            f.write("from <%s>\n" % sender)
            for r in envelope.rcpt_tos:
                f.write("rcpt <%s>\n" % r)
        return "250 2.0.0 stored as %d" % n


def tls_of(server):
    """The protocol and cipher of the server's connection, or "none"."""
    obj = server.transport.get_extra_info("ssl_object") if server.transport else None
    if obj is None:
        return "none"
    return "%s %s" % (obj.version(), obj.cipher()[0])


class Authenticator:
    def __init__(self, directory, credentials):
        self.dir = directory
        self.user, self.password = credentials.split(":", 1)

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        login = auth_data.login.decode(errors="replace") if isinstance(auth_data, LoginPassword) else "?"
        with open(os.path.join(self.dir, "auth"), "a") as f:
            f.write("%s %s %s\n" % (mechanism, login, "ok" if ok else "refused"))
        # handled=False: aiosmtpd answers a failure itself (535 5.7.8)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def tls_context(cert, key, weak=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if weak:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("AES128-GCM-SHA256")
    return ctx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("dir")
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--data-delay", type=float, default=0)
    p.add_argument("--size-limit", type=int, default=33554432)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--weak-tls", action="store_true")
    p.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    p.add_argument("--no-plain", action="store_true")
    a = p.parse_args()
    rejects = {}
    for r in a.reject:
        address, reply = r.split("=", 1)
        rejects[address.lower()] = reply
    os.makedirs(a.dir, exist_ok=True)
    handler = Handler(a.dir, rejects, a.data_delay)
    # 8BITMIME and SMTPUTF8 as a real server offers them; decode_data=False
    # keeps the message as bytes, so a comparison is byte for byte.
    tls = {}
    if a.starttls:
        tls = dict(tls_context=tls_context(*a.starttls, weak=a.weak_tls), require_starttls=a.require_tls)
    if a.smtps:
        tls = dict(ssl_context=tls_context(*a.smtps))
    if a.auth:
        # inside implicit TLS aiosmtpd does not know it is in TLS: allow
        # AUTH there; over STARTTLS it is offered only after the handshake
        tls.update(authenticator=Authenticator(a.dir, a.auth), auth_required=True,
                   auth_require_tls=not a.smtps,
                   auth_exclude_mechanism=["PLAIN"] if a.no_plain else None)
    controller = Controller(handler, hostname=a.addr, port=a.port, server_hostname="sink.foreign.test",
                            decode_data=False, enable_SMTPUTF8=True, ready_timeout=10,
                            data_size_limit=a.size_limit, **tls)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open(os.path.join(a.dir, "ready"), "w") as f:
        f.write("%d\n" % os.getpid())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
