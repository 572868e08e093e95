#!/usr/bin/env bash
# tests/bench/run.sh - compare mailslot-smtpd with a trivial static C responder.
#
# Both servers run the same way, one process per connection under
# `systemd-socket-activate --inetd -a` on a loopback port, and deliver to one
# mbox.  A third side, "listen", is mailslot-smtpd --listen under
# `systemd-socket-activate` without --accept: the shipped units' way
# (Accept=no, the acceptor starting a process per connection).  Measured,
# as medians over ROUNDS repetitions:
#   - session latency: connect, 220, EHLO, MAIL, RCPT, DATA, 2 KiB, ".", QUIT
#     (smtpclient latency, SESSIONS sequential sessions per round);
#   - throughput with Postfix's smtp-source: CONCURRENCY parallel sessions of
#     one message each, and one session carrying MESSAGES messages;
#   - PSS per idle connection: IDLE connections after EHLO, Pss summed from
#     /proc/PID/smaps_rollup over every server process, divided by IDLE;
#   - peak RSS (VmHWM) of mailslot-smtpd receiving one BIG_MIB MiB message.
# Every throughput run is checked against the number of messages that reached
# the mbox, so a failed delivery is never reported as speed.
#
# Environment: SMTPD (default ./mailslot-smtpd at the top of the tree; the
# word "trivial" runs the trivial responder on both sides, to test the
# harness), ROUNDS (5), SESSIONS (200), MESSAGES (1000), CONCURRENCY (20),
# IDLE (200), BIG_MIB (100), ONLY (a comma-separated subset of latency, conc,
# session, pss, rss; default all), BENCH_BUILD (tests/bench/build), BENCH_KEEP=1
# keeps the work directory, BENCH_STRICT=1 makes a missed target fail,
# RESULTS_FILE also receives the table.
#
# Exit status: 0 measured (targets missed are reported, and fail only with
# BENCH_STRICT=1); 1 a step failed (build, launch, SMTP error, lost
# messages); 2 a needed tool is missing and cannot be installed.
# shellcheck disable=SC2317 # functions run from traps and through try()
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@" # also when started as "sh run.sh"
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

ROUNDS=${ROUNDS:-5}
SESSIONS=${SESSIONS:-200}
MESSAGES=${MESSAGES:-1000}
CONCURRENCY=${CONCURRENCY:-20}
IDLE=${IDLE:-200}
BIG_MIB=${BIG_MIB:-100}
ONLY=${ONLY:-latency,conc,session,pss,rss,relay}
MSG_SIZE=2048
BUILD=${BENCH_BUILD:-$here/build}
SMTPD=${SMTPD:-$top/mailslot-smtpd}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
RELAY=${RELAY:-$top/mailslot-relay}
CC=${CC:-cc}

DOMAIN=bench.example
RCPT=bench@$DOMAIN
SENDER=bench-sender@$DOMAIN

# ---------------------------------------------------------------- tools
missing_tools() {
	local t
	for t in "$CC" systemd-socket-activate ps awk; do
		command -v "$t" >/dev/null 2>&1 || echo "$t"
	done
	[ -x "$SMTP_SOURCE" ] || echo smtp-source
	return 0
}

install_tools() {
	local postfix_was_running=0
	pgrep -x master >/dev/null 2>&1 && postfix_was_running=1
	if [ -x "$top/tests/install-deps.sh" ]; then
		"$top/tests/install-deps.sh" bench || exit 2
	elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		# "No configuration": the package brings smtp-source and must not
		# leave a mail system listening on this machine.
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			postfix systemd procps gcc libc6-dev >&2
	else
		say "bench: missing: $*; install postfix (smtp-source), systemd and gcc, or run as root"
		exit 2
	fi
	if [ "$postfix_was_running" = 0 ] && pgrep -x master >/dev/null 2>&1; then
		say "bench: stopping the postfix daemon the package install started"
		postfix stop >/dev/null 2>&1 || true
	fi
}

mapfile -t need < <(missing_tools)
if [ "${#need[@]}" -gt 0 ]; then
	install_tools "${need[@]}"
	mapfile -t need < <(missing_tools)
	[ "${#need[@]}" = 0 ] || { say "bench: still missing after install: ${need[*]}"; exit 2; }
fi

# ---------------------------------------------------------------- build
bench_build "$BUILD/trivial" "$here/trivial.c" -static
bench_build "$BUILD/smtpclient" "$here/smtpclient.c"
TRIVIAL=$BUILD/trivial
CLIENT=$BUILD/smtpclient

