#!/usr/bin/env bats
# hostile.bats: clients that break the rules on purpose.  For each abuse the
# handler must give the documented reply code and stay bounded: memory does
# not grow with the input, a slow or silent peer is cut off by the timeout,
# an error-happy peer by the error counter, and nothing inside DATA is ever
# taken for the end of the message or for a command (SMTP smuggling).
# Clients: proto_raw (exact bytes and writes, see its docstring), smtpchat,
# a raw Python socket, and the handler on standard input (terminal mode).

load test_helper
load helpers/proto_codes


setup() {
	setup_spool
}

teardown() {
	# the early-talker tests stop the listener for a moment
	[ -z "${LISTENER_PID:-}" ] || kill -CONT "$LISTENER_PID" 2>/dev/null || true
	stop_listeners
}

# Live handler processes of this test's listener (zombies do not count).
handlers() {
	ps -o pid=,stat= --ppid "$LISTENER_PID" 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }'
}

# The handler has exited within two seconds.
assert_handlers_gone() {
	for _ in $(seq 1 40); do
		[ -z "$(handlers)" ] && return 0
		sleep 0.05
	done
	fail "handler still running: $(handlers)"
}

# Nothing was delivered and nothing was queued.
assert_nothing_stored() {
	run find "$SPOOL" "$QUEUE" -type f
	assert_output ''
}

# ------------------------------------------------------------ command lines

@test "a command line of 512 octets with CRLF is fine, 513 is 500 5.5.2, and the session goes on" {
	start_listener
	local fits toolong
	fits="NOOP $(printf '%0505d' 0)"	# 510 octets + CRLF = 512
	toolong="NOOP $(printf '%0506d' 0)"	# 511 octets + CRLF = 513
	run raw <<EOF
cmd EHLO client.test
cmd $fits
cmd $toolong
cmd NOOP
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.0.0
500 5.5.2
250 2.0.0
221 2.0.0
EOF
}

@test "a command line of several KB is 500 5.5.2 and a transaction still works after it" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
send MAIL FROM:<a@remote.example>
fill 5000 A
send \r\n
read 1
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: after long line\r\n\r\n.\r\n
read 1
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
500 5.5.2
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "after long line|0"
}

@test "the tail of an overlong line is never run as a command" {
	start_listener
	# QUIT and RSET sit past the 16 KiB input buffer, on the same line
	run raw <<'EOF'
cmd EHLO client.test
fill 16380 x
send QUIT\r\n
read 1
fill 40000 y
send \r\nRSET\r\n
read 2
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
500 5.5.2
500 5.5.2
250 2.0.0
221 2.0.0
EOF
}

@test "a 10 MB command line without newline: memory stays small, then 500 5.5.2 and it keeps working" {
	start_listener
	run raw --timeout 20 <<EOF
cmd EHLO client.test
fill 10485760 x
hwm $LISTENER_PID
send \r\n
read 1
hwm $LISTENER_PID
cmd NOOP
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
500 5.5.2
250 2.0.0
221 2.0.0
EOF
	# VmHWM is the peak resident size of the handler over its whole life
	local kb
	kb=$(printf '%s\n' "$output" | sed -n 's/^hwm //p' | tail -1)
	assert [ "$kb" -gt 0 ]
	assert [ "$kb" -lt 8192 ]
}

@test "NUL bytes in a command: 500 5.5.2, never cut short into a valid one" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
send NOOP\x00\r\n
read 1
send NO\x00OP\r\n
read 1
send HELO good.test\x00evil\r\n
read 1
send MAIL FROM:<a@remote.example>\x00\r\n
read 1
cmd NOOP
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
500 5.5.2
500 5.5.2
500 5.5.2
500 5.5.2
250 2.0.0
221 2.0.0
EOF
}

@test "8-bit bytes in a command: 500 5.5.2" {
	start_listener
	run raw <<'EOF'
send EHLO caf\xc3\xa9.test\r\n
read 1
cmd EHLO client.test
send MAIL FROM:<caf\xe9@remote.example>\r\n
read 1
send \xff\xfe\r\n
read 1
cmd MAIL FROM:<a@remote.example>
send RCPT TO:<b\xf6b@example.org>\r\n
read 1
cmd QUIT
EOF
	assert_codes <<'EOF'
220
500 5.5.2
250
500 5.5.2
500 5.5.2
250 2.1.0
500 5.5.2
221 2.0.0
EOF
}

