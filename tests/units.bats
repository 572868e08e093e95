#!/usr/bin/env bats
# units.bats: the shipped systemd units load cleanly, stay hardened, and
# the hardening they rely on does not break a session.

load helpers/units_helper

setup() {
	command -v systemd-analyze >/dev/null ||
		skip "systemd-analyze is not installed (package systemd)"
	UNITS=$REPO/units
	EXAMPLES=$REPO/examples/systemd
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
	cp "$UNITS/mailslot-smtpd.socket" "$EXAMPLES/mailslot-smtpd-accept.socket" "$BATS_TEST_TMPDIR/units/"
	local unit
	for unit in "$UNITS/mailslot-smtpd.service" "$EXAMPLES/mailslot-smtpd-accept@.service"; do
		sed "s|^ExecStart=/usr/local/sbin/mailslot-smtpd|ExecStart=$SMTPD|" \
			"$unit" >"$BATS_TEST_TMPDIR/units/${unit##*/}"
	done
}

# exposure_at_most LIMIT UNIT: systemd-analyze security's overall level.
exposure_at_most() {
	run systemd-analyze security --offline=true --no-pager "$2"
	assert_success
	refute_line --partial 'Unknown key'
	local level
	level=$(sed -n 's/^.*Overall exposure level for .*: \([0-9.]*\) .*$/\1/p' <<<"$output")
	[ -n "$level" ] || fail "no exposure level in: $output"
	awk -v l="$level" -v max="$1" 'BEGIN { exit !(l <= max) }' || fail "exposure $level > $1"
}

@test "the service runs the acceptor that make install puts in /usr/local/sbin, with the installed config" {
	run grep -c '^ExecStart=/usr/local/sbin/mailslot-smtpd --listen --config /etc/mailslot/mailslot.conf' \
		"$UNITS/mailslot-smtpd.service"
	assert_output 1
	run grep -x 'Accept=no' "$UNITS/mailslot-smtpd.socket"
	assert_success
	run grep -c '^ExecStart=/usr/local/sbin/mailslot-smtpd --config /etc/mailslot/mailslot.conf$' \
		"$EXAMPLES/mailslot-smtpd-accept@.service"
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
		"$BATS_TEST_TMPDIR/units/mailslot-smtpd.service"
	assert_success
	assert_output ''
	run systemd-analyze verify "$man" \
		"$BATS_TEST_TMPDIR/units/mailslot-smtpd-accept.socket" \
		"$BATS_TEST_TMPDIR/units/mailslot-smtpd-accept@.service"
	assert_success
	assert_output ''
}

@test "the service's exposure is at most 2.0, and the Accept=yes example's too" {
	exposure_at_most 2.0 "$UNITS/mailslot-smtpd.service"
	exposure_at_most 2.0 "$EXAMPLES/mailslot-smtpd-accept@.service"
}

@test "the submission units (587 STARTTLS, 465 implicit TLS): verified, hardened as the SMTP one, --submission" {
	require_smtpd
	local kind port
	for kind in submission submissions; do
		port=587
		[ "$kind" = submissions ] && port=465
		run grep -x "ListenStream=$port" "$UNITS/mailslot-$kind.socket"
		assert_success
		run grep -c "^ExecStart=/usr/local/sbin/mailslot-smtpd --listen --config /etc/mailslot/mailslot.conf --submission" \
			"$UNITS/mailslot-$kind.service"
		assert_output 1
		exposure_at_most 2.0 "$UNITS/mailslot-$kind.service"
		cp "$UNITS/mailslot-$kind.socket" "$BATS_TEST_TMPDIR/"
		sed "s|^ExecStart=/usr/local/sbin/mailslot-smtpd|ExecStart=$SMTPD|" "$UNITS/mailslot-$kind.service" \
			>"$BATS_TEST_TMPDIR/mailslot-$kind.service"
		run systemd-analyze verify --man=no "$BATS_TEST_TMPDIR/mailslot-$kind.socket" \
			"$BATS_TEST_TMPDIR/mailslot-$kind.service"
		assert_success
		assert_output ''
	done
	run grep -c -- '--smtps' "$UNITS/mailslot-submissions.service" "$UNITS/mailslot-submission.service"
	assert_output "$UNITS/mailslot-submissions.service:1
$UNITS/mailslot-submission.service:0"
}

