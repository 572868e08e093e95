#!/usr/bin/env bash
# tests/bench/systemd.sh - the units `make install` installs, under a real
# systemd, against the same binary under systemd-socket-activate.
#
# A container boots the machine's systemd as PID 1 (tests/helpers/
# nspawn.bash: the recipe of the systemd issue, a private network with
# loopback only).  In it, with the same binary, configuration
# (/etc/mailslot/mailslot.conf, given with -c by a drop-in, domain
# bench.example) and mbox (/var/spool/mail/nobody, a system account):
#   units  the installed socket on port 25, as shipped (Accept=yes with a
#          service instance per connection, or whatever the units are now)
#   ssa    systemd-socket-activate --inetd -a on 127.0.0.1:2525, started
#          as root like the units (what `make bench` measures)
# measured, as medians over ROUNDS rounds that alternate the order:
#   - ms per one-message session: tests/bench/smtpclient latency, connect
#     to 221 with a MSG_SIZE message, SESSIONS sessions a round;
#   - msg/s with CONCURRENCY clients: Postfix's smtp-source -s CONCURRENCY
#     -m MESSAGES; every run is checked against the messages that reached
#     the mbox.
# Then, for the issue's "measure each hardening line", copies of the
# shipped socket and service on ports of their own with groups of
# hardening lines taken out of the service (VARIANTS=0 skips them), and
# their ms per session over VARIANT_SESSIONS sessions a round.
#
# Environment: ROUNDS (3), SESSIONS (100), MESSAGES (500), CONCURRENCY
# (20), VARIANTS (1), VARIANT_SESSIONS (30), BENCH_BUILD (tests/bench/
# build), BENCH_KEEP=1 keeps the work directory, RESULTS_FILE also gets
# the table.
#
# Exit status: 0 measured (a missed target is reported, not an error);
# 1 a step failed (install, boot, SMTP error, lost messages); 2 this
# machine cannot run the container or lacks a tool.
# shellcheck disable=SC2317 # functions run from traps
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export NS_REPO=$top
# shellcheck source=tests/helpers/nspawn.bash
. "$top/tests/helpers/nspawn.bash"

ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-100}
MESSAGES=${MESSAGES:-500}
CONCURRENCY=${CONCURRENCY:-20}
VARIANTS=${VARIANTS:-1}
VARIANT_SESSIONS=${VARIANT_SESSIONS:-30}
MSG_SIZE=2048
BUILD=${BENCH_BUILD:-$here/build}
CC=${CC:-cc}

DOMAIN=bench.example
RCPT=nobody@$DOMAIN
SENDER=bench-sender@$DOMAIN
SSA_PORT=2525
CLIENT=/opt/mailslot-bench/smtpclient # the build directory, in the container

say() { printf '%s\n' "$*" >&2; }
fail() { say "bench-systemd: fatal: $*"; exit 1; }

if why=$(ns_cannot); then
	say "bench-systemd: cannot run a container here: $why"
	exit 2
fi
ns_missing || exit 2
[ -x /usr/sbin/smtp-source ] || { say "bench-systemd: missing smtp-source; run: sh tests/install-deps.sh bench"; exit 2; }

mkdir -p "$BUILD"
if [ ! -x "$BUILD/smtpclient" ] || [ "$here/smtpclient.c" -nt "$BUILD/smtpclient" ]; then
	"$CC" -std=c17 -O2 -Wall -Wextra -o "$BUILD/smtpclient" "$here/smtpclient.c" ||
		fail "cannot build $BUILD/smtpclient"
fi
[ -x "$top/mailslot-smtpd" ] || fail "no $top/mailslot-smtpd: run make first"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailslot-bench-systemd.XXXXXX")
cleanup() {
	ns_poweroff
	if [ "${BENCH_KEEP:-0}" = 1 ]; then say "bench-systemd: work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ns_install "$WORK" || exit 1
# shellcheck disable=SC2046 # one unit a word
ns_dropin_config $(ns_unit_files 'mailslot-smtpd*.service') || exit 1
printf '\n# tests/bench/systemd.sh\ndomain = %s\nhostname = %s\n' "$DOMAIN" "$DOMAIN" >>"$NS_ETC/mailslot.conf"
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

median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2];
		      else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
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

