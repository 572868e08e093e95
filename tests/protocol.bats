#!/usr/bin/env bats
# protocol.bats: the SMTP dialogue of mailslot-smtpd as real clients see it:
# verbs, their order, the transaction, addresses and parameters, limits,
# trace headers and pipelining.  Clients: smtpchat (one line, one reply),
# proto_raw (exact bytes and writes), Python's smtplib, swaks and nc -C.
# Assertions are on reply codes and enhanced codes, never on reply texts,
# and on what the mailbox holds afterwards.

load test_helper
load helpers/proto_codes

SMTPLIB="python3 $BATS_TEST_DIRNAME/helpers/proto_smtplib.py"

setup() {
	setup_spool
}

# The queue id from "250 2.0.0 Ok: queued as ID" in $output (the last one).
queued_id() {
	printf '%s\n' "$output" | tr -d '\r' | sed -n 's/^250 2\.0\.0 Ok: queued as //p' | tail -1
}

# nc_lab < lines: the classic lab exercise, a person typing into nc -C.
# Waits for the 220 greeting, then sends one line every 50 ms (nc turns
# LF into CRLF), and prints everything the server said once it closed.
nc_lab() {
	local fifo="$BATS_TEST_TMPDIR/nc.in" out="$BATS_TEST_TMPDIR/nc.out" line pid
	mkfifo "$fifo"
	nc -C 127.0.0.1 "$PORT" <"$fifo" >"$out" 3>&- &
	pid=$!
	exec 5>"$fifo"
	for _ in $(seq 1 100); do
		grep -q '^220 ' "$out" && break
		sleep 0.05
	done
	while IFS= read -r line; do
		printf '%s\n' "$line" >&5
		sleep 0.05
	done
	exec 5>&-
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" || true
	cat "$out"
}

# ---------------------------------------------------------------- greeting

@test "greeting: 220 with the configured host name and no enhanced code" {
	start_listener
	run raw <<'EOF'
cmd QUIT
EOF
	assert_line --index 0 --regexp '^220 mx\.test '
	refute_line --index 0 --regexp '^220 [245]\.[0-9]+\.[0-9]+ '
	assert_codes <<'EOF'
220
221 2.0.0
EOF
}

@test "HELO: 250 naming the server" {
	start_listener
	run raw <<'EOF'
cmd HELO client.test
cmd QUIT
EOF
	assert_line --index 1 --regexp '^250 mx\.test'
	assert_codes <<'EOF'
220
250
221 2.0.0
EOF
}

@test "EHLO: multi-line 250 listing PIPELINING, SIZE, 8BITMIME and ENHANCEDSTATUSCODES" {
	start_listener --max-size 12345
	run raw <<'EOF'
cmd EHLO client.test
cmd QUIT
EOF
	assert_line --index 1 --regexp '^250-mx\.test'
	assert_line --regexp '^250[- ]PIPELINING$'
	assert_line --regexp '^250[- ]SIZE 12345$'
	assert_line --regexp '^250[- ]8BITMIME$'
	assert_line --regexp '^250[- ]ENHANCEDSTATUSCODES$'
	assert_codes <<'EOF'
220
250
221 2.0.0
EOF
}

@test "EHLO and HELO without a name: 501" {
	start_listener
	run raw <<'EOF'
cmd EHLO
cmd HELO
cmd MAIL FROM:<a@remote.example>
cmd QUIT
EOF
	assert_codes <<'EOF'
220
501 5.5.4
501 5.5.4
503 5.5.1
221 2.0.0
EOF
}

# ------------------------------------------------------------ simple verbs

@test "MAIL, RCPT, DATA, QUIT: 250 2.1.0, 250 2.1.5, 354, 250 2.0.0, 221 and delivery" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<sender@remote.example>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: basic

hello
.
>>
QUIT
EOF
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
	assert_output "basic|6"
}

