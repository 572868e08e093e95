#!/usr/bin/env python3
"""pop3_crash: SIGKILL mailslot-pop3d's monitor at every system call of
its UPDATE (QUIT), and check that the mailbox survives.

usage: pop3_crash.py --pop3d BIN --smtpd BIN --format FMT --work DIR

Four messages are delivered to alice by mailslot-smtpd (terminal mode);
that spool is the pristine copy.  A session logs in, marks messages 1
and 3 deleted, and then, with strace attached to the monitor alone (the
process that holds the mailbox; the session is its child), says QUIT.  A
clean run lists the monitor's calls from there to its exit; then every
one of them gets its own run on a fresh copy, killed just before it
(strace -e inject=NAME:signal=SIGKILL:when=N, N counting that call's
name).  After each kill:
  1. the mailbox parses (Python's mailbox module), and holds either all
     four messages or the two kept, each byte for byte as before (Maildir
     and MH, deleting file by file, may hold any set between the two);
  2. a clean session then logs in (no lock left that blocks it) and
     applies its own deletions; an mbox then takes a delivery (the
     dotlock the killed run held is free).
Prints one line per kill point and a summary; exit 1 on any violation.
"""
import argparse
import mailbox
import os
import re
import shutil
import subprocess
import sys
import time

PASSWORD = "alice secret"


def deliver(args, spool, subject):
    text = "HELO t\nMAIL FROM:<s@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n" \
           "Subject: %s\n\nbody of %s\nFrom a line\n>From quoted\n.\nQUIT\n" % (subject, subject)
    subprocess.run([args.smtpd, "--spool", spool, "--queue", os.path.join(args.work, "queue"), "--users",
                    os.path.join(args.work, "users"), "--domain", "example.org", "--hostname", "mx.test",
                    "--format", args.format, "--user", args.me, "--log", "stderr", "--lock-timeout", "2"],
                   input=text.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def messages(args, spool):
    """subject -> bytes of every message in alice's mailbox"""
    path = os.path.join(spool, "alice")
    if args.format == "mbox":
        box = mailbox.mbox(path, create=False)
    elif args.format == "maildir":
        box = mailbox.Maildir(path, create=False)
    else:
        box = mailbox.MH(path, create=False)
    out = {}
    for key in box.keys():
        m = box.get_message(key)
        out[m["Subject"]] = m.as_bytes(unixfrom=False)
    return out


def pop3d_cmd(args, spool):
    return [args.pop3d, "--spool", spool, "--users", os.path.join(args.work, "users"), "--passwd",
            os.path.join(args.work, "passwd"), "--format", args.format, "--user", args.me, "--log", "stderr",
            "--hostname", "pop.test", "--lock-timeout", "2"]


def session(args, spool, inject=None, trace=None):
    """Log in, DELE 1 and 3, QUIT with strace on the monitor.  The monitor's
    calls after the attach (names), when trace is given."""
    log = open(os.path.join(args.work, "pop3d.log"), "ab")
    p = subprocess.Popen(pop3d_cmd(args, spool), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    out = p.stdout

    def say(line, replies=1):
        p.stdin.write(line.encode() + b"\r\n")
        p.stdin.flush()
        return [out.readline() for _ in range(replies)]

    out.readline()
    say("USER alice")
    r = say("PASS " + PASSWORD)
    if not r[0].startswith(b"+OK"):
        p.kill()
        p.wait()
        return None, r[0]
    say("DELE 1")
    say("DELE 3")
    cmd = ["strace", "-qq", "-p", str(p.pid), "-o", trace or os.devnull]
    if inject:
        cmd += ["-e", "inject=%s:signal=SIGKILL:when=%d" % inject]
    st = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    for _ in range(500):
        with open("/proc/%d/status" % p.pid) as f:
            if re.search(r"^TracerPid:\s*[1-9]", f.read(), re.M):
                break
        time.sleep(0.01)
    r = say("QUIT")
    p.stdin.close()
    p.wait()
    st.wait()
    names = []
    if trace:
        with open(trace) as f:
            for line in f:
                m = re.match(r"^([a-z_0-9]+)\(", line)
                if m:
                    names.append(m.group(1))
    return names, r[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pop3d", required=True)
    ap.add_argument("--smtpd", required=True)
    ap.add_argument("--format", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    args.me = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    pristine = os.path.join(args.work, "pristine")
    os.makedirs(pristine)
    os.makedirs(os.path.join(args.work, "queue"), exist_ok=True)
    for i in range(1, 5):
        deliver(args, pristine, "m%d" % i)
    before = messages(args, pristine)
    assert len(before) == 4, before.keys()
    kept = {k: v for k, v in before.items() if k in ("m2", "m4")}

    spool = os.path.join(args.work, "spool")
    shutil.copytree(pristine, spool, symlinks=True)
    names, reply = session(args, spool, trace=os.path.join(args.work, "clean.trace"))
    if not reply.startswith(b"+OK") or messages(args, spool) != kept:
        print("VIOLATION: the clean run did not delete 1 and 3: %r" % reply)
        return 1
    points, seen, violations, reached = [], {}, 0, 0
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        points.append((name, seen[name]))
    for name, nth in points:
        shutil.rmtree(spool)
        shutil.copytree(pristine, spool, symlinks=True)
        _, reply = session(args, spool, inject=(name, nth))
        label = "%s#%d" % (name, nth)
        problems = []
        try:
            after = messages(args, spool)
        except Exception as e:  # an unparseable mailbox is the failure looked for
            problems.append("mailbox unreadable: %s" % e)
            after = {}
        if not problems:
            if any(after.get(k) != before[k] for k in after) or set(after) - set(before):
                problems.append("a message changed: %s" % sorted(after))
            if not set(kept) <= set(after):
                problems.append("a kept message lost: %s" % sorted(after))
            if args.format == "mbox" and set(after) not in (set(before), set(kept)):
                problems.append("neither before nor after: %s" % sorted(after))
        if not reply.startswith(b"+OK"):
            reached += 1
        again, r2 = session(args, spool)
        if again is None:
            problems.append("next login refused: %r" % r2)
        elif len(messages(args, spool)) != len(after) - len([n for n in (1, 3) if n <= len(after)]):
            problems.append("the next session did not apply its deletions")
        # an mbox's delivery takes the dotlock the killed UPDATE held
        try:
            if args.format == "mbox":
                deliver(args, spool, "late")
                if "late" not in messages(args, spool):
                    problems.append("the next delivery is missing")
        except subprocess.CalledProcessError:
            problems.append("the next delivery failed")
        leftovers = [f for f in os.listdir(spool) if f.startswith(",")]
        print("%-22s %-10s kept=%d%s%s" % (label, "killed" if not reply.startswith(b"+OK") else "ran-on",
                                            len(after), " leftover=" + ",".join(leftovers) if leftovers else "",
                                            "".join(" VIOLATION: " + p for p in problems)))
        violations += len(problems)
    print("%d kill points, %d killed before the +OK, %d violations" % (len(points), reached, violations))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