# ------------------------------------------------------------- error count

@test "--max-errors 3: the third error is followed by 421 4.7.0 and the connection closes" {
	start_listener --max-errors 3
	# five bad commands in one write: only three are answered
	run raw <<'EOF'
cmd EHLO client.test
send FOO\r\nRCPT TO:<alice@example.org>\r\nBAR\r\nBAZ\r\nNOOP\r\n
eof
EOF
	assert_codes <<'EOF'
220
250
500 5.5.2
503 5.5.1
500 5.5.2
421 4.7.0
<EOF>
EOF
	assert_handlers_gone
}

# ---------------------------------------------------------------- timeouts

@test "--timeout 1: an idle client gets 421 4.4.2 and the connection closes" {
	start_listener --timeout 1
	SECONDS=0
	run raw <<'EOF'
cmd EHLO client.test
eof
EOF
	assert_codes <<'EOF'
220
250
421 4.4.2
<EOF>
EOF
	assert [ "$SECONDS" -le 4 ]
	assert_handlers_gone
}

@test "--timeout 2: a command trickled one byte a second still times out" {
	start_listener --timeout 2
	SECONDS=0
	run raw <<'EOF'
cmd EHLO client.test
sleep 0.5
trickle 1 MAIL FROM:<slow@remote.example>\r\n
eof
EOF
	# 37 octets would take 37 s: the deadline is for the whole line.  The
	# bytes go out half a second off the deadline, so none is in flight
	# when the server closes (which would make the close a reset).
	assert_line --regexp '^<stopped after [1-4]>$'
	assert_codes <<'EOF'
220
250
421 4.4.2
<EOF>
EOF
	assert [ "$SECONDS" -le 6 ]
	assert_handlers_gone
}

@test "--timeout 2: a DATA line trickled one byte a second still times out" {
	start_listener --timeout 2
	SECONDS=0
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
sleep 0.5
trickle 1 Subject: trickled through the data phase\r\n\r\n.\r\n
eof
EOF
	assert_line --regexp '^<stopped after [1-4]>$'
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
421 4.4.2
<EOF>
EOF
	assert [ "$SECONDS" -le 6 ]
	assert_handlers_gone
	assert_nothing_stored
}

@test "--timeout 1: a client that never sends the final dot gets 421 4.4.2 and nothing is delivered" {
	start_listener --timeout 1
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd RCPT TO:<someone@elsewhere.example>
cmd DATA
send Subject: unfinished\r\n\r\nno end in sight\r\n.
eof
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
250 2.1.5
354
421 4.4.2
<EOF>
EOF
	assert_handlers_gone
	assert_nothing_stored
}

# ------------------------------------------------------------ early talker

# early_talker BYTES: a raw socket sends the escaped BYTES right after
# connect, without waiting for a greeting, then reads until the close.  The
# listener is stopped meanwhile, so the connection waits in the backlog and
# the handler starts only once the bytes are certainly there: the test does
# not depend on winning a race against the greeting.
early_talker() {
	local sent="$BATS_TEST_TMPDIR/early.sent"
	kill -STOP "$LISTENER_PID"
	printf 'send %s\ntouch %s\neof\n' "$1" "$sent" |
		$RAW "$PORT" --no-greeting --timeout 5 >"$BATS_TEST_TMPDIR/early.out" 2>&1 3>&- &
	local client=$!
	for _ in $(seq 1 200); do
		[ -e "$sent" ] && break
		sleep 0.05
	done
	sleep 0.1
	kill -CONT "$LISTENER_PID"
	wait "$client"
	cat "$BATS_TEST_TMPDIR/early.out"
}

