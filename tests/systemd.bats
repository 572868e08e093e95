#!/usr/bin/env bats
# systemd.bats: the units `make install` installs, under a real systemd
# booted as PID 1 in systemd-nspawn (helpers/nspawn.bash): the socket
# serves a system account's mbox and the queue, the session that reads the
# client holds nothing, mailslot-relay.path starts the relay's own
# hardened service on a queued message, and a bad configuration fails
# connections, not the socket.  The POP3 sockets (110, and 995 once a
# certificate is configured) give a system account back, through Python's
# poplib, the mail port 25 delivered to it, from a session that holds
# nothing either.
#
# One container for the file (setup_file), powered off in teardown_file.
# The only change to the installed units is the drop-in mailslot-smtpd(8)
# shows for an administrator's configuration file (-c
# /etc/mailslot/mailslot.conf); every hardening line stays.  The relay
# asks its own dnsmasq in the container and delivers to Postfix's
# smtp-sink there: the container's network namespace has a loopback
# interface only, so no query or connection can leave it.

load helpers/units_helper
load helpers/nspawn
load helpers/tls_helper

# the remote side, in the container: DNS on 127.0.0.1, the MX on
# 127.0.0.2 (127.0.0.1 would be the relay's own address, a loop)
DNS_PORT=5353
MX_ADDR=127.0.0.2
MX_PORT=2526
# the POP3 account: a system account of the host's /etc/passwd that no
# other test mails, so that its mbox holds only what the POP3 tests sent
POP3_USER=games
POP3_PASSWORD=pop3-test-password

# bats 1.8 cannot skip from setup_file: the reason goes to setup
setup_file() {
	local why
	if why=$(ns_cannot); then
		export NS_SKIP="cannot run a container here: $why"
		return 0
	fi
	ns_missing || return 1
	ns_install "$BATS_FILE_TMPDIR/ct" || return 1
	# shellcheck disable=SC2046 # one unit a word
	ns_dropin_config $(ns_unit_files 'mailslot-*.service') || return 1
	# Where the relay finds DNS and its mail servers: the file it shares
	# with mailslot-smtpd, which accepts and ignores these lines.
	cat >>"$NS_ETC/mailslot.conf" <<-EOF

		# tests/systemd.bats: the container's own DNS and MX port
		dns-server = 127.0.0.1:$DNS_PORT
		port = $MX_PORT
		connect-timeout = 5
		# the password file the POP3 units need (mailslot-pop3d(8))
		passwd = /etc/mailslot/passwd
	EOF
	# set as an administrator does, with the installed mailslot-passwd
	printf '%s\n' "$POP3_PASSWORD" | "$NS_SBIN/mailslot-passwd" "$NS_ETC/passwd" "$POP3_USER" || return 1
	cp "$NS_ETC/mailslot.conf" "$BATS_FILE_TMPDIR/mailslot.conf.good"
	# unique per run: the host name, and so the handler's default domain
	if ! ns_boot "mailslot-t$$" 2>"$BATS_FILE_TMPDIR/boot.err"; then
		ns_poweroff
		NS_SKIP="systemd-nspawn could not boot a container here: $(cat "$BATS_FILE_TMPDIR/boot.err")"
		export NS_SKIP
		return 0
	fi
	export NS_DIR NS_UNITDIR NS_UNITS NS_SBIN NS_ETC NS_QUEUE NS_SPOOL NS_NAME NS_NSPAWN NS_PID1
}

setup() {
	[ -z "${NS_SKIP:-}" ] || skip "$NS_SKIP"
}

# a test that changes the configuration sets RESTORE_CONFIG: the file is
# as setup_file left it for the next, whatever the test's outcome
teardown() {
	[ -z "${RESTORE_CONFIG:-}" ] || cp "$BATS_FILE_TMPDIR/mailslot.conf.good" "$NS_ETC/mailslot.conf"
}

teardown_file() {
	ns_poweroff
}

