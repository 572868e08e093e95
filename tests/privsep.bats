#!/usr/bin/env bats
# privsep.bats: every connection is split in two.  The session process that
# reads the client holds no capability, has no_new_privs and a seccomp
# filter; the monitor that delivers never reads the client.  A forbidden
# system call kills the session and loses nothing already acknowledged.
# The other launchers (systemd-socket-activate, xinetd, tcpserver, inetd)
# are checked the same way in xinetd.bats and inetd.bats.

load test_helper

PROBE="$BATS_TEST_DIRNAME/helpers/privsep_probe.py"

setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root: reads another account's /proc/PID/status and uses gdb"
	getent passwd mail >/dev/null || skip "there is no 'mail' account to run as"
	# the mail account must reach the spool and queue: not under bats' 0700 tmpdir
	PRIV=$(mktemp -d /tmp/mailslot-privsep.XXXXXX)
	chmod 755 "$PRIV"
	mkdir "$PRIV/mail" "$PRIV/queue"
	chown mail:mail "$PRIV/mail" "$PRIV/queue"
	printf 'alice\nbob\n' >"$PRIV/users"
	LOG="$PRIV/smtpd.log"
	ARGS="--spool $PRIV/mail --queue $PRIV/queue --users $PRIV/users --domain example.org --hostname mx.test --log stderr"
	MAIL_UID=$(id -u mail)
}

teardown() {
	stop_listeners
	[ -n "${PRIV:-}" ] && rm -rf "$PRIV"
	return 0
}

field() {
	sed -n "s/^$1 $2 //p" <<<"$output"
}

# the credentials a session must have, whoever started it
assert_session_holds_nothing() {
	assert_equal "$(field session CapPrm)" 0000000000000000
	assert_equal "$(field session CapEff)" 0000000000000000
	assert_equal "$(field session CapInh)" 0000000000000000
	assert_equal "$(field session CapAmb)" 0000000000000000
	assert_equal "$(field session NoNewPrivs)" 1
	# 2: a seccomp filter
	assert_equal "$(field session Seccomp)" 2
}

@test "terminal, started as root with --user mail: the session holds nothing, the monitor only SETUID/SETGID" {
	run python3 "$PROBE" "$SMTPD" --exec "$SMTPD $ARGS --user mail 2>>$LOG" status
	assert_success
	assert_line --regexp '^greeting 220 mx\.test '
	assert_session_holds_nothing
	assert_equal "$(field session Uid)" "$MAIL_UID $MAIL_UID $MAIL_UID $MAIL_UID"
	# no supplementary group either, not even the run account's
	assert_equal "$(field session Groups)" ""
	assert_equal "$(field monitor CapPrm)" 00000000000000c0
	assert_equal "$(field monitor CapEff)" 0000000000000000
	assert_equal "$(field monitor Uid)" "$MAIL_UID $MAIL_UID $MAIL_UID $MAIL_UID"
	assert_line --regexp '^quit 221 '
}

@test "terminal, started as an ordinary user: the same split, without an identity switch" {
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	run python3 "$PROBE" "$SMTPD" --exec \
		"setpriv --reuid=mail --regid=mail --init-groups $SMTPD $ARGS 2>>$LOG" status
	assert_success
	assert_session_holds_nothing
	assert_equal "$(field session Uid)" "$MAIL_UID $MAIL_UID $MAIL_UID $MAIL_UID"
	assert_equal "$(field monitor Uid)" "$MAIL_UID $MAIL_UID $MAIL_UID $MAIL_UID"
	assert_equal "$(field monitor CapPrm)" 0000000000000000
	assert_equal "$(field monitor Seccomp)" 0
}

@test "systemd-socket-activate, started as root: the session holds nothing" {
	SPOOL=$PRIV/mail QUEUE=$PRIV/queue MS=$PRIV
	printf 'root: alice\n' >"$PRIV/aliases"
	start_listener --user mail
	run python3 "$PROBE" "$SMTPD" --port "$PORT" status
	assert_success
	assert_session_holds_nothing
	assert_equal "$(field session Uid)" "$MAIL_UID $MAIL_UID $MAIL_UID $MAIL_UID"
	assert_equal "$(field monitor CapPrm)" 00000000000000c0
}

# forbid EXPR: one acknowledged message, then the session is made to call EXPR
forbid() {
	command -v gdb >/dev/null || skip "gdb is not installed (tests/install-deps.sh test)"
	run python3 "$PROBE" "$SMTPD" --exec "$SMTPD $ARGS --user mail 2>>$LOG" forbid "$1" "$2"
	assert_success
	assert_line --regexp '^dot 250 2\.0\.0 '
	assert_line "gdb SIGSYS"
	assert_line closed
	grep -q 'killed by signal 31 .*outside its allow-list' "$LOG" || fail "no log line: $(cat "$LOG")"
	# the acknowledged message is whole in the mailbox, nothing is left over
	run read_mailbox mbox "$PRIV/mail/alice"
	assert_output "probe|$((${#2} + 1))"
	run find "$PRIV/queue" -type f
	assert_output ""
}

@test "a forbidden open() kills the session (SIGSYS); the acknowledged message is delivered whole" {
	forbid '(int)open("/etc/shadow", 0)' open-token
}

@test "a forbidden execve() kills the session; the acknowledged message is delivered whole" {
	forbid '(int)execl("/bin/sh", "sh", "-c", "id", 0)' exec-token
}

@test "a forbidden fork() kills the session; the acknowledged message is delivered whole" {
	forbid '(int)fork()' fork-token
}

@test "a forbidden socket(AF_INET) kills the session" {
	forbid '(int)socket(2, 1, 0)' socket-token
}

@test "--verbose: the session logs the Landlock ABI it applied, the kernel's own" {
	local abi
	abi=$(python3 -c 'import ctypes; print(max(ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1), 0))')
	run python3 "$PROBE" "$SMTPD" --exec "$SMTPD $ARGS --user mail --verbose 2>>$LOG" status
	assert_success
	grep -q "session sandboxed (Landlock ABI $abi)" "$LOG" || fail "want ABI $abi: $(cat "$LOG")"
}
