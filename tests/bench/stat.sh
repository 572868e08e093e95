#!/usr/bin/env bash
# tests/bench/stat.sh - one million log lines summarised: mailslot-stat
# beside Postfix's pflogsumm.
#
# 1. Real lines: mailslot-smtpd sessions on standard input (messages
#    delivered and queued, unknown users, relaying refused, a message over
#    the size limit, AUTH failed and good) and two mailslot-relay runs
#    against a smarthost (first nothing listening: deferred; then a
#    mailslot-smtpd under systemd-socket-activate that refuses one user:
#    sent and bounced, and the bounce delivered), logged to standard error.
# 2. Those lines replicated to LINES lines of a syslog file
#    ("Dec  1 10:00:00 host mailslot-smtpd[pid]: text"), with fresh queue
#    ids, pids and times spread over a week, and senders and recipient
#    domains drawn from SENDERS and DOMAINS of each, as a busy server's
#    log would hold them; the same records as `journalctl -o json` lines
#    (the fields journalctl prints, cursor included).
# 3. A Postfix log of as many lines, synthesized in the same proportions
#    (postscreen-less smtpd connect/disconnect, client=, cleanup
#    message-id=, qmgr from= size= nrcpt=, local and smtp to= ... status=
#    sent/deferred/bounced, removed, NOQUEUE reject, SASL failures).
# 4. Each summarised once with GNU time: seconds (elapsed, and CPU: user
#    plus system) and peak RSS.
#
# Environment: LINES (1000000), SENDERS (2000), DOMAINS (300), STAT, SMTPD,
# RELAY (the programs at the top of the tree), PFLOGSUMM (pflogsumm),
# BENCH_KEEP=1 keeps the work directory, RESULTS_FILE also gets the table.
# Exit status: 0 measured; 1 a step failed; 2 a tool is missing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

BENCH=bench-stat
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
LINES=${LINES:-1000000}
SENDERS=${SENDERS:-2000}
DOMAINS=${DOMAINS:-300}
STAT=${STAT:-$top/mailslot-stat}
SMTPD=${SMTPD:-$top/mailslot-smtpd}
RELAY=${RELAY:-$top/mailslot-relay}
PFLOGSUMM=${PFLOGSUMM:-pflogsumm}

for tool in "$STAT" "$SMTPD" "$RELAY"; do
	[ -x "$tool" ] || fail "$tool is not built: run make first"
done
bench_need "$PFLOGSUMM" /usr/bin/time systemd-socket-activate python3 openssl

bench_workdir
W=$WORK
listener=
bench_cleanup() {
	[ -z "$listener" ] || kill "$listener" 2>/dev/null || true
}

# ------------------------------------------------------------- real lines
mkdir -p "$W/mail" "$W/queue" "$W/far/mail" "$W/far/queue"
printf 'alice\nbob\ncarol\n' >"$W/users"
: >"$W/aliases"
printf 'alice:%s\n' "$(openssl passwd -6 'alice secret')" >"$W/passwd"
chmod 600 "$W/passwd"
ARGS=(--spool "$W/mail" --queue "$W/queue" --users "$W/users" --aliases "$W/aliases" --domain example.org
	--hostname mx.example.org --user "$(id -un)" --log stderr --error-delay 1)
REAL=$W/real.log

session() { "$SMTPD" "${ARGS[@]}" "$@" >/dev/null 2>>"$REAL"; }

say "bench-stat: capturing real log lines"
for i in 1 2 3; do
	printf 'EHLO c%d.example\nMAIL FROM:<s%d@remote.example>\nRCPT TO:<alice@example.org>\nRCPT TO:<bob@example.org>\nRCPT TO:<r%d@far.example>\nRCPT TO:<nobody@example.org>\nDATA\nSubject: m%d\n\n%s\n.\nQUIT\n' \
		"$i" "$i" "$i" "$i" "$(head -c $((i * 700)) /dev/zero | tr '\0' 'x' | fold -w 70)" | session
