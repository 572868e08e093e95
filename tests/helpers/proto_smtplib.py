#!/usr/bin/env python3
"""proto_smtplib: send one message with Python's smtplib, as a program would.

usage: proto_smtplib.py PORT SENDER SUBJECT RECIPIENT...

EHLO, MAIL, one RCPT per recipient, DATA and QUIT through
smtplib.SMTP.sendmail.  Prints "refused <addr> <code>" for each recipient
the server turned down, then "sent" when the message was accepted for the
others.  When the server refuses the whole message (every recipient, the
sender or the data), prints "error <code>" (or "all refused") and exits 1.
"""
import smtplib
import sys
from email import policy
from email.message import EmailMessage


def main():
    port, sender, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rcpts = sys.argv[4:]
    msg = EmailMessage()
    msg["From"] = sender or "nobody@remote.example"
    msg["To"] = ", ".join(rcpts)
    msg["Subject"] = subject
    msg.set_content("token %s\n" % subject)
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="smtplib.test", timeout=10) as s:
            refused = s.sendmail(sender, rcpts, msg.as_bytes(policy=policy.SMTP))
    except smtplib.SMTPRecipientsRefused as e:
        for addr, (code, _) in sorted(e.recipients.items()):
            print("refused %s %d" % (addr, code))
        print("all refused")
        return 1
    except smtplib.SMTPResponseException as e:
        print("error %d" % e.smtp_code)
        return 1
    for addr, (code, _) in sorted(refused.items()):
        print("refused %s %d" % (addr, code))
    print("sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
