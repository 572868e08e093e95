#!/usr/bin/env bats
# auth.bats: AUTH PLAIN and LOGIN (RFC 4954, RFC 4616) with --passwd, and
# the RFC 6409 policy of --submission, driven by swaks, Python's smtplib
# and exact scripts; the password is checked by the monitor, never by the
# session, and never appears in a log.  TLS comes in tls.bats.

load test_helper

setup() {
	setup_spool
	PASSWD=$BATS_TEST_TMPDIR/passwd
	# alice by sha512-crypt, bob by yescrypt when mkpasswd has it; carol locked
	printf 'alice:%s:1000:1000::/home/alice:/bin/sh\n' "$(openssl passwd -6 'alice secret')" >"$PASSWD"
	printf 'carol:!%s\n' "$(openssl passwd -6 'carol secret')" >>"$PASSWD"
	chmod 600 "$PASSWD"
	printf 'sales: alice\n' >>"$MS/aliases"
}

b64() { printf '%b' "$1" | base64 -w0; }

# raw SCRIPT...: the lines of an exact dialogue on the listener.
raw() { printf '%s\n' "$@" | chat; }

@test "EHLO offers AUTH PLAIN LOGIN on loopback with --passwd, and not without it" {
	start_listener --passwd "$PASSWD"
	run raw "EHLO client.test" QUIT
	assert_line "250 AUTH PLAIN LOGIN"
	stop_listeners
	start_listener
	run raw "EHLO client.test" "AUTH PLAIN $(b64 '\0alice\0alice secret')" QUIT
	refute_line --partial AUTH
	assert_line "502 5.5.1 Error: authentication not enabled"
}

