#!/usr/bin/env bats
# pop3.bats: mailslot-pop3d (RFC 1939, RFC 2449, RFC 2595, RFC 5034,
# RFC 8314) with real clients: Python's poplib (plain, stls(), POP3_SSL),
# curl pop3:// and pop3s://, fetchmail, getmail6, mpop, openssl s_client;
# messages delivered by mailslot-smtpd, and a bounce mailslot-relay
# delivered, come back byte-exact in every
# format; DELE counts only at QUIT; deliveries go on during a session;
# a second session gets [IN-USE]; a wrong password is logged for fail2ban;
# the TLS key is the monitor's (EC, RSA: TLS 1.3 and 1.2), never in the
# session's memory, signed with once.

load test_helper

POP3D="${POP3D:-$BATS_TEST_DIRNAME/../mailslot-pop3d}"
CLIENT="python3 $BATS_TEST_DIRNAME/helpers/pop3_client.py"

setup_file() {
	local dir=$BATS_FILE_TMPDIR/pki
	load helpers/tls_helper
	tls_ca "$dir"
	tls_cert "$dir" pop "DNS:localhost,IP:127.0.0.1"
	chmod 600 "$dir/pop.key"
	# the key types the monitor signs with (EC above, RSA) and one it cannot
	tls_cert_rsa "$dir" pop-rsa "DNS:localhost,IP:127.0.0.1"
	tls_cert_ed25519 "$dir" pop-ed "DNS:localhost,IP:127.0.0.1"
}

setup() {
	setup_spool
	PKI=$BATS_FILE_TMPDIR/pki
	PASSWD=$BATS_TEST_TMPDIR/passwd
	printf 'alice:%s\nbob:%s\n' "$(openssl passwd -6 'alice secret')" "$(openssl passwd -6 'bob secret')" \
		>"$PASSWD"
	chmod 600 "$PASSWD"
	TLS=(--tls-cert "$PKI/pop.pem" --tls-key "$PKI/pop.key")
	FORMAT=mbox
}

teardown() {
	stop_listeners
	if [ -f "$BATS_TEST_TMPDIR/rootdir" ]; then
		rm -rf "$(cat "$BATS_TEST_TMPDIR/rootdir")"
	fi
}

pop3d_args() {
	echo --spool "$SPOOL" --users "$MS/users" --passwd "$PASSWD" --format "$FORMAT" --hostname pop.test \
		--user "$(id -un)" --log stderr --error-delay 5
}

# start_pop3 [ARGS]: mailslot-pop3d on a free loopback port, one process
# per connection; sets POP.  start_smtp [ARGS]: mailslot-smtpd; sets SMTP.
start_pop3() {
	local saved=$SMTPD saved_args
	saved_args=$(declare -f smtpd_args)
	SMTPD=$POP3D
	smtpd_args() { pop3d_args; }
	start_listener "$@"
	POP=$PORT
	SMTPD=$saved
	eval "$saved_args"
}

start_smtp() {
	start_listener --format "$FORMAT" "$@"
	SMTP=$PORT
}

# send FILE [RCPT]: through mailslot-smtpd, as smtplib sends it
send() {
	python3 "$BATS_TEST_DIRNAME/helpers/pop3_send.py" "$SMTP" "${2:-alice@example.org}" "$1"
}

# a message with what dot-stuffing, CRLF and mboxrd quoting must get right
sample() {
	printf 'From: sender@remote.example\r\nTo: alice@example.org\r\nSubject: sample %s\r\n\r\n' "$2" >"$1"
	printf '.starts with a dot\r\n..two dots\r\n.\r\nFrom the start of a line\r\n>From quoted\r\n' >>"$1"
	printf '>>From twice\r\n \r\ncaf\xc3\xa9 8bit\r\n%s\r\n\r\n\r\nthe end %s\r\n' "$(head -c 900 /dev/zero | tr '\0' x)" \
		"$2" >>"$1"
}

@test "--help names every option; without --passwd, or with a bad option, it will not start" {
	run "$POP3D" --help
	assert_success
	for o in --spool --format --users --passwd --tls-cert --tls-key --pop3s --user --log --timeout --config; do
		assert_output --partial -- "$o"
	done
	run "$POP3D" --spool "$SPOOL" </dev/null
	assert_failure 64
	assert_output --partial -- "--passwd is needed"
	run "$POP3D" --passwd "$PASSWD" --pop3s </dev/null
	assert_failure 64
}

@test "CAPA: RESP-CODES, AUTH-RESP-CODE, PIPELINING, TOP, UIDL, USER, SASL PLAIN, IMPLEMENTATION; STLS with a certificate" {
	start_pop3 "${TLS[@]}"
	run python3 -c "
import poplib
p = poplib.POP3('127.0.0.1', $POP)
print(p.getwelcome().decode())
for k, v in sorted(p.capa().items()): print(' '.join([k] + v))
p.user('alice'); p.pass_('alice secret')
print('after login:', ' '.join(sorted(p.capa())))
p.quit()"
	assert_success
	assert_line '+OK pop.test POP3 mailslot ready'
	for c in RESP-CODES AUTH-RESP-CODE PIPELINING TOP UIDL USER STLS; do assert_line "$c"; done
	assert_line 'SASL PLAIN'
	assert_line --regexp '^IMPLEMENTATION mailslot-'
	assert_line 'after login: AUTH-RESP-CODE IMPLEMENTATION PIPELINING RESP-CODES TOP UIDL'
}

