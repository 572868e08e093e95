#!/usr/bin/env bats
# units.bats: the shipped systemd units load cleanly, stay hardened, and
# the hardening they rely on does not break a session.

load helpers/units_helper

setup() {
	command -v systemd-analyze >/dev/null ||
		skip "systemd-analyze is not installed (package systemd)"
	UNITS=$REPO/units
}

teardown() {
	stop_daemons
	if [ -f "$BATS_TEST_TMPDIR/shared-dir" ]; then
		rm -rf "$(cat "$BATS_TEST_TMPDIR/shared-dir")"
	fi
}

# A copy of the units whose ExecStart= is the binary of this checkout,
# since verify insists that the installed path exists.
copy_units() {
	require_smtpd
	mkdir -p "$BATS_TEST_TMPDIR/units"
	cp "$UNITS/mailslot-smtpd.socket" "$BATS_TEST_TMPDIR/units/"
	sed "s|^ExecStart=/usr/local/sbin/mailslot-smtpd|ExecStart=$SMTPD|" \
		"$UNITS/mailslot-smtpd@.service" >"$BATS_TEST_TMPDIR/units/mailslot-smtpd@.service"
}

@test "the service runs the binary that make install puts in /usr/local/sbin" {
	run grep -c '^ExecStart=/usr/local/sbin/mailslot-smtpd$' "$UNITS/mailslot-smtpd@.service"
	assert_output 1
}

@test "systemd-analyze verify accepts the socket and the service" {
	copy_units
	# Documentation=man:mailslot-smtpd(8) is checked too when the page
	# exists in the checkout: man finds it through a MANPATH of our own.
	local man=--man=no
	if [ -f "$REPO/man/mailslot-smtpd.8" ]; then
		mkdir -p "$BATS_TEST_TMPDIR/man/man8"
		ln -s "$REPO/man/mailslot-smtpd.8" "$BATS_TEST_TMPDIR/man/man8/"
		export MANPATH=$BATS_TEST_TMPDIR/man
		man=--man=yes
	fi
	run systemd-analyze verify "$man" \
		"$BATS_TEST_TMPDIR/units/mailslot-smtpd.socket" \
		"$BATS_TEST_TMPDIR/units/mailslot-smtpd@.service"
	assert_success
	assert_output ''
}

@test "the service's exposure is at most 2.0" {
	run systemd-analyze security --offline=true --no-pager "$UNITS/mailslot-smtpd@.service"
	assert_success
	refute_line --partial 'Unknown key'
	local level
	level=$(sed -n 's/^.*Overall exposure level for .*: \([0-9.]*\) .*$/\1/p' <<<"$output")
	[ -n "$level" ] || fail "no exposure level in: $output"
	awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || fail "exposure $level > 2.0"
}

@test "the service may write the spec's default spool and queue" {
	run grep -x 'ReadWritePaths=/var/spool/mail /var/spool/mailslot/queue' "$UNITS/mailslot-smtpd@.service"
	assert_success
}

# PrivateNetwork=yes leaves the session in an empty network namespace with
# only the accepted connection; unshare -n does the same outside systemd.
@test "PrivateNetwork=yes: a session on an inherited socket works without a network" {
	require_smtpd
	unshare -n true 2>/dev/null || skip "cannot create a network namespace here"
	setup_mail
	local port
	port=$(free_port)
	start_daemon ssa systemd-socket-activate --inetd -a -l "127.0.0.1:$port" \
		unshare -n "$SMTPD" "${SMTPD_ARGS[@]}"
	wait_listen "$port"
	run send_smtplib "$port" alice@example.test privnet-token
	assert_success
	assert_delivered alice privnet-token
}

# The unit starts smtpd as root with no capability but CAP_SETUID and
# CAP_SETGID, and no new privileges; setpriv reproduces that.  smtpd must
# then switch to mail by itself and deliver to a system account as that
# account, into a spool laid out like Debian's /var/mail.
@test "CapabilityBoundingSet=CAP_SETUID CAP_SETGID: a system account's mail is delivered as that account" {
	require_smtpd
	[ "$(id -u)" -eq 0 ] || skip "needs root, as systemd starts the service"
	getent passwd mail >/dev/null && getent passwd nobody >/dev/null ||
		skip "needs the accounts mail and nobody"
	unshare -n true 2>/dev/null || skip "cannot create a network namespace here"
	# bats' own temporary directory is closed to the mail account.
	local dir port
	dir=$(mktemp -d /tmp/mailslot-units.XXXXXX)
	echo "$dir" >"$BATS_TEST_TMPDIR/shared-dir"
	chmod 755 "$dir"
	install -d -o root -g mail -m 2775 "$dir/spool"
	install -d -o mail -g mail -m 0700 "$dir/queue"
	port=$(free_port)
	start_daemon ssa systemd-socket-activate --inetd -a -l "127.0.0.1:$port" \
		unshare -n setpriv --nnp --bounding-set=-all,+setuid,+setgid --inh-caps=-all \
		"$SMTPD" -s "$dir/spool" -q "$dir/queue" -d example.test -H mx.example.test -L stderr
	wait_listen "$port"
	run send_smtplib "$port" nobody@example.test caps-token
	assert_success
	SPOOL=$dir/spool assert_delivered nobody caps-token
	run stat -c %U "$dir/spool/nobody"
	assert_output nobody
}
