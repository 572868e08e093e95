# Shared by every .bats file: the binary, a private spool, a listener under
# real socket activation, and small clients.  Everything lives in
# $BATS_TEST_TMPDIR, so tests do not see each other.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

TESTS_DIR="$BATS_TEST_DIRNAME"
SMTPD="${SMTPD:-$BATS_TEST_DIRNAME/../mailslot-smtpd}"
CHAT="python3 $BATS_TEST_DIRNAME/helpers/smtpchat.py"

# A spool, queue, users and aliases file for one test.
setup_spool() {
	MS="$BATS_TEST_TMPDIR/ms"
	mkdir -p "$MS/mail" "$MS/queue"
	printf 'alice\nbob\ncarol\nDave\n' > "$MS/users"
	printf 'root: alice\nstaff: alice, bob\nfriend: someone@remote.example\n' > "$MS/aliases"
	SPOOL="$MS/mail"
	QUEUE="$MS/queue"
	LOG="$MS/smtpd.log"
}

# Common options; tests add their own after these.  --user is this account,
# so that a suite run as root keeps writing into the test's own directories;
# --error-delay is 5 ms instead of a second, so that tests that make many
# errors stay fast (and still go through the wait).
smtpd_args() {
	echo --spool "$SPOOL" --queue "$QUEUE" --users "$MS/users" --aliases "$MS/aliases" \
		--domain example.org --domain localhost --hostname mx.test --user "$(id -un)" --log stderr \
		--error-delay 5
}

# Run the handler on standard input, as a person at a terminal would.
smtpd_stdin() {
	"$SMTPD" $(smtpd_args) "$@" 2>>"$LOG"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Start the handler under systemd-socket-activate on a free loopback port.
# Sets PORT.  Extra arguments go to mailslot-smtpd.
start_listener() {
	local addr="${LISTEN_ADDR:-127.0.0.1}"
	# a free port can be taken between the look and the bind: try again
	for _ in 1 2 3 4 5; do
		PORT=$(free_port)
		systemd-socket-activate --accept --inetd -l "$addr:$PORT" "$SMTPD" $(smtpd_args) "$@" \
			2>>"$LOG" >/dev/null &
		LISTENER_PID=$!
		echo "$LISTENER_PID" >> "$BATS_TEST_TMPDIR/pids"
		for _ in $(seq 1 100); do
			if python3 -c "import socket,sys; socket.create_connection(('$addr',$PORT),1).close()" 2>/dev/null; then
				return 0
			fi
			kill -0 "$LISTENER_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill "$LISTENER_PID" 2>/dev/null || true
	done
	echo "listener did not come up" >&2
	return 1
}

stop_listeners() {
	if [ -f "$BATS_TEST_TMPDIR/pids" ]; then
		while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$BATS_TEST_TMPDIR/pids"
		rm -f "$BATS_TEST_TMPDIR/pids"
	fi
}

# chat < script: a careful client on the listener (see helpers/smtpchat.py)
chat() {
	$CHAT 127.0.0.1 "$PORT" "$@"
}

# Python's mailbox module reads the mailbox; prints one line per message:
# "<Subject>|<body length>".  Format: mbox, maildir or mh.
read_mailbox() {
	python3 - "$1" "$2" <<'PY'
import mailbox, sys
fmt, path = sys.argv[1], sys.argv[2]
box = {"mbox": mailbox.mbox, "maildir": mailbox.Maildir, "mh": mailbox.MH}[fmt](path, create=False)
for key in sorted(box.keys(), key=lambda k: (int(k) if str(k).isdigit() else 0, str(k))):
    m = box[key]
    body = m.get_payload(decode=False)
    print("%s|%d" % (m.get("Subject", ""), len(body)))
PY
}

teardown() {
	stop_listeners
}

# What make test leaves out, skipped with the reason on the TAP stream
# (README, "Tests").  not_in_asan WHY: a scan that the plain pass ran and
# that the sanitizer build would only repeat (make test-asan sets
# SUITE_LABEL=asan).  slow_scan WHAT: one of the longest scans, which make
# test skips (MAILSLOT_SKIP_SLOW=1) and make test-slow runs; a file run
# with bats directly runs it too.
not_in_asan() {
	[ "${SUITE_LABEL:-}" != asan ] || skip "$1: the plain pass ran it"
}

slow_scan() {
	[ "${MAILSLOT_SKIP_SLOW:-0}" != 1 ] || skip "$1: make test-slow"
}

# assert_fail2ban_matches COUNT LOGFILE: the shipped fail2ban filter,
# installed beside fail2ban's own common.conf as its comment says, finds
# COUNT failed logins, each from 127.0.0.1, in LOGFILE's lines written as
# syslog writes them (a time stamp and the host before the tag).
assert_fail2ban_matches() {
	local count=$1 log=$2 dir=$BATS_TEST_TMPDIR/fail2ban
	command -v fail2ban-regex >/dev/null || fail "fail2ban-regex missing (tests/install-deps.sh test installs fail2ban)"
	mkdir -p "$dir/filter.d"
	sed "s/^/$(date '+%b %e %H:%M:%S') mailhost /" "$log" >"$dir/syslog"
	cp /etc/fail2ban/filter.d/common.conf "$TESTS_DIR/../examples/fail2ban/filter.d/mailslot-auth.conf" \
		"$dir/filter.d/"
	# -o ip: one line per match, the address fail2ban would ban
	run fail2ban-regex -o ip "$dir/syslog" "$dir/filter.d/mailslot-auth.conf"
	assert_success
	assert_output "$(yes 127.0.0.1 | head -n "$count")"
}