# For each format: three messages through mailslot-smtpd, back through
# poplib: every RETR ends in the octets sent, after the trace fields the
# delivery added, and LIST, +OK and the octets agree.
retrieve_byte_exact() {
	FORMAT=$1
	start_smtp
	start_pop3
	for i in 1 2 3; do
		sample "$BATS_TEST_TMPDIR/sent$i" "$i"
		send "$BATS_TEST_TMPDIR/sent$i"
	done
	mkdir "$BATS_TEST_TMPDIR/got"
	run $CLIENT "$POP" alice 'alice secret' --out "$BATS_TEST_TMPDIR/got"
	assert_success
	assert_line --regexp '^stat 3 [0-9]+$'
	assert_line 'sizes ok'
	for i in 1 2 3; do
		head -c 13 "$BATS_TEST_TMPDIR/got/$i" | grep -q '^Return-Path: ' || fail "message $i: no Return-Path first"
		python3 -c 'import sys; got, sent = (open(f, "rb").read() for f in sys.argv[1:]); sys.exit(not got.endswith(b"\r\n" + sent))' \
			"$BATS_TEST_TMPDIR/got/$i" "$BATS_TEST_TMPDIR/sent$i" || fail "$FORMAT message $i is not what was sent"
	done
	# uids: unique, and the same in the next session
	run $CLIENT "$POP" alice 'alice secret'
	local first=$output
	[ "$(grep -c '^uidl' <<<"$first")" -eq 3 ]
	[ "$(grep '^uidl' <<<"$first" | awk '{print $3}' | sort -u | wc -l)" -eq 3 ]
	run $CLIENT "$POP" alice 'alice secret'
	assert_equal "$output" "$first"
}

@test "mbox: messages from mailslot-smtpd come back byte-exact (From_ line out, mboxrd quoting undone)" {
	retrieve_byte_exact mbox
}

@test "maildir: byte-exact; what was in new/ is in cur/ once seen" {
	retrieve_byte_exact maildir
	[ -z "$(ls "$SPOOL/alice/new")" ]
	[ "$(ls "$SPOOL/alice/cur" | grep -c ':2,$')" -eq 3 ]
}

@test "mh: byte-exact" {
	retrieve_byte_exact mh
}

@test "numbered: byte-exact" {
	retrieve_byte_exact numbered
}

