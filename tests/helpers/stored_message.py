#!/usr/bin/env python3
"""stored_message.py FORMAT SPOOL USER OUT: the one message in USER's mailbox
as RETR must give it: the stored octets with CRLF line ends; for mbox less
the From_ line and the blank line that ends the message in the mailbox,
and with the mboxrd quoting undone (one '>' off each >+From line).  For
pop3.bats: what mailslot-relay delivered, read from the disk, not through
the code under test.  Exits 1 unless the mailbox holds exactly one message.
"""
import os
import re
import sys


def only_file(dirs):
    names = [os.path.join(d, n) for d in dirs if os.path.isdir(d) for n in os.listdir(d)]
    names = [n for n in names if os.path.isfile(n) and not n.endswith(".status")
             and not os.path.basename(n).startswith(".")]
    if len(names) != 1:
        sys.exit("expected one message file, found %r" % names)
    return open(names[0], "rb").read()


def main():
    fmt, spool, user, out = sys.argv[1:5]
    box = os.path.join(spool, user)
    if fmt == "mbox":
        data = open(box, "rb").read()
        if not data.startswith(b"From ") or data.count(b"\nFrom ") != 0 or not data.endswith(b"\n\n"):
            sys.exit("not an mbox of one message")
        msg = data[data.index(b"\n") + 1:-1]
        msg = re.sub(rb"(?m)^>(>*From )", rb"\1", msg)
    elif fmt == "maildir":
        msg = only_file([os.path.join(box, "new"), os.path.join(box, "cur")])
    else:
        msg = only_file([box])
    with open(out, "wb") as f:
        f.write(msg.replace(b"\n", b"\r\n"))


if __name__ == "__main__":
    main()
