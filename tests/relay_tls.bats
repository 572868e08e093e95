#!/usr/bin/env bats
# relay_tls.bats: mailslot-relay's TLS and AUTH against aiosmtpd
# (helpers/relay_sink.py) with certificates from a test CA made here
# (helpers/tls_helper.bash).  MX delivery is opportunistic (STARTTLS when
# offered, any certificate, clear text otherwise or after a failed
# handshake); --smarthost may require STARTTLS or TLS from the first octet,
# with the certificate verified against --smarthost-ca and AUTH from a
# 0600 file.  Every MX test has its own dnsmasq; smarthost tests use an
# address literal or a name from that dnsmasq, so the machine's resolver
# is never asked.  Assertions: what the receiver recorded (the TLS of
# each session and message, each AUTH attempt), the queue, the exit
# status, and the relay's log lines.

load test_helper
load helpers/relay_helper
load helpers/tls_helper
load helpers/postfix_instance

setup() {
	[ -x "$RELAY" ] || fail "$RELAY is not built: run make first"
	relay_require
	command -v openssl >/dev/null || fail "openssl is not installed"
	relay_setup
	# tests that start no dnsmasq still name one: a free port where nothing
	# answers stands in (a smarthost given by address needs no DNS)
	DNSPORT=$(relay_free_udp_port)
	PKI=$BATS_TEST_TMPDIR/pki
	tls_ca "$PKI"
	tls_cert "$PKI" mx "DNS:mx1.remote.test"
	tls_cert "$PKI" smart "DNS:smtp.relay.test,IP:127.0.0.6"
}

teardown() {
	if [ -n "${PF_DIR:-}" ]; then
		pf_stop "$PF_DIR"
		rm -rf "$PF_DIR"
	fi
	relay_teardown
}

queue_ids() {
	ls -1 "$QUEUE/env" 2>/dev/null
}

# The credentials file the relay reads, mode 0600 unless told.
creds() {
	printf '# the smarthost account\n%s\n' "$1" >"$BATS_TEST_TMPDIR/creds"
	chmod "${2:-600}" "$BATS_TEST_TMPDIR/creds"
}

# A smarthost on 127.0.0.6:$RPORT: aiosmtpd with the options given.
smarthost() {
	relay_py_sink 127.0.0.6 smart "$@"
}

# smart_relay MODE [options]: the relay through the smarthost on
# 127.0.0.6:$RPORT with --smarthost-tls MODE, trusting the test CA.
smart_relay() {
	local mode=$1
	shift
	relay --smarthost "127.0.0.6:$RPORT" --smarthost-tls "$mode" --smarthost-ca "$PKI/ca.pem" "$@"
}

# Nothing reached the receiver NAME in clear: no message, and every
# session it saw past EHLO was inside TLS or ended before MAIL.
nothing_delivered() {
	run ls "$BATS_TEST_TMPDIR/$1"
	refute_output --partial .eml
}

@test "MX offering STARTTLS: the relay uses it whatever the certificate's name, and logs protocol and cipher" {
	relay_dns
	# a certificate for another name: opportunistic TLS does not check it
	tls_cert "$PKI" other "DNS:elsewhere.test"
	relay_py_sink 127.0.0.2 mx1 --starttls "$PKI/other.pem" "$PKI/other.key"
	relay_queue alice@example.org bob@remote.test < <(relay_msg opportunistic)
	run relay
	assert_success
	assert_output --regexp "Unverified TLS connection to mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT: TLSv1\.3 TLS_[A-Z0-9_]+"
	assert_output --regexp "to=<bob@remote\.test> relay=mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT status=sent"
	run cat "$BATS_TEST_TMPDIR/mx1/1.tls"
	assert_output --regexp '^TLSv1\.3 TLS_'
	# one EHLO in clear, one inside TLS (RFC 3207 4.2)
	run cat "$BATS_TEST_TMPDIR/mx1/sessions"
	assert_line --index 0 --regexp 'tls=none$'
	assert_line --index 1 --regexp 'tls=TLSv1\.3/'
	run queue_ids
	assert_output ''
}

@test "MX that is mailslot-smtpd with --tls-cert: STARTTLS both ways, its Received: field says ESMTPS" {
	relay_dns
	relay_remote 127.0.0.2 mx1 --tls-cert "$PKI/mx.pem" --tls-key "$PKI/mx.key"
	relay_queue alice@example.org bob@remote.test < <(relay_msg ourselves)
	run relay
	assert_success
	assert_output --regexp "Unverified TLS connection to mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT: TLSv1\.3 "
	assert_output --partial "status=sent"
	run relay_remote_mail mx1 bob
	assert_equal "${#lines[@]}" 1
	run grep -A2 -m1 '^Received: from sender.test' "${lines[0]}"
	assert_output --regexp 'with ESMTPS'
	assert_output --partial 'TLSv1.3'
}

