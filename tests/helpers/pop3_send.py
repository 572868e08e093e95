#!/usr/bin/env python3
"""pop3_send: deliver the octets of FILE (CRLF line ends) through
mailslot-smtpd on 127.0.0.1:PORT to RECIPIENT, as smtplib sends them.

usage: pop3_send.py PORT RECIPIENT FILE
"""
import smtplib
import sys

port, rcpt, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(path, "rb") as f:
    data = f.read()
with smtplib.SMTP("127.0.0.1", port, local_hostname="sender.test", timeout=20) as s:
    s.sendmail("sender@remote.example", [rcpt], data)
