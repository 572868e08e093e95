#!/usr/bin/env bats
# relay.bats: mailslot-relay against real components on this machine only.
# DNS is a dnsmasq of the test's own (helpers/relay_helper.bash), every
# relay run gets --dns-server, and the remote side is a second
# mailslot-smtpd, Postfix's smtp-sink or aiosmtpd on other loopback
# addresses.  The relay-policy test crosses a real network boundary: a
# network namespace joined by a veth pair.  Assertions are on what the
# queue, the mailboxes and the remote servers hold afterwards, and on
# status codes rather than texts.

load test_helper
load helpers/relay_helper

setup() {
	[ -x "$RELAY" ] || fail "$RELAY is not built: run make first"
	relay_require
	relay_setup
}

teardown() {
	relay_teardown
}

# The envelope files left in the queue, one id a line.
queue_ids() {
	ls -1 "$QUEUE/env" 2>/dev/null
}

# A message that exercises transparency: lines that are only a dot or start
# with one, a "From " line, trailing white space, a tab, 8-bit text, a
# 998-octet line, and enough text to cross the relay's 64 KiB read buffer.
tricky_message() {
	printf 'From: Alice <alice@example.org>\n'
	printf 'To: Bob <bob@remote.test>\n'
	printf 'Subject: end to end\n'
	printf 'Message-ID: <e2e@example.org>\n'
	printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n'
	printf '.\n..\n.leading dot\nFrom the start of a line\n>From quoted\n'
	printf 'trailing spaces   \n\tindented by a tab\nGr\303\274\303\237e aus K\303\266ln\n'
	head -c 998 /dev/zero | tr '\0' 'x'
	printf '\n'
	for i in $(seq 1 1500); do
		printf 'line %04d of the filler text, long enough to matter here\n' "$i"
	done
	printf '.\nlast line\n'
}

@test "delivered end to end: the remote mailbox holds the queued message byte for byte" {
	relay_dns
	relay_remote 127.0.0.2 mx1
	relay_queue alice@example.org bob@remote.test < <(tricky_message)
	cp "$QUEUE/msg/$QID" "$BATS_TEST_TMPDIR/queued"
	# our own trace field is part of what travels
	run head -2 "$BATS_TEST_TMPDIR/queued"
	assert_line --index 0 --regexp '^Received: from client\.test '
	assert_line --index 1 --regexp $'^\tby sender\\.test \\(mailslot\\) with SMTP id '"$QID"'$'

	run relay
	assert_success
	assert_output --partial "status=sent"
	run queue_ids
	assert_output ''

	run relay_remote_mail mx1 bob
	assert_equal "${#lines[@]}" 1
	local got=${lines[0]} size
	size=$(stat -c %s "$BATS_TEST_TMPDIR/queued")
	# the receiver prepends its own fields; everything after them is ours
	tail -c "$size" "$got" | cmp - "$BATS_TEST_TMPDIR/queued"
	run head -c "$(($(stat -c %s "$got") - size))" "$got"
	assert_line --index 0 'Return-Path: <alice@example.org>'
	assert_line --index 1 'Delivered-To: bob@remote.test'
	assert_line --index 2 'Received: from sender.test ([127.0.0.1])'
	assert_line --index 3 --regexp $'^\tby mx1\\.remote\\.test \\(mailslot\\) with ESMTP id '
}

@test "MX preference: the lower preference is used although the DNS lists it second" {
	relay_dns
	relay_remote 127.0.0.2 mx1
	relay_remote 127.0.0.3 mx2
	relay_queue alice@example.org bob@remote.test < <(relay_msg preference)
	run relay
	assert_success
	assert_output --regexp "to=<bob@remote\.test> relay=mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT status=sent"
	run relay_remote_mail mx1 bob
	assert_equal "${#lines[@]}" 1
	run relay_remote_mail mx2 bob
	assert_output ''
}

@test "MX fallback: the second MX delivers when the first refuses connections" {
	relay_dns
	relay_remote 127.0.0.3 mx2	# nothing listens on mx1 (127.0.0.2)
	relay_queue alice@example.org bob@remote.test < <(relay_msg fallback)
	run relay
	assert_success
	assert_output --partial "mx1.remote.test[127.0.0.2]:$RPORT: connect: Connection refused"
	assert_output --regexp "relay=mx2\.remote\.test\[127\.0\.0\.3\]:$RPORT status=sent"
	run relay_remote_mail mx2 bob
	assert_equal "${#lines[@]}" 1
	run grep -c '^Subject: fallback$' "${lines[0]}"
	assert_output 1
	run queue_ids
	assert_output ''
}

@test "implicit MX: a domain with an address and no MX receives at that address" {
	relay_dns
	relay_remote 127.0.0.4 implicit --domain implicit.test
	relay_queue alice@example.org bob@implicit.test < <(relay_msg implicit)
	run relay
	assert_success
	assert_output --regexp "relay=implicit\.test\[127\.0\.0\.4\]:$RPORT status=sent"
	run relay_remote_mail implicit bob
	assert_equal "${#lines[@]}" 1
	run queue_ids
	assert_output ''
}