@test "MX that is Postfix with smtpd_tls_security_level=may: STARTTLS used, logged by both, delivered" {
	[ "$(id -u)" = 0 ] || skip "a Postfix instance needs root"
	relay_dns
	# Postfix's own account must reach it: bats' directory is root's alone
	PF_DIR=$(mktemp -d /tmp/mailslot-postfix.XXXXXX)
	chmod 755 "$PF_DIR"
	local pf=$PF_DIR
	pf_init "$pf" remote.test
	pf_conf "$pf" "smtpd_tls_cert_file = $PKI/mx.pem" "smtpd_tls_key_file = $PKI/mx.key" \
		'smtpd_tls_security_level = may' 'smtpd_tls_loglevel = 1'
	pf_listen "$pf" 127.0.0.2 "$RPORT"
	pf_start "$pf"
	relay_queue alice@example.org bob@remote.test < <(relay_msg to-postfix-token)
	run relay
	assert_success
	assert_output --regexp "Unverified TLS connection to mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT: TLSv1\.3 TLS_"
	assert_output --regexp "to=<bob@remote\.test> relay=mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT status=sent"
	run queue_ids
	assert_output ''
	# Postfix saw TLS, accepted the message and delivered it
	for _ in $(seq 100); do
		grep -q 'to-postfix-token' "$pf/mail/inbox" 2>/dev/null && break
		sleep 0.1
	done
	run grep -c 'Anonymous TLS connection established from .*: TLSv1\.3' "$pf/maillog"
	assert_output 1
	run grep -c '^Subject: to-postfix-token' "$pf/mail/inbox"
	assert_output 1
}

@test "MX without STARTTLS: plain delivery, no TLS line" {
	relay_dns
	relay_py_sink 127.0.0.2 mx1
	relay_queue alice@example.org bob@remote.test < <(relay_msg plain)
	run relay
	assert_success
	assert_output --partial "status=sent"
	refute_output --partial "TLS connection"
	run cat "$BATS_TEST_TMPDIR/mx1/1.tls"
	assert_output none
}

@test "MX whose TLS fails (no suite in common): tried again in clear at once, delivered, both logged" {
	relay_dns
	# TLS 1.2 with RSA key exchange only: nothing forward-secret, so the
	# relay's profile has no suite in common with it
	tls_cert_rsa "$PKI" weak "DNS:mx1.remote.test"
	relay_py_sink 127.0.0.2 mx1 --starttls "$PKI/weak.pem" "$PKI/weak.key" --weak-tls
	relay_queue alice@example.org bob@remote.test < <(relay_msg fallback)
	run relay
	assert_success
	assert_output --regexp "mx1\.remote\.test\[127\.0\.0\.2\]:$RPORT: TLS handshake failed: "
	assert_output --partial "mx1.remote.test[127.0.0.2]:$RPORT: trying again without TLS"
	assert_output --partial "status=sent"
	run cat "$BATS_TEST_TMPDIR/mx1/1.tls"
	assert_output none
	run queue_ids
	assert_output ''
}

@test "smarthost with STARTTLS required, the test CA trusted, AUTH PLAIN: delivered inside TLS, authenticated" {
	smarthost --starttls "$PKI/smart.pem" "$PKI/smart.key" --require-tls --auth alice:'s3cr:et pw'
	creds 'alice:s3cr:et pw'
	relay_queue alice@example.org bob@remote.test < <(relay_msg smarthost)
	run smart_relay starttls --smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_success
	assert_output --regexp "Verified TLS connection to \[127\.0\.0\.6\]\[127\.0\.0\.6\]:$RPORT: TLSv1\.3 [A-Z0-9_]+, authenticated"
	assert_output --partial "status=sent"
	run cat "$BATS_TEST_TMPDIR/smart/auth"
	assert_output 'PLAIN alice ok'
	run cat "$BATS_TEST_TMPDIR/smart/1.auth"
	assert_output alice
	run cat "$BATS_TEST_TMPDIR/smart/1.tls"
	assert_output --regexp '^TLSv1\.3 '
	run queue_ids
	assert_output ''
}

