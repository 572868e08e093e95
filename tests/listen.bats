#!/usr/bin/env bats
# listen.bats: mailslot-smtpd --listen, the acceptor the shipped socket unit
# starts (Accept=no), run as systemd does it: systemd-socket-activate
# without --accept passes the listening socket(s) (LISTEN_FDS) to the
# program when the first client connects.  tests/systemd.bats runs the
# installed units under a real systemd.

load helpers/units_helper
load helpers/tls_helper

setup() {
	require_smtpd
	command -v systemd-socket-activate >/dev/null ||
		skip "systemd-socket-activate is not installed (package systemd)"
	setup_mail
	PORT=$(free_port)
}

teardown() {
	stop_daemons
}

# start_acceptor [OPTION...]: the acceptor on $PORT, its log in acc.log.
start_acceptor() {
	start_daemon acc systemd-socket-activate -l "127.0.0.1:$PORT" \
		"$SMTPD" --listen "${SMTPD_ARGS[@]}" "$@"
	wait_listen "$PORT"
}

acceptor_pid() {
	head -1 "$BATS_TEST_TMPDIR/daemons.pid"
}

# exited PID: the process has ended (a zombie not yet waited for counts).
exited() {
	[ ! -e "/proc/$1" ] || grep -q '^[0-9]* (.*) Z' "/proc/$1/stat"
}

# hold N: N clients that connect, read the greeting and wait for a line on
# their standard input; prints one reply line per client as it comes.
# (The scripts go in with -c: standard input is theirs to wait on.)
hold_clients() {
	python3 -u -c '
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
for s in socks:
    print(s.recv(512).decode().strip())
sys.stdin.readline()
' "$PORT" "$1"
}

@test "--listen: one acceptor serves 20 concurrent clients, a fresh session process each" {
	start_acceptor
	run python3 - "$PORT" <<'EOF'
import smtplib, sys, threading
port = int(sys.argv[1])
errors = []
def send(i):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
            s.sendmail("sender@example.net", ["alice@example.test"],
                       "Subject: %d\r\n\r\nlisten-token-%d\r\n" % (i, i))
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
for t in threads: t.start()
for t in threads: t.join()
print("errors", len(errors), errors[:1])
EOF
	assert_success
	assert_output --partial "errors 0"
	run grep -c '^From ' "$SPOOL/alice"
	assert_output 20
	# every session was its own process (its own pid in the log)
	run sh -c "grep -o 'mailslot-smtpd\[[0-9]*\]: [0-9A-F]*: from=' '$BATS_TEST_TMPDIR/acc.log' | cut -d: -f1 | sort -u | wc -l"
	assert_output 20
	kill -0 "$(acceptor_pid)"
}

@test "--listen: the session behind the acceptor holds no capability, no_new_privs, seccomp" {
	start_acceptor
	assert_session_sandboxed "$PORT"
}

@test "--max-connections-per-source 2: a third client from the address gets 421 4.7.0; the acceptor logs it" {
	start_acceptor --max-connections-per-source 2
	run hold_clients 3 </dev/null
	assert_success
	assert_line --index 0 --regexp '^220 '
	assert_line --index 1 --regexp '^220 '
	assert_line --index 2 '421 4.7.0 mx.example.test Error: too many connections from your address'
	run grep -c 'connection from 127.0.0.1 refused: 2 sessions from that address already' \
		"$BATS_TEST_TMPDIR/acc.log"
	assert_output 1
}

@test "--max-connections 1: a second client waits in the backlog and is served when the first ends" {
	start_acceptor --max-connections 1
	coproc HOLD { hold_clients 1; }
	local first
	read -r -t 10 first <&"${HOLD[0]}"
	[[ $first == 220* ]] || fail "first client: $first"
	# the second gets no greeting while the first holds the only slot
	run python3 - "$PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.settimeout(1.0)
try:
    print("early", s.recv(512).decode().strip())
except socket.timeout:
    print("waiting")
EOF
	assert_output waiting
	echo >&"${HOLD[1]}"
	wait "$HOLD_PID" || true
	run send_smtplib "$PORT" alice@example.test backlog-token
	assert_success
	assert_delivered alice backlog-token
	run grep -c 'sessions running (--max-connections): new ones wait' "$BATS_TEST_TMPDIR/acc.log"
	[ "$output" -ge 1 ]
}