@test "NOOP: 250 2.0.0 in every state, and it keeps the transaction" {
	start_listener
	run raw <<'EOF'
cmd NOOP
cmd EHLO client.test
cmd NOOP
cmd MAIL FROM:<a@remote.example>
cmd NOOP
cmd RCPT TO:<bob@example.org>
cmd NOOP with an argument
cmd DATA
line Subject: after noop
line
send .\r\n
read 1
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250 2.0.0
250
250 2.0.0
250 2.1.0
250 2.0.0
250 2.1.5
250 2.0.0
354
250 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/bob"
	assert_output "after noop|0"
}

@test "QUIT: 221 2.0.0 and the server closes the connection" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
line QUIT
eof
EOF
	assert_codes <<'EOF'
220
250
221 2.0.0
<EOF>
EOF
}

@test "VRFY: 252 for a known and an unknown user alike, 501 without argument" {
	start_listener
	run raw <<'EOF'
cmd VRFY alice
cmd VRFY nosuchuser
cmd VRFY
cmd QUIT
EOF
	assert_codes <<'EOF'
220
252 2.0.0
252 2.0.0
501 5.5.4
221 2.0.0
EOF
}

@test "EXPN: 502 5.5.1, also for an existing alias" {
	start_listener
	run raw <<'EOF'
cmd EXPN staff
cmd EXPN nosuchlist
cmd QUIT
EOF
	assert_codes <<'EOF'
220
502 5.5.1
502 5.5.1
221 2.0.0
EOF
	refute_output --partial 'bob'
}

@test "HELP: 214 2.0.0, multi-line" {
	start_listener
	run raw <<'EOF'
cmd HELP
cmd HELP MAIL
cmd QUIT
EOF
	assert_line --regexp '^214-2\.0\.0 '
	assert_codes <<'EOF'
220
214 2.0.0
214 2.0.0
221 2.0.0
EOF
}

@test "unknown command: 500 5.5.2, and the session goes on" {
	start_listener
	run raw <<'EOF'
cmd FROB
cmd MAILX FROM:<a@remote.example>
cmd EHLOO client.test
cmd EHLO client.test
cmd QUIT
EOF
	assert_codes <<'EOF'
220
500 5.5.2
500 5.5.2
500 5.5.2
250
221 2.0.0
EOF
}

@test "TURN and the other known but unimplemented verbs: 502 5.5.1" {
	start_listener --max-errors 50
	run raw <<'EOF'
cmd EHLO client.test
cmd TURN
cmd ETRN example.org
cmd ATRN example.org
cmd SEND FROM:<a@remote.example>
cmd SOML FROM:<a@remote.example>
cmd SAML FROM:<a@remote.example>
cmd BDAT 10 LAST
cmd AUTH PLAIN AGFsaWNlAHNlY3JldA==
cmd STARTTLS
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
502 5.5.1
502 5.5.1
502 5.5.1
502 5.5.1
502 5.5.1
502 5.5.1
502 5.5.1
502 5.5.1
502 5.5.1
221 2.0.0
EOF
}

@test "verbs are case-insensitive: a lower and mixed case session delivers" {
	start_listener
	run chat <<'EOF'
ehlo client.test
mail from:<sender@remote.example>
Rcpt To:<carol@example.org>
dAtA
<<DATA
Subject: lower case

x
.
>>
noop
rSeT
vrfy carol
quit
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
250 2.0.0
250 2.0.0
250 2.0.0
252 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/carol"
	assert_output "lower case|2"
}

# ------------------------------------------------------------------- order

@test "out of order: MAIL before HELO is 503 5.5.1" {
	start_listener
	run raw <<'EOF'
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
cmd QUIT
EOF
	assert_codes <<'EOF'
220
503 5.5.1
503 5.5.1
503 5.5.1
221 2.0.0
EOF
}

@test "out of order: RCPT before MAIL is 503 5.5.1" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
cmd RCPT TO:<alice@example.org>
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
503 5.5.1
221 2.0.0
EOF
}

@test "out of order: DATA before MAIL and before RCPT is 503 5.5.1" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
cmd DATA
cmd MAIL FROM:<a@remote.example>
cmd DATA
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
503 5.5.1
250 2.1.0
503 5.5.1
221 2.0.0
EOF
}