@test "smarthost by name: SNI and the certificate's DNS name, AUTH LOGIN when PLAIN is not offered" {
	relay_dns --host-record=smtp.relay.test,127.0.0.6
	smarthost --starttls "$PKI/smart.pem" "$PKI/smart.key" --auth bob:pw --no-plain
	creds bob:pw
	relay_queue alice@example.org bob@remote.test < <(relay_msg byname)
	run relay --smarthost "smtp.relay.test:$RPORT" --smarthost-tls starttls --smarthost-ca "$PKI/ca.pem" \
		--smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_success
	assert_output --regexp "Verified TLS connection to smtp\.relay\.test\[127\.0\.0\.6\]:$RPORT: .*, authenticated"
	run cat "$BATS_TEST_TMPDIR/smart/auth"
	assert_output 'LOGIN bob ok'
	run cat "$BATS_TEST_TMPDIR/smart/1.auth"
	assert_output bob
}

@test "smarthost whose certificate does not chain to --smarthost-ca: deferred, still queued, nothing sent in clear" {
	tls_ca "$PKI" otherca
	smarthost --starttls "$PKI/smart.pem" "$PKI/smart.key"
	relay_queue alice@example.org bob@remote.test < <(relay_msg wrongca)
	run relay --smarthost "127.0.0.6:$RPORT" --smarthost-tls starttls --smarthost-ca "$PKI/otherca.pem"
	assert_success
	assert_output --partial "certificate verify failed"
	assert_output --regexp "status=deferred \(.*certificate verify failed"
	refute_output --partial "trying again without TLS"
	run queue_ids
	assert_output "$QID"
	run relay_list_rcpts "$QID"
	assert_output --partial 'attempts=1'
	nothing_delivered smart
	# the only EHLO was the one before STARTTLS
	run cat "$BATS_TEST_TMPDIR/smart/sessions"
	assert_equal "${#lines[@]}" 1
}

@test "smarthost whose certificate names another host: deferred (host name checked), nothing sent" {
	tls_cert "$PKI" wrongname "DNS:not-the-smarthost.test,IP:127.0.0.7"
	smarthost --starttls "$PKI/wrongname.pem" "$PKI/wrongname.key"
	relay_queue alice@example.org bob@remote.test < <(relay_msg wrongname)
	run smart_relay starttls
	assert_success
	assert_output --regexp "status=deferred \(.*certificate verify failed \((IP address|Hostname) mismatch\)"
	run queue_ids
	assert_output "$QID"
	nothing_delivered smart
}

@test "smarthost with STARTTLS required that does not offer it: deferred, no MAIL in clear" {
	smarthost
	relay_queue alice@example.org bob@remote.test < <(relay_msg nostarttls)
	run smart_relay starttls
	assert_success
	assert_output --regexp "status=deferred \(.*does not offer STARTTLS"
	run queue_ids
	assert_output "$QID"
	nothing_delivered smart
}

@test "a server that pipelines after its 220 to STARTTLS is refused: those octets never count as TLS" {
	relay_script_server 127.0.0.6 inject <<'EOF'
send 220 inject.test ESMTP
read
send 250-inject.test
send 250 STARTTLS
read
send 220 2.0.0 go ahead
send 250 2.0.0 injected in clear
sleep 2
close
EOF
	relay_queue alice@example.org bob@remote.test < <(relay_msg inject)
	run smart_relay starttls
	assert_success
	assert_output --partial "status=deferred"
	run grep -c '^C: MAIL' "$BATS_TEST_TMPDIR/inject/transcript"
	assert_output 0
	run queue_ids
	assert_output "$QID"
}

@test "smarthost with implicit TLS (smtps, 465-style) and AUTH: delivered" {
	smarthost --smtps "$PKI/smart.pem" "$PKI/smart.key" --auth carol:pw
	creds carol:pw
	relay_queue alice@example.org bob@remote.test < <(relay_msg smtps)
	run smart_relay smtps --smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_success
	assert_output --regexp "Verified TLS connection to \[127\.0\.0\.6\]\[127\.0\.0\.6\]:$RPORT: TLSv1\.3 .*, authenticated"
	assert_output --partial "status=sent"
	run cat "$BATS_TEST_TMPDIR/smart/1.tls"
	assert_output --regexp '^TLSv1\.3 '
	# the first EHLO was already inside TLS
	run head -1 "$BATS_TEST_TMPDIR/smart/sessions"
	assert_output --regexp 'tls=TLSv1\.3/'
}

@test "--smarthost-tls auto: port 465 is implicit TLS with the certificate verified" {
	[ "$(id -u)" -eq 0 ] || skip "binding port 465 needs root"
	! ss -Hltn | awk '{ print $4 }' | grep -qE '(^|[:\]])465$' || skip "port 465 is in use here"
	RPORT=465
	smarthost --smtps "$PKI/smart.pem" "$PKI/smart.key"
	relay_queue alice@example.org bob@remote.test < <(relay_msg auto465)
	run relay --smarthost "127.0.0.6:465" --smarthost-ca "$PKI/ca.pem"
	assert_success
	assert_output --regexp "Verified TLS connection to \[127\.0\.0\.6\]\[127\.0\.0\.6\]:465: TLSv1\.3 "
	assert_output --partial "status=sent"
}

