#!/usr/bin/env bats
# xinetd.bats: mailslot-smtpd delivers when a real superserver hands it the
# connection: xinetd (from the shipped example), systemd-socket-activate
# --inetd (what the socket unit does) and tcpserver (UCSPI).

load helpers/units_helper

setup() {
	require_smtpd
	setup_mail
	PORT=$(free_port)
}

teardown() {
	stop_daemons
}

# The shipped examples/xinetd.d file, moved to a test port on loopback and
# pointed at this checkout, with the example users, aliases and config.
# Its flags = IPv6 stays: bound to ::ffff:127.0.0.1, IPv4 clients arrive
# as v4-mapped addresses, as they do on a real dual-stack listener.
start_xinetd() {
	command -v xinetd >/dev/null || skip "xinetd is not installed"
	local args="-c $REPO/examples/mailslot.conf ${SMTPD_ARGS[*]} -u $REPO/examples/users -a $REPO/examples/aliases"
	sed -e 's/^service smtp$/service mailslot-test/' \
		-e "s|^\(\s*server\s*=\).*|\1 $SMTPD|" \
		-e "s|^\(\s*server_args\s*=\).*|\1 $args|" \
		-e "s|^{|{\n\ttype = UNLISTED\n\tport = $PORT\n\tbind = ::ffff:127.0.0.1|" \
		"$REPO/examples/xinetd.d/mailslot-smtpd" >"$BATS_TEST_TMPDIR/xinetd.conf"
	start_daemon xinetd xinetd -dontfork -f "$BATS_TEST_TMPDIR/xinetd.conf" \
		-pidfile "$BATS_TEST_TMPDIR/xinetd.pid"
	wait_listen "$PORT"
}

@test "xinetd: the example service delivers to an alias of two users" {
	start_xinetd
	run send_smtplib "$PORT" staff@example.test xinetd-token
	assert_success
	assert_delivered alice xinetd-token
	assert_delivered bob xinetd-token
}

@test "xinetd: a v4-mapped loopback client may relay, and the mail is queued" {
	start_xinetd
	run send_smtplib "$PORT" friend@example.test relay-token
	assert_success
	run find "$QUEUE/msg" -type f
	assert_success
	assert_equal "${#lines[@]}" 1
	run grep -rl someone@example.net "$QUEUE/env"
	assert_success
}

@test "xinetd: the session process holds nothing (capabilities, no_new_privs, seccomp)" {
	start_xinetd
	assert_session_sandboxed "$PORT"
}

@test "systemd-socket-activate --inetd: swaks delivers" {
	command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is not installed"
	start_daemon ssa systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" "$SMTPD" "${SMTPD_ARGS[@]}"
	wait_listen "$PORT"
	run send_swaks "$PORT" bob@example.test ssa-token
	assert_success
	assert_delivered bob ssa-token
}

@test "tcpserver: smtplib delivers" {
	command -v tcpserver >/dev/null || skip "tcpserver is not installed (package ucspi-tcp)"
	# -R -H: no ident or DNS lookups, which would stall without a network.
	start_daemon tcpserver tcpserver -R -H 127.0.0.1 "$PORT" "$SMTPD" "${SMTPD_ARGS[@]}"
	wait_listen "$PORT"
	run send_smtplib "$PORT" carol@example.test tcpserver-token
	assert_success
	assert_delivered carol tcpserver-token
}

@test "systemd-socket-activate --inetd and tcpserver: the session process holds nothing" {
	command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is not installed"
	command -v tcpserver >/dev/null || skip "tcpserver is not installed (package ucspi-tcp)"
	start_daemon ssa systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" "$SMTPD" "${SMTPD_ARGS[@]}"
	wait_listen "$PORT"
	assert_session_sandboxed "$PORT"
	stop_daemons
	PORT=$(free_port)
	start_daemon tcpserver tcpserver -R -H 127.0.0.1 "$PORT" "$SMTPD" "${SMTPD_ARGS[@]}"
	wait_listen "$PORT"
	assert_session_sandboxed "$PORT"
}

# The example config shows every setting of --help, commented out with a
# valid value; uncommented, it must still be accepted (exit 0, not 78).
@test "examples/mailslot.conf: every setting is there, and accepted" {
	local name
	for name in $("$SMTPD" --help | sed -nE 's/^ *(-., )?--([a-z-]*).*/\2/p'); do
		case $name in config | help | version | listen) continue ;; esac # not settings
		grep -q "^#$name = " "$REPO/examples/mailslot.conf" ||
			fail "examples/mailslot.conf lacks $name"
	done
	sed 's/^#\([a-z-]* = \)/\1/' "$REPO/examples/mailslot.conf" >"$BATS_TEST_TMPDIR/all.conf"
	# the example's users, aliases and passwd paths do not exist here:
	# override them
	: >"$BATS_TEST_TMPDIR/passwd"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=mx.test \
		-keyout "$BATS_TEST_TMPDIR/key.pem" -out "$BATS_TEST_TMPDIR/cert.pem" 2>/dev/null
	run "$SMTPD" -c "$BATS_TEST_TMPDIR/all.conf" "${SMTPD_ARGS[@]}" \
		-a "$REPO/examples/aliases" --passwd "$BATS_TEST_TMPDIR/passwd" \
		--tls-cert "$BATS_TEST_TMPDIR/cert.pem" --tls-key "$BATS_TEST_TMPDIR/key.pem" <<<QUIT
	assert_success
	assert_line --partial '221 '
}