# The names of the installed units, as the manager knows them: a template
# gets an instance name.
loaded_names() {
	local u
	for u in $(ns_unit_files 'mailslot-*'); do
		case $u in
		*@.*) echo "${u%@.*}@probe.${u##*.}" ;;
		*) echo "$u" ;;
		esac
	done
}

# exposure_at_most UNIT LIMIT: systemd-analyze security's overall
# exposure level of the loaded UNIT is LIMIT or less
exposure_at_most() {
	local level
	run ns systemd-analyze security --no-pager "$1"
	assert_success
	level=$(sed -n 's/^.*Overall exposure level for .*: \([0-9.]*\) .*$/\1/p' <<<"$output")
	[ -n "$level" ] || fail "no exposure level for $1 in: $output"
	awk -v l="$level" -v m="$2" 'BEGIN { exit !(l <= m) }' || fail "$1: exposure $level > $2"
}

# pop3_client PORT [OPTION...]: tests/helpers/pop3_client.py run in the
# container as the POP3 account (the script comes on standard input)
pop3_client() {
	local port=$1
	shift
	ns /usr/bin/python3 - "$port" "$POP3_USER" "$POP3_PASSWORD" "$@" <"$BATS_TEST_DIRNAME/helpers/pop3_client.py"
}

# retrieve_and_delete PORT OUT [OPTION...]: the one message in the POP3
# account's mbox, as read from the disk (helpers/stored_message.py), and
# the octets a client RETRs through PORT, DELE and QUIT, into OUT.stored
# and OUT.retr; the client's lines in $output.
retrieve_and_delete() {
	local port=$1 out=$2
	shift 2
	python3 "$BATS_TEST_DIRNAME/helpers/stored_message.py" mbox "$NS_SPOOL" "$POP3_USER" "$out.stored" ||
		fail "the mbox of $POP3_USER does not hold one message"
	ns rm -rf /run/pop3-out
	ns mkdir /run/pop3-out
	run pop3_client "$port" --out /run/pop3-out --dele 1 "$@"
	ns cat /run/pop3-out/1 >"$out.retr" || true
}

# A message with TOKEN for a system account's mbox, through port 25.
send_local() {
	run ns_smtp "nobody@$NS_NAME" "$1"
	assert_success
	assert_output "sent 250"
}

@test "the installed sockets listen on port 25 and every installed unit loads, hardened as shipped" {
	local s names
	run ns_unit_files 'mailslot-*.socket'
	assert_success
	[ "${#lines[@]}" -ge 1 ] || fail "make install installed no socket unit"
	for s in "${lines[@]}"; do
		run ns systemctl is-active "$s"
		assert_output active
	done
	run ns ss -Hltn
	assert_output --regexp ':25 '
	mapfile -t names < <(loaded_names)
	run ns systemctl show -p LoadState -p LoadError "${names[@]}"
	assert_success
	refute_line --regexp '^LoadState=[^l]'
	refute_line --regexp '^LoadError=.'
	# The real manager parsed every line (no "Unknown key", "Ignoring")
	run ns journalctl -b --no-pager -o cat -u 'mailslot-*'
	refute_output --regexp '[Uu]nknown|[Ii]gnoring|[Ff]ailed to parse'
	# and the loaded services, drop-in included, keep exposure <= 2.0
	for s in "${names[@]}"; do
		[[ $s == *.service ]] || continue
		exposure_at_most "$s" 2.0
	done
}

@test "mail to a system account lands in its mbox, which belongs to it" {
	send_local local-token
	SPOOL=$NS_SPOOL assert_delivered nobody local-token
	run stat -c '%U %G %a' "$NS_SPOOL/nobody"
	assert_output "nobody mail 600"
}

