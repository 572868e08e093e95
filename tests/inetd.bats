#!/usr/bin/env bats
# inetd.bats: the shipped examples/inetd.conf line under a real inetd,
# Debian's openbsd-inetd, as an administrator would use it: only the
# port, the program's path and the spool paths are changed.
#
# Under inetd the handler's standard input, output and error are all the
# client's socket, so its log must go to syslog and never to the client.
# inetd runs in a mount namespace whose /dev is a tmpfs holding the
# device nodes it needs and, as /dev/log, a stand-in syslog socket of the
# test's own (helpers/log_journal.py, which keeps every datagram).  The
# namespace also gets an empty /run, so nothing inetd writes there lands
# on the machine.

load helpers/units_helper

# Unpacked by install-deps.sh, not installed: every inetd package conflicts
# with xinetd, which xinetd.bats needs.
INETD=${INETD:-/opt/mailslot-tests/openbsd-inetd/usr/sbin/inetd}

setup() {
	require_smtpd
	[ -x "$INETD" ] || fail "no $INETD: run sh tests/install-deps.sh test as root (make deps-test)"
	[ "$(id -u)" -eq 0 ] || skip "needs root: the example's service runs as root, and /dev/log is replaced in a mount namespace"
	setup_mail
	PORT=$(free_port)
	SYSLOG=$BATS_TEST_TMPDIR/syslog
}

teardown() {
	stop_daemons
}

# The example's one service line, moved to PORT on both loopback
# addresses (on Debian, "tcp" is IPv4 and IPv6), running this checkout's
# handler with the example configuration, the test's spool, queue and
# users, and the example aliases.  SMTPD_ARGS' "-L stderr" is left out: the
# example leaves the destination to the handler, which must see that
# stderr is the client's socket.
inetd_conf() {
	local args=() a
	for a in "${SMTPD_ARGS[@]}"; do
		case $a in -L | stderr) continue ;; esac
		args+=("$a")
	done
	args=(-c "$REPO/examples/mailslot.conf" "${args[@]}" -a "$REPO/examples/aliases")
	ARGS="${args[*]}" awk -F '\t' -v OFS='\t' -v port="$PORT" -v prog="$SMTPD" '
		/^#/ || NF == 0 { next }
		$1 == "smtp" {
			$1 = "127.0.0.1,::1:" port
			$6 = prog
			sub(/ -c \/etc\/mailslot\/mailslot\.conf$/, " " ENVIRON["ARGS"], $7)
			n++
		}
		{ print }
		END { if (n != 1) exit 1 }
	' "$REPO/examples/inetd.conf"
}

start_inetd() {
	inetd_conf >"$BATS_TEST_TMPDIR/inetd.conf" || fail "examples/inetd.conf has no single smtp line"
	: >"$SYSLOG"
	mkdir -p "$BATS_TEST_TMPDIR/dev"
	# unshare -m makes every mount private: nothing here reaches the
	# machine's /dev or /run.  sh execs inetd, so the PID start_daemon
	# records is inetd's; the syslog stand-in's PID is recorded too.
	start_daemon inetd unshare -m sh -c '
		set -e
		t=$1 sink=$2
		mount -t tmpfs -o mode=0755 tmpfs "$t/dev"
		for n in null zero full random urandom tty; do
			: >"$t/dev/$n"
			mount --bind "/dev/$n" "$t/dev/$n"
		done
		ln -s /proc/self/fd "$t/dev/fd"
		ln -s fd/0 "$t/dev/stdin"
		ln -s fd/1 "$t/dev/stdout"
		ln -s fd/2 "$t/dev/stderr"
		mount --move "$t/dev" /dev
		mount -t tmpfs -o mode=0755 tmpfs /run
		python3 "$sink" /dev/log "$t/syslog" 600 >"$t/syslog.ready" &
		echo $! >>"$t/daemons.pid"
		for _ in $(seq 1 100); do
			[ -s "$t/syslog.ready" ] && break
			sleep 0.05
		done
		[ -s "$t/syslog.ready" ]
		exec "$3" -d "$t/inetd.conf"
	' _ "$BATS_TEST_TMPDIR" "$REPO/tests/helpers/log_journal.py" "$INETD"
	wait_listen "$PORT"
	grep -q "^ADD: ::1:$PORT proto=tcp6" "$BATS_TEST_TMPDIR/inetd.log" ||
		fail "inetd did not listen on [::1]:$PORT: $(cat "$BATS_TEST_TMPDIR/inetd.log")"
}

# session HOST TO TOKEN: one message over a raw dialogue (smtpchat.py),
# which prints every reply line as it came, the greeting first.
session() {
	python3 "$REPO/tests/helpers/smtpchat.py" "$1" "$PORT" <<EOF
EHLO client.example.test
MAIL FROM:<sender@example.net>
RCPT TO:<$2>
DATA
<<DATA
Subject: test $3

body line
$3
.
>>
QUIT
EOF
}

@test "inetd: the example line delivers over IPv4 and IPv6, to an alias of two users" {
	start_inetd
	run send_smtplib "$PORT" staff@example.test inetd-v4-token
	assert_success
	assert_delivered alice inetd-v4-token
	assert_delivered bob inetd-v4-token
	run send_smtplib "$PORT" carol@example.test inetd-v6-token ::1
	assert_success
	assert_delivered carol inetd-v6-token
}

@test "inetd: the client's first line is the greeting, and the log goes to syslog, not to the client" {
	start_inetd
	run session 127.0.0.1 bob@example.test inetd-log-token
	assert_success
	assert_line --index 0 --regexp '^220 mx\.example\.test ESMTP'
	assert_line --regexp '^250 2\.0\.0 Ok: queued as [0-9A-F]+'
	assert_line --index $((${#lines[@]} - 1)) --regexp '^221 '
	local qid
	qid=$(sed -n 's/^250 2\.0\.0 Ok: queued as \([0-9A-F]*\).*/\1/p' <<<"$output")
	# every line the client got is a reply: no log text among them
	run grep -v -E '^[2-5][0-9][0-9][ -]' <<<"$output"
	assert_output ''
	assert_delivered bob inetd-log-token
	# syslog's datagram: "<PRI>timestamp mailslot-smtpd[PID]: text", with
	# PRI 16 to 23 for facility mail
	run grep -E "^<(1[6-9]|2[0-3])>.* mailslot-smtpd\[[0-9]+\]: $qid: to=<bob@example\.test> .*status=delivered" "$SYSLOG"
	assert_success
	run grep -E "^<(1[6-9]|2[0-3])>.* mailslot-smtpd\[[0-9]+\]: connect from 127\.0\.0\.1" "$SYSLOG"
	assert_success
}

@test "inetd: the session process holds nothing (capabilities, no_new_privs, seccomp)" {
	start_inetd
	assert_session_sandboxed "$PORT"
}
