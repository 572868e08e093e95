# deliv_common.bash: shared by delivery.bats, crash.bats and privileges.bats
# (after test_helper).  Messages go out through Python's smtplib and come
# back through Python's mailbox module (helpers/deliv_mail.py); every record
# of what was sent is in $REC.

DELIV_PY="$BATS_TEST_DIRNAME/helpers/deliv_mail.py"

# Run python3 itself rather than a version-manager shim (pyenv's costs
# 0.15 s a call, and these tests call Python a few hundred times).
if [ -z "${DELIV_PYTHON_DIR:-}" ]; then
	DELIV_PYTHON_DIR=$(dirname "$(python3 -c 'import sys; print(sys.executable)')")
	export DELIV_PYTHON_DIR
fi
PATH="$DELIV_PYTHON_DIR:$PATH"

deliv_setup() {
	setup_spool
	REC="$BATS_TEST_TMPDIR/sent.jsonl"
}

# send_mail ARGS...: one session on the listener ($PORT); see deliv_mail.py send.
send_mail() {
	python3 "$DELIV_PY" send --port "$PORT" --record "$REC" "$@"
}

# send_mail_stdin "HANDLER OPTIONS" ARGS...: one session with the handler on a
# socket pair as its stdin/stdout, no listener.
send_mail_stdin() {
	local opts=$1
	shift
	python3 "$DELIV_PY" send --exec "$SMTPD $(smtpd_args) $opts" --log "$LOG" --record "$REC" "$@"
}

# check_box FORMAT PATH [RECORD...] [options]: exact messages, exact bodies.
check_box() {
	local fmt=$1 path=$2
	shift 2
	if [ $# -eq 0 ] || [[ $1 == --* ]]; then
		set -- "$REC" "$@"
	fi
	python3 "$DELIV_PY" check "$fmt" "$path" "$@"
}

count_messages() {
	python3 "$DELIV_PY" count "$@"
}

# The queue id from the last "DATA 250 2.0.0 Ok: queued as ID" in $output.
queued_id() {
	sed -n 's/^DATA 250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\)$/\1/p' <<<"$output" | tail -1
}

# Files (not directories) under DIR, one a line; nothing when it is empty.
files_in() {
	find "$1" -mindepth 1 \( -type f -o -type l \) 2>/dev/null | sort
}

# A pid no process has: a child that has been reaped.
dead_pid() {
	local pid
	sh -c 'exit 0' &
	pid=$!
	wait "$pid"
	echo "$pid"
}
