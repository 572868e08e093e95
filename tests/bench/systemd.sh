#!/usr/bin/env bash
# tests/bench/systemd.sh - the units `make install` installs, under a real
# systemd, against the same binary under systemd-socket-activate.
#
# A container boots the machine's systemd as PID 1 (tests/helpers/
# nspawn.bash: the recipe of the systemd issue, a private network with
# loopback only).  In it, with the same binary, configuration
# (/etc/mailslot/mailslot.conf, domain bench.example) and mbox
# (/var/spool/mail/nobody, a system account), side by side:
#   units  the installed socket, as shipped, on port 25
#   examples/systemd's socket and service (the per-connection Accept=yes
#          pair), when make install put one in the examples: on 127.0.0.1
#          from port 2527, as they are otherwise
#   ssa    systemd-socket-activate --inetd -a on 127.0.0.1:2525, started
#          as root like the units (what `make bench` measures)
# measured, as medians over ROUNDS rounds that alternate the order:
#   - ms per one-message session: tests/bench/smtpclient latency, connect
#     to 221 with a MSG_SIZE message, SESSIONS sessions a round;
#   - msg/s with CONCURRENCY clients: Postfix's smtp-source -s CONCURRENCY
#     -m MESSAGES; every run is checked against the messages that reached
#     the mbox.
# and the POP3 units the same way (the installed mailslot-pop3.socket,
# Accept=no and the mailslot-pop3d --listen acceptor, on port 110; the same binary under systemd-socket-activate
# on 127.0.0.1:2110; with VARIANTS=1 a copy of the units without their
# hardening lines on 127.0.0.1:2700):
#   - ms per POP3 session: tests/bench/pop3bench.py login, connect, USER
#     and PASS, STAT, QUIT, POP3_SESSIONS sessions a round, as a system
#     account (games) whose password mailslot-passwd set and whose mbox
#     holds one MSG_SIZE message.
# Then, for the issue's "measure each hardening line", copies of each of
# those socket and service pairs on ports of their own with groups of
# hardening lines taken out of the service (VARIANTS=0 skips them), their
# ms per session over VARIANT_SESSIONS sessions a round, and the exposure
# systemd-analyze security gives each as loaded.
#
# Environment: ROUNDS (3), SESSIONS (100), MESSAGES (500), CONCURRENCY
# (20), VARIANTS (1), VARIANT_SESSIONS (30), POP3_SESSIONS (100),
# BENCH_BUILD (tests/bench/
# build), BENCH_KEEP=1 keeps the work directory, RESULTS_FILE also gets
# the table.
#
# Exit status: 0 measured (a missed target is reported, not an error);
# 1 a step failed (install, boot, SMTP error, lost messages); 2 this
# machine cannot run the container or lacks a tool.
# shellcheck disable=SC2317 # functions run from traps
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

BENCH=bench-systemd
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
export NS_REPO=$top
# shellcheck source=tests/helpers/nspawn.bash
. "$top/tests/helpers/nspawn.bash"

ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-100}
MESSAGES=${MESSAGES:-500}
CONCURRENCY=${CONCURRENCY:-20}
VARIANTS=${VARIANTS:-1}
VARIANT_SESSIONS=${VARIANT_SESSIONS:-30}
POP3_SESSIONS=${POP3_SESSIONS:-100}
MSG_SIZE=2048
BUILD=${BENCH_BUILD:-$here/build}
CC=${CC:-cc}

DOMAIN=bench.example
RCPT=nobody@$DOMAIN
SENDER=bench-sender@$DOMAIN
SSA_PORT=2525
CLIENT=/opt/mailslot-bench/smtpclient # the build directory, in the container
POP3_USER=games # a system account no SMTP row mails
POP3_PASSWORD=bench-pop3-password
POP3_SSA_PORT=2110
POP3_BARE_PORT=2700

if why=$(ns_cannot); then
	say "bench-systemd: cannot run a container here: $why"
	exit 2
fi
ns_missing || exit 2
[ -x /usr/sbin/smtp-source ] || { say "bench-systemd: missing smtp-source; run: sh tests/install-deps.sh bench"; exit 2; }

bench_build "$BUILD/smtpclient" "$here/smtpclient.c"
[ -x "$top/mailslot-smtpd" ] || fail "no $top/mailslot-smtpd: run make first"

bench_workdir
bench_cleanup() { ns_poweroff; }

