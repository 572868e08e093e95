# units_helper.bash: shared by units.bats and xinetd.bats, which start the
# real mailslot-smtpd under the superservers it ships configurations for.
#
# Every daemon a test starts goes through start_daemon, so that
# stop_daemons (called from teardown) can end exactly those, by PID.
# Mail goes to $BATS_TEST_TMPDIR, never to the system spool.

bats_load_library bats-support
bats_load_library bats-assert

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
SMTPD=${MAILSLOT_SMTPD:-$REPO/mailslot-smtpd}

require_smtpd() {
	[ -x "$SMTPD" ] || fail "$SMTPD is not built: run make first"
}

# A port nobody listens on now.  The kernel picks it; the tiny race until
# the daemon binds it is acceptable on a test machine.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Wait until something listens on PORT, without connecting (a probe
# connection would start an SMTP session of its own).
wait_listen() {
	local hex i
	hex=$(printf ':%04X ' "$1")
	for ((i = 0; i < 100; i++)); do
		grep -q "$hex.* 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null && return 0
		sleep 0.05
	done
	fail "nothing listens on port $1 after 5 s"
}

# start_daemon NAME COMMAND...: run COMMAND in the background, output in
# $BATS_TEST_TMPDIR/NAME.log.  fd 3 is closed so bats does not wait on it.
start_daemon() {
	local name=$1
	shift
	"$@" >"$BATS_TEST_TMPDIR/$name.log" 2>&1 3>&- &
	echo "$!" >>"$BATS_TEST_TMPDIR/daemons.pid"
}

stop_daemons() {
	local pid
	[ -f "$BATS_TEST_TMPDIR/daemons.pid" ] || return 0
	while read -r pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done <"$BATS_TEST_TMPDIR/daemons.pid"
	rm -f "$BATS_TEST_TMPDIR/daemons.pid"
}

# A spool, a queue and a users file of our own, and the options that point
# mailslot-smtpd at them, in SMTPD_ARGS.
setup_mail() {
	SPOOL=$BATS_TEST_TMPDIR/spool
	QUEUE=$BATS_TEST_TMPDIR/queue
	mkdir -p "$SPOOL" "$QUEUE"
	printf '%s\n' alice bob carol >"$BATS_TEST_TMPDIR/users"
	SMTPD_ARGS=(-s "$SPOOL" -q "$QUEUE" -u "$BATS_TEST_TMPDIR/users"
		-d example.test -H mx.example.test -L stderr)
	# Started as root by the superservers, smtpd would switch to the mail
	# account, which cannot enter bats' private temporary directory.
	if [ "$(id -u)" -eq 0 ]; then
		SMTPD_ARGS+=(-U root)
	fi
}

# send_smtplib PORT TO TOKEN [HOST]: one message with TOKEN in its body,
# sent with Python's smtplib.
send_smtplib() {
	python3 - "$@" <<'EOF'
import smtplib, sys
from email.message import EmailMessage
port, to, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
host = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
msg = EmailMessage()
msg["From"] = "sender@example.net"
msg["To"] = to
msg["Subject"] = "test " + token
msg.set_content("body line\n" + token + "\n")
with smtplib.SMTP(host, port, local_hostname="client.example.test", timeout=10) as s:
    s.send_message(msg)
EOF
}

# send_swaks PORT TO TOKEN
send_swaks() {
	swaks --server 127.0.0.1 --port "$1" --helo client.example.test \
		--from sender@example.net --to "$2" \
		--header "Subject: test $3" --body "body line
$3" --timeout 10
}

# assert_delivered USER TOKEN: the mbox of USER parses as mbox and holds
# exactly one message whose body carries TOKEN.
assert_delivered() {
	run python3 - "$SPOOL/$1" "$2" <<'EOF'
import mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
hits = [m for m in box if sys.argv[2] in m.get_payload()]
print(len(hits))
EOF
	assert_success
	assert_output 1
}

# assert_session_sandboxed PORT: a connection to PORT is split in two, and
# the session process that reads it holds no capability, has no_new_privs
# and a seccomp filter (helpers/privsep_probe.py reads /proc).
assert_session_sandboxed() {
	run python3 "$BATS_TEST_DIRNAME/helpers/privsep_probe.py" "$SMTPD" --port "$1" status
	assert_success
	assert_line --regexp '^greeting 220 '
	assert_line "session CapPrm 0000000000000000"
	assert_line "session CapEff 0000000000000000"
	assert_line "session CapAmb 0000000000000000"
	assert_line "session NoNewPrivs 1"
	assert_line "session Seccomp 2"
	assert_line --regexp '^quit 221 '
}