@test "early talker: EHLO sent before the greeting gets 554, no 220, and the connection closes" {
	start_listener
	run early_talker 'EHLO early.test\r\n'
	assert_line --index 0 --regexp '^554 '
	refute_line --regexp '^220'
	refute_line --regexp '^250'
	assert_line --index 1 --regexp '^<(EOF|ConnectionResetError)>$'
	assert_equal "${#lines[@]}" 2
	assert_handlers_gone
}

@test "early talker: the 554 is followed by an orderly close, not a TCP reset that can destroy it" {
	start_listener
	# Closing a socket with unread input makes the kernel send RST, and a
	# client that receives the RST before it read the 554 never sees it.
	run early_talker 'EHLO early.test\r\nMAIL FROM:<bot@remote.example>\r\n'
	assert_codes <<'EOF'
554
<EOF>
EOF
}

# ------------------------------------------------------- SMTP smuggling

# smuggle PROBE: a message to alice whose body holds PROBE (an escaped
# would-be end of data) followed by a whole second transaction to bob and
# only then the real <CRLF>.<CRLF>; after it, an honest message to carol.
# Everything up to the real end goes out in one write.
smuggle() {
	raw <<EOF
cmd EHLO client.test
cmd MAIL FROM:<legit@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: legit\\r\\n\\r\\nhello${1}MAIL FROM:<evil@remote.example>\\r\\nRCPT TO:<bob@example.org>\\r\\nDATA\\r\\nSubject: smuggled\\r\\n\\r\\nevil\\r\\n.\\r\\n
read 1
cmd MAIL FROM:<honest@remote.example>
cmd RCPT TO:<carol@example.org>
cmd DATA
send Subject: honest\\r\\n\\r\\nafter the probe\\r\\n.\\r\\n
read 1
line QUIT
eof
EOF
}

# The bare line end of the probe was answered 521 5.5.2 and the connection
# closed at once (Postfix's smtpd_forbid_bare_newline): no reply came for
# the smuggled commands, nothing after the probe was read as a command, and
# nothing at all was delivered or queued.
assert_smuggling_refused() {
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
521 5.5.2
<EOF>
EOF
	assert_nothing_stored
	assert_handlers_gone
}

@test "smuggling control: the same dialogue with a dot-stuffed CRLF line delivers one message" {
	start_listener
	# a proper client sends ".." for a line that is a dot: no end, no second message
	run smuggle '\r\n..\r\n'
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
250 2.0.0
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
<EOF>
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output --regexp '^legit\|[0-9]+$'
	assert [ ! -e "$SPOOL/bob" ]
}

@test "smuggling: <LF>.<LF> inside DATA neither ends the message nor starts another" {
	start_listener
	run smuggle '\n.\n'
	assert_smuggling_refused
}

@test "smuggling: <CR>.<CR> inside DATA neither ends the message nor starts another" {
	start_listener
	run smuggle '\r.\r'
	assert_smuggling_refused
}

@test "smuggling: <LF>.<CRLF> inside DATA neither ends the message nor starts another" {
	start_listener
	run smuggle '\n.\r\n'
	assert_smuggling_refused
}

@test "smuggling: <CRLF>.<LF> inside DATA neither ends the message nor starts another" {
	start_listener
	run smuggle '\r\n.\n'
	assert_smuggling_refused
}

@test "smuggling: <CRLF>.<CR><CRLF> inside DATA neither ends the message nor starts another" {
	start_listener
	run smuggle '\r\n.\r\r\n'
	assert_smuggling_refused
}

@test "smuggling: every probe split across TCP writes is refused the same way" {
	start_listener
	local probe
	for probe in '\n.\n' '\r.\r' '\n.\r\n' '\r\n.\n' '\r\n.\r\r\n'; do
		rm -rf "$SPOOL" && mkdir -p "$SPOOL"
		# the probe ends one write; the smuggled commands come 200 ms later
		run raw <<EOF
cmd EHLO client.test
cmd MAIL FROM:<legit@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: legit\\r\\n\\r\\nhello${probe}
sleep 0.2
send MAIL FROM:<evil@remote.example>\\r\\n
sleep 0.2
send RCPT TO:<bob@example.org>\\r\\nDATA\\r\\nSubject: smuggled\\r\\n\\r\\nevil\\r\\n.\\r\\n
read 1
cmd MAIL FROM:<honest@remote.example>
cmd RCPT TO:<carol@example.org>
cmd DATA
send Subject: honest\\r\\n\\r\\nafter the probe\\r\\n.\\r\\n
read 1
line QUIT
eof
EOF
		assert_smuggling_refused
	done
}