done
printf 'EHLO c.example\nMAIL FROM:<s@remote.example>\nRCPT TO:<x@far.example>\nQUIT\n' | session --relay no
printf 'EHLO c.example\nMAIL FROM:<s@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n\n%s\n.\nQUIT\n' \
	"$(head -c 3000 /dev/zero | tr '\0' 'y' | fold -w 70)" | session --max-size 1k
printf 'EHLO c.example\nAUTH PLAIN %s\nAUTH PLAIN %s\nMAIL FROM:<alice@example.org>\nRCPT TO:<y@far.example>\nRCPT TO:<nobody@far.example>\nDATA\nSubject: auth\n\nok\n.\nQUIT\n' \
	"$(printf '\0alice\0bad' | base64)" "$(printf '\0alice\0alice secret' | base64)" | session --passwd "$W/passwd"

port=$(free_port)
RELAY_ARGS=(--queue "$W/queue" --spool "$W/mail" --users "$W/users" --aliases "$W/aliases" --domain example.org
	--hostname mx.example.org --user "$(id -un)" --log stderr --timeout 5 --connect-timeout 2
	--smarthost "127.0.0.1:$port")
"$RELAY" "${RELAY_ARGS[@]}" 2>>"$REAL" || fail "the relay run against nothing failed"
printf 'carol\ny\nx\nr1\nr2\nr3\n' >"$W/far/users"
systemd-socket-activate --accept --inetd -l "127.0.0.1:$port" "$SMTPD" --spool "$W/far/mail" --queue "$W/far/queue" \
	--users "$W/far/users" --aliases "$W/aliases" --domain far.example --hostname far.example \
	--user "$(id -un)" --log stderr 2>/dev/null >/dev/null &
listener=$!
wait_port "$port"
"$RELAY" "${RELAY_ARGS[@]}" --flush 2>>"$REAL" || fail "the relay run against the smarthost failed"
# the bounce to alice, queued by that run
"$RELAY" "${RELAY_ARGS[@]}" --flush 2>>"$REAL" || fail "the relay run for the bounce failed"
kill "$listener" 2>/dev/null || true
listener=
grep -c . "$REAL" >/dev/null || fail "no log lines captured"
for want in 'status=delivered' 'status=queued' 'NOQUEUE: refused' ' refused from=' 'authentication failed' \
	'authenticated:' 'status=deferred' 'status=sent' 'status=bounced' 'bounce queued as'; do
	grep -q -- "$want" "$REAL" || fail "the captured log has no '$want' line: $(cat "$REAL")"
done
say "bench-stat: $(wc -l <"$REAL") real lines"

# -------------------------------------------------------------- replicate
say "bench-stat: $LINES lines of syslog, journal JSON and Postfix syslog"
python3 - "$REAL" "$W" "$LINES" "$SENDERS" "$DOMAINS" <<'PY'
import json, random, re, sys, time, uuid
real, w, total, nsend, ndom = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(12)
lines = [l.rstrip("\n") for l in open(real) if re.match(r"mailslot-[a-z]+\[\d+\]: ", l)]
qid_re = re.compile(r"\b[0-9A-F]{21}\b")
start = int(time.time()) - 7 * 86400
step = 7 * 86400 / total
boot = uuid.uuid4().hex
months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