self_test=0
if [ "$SMTPD" = trivial ]; then
	self_test=1
	SMTPD=$TRIVIAL
fi
[ -x "$SMTPD" ] || fail "no server binary at $SMTPD (run make, or set SMTPD)"
SMTPD=$(cd "$(dirname "$SMTPD")" && pwd)/$(basename "$SMTPD")

# ---------------------------------------------------------------- work dir
bench_workdir # the server may drop to the "mail" account
started=()

bench_cleanup() {
	local p c
	for p in "${started[@]}"; do
		for c in $(descendants "$p"); do kill "$c" 2>/dev/null || true; done
		kill "$p" 2>/dev/null || true
	done
	for p in "${started[@]}"; do wait "$p" 2>/dev/null || true; done
}

# descendants PID: every process below PID, from one ps snapshot
descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			for (p in parent) {
				q = p
				while (q in parent && parent[q] != q && q != root)
					q = parent[q]
				if (q == root && p != root)
					print p
			}
		}'
}

# mailbox directories: owned by "mail" when we are root, since the server
# drops to that account (its --user default) before delivering
make_spool() { # make_spool DIR
	mkdir -p "$1/spool" "$1/queue"
	echo bench >"$1/users"
	if [ "$(id -u)" = 0 ] && id mail >/dev/null 2>&1; then
		chown mail: "$1/spool" "$1/queue"
	fi
}

# server_cmd SIDE DIR: the command line of a server delivering under DIR
server_cmd() {
	if [ "$1" != trivial ] && [ "$self_test" = 0 ]; then
		cmd=("$SMTPD" --spool "$2/spool" --queue "$2/queue" --users "$2/users"
			--domain "$DOMAIN" --format mbox --log stderr)
		[ "$1" != listen ] || cmd+=(--listen --listen-idle 0)
	else
		cmd=("$TRIVIAL" "$2/spool/bench")
	fi
}

mbox_of() { echo "$WORK/$1/spool/bench"; }

count_messages() { # count_messages MBOX
	if [ -f "$1" ]; then grep -c '^From ' "$1" || true; else echo 0; fi
}

port_free() {
	! ss -Htln 2>/dev/null | awk '{print $4}' | grep -q ":$1\$"
}

declare -A PORT PID
start_server() { # start_server SIDE
	local side=$1 dir=$WORK/$1 port log
	make_spool "$dir"
	server_cmd "$side" "$dir"
	log=$WORK/$side.log
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		port_free "$port" || continue
		if [ "$side" = listen ] && [ "$self_test" = 0 ]; then
			systemd-socket-activate -l "127.0.0.1:$port" "${cmd[@]}" 2>>"$log" &
		else
			systemd-socket-activate --inetd -a -l "127.0.0.1:$port" "${cmd[@]}" 2>>"$log" &
		fi
		PID[$side]=$!
		started+=("$!")
		for _ in $(seq 50); do
			if grep -q "Listening on 127.0.0.1:$port" "$log"; then
				PORT[$side]=$port
				return 0
			fi
			kill -0 "${PID[$side]}" 2>/dev/null || break
			sleep 0.1
		done
		kill "${PID[$side]}" 2>/dev/null || true
	done
	tail -5 "$log" >&2
	fail "cannot start the $side server"
}

# wait_idle SIDE: until no session process of SIDE is left (10 s at most)
wait_idle() {
	for _ in $(seq 100); do
		[ -z "$(descendants "${PID[$1]}")" ] && return 0
		sleep 0.1
	done
	say "bench: warning: $1 still has session processes after 10 s"
}

# ---------------------------------------------------------------- measurements
declare -A R       # R[metric,side] = space-separated samples
declare -A FAILED  # FAILED[metric,side] = why that metric could not be measured
nfailed=0          # counted apart: ${#FAILED[@]} of an empty array trips set -u

add() { R[$1,$2]="${R[$1,$2]:-} $3"; }

# bad METRIC SIDE WHY: a measurement failed.  It is reported in the table and
# fails the run, and the other measurements still go on.
bad() {
	say "bench: FAILED $1 ($2): $3"
	[ -n "${FAILED[$1,$2]:-}" ] || { FAILED[$1,$2]=$3; nfailed=$((nfailed + 1)); }
	return 1
}