@test "a message with LF-only lines over the network: 521 5.5.2 at the first one, the connection closes, nothing delivered" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: unix line ends\n\nbody\n.\n
send \r\n.\r\n
read 1
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
521 5.5.2
<EOF>
EOF
	assert_nothing_stored
	assert_handlers_gone
}

@test "a bare CR inside a DATA line over the network: 521 5.5.2, also in a line too long to keep" {
	start_listener
	local long
	long=$(printf '%02000d' 0)
	run raw <<EOF
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: cr\\r\\n\\r\\n${long}\\rNOOP\\r\\n
read 1
eof
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
521 5.5.2
<EOF>
EOF
	assert_nothing_stored
}

# ------------------------------------------------------------- long lines

@test "DATA: a CRLF line of 998 characters is accepted, one of 999 is refused with 554 5.5.2" {
	start_listener
	local ok long
	ok=$(printf '%0998d' 0)
	long=$(printf '%0999d' 0)
	run raw <<EOF
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: 998\\r\\n\\r\\n${ok}\\r\\n.\\r\\n
read 1
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<bob@example.org>
cmd DATA
send Subject: 999\\r\\n\\r\\n${long}\\r\\n.\\r\\n
read 1
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
250 2.0.0
250 2.1.0
250 2.1.5
354
554 5.5.2
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "998|999"
	assert [ ! -e "$SPOOL/bob" ]
}

@test "DATA: a 10 MB line is refused with 554 5.5.2, memory stays small, the session goes on" {
	start_listener
	run raw --timeout 20 <<EOF
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: huge line\\r\\n\\r\\n
fill 10485760 z
send \\r\\n.\\r\\n
read 1
hwm $LISTENER_PID
cmd RSET
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
554 5.5.2
250 2.0.0
221 2.0.0
EOF
	local kb
	kb=$(printf '%s\n' "$output" | sed -n 's/^hwm //p')
	assert [ "$kb" -gt 0 ]
	assert [ "$kb" -lt 8192 ]
	assert_nothing_stored
}

@test "terminal: bare LF line ends in DATA are accepted" {
	run smtpd_stdin <<'EOF'
HELO terminal.test
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
DATA
Subject: typed at a terminal

line one
..stuffed
.
QUIT
EOF
	assert_success
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "typed at a terminal|18"
	run grep -c '^\.stuffed$' "$SPOOL/alice"
	assert_output 1
}

# ------------------------------------------------------------- recipients

@test "1100 pipelined RCPTs: 452 4.5.3 past the limit, not counted as errors, and the session still works" {
	start_listener
	# Postfix's recipient overshoot: the first 1000 RCPTs past the limit
	# are refused without counting toward --max-errors
	run raw --timeout 20 <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
repeat 1100 RCPT TO:<alice@example.org>
read 1100
cmd DATA
send Subject: many rcpt\r\n\r\n.\r\n
read 1
cmd QUIT
EOF
	local summary
	summary=$(codes | uniq -c | awk '{ $1 = $1; print }')
	assert_equal "$summary" "$(cat <<'EOF'
1 220
1 250
1 250 2.1.0
100 250 2.1.5
1000 452 4.5.3
1 354
1 250 2.0.0
1 221 2.0.0
EOF
)"
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "many rcpt|0"
}

@test "2000 pipelined RCPTs: past the overshoot each 452 is an error, and the session ends with 421" {
	start_listener --max-errors 5
	run raw --timeout 20 <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
repeat 2000 RCPT TO:<alice@example.org>
read 2000
EOF
	local summary
	summary=$(codes | uniq -c | awk '{ $1 = $1; print }')
	assert_equal "$summary" "$(cat <<'EOF'
1 220
1 250
1 250 2.1.0
100 250 2.1.5
1005 452 4.5.3
1 421 4.7.0
1 <EOF>
EOF
)"
	[ ! -e "$SPOOL/alice" ] || fail "a message was delivered from a session that ended with 421"
}