@test "out of order: a nested MAIL is 503 5.5.1 and the first sender stays" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<first@remote.example>
MAIL FROM:<second@remote.example>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: nested

.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
503 5.5.1
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run grep -c '^Return-Path: <first@remote.example>$' "$SPOOL/alice"
	assert_output 1
}

@test "DATA after every RCPT was rejected: 554 5.5.1, nothing delivered" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<nosuchuser@example.org>
cmd RCPT TO:<bad address>
cmd DATA
cmd RCPT TO:<alice@example.org>
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
550 5.1.1
501 5.1.3
554 5.5.1
250 2.1.5
221 2.0.0
EOF
	assert [ ! -e "$SPOOL/alice" ]
}

@test "a repeated HELO/EHLO resets the transaction" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
HELO again.test
DATA
RCPT TO:<alice@example.org>
MAIL FROM:<b@remote.example>
RCPT TO:<carol@example.org>
EHLO third.test
RCPT TO:<alice@example.org>
MAIL FROM:<c@remote.example>
RCPT TO:<bob@example.org>
DATA
<<DATA
Subject: after helo

.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
250
503 5.5.1
503 5.5.1
250 2.1.0
250 2.1.5
250
503 5.5.1
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	# only the recipient of the last transaction, and its sender
	assert [ ! -e "$SPOOL/alice" ]
	assert [ ! -e "$SPOOL/carol" ]
	run grep '^Return-Path: ' "$SPOOL/bob"
	assert_output 'Return-Path: <c@remote.example>'
	run grep -c '^Received: from third.test ' "$SPOOL/bob"
	assert_output 1
}

@test "RSET: 250 2.0.0, forgets sender and recipients, keeps the HELO" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
RSET
DATA
RCPT TO:<alice@example.org>
MAIL FROM:<b@remote.example>
RCPT TO:<bob@example.org>
DATA
<<DATA
Subject: after rset

.
>>
RSET extra
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
250 2.0.0
503 5.5.1
503 5.5.1
250 2.1.0
250 2.1.5
354
250 2.0.0
501 5.5.4
221 2.0.0
EOF
	assert [ ! -e "$SPOOL/alice" ]
	run grep -c '^Return-Path: <b@remote.example>$' "$SPOOL/bob"
	assert_output 1
}

# ------------------------------------------------------------- transactions

@test "an empty message (the dot right after 354) is accepted and delivered" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<alice@example.org>
cmd DATA
send .\r\n
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
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "|0"
	run grep -c '^Received: ' "$SPOOL/alice"
	assert_output 1
}

@test "five recipients: each mailbox gets exactly one copy" {
	echo erin >> "$MS/users"
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
RCPT TO:<bob@example.org>
RCPT TO:<carol@localhost>
RCPT TO:<DAVE@example.org>
RCPT TO:<erin@example.org>
DATA
<<DATA
Subject: five

to five
.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
250 2.1.5
250 2.1.5
250 2.1.5
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	for u in alice bob carol dave erin; do
		run read_mailbox mbox "$SPOOL/$u"
		assert_output "five|8"
	done
}

@test "several messages in one connection arrive in order" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: one

1
.
>>
MAIL FROM:<b@remote.example>
RCPT TO:<alice@example.org>
RCPT TO:<bob@example.org>
DATA
<<DATA
Subject: two

22
.
>>
MAIL FROM:<>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: three

333
.
>>
QUIT
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
250 2.1.5
354
250 2.0.0
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	# three different queue ids
	run bash -c "printf '%s\n' \"\$1\" | sed -n 's/^250 2\.0\.0 Ok: queued as //p' | sort -u | wc -l" _ "$output"
	assert_output 3
	run read_mailbox mbox "$SPOOL/alice"
	assert_output - <<'EOF'
one|2
two|3
three|4
EOF
	run read_mailbox mbox "$SPOOL/bob"
	assert_output "two|3"
}

