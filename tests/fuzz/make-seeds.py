#!/usr/bin/env python3
"""Write the hand-made seeds of tests/fuzz/corpus/ (session, addr, data, reply).

The captured seeds (dns: answers of a dnsmasq; envelope: files written by
mailslot-smtpd and updated by mailslot-relay; reply/*-captured: what
mailslot-smtpd and Postfix's smtp-sink answered) are kept as files and not
made here; see README.  Regression inputs found by fuzzing are kept as
files too (named regress-*).  Run from anywhere: python3 make-seeds.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def crlf(lines):
    return b"".join(l + b"\r\n" for l in lines)


# --- session: first byte is the mode (fuzz_session.c), then client bytes ---
SOCKET, TERMINAL, UCSPI = 0x00, 0x02, 0x03
MAILDIR, MH = 0x04, 0x08
RELAY_NO, FEW_RCPTS, UCSPI_NETWORK, SMALL_SIZE = 0x10, 0x20, 0x40, 0x80

simple = crlf([b"EHLO client.example", b"MAIL FROM:<sender@example.org>", b"RCPT TO:<alice@fuzz.test>",
               b"DATA", b"Subject: hello", b"", b"Hello Alice.", b".", b"QUIT"])
put("session", "simple-socket", bytes([SOCKET]) + simple)
put("session", "simple-maildir", bytes([SOCKET | MAILDIR]) + simple)
put("session", "simple-mh", bytes([SOCKET | MH]) + simple)
put("session", "terminal-lf", bytes([TERMINAL]) + simple.replace(b"\r\n", b"\n"))
put("session", "pipelined-two-messages", bytes([SOCKET]) + crlf([
    b"EHLO client.example", b"MAIL FROM:<a@example.org> SIZE=120 BODY=8BITMIME", b"RCPT TO:<alice@fuzz.test>",
    b"RCPT TO:<Bob@Example.ORG>", b"RCPT TO:<staff@fuzz.test>", b"DATA", b"From: a@example.org",
    b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000", b"", b"..dot stuffed", b"From the start", b".",
    b"RSET", b"MAIL FROM:<>", b"RCPT TO:<postmaster>", b"DATA", b"bounce body", b".", b"QUIT"]))
put("session", "relay-queue", bytes([SOCKET]) + crlf([
    b"EHLO c", b"MAIL FROM:<s@example.org>", b"RCPT TO:<someone@remote.example>",
    b"RCPT TO:<\"quoted user\"@remote.example>", b"RCPT TO:<friend@fuzz.test>", b"RCPT TO:<far@fuzz.test>",
    b"RCPT TO:<x@[192.0.2.7]>", b"DATA", b"Subject: relay", b"", b"body", b".", b"QUIT"]))
put("session", "relay-denied", bytes([SOCKET | RELAY_NO]) + crlf([
    b"HELO c", b"MAIL FROM:<s@example.org>", b"RCPT TO:<someone@remote.example>", b"RCPT TO:<bob@fuzz.test>",
    b"DATA", b"x", b".", b"QUIT"]))
put("session", "ucspi-literal", bytes([UCSPI]) + crlf([
    b"EHLO [192.0.2.1]", b"MAIL FROM:<a@[IPv6:2001:db8::1]>", b"RCPT TO:<postmaster@[127.0.0.1]>",
    b"RCPT TO:<@relay.example,@other.example:alice@fuzz.test>", b"DATA", b"x", b".", b"QUIT"]))
put("session", "ucspi-network", bytes([UCSPI | UCSPI_NETWORK]) + crlf([
    b"EHLO c", b"MAIL FROM:<a@b.example>", b"RCPT TO:<alice@[192.0.2.25]>", b"RCPT TO:<x@remote.example>",
    b"DATA", b"x", b".", b"QUIT"]))
# SMTP smuggling probes: ends of data that are not <CRLF>.<CRLF>
for name, end in [(b"lf-dot-lf", b"\n.\n"), (b"cr-dot-cr", b"\r.\r"), (b"lf-dot-crlf", b"\n.\r\n"),
                  (b"crlf-dot-lf", b"\r\n.\n"), (b"cr-lf-dot", b"\r\r\n.\r\n")]:
    body = (b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@fuzz.test>\r\nDATA\r\nSubject: x\r\n\r\nfirst"
            + end + b"MAIL FROM:<admin@fuzz.test>\r\nRCPT TO:<bob@fuzz.test>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n")
    put("session", "smuggle-" + name.decode(), bytes([SOCKET]) + body)
    put("session", "smuggle-terminal-" + name.decode(), bytes([TERMINAL]) + body)
put("session", "too-many-recipients", bytes([SOCKET | FEW_RCPTS]) + crlf(
    [b"EHLO c", b"MAIL FROM:<a@example.org>"] + [b"RCPT TO:<alice@fuzz.test>", b"RCPT TO:<bob@fuzz.test>",
                                                b"RCPT TO:<carol@fuzz.test>"] + [b"DATA", b"x", b".", b"QUIT"]))
put("session", "too-big", bytes([SOCKET | SMALL_SIZE]) + crlf(
    [b"EHLO c", b"MAIL FROM:<a@example.org> SIZE=2000", b"MAIL FROM:<a@example.org> SIZE=100",
     b"RCPT TO:<alice@fuzz.test>", b"DATA"] + [b"x" * 70] * 20 + [b".", b"QUIT"]))
put("session", "mail-loop", bytes([SOCKET]) + crlf(
    [b"EHLO c", b"MAIL FROM:<a@example.org>", b"RCPT TO:<alice@fuzz.test>", b"DATA"]
    + [b"Received: from hop%d" % i for i in range(102)] + [b"", b"loop", b".", b"QUIT"]))
put("session", "bad-commands", bytes([SOCKET]) + crlf([
    b"MAIL FROM:<a@b>", b"HELO", b"EHLO c", b"DATA", b"RCPT TO:<a@fuzz.test>", b"MAIL FROM:a@b",
    b"MAIL FROM:<a@b> FOO=bar", b"MAIL FROM:<a@b> SIZE=-1", b"MAIL FROM:<a@b> BODY=9BIT", b"VRFY alice",
    b"EXPN staff", b"HELP", b"NOOP", b"STARTTLS", b"BDAT 10 LAST", b"RSET x"]))
put("session", "errors-421", bytes([SOCKET]) + crlf([b"XYZZY"] * 12))
put("session", "long-line-nul-8bit", bytes([SOCKET]) + b"EHLO " + b"a" * 600 + b"\r\nNOOP\x00x\r\nNOOP \xe9\r\n"
    + b"HELO c\r\nMAIL FROM:<" + b"l" * 65 + b"@fuzz.test>\r\nMAIL FROM:<\"a\\\"b c\"@fuzz.test>\r\n"
    + b"RCPT TO:<loop1@fuzz.test>\r\nRCPT TO:<nobody@fuzz.test>\r\nDATA\r\n" + b"y" * 1200 + b"\r\n.\r\nQUIT\r\n")
put("session", "helo-resets", bytes([SOCKET]) + crlf([
    b"EHLO a", b"MAIL FROM:<a@example.org>", b"RCPT TO:<alice@fuzz.test>", b"EHLO b", b"DATA",
    b"HELO c", b"MAIL FROM:<a@example.org> SIZE=10", b"QUIT"]))
put("session", "deferred-local", bytes([SOCKET]) + crlf([
    b"EHLO c", b"MAIL FROM:<a@example.org>", b"RCPT TO:<carol@fuzz.test>", b"DATA", b"x", b".",
    b"MAIL FROM:<a@example.org>", b"RCPT TO:<carol@fuzz.test>", b"RCPT TO:<alice@fuzz.test>", b"DATA", b"y", b".",
    b"MAIL FROM:<a@example.org>", b"RCPT TO:<staff@fuzz.test>", b"RCPT TO:<x@remote.example>", b"DATA", b"z", b".",
    b"QUIT"]))
put("session", "eof-in-data", bytes([SOCKET]) + crlf([
    b"EHLO c", b"MAIL FROM:<a@example.org>", b"RCPT TO:<alice@fuzz.test>", b"DATA", b"partial"]))

# --- addr: the text after "FROM:" / "TO:" ---
for i, a in enumerate([b"<alice@example.org>", b"<>", b" <a@b.c> SIZE=100 BODY=8BITMIME", b"alice@example.org",
                       b"<@a.example,@b.example:user@c.example>", b"<\"quoted > user\"@example.org>",
                       b"<\"a\\\"b\"@example.org>", b"<user@[192.0.2.1]>", b"<user@[IPv6:2001:db8::1]>",
                       b"<user@[tag:content]>", b"<postmaster>", b"<a.b.c@d-e.f>", b"<a..b@c>", b"<a@-b.c>",
                       b"<" + b"l" * 64 + b"@" + b"d" * 63 + b"." + b"e" * 63 + b">", b"<a@b> AUTH=<>",
                       b"<a@b> RET=HDRS ENVID=QQ", b"<a@b>X", b"<a@b", b"<a b@c>", b"<a@b> =x",
                       b"<user@[300.1.1.1]>", b"<user@[IPv6:::ffff:1.2.3.4]>", b"<\"\"@x>"]):
    put("addr", "path-%02d" % i, a)

# --- data: first byte is the mode (fuzz_data.c), then what follows 354 ---
STRICT, SMALL, CMDFIRST = 1, 2, 4
msg = b"From: a@example.org\r\nReceived: from x\r\nSubject: s\r\n\r\nbody\r\n..stuffed\r\nFrom me\r\n>From quoted\r\n"
put("data", "strict-simple", bytes([STRICT]) + msg + b".\r\nQUIT\r\n")
put("data", "lenient-lf", bytes([0]) + msg.replace(b"\r\n", b"\n") + b".\nQUIT\n")
put("data", "strict-after-command", bytes([STRICT | CMDFIRST]) + b"DATA\r\n" + msg + b".\r\nMAIL FROM:<x@y>\r\n")
put("data", "strict-too-big", bytes([STRICT | SMALL]) + b"x" * 80 + b"\r\n" + b"y" * 150 + b"\r\n.\r\n")
put("data", "strict-long-line", bytes([STRICT]) + b"z" * 999 + b"\r\n" + b"." + b"w" * 998 + b"\r\n.\r\n")
put("data", "strict-overflow", bytes([STRICT]) + b"q" * 5000 + b"\r\n.\r\n")
for name, end in [("lf-dot-lf", b"\n.\n"), ("cr-dot-cr", b"\r.\r\n"), ("lf-dot-crlf", b"\n.\r\n"),
                  ("crlf-dot-lf", b"\r\n.\n"), ("bare-cr", b"\rx\r\n.\r\n")]:
    put("data", "smuggle-strict-" + name, bytes([STRICT]) + b"a" + end + b"MAIL FROM:<x@y>\r\n.\r\n")
    put("data", "smuggle-lenient-" + name, bytes([0]) + b"a" + end + b"MAIL FROM:<x@y>\r\n.\r\n")
put("data", "no-end", bytes([STRICT]) + b"never ends\r\n")
put("data", "buffer-edge", bytes([STRICT]) + (b"x" * 997 + b"\r\n") * 17 + b".\r\n")

# --- reply: first byte is the job (fuzz_reply.c), then the server's bytes ---
GREET = b"220 mx.example.net ESMTP\r\n"
EHLO = crlf([b"250-mx.example.net Hello relay.fuzz.test", b"250-PIPELINING", b"250-SIZE 26214400",
             b"250-8BITMIME", b"250 ENHANCEDSTATUSCODES"])
OK = b"250 2.1.0 Ok\r\n"
put("reply", "pipelined-one", bytes([0]) + GREET + EHLO + OK + b"250 2.1.5 Ok\r\n" + b"354 go ahead\r\n"
    + b"250 2.0.0 Ok: queued as ABC\r\n" + b"221 2.0.0 Bye\r\n")
put("reply", "pipelined-four-mixed", bytes([3]) + GREET + EHLO + OK + b"250 2.1.5 Ok\r\n"
    + b"550 5.1.1 no such user\r\n" + b"452 4.5.3 too many\r\n" + b"250 2.1.5 Ok\r\n" + b"354 go\r\n"
    + b"250-2.0.0 queued\r\n250 2.0.0 as XYZ\r\n" + b"221 Bye\r\n")
put("reply", "pipelined-none-accepted", bytes([1]) + GREET + EHLO + OK + b"550 5.1.1 no\r\n550 5.1.1 no\r\n"
    + b"354 go ahead anyway\r\n" + b"554 5.5.1 no valid recipients\r\n" + b"221 Bye\r\n")
put("reply", "plain-helo-fallback", bytes([1 | 4]) + GREET + b"502 5.5.1 EHLO not implemented\r\n"
    + b"250 old.example.net\r\n" + OK + b"250 Ok\r\n250 Ok\r\n" + b"354 go\r\n" + b"250 Ok\r\n221 Bye\r\n")
put("reply", "size-too-small", bytes([8]) + GREET + b"250-mx\r\n250 SIZE 10\r\n" + b"221 Bye\r\n")
put("reply", "size-no-limit", bytes([0x10 | 12]) + GREET + b"250-mx\r\n250-SIZE\r\n250 8BITMIME\r\n" + OK
    + b"250 Ok\r\n354 go\r\n250 Ok\r\n221 Bye\r\n")
put("reply", "greeting-refused", bytes([0]) + b"554-mx.example.net no\r\n554 go away\r\n")
put("reply", "mail-refused", bytes([2]) + GREET + EHLO + b"550 5.7.1 sender refused\r\n" + b"503 no\r\n" * 3
    + b"554 no\r\n221 Bye\r\n")
put("reply", "code-changes-mid-reply", bytes([0]) + GREET + b"250-mx\r\n251 PIPELINING\r\n")
put("reply", "too-many-lines", bytes([0]) + GREET + b"250-x\r\n" * 101 + b"250 x\r\n")
put("reply", "data-refused", bytes([0]) + b"220 x\r\n250 x\r\n" + OK + b"250 Ok\r\n451 4.3.0 try later\r\n"
    + b"221 Bye\r\n")
put("reply", "eof-after-data", bytes([0]) + GREET + EHLO + OK + b"250 Ok\r\n354 go\r\n")

# --- dictionaries ---
words = [b"HELO", b"EHLO", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"RSET", b"NOOP", b"QUIT", b"VRFY", b"EXPN",
         b"HELP", b"STARTTLS", b"BDAT", b"AUTH", b"SIZE=", b"BODY=8BITMIME", b"BODY=7BIT", b"<>", b"<@",
         b"postmaster", b"alice", b"bob", b"staff", b"friend", b"loop1", b"far", b"@fuzz.test",
         b"@example.org", b"@remote.example", b"[IPv6:", b"[127.0.0.1]", b"[192.0.2.25]", b"\r\n", b"\r\n.\r\n",
         b"\n.\n", b"\r.\r", b"Received:", b"From ", b"..", b"250-", b"250 ", b"354 ", b"421 ", b"550 ",
         b"PIPELINING", b"8BITMIME", b"SIZE ", b"ENHANCEDSTATUSCODES", b"220 "]


def dict_line(w):
    return b'"' + b"".join(bytes([c]) if 0x20 <= c < 0x7f and c not in b'"\\' else b"\\x%02x" % c
                           for c in w) + b'"\n'


with open(os.path.join(HERE, "smtp.dict"), "wb") as f:
    f.write(b"# SMTP words for fuzz_session, fuzz_addr and fuzz_reply (make-seeds.py writes this)\n")
    for w in words:
        f.write(dict_line(w))
with open(os.path.join(HERE, "envelope.dict"), "wb") as f:
    f.write(b"# queue envelope keywords for fuzz_envelope (make-seeds.py writes this)\n")
    for w in [b"mailslot-envelope 1\n", b"id ", b"arrived ", b"sender ", b"sender <>\n", b"client ", b"rcpt ",
              b"error ", b" - ", b"@", b"\"", b"[IPv6:", b"4294967295", b"9223372036854775807"]:
        f.write(dict_line(w))