# ::1 is this host, which the relay refuses as an MX (a loop): the IPv6
# server is in a network namespace, across a veth pair.
@test "AAAA: an MX host with only an IPv6 address is reached over IPv6" {
	relay_netns
	[ -n "$NS_ADDR6" ] && [ -n "$HOST_ADDR6" ] || skip "no IPv6 on the veth pair"
	relay_dns "--host-record=mx.v6.test,$NS_ADDR6"
	RELAY_REMOTE_NETNS=$NETNS relay_remote "$NS_ADDR6" v6 --domain v6.test
	relay_queue alice@example.org bob@v6.test < <(relay_msg ipv6)
	run relay
	assert_success
	assert_output --partial "relay=mx.v6.test[$NS_ADDR6]:$RPORT status=sent"
	run relay_remote_mail v6 bob
	assert_equal "${#lines[@]}" 1
	run grep -c "^Received: from sender.test (\[IPv6:$HOST_ADDR6\])\$" "${lines[0]}"
	assert_output 1
}

@test "AAAA: an IPv4-mapped address of this host (::ffff:127.0.0.1) is this host too" {
	relay_dns --mx-host=mapped.test,mx.mapped.test,10 --host-record=mx.mapped.test,::ffff:127.0.0.1
	relay_remote 127.0.0.1 self
	relay_queue alice@example.org bob@mapped.test < <(relay_msg mapped)
	run relay
	assert_success
	assert_output --partial "mail for mapped.test loops back to myself"
	run grep -c 'connect from' "$BATS_TEST_TMPDIR/self/smtpd.log"
	assert_output 0
}

@test "null MX (RFC 7505): bounced at once with 5.1.10, and no connection tried" {
	relay_dns
	relay_queue alice@example.org someone@nullmx.test < <(relay_msg nullmx)
	run relay
	assert_success
	assert_output --partial "null MX"
	refute_output --partial "connect"
	run queue_ids
	assert_output ''
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line 'return-path: <>'
	assert_line 'parts: text/plain message/delivery-status text/rfc822-headers'
	assert_line 'reporting-mta: dns; sender.test'
	assert_line --regexp '^recipient: someone@nullmx\.test action=failed status=5\.1\.10 '
	assert_line 'returned: nullmx'
}

@test "unknown domain (NXDOMAIN): bounced at once with 5.1.2" {
	relay_dns
	relay_queue alice@example.org someone@missing.test < <(relay_msg nxdomain)
	run relay
	assert_success
	assert_output --partial "does not exist"
	run queue_ids
	assert_output ''
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line --regexp '^recipient: someone@missing\.test action=failed status=5\.1\.2 '
	assert_line 'returned: nxdomain'
	# the name really was asked of the test's DNS server, and answered NXDOMAIN
	run grep -E 'config missing\.test is NXDOMAIN' "$BATS_TEST_TMPDIR/dnsmasq.log"
	assert_success
}

@test "DNS failure (the server refuses): deferred, not bounced" {
	relay_dns
	# outside .test the DNS server has nothing and no upstream: REFUSED
	relay_queue alice@example.org someone@elsewhere.example < <(relay_msg dnsfail)
	run relay --min-backoff 60
	assert_success
	assert_output --partial "status=deferred"
	run queue_ids
	assert_output "$QID"
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<someone@elsewhere\.example> attempts=1 next=\+(59|60)s error: '
	[ ! -e "$SPOOL/alice" ] || fail "a bounce was sent for a temporary DNS failure"
}

@test "4xx: the recipient stays queued with a later next attempt, then is delivered when the server recovers" {
	relay_dns
	# smtp-sink answers every RCPT with 450 4.3.0
	relay_smtp_sink 127.0.0.5 sink -r RCPT
	relay_queue alice@example.org bob@foreign.test < <(relay_msg tempfail)
	run relay --min-backoff 60 --max-backoff 1000
	assert_success
	assert_output --partial "status=deferred (450 4.3.0"
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@foreign\.test> attempts=1 next=\+(59|60)s error: 450 4\.3\.0 '

	# not due yet: a plain run leaves it alone
	run relay --min-backoff 60 --max-backoff 1000
	assert_success
	refute_output --partial "to=<bob@foreign.test>"
	run relay_list_rcpts "$QID"
	assert_output --regexp 'attempts=1 next=\+(5[89]|60)s'

	# forced while still failing: the delay doubles
	run relay --min-backoff 60 --max-backoff 1000 --flush
	assert_success
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@foreign\.test> attempts=2 next=\+(119|120)s error: 450 4\.3\.0 '

	# the server recovers: the same address now accepts everything
	relay_stop sink
	relay_py_sink 127.0.0.5 recovered
	run relay --flush
	assert_success
	assert_output --regexp "to=<bob@foreign\.test> relay=mx\.foreign\.test\[127\.0\.0\.5\]:$RPORT status=sent"
	run queue_ids
	assert_output ''
	run cat "$BATS_TEST_TMPDIR/recovered/1.env"
	assert_output $'from <alice@example.org>\nrcpt <bob@foreign.test>'
	run grep -c '^Subject: tempfail$' "$BATS_TEST_TMPDIR/recovered/1.eml"
	assert_output 1
	[ ! -e "$BATS_TEST_TMPDIR/recovered/2.eml" ] || fail "delivered twice"
	[ ! -e "$SPOOL/alice" ] || fail "a bounce was sent for a temporary failure"
}