@test "two concurrent sessions, interleaved, both deliver to the same mailbox" {
	start_listener
	run python3 - "$PORT" <<'EOF'
import smtplib, sys
port = int(sys.argv[1])
a = smtplib.SMTP("127.0.0.1", port, local_hostname="a.test", timeout=10)
b = smtplib.SMTP("127.0.0.1", port, local_hostname="b.test", timeout=10)
print(a.ehlo()[0], b.ehlo()[0])
print(a.mail("a@remote.example")[0], b.mail("b@remote.example")[0])
print(a.rcpt("alice@example.org")[0], b.rcpt("alice@example.org")[0])
print(b.data(b"Subject: from b\r\n\r\nbbbb\r\n")[0])
print(a.data(b"Subject: from a\r\n\r\naa\r\n")[0])
print(a.quit()[0], b.quit()[0])
EOF
	assert_success
	assert_output - <<'EOF'
250 250
250 250
250 250
250
250
221 221
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output - <<'EOF'
from b|5
from a|3
EOF
}

# -------------------------------------------------------------- recipients

@test "unknown local user: 550 5.1.1" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<nosuchuser@example.org>
cmd RCPT TO:<nosuchuser@LOCALHOST>
cmd RCPT TO:<nosuchuser>
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
550 5.1.1
550 5.1.1
550 5.1.1
221 2.0.0
EOF
}

@test "--relay no: a remote recipient is 550 5.7.1 and nothing is queued" {
	start_listener --relay no
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<someone@remote.example>
cmd RCPT TO:<friend@example.org>
cmd RCPT TO:<alice@example.org>
cmd QUIT
EOF
	# the alias "friend" forwards off-site: that is not relaying
	assert_codes <<'EOF'
220
250
250 2.1.0
550 5.7.1
250 2.1.5
250 2.1.5
221 2.0.0
EOF
	run find "$QUEUE" -type f
	assert_output ''
}

@test "relaying is allowed on loopback by default: the message is queued in env/ and msg/" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<someone@elsewhere.example>
DATA
<<DATA
Subject: relayed

relay me
.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	id=$(queued_id)
	assert [ -n "$id" ]
	assert [ -f "$QUEUE/env/$id" ]
	assert [ -f "$QUEUE/msg/$id" ]
	run grep -c 'someone@elsewhere.example' "$QUEUE/env/$id"
	assert_output 1
	run grep -c '^relay me$' "$QUEUE/msg/$id"
	assert_output 1
	# nothing was delivered locally
	run find "$SPOOL" -type f
	assert_output ''
}

@test "--max-recipients 3: the fourth RCPT is 452 4.5.3, the first three get the message" {
	start_listener --max-recipients 3
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
RCPT TO:<bob@example.org>
RCPT TO:<carol@example.org>
RCPT TO:<dave@example.org>
RCPT TO:<postmaster@example.org>
DATA
<<DATA
Subject: three of five

.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
250 2.1.5
250 2.1.5
452 4.5.3
452 4.5.3
354
250 2.0.0
221 2.0.0
EOF
	for u in alice bob carol; do
		run read_mailbox mbox "$SPOOL/$u"
		assert_output "three of five|0"
	done
	assert [ ! -e "$SPOOL/dave" ]
	assert [ ! -e "$SPOOL/postmaster" ]
}

@test "a repeated recipient, user or alias, is 250 again and gets one copy" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
RCPT TO:<alice@example.org>
RCPT TO:<staff@example.org>
RCPT TO:<staff@example.org>
RCPT TO:<root@example.org>
DATA
<<DATA
Subject: duplicates

.
>>
QUIT
EOF
	# staff is alice and bob, root is alice: RFC 5321 3.3 lets a server
	# drop duplicates, but refusing them as "User unknown" is wrong
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
250 2.1.5
250 2.1.5
250 2.1.5
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "duplicates|0"
	run read_mailbox mbox "$SPOOL/bob"
	assert_output "duplicates|0"
}

