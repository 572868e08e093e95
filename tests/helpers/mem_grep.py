#!/usr/bin/env python3
"""mem_grep.py PID NEEDLE...: which octet strings a process holds in memory.

Each NEEDLE is hex; prints "found HEX" or "absent HEX" for each, reading
every readable private or anonymous mapping of PID through /proc/PID/mem
(root, or the process's owner with ptrace rights).  Used to show that a
session process holds no copy of the TLS private key while its monitor
does (a search that finds nothing anywhere proves nothing).
"""
import sys


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
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            for n in needles:
                if n in data:
                    found.add(n)
    for n in needles:
        print("%s %s" % ("found" if n in found else "absent", n.hex()))


if __name__ == "__main__":
    main()
