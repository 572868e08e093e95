# relay_helper.bash: the world mailslot-relay.bats delivers into, built of
# real programs on this machine only.
#
#   DNS      dnsmasq on 127.0.0.1:$DNSPORT, authoritative for *.test
#            (--local=/test/: a name it does not hold is NXDOMAIN, a type a
#            name lacks is NODATA); nothing is forwarded anywhere, and the
#            relay is always given --dns-server, so the machine's own
#            resolver is never asked.
#   remote   mail servers on other loopback addresses (127.0.0.2 ...) and
#            ::1, all on one port, $RPORT, which the relay gets as --port:
#            a second mailslot-smtpd under systemd-socket-activate, Postfix's
#            smtp-sink, or aiosmtpd (helpers/relay_sink.py).
#   sender   mailslot-smtpd on standard input queues into $QUEUE (the
#            spool of test_helper's setup_spool, domain example.org), and
#            mailslot-relay runs that queue with the same spool and users,
#            so a bounce to a local sender lands in its mbox.
#
# Every process a test starts is recorded in $BATS_TEST_TMPDIR/pids and
# ended by PID in teardown; so are network namespaces and veth links.
# The network namespace and the run as root need root and skip otherwise.

RELAY="${RELAY:-$BATS_TEST_DIRNAME/../mailslot-relay}"
DNSMASQ=/usr/sbin/dnsmasq
SMTP_SINK=/usr/sbin/smtp-sink
# aiosmtpd comes from Debian (python3-aiosmtpd): python3 on PATH may be
# another interpreter that does not see Debian's packages.
SYS_PYTHON=/usr/bin/python3
RELAY_SINK="$SYS_PYTHON $BATS_TEST_DIRNAME/helpers/relay_sink.py"

# The DNS data every test shares.  The preference-20 MX comes first, so
# that a relay taking the records in answer order would pick it.
# shellcheck disable=SC2054 # the commas are dnsmasq's
RELAY_ZONE=(
	--mx-host=remote.test,mx2.remote.test,20
	--mx-host=remote.test,mx1.remote.test,10
	--host-record=mx1.remote.test,127.0.0.2
	--host-record=mx2.remote.test,127.0.0.3
	--host-record=implicit.test,127.0.0.4
	--mx-host=foreign.test,mx.foreign.test,10
	--host-record=mx.foreign.test,127.0.0.5
	# mx.v6.test is the network namespace's IPv6 address (the AAAA test)
	--mx-host=v6.test,mx.v6.test,10
	# RFC 7505 null MX: preference 0, exchange "." (the root, one zero byte)
	--dns-rr=nullmx.test,15,000000
	# an MX that names the relay's own --hostname, which has an address,
	# so that only the loop can be the reason for a bounce
	--mx-host=loop.test,sender.test,10
	--host-record=sender.test,127.0.0.9
	# MX and implicit MX on this machine's own address: a loop by address;
	# backup.test has a better MX elsewhere, so this host is only its backup
	--mx-host=selfaddr.test,mx.selfaddr.test,10
	--host-record=mx.selfaddr.test,127.0.0.1
	--host-record=selfimplicit.test,127.0.0.1
	--mx-host=backup.test,mx.selfaddr.test,20
	--mx-host=backup.test,mx1.remote.test,10
	# missing.test: no data at all, so NXDOMAIN
)

# Missing tools are installed by tests/install-deps.sh test (as root).
relay_require() {
	local missing=""
	[ -x "$DNSMASQ" ] || missing+=" dnsmasq-base"
	[ -x "$SMTP_SINK" ] || missing+=" postfix(smtp-sink)"
	[ -f /usr/lib/python3/dist-packages/aiosmtpd/__init__.py ] || missing+=" python3-aiosmtpd"
	command -v ss >/dev/null || missing+=" iproute2"
	command -v systemd-socket-activate >/dev/null || missing+=" systemd"
	[ -z "$missing" ] || fail "missing:$missing; run: sh tests/install-deps.sh test"
}

relay_setup() {
	setup_spool
	RPORT=$(free_port)
	RELAY_LOG=$MS/relay.log
	: >"$RELAY_LOG"
}

relay_pid() {
	echo "$1" >>"$BATS_TEST_TMPDIR/pids"
}