@test "150 pipelined RCPTs under the default limits: 100 accepted, 50 x 452 4.5.3, the message goes to the 100" {
	start_listener
	# RFC 5321 4.5.3.1.8 and 3.3: the client sends the rest in a later
	# transaction; the 452s must not end this one
	run $RAW "$PORT" --timeout 20 <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example>
repeat 150 RCPT TO:<alice@example.org>
read 150
cmd DATA
send Subject: one hundred\r\n\r\n.\r\n
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
50 452 4.5.3
1 354
1 250 2.0.0
1 221 2.0.0
EOF
)"
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "one hundred|0"
}

# ------------------------------------------------------------------- sizes

@test "MAIL SIZE= over --max-size: 552 5.3.4; at the limit: 250" {
	start_listener --max-size 2k
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example> SIZE=2049
cmd MAIL FROM:<a@remote.example> SIZE=99999999999999999999999
cmd MAIL FROM:<a@remote.example> SIZE=2048
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
552 5.3.4
501 5.5.4
250 2.1.0
221 2.0.0
EOF
}

@test "MAIL SIZE= takes digits only, once; BODY= once (RFC 1870, RFC 5321 4.1.2): 501 5.5.4" {
	start_listener --max-errors 50
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example> SIZE=+5
cmd MAIL FROM:<a@remote.example> SIZE=-5
cmd MAIL FROM:<a@remote.example> SIZE=0x10
cmd MAIL FROM:<a@remote.example> SIZE=5 SIZE=6
cmd MAIL FROM:<a@remote.example> SIZE=5 BODY=7BIT size=5
cmd MAIL FROM:<a@remote.example> BODY=7BIT BODY=8BITMIME
cmd MAIL FROM:<a@remote.example> BODY=8BITMIME SIZE=5
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
501 5.5.4
501 5.5.4
501 5.5.4
501 5.5.4
501 5.5.4
501 5.5.4
250 2.1.0
221 2.0.0
EOF
}

@test "a message over --max-size: 552 5.3.4 after the dot, nothing delivered, the next one is" {
	start_listener --max-size 2k
	big=$(printf '%0900d' 0)
	run chat <<EOF
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: too big

$big
$big
$big
.
>>
MAIL FROM:<a@remote.example>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: small

$big
.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
552 5.3.4
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "small|901"
}

# -------------------------------------------------------- address and params

@test "unknown MAIL parameter: 555 5.5.4; an RCPT parameter too; BODY=8BITMIME is fine" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a@remote.example> FOO=bar
cmd MAIL FROM:<a@remote.example> SMTPUTF8
cmd MAIL FROM:<a@remote.example> BODY=8BITMIME
cmd RCPT TO:<alice@example.org> NOTIFY=NEVER
cmd RCPT TO:<alice@example.org>
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
555 5.5.4
555 5.5.4
250 2.1.0
555 5.5.4
250 2.1.5
221 2.0.0
EOF
}

@test "bad address syntax: 501 for MAIL and RCPT" {
	start_listener --max-errors 50
	run raw <<'EOF'
cmd EHLO client.test
cmd MAIL FROM:<a b@remote.example>
cmd MAIL FROM:<a@remote.example
cmd MAIL FROM:<a@@remote.example>
cmd MAIL FROM:<a@-remote.example>
cmd MAIL FROM:<a..b@remote.example>
cmd MAIL FROM:
cmd MAIL TO:<a@remote.example>
cmd MAIL FROM:<a@remote.example>
cmd RCPT TO:<bob@@example.org>
cmd RCPT TO:<bob@example.org
cmd RCPT TO:<>
cmd RCPT FROM:<bob@example.org>
cmd RCPT TO:<@example.org>
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
501 5.1.7
501 5.1.7
501 5.1.7
501 5.1.7
501 5.1.7
501 5.1.7
501 5.5.4
250 2.1.0
501 5.1.3
501 5.1.3
501 5.1.3
501 5.5.4
501 5.1.3
221 2.0.0
EOF
}

@test "the null sender <> is accepted and delivered with Return-Path: <>" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<>
RCPT TO:<bob@example.org>
DATA
<<DATA
Subject: bounce