@test "swaks --auth PLAIN and --auth LOGIN deliver; the trace field says ESMTPA" {
	start_listener --passwd "$PASSWD" --relay no
	for mech in PLAIN LOGIN; do
		run swaks --server "127.0.0.1:$PORT" --auth "$mech" --auth-user alice --auth-password 'alice secret' \
			--from alice@example.org --to someone@remote.example --helo swaks.test \
			--header "Subject: auth $mech" --body "token-$mech"
		assert_success
		assert_output --partial '235 2.7.0 Authentication successful'
	done
	# --relay no: only the authenticated client could relay
	run grep -l 'with ESMTPA id' "$QUEUE"/msg/*
	assert_success
	[ "$(grep -l 'with ESMTPA id' "$QUEUE"/msg/* | wc -l)" -eq 2 ]
}

@test "smtplib login() and the initial-response forms: '=' is empty, '*' cancels" {
	start_listener --passwd "$PASSWD"
	run python3 - "$PORT" <<'EOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
print(s.login("alice", "alice secret"))
s.quit()
EOF
	assert_output --partial "(235, b'2.7.0 Authentication successful')"
	run raw "EHLO c.test" "AUTH PLAIN =" "AUTH PLAIN" "*" "AUTH LOGIN" "*" QUIT
	assert_line --index 7 "501 5.5.2 Bad PLAIN response: a PLAIN response is authzid NUL authcid NUL passwd"
	assert_line --index 8 "334 "
	assert_line --index 9 "501 5.7.0 Authentication aborted"
	assert_line --index 10 "334 VXNlcm5hbWU6"
	assert_line --index 11 "501 5.7.0 Authentication aborted"
}

@test "bad base64, an unknown mechanism, AUTH twice, AUTH in a transaction, another's authzid" {
	start_listener --passwd "$PASSWD"
	run raw "EHLO c.test" "AUTH PLAIN not*base64" "AUTH PLAIN QUJD=" "AUTH CRAM-MD5" "AUTH" \
		"AUTH PLAIN $(b64 'bob\0alice\0alice secret')" \
		"AUTH PLAIN $(b64 '\0alice\0alice secret')" "AUTH LOGIN" \
		"MAIL FROM:<alice@example.org>" "RSET" QUIT
	assert_line "501 5.5.2 Cannot decode response"
	[ "$(grep -c '^501 5.5.2 Cannot decode response$' <<<"$output")" -eq 2 ]
	assert_line "504 5.5.4 Unrecognized authentication type"
	assert_line "501 5.5.4 Syntax: AUTH mechanism [initial-response]"
	assert_line "501 5.5.2 Bad PLAIN response: acting for another user (authzid) is not allowed"
	assert_line "235 2.7.0 Authentication successful"
	assert_line "503 5.5.1 Error: already authenticated"
	run raw "EHLO c.test" "MAIL FROM:<alice@example.org>" "AUTH PLAIN $(b64 '\0alice\0alice secret')" QUIT
	assert_line "503 5.5.1 Error: MAIL transaction in progress"
	run raw "HELO c.test" "AUTH PLAIN $(b64 '\0alice\0alice secret')" QUIT
	assert_line "503 5.5.1 Error: send EHLO first"
}

@test "a wrong password is 535 5.7.8 after a pause, logged for fail2ban; the third failure ends the connection" {
	start_listener --passwd "$PASSWD" --error-delay 300
	local t0=$EPOCHREALTIME
	run raw "EHLO c.test" "AUTH PLAIN $(b64 '\0alice\0wrong')" "AUTH PLAIN $(b64 '\0nosuchuser\0x')" \
		"AUTH PLAIN $(b64 '\0carol\0carol secret')" "NOOP"
	local took
	took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
	[ "$(grep -c '^535 5.7.8 Error: authentication failed$' <<<"$output")" -eq 2 ]
	assert_line "421 4.7.0 mx.test Error: too many authentication failures"
	refute_line --partial "250 2.0.0 Ok"	# NOOP never answered: closed
	# 0.3 + 0.6 + 0.9 s of pauses
	awk -v t="$took" 'BEGIN { exit !(t >= 1.8) }' || fail "three failures took only $took s"
	run grep -c 'authentication failed: user=alice peer=127.0.0.1$' "$LOG"
	assert_output 1
	run grep -c 'authentication failed: user=nosuchuser peer=127.0.0.1$' "$LOG"
	assert_output 1
	run grep -c 'authentication failed: user=carol peer=127.0.0.1$' "$LOG"
	assert_output 1
}

@test "no password and no base64 of one in the log, even with --verbose" {
	start_listener --passwd "$PASSWD" --verbose
	local plain login_user login_pass
	plain=$(b64 '\0alice\0alice secret')
	login_user=$(b64 alice)
	login_pass=$(b64 'alice secret')
	run raw "EHLO c.test" "AUTH PLAIN $plain" QUIT
	assert_line "235 2.7.0 Authentication successful"
	run raw "EHLO c.test" "AUTH LOGIN $login_user" "$login_pass" QUIT
	assert_line "235 2.7.0 Authentication successful"
	run grep -c 'authenticated: user=alice peer=127.0.0.1' "$LOG"
	assert_output 2
	run grep -F -e "$plain" -e "$login_pass" -e 'alice secret' "$LOG"
	assert_failure
}

@test "AUTH on a network connection without TLS: 538 5.7.11, and EHLO does not offer it" {
	run sh -c "printf 'EHLO c.test\r\nAUTH PLAIN %s\r\nQUIT\r\n' '$(b64 '\0alice\0alice secret')' |
		TCPREMOTEIP=192.0.2.9 TCPLOCALIP=192.0.2.1 '$SMTPD' $(smtpd_args) --passwd '$PASSWD'"
	refute_line --partial "AUTH PLAIN LOGIN"
	assert_line --partial "538 5.7.11 Encryption required for requested authentication mechanism"
}

@test "--submission: MAIL before AUTH is 530 5.7.0; after it, only the user's own senders (aliases too)" {
	start_listener --passwd "$PASSWD" --submission
	run raw "EHLO c.test" "MAIL FROM:<alice@example.org>" QUIT
	assert_line "530 5.7.0 Authentication required"
	local auth
	auth="AUTH PLAIN $(b64 '\0alice\0alice secret')"
	run raw "EHLO c.test" "$auth" "MAIL FROM:<bob@example.org>" "MAIL FROM:<alice@remote.example>" \
		"MAIL FROM:<>" "MAIL FROM:<sales@example.org>" "RSET" "MAIL FROM:<ALICE@localhost>" QUIT
	assert_line "553 5.7.1 <bob@example.org>: Sender address rejected: not owned by user alice"
	assert_line "553 5.7.1 <alice@remote.example>: Sender address rejected: not owned by user alice"
	assert_line "553 5.7.1 <>: Sender address rejected: not owned by user alice"
	[ "$(grep -c '^250 2.1.0 Ok$' <<<"$output")" -eq 2 ]
	run swaks --server "127.0.0.1:$PORT" --auth PLAIN --auth-user alice --auth-password 'alice secret' \
		--from sales@example.org --to someone@remote.example --helo swaks.test --body submission-token
	assert_success
	run grep -l submission-token "$QUEUE"/msg/*
	assert_success
}

@test "--submission without --passwd is a usage error; an unreadable --passwd file a configuration error" {
	run "$SMTPD" $(smtpd_args) --submission </dev/null
	assert_failure 64
	assert_output 'mailslot-smtpd: --submission needs --passwd: without AUTH no client could send'
	run "$SMTPD" $(smtpd_args) --passwd "$BATS_TEST_TMPDIR/missing" </dev/null
	assert_failure 78
	assert_output --partial "cannot read the password file $BATS_TEST_TMPDIR/missing (--passwd): No such file"
}

@test "examples/fail2ban: fail2ban-regex finds the failed logins in real log output" {
	start_listener --passwd "$PASSWD"
	run raw "EHLO c.test" "AUTH PLAIN $(b64 '\0alice\0wrong')" "AUTH PLAIN $(b64 '\0alice\0alice secret')" QUIT
	assert_line "235 2.7.0 Authentication successful"
	assert_fail2ban_matches 1 "$LOG"
}

@test "--submission: a message without Date: or Message-ID: gets both (RFC 6409 8), one with them keeps its own" {
	start_listener --passwd "$PASSWD" --submission
	local auth
	auth="AUTH PLAIN $(b64 '\0alice\0alice secret')"
	run raw "EHLO c.test" "$auth" "MAIL FROM:<alice@example.org>" "RCPT TO:<bob@example.org>" "DATA" \
		"<<DATA" "Subject: bare" "" "no date, no id" "." ">>" \
		"MAIL FROM:<alice@example.org>" "RCPT TO:<bob@example.org>" "DATA" \
		"<<DATA" "Date: Mon, 30 Nov 2026 10:00:00 +0000" "Message-ID: <own@client.test>" "Subject: full" "" \
		"has both" "." ">>" QUIT
	[ "$(grep -c '^250 2.0.0 Ok' <<<"$output")" -eq 2 ]
	run python3 - "$SPOOL/bob" <<'PY'
import mailbox, sys
for m in mailbox.mbox(sys.argv[1], create=False):
    print(m["Subject"], "|", m["Date"], "|", m["Message-ID"], "|", m.get_payload().strip())
PY
	assert_line --index 0 --regexp '^bare \| [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} 20[0-9]{2} [0-9:]{8} [-+][0-9]{4} \| <[0-9A-F]+@mx\.test> \| no date, no id$'
	assert_line --index 1 'full | Mon, 30 Nov 2026 10:00:00 +0000 | <own@client.test> | has both'
	# the added fields sit below the trace field, above the client's header
	run sh -c "grep -n -e '^Received:' -e '^Date:' -e '^Message-ID:' -e '^Subject: bare' '$SPOOL/bob' | head -4 | cut -d: -f2"
	assert_output $'Received\nDate\nMessage-ID\nSubject'
}