# assert_session_bare EXE UNIT: what ns_session_status printed: one
# process, EXE, reads the client and holds nothing; the unit it runs in
# matches the regular expression UNIT (started by the installed units,
# not by anything else)
assert_session_bare() {
	assert_line "holders 1"
	assert_line "session CapPrm 0000000000000000"
	assert_line "session CapEff 0000000000000000"
	assert_line "session CapAmb 0000000000000000"
	assert_line "session NoNewPrivs 1"
	assert_line "session Seccomp 2"
	assert_line "session exe $1"
	assert_line --regexp "^session unit $2\$"
}

@test "the session process that reads the client holds nothing (capabilities, no_new_privs, seccomp)" {
	run ns_session_status
	assert_success
	assert_line "greeting 220"
	assert_session_bare /usr/local/sbin/mailslot-smtpd 'mailslot-smtpd[^ ]*\.service'
	assert_line "quit 221"
}

# Before mailslot-relay.path is started: nothing takes the entry away.
@test "mail to a remote domain is queued, readable by mail only" {
	run ns systemctl is-active mailslot-relay.path
	refute_output active
	run ns_smtp someone@remote.test queued-token
	assert_output "sent 250"
	run find "$NS_QUEUE/env" "$NS_QUEUE/msg" -type f
	assert_equal "${#lines[@]}" 2
	run stat -c '%U %a' "${lines[@]}"
	assert_output $'mail 600\nmail 600'
	run grep -l 'someone@remote.test' "$NS_QUEUE"/env/*
	assert_success
}

@test "mailslot-relay.path starts the relay's hardened service, which delivers the queue through its own DNS" {
	local pid i mnt1
	# the remote world, as transient units in the container
	run ns systemd-run --unit=mailslot-test-dns --collect /usr/sbin/dnsmasq --keep-in-foreground \
		--no-resolv --no-hosts --conf-file=/dev/null --listen-address=127.0.0.1 --bind-interfaces \
		--port="$DNS_PORT" --log-queries --log-facility=- --local=/test/ \
		--mx-host=remote.test,mx.remote.test,10 --host-record=mx.remote.test,$MX_ADDR
	assert_success
	# -w 2: each DATA waits 2 s, long enough to read the relay's /proc
	run ns systemd-run --unit=mailslot-test-sink --collect /usr/sbin/smtp-sink -u root -w 2 \
		-D /run/mailslot-test-sink/dump "$MX_ADDR:$MX_PORT" 16
	assert_success
	ns_wait_listen "127.0.0.1:$DNS_PORT" udp
	ns_wait_listen "127.0.0.1:$DNS_PORT" tcp
	ns_wait_listen "$MX_ADDR:$MX_PORT" tcp

	run ns systemctl start mailslot-relay.path
	assert_success
	# the rename of a new entry into env/ is the event
	run ns_smtp other@remote.test path-token
	assert_output "sent 250"
	for ((i = 0; i < 100; i++)); do
		pid=$(ns pgrep -o -x mailslot-relay) && break
		sleep 0.1
	done
	[ -n "$pid" ] || fail "no mailslot-relay process within 10 s of queueing"
	run ns cat "/proc/$pid/status" "/proc/$pid/cgroup"
	assert_line --regexp "^Uid:\s+$(id -u mail)\s+$(id -u mail)\s+$(id -u mail)\s+$(id -u mail)\$"
	assert_line --regexp '^CapPrm:\s+0000000000000000$'
	assert_line --regexp '^CapEff:\s+0000000000000000$'
	assert_line --regexp '^CapBnd:\s+0000000000000000$'
	assert_line --regexp '^NoNewPrivs:\s+1$'
	assert_line --regexp '^Seccomp:\s+2$'
	assert_line --regexp '/mailslot-relay\.service$'
	# ProtectSystem= and friends: a mount namespace of its own
	mnt1=$(ns readlink /proc/1/ns/mnt)
	run ns readlink "/proc/$pid/ns/mnt"
	assert_success
	refute_output "$mnt1"

	for ((i = 0; i < 200; i++)); do
		[ -z "$(ls -A "$NS_QUEUE/env")" ] &&
			[ "$(ns systemctl show -P ActiveState mailslot-relay.service)" = inactive ] && break
		sleep 0.1
	done
	run ls -A "$NS_QUEUE/env" "$NS_QUEUE/msg"
	assert_output --regexp $'^[^\n]*env:\n\n[^\n]*msg:$'
	run ns systemctl show -p Result -p ExecMainStatus mailslot-relay.service
	assert_line Result=success
	assert_line ExecMainStatus=0
	# both entries, the one queued before the path unit ran too
	run ns cat /run/mailslot-test-sink/dump
	assert_output --partial queued-token
	assert_output --partial path-token
	run ns journalctl --no-pager -o cat -u mailslot-test-dns
	assert_output --partial 'query[MX] remote.test from 127.0.0.1'
	run ns journalctl --no-pager -o cat -u mailslot-relay.service
	assert_output --regexp "to=<someone@remote.test> relay=mx.remote.test\\[$MX_ADDR\\]:$MX_PORT status=sent"
	assert_output --regexp "to=<other@remote.test> relay=mx.remote.test\\[$MX_ADDR\\]:$MX_PORT status=sent"
}

# per_source_cap: the connections one address may hold, as the installed
# units set it: --max-connections-per-source of the service's ExecStart=
# (an acceptor, Accept=no) or MaxConnectionsPerSource= of the socket
# (Accept=yes, where systemd enforces it).
per_source_cap() {
	local u n
	for u in $(ns_unit_files 'mailslot-smtpd*.service'); do
		n=$(ns_exec_start "$NS_UNITDIR/$u" | sed -n 's/.*--max-connections-per-source[ =]\([0-9][0-9]*\).*/\1/p')
		[ -z "$n" ] || { echo "$n"; return 0; }
	done
	for u in $(ns_unit_files 'mailslot-smtpd*.socket'); do
		n=$(sed -n 's/^MaxConnectionsPerSource=\([0-9][0-9]*\)$/\1/p' "$NS_UNITDIR/$u")
		[ -z "$n" ] || { echo "$n"; return 0; }
	done
	return 1
}