.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run grep -c '^Return-Path: <>$' "$SPOOL/bob"
	assert_output 1
}

@test "postmaster in any case, with or without a local domain, is accepted and delivered" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<postmaster>
RCPT TO:<POSTMASTER>
RCPT TO:<PostMaster@example.org>
RCPT TO:<postmaster@LocalHost>
DATA
<<DATA
Subject: to postmaster

.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
250 2.1.5
250 2.1.5
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	# one mailbox, one copy: postmaster goes where root goes (root: alice)
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "to postmaster|0"
}

@test "MAIL FROM: <a@b> and MAIL FROM: a@b (typed by a person) are tolerated" {
	start_listener
	run chat <<'EOF'
HELO client.test
MAIL FROM: <spaced@remote.example>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: spaced

.
>>
MAIL FROM: bare@remote.example
RCPT TO: <alice@example.org>
DATA
<<DATA
Subject: bare

.
>>
QUIT
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
250 2.0.0
221 2.0.0
EOF
	run grep '^Return-Path: ' "$SPOOL/alice"
	assert_output - <<'EOF'
Return-Path: <spaced@remote.example>
Return-Path: <bare@remote.example>
EOF
}

@test "RCPT TO: bob means bob at the primary domain" {
	start_listener
	run chat <<'EOF'
EHLO client.test
MAIL FROM:<a@remote.example>
RCPT TO: bob
DATA
<<DATA
Subject: unqualified

.
>>
QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run grep '^Delivered-To: ' "$SPOOL/bob"
	assert_output 'Delivered-To: bob@example.org'
}

@test "the lab's error transcript: after EHLO user, MAIL FROM: user (no domain) is 501 5.1.7; RCPT TO: bob is still ours" {
	start_listener
	run nc_lab <<'EOF'
EHLO user
MAIL FROM: user
MAIL FROM:<user>
MAIL FROM: user@remote.example
RCPT TO: bob
DATA
Subject: qualified sender

.
QUIT
EOF
	assert_codes <<'EOF'
220
250
501 5.1.7
501 5.1.7
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run grep '^Return-Path: ' "$SPOOL/bob"
	assert_output 'Return-Path: <user@remote.example>'
}

@test "terminal: an unqualified sender is refused there too (501 5.1.7); <> is not unqualified" {
	run smtpd_stdin <<'EOF'
HELO terminal.test
MAIL FROM:<me>
MAIL FROM:<>
RCPT TO:<alice>
DATA
Subject: from the null sender

.
QUIT
EOF
	assert_success
	assert_codes <<'EOF'
220
250
501 5.1.7
250 2.1.0
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run grep '^Return-Path: ' "$SPOOL/alice"
	assert_output 'Return-Path: <>'
}

# ------------------------------------------------------------ trace fields

@test "Received: names the HELO, the peer address and the queue id; Return-Path and Delivered-To are added" {
	start_listener
	run chat <<'EOF'
EHLO helo-name.client.test
MAIL FROM:<sender@remote.example>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: trace

.
>>
QUIT
EOF
	assert_line --partial '250 2.0.0'
	id=$(queued_id)
	assert [ -n "$id" ]
	run cat "$SPOOL/alice"
	assert_line 'Return-Path: <sender@remote.example>'
	assert_line 'Delivered-To: alice@example.org'
	assert_line --regexp '^Received: from helo-name\.client\.test \(.*\[?127\.0\.0\.1\]?.*\)$'
	assert_line --regexp "^	by mx\.test .*id $id"
	# the order at delivery: Return-Path, Delivered-To, then our Received:
	run grep -m3 -n -E '^(Return-Path|Delivered-To|Received):' "$SPOOL/alice"
	assert_output - <<'EOF'
2:Return-Path: <sender@remote.example>
3:Delivered-To: alice@example.org
4:Received: from helo-name.client.test ([127.0.0.1])
EOF
}

# -------------------------------------------------------------- pipelining

