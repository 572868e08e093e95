#!/usr/bin/env bats
# Logging: journald's native protocol with structured fields, the choice of
# destination, and client bytes made printable before they are logged.

load test_helper

setup() {
	setup_spool
}

SMTP_SESSION='HELO client.test
MAIL FROM:<sender@remote.example>
RCPT TO:<alice@example.org>
DATA
Subject: logged

body
.
QUIT'

# Run the handler in a mount namespace whose /run holds a fake journal
# socket; the records land in $BATS_TEST_TMPDIR/journal.  Extra arguments
# go to the handler.
run_with_journal() {
	local out=$BATS_TEST_TMPDIR/journal input=$BATS_TEST_TMPDIR/session.txt
	printf '%s\n' "$SMTP_SESSION" > "$input"
	: > "$out"
	unshare -m bash -c '
		set -e
		mount -t tmpfs tmpfs /run
		mkdir -p /run/systemd/journal
		python3 "$1" /run/systemd/journal/socket "$2" 1 > "$2.ready" &
		for _ in $(seq 1 50); do [ -s "$2.ready" ] && break; sleep 0.05; done
		shift 2
		"$@" < "'"$input"'" > "'"$BATS_TEST_TMPDIR/replies"'"
		wait' _ "$TESTS_DIR/helpers/log_journal.py" "$out" "$SMTPD" $(smtpd_args | sed 's/--log stderr//') "$@"
}