ns_install "$WORK" || exit 1
# shellcheck disable=SC2046 # one unit a word
ns_dropin_config $(ns_unit_files 'mailslot-smtpd*.service') || exit 1
printf '\n# tests/bench/systemd.sh\ndomain = %s\nhostname = %s\n' "$DOMAIN" "$DOMAIN" >>"$NS_ETC/mailslot.conf"
# the POP3 units need a password file (mailslot-pop3d(8))
printf 'passwd = /etc/mailslot/passwd\n' >>"$NS_ETC/mailslot.conf"
printf '%s\n' "$POP3_PASSWORD" | "$NS_SBIN/mailslot-passwd" "$NS_ETC/passwd" "$POP3_USER" ||
	fail "mailslot-passwd could not set $POP3_USER's password"
ns_boot "mailslot-bench-$$" --bind-ro="$BUILD:/opt/mailslot-bench" || exit 1

mapfile -t SOCKETS < <(ns_unit_files 'mailslot-smtpd*.socket')
[ "${#SOCKETS[@]}" -ge 1 ] || fail "make install installed no mailslot-smtpd socket unit"
mapfile -t SERVICES < <(ns_unit_files 'mailslot-smtpd*.service')
for s in "${SOCKETS[@]}"; do
	[ "$(ns systemctl is-active "$s")" = active ] || fail "$s is not active in the container"
done
UNITS_PORT=25
for ((i = 0; i < 100; i++)); do
	ns ss -Hltn | awk -v p=":$UNITS_PORT" 'substr($4, length($4) - length(p) + 1) == p { f = 1 } END { exit !f }' && break
	sleep 0.1
done
[ "$i" -lt 100 ] || fail "nothing listens on port $UNITS_PORT in the container"
EXEC=/usr/local/sbin/mailslot-smtpd # the program the units run

ns systemd-run --quiet --unit=mailslot-bench-ssa --collect systemd-socket-activate --inetd -a \
	-l "127.0.0.1:$SSA_PORT" "$EXEC" -c "$NS_CONF" || fail "cannot start systemd-socket-activate"
ns_wait_listen "127.0.0.1:$SSA_PORT" || exit 1
ns systemd-run --quiet --unit=mailslot-bench-pop3-ssa --collect systemd-socket-activate --inetd -a \
	-l "127.0.0.1:$POP3_SSA_PORT" /usr/local/sbin/mailslot-pop3d -c "$NS_CONF" ||
	fail "cannot start systemd-socket-activate for mailslot-pop3d"
ns_wait_listen "127.0.0.1:$POP3_SSA_PORT" || exit 1

MBOX=$NS_SPOOL/nobody
count() { if [ -f "$MBOX" ]; then grep -c '^From ' "$MBOX" || true; else echo 0; fi; }

# drain PORT: until no connection to PORT is open any more (10 s at most)
drain() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -z "$(ns ss -Htn state established state syn-recv state close-wait state fin-wait-1 \
			state fin-wait-2 state last-ack "( sport = :$1 )")" ] && return 0
		sleep 0.1
	done
	say "bench-systemd: warning: connections to port $1 still open after 10 s"
}

declare -A R
add() { R[$1]="${R[$1]:-} $2"; }

