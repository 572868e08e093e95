#!/usr/bin/env bats
# crashpoints.bats: SIGKILL at every step of a session, not at a random time.
#
# strace's fault injection (-e inject=CALL:signal=SIGKILL:when=N) kills the
# process as it enters the Nth call of CALL, before the call runs.  A clean
# run lists the calls of one session; then each call in the window gets a
# run of its own that dies just before it (helpers/crash_points.py says
# how, and what is checked).  Covered, for mailslot-smtpd's monitor, the
# process that delivers (TCP session, two local mbox recipients, one of them
# with mail already, one remote one that is queued; the session child that
# reads the client is not traced, and answers 421 when its monitor dies):
#   - from the DATA reply that hands over the spool file to the dot request
#   - after the dot, before the reply: the dotlock, the mbox append (header,
#     copy_file_range or the quoting pwrites, the final newline, fsync), the
#     queue commit (fsync, linkat, envelope, rename, directory fsyncs), the
#     log lines, the reply carrying the 250 and the calls just after it
# for mailslot-sendmail, every call of the mailslot-enqueue it runs from its
# first read of the request to its exit (the same message and recipients;
# exit status 0 is the 250);
# and for mailslot-relay every call from its EHLO to its exit: the
# pipelined envelope, each write of the DATA, the wait for the 250, the
# removal of the entry.
# Invariant: every message answered 250 is whole in each local mailbox or
# still queued; no mailbox holds a partial message once the next delivery
# has run (a partial append may sit at the end under a stale dotlock that
# records it until then); the queue keeps no msg/ without env/ past the
# relay's sweep; the remote side ends up with one or two whole copies.
# The kill points and what each left are printed on the TAP stream (fd 3).
# The sanitizer pass of make test skips this file: the same calls of the
# same code were each killed in the plain pass, and under ASan and strace
# the scan takes twice as long again.

load test_helper
load helpers/relay_helper

CRASH_PY="$BATS_TEST_DIRNAME/helpers/crash_points.py"

setup() {
	not_in_asan "SIGKILL at every system call"
	command -v strace >/dev/null || skip "strace is not installed (tests/install-deps.sh test)"
	# ptrace may be forbidden in a container
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace not permitted)"
	setup_spool
}

teardown() {
	relay_teardown
}

# Run the driver; on failure show the violations and the end of the report.
crash_run() {
	local report=$BATS_TEST_TMPDIR/report.txt rc=0
	python3 "$CRASH_PY" "$@" --report "$report" >"$BATS_TEST_TMPDIR/out.txt" 2>&1 || rc=$?
	grep '^#' "$BATS_TEST_TMPDIR/out.txt" | sed 's/^/# /' >&3 || true
	if [ "$rc" -ne 0 ]; then
		grep -E '^(VIOLATION|crash_points|Traceback|  )' "$BATS_TEST_TMPDIR/out.txt" | head -40 >&2
		echo "full report: $report" >&2
	fi
	return "$rc"
}

@test "mailslot-smtpd killed at every call from the 354 to just after the 250 (plain append)" {
	crash_run smtpd --smtpd "$SMTPD" --relay "$RELAY" --work "$BATS_TEST_TMPDIR/work" \
		--user "$(id -un)" --scenario plain --window data
	run grep -c . "$BATS_TEST_TMPDIR/report.txt"
	assert [ "$output" -ge 60 ]
	# every phase the issue names was hit
	for phase in before-dot dotlock mbox-append queue-commit 250-reply after-250; do
		grep -q " $phase " "$BATS_TEST_TMPDIR/report.txt" || fail "no kill point in phase $phase"
	done
}

@test "mailslot-smtpd killed at every call after the dot (mboxrd-quoting append)" {
	crash_run smtpd --smtpd "$SMTPD" --relay "$RELAY" --work "$BATS_TEST_TMPDIR/work" \
		--user "$(id -un)" --scenario quoted --window after-dot
	# the quoting copy writes in pieces: kills between them leave a partial
	# append that the next delivery must have cut off
	run grep -c "partial last message, repair pending" "$BATS_TEST_TMPDIR/report.txt"
	assert [ "$output" -ge 4 ]
}

@test "mailslot-relay killed at every call from its EHLO to its exit: one copy, or two, never a partial one" {
	relay_require
	relay_setup
	relay_dns
	relay_remote 127.0.0.2 mx1
	relay_argv
	crash_run relay --smtpd-cmd "$SMTPD $(smtpd_args) --hostname sender.test" \
		--relay-cmd "$(printf '%q ' "${RELAY_ARGV[@]}")" --queue "$QUEUE" \
		--remote-maildir "$BATS_TEST_TMPDIR/mx1/mail/bob" --rcpt bob@remote.test --log "$RELAY_LOG"
	# a kill before the dot went out leaves one copy; after the remote's
	# 250 and before the entry is gone, two (at-least-once)
	grep -q 'copies=1 write(.*socket' "$BATS_TEST_TMPDIR/report.txt"
	grep -q 'copies=2 ' "$BATS_TEST_TMPDIR/report.txt"
}

@test "mailslot-sendmail: its mailslot-enqueue killed at every call from the request to its exit" {
	crash_run sendmail --sendmail "$BATS_TEST_DIRNAME/../mailslot-sendmail" \
		--enqueue "$BATS_TEST_DIRNAME/../mailslot-enqueue" --relay "$RELAY" \
		--work "$BATS_TEST_TMPDIR/work" --user "$(id -un)"
	run grep -c . "$BATS_TEST_TMPDIR/report.txt"
	assert [ "$output" -ge 100 ]
	# the request, the append and the queue were each hit, and an append
	# cut short was repaired by the next delivery
	for phase in request dotlock mbox-append queue; do
		grep -q " $phase " "$BATS_TEST_TMPDIR/report.txt" || fail "no kill point in phase $phase"
	done
	grep -q "partial last message, repair pending" "$BATS_TEST_TMPDIR/report.txt"
}