@test "the POP3 units (110 with STLS, 995 implicit TLS): Accept=no and the acceptor, verified, hardened as the SMTP ones" {
	[ -x "$REPO/mailslot-pop3d" ] || fail "mailslot-pop3d is not built: run make first"
	local kind port
	for kind in pop3 pop3s; do
		port=110
		[ "$kind" = pop3s ] && port=995
		run grep -x "ListenStream=$port" "$UNITS/mailslot-$kind.socket"
		assert_success
		run grep -x 'Accept=no' "$UNITS/mailslot-$kind.socket"
		assert_success
		run grep -c "^ExecStart=/usr/local/sbin/mailslot-pop3d --listen --config /etc/mailslot/mailslot.conf" \
			"$UNITS/mailslot-$kind.service"
		assert_output 1
		exposure_at_most 2.0 "$UNITS/mailslot-$kind.service"
		cp "$UNITS/mailslot-$kind.socket" "$BATS_TEST_TMPDIR/"
		sed "s|^ExecStart=/usr/local/sbin/mailslot-pop3d|ExecStart=$REPO/mailslot-pop3d|" \
			"$UNITS/mailslot-$kind.service" >"$BATS_TEST_TMPDIR/mailslot-$kind.service"
		run systemd-analyze verify --man=no "$BATS_TEST_TMPDIR/mailslot-$kind.socket" \
			"$BATS_TEST_TMPDIR/mailslot-$kind.service"
		assert_success
		assert_output ''
	done
	run grep -c -- '--pop3s' "$UNITS/mailslot-pop3s.service" "$UNITS/mailslot-pop3.service"
	assert_output "$UNITS/mailslot-pop3s.service:1
$UNITS/mailslot-pop3.service:0"
}

