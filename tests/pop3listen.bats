#!/usr/bin/env bats
# pop3listen.bats: mailslot-pop3d --listen, the POP3 acceptor the shipped
# socket units start (Accept=no), run as systemd does it:
# systemd-socket-activate without --accept passes the listening socket.
# Clients: Python's poplib (plain and STLS) and curl pop3://.

load test_helper
load helpers/units_helper

POP3D="${POP3D:-$BATS_TEST_DIRNAME/../mailslot-pop3d}"
CLIENT="python3 $BATS_TEST_DIRNAME/helpers/pop3_client.py"

setup_file() {
	load helpers/tls_helper
	tls_ca "$BATS_FILE_TMPDIR/pki"
	tls_cert "$BATS_FILE_TMPDIR/pki" pop "DNS:localhost,IP:127.0.0.1"
	chmod 600 "$BATS_FILE_TMPDIR/pki/pop.key"
}

setup() {
	command -v systemd-socket-activate >/dev/null ||
		skip "systemd-socket-activate is not installed (package systemd)"
	setup_spool
	PASSWD=$BATS_TEST_TMPDIR/passwd
	printf 'alice:%s\nbob:%s\n' "$(openssl passwd -6 'alice secret')" "$(openssl passwd -6 'bob secret')" \
		>"$PASSWD"
	chmod 600 "$PASSWD"
	# two messages for alice, as an mbox reader expects them
	printf 'From a@remote.example Mon Jan  1 00:00:00 2026\nSubject: one\n\nfirst\n\n' >"$SPOOL/alice"
	printf 'From a@remote.example Mon Jan  1 00:00:00 2026\nSubject: two\n\nsecond\n\n' >>"$SPOOL/alice"
}

teardown() {
	stop_listeners
}

# start_acceptor [ARGS]: the acceptor on a free port (sets PORT, ACC).
start_acceptor() {
	PORT=$(free_port)
	systemd-socket-activate -l "127.0.0.1:$PORT" "$POP3D" --listen --spool "$SPOOL" --users "$MS/users" \
		--passwd "$PASSWD" --hostname pop.test --user "$(id -un)" --log stderr --error-delay 5 "$@" \
		2>>"$LOG" >/dev/null &
	ACC=$!
	echo "$ACC" >>"$BATS_TEST_TMPDIR/pids"
	wait_listen "$PORT"
}

@test "pop3d --listen: one acceptor serves 10 concurrent poplib clients, a fresh session each, sandboxed" {
	start_acceptor
	run python3 - "$PORT" <<'PY'
import poplib, sys, threading
port = int(sys.argv[1])
out, errors = [], []
def one():
    try:
        p = poplib.POP3("127.0.0.1", port, timeout=20)
        p.user("bob"); p.pass_("bob secret")
        out.append(p.stat()); p.quit()
    except Exception as e:
        errors.append(repr(e))
ts = [threading.Thread(target=one) for _ in range(10)]
for t in ts: t.start()
for t in ts: t.join()
print("errors", len(errors), errors[:1], "stats", sorted(set(out)))
PY
	assert_success
	assert_output "errors 0 [] stats [(0, 0)]"
	mkdir -p "$BATS_TEST_TMPDIR/out"
	run $CLIENT "$PORT" alice 'alice secret' --out "$BATS_TEST_TMPDIR/out"
	assert_success
	assert_line --regexp '^stat 2 [0-9]+$'
	assert_line "sizes ok"
	grep -q '^second' "$BATS_TEST_TMPDIR/out/2"
	# a session holds no capability, has no_new_privs and seccomp
	coproc HOLD { $CLIENT "$PORT" bob 'bob secret' --hold 5; }
	local session="" i
	for ((i = 0; i < 100; i++)); do
		for m in $(pgrep -P "$ACC"); do
			session=$(pgrep -P "$m" | head -1)
			[ -n "$session" ] && break 2
		done
		sleep 0.05
	done
	[ -n "$session" ] || fail "no session process under the acceptor"
	run grep -E '^(NoNewPrivs|Seccomp|CapEff|CapPrm):' "/proc/$session/status"
	assert_line --regexp '^NoNewPrivs:[[:space:]]+1$'
	assert_line --regexp '^Seccomp:[[:space:]]+2$'
	assert_line --regexp '^CapEff:[[:space:]]+0+$'
	assert_line --regexp '^CapPrm:[[:space:]]+0+$'
	kill "$HOLD_PID" 2>/dev/null || true
}

@test "pop3d --listen: curl pop3:// lists through it; --max-connections-per-source 1 turns a second client away with -ERR [SYS/TEMP]" {
	start_acceptor --max-connections-per-source 1
	run curl -s --max-time 20 -u 'alice:alice secret' "pop3://127.0.0.1:$PORT/"
	assert_success
	assert_line --regexp '^1 [0-9]+'
	assert_line --regexp '^2 [0-9]+'
	run python3 - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
first = socket.create_connection(("127.0.0.1", port), timeout=10)
print(first.recv(512).decode().strip())
second = socket.create_connection(("127.0.0.1", port), timeout=10)
print(second.recv(512).decode().strip())
PY
	assert_line --index 0 --regexp '^\+OK '
	assert_line --index 1 '-ERR [SYS/TEMP] too many connections from your address'
	run grep -c 'refused: 1 sessions from that address already' "$LOG"
	assert_output 1
}

@test "pop3d --listen with a certificate: the TLS build accepts, and poplib logs in after STLS" {
	local pki=$BATS_FILE_TMPDIR/pki
	start_acceptor --tls-cert "$pki/pop.pem" --tls-key "$pki/pop.key"
	run $CLIENT "$PORT" alice 'alice secret' --stls "$pki/ca.pem"
	assert_success
	assert_line --regexp '^stat 2 [0-9]+$'
	# the acceptor became the TLS build (mailslot-pop3d-tls)
	run readlink "/proc/$ACC/exe"
	assert_output --regexp 'mailslot-pop3d-tls$'
}

@test "pop3d --listen: a broken config file gets -ERR [SYS/TEMP] per client; the acceptor stays and serves once it is fixed" {
	local conf=$BATS_TEST_TMPDIR/mailslot.conf
	echo 'timeout soon' >"$conf"
	start_acceptor --config "$conf"
	run python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
print(s.recv(512).decode().strip())' "$PORT"
	assert_output --regexp '^-ERR \[SYS/TEMP\] Service not available: configuration error'
	echo 'timeout 600' >"$conf"
	run $CLIENT "$PORT" alice 'alice secret'
	assert_success
	assert_line --regexp '^stat 2 '
	kill -0 "$ACC"
}

@test "pop3d: a listening socket without --listen is refused with exit 64, and the reason names --listen" {
	run python3 -c '
import socket, subprocess, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
r = subprocess.run(sys.argv[1:], stdin=s.fileno(), capture_output=True, text=True, timeout=10)
print(r.returncode, r.stderr.strip())' "$POP3D" --spool "$SPOOL" --passwd "$PASSWD" --user "$(id -un)" --log stderr
	assert_output --regexp '^64 mailslot-pop3d: .*add --listen'
}