# relay_wait_listen ADDR PORT: until something listens there (ss, so no
# probe connection starts a session of its own).
relay_wait_listen() {
	local want=$1:$2 in=()
	case $1 in *:*) want="[$1]:$2" ;; esac
	[ -z "${RELAY_REMOTE_NETNS:-}" ] || in=(ip netns exec "$RELAY_REMOTE_NETNS")
	for _ in $(seq 1 100); do
		"${in[@]}" ss -Hltn | awk -v w="$want" '$4 == w { found = 1 } END { exit !found }' && return 0
		sleep 0.05
	done
	echo "nothing listens on $want after 5 s" >&2
	return 1
}

# A port free for UDP and for TCP: dnsmasq binds both.
relay_free_udp_port() {
	python3 -c 'import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break'
}

# Start dnsmasq with RELAY_ZONE and any extra records given.  Sets DNSPORT.
relay_dns() {
	local user=() pid
	# as root dnsmasq would switch to an account that cannot write our log
	[ "$(id -u)" -eq 0 ] && user=(--user=root)
	# a free port can be taken between the look and the bind: try again
	for _ in 1 2 3 4 5; do
		DNSPORT=$(relay_free_udp_port)
		"$DNSMASQ" --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null \
			--pid-file="$BATS_TEST_TMPDIR/dnsmasq.pid" "${user[@]}" \
			--listen-address=127.0.0.1 --bind-interfaces --port="$DNSPORT" \
			--log-queries --log-facility="$BATS_TEST_TMPDIR/dnsmasq.log" \
			--local=/test/ "${RELAY_ZONE[@]}" "$@" 3>&- &
		pid=$!
		for _ in $(seq 1 100); do
			# its UDP socket alone is not enough: it makes the TCP one
			# next and dies if that port is taken, and any other UDP
			# socket on the port would look the same
			if ss -Hltun | awk -v w="127.0.0.1:$DNSPORT" '$5 == w { n[$1]++ } END { exit !(n["udp"] && n["tcp"]) }' &&
				kill -0 "$pid" 2>/dev/null; then
				relay_pid "$pid"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	echo "dnsmasq did not come up" >&2
	cat "$BATS_TEST_TMPDIR/dnsmasq.log" >&2
	return 1
}

# relay_remote ADDR NAME [smtpd options]: a second mailslot-smtpd as the
# remote domain's MX, on ADDR:$RPORT under socket activation.  Domain
# remote.test, users bob and carol, Maildir (one file a message, so the
# tests can compare bytes), greeting NAME.remote.test.  Its files are under
# $BATS_TEST_TMPDIR/NAME.  With RELAY_REMOTE_NETNS set, it runs in that
# network namespace.
relay_remote() {
	local addr=$1 name=$2 dir=$BATS_TEST_TMPDIR/$2 listen=$1:$RPORT in=()
	shift 2
	case $addr in *:*) listen="[$addr]:$RPORT" ;; esac
	[ -z "${RELAY_REMOTE_NETNS:-}" ] || in=(ip netns exec "$RELAY_REMOTE_NETNS")
	mkdir -p "$dir/mail" "$dir/queue"
	printf 'bob\ncarol\n' >"$dir/users"
	"${in[@]}" systemd-socket-activate --accept --inetd -l "$listen" \
		"$SMTPD" --spool "$dir/mail" --format maildir --queue "$dir/queue" --users "$dir/users" \
		--domain remote.test --hostname "$name.remote.test" --user "$(id -un)" --log stderr "$@" \
		>/dev/null 2>>"$dir/smtpd.log" 3>&- &
	relay_pid $!
	relay_wait_listen "$addr" "$RPORT"
}