@test "5xx for one of two recipients: one delivered, one bounced with a valid RFC 3464 report" {
	relay_dns
	relay_py_sink 127.0.0.5 sink --reject 'nobody@foreign.test=550 5.1.1 <nobody@foreign.test>: no such user'
	relay_queue alice@example.org ok@foreign.test nobody@foreign.test < <(relay_msg split)
	run relay
	assert_success
	assert_output --partial "to=<ok@foreign.test> relay=mx.foreign.test[127.0.0.5]:$RPORT status=sent"
	assert_output --partial "to=<nobody@foreign.test> relay=mx.foreign.test[127.0.0.5]:$RPORT status=bounced"
	run cat "$BATS_TEST_TMPDIR/sink/1.env"
	assert_output $'from <alice@example.org>\nrcpt <ok@foreign.test>'
	[ ! -e "$BATS_TEST_TMPDIR/sink/2.eml" ] || fail "delivered twice"
	run queue_ids
	assert_output ''

	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line 'return-path: <>'
	assert_line 'type: multipart/report; report-type=delivery-status'
	assert_line 'parts: text/plain message/delivery-status text/rfc822-headers'
	assert_line 'reporting-mta: dns; sender.test'
	assert_line --regexp '^recipient: nobody@foreign\.test action=failed status=5\.1\.1 remote-mta=.* diagnostic=smtp; 550 5\.1\.1 <nobody@foreign\.test>: no such user$'
	assert_line 'returned: split'
	# only the failed recipient is reported, in one report
	local report=$output
	run grep -c '^recipient: ' <<<"$report"
	assert_output 1
	# RFC 3464 2.3.5: with the name type "dns" the name is a domain name,
	# not the relay's log notation host[address]:port
	grep -qE '^recipient: nobody@foreign\.test .* remote-mta=dns; mx\.foreign\.test diagnostic=' <<<"$report" ||
		fail "Remote-MTA is not 'dns; mx.foreign.test': $(grep '^recipient: ' <<<"$report")"
}

@test "5xx from smtp-sink for every recipient: bounced, nothing left queued" {
	relay_dns
	relay_smtp_sink 127.0.0.5 sink -f RCPT
	relay_queue alice@example.org bob@foreign.test < <(relay_msg hardfail)
	run relay
	assert_success
	assert_output --partial "status=bounced (500 5.3.0"
	run queue_ids
	assert_output ''
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line --regexp '^recipient: bob@foreign\.test action=failed status=5\.3\.0 .* diagnostic=smtp; 500 5\.3\.0 '
}

@test "a failure for a message from the null sender makes no bounce, and says so in the log" {
	relay_dns
	relay_queue "" someone@nullmx.test < <(relay_msg fromnull)
	run relay
	assert_success
	assert_output --partial "status=bounced"
	assert_output --regexp "$QID: no bounce for 1 recipient\(s\): the sender is <>"
	run queue_ids
	assert_output ''
	run ls -A "$SPOOL"
	assert_output ''
}

@test "relay killed with SIGKILL in the middle of DATA: the recipient stays queued and goes on the next run" {
	relay_dns
	# smtp-sink answers DATA with 354, then reads nothing for 60 s, and a
	# small TCP window makes the relay block while it sends the text
	relay_smtp_sink 127.0.0.5 stall -H 60 -T 4096
	relay_queue alice@example.org bob@foreign.test < <(
		relay_msg killed
		seq -f 'filler line %05g of a message larger than the socket buffers' 1 80000
	)
	cp "$QUEUE/env/$QID" "$BATS_TEST_TMPDIR/env.before"
	relay_argv
	"${RELAY_ARGV[@]}" 2>"$BATS_TEST_TMPDIR/killed.log" 3>&- &
	local pid=$! sent=0
	# mid-DATA: the relay's connection has unsent text queued
	for _ in $(seq 1 100); do
		sent=$(ss -Htn state established "( dport = :$RPORT )" dst 127.0.0.5 | awk '{ print $2 }' | head -1)
		[ "${sent:-0}" -gt 10000 ] && break
		sleep 0.05
	done
	[ "${sent:-0}" -gt 10000 ] || fail "the relay never got into DATA: $(cat "$BATS_TEST_TMPDIR/killed.log")"
	kill -KILL "$pid"
	wait "$pid" || true
	relay_stop stall

	# the entry is as it was: nothing recorded, nothing lost
	cmp "$QUEUE/env/$QID" "$BATS_TEST_TMPDIR/env.before"
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@foreign\.test> attempts=0 '
	# smtp-sink captures as it reads: what it got stops short of the end
	run grep -rc '^filler line 80000 ' "$BATS_TEST_TMPDIR/stall/dump"
	refute_output --regexp ':[1-9]'

	# the next run, named by the queue id, delivers it
	relay_remote 127.0.0.5 mx --domain foreign.test
	run relay "$QID"
	assert_success
	assert_output --partial "status=sent"
	run queue_ids
	assert_output ''
	run relay_remote_mail mx bob
	assert_equal "${#lines[@]}" 1
	run grep -c '^filler line 80000 ' "${lines[0]}"
	assert_output 1
}