@test "--listen-idle 1: with no session for a second the acceptor exits 0" {
	start_acceptor --listen-idle 1 --verbose
	run send_smtplib "$PORT" alice@example.test idle-token
	assert_success
	local pid i
	pid=$(acceptor_pid)
	for ((i = 0; i < 50; i++)); do
		exited "$pid" && break
		sleep 0.1
	done
	exited "$pid" || fail "the acceptor is still running"
	local rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	run grep -c 'acceptor exits: idle' "$BATS_TEST_TMPDIR/acc.log"
	assert_output 1
	assert_delivered alice idle-token
	# the spare it kept for the next client went with it
	for ((i = 0; i < 50; i++)); do
		pgrep -f -- "$BATS_TEST_TMPDIR/users" >/dev/null || break
		sleep 0.1
	done
	run pgrep -f -- "$BATS_TEST_TMPDIR/users"
	assert_failure
}

@test "SIGTERM: the acceptor takes no new client, lets the running session deliver, then exits 0" {
	start_acceptor
	coproc SESSION {
		python3 -u -c '
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.example.test")
print("ready", flush=True)
sys.stdin.readline()
s.sendmail("sender@example.net", ["alice@example.test"], "Subject: t\r\n\r\nterm-token\r\n")
s.quit()
print("sent", flush=True)
' "$PORT"
	}
	local line pid
	read -r -t 10 line <&"${SESSION[0]}"
	assert_equal "$line" ready
	pid=$(acceptor_pid)
	kill -TERM "$pid"
	sleep 0.3
	exited "$pid" && fail "the acceptor exited with a session running"
	echo >&"${SESSION[1]}"
	read -r -t 10 line <&"${SESSION[0]}"
	assert_equal "$line" sent
	local rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	assert_delivered alice term-token
	run grep -c 'accepting no more connections; 1 sessions to finish' "$BATS_TEST_TMPDIR/acc.log"
	assert_output 1
}

@test "a broken config file: each client gets 421 4.3.5, the acceptor stays; once fixed, mail flows" {
	local conf=$BATS_TEST_TMPDIR/mailslot.conf
	echo 'max-size lots' >"$conf"
	start_acceptor --config "$conf"
	run python3 - "$PORT" <<'EOF'
import socket, sys
for _ in range(2):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    print(s.recv(512).decode().strip())
EOF
	assert_line --index 0 --regexp '^421 4\.3\.5 .*configuration error'
	assert_line --index 1 --regexp '^421 4\.3\.5 .*configuration error'
	run grep -c "mailslot.conf:1: max-size 'lots': not a number" "$BATS_TEST_TMPDIR/acc.log"
	[ "$output" -ge 3 ] || fail "the reason is not logged at start and per session: $output"
	echo 'max-size 10m' >"$conf"
	run send_smtplib "$PORT" alice@example.test fixed-token
	assert_success
	assert_delivered alice fixed-token
}

