#!/usr/bin/python3
"""relay_sink: a foreign SMTP server for relay.bats, built on aiosmtpd.

usage: /usr/bin/python3 relay_sink.py ADDR PORT DIR [options]
  --reject ADDRESS=REPLY   answer RCPT TO:<ADDRESS> with REPLY ("550 5.1.1 ...")
  --data-delay SECONDS     wait this long before answering the final dot
  --size-limit BYTES       announce SIZE BYTES and hold the client to it
Each accepted message is stored as DIR/N.eml (the bytes received, after
dot-unstuffing, with CRLF turned into LF as a mailbox holds it), its envelope as DIR/N.env ("from <a>" then
one "rcpt <b>" a line), the MAIL parameters as DIR/N.opts (one a line),
and the number of octets that came after 354, CRLFs and all, as DIR/N.size
(the dot-unstuffed text, which RFC 1870 counts).  DIR/sessions gets one line per connection.
Needs Debian's python3-aiosmtpd, so run it with /usr/bin/python3, not a
python3 from a virtual environment.  Stops on SIGTERM.
"""
import argparse
import asyncio
import os
import signal
import threading

from aiosmtpd.controller import Controller


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
            f.write("EHLO %s from %s\n" % (hostname, session.peer[0]))
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
        with open(base + ".env", "w") as f:
            # aiosmtpd gives the null reverse-path as "<>"
            sender = "" if envelope.mail_from == "<>" else envelope.mail_from
            f.write("from <%s>\n" % sender)
            for r in envelope.rcpt_tos:
                f.write("rcpt <%s>\n" % r)
        return "250 2.0.0 stored as %d" % n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("dir")
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--data-delay", type=float, default=0)
    p.add_argument("--size-limit", type=int, default=33554432)
    a = p.parse_args()
    rejects = {}
    for r in a.reject:
        address, reply = r.split("=", 1)
        rejects[address.lower()] = reply
    os.makedirs(a.dir, exist_ok=True)
    handler = Handler(a.dir, rejects, a.data_delay)
    # 8BITMIME and SMTPUTF8 as a real server offers them; decode_data=False
    # keeps the message as bytes, so a comparison is byte for byte.
    controller = Controller(handler, hostname=a.addr, port=a.port, server_hostname="sink.foreign.test",
                            decode_data=False, enable_SMTPUTF8=True, ready_timeout=10,
                            data_size_limit=a.size_limit)
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