@test "two concurrent runs: every message is delivered exactly once" {
	relay_dns
	relay_py_sink 127.0.0.5 sink --data-delay 1.5
	local i
	for i in 1 2 3; do
		relay_queue alice@example.org bob@foreign.test < <(relay_msg "concurrent $i")
	done
	relay_argv
	"${RELAY_ARGV[@]}" 2>"$BATS_TEST_TMPDIR/run1.log" 3>&- &
	local one=$!
	# the first run is inside its first session before the second starts
	for _ in $(seq 1 100); do
		[ -s "$BATS_TEST_TMPDIR/sink/sessions" ] && break
		sleep 0.05
	done
	"${RELAY_ARGV[@]}" 2>"$BATS_TEST_TMPDIR/run2.log" 3>&- &
	local two=$!
	wait "$one"
	wait "$two"
	cat "$BATS_TEST_TMPDIR/run1.log" "$BATS_TEST_TMPDIR/run2.log" >>"$RELAY_LOG"

	run grep -h '^Subject: ' "$BATS_TEST_TMPDIR"/sink/*.eml
	assert_equal "$(sort <<<"$output")" $'Subject: concurrent 1\nSubject: concurrent 2\nSubject: concurrent 3'
	run queue_ids
	assert_output ''
	# the second run found the first one's entry locked and left it alone
	run grep -c 'busy with another run' "$BATS_TEST_TMPDIR/run2.log"
	refute_output 0
	run cat "$BATS_TEST_TMPDIR/run1.log" "$BATS_TEST_TMPDIR/run2.log"
	run grep -c 'status=sent' <<<"$output"
	assert_output 3
}

@test "--bounce returns an entry to its sender now; --delete drops one without a bounce" {
	relay_dns
	relay_queue alice@example.org bob@foreign.test < <(relay_msg returned)
	local returned=$QID
	relay_queue alice@example.org bob@foreign.test < <(relay_msg dropped)
	local dropped=$QID

	run relay --bounce "$returned"
	assert_success
	run relay --delete "$dropped"
	assert_success
	run queue_ids
	assert_output ''
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line --regexp '^recipient: bob@foreign\.test action=failed status=5\.0\.0 '
	assert_line 'returned: returned'
	refute_line 'returned: dropped'

	run relay --delete "$dropped"
	assert_failure 64
}

@test "--max-lifetime: a recipient still failing once it has passed is bounced with 4.4.7" {
	relay_dns
	relay_smtp_sink 127.0.0.5 sink -r RCPT
	relay_queue alice@example.org bob@foreign.test < <(relay_msg expired)
	sleep 1.1
	run relay --max-lifetime 0
	assert_success
	run queue_ids
	assert_output ''
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line --regexp '^recipient: bob@foreign\.test action=failed status=4\.4\.7 '
}

@test "pipelining (RFC 2920) to a mailslot-smtpd MX: an unknown user is bounced, the others share one copy" {
	relay_dns
	relay_remote 127.0.0.2 mx1
	relay_queue alice@example.org bob@remote.test nosuch@remote.test carol@remote.test < <(relay_msg pipelined)
	run relay --verbose
	assert_success
	assert_output --partial "to=<bob@remote.test> relay=mx1.remote.test[127.0.0.2]:$RPORT status=sent"
	assert_output --partial "to=<carol@remote.test> relay=mx1.remote.test[127.0.0.2]:$RPORT status=sent"
	assert_output --partial "to=<nosuch@remote.test> relay=mx1.remote.test[127.0.0.2]:$RPORT status=bounced (550 5.1.1"
	# one transaction: the receiver logged a single message for two recipients
	run grep -c 'nrcpt=2 peer=127.0.0.1' "$BATS_TEST_TMPDIR/mx1/smtpd.log"
	assert_output 1
	run relay_remote_mail mx1 bob
	assert_equal "${#lines[@]}" 1
	run relay_remote_mail mx1 carol
	assert_equal "${#lines[@]}" 1
	run queue_ids
	assert_output ''
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line --regexp '^recipient: nosuch@remote\.test action=failed status=5\.1\.1 '
	run grep -c '^recipient: ' <<<"$output"
	assert_output 1
}

@test "one message for two domains: each domain gets its own connection and copy" {
	relay_dns
	relay_remote 127.0.0.2 mx1
	relay_py_sink 127.0.0.5 sink
	relay_queue alice@example.org bob@remote.test x@foreign.test < <(relay_msg twodomains)
	run relay
	assert_success
	assert_output --regexp "to=<bob@remote\.test> relay=mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT status=sent"
	assert_output --regexp "to=<x@foreign\.test> relay=mx\.foreign\.test\[127\.0\.0\.5\]:$RPORT status=sent"
	run relay_remote_mail mx1 bob
	assert_equal "${#lines[@]}" 1
	run cat "$BATS_TEST_TMPDIR/sink/1.env"
	assert_output $'from <alice@example.org>\nrcpt <x@foreign.test>'
	run queue_ids
	assert_output ''
}

@test "the first MX answers 421 at the greeting: the second MX delivers" {
	relay_dns
	relay_smtp_sink 127.0.0.2 busy -Q CONNECT
	relay_remote 127.0.0.3 mx2
	relay_queue alice@example.org bob@remote.test < <(relay_msg busy)
	run relay
	assert_success
	assert_output --regexp "mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT: greeting: 421 "
	assert_output --regexp "relay=mx2\.remote\.test\[127\.0\.0\.3\]:$RPORT status=sent"
	run relay_remote_mail mx2 bob
	assert_equal "${#lines[@]}" 1
}

@test "a server that stops answering: the relay gives up after --timeout and defers" {
	relay_dns
	# smtp-sink waits 30 s before it answers EHLO
	relay_smtp_sink 127.0.0.5 mute -W EHLO:30
	relay_queue alice@example.org bob@foreign.test < <(relay_msg mute)
	SECONDS=0
	run relay --timeout 1 --min-backoff 60
	assert_success
	[ "$SECONDS" -lt 10 ] || fail "the run took $SECONDS s with --timeout 1"
	assert_output --partial "timeout waiting for a reply"
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@foreign\.test> attempts=1 next=\+(59|60)s error: .*timeout waiting for a reply'
}

@test "--timeout bounds a whole reply: ten greeting lines 1.5 s apart do not hold the relay 15 s" {
	relay_dns
	{
		for i in 1 2 3 4 5 6 7 8 9; do
			printf 'send 220-mx.foreign.test line %s\nsleep 1.5\n' "$i"
		done
		printf 'send 220 mx.foreign.test ready\nread\nsend 250 mx.foreign.test\nread\n'
	} | relay_script_server 127.0.0.5 slow
	relay_queue alice@example.org bob@foreign.test < <(relay_msg slowgreeting)
	SECONDS=0
	run relay --timeout 2 --min-backoff 60
	assert_success
	[ "$SECONDS" -lt 6 ] || fail "the run took $SECONDS s with --timeout 2"
	assert_output --partial "timeout waiting for a reply"
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@foreign\.test> attempts=1 .*timeout waiting for a reply'
}

@test "--timeout bounds the whole message text, not each 4 KiB of it: a server that reads slowly is given up" {
	relay_dns
	# reads 4 KiB every 0.5 s: 8 KiB/s, under the relay's floor of 32 KiB/s,
	# yet fast enough that each 4 KiB would go out within --timeout
	relay_script_server 127.0.0.5 trickle --rcvbuf 4096 --maxseg 536 <<'EOF'
send 220 mx.foreign.test
read
send 250 mx.foreign.test
read
send 250 2.1.0 ok
read
send 250 2.1.5 ok
read
send 354 go ahead
trickle 4096 0.5
send 250 2.0.0 ok
read
send 221 bye
EOF
	relay_queue alice@example.org bob@foreign.test < <(
		relay_msg trickled
		seq -f 'filler line %05g of a message that takes a while' 1 8000
	)
	# about 400 KB: the kernel's buffers take some 200 KB at once, the rest
	# takes 25 s at 8 KiB/s; the relay's deadline is 5 s + 12.5 s
	SECONDS=0
	run relay --timeout 5 --min-backoff 60
	assert_success
	[ "$SECONDS" -lt 24 ] || fail "the run took $SECONDS s with --timeout 5"
	assert_output --partial "timeout sending the message"
	assert_output --partial "status=deferred"
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@foreign\.test> attempts=1 '
	# the server never saw the end of the text
	run cat "$BATS_TEST_TMPDIR/trickle/transcript"
	refute_output --partial "<text of"
}

@test "a server that answers DATA with 250 instead of 354 gets no text: the recipient is deferred, not sent" {
	relay_dns
	relay_script_server 127.0.0.5 nodata <<'EOF'
send 220 mx.foreign.test
read
send 250 mx.foreign.test
read
send 250 2.1.0 ok
read
send 250 2.1.5 ok
read
send 250 2.0.0 ok, thanks
EOF
	relay_queue alice@example.org bob@foreign.test < <(relay_msg nodata)
	run relay --min-backoff 60
	assert_success
	assert_output --partial "status=deferred"
	refute_output --partial "status=sent"
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@foreign\.test> attempts=1 .*error: .*DATA'
	# no text and no QUIT that the server could take for text
	run cat "$BATS_TEST_TMPDIR/nodata/transcript"
	refute_output --partial "<text of"
	refute_output --partial "C: QUIT"
	[ ! -e "$SPOOL/alice" ] || fail "bounced"
}

@test "SIZE (RFC 1870): the declared size is at least the octets sent, CRLFs included" {
	relay_dns
	relay_py_sink 127.0.0.5 sink
	relay_queue alice@example.org bob@foreign.test < <(
		relay_msg sized
		seq -f 'line %g' 1 2000
	)
	local stored declared sent
	stored=$(stat -c %s "$QUEUE/msg/$QID")
	run relay
	assert_success
	assert_output --partial "status=sent"
	declared=$(sed -n 's/^SIZE=//p' "$BATS_TEST_TMPDIR/sink/1.opts")
	sent=$(cat "$BATS_TEST_TMPDIR/sink/1.size")
	[ -n "$declared" ] || fail "no SIZE= parameter although the server offers SIZE"
	[ "$declared" -ge "$sent" ] ||
		fail "MAIL FROM declared SIZE=$declared, but $sent octets followed DATA (the queue file, LF line ends, holds $stored)"
}

@test "SIZE: a message over the server's announced limit is bounced 5.3.4 without being sent" {
	relay_dns
	relay_py_sink 127.0.0.5 sink --size-limit 2000
	relay_queue alice@example.org bob@foreign.test < <(
		relay_msg toobig
		seq -f 'line %g' 1 1000
	)
	run relay
	assert_success
	assert_output --partial "status=bounced"
	[ ! -e "$BATS_TEST_TMPDIR/sink/1.eml" ] || fail "the message was sent anyway"
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line --regexp '^recipient: bob@foreign\.test action=failed status=5\.3\.4 '
}

@test "an MX that names this relay's own host: bounced as a routing problem, never sent to itself" {
	relay_dns
	relay_queue alice@example.org bob@loop.test < <(relay_msg loop)
	run relay
	assert_success
	assert_output --partial "status=bounced"
	refute_output --partial "connect"
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line --regexp '^recipient: bob@loop\.test action=failed status=5\.4\.[0-9]+ '
}

@test "an MX whose address is this host (127.0.0.1): bounced 5.4.6 as a loop, no connection to itself" {
	relay_dns
	# what would answer on this host's own address: it must get nothing
	relay_remote 127.0.0.1 self
	relay_queue alice@example.org bob@selfaddr.test bob@selfimplicit.test < <(relay_msg selfaddr)
	run relay
	assert_success
	assert_output --partial "mail for selfaddr.test loops back to myself"
	assert_output --partial "mail for selfimplicit.test loops back to myself"
	run grep -c 'to=<bob@[^>]*> .*status=sent' <<<"$output"
	assert_output 0
	run relay_remote_mail self bob
	assert_output ''
	run grep -c 'connect from' "$BATS_TEST_TMPDIR/self/smtpd.log"
	assert_output 0
	run queue_ids
	assert_output ''
	run relay_dsn "$SPOOL/alice"
	assert_success
	assert_line --regexp '^recipient: bob@selfaddr\.test action=failed status=5\.4\.6 '
	assert_line --regexp '^recipient: bob@selfimplicit\.test action=failed status=5\.4\.6 '
}

@test "a server at another 127/8 address that answers EHLO with this host's name is a loop: nothing is sent" {
	relay_dns
	# the relay's own name, as this host's mailslot-smtpd listening on
	# every address would answer at 127.0.0.2
	relay_remote 127.0.0.2 mx1 --hostname sender.test
	relay_queue alice@example.org bob@remote.test < <(relay_msg samename)
	run relay --min-backoff 60
	assert_success
	assert_output --partial "mail loops back to myself: the server greets as sender.test"
	assert_output --partial "status=deferred"
	run relay_remote_mail mx1 bob
	assert_output ''
	run relay_list_rcpts "$QID"
	# mx2 (127.0.0.3), where nothing listens, was tried next
	assert_output --regexp '^<bob@remote\.test> attempts=1 .*mx2\.remote\.test'
}

@test "this host as a backup MX: only the better MX is tried, and the recipient waits when it fails" {
	relay_dns
	relay_remote 127.0.0.1 self	# nothing listens on mx1 (127.0.0.2)
	relay_queue alice@example.org bob@backup.test < <(relay_msg backup)
	run relay --min-backoff 60
	assert_success
	assert_output --partial "mx1.remote.test[127.0.0.2]:$RPORT: connect: Connection refused"
	assert_output --partial "status=deferred"
	run grep -c 'connect from' "$BATS_TEST_TMPDIR/self/smtpd.log"
	assert_output 0
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@backup\.test> attempts=1 '
	[ ! -e "$SPOOL/alice" ] || fail "bounced"
}

@test "--smarthost on this host's own address is the administrator's choice: delivered" {
	relay_dns
	relay_remote 127.0.0.1 smart
	relay_queue alice@example.org bob@remote.test < <(relay_msg smartself)
	run relay --smarthost "127.0.0.1:$RPORT"
	assert_success
	assert_output --partial "status=sent"
	run relay_remote_mail smart bob
	assert_equal "${#lines[@]}" 1
}

@test "a bounce to a remote sender goes out from the null sender" {
	relay_dns
	relay_py_sink 127.0.0.5 sink
	relay_queue someone@foreign.test x@nullmx.test < <(relay_msg remotesender)
	run relay
	assert_success
	assert_output --regexp "to=<someone@foreign\.test> relay=mx\.foreign\.test\[127\.0\.0\.5\]:$RPORT status=sent"
	run cat "$BATS_TEST_TMPDIR/sink/1.env"
	assert_output $'from <>\nrcpt <someone@foreign.test>'
	run relay_dsn --file "$BATS_TEST_TMPDIR/sink/1.eml"
	assert_success
	assert_line --regexp '^recipient: x@nullmx\.test action=failed status=5\.1\.10 '
	assert_line 'returned: remotesender'
	run queue_ids
	assert_output ''
}

@test "deferred recipients of one domain cost one session per run, not one each" {
	relay_dns
	relay_py_sink 127.0.0.5 sink --reject 'a@foreign.test=450 4.2.0 try later' \
		--reject 'b@foreign.test=451 4.3.0 try later' --reject 'c@foreign.test=452 4.3.1 try later'
	relay_queue alice@example.org a@foreign.test b@foreign.test c@foreign.test < <(relay_msg grouped)
	run relay
	assert_success
	run grep -c 'status=deferred' <<<"$output"
	assert_output 3
	run grep -c '^EHLO ' "$BATS_TEST_TMPDIR/sink/sessions"
	assert_output 1
}

# As root, --user names the account the relay is to run as (its --help:
# "account to run as when started as root"), and a local delivery (here a
# bounce) takes the recipient's identity, as mailslot-smtpd's does, so the
# new mailbox belongs to its owner.  The spool is laid out like Debian's.
@test "started as root: --user is honoured and a local bounce is delivered as its recipient" {
	[ "$(id -u)" -eq 0 ] || skip "needs root, as systemd or cron start the relay"
	getent passwd mail >/dev/null && getent passwd nobody >/dev/null ||
		skip "needs the accounts mail and nobody"
	relay_dns
	# bats' own temporary directory is closed to the mail account
	local dir
	dir=$(mktemp -d /tmp/mailslot-relay.XXXXXX)
	echo "$dir" >"$BATS_TEST_TMPDIR/shared-dir"
	chmod 755 "$dir"
	install -d -o root -g mail -m 2775 "$dir/spool"
	install -d -o mail -g mail -m 0700 "$dir/queue"
	"$SMTPD" -s "$dir/spool" -q "$dir/queue" -d example.test -H sender.test -L stderr --user mail \
		>"$BATS_TEST_TMPDIR/submit.out" 2>>"$LOG" <<'EOF'
HELO client.test
MAIL FROM:<nobody@example.test>
RCPT TO:<someone@nullmx.test>
DATA
Subject: as root

body
.
QUIT
EOF
	run ls "$dir/queue/env"
	assert_equal "${#lines[@]}" 1
	run "$RELAY" -q "$dir/queue" -s "$dir/spool" -d example.test -H sender.test -L stderr \
		--dns-server "127.0.0.1:$DNSPORT" --port "$RPORT" --connect-timeout 2 --timeout 5 --user mail
	assert_success
	assert_output --partial "status=bounced"
	run ls "$dir/queue/env"
	assert_output ''
	[ -f "$dir/spool/nobody" ] || fail "no bounce in $dir/spool/nobody"
	run stat -c '%U %a' "$dir/spool/nobody"
	assert_output --regexp '^nobody '
}

@test "a missing --queue directory is an error at start-up (74), for --list and for a run" {
	run "$RELAY" --queue "$BATS_TEST_TMPDIR/none" --user "$(id -un)" --list
	assert_failure 74
	assert_output --regexp "^mailslot-relay: cannot use the queue .*/none: No such file or directory$"
	refute_output --partial "entries"
	run relay --queue "$BATS_TEST_TMPDIR/none"
	assert_failure 74
	: >"$BATS_TEST_TMPDIR/file"
	run relay --queue "$BATS_TEST_TMPDIR/file"
	assert_failure 74
	assert_output --partial "Not a directory"
}