@test "journal: records over the native protocol, with MESSAGE, PRIORITY, facility mail and MAILSLOT_ fields" {
	[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
	run_with_journal --log journal 2>"$LOG"
	run grep -c '^250 2.0.0 Ok: queued as' "$BATS_TEST_TMPDIR/replies"
	assert_output 1
	local j=$BATS_TEST_TMPDIR/journal
	run grep -c '^--$' "$j"
	[ "$output" -ge 4 ] || fail "expected connect, message, recipient and disconnect records, got $output"
	run grep -c '^SYSLOG_IDENTIFIER=mailslot-smtpd$' "$j"
	[ "$output" -ge 4 ]
	grep -q '^SYSLOG_FACILITY=2$' "$j"
	grep -q '^PRIORITY=6$' "$j"
	grep -q '^MESSAGE=connect from terminal class=local$' "$j"
	grep -q '^MAILSLOT_FROM=sender@remote.example$' "$j"
	grep -q '^MAILSLOT_RCPT=alice@example.org$' "$j"
	grep -q '^MAILSLOT_STATUS=delivered$' "$j"
	grep -q '^MAILSLOT_CLASS=local$' "$j"
	grep -q '^MAILSLOT_SIZE=' "$j"
	local qid
	qid=$(sed -n 's/^250 2.0.0 Ok: queued as \([0-9A-F]*\).*/\1/p' "$BATS_TEST_TMPDIR/replies" | tr -d '\r')
	grep -q "^MAILSLOT_QUEUE_ID=$qid\$" "$j"
	# nothing went to stderr in journal mode
	[ ! -s "$LOG" ] || fail "stderr got: $(cat "$LOG")"
}

@test "auto: JOURNAL_STREAM naming our stderr selects the journal" {
	[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
	# stderr is a file here; JOURNAL_STREAM gets its device:inode, as
	# systemd sets it for StandardError=journal
	local errfile=$BATS_TEST_TMPDIR/stderr
	: > "$errfile"
	export JOURNAL_STREAM="$(stat -c '%d:%i' "$errfile")"
	run_with_journal --log auto 2>"$errfile"
	unset JOURNAL_STREAM
	grep -q '^MAILSLOT_STATUS=delivered$' "$BATS_TEST_TMPDIR/journal"
	run cat "$errfile"
	assert_output ''
}

@test "auto: on a terminal the log goes to stderr" {
	run smtpd_stdin <<< "$SMTP_SESSION"
	assert_line --partial "250 2.0.0 Ok: queued as"
	run grep -c 'status=delivered' "$LOG"
	assert_output 1
}

@test "inetd-style: with stderr on the client's socket, no log line reaches the client" {
	# fds 0, 1 and 2 are all the connection, as inetd and xinetd set them up
	run python3 - "$SMTPD" $(smtpd_args | sed 's/--log stderr//') <<'PY'
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen(sys.argv[1:], stdin=b, stdout=b, stderr=b)
b.close()
a.settimeout(10)
f = a.makefile("rb")
lines = [f.readline()]
for cmd in ["HELO client.test", "MAIL FROM:<x@remote.example>", "RCPT TO:<nobody@example.org>", "QUIT"]:
    a.sendall(cmd.encode() + b"\r\n")
    lines.append(f.readline())
a.shutdown(socket.SHUT_WR)
lines += f.readlines()
p.wait(10)
for l in lines:
    print(l.decode("latin-1").rstrip("\r\n"))
PY
	assert_success
	assert_line --index 0 --regexp '^220 '
	assert_line --index 3 --regexp '^550 5\.1\.1 '
	assert_line --index 4 --regexp '^221 '
	refute_output --partial "mailslot-smtpd["
	assert_equal "${#lines[@]}" 5
}

@test "client text is made printable before it is logged" {
	printf 'HELO evil\033[31m\001name\nMAIL FROM:<a@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n\n.\nQUIT\n' |
		smtpd_stdin --verbose > "$BATS_TEST_TMPDIR/replies"
	run grep -c $'\033' "$LOG"
	assert_output 0
	run grep -c $'\001' "$LOG"
	assert_output 0
	# the verbose command log shows the escape and the control byte as '?'
	grep -q '< HELO evil?\[31m?name' "$LOG"
}

@test "WITH_LIBSYSTEMD=1: the libsystemd build compiles without warnings and logs through sd_journal_sendv" {
	[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
	pkg-config --exists libsystemd || fail "libsystemd-dev is missing (tests/install-deps.sh test installs it)"
	local copy=$BATS_TEST_TMPDIR/build
	mkdir -p "$copy/src"
	cp "$TESTS_DIR"/../src/*.[ch] "$copy/src/"
	cp "$TESTS_DIR/../Makefile" "$copy/"
	run make -C "$copy" WITH_LIBSYSTEMD=1 mailslot-smtpd
	assert_success
	refute_output --partial "warning"
	run ldd "$copy/mailslot-smtpd"
	assert_output --partial "libsystemd.so"
	SMTPD="$copy/mailslot-smtpd" run_with_journal --log journal 2>"$LOG"
	grep -q '^MAILSLOT_STATUS=delivered$' "$BATS_TEST_TMPDIR/journal"
	grep -q '^SYSLOG_IDENTIFIER=mailslot-smtpd$' "$BATS_TEST_TMPDIR/journal"
}

# log_fields FILE PATTERN: for each line of FILE matching PATTERN, the
# "key=value" fields after the queue id, parsed as mailslot-smtpd(8)'s
# LOGGING section says (blank-separated; a double-quoted value with \" and
# \\ escapes), one "key value" per line, then "--".
log_record_fields() {
	grep -e "$2" "$1" | python3 -c '
import shlex, sys
for line in sys.stdin:
    text = line.rstrip("\n").split(": ", 2)[-1]
    for tok in shlex.split(text):
        if "=" in tok:
            k, v = tok.split("=", 1)
            print(k, v)
    print("--")'
}

@test "a quoted sender cannot forge log fields: each key once, the real peer, the address intact" {
	run smtpd_stdin <<'EOF2'
HELO a=b"c\d
MAIL FROM:<"x> size=1 nrcpt=1 peer=203.0.113.9 class=network"@evil.test>
RCPT TO:<alice@example.org>
DATA
Subject: forged fields

.
QUIT
EOF2
	assert_line --partial "250 2.0.0 Ok: queued as"
	run log_record_fields "$LOG" ' from=<'
	assert_output - <<'EOF2'
from <"x> size=1 nrcpt=1 peer=203.0.113.9 class=network"@evil.test>
size 26
nrcpt 1
peer terminal
class local
helo a=b"c\d
--
EOF2
	# the raw line: the sender is one quoted string inside the brackets
	run grep -c ' from=<"\\"x> size=1 nrcpt=1 peer=203.0.113.9 class=network\\"@evil.test"> size=' "$LOG"
	assert_output 1
	run grep -c ' helo="a=b\\"c\\\\d"$' "$LOG"
	assert_output 1
}

@test "a quoted recipient cannot forge log fields either" {
	run smtpd_stdin <<'EOF2'
HELO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<"q status=delivered"@remote.example>
DATA
Subject: quoted rcpt

.
QUIT
EOF2
	assert_line --partial "250 2.0.0 Ok: queued as"
	run log_record_fields "$LOG" ' to=<'
	assert_output - <<'EOF2'
to <"q status=delivered"@remote.example>
status queued
--
EOF2
}

@test "journal: structured fields are made printable too, a newline cannot add a field" {
	[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
	# the peer address of a UCSPI program, with a newline in it
	TCPREMOTEIP=$'192.0.2.7\nMAILSLOT_STATUS=forged' run_with_journal --log journal 2>"$LOG"
	local j=$BATS_TEST_TMPDIR/journal
	grep -q '^MAILSLOT_PEER=192.0.2.7?MAILSLOT_STATUS=forged$' "$j"
	run grep -c '^MAILSLOT_STATUS=forged' "$j"
	assert_output 0
	grep -q '^MESSAGE=connect from "192.0.2.7?MAILSLOT_STATUS=forged" class=network$' "$j"
}

# refused_reason: the terminal session's one refusal after the
# dot is logged with the queue id the client was not given, the peer, the
# reply code and a reason; prints the record's code and reason.
refused_reason() {
	run grep -E '^mailslot-smtpd\[[0-9]+\]: [0-9A-F]{21}: refused from=<a@remote\.example> nrcpt=1 peer=terminal code=[0-9]{3} reason="[^"]+"$' "$LOG"
	assert_success
	assert_equal "${#lines[@]}" 1
	sed -n 's/.* code=\([0-9]*\) reason="\(.*\)"$/\1 \2/p' <<<"$output"
}

@test "refusals after the dot are logged with their reply code: size, long line, mail loop" {
	local big long
	big=$(printf '%0500d\n%0500d\n%0500d' 1 2 3)
	long=$(printf '%01000d' 0)
	printf 'HELO c.test\nMAIL FROM:<a@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n\n%s\n.\nQUIT\n' "$big" |
		smtpd_stdin --max-size 1k >/dev/null
	run refused_reason
	assert_output "552 message over the size limit of 1024 bytes"

	: >"$LOG"
	printf 'HELO c.test\nMAIL FROM:<a@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n\n%s\n.\nQUIT\n' "$long" |
		smtpd_stdin >/dev/null
	run refused_reason
	assert_output "554 line longer than 998 characters"

	: >"$LOG"
	{
		printf 'HELO c.test\nMAIL FROM:<a@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n'
		for i in $(seq 1 101); do printf 'Received: from hop%d.example\n' "$i"; done
		printf '\nloop\n.\nQUIT\n'
	} | smtpd_stdin >/dev/null
	run refused_reason
	assert_output "554 mail loop: 101 Received: fields"
	[ ! -e "$SPOOL/alice" ]
}

@test "a full spool while receiving: 452 and a log record with the queue id and the reason" {
	[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
	local input=$BATS_TEST_TMPDIR/big.txt
	{
		printf 'HELO c.test\nMAIL FROM:<a@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n\n'
		printf '%0900d\n' $(seq 1 200)
		printf '.\nQUIT\n'
	} >"$input"
	run unshare -m --propagation private bash -c '
		mount -t tmpfs -o size=64k tmpfs "$1" || exit 99
		"${@:3}" <"$2" 2>>"'"$LOG"'" | tr -d "\r"' _ "$QUEUE" "$input" "$SMTPD" $(smtpd_args)
	assert_line --regexp '^452 4\.3\.1 '
	run refused_reason
	assert_output --regexp "^452 cannot write the spool file in .*/tmp: No space left on device$"
}

@test "a bare LF refused on the network is logged with the queue id, the peer and the reason" {
	load helpers/proto_codes
	start_listener
	run raw <<'EOF2'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: bare\n\n.\r\n
read 1
eof
EOF2
	assert_line --regexp '^521 5\.5\.2 '
	# the handler logs after the reply: give it a moment
	for _ in $(seq 1 40); do grep -q ' refused ' "$LOG" && break; sleep 0.05; done
	run grep -cE ': [0-9A-F]{21}: refused from=<a@remote\.example> nrcpt=1 peer=127\.0\.0\.1 code=521 reason="bare CR or LF in the message, connection closed"$' "$LOG"
	assert_output 1
}

@test "a sender or recipient refused by policy is logged as NOQUEUE with the reply code and the reason" {
	run smtpd_stdin --relay no <<'EOF2'
HELO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<nobody@example.org>
RCPT TO:<"q x"@elsewhere.example>
RCPT TO:<alice@example.org>
QUIT
EOF2
	assert_line --regexp '^550 5\.1\.1 '
	assert_line --regexp '^550 5\.7\.1 '
	run grep -c ' NOQUEUE: refused ' "$LOG"
	assert_output 2
	grep -qE '^mailslot-smtpd\[[0-9]+\]: NOQUEUE: refused RCPT from=<a@remote\.example> to=<nobody@example\.org> peer=terminal code=550 reason="Recipient address rejected: User unknown"$' "$LOG"
	grep -qE '^mailslot-smtpd\[[0-9]+\]: NOQUEUE: refused RCPT from=<a@remote\.example> to=<"\\"q x\\"@elsewhere\.example"> peer=terminal code=550 reason="Relay access denied"$' "$LOG"
}