# --- variants: the shipped socket and service with hardening lines removed
# VARIANT_KEYS[name]: the [Service] keys taken out ("*" all but what runs
# the program)
declare -A VARIANT_KEYS=(
	[shipped]=""
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
VARIANT_ORDER=(shipped -network -PrivateIPC -seccomp -mountns -mountns-network none)
declare -A VPORT VNAME

# variant_units NAME PORT: msbench-N.socket and its service(s) in
# /run/systemd/system; unit names are renamed, the program path is not.
variant_units() {
	local v=$1 port=$2 n f out keys
	n=msbench${v//[^a-zA-Z0-9]/-}
	keys=${VARIANT_KEYS[$v]}
	rename=(sed "s/mailslot-smtpd\(@\{0,1\}\.\(socket\|service\)\)/$n\1/g")
	for f in "${SOCKETS[@]}"; do
		out=${f/mailslot-smtpd/$n}
		"${rename[@]}" "$NS_UNITDIR/$f" |
			awk -v p="127.0.0.1:$port" '/^ListenStream=/ { if (!done) print "ListenStream=" p; done = 1; next }
				/^BindIPv6Only=/ { next } { print }' |
			ns tee "/run/systemd/system/$out" >/dev/null
	done
	for f in "${SERVICES[@]}"; do
		out=${f/mailslot-smtpd/$n}
		"${rename[@]}" "$NS_UNITDIR/$f" |
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
			ns tee "/run/systemd/system/$out" >/dev/null
	done
	echo "$n"
}

if [ "$VARIANTS" = 1 ]; then
	port=2600
	for v in "${VARIANT_ORDER[@]}"; do
		port=$((port + 1))
		VPORT[$v]=$port
		VNAME[$v]=$(variant_units "$v" "$port")
	done
	ns systemctl daemon-reload
	for v in "${VARIANT_ORDER[@]}"; do
		n=${VNAME[$v]}
		for f in "${SOCKETS[@]}"; do
			ns systemctl start "${f/mailslot-smtpd/$n}" || fail "cannot start the variant $v"
		done
		ns_wait_listen "127.0.0.1:${VPORT[$v]}" || exit 1
	done
	# what each variant gives up, as systemd-analyze rates the loaded unit
	declare -A EXPOSURE
	for v in "${VARIANT_ORDER[@]}"; do
		for f in "${SERVICES[@]}"; do
			f=${f/mailslot-smtpd/${VNAME[$v]}}
			f=${f/@./@probe.}
			EXPOSURE[$v]=$(ns systemd-analyze security --no-pager "$f" 2>/dev/null |
				sed -n 's/^.*Overall exposure level for .*: \([0-9.]*\) .*$/\1/p')
		done
	done
fi

say "bench-systemd: units ${SOCKETS[*]} + ${SERVICES[*]} on port $UNITS_PORT, systemd-socket-activate on $SSA_PORT;" \
	"rounds=$ROUNDS sessions=$SESSIONS messages=$MESSAGES concurrency=$CONCURRENCY work=$WORK"
# warm-up, and a first check that both deliver
latency warm "$UNITS_PORT" 5
latency warm "$SSA_PORT" 5

for r in $(seq "$ROUNDS"); do
	say "bench-systemd: round $r/$ROUNDS"
	if [ $((r % 2)) = 1 ]; then sides="units ssa"; else sides="ssa units"; fi
	for side in $sides; do
		if [ "$side" = units ]; then p=$UNITS_PORT; else p=$SSA_PORT; fi
		latency "$side" "$p" "$SESSIONS"
		conc "$side" "$p"
	done
	if [ "$VARIANTS" = 1 ]; then
		order=("${VARIANT_ORDER[@]}")
		[ $((r % 2)) = 1 ] || mapfile -t order < <(printf '%s\n' "${VARIANT_ORDER[@]}" | tac)
		for v in "${order[@]}"; do
			latency "v$v" "${VPORT[$v]}" "$VARIANT_SESSIONS"
		done
	fi
done

# --- report
m() { # m KEY: the median of KEY's samples
	# shellcheck disable=SC2086
	median ${R[$1]:-}
}
lat_u=$(m lat,units) lat_s=$(m lat,ssa) conc_u=$(m conc,units) conc_s=$(m conc,ssa)
verdict() { awk -v a="$1" -v b="$2" -v k="$3" -v l="$4" 'BEGIN {
	r = (b > 0) ? a / b : 0
	ok = (k == "le") ? r <= l : r >= l
	printf "%.2fx %s", r, ok ? "ok" : "MISSED" }'; }
read -r lat_ratio lat_ok <<<"$(verdict "$lat_u" "$lat_s" le 1.5)"
read -r conc_ratio conc_ok <<<"$(verdict "$conc_u" "$conc_s" ge 0.9)"
{
	echo
	echo "mailslot bench-systemd: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(systemctl --version | head -1 | cut -d' ' -f1-2)" \
		"in systemd-nspawn; medians of $ROUNDS rounds; $MSG_SIZE B messages to one mbox"
	echo
	printf '| %-54s | %18s | %30s |\n' path "ms per session" "$CONCURRENCY clients x $MESSAGES msgs (msg/s)"
	printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..56})" "$(printf -- '-%.0s' {1..20})" "$(printf -- '-%.0s' {1..32})"
	printf '| %-54s | %18.2f | %30.1f |\n' "units: ${SOCKETS[*]} + ${SERVICES[*]}" "$lat_u" "$conc_u"
	printf '| %-54s | %18.2f | %30.1f |\n' "systemd-socket-activate --inetd -a, same binary" "$lat_s" "$conc_s"
	printf '| %-54s | %18s | %30s |\n' "units / socket-activate (target)" "$lat_ratio (<= 1.5x)" "$conc_ratio (>= 0.9x)"
	printf '| %-54s | %18s | %30s |\n' "result" "$lat_ok" "$conc_ok"
	if [ "$VARIANTS" = 1 ]; then
		echo
		echo "copies of the shipped units on ports of their own, [Service] lines removed ($VARIANT_SESSIONS sessions a round):"
		echo
		printf '| %-20s | %12s | %8s |\n' "service" "ms/session" exposure
		printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..22})" "--------------" "----------"
		for v in "${VARIANT_ORDER[@]}"; do
			printf '| %-20s | %12.2f | %8s |\n' "$v" "$(m "lat,v$v")" "${EXPOSURE[$v]}"
		done
		echo
		for v in "${VARIANT_ORDER[@]}"; do
			case $v in
			shipped) echo "  shipped: the installed service, unchanged" ;;
			none) echo "  none: only Type, ExecStart, Standard*, User, Group, UMask, RuntimeMaxSec, TasksMax, Environment kept" ;;
			*) echo "  $v: without $(tr -s ' \t\n' ' ' <<<"${VARIANT_KEYS[$v]}")" ;;
			esac
		done
	fi
	echo
	echo "samples (units / ssa): latency${R[lat,units]} /${R[lat,ssa]}; conc${R[conc,units]} /${R[conc,ssa]}"
} | tee ${RESULTS_FILE:+"$RESULTS_FILE"}