@test "queue subdirectories are made 0770 whatever the umask: the group enqueues" {
	relay_dns
	mkdir "$BATS_TEST_TMPDIR/q"
	umask 022
	run relay --queue "$BATS_TEST_TMPDIR/q"
	assert_success
	run stat -c '%n %a' "$BATS_TEST_TMPDIR/q/tmp" "$BATS_TEST_TMPDIR/q/msg" "$BATS_TEST_TMPDIR/q/env"
	assert_line --index 0 --regexp '/tmp 770$'
	assert_line --index 1 --regexp '/msg 770$'
	assert_line --index 2 --regexp '/env 770$'
	# mailslot-smtpd makes them with the same code
	mkdir "$BATS_TEST_TMPDIR/q2"
	"$SMTPD" $(smtpd_args) --queue "$BATS_TEST_TMPDIR/q2" 2>>"$LOG" >/dev/null <<'EOF'
HELO client.test
MAIL FROM:<alice@example.org>
RCPT TO:<bob@remote.test>
DATA
Subject: mode

x
.
QUIT
EOF
	run stat -c '%a' "$BATS_TEST_TMPDIR/q2/tmp"
	assert_output 770
}

# README: after `make run` as root (the handler's --user is root), the
# queue is root's, and the relay run by root becomes --user (mail by
# default); the README's command names the account.
@test "started as root: the README's --list command reads a queue that root's make run made" {
	[ "$(id -u)" -eq 0 ] || skip "needs root, as the README's make run"
	getent passwd mail >/dev/null || skip "needs the account mail"
	relay_queue alice@example.org bob@remote.test < <(relay_msg listed)
	chown -R root:root "$QUEUE"
	chmod 0750 "$QUEUE"
	run "$RELAY" --queue "$QUEUE" --user "$(id -un)" --list
	assert_success
	assert_line --regexp "^$QID "
	assert_line '-- 1 entry in the queue'
	# without it the relay is mail, and says at once why it cannot
	chmod 0700 "$QUEUE"
	run "$RELAY" --queue "$QUEUE" --list
	assert_failure 74
	assert_output --partial "Permission denied"
}