@test "DELE counts only at QUIT: a dropped connection deletes nothing; QUIT removes; uids of the rest stay" {
	for FORMAT in mbox maildir; do
		stop_listeners
		rm -rf "${SPOOL:?}"/*
		start_smtp
		start_pop3
		for i in 1 2 3; do sample "$BATS_TEST_TMPDIR/m$i" "$i"; send "$BATS_TEST_TMPDIR/m$i"; done
		run $CLIENT "$POP" alice 'alice secret' --dele 1,2 --drop
		assert_line 'dropped'
		run $CLIENT "$POP" alice 'alice secret'
		assert_line --regexp '^stat 3 '
		local uid3
		uid3=$(grep '^uidl 3 ' <<<"$output" | awk '{print $3}')
		run $CLIENT "$POP" alice 'alice secret' --dele 1,2
		assert_line --regexp '^\+OK pop.test POP3 server signing off \(1 message left\)'
		run $CLIENT "$POP" alice 'alice secret'
		assert_line --regexp '^stat 1 '
		assert_line "uidl 1 $uid3"
		grep -q 'logout: user=alice peer=127.0.0.1 retrieved=0 octets=0 deleted=0 deleted_octets=0 left=3 quit=no' "$LOG"
		grep -q 'logout: user=alice peer=127.0.0.1 retrieved=0 octets=0 deleted=2 deleted_octets=[0-9]* left=1$' "$LOG"
	done
}

@test "a delivery during an open session is neither blocked nor lost; a second session gets [IN-USE]" {
	# mbox (locked by deliveries) and Maildir (not locked at all)
	for FORMAT in mbox maildir; do
		stop_listeners
		rm -rf "${SPOOL:?}"/*
		start_smtp --lock-timeout 2
		start_pop3
		sample "$BATS_TEST_TMPDIR/m1" 1
		send "$BATS_TEST_TMPDIR/m1"
		# a session that deletes message 1 and holds the maildrop 2 s
		$CLIENT "$POP" alice 'alice secret' --dele 1 --hold 2 >"$BATS_TEST_TMPDIR/held" &
		local held=$!
		sleep 0.6
		sample "$BATS_TEST_TMPDIR/m2" 2
		local t0=$EPOCHREALTIME
		send "$BATS_TEST_TMPDIR/m2"
		awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 1.5) }' || fail "$FORMAT: delivery waited"
		run $CLIENT "$POP" alice 'alice secret'
		assert_failure
		assert_output --partial 'error -ERR [IN-USE]'
		wait "$held"
		run cat "$BATS_TEST_TMPDIR/held"
		assert_line 'stat 1 '"$(grep -o '^stat 1 [0-9]*' "$BATS_TEST_TMPDIR/held" | awk '{print $3}')"
		assert_line --partial '+OK pop.test POP3 server signing off'
		mkdir -p "$BATS_TEST_TMPDIR/got.$FORMAT"
		run $CLIENT "$POP" alice 'alice secret' --out "$BATS_TEST_TMPDIR/got.$FORMAT"
		assert_line --regexp '^stat 1 '
		grep -q 'sample 2' "$BATS_TEST_TMPDIR/got.$FORMAT/1" || fail "$FORMAT: the new message is not the one left"
	done
}

@test "a wrong password: -ERR [AUTH] after a pause, logged as fail2ban's filter reads it; the third ends the connection" {
	start_pop3 --error-delay 300
	local t0=$EPOCHREALTIME
	run python3 -c "
import poplib
p = poplib.POP3('127.0.0.1', $POP)
for u, pw in (('alice', 'wrong'), ('nosuchuser', 'x'), ('alice', 'wrong again')):
    p.user(u)
    try: p.pass_(pw)
    except poplib.error_proto as e: print(e.args[0].decode())
try: p.noop(); print('still open')
except Exception: print('closed')"
	[ "$(grep -c '^-ERR \[AUTH\] Authentication failed$' <<<"$output")" -eq 3 ]
	assert_line 'closed'
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a >= 1.8) }' || fail "no pause"
	grep -q 'authentication failed: user=alice peer=127.0.0.1$' "$LOG"
	grep -q 'authentication failed: user=nosuchuser peer=127.0.0.1$' "$LOG"
	# no lock left behind: the right password works at once
	run $CLIENT "$POP" alice 'alice secret'
	assert_success
	assert_fail2ban_matches 3 "$LOG"
}

@test "no USER, PASS or AUTH in clear off loopback; no password in the log with --verbose" {
	run sh -c "printf 'CAPA\r\nUSER alice\r\nAUTH PLAIN AGFsaWNlAGFsaWNlIHNlY3JldA==\r\nQUIT\r\n' |
		TCPREMOTEIP=192.0.2.9 TCPLOCALIP=192.0.2.1 '$POP3D' $(pop3d_args)"
	refute_line --partial 'USER'
	refute_line --partial 'SASL'
	[ "$(grep -c '^-ERR \[AUTH\] Plaintext authentication disallowed' <<<"$output")" -eq 2 ]
	start_pop3 --verbose
	run $CLIENT "$POP" alice 'alice secret' --auth-plain
	assert_success
	run $CLIENT "$POP" alice 'alice secret'
	assert_success
	run grep -F -e 'alice secret' -e AGFsaWNlAGFsaWNlIHNlY3JldA== "$LOG"
	assert_failure
}

@test "poplib stls() and POP3_SSL (--pop3s), the certificate verified; USER only inside TLS off loopback" {
	start_smtp
	sample "$BATS_TEST_TMPDIR/m1" 1
	send "$BATS_TEST_TMPDIR/m1"
	start_pop3 "${TLS[@]}"
	run $CLIENT "$POP" alice 'alice secret' --stls "$PKI/ca.pem" --auth-plain
	assert_success
	assert_line --regexp '^stat 1 '
	grep -q 'login: user=alice peer=127.0.0.1 messages=1 octets=[0-9]* tls="TLSv1.3 ' "$LOG"
	stop_listeners
	start_pop3 "${TLS[@]}" --pop3s
	mkdir "$BATS_TEST_TMPDIR/got"
	run $CLIENT "$POP" alice 'alice secret' --ssl "$PKI/ca.pem" --out "$BATS_TEST_TMPDIR/got"
	assert_success
	assert_line 'sizes ok'
}

@test "curl pop3:// and pop3s://: list, and RETR the same octets as poplib" {
	start_smtp
	sample "$BATS_TEST_TMPDIR/m1" 1
	send "$BATS_TEST_TMPDIR/m1"
	start_pop3 "${TLS[@]}"
	mkdir "$BATS_TEST_TMPDIR/got"
	$CLIENT "$POP" alice 'alice secret' --out "$BATS_TEST_TMPDIR/got"
	run curl -sS --user 'alice:alice secret' "pop3://127.0.0.1:$POP/"
	assert_success
	assert_output --regexp '^1 [0-9]+'
	curl -sS --user 'alice:alice secret' "pop3://127.0.0.1:$POP/1" >"$BATS_TEST_TMPDIR/curl1"
	cmp "$BATS_TEST_TMPDIR/curl1" "$BATS_TEST_TMPDIR/got/1"
	curl -sS --ssl-reqd --cacert "$PKI/ca.pem" --user 'alice:alice secret' "pop3://localhost:$POP/1" \
		>"$BATS_TEST_TMPDIR/curl2"
	cmp "$BATS_TEST_TMPDIR/curl2" "$BATS_TEST_TMPDIR/got/1"
	stop_listeners
	start_pop3 "${TLS[@]}" --pop3s
	curl -sS --cacert "$PKI/ca.pem" --user 'alice:alice secret' "pop3s://localhost:$POP/1" >"$BATS_TEST_TMPDIR/curl3"
	cmp "$BATS_TEST_TMPDIR/curl3" "$BATS_TEST_TMPDIR/got/1"
}

@test "openssl s_client -starttls pop3: USER and PASS inside TLS, then STAT" {
	start_pop3 "${TLS[@]}"
	run sh -c "printf 'USER alice\nPASS alice secret\nSTAT\nQUIT\n' | openssl s_client -quiet -crlf \
		-starttls pop3 -CAfile '$PKI/ca.pem' -verify_return_error -connect 127.0.0.1:$POP 2>&1"
	assert_line --partial '+OK Logged in, 0 messages'
	assert_line --partial '+OK 0 0'
	assert_line --partial 'signing off'
}

# fetchmail's rc file for this test's server; $1: keep or nokeep.  The
# MDA writes each message to a file of its own in fetched/.
fetchmailrc() {
	printf '#!/bin/sh\ncat >"%s/fetched/$$"\n' "$BATS_TEST_TMPDIR" >"$BATS_TEST_TMPDIR/mda"
	chmod 755 "$BATS_TEST_TMPDIR/mda"
	printf 'set no syslog\npoll 127.0.0.1 service %s protocol pop3 uidl\n' "$POP" >"$BATS_TEST_TMPDIR/fetchmailrc"
	printf '  user alice password "alice secret" %s sslproto "" mda "%s"\n' "$1" "$BATS_TEST_TMPDIR/mda" \
		>>"$BATS_TEST_TMPDIR/fetchmailrc"
	chmod 600 "$BATS_TEST_TMPDIR/fetchmailrc"
}

fetch() {
	HOME=$BATS_TEST_TMPDIR fetchmail -f "$BATS_TEST_TMPDIR/fetchmailrc" -i "$BATS_TEST_TMPDIR/fetchids" -N "$@"
}

@test "fetchmail --keep --uidl twice: each message once; a new one next time; then delete mode empties the box" {
	start_smtp
	start_pop3
	mkdir "$BATS_TEST_TMPDIR/fetched"
	for i in 1 2; do sample "$BATS_TEST_TMPDIR/m$i" "$i"; send "$BATS_TEST_TMPDIR/m$i"; done
	fetchmailrc keep
	run fetch
	assert_success
	[ "$(ls "$BATS_TEST_TMPDIR/fetched" | wc -l)" -eq 2 ]
	run fetch
	assert_failure 1	# 1: no mail
	[ "$(ls "$BATS_TEST_TMPDIR/fetched" | wc -l)" -eq 2 ]
	sample "$BATS_TEST_TMPDIR/m3" 3
	send "$BATS_TEST_TMPDIR/m3"
	run fetch
	assert_success
	[ "$(ls "$BATS_TEST_TMPDIR/fetched" | wc -l)" -eq 3 ]
	grep -l 'sample 3' "$BATS_TEST_TMPDIR"/fetched/* >/dev/null
	rm "$BATS_TEST_TMPDIR"/fetched/* "$BATS_TEST_TMPDIR/fetchids"
	fetchmailrc nokeep
	run fetch
	assert_success
	[ "$(ls "$BATS_TEST_TMPDIR/fetched" | wc -l)" -eq 3 ]
	run $CLIENT "$POP" alice 'alice secret'
	assert_line 'stat 0 0'
}

@test "getmail6: every message once, kept on the server, not fetched again" {
	FORMAT=maildir
	start_smtp
	start_pop3
	for i in 1 2; do sample "$BATS_TEST_TMPDIR/m$i" "$i"; send "$BATS_TEST_TMPDIR/m$i"; done
	local md=$BATS_TEST_TMPDIR/gm/Maildir
	mkdir -p "$md/new" "$md/cur" "$md/tmp" "$BATS_TEST_TMPDIR/gm/dir"
	cat >"$BATS_TEST_TMPDIR/gm/rc" <<-EOF
		[retriever]
		type = SimplePOP3Retriever
		server = 127.0.0.1
		port = $POP
		username = alice
		password = alice secret
		[destination]
		type = MDA_external
		path = /bin/sh
		arguments = ("-c", "cat >$md/new/\$\$")
		allow_root_commands = true
		unixfrom = false
		[options]
		read_all = false
		delete = false
		verbose = 0
	EOF
	for _ in 1 2; do
		run getmail --getmaildir "$BATS_TEST_TMPDIR/gm/dir" --rcfile "$BATS_TEST_TMPDIR/gm/rc"
		assert_success
	done
	[ "$(ls "$md/new" | wc -l)" -eq 2 ]
	run $CLIENT "$POP" alice 'alice secret'
	assert_line --regexp '^stat 2 '
}

@test "mpop over STLS with the certificate verified: kept, then deleted, each message once" {
	start_smtp
	start_pop3 "${TLS[@]}"
	for i in 1 2; do sample "$BATS_TEST_TMPDIR/m$i" "$i"; send "$BATS_TEST_TMPDIR/m$i"; done
	local md=$BATS_TEST_TMPDIR/mp/Maildir
	mkdir -p "$md/new" "$md/cur" "$md/tmp"
	local mp=(mpop --host=127.0.0.1 --port="$POP" --user=alice --passwordeval="echo 'alice secret'"
		--tls=on --tls-starttls=on --tls-trust-file="$PKI/ca.pem" --tls-host-override=localhost
		--delivery=maildir,"$md" --uidls-file="$BATS_TEST_TMPDIR/mp/uidls" --auth=user)
	run "${mp[@]}" --keep=on -q
	assert_success
	run "${mp[@]}" --keep=on -q
	assert_success
	[ "$(ls "$md/new" | wc -l)" -eq 2 ]
	run "${mp[@]}" --keep=off --only-new=off -q
	assert_success
	run $CLIENT "$POP" alice 'alice secret' --stls "$PKI/ca.pem"
	assert_line 'stat 0 0'
}

@test "TOP, LIST n, UIDL n, RSET, NOOP and errors, pipelined in one write" {
	start_smtp
	sample "$BATS_TEST_TMPDIR/m1" 1
	send "$BATS_TEST_TMPDIR/m1"
	start_pop3
	run python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', $POP))
s.sendall(b'USER alice\r\nPASS alice secret\r\nTOP 1 2\r\nLIST 1\r\nUIDL 1\r\nDELE 1\r\nLIST 1\r\nRSET\r\nRETR 9\r\nTOP 1\r\nNOOP\r\nLIST 1x\r\nQUIT\r\n')
data = b''
while True:
    b = s.recv(65536)
    if not b: break
    data += b
print(data.decode().replace('\r\n', '\n'))"
	assert_success
	assert_line --regexp '^\+OK [0-9]+ octets$'
	assert_line '..starts with a dot'
	assert_line '...two dots'
	refute_line '..'
	assert_line --regexp '^\+OK 1 [0-9]+$'
	assert_line --regexp '^\+OK 1 m[0-9a-f]{16}$'
	assert_line '+OK Message 1 deleted'
	assert_line '-ERR No such message'
	assert_line --regexp '^\+OK Maildrop has 1 message \([0-9]+ octets\)$'
	assert_line '-ERR Syntax: TOP message lines'
	assert_line '+OK'
	assert_line '-ERR Bad message number'
	assert_line '+OK pop.test POP3 server signing off (1 message left)'
}

@test "SIGKILL at every system call of the UPDATE (strace): the mailbox whole, before or after, in every format" {
	# the same calls killed under ASan add nothing (crashpoints.bats)
	not_in_asan "SIGKILL at every system call of the UPDATE"
	command -v strace >/dev/null || fail "strace missing (tests/install-deps.sh test installs it)"
	local fmt pids=()
	# the four formats side by side: each run is its own spool and processes
	for fmt in mbox maildir mh numbered; do
		mkdir -p "$BATS_TEST_TMPDIR/crash-$fmt"
		cp "$MS/users" "$PASSWD" "$BATS_TEST_TMPDIR/crash-$fmt/"
		python3 "$BATS_TEST_DIRNAME/helpers/pop3_crash.py" --pop3d "$POP3D" --smtpd "$SMTPD" --format "$fmt" \
			--work "$BATS_TEST_TMPDIR/crash-$fmt" >"$BATS_TEST_TMPDIR/crash-$fmt.out" 2>&1 &
		pids+=($!)
	done
	for fmt in mbox maildir mh numbered; do
		wait "${pids[0]}" || fail "$fmt: $(grep -E 'VIOLATION|Error|error' "$BATS_TEST_TMPDIR/crash-$fmt.out" | head -5)"
		pids=("${pids[@]:1}")
		run tail -1 "$BATS_TEST_TMPDIR/crash-$fmt.out"
		assert_output --regexp '^[0-9]+ kill points, [1-9][0-9]* killed before the \+OK, 0 violations$'
	done
}

@test "mbox changed by another program during the session: QUIT deletes nothing and says so" {
	start_smtp
	start_pop3
	for i in 1 2; do sample "$BATS_TEST_TMPDIR/m$i" "$i"; send "$BATS_TEST_TMPDIR/m$i"; done
	run python3 -c "
import poplib, os
p = poplib.POP3('127.0.0.1', $POP)
p.user('alice'); p.pass_('alice secret')
p.dele(1)
# a mail reader rewrites the mailbox meanwhile: message 2 only, renamed over it
path = '$SPOOL/alice'
data = open(path, 'rb').read()
second = data[data.index(b'\nFrom ', 1) + 1:]
open(path + '.new', 'wb').write(second)
os.rename(path + '.new', path)
try: print(p.quit().decode())
except poplib.error_proto as e: print(e.args[0].decode())"
	assert_line '-ERR [SYS/TEMP] Mailbox changed meanwhile: nothing deleted'
	run grep -c '^Subject: sample 2' "$SPOOL/alice"
	assert_output 1
	grep -q 'was changed by another program since it was listed: nothing deleted' "$LOG"
}

@test "150 messages (more than one batch from the monitor): STAT, LIST, UIDL and RETR see them all" {
	{
		echo "HELO t"
		for i in $(seq 1 150); do
			printf 'MAIL FROM:<s@remote.example>\nRCPT TO:<alice@example.org>\nDATA\nSubject: n%s\n\nbody %s\n.\n' "$i" "$i"
		done
		echo QUIT
	} | smtpd_stdin >/dev/null
	start_pop3
	mkdir "$BATS_TEST_TMPDIR/got"
	run $CLIENT "$POP" alice 'alice secret' --out "$BATS_TEST_TMPDIR/got"
	assert_success
	assert_line --regexp '^stat 150 [0-9]+$'
	assert_line 'sizes ok'
	[ "$(grep -c '^uidl ' <<<"$output")" -eq 150 ]
	grep -q '^Subject: n150' "$BATS_TEST_TMPDIR/got/150"
}

@test "numbered: at QUIT a retrieved message's N.status says \\Seen, a deleted one goes with its status; a drop changes nothing" {
	FORMAT=numbered
	start_smtp
	start_pop3
	for i in 1 2 3; do sample "$BATS_TEST_TMPDIR/m$i" "$i"; send "$BATS_TEST_TMPDIR/m$i"; done
	run python3 -c "
import poplib
p = poplib.POP3('127.0.0.1', $POP)
p.user('alice'); p.pass_('alice secret')
p.retr(1); p.retr(3)
p.sock.close()"
	for n in 1 2 3; do assert_equal "$(cat "$SPOOL/alice/$n.status")" '\Recent'; done
	run python3 -c "
import poplib
p = poplib.POP3('127.0.0.1', $POP)
p.user('alice'); p.pass_('alice secret')
p.retr(1); p.dele(2)
print(p.quit().decode())"
	assert_line --partial 'signing off (2 messages left)'
	assert_equal "$(cat "$SPOOL/alice/1.status")" '\Seen'
	assert_equal "$(cat "$SPOOL/alice/3.status")" '\Recent'
	[ ! -e "$SPOOL/alice/2" ] && [ ! -e "$SPOOL/alice/2.status" ]
	run ls -A "$SPOOL/alice"
	refute_output --partial ',mailslot'
}

@test "xinetd: the shipped examples/xinetd.d/mailslot-pop3, moved to a test port, serves poplib" {
	command -v xinetd >/dev/null || fail "xinetd missing (tests/install-deps.sh test installs it)"
	start_smtp
	sample "$BATS_TEST_TMPDIR/m1" 1
	send "$BATS_TEST_TMPDIR/m1"
	local port
	port=$(free_port)
	sed -e 's/^service pop3$/service mailslot-pop3-test/' \
		-e "s|^\(\s*server\s*=\).*|\1 $POP3D|" \
		-e "s|^\(\s*server_args\s*=\).*|\1 -c $BATS_TEST_DIRNAME/../examples/mailslot.conf $(pop3d_args)|" \
		-e "s|^{|{\n\ttype = UNLISTED\n\tport = $port\n\tbind = ::ffff:127.0.0.1|" \
		"$BATS_TEST_DIRNAME/../examples/xinetd.d/mailslot-pop3" >"$BATS_TEST_TMPDIR/xinetd.conf"
	xinetd -dontfork -f "$BATS_TEST_TMPDIR/xinetd.conf" -pidfile "$BATS_TEST_TMPDIR/xinetd.pid" 2>/dev/null &
	echo $! >>"$BATS_TEST_TMPDIR/pids"
	for _ in $(seq 1 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null && break
		sleep 0.05
	done
	run $CLIENT "$port" alice 'alice secret'
	assert_success
	assert_line --regexp '^stat 1 [0-9]+$'
}

@test "as root: a system account's mbox is read and rewritten as its owner, by a monitor running as --user" {
	[ "$(id -u)" = 0 ] || skip "needs root (privileges.bats covers the rest)"
	# a directory the mail account can reach (the test's own is 0700 above)
	local top
	top=$(mktemp -d /tmp/mailslot-pop3-root.XXXXXX)
	echo "$top" >"$BATS_TEST_TMPDIR/rootdir"
	chmod 755 "$top"
	local spool=$top/spool q=$top/queue
	mkdir -p "$spool" "$q"
	chown root:mail "$spool" && chmod 2775 "$spool"
	chown mail:mail "$q"
	printf 'nobody:%s\n' "$(openssl passwd -6 pw)" >"$BATS_TEST_TMPDIR/rootpasswd"
	chmod 600 "$BATS_TEST_TMPDIR/rootpasswd"
	for i in 1 2; do
		printf 'HELO x\nMAIL FROM:<a@b.example>\nRCPT TO:<nobody@localhost>\nDATA\nSubject: root %s\n\nhi\n.\nQUIT\n' "$i" |
			"$SMTPD" --spool "$spool" --queue "$q" --domain localhost --hostname mx.test --log stderr >/dev/null 2>>"$LOG"
	done
	run sh -c "printf 'USER nobody\nPASS pw\nSTAT\nDELE 1\nQUIT\n' | '$POP3D' --spool '$spool' \
		--passwd '$BATS_TEST_TMPDIR/rootpasswd' --hostname pop.test --log stderr 2>/dev/null | tr -d '\r'"
	assert_line --regexp '^\+OK 2 [0-9]+$'
	assert_line '+OK pop.test POP3 server signing off (1 message left)'
	run stat -c '%U:%G %a' "$spool/nobody"
	assert_output 'nobody:mail 600'
	run grep -c '^Subject: root 2' "$spool/nobody"
	assert_output 1
	[ ! -e "$spool/nobody.lock" ]
}

@test "a bounce mailslot-relay delivered, in every format: RETR gives the octets it stored" {
	load helpers/relay_helper
	relay_require
	relay_setup
	relay_dns
	local f
	for f in mbox maildir mh numbered; do
		FORMAT=$f
		SPOOL=$BATS_TEST_TMPDIR/spool-$f
		mkdir -p "$SPOOL"
		relay_queue alice@example.org "someone-$f@missing.test" < <(relay_msg "bounced-$f")
		run relay --format "$f"
		assert_success
		assert_output --partial "status=bounced"
		python3 "$BATS_TEST_DIRNAME/helpers/stored_message.py" "$f" "$SPOOL" alice "$BATS_TEST_TMPDIR/stored-$f" ||
			fail "$f: the relay's delivery is not one message"
		start_pop3
		mkdir "$BATS_TEST_TMPDIR/got-$f"
		run $CLIENT "$POP" alice 'alice secret' --out "$BATS_TEST_TMPDIR/got-$f"
		assert_success
		assert_line --regexp '^stat 1 [0-9]+$'
		assert_line 'sizes ok'
		cmp "$BATS_TEST_TMPDIR/got-$f/1" "$BATS_TEST_TMPDIR/stored-$f" || fail "$f: RETR differs from the stored bounce"
		grep -q "bounced-$f" "$BATS_TEST_TMPDIR/got-$f/1" || fail "$f: not the bounce of bounced-$f"
	done
}

# --- the TLS key is the monitor's (pop3mon.h, SIGN) ------------------------

# tls_handshakes NAME SIGALGS...: mailslot-pop3d with $PKI/NAME.pem and
# NAME.key; poplib logs in after stls() and over POP3_SSL (--pop3s), and
# openssl s_client does STLS with TLS 1.3 and with TLS 1.2 and each of
# SIGALGS, checking the certificate each time.
tls_handshakes() {
	local name=$1 sigalgs
	shift
	start_pop3 --tls-cert "$PKI/$name.pem" --tls-key "$PKI/$name.key"
	run $CLIENT "$POP" alice 'alice secret' --stls "$PKI/ca.pem"
	assert_success
	assert_line 'stat 0 0'
	for sigalgs in "" "$@"; do
		local version=3 opts=-tls1_3
		[ -z "$sigalgs" ] || version=2 opts="-tls1_2 -sigalgs $sigalgs"
		run sh -c "printf 'USER alice\nPASS alice secret\nSTAT\nQUIT\n' | openssl s_client -crlf -brief -ign_eof \
			-starttls pop3 -CAfile '$PKI/ca.pem' -verify_return_error -connect 127.0.0.1:$POP $opts 2>&1"
		assert_success
		assert_line "Protocol version: TLSv1.$version"
		[ -z "$sigalgs" ] || assert_line "Signature type: ${sigalgs%+*}"
		assert_line --partial '+OK 0 0'
	done
	stop_listeners
	start_pop3 --tls-cert "$PKI/$name.pem" --tls-key "$PKI/$name.key" --pop3s
	run $CLIENT "$POP" alice 'alice secret' --ssl "$PKI/ca.pem"
	assert_success
	assert_line 'stat 0 0'
	run sh -c "echo QUIT | openssl s_client -crlf -brief -ign_eof -CAfile '$PKI/ca.pem' -verify_return_error \
		-connect 127.0.0.1:$POP -tls1_2 2>&1"
	assert_success
	assert_line --partial '+OK pop.test POP3 mailslot ready'
	run grep -e 'cannot sign' -e 'malformed' -e 'stays in the session' "$LOG"
	assert_failure
}

@test "an EC key, signed with by the monitor: STLS and --pop3s, TLS 1.3 and 1.2 (poplib, openssl s_client)" {
	tls_handshakes pop ECDSA+SHA256
}

@test "an RSA key, signed with by the monitor: TLS 1.3 (RSA-PSS), TLS 1.2 (PKCS#1 and PSS), --pop3s" {
	tls_handshakes pop-rsa RSA+SHA256 RSA-PSS+SHA256
}

@test "an Ed25519 key, which the monitor cannot sign with: kept in the session's context, with a warning" {
	start_pop3 --tls-cert "$PKI/pop-ed.pem" --tls-key "$PKI/pop-ed.key"
	run $CLIENT "$POP" alice 'alice secret' --stls "$PKI/ca.pem"
	assert_success
	assert_line 'stat 0 0'
	stop_listeners
	start_pop3 --tls-cert "$PKI/pop-ed.pem" --tls-key "$PKI/pop-ed.key" --pop3s
	run $CLIENT "$POP" alice 'alice secret' --ssl "$PKI/ca.pem"
	assert_success
	grep -q "TLS key $PKI/pop-ed.key stays in the session process: the monitor signs with EC and RSA keys only" \
		"$LOG" || fail "no warning: $(cat "$LOG")"
	run grep -e 'cannot sign' -e 'malformed' "$LOG"
	assert_failure
}

@test "a key that does not match the certificate: one line, exit 78, before any POP3" {
	run "$POP3D" $(pop3d_args) --tls-cert "$PKI/pop.pem" --tls-key "$PKI/pop-rsa.key" </dev/null
	assert_equal "$status" 78
	assert_output "mailslot-pop3d: TLS key $PKI/pop-rsa.key does not match the certificate $PKI/pop.pem"
}

# hold MODE: mailslot-pop3d with the EC pair, and a poplib client that
# stops at each step until told to go on (step), saying where it is:
# "greeted"; then MODE stls: "tls TLSv1.3" after stls(), MODE login:
# "login" after USER and PASS in clear (loopback); then "quit", or
# "closed ERROR".  On coprocess HOLD; sets MONITOR and SESSION, the two
# processes of its connection, once it is greeted.
hold() {
	cat >"$BATS_TEST_TMPDIR/hold.py" <<'PY'
import poplib, ssl, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=20)
print("greeted", flush=True)
sys.stdin.readline()
if sys.argv[2] == "stls":
    p.stls(context=ssl._create_unverified_context())
    print("tls", p.sock.version(), flush=True)
else:
    p.user("alice")
    p.pass_("alice secret")
    print("login", flush=True)
sys.stdin.readline()
try:
    p.quit()
    print("quit", flush=True)
except (OSError, poplib.error_proto) as e:
    print("closed", type(e).__name__, flush=True)
PY
	start_pop3 "${TLS[@]}"
	coproc HOLD { python3 -u "$BATS_TEST_TMPDIR/hold.py" "$POP" "$1"; }
	step greeted
	read -r MONITOR SESSION < <(held_pids)
}

# step EXPECTED: tell the held client to go on, and check what it says
step() {
	local line
	[ "$1" = greeted ] || echo go >&"${HOLD[1]}"
	read -r -t 20 line <&"${HOLD[0]}" || true
	[ "$line" = "$1" ] || fail "client: '$line', not '$1'"
}

# held_pids: "MONITOR SESSION" of the held connection (the monitor is the
# listener's child, the session the monitor's), once start_listener's
# probe connection has ended
held_pids() {
	local -a kids
	for _ in $(seq 1 100); do
		read -r -a kids <"/proc/$LISTENER_PID/task/$LISTENER_PID/children" || true
		[ ${#kids[@]} -eq 1 ] && break
		sleep 0.02
	done
	echo "${kids[0]} $(cat "/proc/${kids[0]}/task/${kids[0]}/children")"
}

# key_needles NAME: the private scalar of $PKI/NAME.key in hex as DER
# holds it (big-endian), as a parsed key holds it (little-endian machine
# words: reversed), and 48 characters of the key file's text
key_needles() {
	local be
	be=$(openssl pkey -in "$PKI/$1.key" -text -noout | sed -n '/^priv:/,/^pub:/p' | sed '1d;$d' | tr -d ' :\n')
	[ ${#be} -eq 64 ] || fail "no scalar read from the key: '$be'"
	echo "$be"
	echo "$be" | fold -w2 | tac | tr -d '\n'
	echo
	sed -n 2p "$PKI/$1.key" | cut -c1-48 | tr -d '\n' | od -An -tx1 | tr -d ' \n'
	echo
}

# mem PID: which of the key's needles PID holds, "found"/"absent" x3
mem() {
	python3 "$BATS_TEST_DIRNAME/helpers/mem_grep.py" "$1" "${NEEDLES[@]}" | cut -d' ' -f1 | tr '\n' ' '
}

# hold_key MODE: hold MODE, and check that the client's greeting found
# the key parsed in the monitor (the search finds it where it is: a
# search that finds nothing anywhere proves nothing), never in the session
hold_key() {
	grep -q -a -m1 AddressSanitizer "$POP3D" && skip "a sanitizer build: its allocator reserves terabytes, too much to read"
	mapfile -t NEEDLES < <(key_needles pop)
	hold "$1"
	assert_equal "$(mem "$MONITOR")" "absent found absent "
	assert_equal "$(mem "$SESSION")" "absent absent absent "
}

@test "the key is the monitor's: parsed while the client reads the greeting, gone after the signature; never in the session" {
	hold_key stls
	step "tls TLSv1.3"
	# one signature made, the monitor let the key go; the session that
	# speaks TLS never had it
	assert_equal "$(mem "$MONITOR")" "absent absent absent "
	assert_equal "$(mem "$SESSION")" "absent absent absent "
	step quit
	run grep -e 'cannot sign' -e 'malformed' "$LOG"
	assert_failure
}

@test "the key is dropped at a login: no handshake comes after one" {
	hold_key login
	step login
	assert_equal "$(mem "$MONITOR")" "absent absent absent "
	assert_equal "$(mem "$SESSION")" "absent absent absent "
	step quit
}

# taken_over: the held session, taken over (gdb), asks the monitor for a
# signature as a handshake would; the monitor kills it
taken_over() {
	command -v gdb >/dev/null || skip "gdb is not installed (tests/install-deps.sh test)"
	run gdb -p "$SESSION" -batch -ex \
		"call (int)pop3_sign(-1, (unsigned char *)'pop3.c'::session.tls, 32, (unsigned char *)0, (unsigned long *)0)"
	assert_output --partial 'SIGKILL'
	step "closed error_proto"
	grep -q "session process $SESSION sent a malformed request: connection ended" "$LOG" ||
		fail "no log line: $(cat "$LOG")"
	grep -q "session process $SESSION killed by signal 9" "$LOG"
}

@test "a session that asks for a second signature is killed, and that is logged" {
	hold stls
	step "tls TLSv1.3"
	taken_over
	grep -q "session asked for a TLS signature 2 times (at most 1): peer=127.0.0.1" "$LOG"
}

@test "a session that asks for a signature after its login is killed" {
	hold login
	step login
	taken_over
	run grep -c 'session asked for a TLS signature' "$LOG"
	assert_output 0
}