# latency KEY PORT N: N one-message sessions; the median in ms
latency() {
	local before out
	before=$(count)
	out=$(ns "$CLIENT" -f "$SENDER" -t "$RCPT" -s "$MSG_SIZE" latency 127.0.0.1 "$2" "$3" 2>"$WORK/client.err") ||
		fail "$1: smtpclient: $(tail -1 "$WORK/client.err")"
	drain "$2"
	[ $(($(count) - before)) = "$3" ] || fail "$1: $(($(count) - before)) of $3 messages reached $MBOX"
	out=${out#median_ms=}
	add "lat,$1" "${out%% *}"
}

# conc KEY PORT: MESSAGES messages from CONCURRENCY clients; msg/s
conc() {
	local before t0 t1 rc=0
	before=$(count)
	t0=$EPOCHREALTIME
	ns timeout 900 /usr/sbin/smtp-source -s "$CONCURRENCY" -m "$MESSAGES" -l "$MSG_SIZE" -f "$SENDER" \
		-t "$RCPT" -M "$DOMAIN" "127.0.0.1:$2" >"$WORK/smtp-source.out" 2>&1 || rc=$?
	t1=$EPOCHREALTIME
	drain "$2"
	[ "$rc" = 0 ] || fail "$1: smtp-source exited $rc: $(tail -1 "$WORK/smtp-source.out")"
	[ $(($(count) - before)) = "$MESSAGES" ] ||
		fail "$1: smtp-source delivered $(($(count) - before)) of $MESSAGES messages to $MBOX"
	add "conc,$1" "$(awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')"
}

# pop3_latency KEY PORT N: N POP3 sessions (connect, USER/PASS, STAT,
# QUIT); the median in ms.  Each must find the one message.
pop3_latency() {
	local out
	out=$(ns /usr/bin/python3 - login "$2" "$POP3_USER" "$POP3_PASSWORD" "$3" \
		<"$here/pop3bench.py" 2>"$WORK/pop3.err") || fail "$1: pop3bench: $(tail -1 <<<"$out") $(tail -1 "$WORK/pop3.err")"
	[ "$(awk '$2 != 1' <<<"$out" | wc -l)" = 0 ] || fail "$1: a POP3 session did not find the one message"
	drain "$2"
	# shellcheck disable=SC2046 # one sample a word
	add "pop3,$1" "$(median $(awk '{ print $1 }' <<<"$out"))"
}

# hash_latency: what each login pays for the password check, whatever
# starts the process: crypt(3) on the POP3 account's hash, 20 times; the
# median in ms
hash_latency() {
	local ms
	ms=$(python3 -W ignore - "$POP3_PASSWORD" "$NS_ETC/passwd" <<'EOF'
import crypt, statistics, sys, time
with open(sys.argv[2]) as f:
    h = f.readline().split(":")[1].strip()
times = []
for _ in range(20):
    t0 = time.perf_counter()
    assert crypt.crypt(sys.argv[1], h) == h
    times.append((time.perf_counter() - t0) * 1000)
print("%.3f" % statistics.median(times))
EOF
) || fail "cannot time the password check"
	add hash "$ms"
}

# --- unit copies: a socket and its service(s) renamed, on a port of their
# own, with groups of [Service] lines taken out.
# VARIANT_KEYS[name]: the keys taken out ("*": all but what runs the program)
declare -A VARIANT_KEYS=(
	[as-is]=""
	[-network]="PrivateNetwork IPAddressDeny IPAddressAllow RestrictAddressFamilies"
	[-PrivateIPC]="PrivateIPC"
	[-mountns]="ProtectSystem ReadWritePaths ReadOnlyPaths InaccessiblePaths ProtectHome PrivateTmp PrivateMounts
		PrivateDevices ProtectProc ProcSubset ProtectKernelTunables ProtectKernelModules ProtectKernelLogs
		ProtectControlGroups ProtectClock ProtectHostname PrivateIPC DevicePolicy"
	[-mountns-network]="ProtectSystem ReadWritePaths ReadOnlyPaths InaccessiblePaths ProtectHome PrivateTmp
		PrivateMounts PrivateDevices ProtectProc ProcSubset ProtectKernelTunables ProtectKernelModules
		ProtectKernelLogs ProtectControlGroups ProtectClock ProtectHostname PrivateIPC DevicePolicy
		PrivateNetwork IPAddressDeny IPAddressAllow RestrictAddressFamilies"
	[-seccomp]="SystemCallFilter SystemCallArchitectures SystemCallErrorNumber"
	[none]="*"
)
VARIANT_ORDER=(as-is -network -PrivateIPC -seccomp -mountns -mountns-network none)

# copy_units DIR BASE NEW PORT KEYS: DIR/BASE.socket and DIR/BASE[@].service
# as NEW.socket and NEW[@].service in the container's /run/systemd/system,
# listening on 127.0.0.1:PORT only, without the [Service] keys KEYS; unit
# names are renamed in the files too, the program's path is not.  An
# ExecStart= without a configuration file gets -c /etc/mailslot/mailslot.conf.
copy_units() {
	local dir=$1 base=$2 new=$3 port=$4 keys=$5 f
	local rename=(sed "s/$base\(@\{0,1\}\.\(socket\|service\)\)/$new\1/g")
	"${rename[@]}" "$dir/$base.socket" |
		awk -v p="127.0.0.1:$port" '/^ListenStream=/ { if (!done) print "ListenStream=" p; done = 1; next }
			/^BindIPv6Only=/ { next } { print }' |
		ns tee "/run/systemd/system/$new.socket" >/dev/null
	for f in "$dir/$base.service" "$dir/$base@.service"; do
		[ -e "$f" ] || continue
		f=${f##*/}
		"${rename[@]}" "$dir/$f" |
			awk -v keys="$keys" -v conf="$NS_CONF" '
				BEGIN { n = split(keys, k, /[ \t\n]+/); for (i = 1; i <= n; i++) drop[k[i]] = 1 }
				/^\[/ { sect = $0 }
				/^ExecStart=/ { exec = 1 }
				exec && /\\$/ { print; if ($0 ~ / (-c|--config) /) cfg = 1; next }
				exec { exec = 0; if ($0 !~ / (-c|--config) / && !cfg) $0 = $0 " -c " conf }
				sect == "[Service]" && /^[A-Za-z]+=/ {
					key = substr($0, 1, index($0, "=") - 1)
					if (keys == "*" && key !~ /^(Type|ExecStart|Standard(Input|Output|Error)|User|Group|UMask|RuntimeMaxSec|TasksMax|Environment)$/) next
					if (key in drop) next
				}
				{ print }' |
			ns tee "/run/systemd/system/${f/$base/$new}" >/dev/null
	done
}

# exposure UNIT...: systemd-analyze security's overall level of the loaded
# service(s) of these sockets' families (a template with an instance name)
exposure() {
	local u
	for u; do
		u=${u%.socket}
		if ns test -e "/run/systemd/system/$u@.service" -o -e "/etc/systemd/system/$u@.service"; then
			u=$u@probe
		fi
		ns systemd-analyze security --no-pager "$u.service" 2>/dev/null |
			sed -n 's/^.*Overall exposure level for .*: \([0-9.]*\) .*$/\1/p'
	done | head -1
}

# The families measured: the installed units, already listening on port
# 25, and the per-connection pair of examples/systemd when make install
# put one in the examples.
declare -A FAM_DIR FAM_BASE FAM_PORT FAM_LABEL FAM_SOCKET
FAMILIES=(units)
FAM_DIR[units]=$NS_UNITDIR
FAM_BASE[units]=mailslot-smtpd
FAM_PORT[units]=$UNITS_PORT
FAM_SOCKET[units]=${SOCKETS[0]}
FAM_LABEL[units]="installed: ${SOCKETS[*]} + ${SERVICES[*]}"
EXAMPLES_DIR=$NS_DIR/root/usr/local/share/doc/mailslot/examples/systemd
EXAMPLE_PORT=2527
for f in "$EXAMPLES_DIR"/*.socket; do
	[ -e "$f" ] || continue
	base=${f##*/}
	base=${base%.socket}
	FAMILIES+=("$base")
	FAM_DIR[$base]=$EXAMPLES_DIR
	FAM_BASE[$base]=$base
	FAM_PORT[$base]=$EXAMPLE_PORT
	FAM_SOCKET[$base]=$base.socket
	FAM_LABEL[$base]="examples/systemd: $base.socket"
	for g in "$EXAMPLES_DIR/$base.service" "$EXAMPLES_DIR/$base@.service"; do
		[ -e "$g" ] && FAM_LABEL[$base]+=" + ${g##*/}"
	done
	copy_units "$EXAMPLES_DIR" "$base" "$base" "$EXAMPLE_PORT" ""
	EXAMPLE_PORT=$((EXAMPLE_PORT + 1))
done

declare -A VPORT VSOCK
if [ "$VARIANTS" = 1 ]; then
	port=2600
	for fam in "${FAMILIES[@]}"; do
		for v in "${VARIANT_ORDER[@]}"; do
			port=$((port + 1))
			n=msb-$fam$v
			[ "$v" != as-is ] || n=msb-$fam-as-is
			copy_units "${FAM_DIR[$fam]}" "${FAM_BASE[$fam]}" "$n" "$port" "${VARIANT_KEYS[$v]}"
			VPORT[$fam,$v]=$port
			VSOCK[$fam,$v]=$n.socket
		done
	done
fi
# the POP3 units with only what runs the program kept
POP3_SIDES=(pop3-units pop3-ssa)
declare -A POP3_PORT=([pop3-units]=110 [pop3-ssa]=$POP3_SSA_PORT)
if [ "$VARIANTS" = 1 ]; then
	copy_units "$NS_UNITDIR" mailslot-pop3 msb-pop3-none "$POP3_BARE_PORT" "${VARIANT_KEYS[none]}"
	POP3_SIDES+=(pop3-none)
	POP3_PORT[pop3-none]=$POP3_BARE_PORT
fi
ns systemctl daemon-reload
for fam in "${FAMILIES[@]}"; do
	[ "$fam" = units ] && continue
	ns systemctl start "${FAM_SOCKET[$fam]}" || fail "cannot start ${FAM_SOCKET[$fam]}"
	ns_wait_listen "127.0.0.1:${FAM_PORT[$fam]}" || exit 1
done
declare -A EXPOSURE
for fam in "${FAMILIES[@]}"; do
	EXPOSURE[$fam]=$(exposure "${FAM_SOCKET[$fam]}")
done
declare -A POP3_EXPOSURE=([pop3-units]=$(exposure mailslot-pop3.socket) [pop3-ssa]=-)
if [ "$VARIANTS" = 1 ]; then
	ns systemctl start msb-pop3-none.socket || fail "cannot start msb-pop3-none.socket"
	ns_wait_listen "127.0.0.1:$POP3_BARE_PORT" || exit 1
	POP3_EXPOSURE[pop3-none]=$(exposure msb-pop3-none.socket)
	for key in "${!VSOCK[@]}"; do
		ns systemctl start "${VSOCK[$key]}" || fail "cannot start ${VSOCK[$key]}"
		ns_wait_listen "127.0.0.1:${VPORT[$key]}" || exit 1
		EXPOSURE[v,$key]=$(exposure "${VSOCK[$key]}")
	done
fi

SIDES=("${FAMILIES[@]}" ssa)
declare -A PORT_OF
for fam in "${FAMILIES[@]}"; do PORT_OF[$fam]=${FAM_PORT[$fam]}; done
PORT_OF[ssa]=$SSA_PORT

say "bench-systemd: ${SIDES[*]} on ports$(for s in "${SIDES[@]}"; do printf ' %s' "${PORT_OF[$s]}"; done);" \
	"rounds=$ROUNDS sessions=$SESSIONS messages=$MESSAGES concurrency=$CONCURRENCY work=$WORK"
# warm-up, and a first check that each delivers
for side in "${SIDES[@]}"; do
	latency warm "${PORT_OF[$side]}" 5
done
# the POP3 account's one message, through the installed SMTP socket
ns "$CLIENT" -f "$SENDER" -t "$POP3_USER@$DOMAIN" -s "$MSG_SIZE" latency 127.0.0.1 "$UNITS_PORT" 1 \
	>/dev/null 2>"$WORK/client.err" || fail "pop3: smtpclient: $(tail -1 "$WORK/client.err")"
for side in "${POP3_SIDES[@]}"; do
	pop3_latency warm "${POP3_PORT[$side]}" 5
done

for r in $(seq "$ROUNDS"); do
	say "bench-systemd: round $r/$ROUNDS"
	# alternate the order so that drift hits every side alike
	order=("${SIDES[@]}")
	[ $((r % 2)) = 1 ] || mapfile -t order < <(printf '%s\n' "${SIDES[@]}" | tac)
	for side in "${order[@]}"; do
		latency "$side" "${PORT_OF[$side]}" "$SESSIONS"
		conc "$side" "${PORT_OF[$side]}"
	done
	if [ "$VARIANTS" = 1 ]; then
		mapfile -t keys < <(printf '%s\n' "${!VPORT[@]}" | sort)
		[ $((r % 2)) = 1 ] || mapfile -t keys < <(printf '%s\n' "${keys[@]}" | tac)
		for key in "${keys[@]}"; do
			latency "v,$key" "${VPORT[$key]}" "$VARIANT_SESSIONS"
		done
	fi
	order=("${POP3_SIDES[@]}")
	[ $((r % 2)) = 1 ] || mapfile -t order < <(printf '%s\n' "${POP3_SIDES[@]}" | tac)
	for side in "${order[@]}"; do
		pop3_latency "$side" "${POP3_PORT[$side]}" "$POP3_SESSIONS"
	done
	hash_latency
done

# --- report
m() { # m KEY: the median of KEY's samples
	# shellcheck disable=SC2086
	median ${R[$1]:-}
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf (b > 0 ? "%.2fx" : "n/a"), a / b }'; }
verdict() { awk -v a="$1" -v b="$2" -v k="$3" -v l="$4" 'BEGIN {
	r = (b > 0) ? a / b : 0
	print ((k == "le") ? r <= l : r >= l) ? "ok" : "MISSED" }'; }
lat_s=$(m lat,ssa) conc_s=$(m conc,ssa)
{
	echo
	echo "mailslot bench-systemd: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
		"$(systemctl --version | head -1 | cut -d' ' -f1-2) as PID 1 in systemd-nspawn; medians of $ROUNDS rounds;" \
		"$MSG_SIZE B messages to one mbox; latency over $SESSIONS sessions a round," \
		"$CONCURRENCY clients x $MESSAGES messages (smtp-source)"
	echo
	printf '| %-78s | %8s | %10s | %8s | %10s | %8s |\n' path exposure "ms/session" "vs ssa" "msg/s" "vs ssa"
	printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..80})" ---------- ------------ ---------- ------------ ----------
	for side in "${SIDES[@]}"; do
		if [ "$side" = ssa ]; then
			label="systemd-socket-activate --inetd -a, same binary" exp=-
		else
			label=${FAM_LABEL[$side]} exp=${EXPOSURE[$side]:--}
		fi
		printf '| %-78s | %8s | %10.2f | %8s | %10.1f | %8s |\n' "$label" "$exp" \
			"$(m "lat,$side")" "$(ratio "$(m "lat,$side")" "$lat_s")" \
			"$(m "conc,$side")" "$(ratio "$(m "conc,$side")" "$conc_s")"
	done
	echo
	echo "targets for the installed units against systemd-socket-activate:" \
		"ms/session <= 1.5x: $(verdict "$(m lat,units)" "$lat_s" le 1.5);" \
		"msg/s >= 0.9x: $(verdict "$(m conc,units)" "$conc_s" ge 0.9)"
	if [ "$VARIANTS" = 1 ]; then
		echo
		echo "copies on ports of their own, [Service] lines taken out (ms/session, $VARIANT_SESSIONS sessions a round; exposure):"
		echo
		printf '| %-18s |' "service"
		for fam in "${FAMILIES[@]}"; do printf ' %-26s |' "$fam"; done
		echo
		printf '|%s|' "$(printf -- '-%.0s' {1..20})"
		for fam in "${FAMILIES[@]}"; do printf '%s|' "$(printf -- '-%.0s' {1..28})"; done
		echo
		for v in "${VARIANT_ORDER[@]}"; do
			printf '| %-18s |' "$v"
			for fam in "${FAMILIES[@]}"; do
				printf ' %10.2f ms %-12s |' "$(m "lat,v,$fam,$v")" "(${EXPOSURE[v,$fam,$v]:--})"
			done
			echo
		done
		echo
		for v in "${VARIANT_ORDER[@]}"; do
			case $v in
			as-is) echo "  as-is: the service unchanged (its own port)" ;;
			none) echo "  none: only Type, ExecStart, Standard*, User, Group, UMask, RuntimeMaxSec, TasksMax, Environment kept" ;;
			*) echo "  $v: without $(tr -s ' \t\n' ' ' <<<"${VARIANT_KEYS[$v]}")" ;;
			esac
		done
	fi
	echo
	echo "POP3 (connect, USER/PASS against mailslot-passwd's yescrypt hash, STAT of one $MSG_SIZE B message," \
		"QUIT; $POP3_SESSIONS sessions a round, the median of each round's median):"
	echo
	printf '| %-78s | %8s | %10s | %8s |\n' path exposure "ms/session" "vs ssa"
	printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..80})" ---------- ------------ ----------
	for side in "${POP3_SIDES[@]}"; do
		case $side in
		pop3-units) label="installed: mailslot-pop3.socket + mailslot-pop3.service (Accept=no, the acceptor)" ;;
		pop3-ssa) label="systemd-socket-activate --inetd -a, same binary" ;;
		pop3-none) label="copy of the installed pair without its hardening lines (as 'none' above)" ;;
		esac
		printf '| %-78s | %8s | %10.2f | %8s |\n' "$label" "${POP3_EXPOSURE[$side]:--}" \
			"$(m "pop3,$side")" "$(ratio "$(m "pop3,$side")" "$(m pop3,pop3-ssa)")"
	done
	echo
	echo "of which the check of the yescrypt hash alone (crypt(3) in the same rounds, 20 a round): $(m hash) ms"
	echo
	echo "samples:"
	for side in "${SIDES[@]}"; do
		echo "  $side: ms/session${R[lat,$side]}; msg/s${R[conc,$side]}"
	done
	for side in "${POP3_SIDES[@]}"; do
		echo "  $side: ms/session${R[pop3,$side]}"
	done
	echo "  password check: ms${R[hash]}"
} | tee ${RESULTS_FILE:+"$RESULTS_FILE"}