@test "command line: bad values are refused before any delivery (64 usage, 78 configuration)" {
	relay_dns
	relay_queue alice@example.org bob@foreign.test < <(relay_msg untouched)
	run relay --no-such-option
	assert_failure 64
	run relay --dns-server 999.1.1.1
	assert_failure 78
	run relay --dns-server 127.0.0.1:0
	assert_failure 78
	run relay --dns-server '[::1]:53'
	assert_failure 78
	assert_output --partial "only IPv4"
	run relay --smarthost 'mx.foreign.test:smtp'
	assert_failure 78
	run relay --smarthost '[127.0.0.5'
	assert_failure 78
	run relay ../etc/passwd
	assert_failure 64
	run relay_list_rcpts "$QID"
	assert_output --regexp '^<bob@foreign\.test> attempts=0 '
}

# Relay policy, across a real network boundary.  The handler listens on the
# host's end of a veth pair; the client runs in another network namespace.
# A connection to a loopback address may relay, any other may not, and may
# still deliver to local users.
@test "relay policy: a client in another network namespace is refused relaying (550 5.7.1) and still delivers locally" {
	relay_netns
	local port
	port=$(free_port)
	# shellcheck disable=SC2046 # smtpd_args is one word per option
	systemd-socket-activate --accept --inetd -l "$HOST_ADDR:$port" "$SMTPD" $(smtpd_args) \
		2>>"$LOG" >/dev/null 3>&- &
	relay_pid $!
	relay_wait_listen "$HOST_ADDR" "$port"
	start_listener	# the same handler on 127.0.0.1:$PORT

	run ip netns exec "$NETNS" "$SYS_PYTHON" "$BATS_TEST_DIRNAME/helpers/smtpchat.py" "$HOST_ADDR" "$port" <<'EOF'
EHLO outside.test
MAIL FROM:<someone@outside.test>
RCPT TO:<friend@remote.test>
RCPT TO:<alice@example.org>
DATA
<<DATA
Subject: across the veth

hello from the namespace
.
>>
QUIT
EOF
	assert_success
	assert_line --regexp '^550 5\.7\.1 '
	assert_line --regexp '^250 2\.1\.5 '
	assert_line --regexp '^250 2\.0\.0 Ok: queued as '
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "across the veth|25"
	run queue_ids
	assert_output ''
	run grep -c "]: connect from $NS_ADDR class=network" "$LOG"
	assert_output 1

	# the non-loopback address refuses relaying to this machine's own clients too
	run $CHAT "$HOST_ADDR" "$port" <<'EOF'
EHLO inside.test
MAIL FROM:<alice@example.org>
RCPT TO:<friend@remote.test>
QUIT
EOF
	assert_line --regexp '^550 5\.7\.1 '

	# while the loopback listener relays for the same client and recipient
	run chat <<'EOF'
EHLO inside.test
MAIL FROM:<alice@example.org>
RCPT TO:<friend@remote.test>
QUIT
EOF
	assert_line --regexp '^250 2\.1\.5 '
	refute_line --regexp '^550 '
}