# The messages in NAME's Maildir for USER, one path a line, oldest first.
relay_remote_mail() {
	ls -1tr "$BATS_TEST_TMPDIR/$1/mail/$2/new"/* 2>/dev/null
}

# relay_smtp_sink ADDR NAME [smtp-sink options]: Postfix's smtp-sink on
# ADDR:$RPORT, capturing each complete message under $BATS_TEST_TMPDIR/NAME.
relay_smtp_sink() {
	local addr=$1 dir=$BATS_TEST_TMPDIR/$2 user=()
	shift 2
	mkdir -p "$dir/dump"
	# as root it must be told an account; root keeps our private directory
	[ "$(id -u)" -eq 0 ] && user=(-u root)
	"$SMTP_SINK" "${user[@]}" -4 -h "sink.foreign.test" -d "$dir/dump/%Y%m%d%H%M%S." "$@" \
		"$addr:$RPORT" 16 >>"$dir/sink.log" 2>&1 3>&- &
	echo $! >"$dir/pid"
	relay_pid $!
	relay_wait_listen "$addr" "$RPORT"
}

# relay_py_sink ADDR NAME [relay_sink.py options]: aiosmtpd on ADDR:$RPORT,
# messages under $BATS_TEST_TMPDIR/NAME (see helpers/relay_sink.py).
relay_py_sink() {
	local addr=$1 dir=$BATS_TEST_TMPDIR/$2
	shift 2
	mkdir -p "$dir"
	$RELAY_SINK "$addr" "$RPORT" "$dir" "$@" >>"$dir/sink.log" 2>&1 3>&- &
	echo $! >"$dir/pid"
	relay_pid $!
	for _ in $(seq 1 200); do
		[ -f "$dir/ready" ] && return 0
		sleep 0.05
	done
	echo "aiosmtpd sink did not come up:" >&2
	cat "$dir/sink.log" >&2
	return 1
}

# relay_script_server ADDR NAME [relay_script.py options] < script: a
# server that follows the script on standard input on ADDR:$RPORT (see
# helpers/relay_script.py); what it received is in
# $BATS_TEST_TMPDIR/NAME/transcript.
relay_script_server() {
	local addr=$1 dir=$BATS_TEST_TMPDIR/$2
	shift 2
	mkdir -p "$dir"
	cat >"$dir/script"
	$SYS_PYTHON "$BATS_TEST_DIRNAME/helpers/relay_script.py" "$addr" "$RPORT" "$dir" "$dir/script" "$@" \
		>>"$dir/server.log" 2>&1 3>&- &
	echo $! >"$dir/pid"
	relay_pid $!
	for _ in $(seq 1 100); do
		[ -f "$dir/ready" ] && return 0
		sleep 0.05
	done
	echo "scripted server did not come up:" >&2
	cat "$dir/server.log" >&2
	return 1
}

# Stop the server NAME started with relay_smtp_sink, relay_py_sink
# or relay_script_server.
relay_stop() {
	local pid
	pid=$(cat "$BATS_TEST_TMPDIR/$1/pid")
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# relay_queue FROM RCPT... < message: the sending mailslot-smtpd (terminal
# mode, as the local submission path) takes the message; QID is set to the
# queue id.  Lines of the message that start with "." are dot-stuffed here
# and unstuffed by smtpd, so the message arrives as given.
relay_queue() {
	local from=$1 script=$BATS_TEST_TMPDIR/submit.txt out
	shift
	{
		printf 'HELO client.test\nMAIL FROM:<%s>\n' "$from"
		printf 'RCPT TO:<%s>\n' "$@"
		printf 'DATA\n'
		sed 's/^\./../'
		printf '.\nQUIT\n'
	} >"$script"
	out=$(smtpd_stdin --hostname sender.test <"$script")
	QID=$(printf '%s\n' "$out" | sed -n 's/^250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p')
	if [ -z "$QID" ] || [ ! -f "$QUEUE/env/$QID" ]; then
		echo "the sending smtpd did not queue the message:" >&2
		printf '%s\n' "$out" >&2
		cat "$LOG" >&2
		return 1
	fi
}

# A small message with SUBJECT, for tests that do not care about bytes.
relay_msg() {
	printf 'From: Alice <alice@example.org>\nSubject: %s\nMessage-ID: <%s@example.org>\n\nbody of %s\n' \
		"$1" "$1" "$1"
}

# relay [options]: mailslot-relay on $QUEUE with the test's DNS server and
# port and the sending side's spool and users.  Its log (stderr) is passed
# on to the caller, for `run`, and kept in $RELAY_LOG.
relay() {
	local rc=0 err=$BATS_TEST_TMPDIR/relay.err
	relay_argv "$@"
	"${RELAY_ARGV[@]}" 2>"$err" || rc=$?
	cat "$err" >&2
	cat "$err" >>"$RELAY_LOG"
	return "$rc"
}

# The same command line in RELAY_ARGV, for a test that starts the relay in
# the background: "${RELAY_ARGV[@]}" & makes $! the relay itself, where a
# function in the background would be a subshell around it.
relay_argv() {
	RELAY_ARGV=("$RELAY" --queue "$QUEUE" --dns-server "127.0.0.1:$DNSPORT" --port "$RPORT"
		--hostname sender.test --log stderr --timeout 5 --connect-timeout 2
		--spool "$SPOOL" --users "$MS/users" --aliases "$MS/aliases"
		--domain example.org --domain localhost --user "$(id -un)" "$@")
}

# The recipient lines of `relay --list` for the entry QID.
relay_list_rcpts() {
	"$RELAY" --queue "$QUEUE" --user "$(id -un)" --list | awk -v id="$1" '
		$1 == id { on = 1; next }
		/^[^ ]/ { on = 0 }
		on { sub(/^ +/, ""); print }'
}

# relay_dsn MBOX: parse every multipart/report in an mbox with Python's
# email package and print what RFC 3464 says a report must hold (see the
# script).  Fails if a report is malformed.
relay_dsn() {
	python3 "$BATS_TEST_DIRNAME/helpers/relay_dsn.py" "$@"
}

# relay_netns: a network namespace joined to this one by a veth pair on a
# private /30 (10.231.N.0/30; host .1, namespace .2) and a private IPv6
# /64 (fd00:6d73:N::/64, the same), and no other route.
# Sets NETNS, HOST_ADDR, NS_ADDR, HOST_ADDR6, NS_ADDR6.
relay_netns() {
	local n link
	if ! ip netns add "probe-$$" 2>/dev/null; then
		skip "cannot create network namespaces here (needs root or CAP_SYS_ADMIN)"
	fi
	ip netns del "probe-$$"
	n=$(((RANDOM % 200) + 20))
	while ip -4 addr | grep -q "inet 10\.231\.$n\."; do n=$(((n + 1) % 250)); done
	NETNS=mslot-relay-$$-$n
	link=msr$n-$((RANDOM % 1000))
	HOST_ADDR=10.231.$n.1
	NS_ADDR=10.231.$n.2
	echo "$NETNS" >"$BATS_TEST_TMPDIR/netns"
	echo "$link" >"$BATS_TEST_TMPDIR/veth"
	ip netns add "$NETNS"
	ip link add "$link" type veth peer name "${link}p"
	ip link set "${link}p" netns "$NETNS"
	ip addr add "$HOST_ADDR/30" dev "$link"
	ip link set "$link" up
	ip -n "$NETNS" addr add "$NS_ADDR/30" dev "${link}p"
	ip -n "$NETNS" link set "${link}p" up
	ip -n "$NETNS" link set lo up
	HOST_ADDR6=fd00:6d73:$n::1
	NS_ADDR6=fd00:6d73:$n::2
	# nodad: usable at once, without duplicate address detection
	ip -6 addr add "$HOST_ADDR6/64" dev "$link" nodad 2>/dev/null || HOST_ADDR6=
	ip -6 -n "$NETNS" addr add "$NS_ADDR6/64" dev "${link}p" nodad 2>/dev/null || NS_ADDR6=
}

relay_teardown() {
	stop_listeners
	if [ -f "$BATS_TEST_TMPDIR/shared-dir" ]; then
		rm -rf -- "$(cat "$BATS_TEST_TMPDIR/shared-dir")"
		rm -f "$BATS_TEST_TMPDIR/shared-dir"
	fi
	if [ -f "$BATS_TEST_TMPDIR/veth" ]; then
		ip link del "$(cat "$BATS_TEST_TMPDIR/veth")" 2>/dev/null || true
		rm -f "$BATS_TEST_TMPDIR/veth"
	fi
	if [ -f "$BATS_TEST_TMPDIR/netns" ]; then
		ip netns del "$(cat "$BATS_TEST_TMPDIR/netns")" 2>/dev/null || true
		rm -f "$BATS_TEST_TMPDIR/netns"
	fi
}