# ------------------------------------------------ junk commands, error delay

@test "a NOOP flood under the default limits: 100 junk commands are free, then each is an error, then 421" {
	start_listener
	run raw --timeout 20 <<'EOF2'
cmd EHLO client.test
repeat 300 NOOP
eof
EOF2
	# EHLO is the first junk command, so 99 NOOPs are free and 10 more
	# reach --max-errors
	local summary
	summary=$(codes | uniq -c | awk '{ $1 = $1; print }')
	assert_equal "$summary" "$(cat <<'EOF2'
1 220
1 250
109 250 2.0.0
1 421 4.7.0
1 <EOF>
EOF2
)"
	assert_handlers_gone
}

@test "a VRFY flood: past --junk-commands each VRFY is an error, and the session ends with 421" {
	start_listener --junk-commands 5 --max-errors 3
	run raw <<'EOF2'
cmd EHLO client.test
repeat 20 VRFY alice
eof
EOF2
	local summary
	summary=$(codes | uniq -c | awk '{ $1 = $1; print }')
	assert_equal "$summary" "$(cat <<'EOF2'
1 220
1 250
7 252 2.0.0
1 421 4.7.0
1 <EOF>
EOF2
)"
	assert_handlers_gone
}

@test "an accepted message resets the junk count; RSET and HELP are junk too" {
	start_listener --junk-commands 3 --max-errors 2
	run raw <<'EOF2'
cmd EHLO client.test
cmd RSET
cmd HELP
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send Subject: resets\r\n\r\n.\r\n
read 1
cmd NOOP
cmd RSET
cmd HELP
cmd NOOP
cmd NOOP
eof
EOF2
	assert_codes <<'EOF2'
220
250
250 2.0.0
214 2.0.0
250 2.1.0
250 2.1.5
354
250 2.0.0
250 2.0.0
250 2.0.0
214 2.0.0
250 2.0.0
250 2.0.0
421 4.7.0
<EOF>
EOF2
}

# timed_raw < script: raw, with the time it took in $ELAPSED_MS.
timed_raw() {
	local t0
	t0=$(date +%s%N)
	run raw
	ELAPSED_MS=$((($(date +%s%N) - t0) / 1000000))
}

@test "--error-delay: from --soft-errors on, every reply waits; before it, none does" {
	local script='cmd EHLO client.test
cmd FOO
cmd FOO
cmd FOO
cmd FOO
cmd NOOP
cmd QUIT'
	start_listener --soft-errors 2 --error-delay 400
	timed_raw <<<"$script"
	assert_codes <<'EOF2'
220
250
500 5.5.2
500 5.5.2
500 5.5.2
500 5.5.2
250 2.0.0
221 2.0.0
EOF2
	# errors 2, 3 and 4, the NOOP and the QUIT wait 400 ms each
	[ "$ELAPSED_MS" -ge 2000 ] || fail "5 replies past the soft limit took only $ELAPSED_MS ms"
	[ "$ELAPSED_MS" -lt 6000 ] || fail "took $ELAPSED_MS ms"
	stop_listeners
	start_listener --soft-errors 5 --error-delay 400
	timed_raw <<<"$script"
	assert_line '221 2.0.0 mx.test closing connection'
	[ "$ELAPSED_MS" -lt 1500 ] || fail "4 errors under a soft limit of 5 took $ELAPSED_MS ms"
}

@test "--recipient-overshoot 3: the fourth RCPT past the limit is an error" {
	start_listener --max-recipients 1 --recipient-overshoot 3 --max-errors 2
	run raw <<'EOF2'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
repeat 10 RCPT TO:<alice@example.org>
eof
EOF2
	local summary
	summary=$(codes | uniq -c | awk '{ $1 = $1; print }')
	assert_equal "$summary" "$(cat <<'EOF2'
1 220
1 250
1 250 2.1.0
1 250 2.1.5
5 452 4.5.3
1 421 4.7.0
1 <EOF>
EOF2
)"
}