# stop_smtpd_services: stop the mailslot-smtpd services that are running,
# as an administrator does after editing the configuration, so that the
# next connection starts one that reads the file as it is now.  Under
# Accept=yes there is none between connections; a listener (Accept=no)
# may have read the file before it changed.  Sockets are left alone.
stop_smtpd_services() {
	local u
	for u in $(ns systemctl list-units --no-legend --plain --state=active,activating,deactivating \
		'mailslot-smtpd*.service' | awk '{ print $1 }'); do
		ns systemctl stop "$u"
	done
}

@test "one address holds at most the per-source cap of connections; the next is refused, the rest go on" {
	local cap
	cap=$(per_source_cap) || fail "the installed units set no per-source connection cap"
	run ns /usr/bin/python3 - "$cap" <<'EOF'
import socket, sys
cap = int(sys.argv[1])
def connect():
    c = socket.create_connection(("127.0.0.1", 25), timeout=20)
    return c, c.makefile("rb")
held = []
for i in range(cap):
    c, f = connect()
    if f.readline().startswith(b"220 "):
        held.append((c, f))
print("held %d" % len(held))
c, f = connect()
try:
    line = f.readline().decode("latin-1").strip()
except ConnectionResetError:
    line = ""
print("extra " + (line or "closed"))
ok = 0
for c, f in held:
    c.sendall(b"QUIT\r\n")
    ok += f.readline().startswith(b"221 ")
print("quit 221 %d" % ok)
EOF
	assert_success
	assert_line "held $cap"
	assert_line --regexp '^extra (421 4\.7\.0 |closed$)'
	assert_line "quit 221 $cap"
	send_local after-cap-token
	SPOOL=$NS_SPOOL assert_delivered nobody after-cap-token
}

