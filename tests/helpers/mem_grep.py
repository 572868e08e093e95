#!/usr/bin/env python3
"""mem_grep.py PID NEEDLE...: which octet strings a process holds in memory.

Each NEEDLE is hex; prints "found HEX" or "absent HEX" for each, reading
every readable private or anonymous mapping of PID through /proc/PID/mem
(root, or the process's owner with ptrace rights).  Used to show that a
session process holds no copy of the TLS private key while its monitor
does (a search that finds nothing anywhere proves nothing).
"""
import sys

CHUNK = 1 << 20


def regions(pid):
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            if fields[1][0] != "r" or path in ("[vvar]", "[vsyscall]"):
                continue
            yield lo, hi


def main():
    pid = int(sys.argv[1])
    needles = [bytes.fromhex(h) for h in sys.argv[2:]]
    found = set()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for lo, hi in regions(pid):
            # a chunk at a time, overlapping by the longest needle
            overlap = max(len(n) for n in needles) - 1
            tail = b""
            for at in range(lo, hi, CHUNK):
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(CHUNK, hi - at))
                except OSError:
                    break
                for n in needles:
                    if n in data:
                        found.add(n)
                tail = data[-overlap:] if overlap else b""
    for n in needles:
        print("%s %s" % ("found" if n in found else "absent", n.hex()))


if __name__ == "__main__":
    main()