@test "pipelining: MAIL, RCPTs and DATA in one write get their replies in order" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
send MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nosuchuser@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n
read 5
send Subject: piped\r\n\r\nbody\r\n.\r\n
read 1
cmd QUIT
EOF
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
550 5.1.1
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "piped|5"
	run read_mailbox mbox "$SPOOL/bob"
	assert_output "piped|5"
}

@test "pipelining: a whole transaction and QUIT in one write after EHLO" {
	start_listener
	run raw <<'EOF'
cmd EHLO client.test
send MAIL FROM:<a@remote.example>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\nSubject: one write\r\n\r\nall at once\r\n.\r\nMAIL FROM:<b@remote.example>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\nSubject: second\r\n\r\n.\r\nQUIT\r\n
eof
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
250 2.0.0
221 2.0.0
<EOF>
EOF
	run read_mailbox mbox "$SPOOL/carol"
	assert_output - <<'EOF'
one write|12
second|0
EOF
}

@test "swaks --pipeline delivers" {
	start_listener
	run swaks --server "127.0.0.1:$PORT" --pipeline --helo swaks.test \
		--from sender@remote.example --to alice@example.org,bob@example.org \
		--header 'Subject: swaks pipelined' --body 'pipelined body'
	assert_success
	assert_line --regexp '^<-  *250 2\.0\.0 '
	# swaks really pipelined: DATA went out before the reply to MAIL came
	local data_sent mail_ok
	data_sent=$(printf '%s\n' "$output" | grep -n -- '-> DATA$' | cut -d: -f1)
	mail_ok=$(printf '%s\n' "$output" | grep -n '^<-  *250 2\.1\.0' | cut -d: -f1)
	assert [ -n "$data_sent" ] && assert [ -n "$mail_ok" ]
	assert [ "$data_sent" -lt "$mail_ok" ]
	for u in alice bob; do
		run read_mailbox mbox "$SPOOL/$u"
		assert_output --regexp '^swaks pipelined\|'
	done
}

# ------------------------------------------------------------- real clients

@test "swaks: basic delivery" {
	start_listener
	run swaks --server "127.0.0.1:$PORT" --helo swaks.test \
		--from sender@remote.example --to carol@example.org \
		--header 'Subject: swaks basic' --body 'swaks-token-4711'
	assert_success
	assert_line --regexp '<-  *250 2\.0\.0 '
	run read_mailbox mbox "$SPOOL/carol"
	assert_output --regexp '^swaks basic\|'
	run grep -c 'swaks-token-4711' "$SPOOL/carol"
	assert_output 1
	run grep -c '^Received: from swaks.test ' "$SPOOL/carol"
	assert_output 1
}

@test "smtplib sendmail to several recipients: the unknown one is refused, the others get it" {
	start_listener
	run $SMTPLIB "$PORT" sender@remote.example "smtplib several" \
		alice@example.org bob@example.org nosuchuser@example.org carol@localhost
	assert_success
	assert_output - <<'EOF'
refused nosuchuser@example.org 550
sent
EOF
	for u in alice bob carol; do
		run read_mailbox mbox "$SPOOL/$u"
		assert_output "smtplib several|22"
	done
}

@test "smtplib: every recipient unknown means nothing is sent" {
	start_listener
	run $SMTPLIB "$PORT" sender@remote.example "nobody" nosuch1@example.org nosuch2@example.org
	assert_failure
	assert_output - <<'EOF'
refused nosuch1@example.org 550
refused nosuch2@example.org 550
all refused
EOF
	run find "$SPOOL" -type f
	assert_output ''
}

@test "nc -C: the classic lab session, typed line by line" {
	start_listener
	run nc_lab <<'EOF'
HELO lab.student.test
MAIL FROM:<student@remote.example>
RCPT TO:<alice@example.org>
DATA
Subject: lab exercise
From: student@remote.example
To: alice@example.org

Hello from the lab.
.
QUIT
EOF
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
	assert_output "lab exercise|20"
}