# A bad line fails the service that reads it; the socket is not touched
# and serves again once the file is fixed.
@test "a bad configuration fails the connection, not the socket, and is collected; fixed, mail flows again" {
	local sockets=() s i before after
	mapfile -t sockets < <(ns_unit_files 'mailslot-*.socket')
	before=$(ns systemctl show -P InvocationID "${sockets[@]}")
	echo 'no-such-setting = 1' >>"$NS_ETC/mailslot.conf"
	stop_smtpd_services
	run ns_smtp "nobody@$NS_NAME" bad-config-token
	cp "$BATS_FILE_TMPDIR/mailslot.conf.good" "$NS_ETC/mailslot.conf"
	assert_output --regexp '^(closed|refused 4[0-9][0-9] )'
	run ns journalctl -b --no-pager -o cat -t mailslot-smtpd
	assert_output --partial "unknown setting 'no-such-setting'"
	for s in "${sockets[@]}"; do
		run ns systemctl is-active "$s"
		assert_output active
	done
	# collected: no failed unit left behind
	for ((i = 0; i < 50; i++)); do
		[ -z "$(ns systemctl list-units --all --no-legend --plain --state=failed 'mailslot-*')" ] && break
		sleep 0.1
	done
	run ns systemctl list-units --all --no-legend --plain --state=failed 'mailslot-*'
	assert_output ''

	stop_smtpd_services
	send_local fixed-config-token
	SPOOL=$NS_SPOOL assert_delivered nobody fixed-config-token
	run grep -c bad-config-token "$NS_SPOOL/nobody"
	assert_output 0
	after=$(ns systemctl show -P InvocationID "${sockets[@]}")
	assert_equal "$after" "$before"
}

# --- POP3: the Accept=no sockets and their acceptors (mailslot-pop3d
# --listen), as shipped (they read /etc/mailslot/mailslot.conf
# themselves: no drop-in)

@test "the POP3 sockets listen on ports 110 and 995; their units load cleanly, exposure <= 2.0" {
	local u units=(mailslot-pop3.socket mailslot-pop3s.socket mailslot-pop3.service mailslot-pop3s.service)
	for u in mailslot-pop3.socket mailslot-pop3s.socket; do
		run ns systemctl is-active "$u"
		assert_output active
	done
	run ns ss -Hltn
	assert_output --regexp ':110 '
	assert_output --regexp ':995 '
	run ns systemctl show -p LoadState -p LoadError "${units[@]}"
	assert_success
	assert_equal "$(grep -c '^LoadState=loaded$' <<<"$output")" "${#units[@]}"
	refute_line --regexp '^LoadError=.'
	# the manager's own checker finds nothing to say (man pages are not
	# in the container)
	run ns systemd-analyze verify --man=no "${units[@]}"
	assert_success
	assert_output ''
	run ns journalctl -b --no-pager -o cat -u 'mailslot-pop3*'
	refute_output --regexp '[Uu]nknown|[Ii]gnoring|[Ff]ailed to parse'
	exposure_at_most mailslot-pop3.service 2.0
	exposure_at_most mailslot-pop3s.service 2.0
}

@test "POP3 on port 110: poplib RETRs the message port 25 delivered byte-exact; DELE and QUIT remove it" {
	run ns_smtp "$POP3_USER@$NS_NAME" pop3-token
	assert_output "sent 250"
	retrieve_and_delete 110 "$BATS_TEST_TMPDIR/m"
	assert_success
	assert_line --regexp '^stat 1 [0-9]+$'
	assert_line "sizes ok"
	assert_line --regexp '^\+OK '
	grep -q pop3-token "$BATS_TEST_TMPDIR/m.retr" || fail "no pop3-token in what RETR gave"
	cmp "$BATS_TEST_TMPDIR/m.stored" "$BATS_TEST_TMPDIR/m.retr" || fail "RETR differs from the stored message"
	# removed at QUIT: the mbox is empty, and so is the next session
	run stat -c '%s %U' "$NS_SPOOL/$POP3_USER"
	assert_output "0 $POP3_USER"
	run pop3_client 110
	assert_success
	assert_line "stat 0 0"
	run ns journalctl --no-pager -o cat -u mailslot-pop3.service
	assert_output --regexp "logout: user=$POP3_USER peer=127\.0\.0\.1 retrieved=1 .* deleted=1 "
}

