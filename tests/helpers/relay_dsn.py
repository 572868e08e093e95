#!/usr/bin/env python3
"""relay_dsn: check the delivery reports in an mbox with Python's email package.

usage: relay_dsn.py MBOX
       relay_dsn.py --file MESSAGE     (one message in a file of its own)
For every message, prints what RFC 3464 requires of a delivery report, one
item a line, so that a test can assert on it:
    return-path: <...>              (a report is sent from the null sender)
    type: multipart/report; report-type=delivery-status
    parts: text/plain message/delivery-status text/rfc822-headers
    reporting-mta: dns; NAME
    recipient: ADDRESS action=... status=... remote-mta=... diagnostic=...
    returned: Subject of the returned headers
    --
Exits 1, naming the fault, when a message is not a well-formed report: no
multipart/report, a wrong report-type, a first part that is not text, a
second part that is not message/delivery-status, a missing required field
(Reporting-MTA, Final-Recipient, Action, Status), a status that is not
RFC 3463 syntax, or any defect the parser noted.
"""
import email
import email.policy
import mailbox
import re
import sys

ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}


def fail(n, why):
    print("message %d: %s" % (n, why))
    sys.exit(1)


def check(n, raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.defects:
            fail(n, "parser defects %s in %s" % (part.defects, part.get_content_type()))
    print("return-path: %s" % msg.get("Return-Path", "(none)"))
    if msg.get_content_type() != "multipart/report":
        fail(n, "not multipart/report but %s" % msg.get_content_type())
    rtype = msg.get_param("report-type")
    print("type: multipart/report; report-type=%s" % rtype)
    if rtype != "delivery-status":
        fail(n, "report-type is %r" % rtype)
    parts = msg.get_payload()
    print("parts: %s" % " ".join(p.get_content_type() for p in parts))
    if len(parts) < 2 or parts[0].get_content_maintype() != "text":
        fail(n, "the first part must be a human-readable text")
    if parts[1].get_content_type() != "message/delivery-status":
        fail(n, "the second part must be message/delivery-status")
    # The email package parses the status part into blocks of fields: the
    # per-message block first, then one per recipient.
    blocks = parts[1].get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        fail(n, "message/delivery-status needs a per-message and a per-recipient block")
    permsg = blocks[0]
    if not permsg.get("Reporting-MTA"):
        fail(n, "no Reporting-MTA")
    print("reporting-mta: %s" % permsg["Reporting-MTA"])
    for b in blocks[1:]:
        for field in ("Final-Recipient", "Action", "Status"):
            if not b.get(field):
                fail(n, "a recipient block without %s" % field)
        final = b["Final-Recipient"]
        if not re.match(r"^rfc822;\s*\S+@\S+$", final, re.I):
            fail(n, "Final-Recipient %r is not 'rfc822; address'" % final)
        action = b["Action"].strip().lower()
        if action not in ACTIONS:
            fail(n, "Action %r" % action)
        status = b["Status"].strip()
        if not re.match(r"^[245]\.\d{1,3}\.\d{1,3}$", status):
            fail(n, "Status %r is not RFC 3463 syntax" % status)
        diag = " ".join((b.get("Diagnostic-Code") or "").split())
        print("recipient: %s action=%s status=%s remote-mta=%s diagnostic=%s"
              % (final.split(";", 1)[1].strip(), action, status,
                 " ".join((b.get("Remote-MTA") or "-").split()), diag or "-"))
    if len(parts) > 2:
        third = parts[2]
        if third.get_content_type() == "text/rfc822-headers":
            returned = email.message_from_string(third.get_payload(), policy=email.policy.compat32)
        elif third.get_content_type() == "message/rfc822":
            returned = third.get_payload()[0]
        else:
            fail(n, "the third part is %s" % third.get_content_type())
        print("returned: %s" % returned.get("Subject", "(no subject)"))
    print("--")


def main():
    if sys.argv[1] == "--file":
        with open(sys.argv[2], "rb") as f:
            check(1, f.read())
        return
    box = mailbox.mbox(sys.argv[1], create=False)
    keys = list(box.keys())
    if not keys:
        print("no message in %s" % sys.argv[1])
        sys.exit(1)
    for n, key in enumerate(keys, 1):
        check(n, box.get_bytes(key))


if __name__ == "__main__":
    main()