# spare_pair: "MONITOR SESSION" of the acceptor's spare once it is the
# acceptor's only child (the sessions before it have ended).
spare_pair() {
	local acc kids i
	acc=$(acceptor_pid)
	for ((i = 0; i < 100; i++)); do
		kids=$(pgrep -P "$acc" | tr '\n' ' ')
		set -- $kids
		if [ $# -eq 1 ] && [ -n "$(pgrep -P "$1")" ]; then
			echo "$1 $(pgrep -P "$1")"
			return 0
		fi
		sleep 0.05
	done
	fail "no lone spare under the acceptor: children $kids"
}

@test "the spare: the next client's session waits split and sandboxed; a changed users or config file retires it" {
	local conf=$BATS_TEST_TMPDIR/mailslot.conf
	echo 'max-size 1m' >"$conf"
	start_acceptor --config "$conf"
	run send_smtplib "$PORT" alice@example.test first-token
	assert_success
	local pair
	pair=$(spare_pair)
	set -- $pair
	# ready before any client: split, the session sandboxed, no connection
	run grep -E '^(NoNewPrivs|Seccomp|CapEff):' "/proc/$2/status"
	assert_line --regexp '^NoNewPrivs:[[:space:]]+1$'
	assert_line --regexp '^Seccomp:[[:space:]]+2$'
	assert_line --regexp '^CapEff:[[:space:]]+0+$'
	run ss -Htn state established "( sport = :$PORT )"
	assert_output ""
	# dave is added after the spare read the users file: its session
	# would refuse him, so it must make way for a new one
	echo dave >>"$BATS_TEST_TMPDIR/users"
	run send_smtplib "$PORT" dave@example.test dave-token
	assert_success
	assert_delivered dave dave-token
	spare_pair >/dev/null
	echo 'max-size 2m' >"$conf"
	run python3 -c '
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.ehlo("client.example.test")
    print("size", s.esmtp_features.get("size"))' "$PORT"
	assert_output "size 2097152"
	# an unchanged spare serves: the next client is served by the pair
	# that waited for it, niced while it waited (as root), not once serving
	pair=$(spare_pair)
	set -- $pair
	if [ "$(id -u)" -eq 0 ]; then
		run sh -c "ps -o ni= -p $1,$2 | tr -d ' ' | sort -u"
		assert_output 19
	fi
	coproc CLIENT { python3 -u -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
print(s.recv(512).decode().strip(), flush=True)
sys.stdin.readline()
s.sendall(b"QUIT\r\n")
print(s.recv(512).decode().strip(), flush=True)' "$PORT"; }
	local line
	read -r -t 10 line <&"${CLIENT[0]}"
	[[ $line == 220* ]] || fail "greeting: $line"
	run sh -c "ps -o ni= -p $1,$2 | tr -d ' ' | sort -u"
	assert_output 0
	echo >&"${CLIENT[1]}"
	read -r -t 10 line <&"${CLIENT[0]}"
	[[ $line == 221* ]] || fail "QUIT: $line"
	run grep -c "mailslot-smtpd\[$1\]: .*connect" "$BATS_TEST_TMPDIR/acc.log"
	[ "$output" -ge 1 ] || fail "the spare $1 did not serve the client"
}

@test "two listening sockets (two ListenStream= lines): the acceptor serves both" {
	local port2
	port2=$(free_port)
	start_daemon acc systemd-socket-activate -l "127.0.0.1:$PORT" -l "127.0.0.1:$port2" \
		"$SMTPD" --listen "${SMTPD_ARGS[@]}"
	wait_listen "$PORT"
	wait_listen "$port2"
	run send_smtplib "$PORT" alice@example.test first-socket-token
	assert_success
	run send_smtplib "$port2" alice@example.test second-socket-token
	assert_success
	assert_delivered alice first-socket-token
	assert_delivered alice second-socket-token
	run grep -c 'accepting on 2 sockets' "$BATS_TEST_TMPDIR/acc.log"
	assert_output 1
}

@test "--listen without a listening socket: exit 64 and a one-line reason" {
	run "$SMTPD" --listen "${SMTPD_ARGS[@]}" </dev/null
	assert_failure 64
	assert_output 'mailslot-smtpd: --listen: no listening socket (none passed by systemd, and standard input is not one)'
}

@test "a listening socket without --listen: exit 64, and the reason names --listen" {
	start_daemon acc systemd-socket-activate -l "127.0.0.1:$PORT" --inetd "$SMTPD" "${SMTPD_ARGS[@]}"
	wait_listen "$PORT"
	# The poke only wakes systemd-socket-activate, which then execs the
	# handler; that exits at once and closes the socket, so the poke itself
	# may be reset or refused: only the log line below matters.
	python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()' "$PORT" 2>/dev/null || true
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q 'add --listen' "$BATS_TEST_TMPDIR/acc.log" && break
		sleep 0.1
	done
	run grep -c 'standard input is a listening socket: add --listen' "$BATS_TEST_TMPDIR/acc.log"
	assert_output 1
}

@test "--max-session-time 1: a session that lasts longer is ended and the monitor says why" {
	start_acceptor --max-session-time 1
	run python3 - "$PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
print(f.readline().decode().strip())
start = time.time()
for _ in range(8):
    try:
        s.sendall(b"NOOP\r\n")
    except OSError:
        break
    if not f.readline():
        break
    time.sleep(0.4)
print("closed after %.0f s" % (time.time() - start))
EOF
	assert_line --index 0 --regexp '^220 '
	assert_line --index 1 --regexp '^closed after [12] s$'
	run grep -c 'ended: it lasted --max-session-time' "$BATS_TEST_TMPDIR/acc.log"
	assert_output 1
}

# With TLS configured the acceptor forks its sessions with the context it
# built (listen.h).  tls_pki NAME CN: a certificate NAME.pem for CN and its
# key NAME.key, signed by the test CA in $PKI.
tls_pki() {
	PKI=$BATS_TEST_TMPDIR/pki
	[ -f "$PKI/ca.pem" ] || tls_ca "$PKI"
	tls_cert "$PKI" "$1" "DNS:$2"
}

@test "a spare killed while it waits: the acceptor logs it, the next client is served, a new spare comes" {
	start_acceptor
	run send_smtplib "$PORT" alice@example.test first-token
	assert_success
	local pair
	pair=$(spare_pair)
	set -- $pair
	kill -9 "$1"
	run send_smtplib "$PORT" alice@example.test after-kill-token
	assert_success
	assert_delivered alice after-kill-token
	pair=$(spare_pair)
	[ "${pair%% *}" != "$1" ] || fail "the killed spare is still the acceptor's"
	run grep -c "spare session $1 killed by signal 9" "$BATS_TEST_TMPDIR/acc.log"
	assert_output 1
}

# A plain acceptor (no OpenSSL) whose configuration gains a certificate:
# its sessions, spares among them, become the TLS build.
@test "a certificate added to the config file of a plain acceptor: the next clients, spares' too, get STARTTLS" {
	tls_pki srv mx.example.test
	local conf=$BATS_TEST_TMPDIR/mailslot.conf
	echo 'timeout 300' >"$conf"
	start_acceptor --config "$conf"
	run send_smtplib "$PORT" alice@example.test before-token
	assert_success
	spare_pair >/dev/null
	printf 'tls-cert %s\ntls-key %s\n' "$PKI/srv.pem" "$PKI/srv.key" >>"$conf"
	local i
	# the first client retires the spare that read the old file; the
	# second is the new spare's, which execs the TLS build as a spare
	for i in 1 2; do
		run timeout 20 swaks --server "127.0.0.1:$PORT" --tls --tls-ca-path "$PKI/ca.pem" --tls-verify \
			--helo client.example.test --from sender@example.net --to alice@example.test \
			--header "Subject: tls $i" --body "tls-token-$i" --timeout 10
		assert_success
		spare_pair >/dev/null
	done
	run grep -c 'tls-token-' "$SPOOL/alice"
	assert_output 2
}

# served_cn: the subject CN of the certificate a STARTTLS client is shown.
served_cn() {
	openssl s_client -starttls smtp -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null |
		openssl x509 -noout -subject -nameopt multiline | awk '/commonName/ { print $3 }'
}

@test "--listen with TLS: sessions are forked from the acceptor, sandboxed, and deliver inside TLS" {
	tls_pki srv mx.example.test
	start_acceptor --tls-cert "$PKI/srv.pem" --tls-key "$PKI/srv.key"
	# the plain build hands TLS over to mailslot-smtpd-tls beside it
	SMTPD=$SMTPD-tls assert_session_sandboxed "$PORT"
	run swaks --server "127.0.0.1:$PORT" --tls --tls-ca-path "$PKI/ca.pem" --tls-verify \
		--from someone@remote.test --to alice@example.test --helo c.test --body forked-tls-token
	assert_success
	assert_line --regexp '^=== TLS started with cipher TLSv1\.[23]'
	assert_delivered alice forked-tls-token
}

@test "--listen with TLS: a renewed certificate reaches the next client; a broken pair gets 421 until mended" {
	tls_pki one mx-one.test
	tls_pki two mx-two.test
	cp "$PKI/one.pem" "$PKI/srv.pem"
	cp "$PKI/one.key" "$PKI/srv.key"
	start_acceptor --tls-cert "$PKI/srv.pem" --tls-key "$PKI/srv.key"
	run served_cn
	assert_output mx-one.test
	# renewed in place, as certbot's deploy hook or a cp would
	cp "$PKI/two.pem" "$PKI/srv.pem"
	cp "$PKI/two.key" "$PKI/srv.key"
	run served_cn
	assert_output mx-two.test
	# half-way through a renewal: the certificate new, the key still old
	cp "$PKI/one.pem" "$PKI/srv.pem"
	run python3 -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5); print(s.makefile("rb").readline().decode().strip())' "$PORT"
	assert_output --regexp '^421 4\.3\.5 '
	grep -q 'does not match the certificate' "$BATS_TEST_TMPDIR/acc.log"
	cp "$PKI/one.key" "$PKI/srv.key"
	run served_cn
	assert_output mx-one.test
}

@test "--listen with TLS: 100 connections idle inside TLS hold at most 512 KiB of PSS each" {
	grep -q -a -m1 AddressSanitizer "$SMTPD" && skip "a sanitizer build: its shadow memory is not ours"
	tls_pki srv mx.example.test
	start_acceptor --tls-cert "$PKI/srv.pem" --tls-key "$PKI/srv.key" --max-connections-per-source 200
	cat >"$BATS_TEST_TMPDIR/hold.py" <<'PY'
import socket, ssl, sys
ctx = ssl._create_unverified_context()
held = []
for _ in range(100):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO c.test\r\n")
    while f.readline()[3:4] != b" ":
        pass
    s.sendall(b"STARTTLS\r\n")
    f.readline()
    t = ctx.wrap_socket(s)
    t.sendall(b"EHLO c.test\r\n")
    g = t.makefile("rb")
    while g.readline()[3:4] != b" ":
        pass
    held.append((t, g))
print("held", len(held))
sys.stdin.readline()
PY
	coproc HOLD { python3 -u "$BATS_TEST_TMPDIR/hold.py" "$PORT"; }
	local line
	read -r -t 60 line <&"${HOLD[0]}"
	[ "$line" = "held 100" ] || fail "clients: $line"
	local acc sum=0 count=0 spare=0 m p pss conns
	acc=$(acceptor_pid)
	# the server's ends of the clients' connections, by inode
	conns=" $(awk -v port="$(printf '%04X' "$PORT")" 'NR > 1 { split($2, a, ":"); if (a[2] == port && $4 == "01") printf "%s ", $10 }' /proc/net/tcp)"
	for m in $(pgrep -P "$acc"); do
		local pair_pss=0 holds=0
		for p in $m $(pgrep -P "$m"); do
			pss=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
			pair_pss=$((pair_pss + ${pss:-0}))
			count=$((count + 1))
			for fd in $(find "/proc/$p/fd" -type l -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n'); do
				case $conns in *" $fd "*) holds=1 ;; esac
			done
		done
		# the spare's pair, waiting for the next client, is the one
		# holding no connection: the acceptor's, not a connection's
		if [ "$holds" = 1 ]; then sum=$((sum + pair_pss)); else spare=$((spare + pair_pss)); fi
	done
	echo "quit" >&"${HOLD[1]}"
	echo "# PSS per idle TLS connection: $((sum / 100)) KiB; the spare pair: $spare KiB ($count processes)" >&3
	# 100 monitor/session pairs, and the spare's pair waiting for the next
	[ "$count" -eq 202 ] || fail "$count processes for 100 connections and a spare"
	[ "$spare" -gt 0 ] || fail "no spare pair found"
	[ $((sum / 100)) -le 512 ] || fail "PSS per connection $((sum / 100)) KiB"
}

# key_scalar NAME: the private scalar of $PKI/NAME.key in hex, as DER holds
# it; pem_chunk NAME: 48 characters of its PEM text, in hex.
key_scalar() {
	openssl pkey -in "$PKI/$1.key" -text -noout | sed -n '/^priv:/,/^pub:/p' | sed '1d;$d' | tr -d ' :\n'
}
pem_chunk() {
	sed -n 2p "$PKI/$1.key" | cut -c1-48 | tr -d '\n' | od -An -tx1 | tr -d ' \n'
}

@test "--listen with TLS: the key is the monitor's; the session that speaks TLS never holds it" {
	grep -q -a -m1 AddressSanitizer "$SMTPD" && skip "a sanitizer build: its allocator reserves terabytes, too much to read"
	tls_pki srv mx.example.test
	start_acceptor --tls-cert "$PKI/srv.pem" --tls-key "$PKI/srv.key"
	local scalar pem
	scalar=$(key_scalar srv)
	pem=$(pem_chunk srv)
	[ ${#scalar} -eq 64 ] || fail "no scalar read from the key: '$scalar'"
	cat >"$BATS_TEST_TMPDIR/tls_hold.py" <<'PY'
import smtplib, ssl, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="c.test")
print("greeted", flush=True)
sys.stdin.readline()
s.starttls(context=ssl._create_unverified_context())
s.ehlo()
print("tls", s.sock.version(), flush=True)
sys.stdin.readline()
s.quit()
PY
	coproc HOLD { python3 -u "$BATS_TEST_TMPDIR/tls_hold.py" "$PORT"; }
	local line monitor session
	read -r -t 10 line <&"${HOLD[0]}"
	[ "$line" = greeted ] || fail "client: $line"
	read -r monitor session < <(python3 - "$(acceptor_pid)" <<'PY'
import os, sys
top = sys.argv[1]
kids = lambda p: open("/proc/%s/task/%s/children" % (p, p)).read().split()
m = kids(top)[0]
print(m, kids(m)[0])
PY
)
	# before the handshake: the key file's text waits in the acceptor,
	# for the monitors it forks, never in the session
	run python3 "$BATS_TEST_DIRNAME/helpers/mem_grep.py" "$(acceptor_pid)" "$pem"
	assert_output "found $pem"
	run python3 "$BATS_TEST_DIRNAME/helpers/mem_grep.py" "$session" "$pem" "$scalar"
	assert_output "absent $pem
absent $scalar"
	echo go >&"${HOLD[1]}"
	read -r -t 10 line <&"${HOLD[0]}"
	[[ $line == "tls TLSv1.3" ]] || fail "client: $line"
	# after it: the monitor signed once and let the key go; the session
	# never had it
	run python3 "$BATS_TEST_DIRNAME/helpers/mem_grep.py" "$session" "$pem" "$scalar"
	assert_output "absent $pem
absent $scalar"
	run python3 "$BATS_TEST_DIRNAME/helpers/mem_grep.py" "$monitor" "$scalar"
	assert_output "absent $scalar"
	echo quit >&"${HOLD[1]}"
}