# assert_pop3_session_bare EXE SOCKET: assert_session_bare for a POP3
# login, the process one in SOCKET's service (its acceptor's session)
assert_pop3_session_bare() {
	assert_success
	assert_line "greeting +OK"
	assert_line "login +OK"
	assert_session_bare "$1" "${2%.socket}\\.service"
	assert_line "quit +OK"
}

@test "the POP3 session process that reads the client holds nothing, logged in (capabilities, no_new_privs, seccomp)" {
	run ns_session_status 110 "$POP3_USER" "$POP3_PASSWORD"
	assert_pop3_session_bare /usr/local/sbin/mailslot-pop3d mailslot-pop3.socket
}

# The units take the certificate from the configuration file, as
# mailslot-pop3d(8) says; mailslot-smtpd reads the same file, so the lines
# are there for this test only.
@test "with tls-cert in the configuration: POP3S on port 995 RETRs byte-exact from a session that holds nothing; STLS on 110 logs in" {
	local d=$BATS_TEST_TMPDIR/tls
	tls_ca "$d"
	tls_cert "$d" pop3 "DNS:$NS_NAME,IP:127.0.0.1"
	install -m 0600 "$d/pop3.pem" "$NS_ETC/test-pop3.pem"
	install -m 0600 "$d/pop3.key" "$NS_ETC/test-pop3.key"
	ns tee /run/test-ca.pem <"$d/ca.pem" >/dev/null
	run ns_smtp "$POP3_USER@$NS_NAME" pop3s-token
	assert_output "sent 250"
	RESTORE_CONFIG=1
	printf 'tls-cert = /etc/mailslot/test-pop3.pem\ntls-key = /etc/mailslot/test-pop3.key\n' >>"$NS_ETC/mailslot.conf"
	retrieve_and_delete 995 "$BATS_TEST_TMPDIR/m" --ssl /run/test-ca.pem
	assert_success
	assert_line --regexp '^stat 1 [0-9]+$'
	assert_line "sizes ok"
	assert_line --regexp '^\+OK '
	grep -q pop3s-token "$BATS_TEST_TMPDIR/m.retr" || fail "no pop3s-token in what RETR gave"
	cmp "$BATS_TEST_TMPDIR/m.stored" "$BATS_TEST_TMPDIR/m.retr" || fail "RETR differs from the stored message"
	run stat -c '%s' "$NS_SPOOL/$POP3_USER"
	assert_output 0
	run pop3_client 110 --stls /run/test-ca.pem
	assert_success
	assert_line "stat 0 0"
	# the session that speaks TLS (the OpenSSL build) holds nothing either
	run ns_session_status 995 "$POP3_USER" "$POP3_PASSWORD" /run/test-ca.pem
	assert_pop3_session_bare /usr/local/sbin/mailslot-pop3d-tls mailslot-pop3s.socket
	run ns journalctl --no-pager -o cat -u mailslot-pop3s.service -u mailslot-pop3.service
	assert_output --regexp "login: user=$POP3_USER peer=127\.0\.0\.1 messages=1 .* tls=\"TLSv1\.3 "
	assert_output --regexp "login: user=$POP3_USER peer=127\.0\.0\.1 messages=0 .* tls=\"TLSv1\.3 "
}

# Last: what every unit of this file ran left no report of a sanitizer (the
# ASan+UBSan build of make test-asan) and no crash in the journal.
@test "no mailslot process crashed or reported a sanitizer error under the units" {
	run ns journalctl -b --no-pager -o cat
	assert_success
	refute_output --regexp 'Sanitizer|runtime error:'
	refute_output --regexp 'mailslot[^ ]*\.service: Main process exited, code=(killed|dumped)'
}