@test "hand-off: mailslot-smtpd starts the relay after queueing, and the message reaches the remote MX" {
	relay_dns
	relay_remote 127.0.0.2 mx1
	relay_argv
	# the handler runs the command with sh -c; the queue id comes from the
	# environment, never from the message
	local cmd
	cmd="$(printf '%q ' "${RELAY_ARGV[@]}") \"\$MAILSLOT_QUEUE_ID\" 2>>$BATS_TEST_TMPDIR/handoff.log"
	run smtpd_stdin --hostname sender.test --handoff "$cmd" <<'EOM'
HELO client.test
MAIL FROM:<alice@example.org>
RCPT TO:<bob@remote.test>
DATA
Subject: handed off

through the hand-off
.
QUIT
EOM
	assert_line --partial "250 2.0.0 Ok: queued as"
	# the relay is detached: wait for it, boundedly
	for _ in $(seq 1 100); do
		[ -z "$(queue_ids)" ] && break
		sleep 0.1
	done
	run queue_ids
	assert_output ''
	run relay_remote_mail mx1 bob
	assert_equal "${#lines[@]}" 1
	run grep -c '^through the hand-off$' "${lines[0]}"
	assert_output 1
}

@test "a local recipient whose delivery failed in the handler is delivered by the next relay run" {
	relay_dns
	# hold alice's mailbox with lockf past the handler's lock timeout
	: > "$SPOOL/alice"
	/usr/bin/python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(4)' "$SPOOL/alice" "$BATS_TEST_TMPDIR/locked" &
	local holder=$!
	for _ in $(seq 1 50); do [ -e "$BATS_TEST_TMPDIR/locked" ] && break; sleep 0.05; done
	run smtpd_stdin --hostname sender.test --lock-timeout 1 <<'EOM'
HELO client.test
MAIL FROM:<carol@example.org>
RCPT TO:<alice@example.org>
RCPT TO:<bob@example.org>
DATA
Subject: retried locally

kept in the queue for alice
.
QUIT
EOM
	assert_line --partial "250 2.0.0 Ok: queued as"
	run queue_ids
	assert_equal "${#lines[@]}" 1
	run relay_list_rcpts "${lines[0]}"
	assert_output --regexp '^<alice@example\.org> mailbox=alice attempts=0 '
	wait "$holder"
	run relay --flush
	assert_success
	assert_output --partial "status=sent (delivered to mailbox alice)"
	run queue_ids
	assert_output ''
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "retried locally|28"
	run read_mailbox mbox "$SPOOL/bob"
	assert_output "retried locally|28"
}

