#!/usr/bin/env python3
"""deliv_race: a local user attacking a delivery in progress.

  deliv_race.py UID GID SECONDS A B [A B]...
      As UID:GID, swap each pair of names A and B (renameat2 with
      RENAME_EXCHANGE: one system call, no moment where either is missing)
      as fast as it can for SECONDS.  Prints the number of swaps.
"""
import ctypes
import os
import sys
import time

AT_FDCWD = -100
RENAME_EXCHANGE = 2


def main():
    uid, gid, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    pairs = list(zip(sys.argv[4::2], sys.argv[5::2]))
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = libc.renameat2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    encoded = [(a.encode(), b.encode()) for a, b in pairs]
    swaps = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for a, b in encoded:
            if renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0:
                swaps += 1
    print(swaps)


if __name__ == "__main__":
    main()