@test "the service may write the spec's default spool and queue" {
	run grep -x 'ReadWritePaths=/var/spool/mail /var/spool/mailslot/queue' "$UNITS/mailslot-smtpd.service"
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

# --- mailslot-relay.service, .path and .timer ---------------------------

RELAY=${MAILSLOT_RELAY:-$REPO/mailslot-relay}

# A copy of the relay's units whose ExecStart= is this checkout's binary.
copy_relay_units() {
	[ -x "$RELAY" ] || fail "$RELAY is not built: run make first"
	mkdir -p "$BATS_TEST_TMPDIR/units"
	cp "$UNITS/mailslot-relay.path" "$UNITS/mailslot-relay.timer" "$BATS_TEST_TMPDIR/units/"
	sed "s|^ExecStart=/usr/local/sbin/mailslot-relay|ExecStart=$RELAY|" \
		"$UNITS/mailslot-relay.service" >"$BATS_TEST_TMPDIR/units/mailslot-relay.service"
}

@test "the relay service runs the binary that make install puts in /usr/local/sbin" {
	run grep -c '^ExecStart=/usr/local/sbin/mailslot-relay --config /etc/mailslot/mailslot.conf$' \
		"$UNITS/mailslot-relay.service"
	assert_output 1
}

@test "systemd-analyze verify accepts the relay's service, path and timer" {
	copy_relay_units
	local man=--man=no
	if [ -f "$REPO/man/mailslot-relay.8" ]; then
		mkdir -p "$BATS_TEST_TMPDIR/man/man8"
		ln -s "$REPO/man/mailslot-relay.8" "$BATS_TEST_TMPDIR/man/man8/"
		export MANPATH=$BATS_TEST_TMPDIR/man
		man=--man=yes
	fi
	run systemd-analyze verify "$man" \
		"$BATS_TEST_TMPDIR/units/mailslot-relay.service" \
		"$BATS_TEST_TMPDIR/units/mailslot-relay.path" \
		"$BATS_TEST_TMPDIR/units/mailslot-relay.timer"
	assert_success
	assert_output ''
}

@test "the relay service's exposure is at most 2.0" {
	exposure_at_most 2.0 "$UNITS/mailslot-relay.service"
}

@test "the relay service is a oneshot run as mail, with no capability, writing only the queue and the spool" {
	local unit=$UNITS/mailslot-relay.service
	run grep -xc -e 'Type=oneshot' -e 'User=mail' -e 'Group=mail' -e 'CapabilityBoundingSet=' \
		-e 'NoNewPrivileges=yes' -e 'ProtectSystem=strict' \
		-e 'ReadWritePaths=/var/spool/mailslot/queue -/var/spool/mail' "$unit"
	assert_output 7
	# it must reach DNS and remote servers
	run grep -E '^(PrivateNetwork=yes|IPAddressDeny=)' "$unit"
	assert_failure
	run grep -x 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' "$unit"
	assert_success
}

# Edge-triggered on the rename that commits an entry.  DirectoryNotEmpty=
# would start a run after every run while a deferred entry waits.
@test "the path unit watches the queue's env directory for changes, not for being non-empty" {
	run grep -x 'PathChanged=/var/spool/mailslot/queue/env' "$UNITS/mailslot-relay.path"
	assert_success
	run grep -E '^(DirectoryNotEmpty|PathExists|PathExistsGlob)=' "$UNITS/mailslot-relay.path"
	assert_failure
	run grep -x 'Unit=mailslot-relay.service' "$UNITS/mailslot-relay.path"
	assert_success
}

@test "the timer starts a run 5 minutes after the last one ended" {
	run grep -x 'OnUnitInactiveSec=5min' "$UNITS/mailslot-relay.timer"
	assert_success
	run grep -x 'WantedBy=timers.target' "$UNITS/mailslot-relay.timer"
	assert_success
}

# What the service unit grants, reproduced with setpriv: the account mail,
# no capability, no new privileges.  The entry is written as the socket
# unit's sessions write it: by mailslot-smtpd switching to mail with
# UMask=0077, into a queue laid out as make install does.  The remote side
# is a mailslot-smtpd on loopback reached as an address-literal smarthost,
# so no DNS is involved.
@test "User=mail, no capabilities: the relay delivers an entry mailslot-smtpd queued with UMask=0077" {
	require_smtpd
	[ -x "$RELAY" ] || fail "$RELAY is not built: run make first"
	[ "$(id -u)" -eq 0 ] || skip "needs root, to become mail as systemd does"
	getent passwd mail >/dev/null || skip "needs the account mail"
	setup_mail
	local port dir
	port=$(free_port)
	start_daemon ssa systemd-socket-activate --inetd -a -l "127.0.0.1:$port" "$SMTPD" "${SMTPD_ARGS[@]}"
	wait_listen "$port"
	# bats' own temporary directory is closed to the mail account.
	dir=$(mktemp -d /tmp/mailslot-units.XXXXXX)
	echo "$dir" >"$BATS_TEST_TMPDIR/shared-dir"
	chmod 755 "$dir"
	install -d -o mail -g mail -m 0770 "$dir/queue"
	(
		umask 077
		"$SMTPD" -q "$dir/queue" -d sender.example.test -H sender.example.test -L stderr --user mail \
			>"$BATS_TEST_TMPDIR/submit.out" 2>&1 <<'EOF'
HELO client.example.test
MAIL FROM:<someone@sender.example.test>
RCPT TO:<alice@example.test>
DATA
Subject: queued as mail

relay-unit-token
.
QUIT
EOF
	)
	run stat -c '%U %a' "$dir"/queue/env/* "$dir"/queue/msg/*
	assert_output $'mail 600\nmail 600'
	run setpriv --reuid mail --regid mail --clear-groups --nnp --bounding-set=-all --inh-caps=-all \
		"$RELAY" -q "$dir/queue" -S "[127.0.0.1]:$port" -H sender.example.test -L stderr \
		--dns-server 127.0.0.1:9 --connect-timeout 2 --timeout 5
	assert_success
	assert_output --partial "status=sent"
	run ls "$dir/queue/env"
	assert_output ''
	assert_delivered alice relay-unit-token
}