@test "wrong AUTH credentials: deferred with the server's 535, still queued, nothing sent" {
	smarthost --starttls "$PKI/smart.pem" "$PKI/smart.key" --auth alice:right
	creds alice:wrong
	relay_queue alice@example.org bob@remote.test < <(relay_msg badauth)
	run smart_relay starttls --smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_success
	assert_output --regexp "status=deferred \(.*AUTH PLAIN refused: 535"
	run cat "$BATS_TEST_TMPDIR/smart/auth"
	assert_output 'PLAIN alice refused'
	run queue_ids
	assert_output "$QID"
	nothing_delivered smart
}

@test "--verbose logs the dialogue but never the credentials, nor their base64" {
	smarthost --starttls "$PKI/smart.pem" "$PKI/smart.key" --auth alice:'Sesame42!'
	creds 'alice:Sesame42!'
	relay_queue alice@example.org bob@remote.test < <(relay_msg verbose)
	run relay --verbose --smarthost "127.0.0.6:$RPORT" --smarthost-tls starttls --smarthost-ca "$PKI/ca.pem" \
		--smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_success
	assert_output --partial '> AUTH PLAIN (credentials not shown)'
	assert_output --partial "status=sent"
	local b64
	b64=$(printf '\0alice\0Sesame42!' | base64)
	refute_output --partial 'Sesame42!'
	refute_output --partial "$b64"
	refute_output --partial "$(printf 'Sesame42!' | base64)"
}

@test "credentials file readable by others (0644): one-line error, exit 78, nothing sent" {
	smarthost --starttls "$PKI/smart.pem" "$PKI/smart.key" --auth alice:pw
	creds alice:pw 644
	relay_queue alice@example.org bob@remote.test < <(relay_msg mode)
	run smart_relay starttls --smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_failure 78
	assert_equal "${#lines[@]}" 1
	assert_output "mailslot-relay: --smarthost-auth $BATS_TEST_TMPDIR/creds: permissions 0644 are too open (group or others): chmod 600 it"
	[ ! -e "$BATS_TEST_TMPDIR/smart/sessions" ] || fail "the relay connected"
	# group-readable only is refused too
	chmod 640 "$BATS_TEST_TMPDIR/creds"
	run relay --smarthost "127.0.0.6:$RPORT" --smarthost-tls starttls --smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_failure 78
	assert_output --partial 'permissions 0640 are too open'
}

@test "credentials file of another account: refused" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to give the file away"
	creds alice:pw
	chown nobody "$BATS_TEST_TMPDIR/creds"
	run relay --smarthost "127.0.0.6:$RPORT" --smarthost-tls starttls --smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_failure 78
	assert_output --regexp '^mailslot-relay: --smarthost-auth .*: owned by uid [0-9]+, not by this account \(uid 0\)$'
}

@test "the TLS settings are checked at start: one line and 78 each" {
	creds alice:pw
	run relay --smarthost-tls starttls
	assert_failure 78
	assert_output 'mailslot-relay: --smarthost-tls is set without --smarthost'
	run relay --smarthost "127.0.0.6:$RPORT" --smarthost-tls sometimes
	assert_failure 78
	assert_output "mailslot-relay: --smarthost-tls 'sometimes': expected auto, starttls, smtps, may or none"
	# AUTH never in clear: not with may, none, or auto on a port that is neither 587 nor 465
	for mode in may none auto; do
		run relay --smarthost "127.0.0.6:$RPORT" --smarthost-tls "$mode" --smarthost-auth "$BATS_TEST_TMPDIR/creds"
		assert_failure 78
		assert_output --partial 'AUTH is never sent in clear'
	done
	run relay --smarthost "127.0.0.6:$RPORT" --smarthost-tls starttls --smarthost-ca "$BATS_TEST_TMPDIR/none.pem"
	assert_failure 78
	assert_output "mailslot-relay: --smarthost-ca $BATS_TEST_TMPDIR/none.pem: No such file or directory"
	printf 'no colon here\n' >"$BATS_TEST_TMPDIR/creds"
	run relay --smarthost "127.0.0.6:$RPORT" --smarthost-tls starttls --smarthost-auth "$BATS_TEST_TMPDIR/creds"
	assert_failure 78
	assert_output --partial 'expected a line "user:password"'
	assert_equal "${#lines[@]}" 1
}
