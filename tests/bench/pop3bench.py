#!/usr/bin/env python3
"""pop3bench: the client side of tests/bench/pop3.sh.

  pop3bench.py sessions PORT USER PASSWORD COUNT
      COUNT sessions one after the other, each: greeting, USER and PASS,
      STAT, UIDL, RETR of every message (the RETRs pipelined, as both
      servers offer PIPELINING), QUIT.  Prints one line per session:
      "ms OCTETS MESSAGES" (milliseconds from connect to the QUIT reply,
      octets of the RETR replies).
  pop3bench.py login PORT USER PASSWORD COUNT
      COUNT sessions one after the other, each: greeting, USER and PASS,
      STAT, QUIT (what a client checking for mail does; the per-connection
      cost of tests/bench/systemd.sh).  Prints one line per session:
      "ms MESSAGES".
  pop3bench.py idle PORT PASSWORD USER...
      one session per USER, logged in and left idle after STAT; prints
      "ready N", waits for a line (or EOF) on standard input, then QUITs.
Raw sockets and one buffer: the client's cost stays small beside the
server's.  Exits 1 with "error ..." on any -ERR or short reply.
"""
import socket
import sys
import time


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def _fill(self):
        data = self.s.recv(1 << 20)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _compact(self):
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0

    def line(self):
        self._compact()
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                if out.startswith(b"-ERR"):
                    raise RuntimeError(out.decode(errors="replace"))
                return out
            self._fill()

    def multi(self):
        """a +OK line and its multi-line body up to the dot; the body's length"""
        self.line()
        start = scan = self.pos
        while len(self.buf) - start < 3:
            self._fill()
        if self.buf.startswith(b".\r\n", start):
            self.pos = start + 3
            return 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", scan)
            if i >= 0:
                self.pos = i + 5
                return i + 2 - start
            scan = max(start, len(self.buf) - 4)
            self._fill()

    def send(self, data):
        self.s.sendall(data)


def login(c, user, password):
    c.line()
    c.send(b"USER %s\r\nPASS %s\r\n" % (user.encode(), password.encode()))
    c.line()
    c.line()


def session(port, user, password, retrieve=True):
    t0 = time.perf_counter()
    c = Conn(port)
    login(c, user, password)
    c.send(b"STAT\r\n")
    count = int(c.line().split()[1])
    octets = 0
    if retrieve:
        c.send(b"UIDL\r\n")
        c.multi()
        c.send(b"".join(b"RETR %d\r\n" % i for i in range(1, count + 1)))
        octets = sum(c.multi() for _ in range(count))
    c.send(b"QUIT\r\n")
    c.line()
    c.s.close()
    return (time.perf_counter() - t0) * 1000, octets, count


def main():
    try:
        if sys.argv[1] == "sessions":
            port, user, password, n = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
            for _ in range(n):
                ms, octets, count = session(port, user, password)
                print("%.3f %d %d" % (ms, octets, count), flush=True)
        elif sys.argv[1] == "login":
            port, user, password, n = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
            for _ in range(n):
                ms, _, count = session(port, user, password, retrieve=False)
                print("%.3f %d" % (ms, count), flush=True)
        elif sys.argv[1] == "idle":
            port, password, users = int(sys.argv[2]), sys.argv[3], sys.argv[4:]
            conns = []
            for u in users:
                c = Conn(port)
                login(c, u, password)
                c.send(b"STAT\r\n")
                c.line()
                conns.append(c)
            print("ready %d" % len(conns), flush=True)
            sys.stdin.readline()
            for c in conns:
                c.send(b"QUIT\r\n")
                c.line()
        return 0
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        print("error %s" % e, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