def stamp(t):
    tm = time.localtime(t)
    return "%s %2d %02d:%02d:%02d" % (months[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)

# a few senders and domains send most of the mail (a skewed draw), each
# sender always at the same domain
def people():
    i = int(nsend * rnd.random() ** 3)
    return "user%d@dom%d.example" % (i, i % ndom), "dom%d.example" % int(ndom * rnd.random() ** 2)

syslog = open(w + "/mailslot.log", "w")
jsonf = open(w + "/mailslot.json", "w")
n = cycle = 0
while n < total:
    cycle += 1
    qids = {}
    sender, rdom = people()
    pid = 1000 + cycle % 60000
    for l in lines:
        if n >= total:
            break
        prog, text = l.split("[", 1)[0], l.split("]: ", 1)[1]
        text = qid_re.sub(lambda m: qids.setdefault(m.group(0), "%08X%013X" % (start + int(n * step), n)), text)
        text = re.sub(r"s\d*@remote\.example", sender, text)
        text = text.replace("far.example", rdom)
        t = start + n * step
        syslog.write("%s mx %s[%d]: %s\n" % (stamp(t), prog, pid, text))
        us = int(t * 1e6)
        fields = {"MESSAGE": text, "SYSLOG_IDENTIFIER": prog, "_PID": str(pid)}
        for k, key in (("from=<", "MAILSLOT_FROM"), ("to=<", "MAILSLOT_RCPT")):
            m = re.search(re.escape(k) + r"([^>]*)>", text)
            if m:
                fields[key] = m.group(1)
        m = re.search(r"status=(\w+)", text)
        if m:
            fields["MAILSLOT_STATUS"] = m.group(1)
        m = re.search(r" size=(\d+)", text)
        if m:
            fields["MAILSLOT_SIZE"] = m.group(1)
        cursor = "s=%s;i=%x;b=%s;m=%x;t=%x;x=%016x" % (boot, n + 1, boot, n * 1000, us, n)
        rec = {"__CURSOR": cursor, "__REALTIME_TIMESTAMP": str(us), "__MONOTONIC_TIMESTAMP": str(n * 1000),
               "_BOOT_ID": boot}
        rec.update(fields)
        # journalctl's own form: compact, one object a line
        jsonf.write(json.dumps(rec, separators=(",", ":")) + "\n")
        n += 1

# Postfix: one message = connect, client=, message-id=, from=, 2 deliveries,
# removed, disconnect (8 lines); every 4th connection also a NOQUEUE reject,
# every 10th a SASL failure, every 20th a deferral and every 50th a bounce.
pf = open(w + "/postfix.log", "w")
n = i = 0
while n < total:
    i += 1
    t = start + n * step
    ts = stamp(t)
    q = "%X" % (0x4A000000 + i)
    ip = "198.51.%d.%d" % (i % 250, i % 199 + 1)
    host = "mail%d.dom%d.example" % (i % 97, i % ndom)
    sender, rdom = people()
    out = [
        "%s mx postfix/smtpd[%d]: connect from %s[%s]" % (ts, 2000 + i % 300, host, ip),
        "%s mx postfix/smtpd[%d]: %s: client=%s[%s]" % (ts, 2000 + i % 300, q, host, ip),
        "%s mx postfix/cleanup[%d]: %s: message-id=<%d.%s>" % (ts, 3000 + i % 50, q, i, sender),
        "%s mx postfix/qmgr[999]: %s: from=<%s>, size=%d, nrcpt=2 (queue active)" % (ts, q, sender, 800 + i % 5000),
        "%s mx postfix/local[%d]: %s: to=<alice@example.org>, relay=local, delay=0.1, delays=0.05/0.01/0/0.04, dsn=2.0.0, status=sent (delivered to mailbox)" % (ts, 4000 + i % 20, q),
    ]
    if i % 20 == 0:
        out.append("%s mx postfix/smtp[%d]: %s: to=<r@%s>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx.%s[203.0.113.5]:25: Connection refused)" % (ts, 5000 + i % 20, q, rdom, rdom))
    elif i % 50 == 1:
        out.append("%s mx postfix/smtp[%d]: %s: to=<nobody@%s>, relay=mx.%s[203.0.113.5]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host mx.%s[203.0.113.5] said: 550 5.1.1 <nobody@%s>: Recipient address rejected: User unknown (in reply to RCPT TO command))" % (ts, 5000 + i % 20, q, rdom, rdom, rdom, rdom))
    else:
        out.append("%s mx postfix/smtp[%d]: %s: to=<r@%s>, relay=mx.%s[203.0.113.5]:25, delay=0.8, delays=0.1/0/0.3/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4B%X)" % (ts, 5000 + i % 20, q, rdom, rdom, i))
    out.append("%s mx postfix/qmgr[999]: %s: removed" % (ts, q))
    if i % 4 == 0:
        out.append("%s mx postfix/smtpd[%d]: NOQUEUE: reject: RCPT from %s[%s]: 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table; from=<%s> to=<nobody@example.org> proto=ESMTP helo=<%s>" % (ts, 2000 + i % 300, host, ip, sender, host))
    if i % 10 == 0:
        out.append("%s mx postfix/smtpd[%d]: warning: %s[%s]: SASL LOGIN authentication failed: authentication failure" % (ts, 2000 + i % 300, host, ip))
    out.append("%s mx postfix/smtpd[%d]: disconnect from %s[%s] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5" % (ts, 2000 + i % 300, host, ip))
    for l in out[: total - n]:
        pf.write(l + "\n")
    n += len(out[: total - n])
PY
for f in mailslot.log mailslot.json postfix.log; do
	[ "$(wc -l <"$W/$f")" -eq "$LINES" ] || fail "$f has $(wc -l <"$W/$f") lines, not $LINES"
done

# ---------------------------------------------------------------- measure
# measure NAME COMMAND...: one run, "elapsed user system peak-RSS-KiB"
# into $W/NAME.time (CPU time too: the machine may be shared)
measure() {
	local name=$1
	shift
	say "bench-stat: $name"
	/usr/bin/time -f '%e %U %S %M' -o "$W/$name.time" "$@" >"$W/$name.out" 2>"$W/$name.err" ||
		fail "$name failed: $(cat "$W/$name.err")"
}
measure stat-syslog "$STAT" --no-queue "$W/mailslot.log"
measure stat-json "$STAT" --no-queue "$W/mailslot.json"
measure stat-syslog-json "$STAT" --no-queue --json "$W/mailslot.log"
measure pflogsumm "$PFLOGSUMM" "$W/postfix.log"

# the summary counted what the lines hold: every line read, none malformed
python3 - "$W/stat-syslog-json.out" "$LINES" <<'PY' || fail "mailslot-stat did not count every line"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["lines"]["read"] == int(sys.argv[2]) and d["lines"]["malformed"] == 0, d["lines"]
assert d["messages"]["received"] > 0 and d["recipients"]["relayed"] > 0, d
PY
cmp -s <("$STAT" --no-queue --json "$W/mailslot.json" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("period"); print(d)') \
	<(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("period"); print(d)' "$W/stat-syslog-json.out") ||
	fail "the JSON and syslog forms of the same records gave different counts"

row() {
	local secs user sys kib
	read -r secs user sys kib <"$W/$2.time"
	printf '| %s | %s | %s s | %s s | %s MiB |\n' "$1" "$3" "$secs" "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')" \
		"$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')"
}
{
	printf '\n%d lines, %s\n\n' "$LINES" "$(date -u +%Y-%m-%d)"
	printf '| program | input | elapsed | CPU | peak RSS |\n|---|---|---|---|---|\n'
	row "mailslot-stat" stat-syslog "syslog file ($(du -m "$W/mailslot.log" | cut -f1) MB)"
	row "mailslot-stat" stat-json "journalctl -o json lines ($(du -m "$W/mailslot.json" | cut -f1) MB)"
	row "pflogsumm $(dpkg-query -W -f '${Version}' pflogsumm 2>/dev/null || true)" pflogsumm \
		"Postfix syslog file ($(du -m "$W/postfix.log" | cut -f1) MB)"
} | tee ${RESULTS_FILE:+-a "$RESULTS_FILE"}