@test "--smarthost: everything goes to one host, without MX lookup" {
	relay_dns
	relay_remote 127.0.0.5 smart
	# the DNS knows nothing of remote.test: only the smarthost can deliver it
	relay_queue alice@example.org bob@remote.test < <(relay_msg smarthost)
	run relay --smarthost "127.0.0.5:$RPORT"
	assert_success
	assert_output --partial "status=sent"
	run relay_remote_mail smart bob
	assert_equal "${#lines[@]}" 1
	run grep -c "remote.test" "$BATS_TEST_TMPDIR/dnsmasq.log"
	assert_output 0
}

@test "an address literal recipient is delivered to that address without DNS" {
	relay_dns
	# the remote handler takes its own address literal as a local domain
	relay_remote 127.0.0.3 literal
	relay_queue alice@example.org 'bob@[127.0.0.3]' < <(relay_msg literal)
	run relay
	assert_success
	assert_output --partial "status=sent"
	run relay_remote_mail literal bob
	assert_equal "${#lines[@]}" 1
}

# A final dot sent on its own waited under Nagle's algorithm for the ACK
# that the server delays: 40 ms a message (23 msg/s to smtp-sink).
@test "the end of the text and the final dot leave in one write, with the pipelined envelope in one before it" {
	command -v strace >/dev/null || skip "strace is not installed"
	relay_dns
	relay_smtp_sink 127.0.0.5 sink
	relay_queue alice@example.org someone@sink.test < <(relay_msg "one write")
	relay_argv --smarthost "127.0.0.5:$RPORT"
	run strace -f -qq -e trace=write,sendto -s 65536 -o "$BATS_TEST_TMPDIR/trace" "${RELAY_ARGV[@]}"
	assert_success
	grep -q 'status=sent' <<<"$output" || fail "not sent: $output"
	# the text's last line and the dot are one call
	grep -E '(write|sendto)\([0-9]+, ".*body of one write\\r\\n\.\\r\\n"' "$BATS_TEST_TMPDIR/trace" ||
		fail "the final dot was sent apart: $(grep -E 'write|sendto' "$BATS_TEST_TMPDIR/trace" | tail -5)"
	grep -E '(write|sendto)\([0-9]+, "MAIL FROM:<alice@example.org>.*\\r\\nRCPT TO:<someone@sink.test>\\r\\nDATA\\r\\n"' \
		"$BATS_TEST_TMPDIR/trace"
}