@test "nc -C: the lab session with typos, a relay attempt and a fix-up" {
	start_listener --relay no
	run nc_lab <<'EOF'
HELLO lab.student.test
HELO lab.student.test
RCPT TO:<alice@example.org>
MAIL FROM: student@remote.example
RCPT TO:<president@whitehouse.example>
RCPT TO:<alcie@example.org>
RCPT TO: alice
DATA
Subject: second try

.
QUIT
EOF
	assert_codes <<'EOF'
220
500 5.5.2
250
503 5.5.1
250 2.1.0
550 5.7.1
550 5.1.1
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "second try|0"
}

# -------------------------------------------------------------- mail loops

# received_script N: a chat script whose message has N Received: fields
received_script() {
	printf 'EHLO client.test\nMAIL FROM:<a@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n<<DATA\n'
	for i in $(seq 1 "$1"); do
		printf 'Received: from hop%d.example by hop%d.example; Mon, 1 Jan 2024 00:00:00 +0000\n' "$i" "$((i + 1))"
	done
	printf 'Subject: hops %d\n\nloop?\n.\n>>\nQUIT\n' "$1"
}

@test "mail loop: 101 Received: fields are refused with 554 5.4.6" {
	start_listener
	received_script 101 >"$BATS_TEST_TMPDIR/loop.chat"
	run chat <"$BATS_TEST_TMPDIR/loop.chat"
	assert_codes <<'EOF'
220
250
250 2.1.0
250 2.1.5
354
554 5.4.6
221 2.0.0
EOF
	assert [ ! -e "$SPOOL/alice" ]
}

@test "mail loop: 100 Received: fields are still accepted (ours makes 101)" {
	start_listener
	received_script 100 >"$BATS_TEST_TMPDIR/loop.chat"
	run chat <"$BATS_TEST_TMPDIR/loop.chat"
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
	assert_output "hops 100|6"
	run grep -c '^Received: ' "$SPOOL/alice"
	assert_output 101
}

@test "mail loop: --max-received 2 refuses 3 Received: fields and takes 2" {
	start_listener --max-received 2
	received_script 3 >"$BATS_TEST_TMPDIR/loop.chat"
	run chat <"$BATS_TEST_TMPDIR/loop.chat"
	assert_line --regexp '^554 5\.4\.6 '
	received_script 2 >"$BATS_TEST_TMPDIR/ok.chat"
	run chat <"$BATS_TEST_TMPDIR/ok.chat"
	assert_line --regexp '^250 2\.0\.0 '
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "hops 2|6"
}

@test "mail loop: Received: in the body does not count" {
	start_listener
	{
		printf 'EHLO client.test\nMAIL FROM:<a@remote.example>\nRCPT TO:<alice@example.org>\nDATA\n<<DATA\n'
		printf 'Subject: quoted trace\n\n'
		for i in $(seq 1 150); do printf 'Received: from hop%d.example\n' "$i"; done
		printf '.\n>>\nQUIT\n'
	} >"$BATS_TEST_TMPDIR/body.chat"
	run chat <"$BATS_TEST_TMPDIR/body.chat"
	assert_line --regexp '^250 2\.0\.0 '
	run read_mailbox mbox "$SPOOL/alice"
	assert_output --regexp '^quoted trace\|'
}

# ------------------------------------------------------------ terminal mode

@test "terminal: the same sequence rules apply on standard input" {
	run smtpd_stdin <<'EOF'
MAIL FROM:<a@remote.example>
helo terminal.test
RCPT TO:<alice@example.org>
MAIL FROM:<a@remote.example>
MAIL FROM:<a@remote.example>
DATA
RCPT TO:<nosuch@example.org>
DATA
RCPT TO:<alice@example.org>
DATA
Subject: terminal

.
QUIT
EOF
	assert_success
	assert_codes <<'EOF'
220
503 5.5.1
250
503 5.5.1
250 2.1.0
503 5.5.1
503 5.5.1
550 5.1.1
554 5.5.1
250 2.1.5
354
250 2.0.0
221 2.0.0
EOF
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "terminal|0"
}