measure_latency() { # SIDE
	local out
	out=$("$CLIENT" -f "$SENDER" -t "$RCPT" -s "$MSG_SIZE" latency 127.0.0.1 "${PORT[$1]}" "$SESSIONS" \
		2>"$WORK/client.err") ||
		bad latency "$1" "$(tail -1 "$WORK/client.err")" || return
	out=${out#median_ms=}
	add latency "$1" "${out%% *}"
	wait_idle "$1"
}

# measure_source SIDE METRIC ARGS...: run smtp-source, check delivery, record msg/s
measure_source() {
	local side=$1 metric=$2 mbox before after t0 t1 rate rc=0
	shift 2
	mbox=$(mbox_of "$side")
	before=$(count_messages "$mbox")
	t0=$EPOCHREALTIME
	timeout 300 "$SMTP_SOURCE" "$@" -m "$MESSAGES" -l "$MSG_SIZE" -f "$SENDER" -t "$RCPT" \
		-M "$DOMAIN" "127.0.0.1:${PORT[$side]}" >"$WORK/smtp-source.out" 2>&1 || rc=$?
	t1=$EPOCHREALTIME
	wait_idle "$side"
	after=$(count_messages "$mbox")
	if [ "$rc" != 0 ]; then
		bad "$metric" "$side" "smtp-source $* exited $rc after $((after - before)) of $MESSAGES messages: $(tail -1 "$WORK/smtp-source.out")"
		return
	fi
	[ $((after - before)) = "$MESSAGES" ] ||
		bad "$metric" "$side" "smtp-source $* delivered $((after - before)) of $MESSAGES messages to $mbox" || return
	rate=$(awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
	add "$metric" "$side" "$rate"
}

measure_pss() { # SIDE
	local side=$1 fifo=$WORK/idle.fifo out=$WORK/idle.out cpid sum n
	rm -f "$fifo" "$out"
	mkfifo "$fifo"
	"$CLIENT" -H "$DOMAIN" idle 127.0.0.1 "${PORT[$side]}" "$IDLE" <"$fifo" >"$out" 2>"$WORK/client.err" &
	cpid=$!
	started+=("$cpid")
	exec 9>"$fifo" # the client idles until this closes
	for _ in $(seq 600); do
		grep -q '^ready' "$out" 2>/dev/null && break
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.05
	done
	if ! grep -q '^ready' "$out" 2>/dev/null; then
		exec 9>&-
		wait "$cpid" || true
		wait_idle "$side"
		bad pss "$side" "$IDLE idle connections not established: $(tail -1 "$WORK/client.err")"
		return
	fi
	read -r sum n < <(for p in $(descendants "${PID[$side]}"); do
		awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true
	done | awk '{ s += $1; n++ } END { print s + 0, n + 0 }')
	exec 9>&-
	wait "$cpid" || true
	wait_idle "$side"
	[ "$n" -ge "$IDLE" ] || bad pss "$side" "only $n server processes for $IDLE idle connections" || return
	add pss "$side" "$(awk -v s="$sum" -v c="$IDLE" 'BEGIN { printf "%.1f", s / c }')"
}

measure_big() { # mailslot only: its own spool, started directly over a TCP pair
	local dir=$WORK/big out hwm mbox size min
	rm -rf "$dir"
	make_spool "$dir"
	server_cmd mailslot "$dir"
	[ "$self_test" = 1 ] || cmd+=(--max-size "$((BIG_MIB * 2))m")
	out=$("$CLIENT" -f "$SENDER" -t "$RCPT" -s "${BIG_MIB}m" -w 300 -e "$WORK/big.log" big -- "${cmd[@]}" \
		2>"$WORK/client.err") ||
		bad rss mailslot "$(tail -1 "$WORK/client.err") (log: $WORK/big.log)" || return
	case $out in
	*exit=0*) ;;
	*) bad rss mailslot "server exited badly after the big message: $out"; return ;;
	esac
	mbox=$(mbox_of big)
	size=$(stat -c %s "$mbox" 2>/dev/null || echo 0)
	min=$((BIG_MIB * 1024 * 1024 * 97 / 100))
	if [ "$(count_messages "$mbox")" != 1 ] || [ "$size" -lt "$min" ]; then
		bad rss mailslot "big message not delivered whole: $mbox has $size bytes"
		return
	fi
	hwm=${out#*hwm_kib=}
	add rss mailslot "${hwm%% *}"
	rm -rf "$dir"
}

# once a metric has failed for a side, later rounds skip it
try() { # try METRIC SIDE COMMAND...
	[ -z "${FAILED[$1,$2]:-}" ] || return 0
	shift 2
	"$@" || true
}

# ---------------------------------------------------------------- run
# measure_relay: mailslot-relay drains MESSAGES queued messages (2 KiB,
# one entry each) to Postfix's smtp-sink through --smarthost; msg/s.  The
# entries are queued by mailslot-smtpd itself (one session on stdin).
measure_relay() {
	local dir=$WORK/relay.$RANDOM port t0 t1 sent left rate body
	mkdir -p "$dir/queue" "$dir/spool"
	body=$(head -c "$MSG_SIZE" /dev/zero | tr '\0' 'x' | fold -w 76)
	{
		echo "HELO bench.example"
		for i in $(seq "$MESSAGES"); do
			printf 'MAIL FROM:<%s>\nRCPT TO:<sink@sink.example>\nDATA\nSubject: relay %d\n\n%s\n.\n' \
				"$SENDER" "$i" "$body"
		done
		echo QUIT
	} >"$dir/session"
	"$SMTPD" --spool "$dir/spool" --queue "$dir/queue" --domain "$DOMAIN" --hostname "$DOMAIN" \
		--relay yes --user "$(id -un)" --log stderr --max-recipients 10 <"$dir/session" >"$dir/smtpd.out" 2>/dev/null
	[ "$(grep -c '^250 2.0.0 Ok: queued' "$dir/smtpd.out")" = "$MESSAGES" ] ||
		bad relay mailslot "mailslot-smtpd did not queue $MESSAGES messages" || return
	port=$((20000 + RANDOM % 40000))
	local as=()
	[ "$(id -u)" -eq 0 ] && as=(-u root) # smtp-sink insists on an account as root
	"$SMTP_SINK" "${as[@]}" "127.0.0.1:$port" 256 >"$dir/sink.out" 2>&1 &
	started+=("$!")
	local sink=$!
	sleep 0.3
	t0=$EPOCHREALTIME
	"$RELAY" --queue "$dir/queue" --spool "$dir/spool" --domain "$DOMAIN" --hostname "$DOMAIN" \
		--smarthost "127.0.0.1:$port" --user "$(id -un)" --log stderr 2>"$dir/relay.log"
	t1=$EPOCHREALTIME
	kill "$sink" 2>/dev/null || true
	sent=$(grep -c 'status=sent' "$dir/relay.log")
	left=$(find "$dir/queue/env" -type f | wc -l)
	[ "$sent" = "$MESSAGES" ] && [ "$left" = 0 ] ||
		bad relay mailslot "relay sent $sent of $MESSAGES, $left left queued: $(tail -1 "$dir/relay.log")" || return
	rate=$(awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
	add relay mailslot "$rate"
	rm -rf "$dir"
}

wanted() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

say "bench: server $SMTPD$([ "$self_test" = 1 ] && echo ' (self-test: trivial on both sides)')"
say "bench: rounds=$ROUNDS sessions=$SESSIONS messages=$MESSAGES concurrency=$CONCURRENCY idle=$IDLE big=${BIG_MIB}MiB work=$WORK"
start_server mailslot
start_server listen
start_server trivial

# warm-up: page cache, first-exec costs, and a first check that all deliver
for side in mailslot listen trivial; do
	"$CLIENT" -f "$SENDER" -t "$RCPT" latency 127.0.0.1 "${PORT[$side]}" 10 >/dev/null ||
		fail "warm-up session against $side failed (log: $WORK/$side.log)"
	[ "$(count_messages "$(mbox_of "$side")")" = 10 ] ||
		fail "$side: warm-up messages did not reach $(mbox_of "$side")"
done

for r in $(seq "$ROUNDS"); do
	say "bench: round $r/$ROUNDS"
	# alternate which side goes first so that drift hits both alike
	if [ $((r % 2)) = 1 ]; then sides="mailslot listen trivial"; else sides="trivial listen mailslot"; fi
	for side in $sides; do
		wanted latency && try latency "$side" measure_latency "$side"
		wanted conc && try conc "$side" measure_source "$side" conc -s "$CONCURRENCY"
		[ "$side" = listen ] && continue # the rest does not depend on the launcher
		wanted session && try session "$side" measure_source "$side" session -d -s 1
		wanted pss && try pss "$side" measure_pss "$side"
	done
	wanted rss && try rss mailslot measure_big
	wanted relay && try relay mailslot measure_relay
done

# ---------------------------------------------------------------- report
declare -A M
for key in "${!R[@]}"; do
	# shellcheck disable=SC2086
	M[$key]=$(median ${R[$key]})
done

status=0
missed=()
# row LABEL KEY FORMAT KIND LIMIT TARGET-TEXT [SIDE]: SIDE (default mailslot)
#   against trivial
#   ratio  LIMIT: mailslot/trivial must be <= LIMIT (kind "le") or >= LIMIT ("ge")
#   abs    LIMIT: mailslot's own figure must be <= LIMIT
row() {
	local label=$1 key=$2 fmt=$3 kind=$4 limit=$5 target=$6 side=${7:-mailslot} m t ratio verdict
	wanted "$key" || return 0
	if [ -n "${FAILED[$key,$side]:-}${FAILED[$key,trivial]:-}" ]; then
		m=${M[$key,$side]:-nan}
		t=${M[$key,trivial]:-n/a}
		[ -z "${FAILED[$key,$side]:-}" ] || m=FAILED
		[ -z "${FAILED[$key,trivial]:-}" ] || t=FAILED
		printf '| %-44s | %10s | %10s | %7s | %-13s | %-6s |\n' "$label" "$m" "$t" - "$target" FAILED
		return 0
	fi
	m=${M[$key,$side]:-nan}
	t=${M[$key,trivial]:-n/a}
	m=$(awk -v f="$fmt" -v v="$m" 'BEGIN { printf f, v }')
	[ "$t" = n/a ] || t=$(awk -v f="$fmt" -v v="$t" 'BEGIN { printf f, v }')
	if [ "$t" = n/a ]; then ratio=n/a; else
		ratio=$(awk -v a="$m" -v b="$t" 'BEGIN { printf (b > 0 ? "%.2fx" : "n/a"), a / b }')
	fi
	verdict=$(awk -v k="$kind" -v m="$m" -v t="$t" -v l="$limit" 'BEGIN {
		if (k == "le")      ok = (t > 0 && m / t <= l)
		else if (k == "ge") ok = (t > 0 && m / t >= l)
		else                ok = (m <= l)
		print ok ? "ok" : "MISSED" }')
	[ "$verdict" = ok ] || missed+=("$label")
	printf '| %-44s | %10s | %10s | %7s | %-13s | %-6s |\n' "$label" "$m" "$t" "$ratio" "$target" "$verdict"
}

table() {
	printf '| %-44s | %10s | %10s | %7s | %-13s | %-6s |\n' metric mailslot trivial ratio target result
	printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "------------" "------------" \
		"---------" "---------------" "--------"
	row "session latency, median (ms)" latency %.2f le 1.25 "<= 1.25x"
	row "  the same, --listen (Accept=no)" latency %.2f le 1.25 "<= 1.25x" listen
	row "throughput, $CONCURRENCY conns x 1 msg (msg/s)" conc %.0f ge 0.9 ">= 0.9x"
	row "  the same, --listen (Accept=no)" conc %.0f ge 0.9 ">= 0.9x" listen
	row "throughput, 1 session x $MESSAGES msgs (msg/s)" session %.0f ge 0.9 ">= 0.9x"
	row "PSS per idle connection (KiB)" pss %.1f abs 200 "<= 200 KiB"
	row "peak RSS, one $BIG_MIB MiB message (KiB)" rss %.0f abs 4096 "<= 4096 KiB"
	row "relay, queue to smtp-sink, $MESSAGES msgs (msg/s)" relay %.0f abs 1e9 "(recorded)"
}

echo
echo "mailslot bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, medians of $ROUNDS rounds;" \
	"latency over $SESSIONS sessions/round, $MESSAGES msgs of $MSG_SIZE B per throughput run"
echo
table >"$WORK/table" # not in a pipeline: row() records missed targets
tee ${RESULTS_FILE:+"$RESULTS_FILE"} <"$WORK/table"
echo
echo "samples per round (mailslot / listen / trivial):"
for key in latency conc session pss rss; do
	wanted "$key" || continue
	printf '  %-8s %s /%s /%s\n' "$key" "${R[$key,mailslot]:- -}" "${R[$key,listen]:- -}" "${R[$key,trivial]:- -}"
done
echo
if [ "$nfailed" -gt 0 ]; then
	echo "measurements that failed (no figure is reported for them):"
	for key in "${!FAILED[@]}"; do
		echo "  $key: ${FAILED[$key]}"
	done
	echo
	status=1
fi
if [ "${#missed[@]}" -gt 0 ]; then
	echo "targets missed:"
	printf '  %s\n' "${missed[@]}"
	[ "${BENCH_STRICT:-0}" = 1 ] && status=1
fi
exit "$status"
