#!/usr/bin/env bash
# tests/bench/tls.sh - submission inside TLS: mailslot-smtpd beside Postfix.
#
# mailslot: the acceptor (--listen) under systemd-socket-activate, as the
# shipped mailslot-submission{,s}.socket units run it, one for STARTTLS
# and one with --smtps, --passwd holding a sha512-crypt hash.
# Postfix 3.7: a private instance (helpers/postfix_instance.bash) with smtpd on
# two ports (STARTTLS; smtpd_tls_wrappermode=yes), SASL through a private
# Dovecot's auth service reading the same passwd file (the same hash to
# check), delivery to one mbox (virtual(8)).  The same ECDSA P-256
# certificate on both.  Neither side resumes TLS sessions: the client never
# offers one (mailslot issues no tickets; Postfix's would go unused).
#
# Measured, as medians of ROUNDS rounds of SESSIONS sequential sessions
# from Python's smtplib (tests/bench/tls.py):
#   - ms per session: STARTTLS + AUTH PLAIN + one 2 KiB message; the same in
#     implicit TLS; STARTTLS + the message without AUTH;
#   - PSS per connection held idle after STARTTLS and EHLO (IDLE of them),
#     summed over the processes that serve them: mailslot's monitor and
#     session; Postfix's smtpd (the master, tlsmgr, cleanup and Dovecot
#     are shared and not counted).
# Postfix answers the final dot once cleanup has queued the message and
# delivers it afterwards; mailslot answers once the mbox copy is fsynced.
#
# Environment: ROUNDS (3), SESSIONS (100), IDLE (50), BENCH_KEEP=1 keeps the
# work directory, RESULTS_FILE also receives the table.  Run as root (a
# Postfix instance); exit 2 when a tool is missing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

BENCH=bench-tls
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-100}
IDLE=${IDLE:-50}
SMTPD=${SMTPD:-$top/mailslot-smtpd}
# shellcheck source=../helpers/postfix_instance.bash
. "$here/../helpers/postfix_instance.bash"

bench_need postfix dovecot systemd-socket-activate openssl python3
bench_need_root "a private Postfix instance"
[ -x "$SMTPD" ] || fail "no $SMTPD: run make first"

bench_workdir
PIDS=()
bench_cleanup() {
	pf_stop "$WORK/pf"
	[ -f "$WORK/dovecot/run/master.pid" ] && kill "$(cat "$WORK/dovecot/run/master.pid")" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}

# ------------------------------------------------------------ the shared parts
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.example \
	-addext subjectAltName=DNS:bench.example -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem"	# Postfix's smtpd reads it as root, mailslot's acceptor too
printf 'alice:%s\n' "$(openssl passwd -6 'alice secret')" >"$WORK/passwd"
chmod 644 "$WORK/passwd"

# ------------------------------------------------------------ mailslot
mkdir -p "$WORK/ms/spool" "$WORK/ms/queue"
chmod 1777 "$WORK/ms/spool" "$WORK/ms/queue"
printf 'alice\nbench\n' >"$WORK/ms/users"
MS_ARGS=(--listen --spool "$WORK/ms/spool" --queue "$WORK/ms/queue" --users "$WORK/ms/users"
	--domain bench.example --hostname bench.example --user nobody --log syslog
	--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" --passwd "$WORK/passwd")
declare -A PORT
PORT[ms-starttls]=$(free_port)
systemd-socket-activate -l "127.0.0.1:${PORT[ms-starttls]}" "$SMTPD" "${MS_ARGS[@]}" 2>"$WORK/ms.log" &
PIDS+=($!)
PORT[ms-smtps]=$(free_port)
systemd-socket-activate -l "127.0.0.1:${PORT[ms-smtps]}" "$SMTPD" "${MS_ARGS[@]}" --smtps 2>>"$WORK/ms.log" &
PIDS+=($!)
MS_TOP=${PIDS[0]}

# ------------------------------------------------------------ Postfix + Dovecot auth
PF=$WORK/pf
mkdir -p "$WORK/dovecot/run" "$WORK/dovecot/state"
pf_init "$PF" bench.example
pf_conf "$PF" "smtpd_tls_cert_file = $WORK/cert.pem" "smtpd_tls_key_file = $WORK/key.pem" \
	'smtpd_tls_security_level = may' 'smtpd_tls_loglevel = 1' 'smtpd_sasl_auth_enable = yes' \
	'smtpd_sasl_type = dovecot' 'smtpd_sasl_path = private/dovecot-auth' \
	'smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination'
PORT[pf-starttls]=$(free_port)
PORT[pf-smtps]=$(free_port)
pf_listen "$PF" 127.0.0.1 "${PORT[pf-starttls]}"
pf_listen "$PF" 127.0.0.1 "${PORT[pf-smtps]}" -o smtpd_tls_wrappermode=yes
cat >"$WORK/dovecot/dovecot.conf" <<EOF
base_dir = $WORK/dovecot/run
state_dir = $WORK/dovecot/state
log_path = $WORK/dovecot/log
protocols =
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=CRYPT $WORK/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup
}
service auth {
  unix_listener $PF/queue/private/dovecot-auth {
    mode = 0666
  }
}
EOF
mkdir -p "$PF/queue/private"
chown postfix "$PF/queue/private"
dovecot -c "$WORK/dovecot/dovecot.conf" || fail "Dovecot's auth service did not start: $(tail -1 "$WORK/dovecot/log" 2>/dev/null)"
pf_start "$PF" || fail "Postfix did not start"
wait_port "${PORT[ms-starttls]}"

# ------------------------------------------------------------ measure
declare -A R

time_kind() { # SIDE KIND -> median ms of one round
	local port=${PORT[$1-${2%%-*}]}
	python3 "$here/tls.py" time "$2" 127.0.0.1 "$port" "$SESSIONS" | awk '{ print $1 }'
}

pss_side() { # SIDE -> KiB per idle connection
	local side=$1 port=${PORT[$1-starttls]} fifo=$WORK/idle.fifo out=$WORK/idle.out pids sum
	rm -f "$fifo"
	mkfifo "$fifo"
	python3 "$here/tls.py" idle 127.0.0.1 "$port" "$IDLE" <"$fifo" >"$out" &
	local client=$!
	exec 7>"$fifo"
	for _ in $(seq 200); do grep -q held "$out" 2>/dev/null && break; sleep 0.1; done
	grep -q "held $IDLE" "$out" || { exec 7>&-; wait "$client" || true; fail "$side: $IDLE idle connections not established"; }
	if [ "$side" = ms ]; then
		pids=$(ps -e -o pid=,ppid= | awk -v top="$MS_TOP" '{ parent[$1] = $2 }
			END { for (p in parent) if (parent[p] != top && (parent[parent[p]] == top || parent[parent[parent[p]]] == top)) print p }')
	else
		pids=$(pgrep -f "^smtpd -n 127.0.0.1:$port" || true)
	fi
	sum=0
	for p in $pids; do
		sum=$((sum + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
	done
	exec 7>&-
	wait "$client" || true
	echo $((sum / IDLE))
}

say "bench-tls: $ROUNDS rounds of $SESSIONS sessions per row; $IDLE idle connections for PSS"
for ((round = 1; round <= ROUNDS; round++)); do
	for kind in starttls-auth smtps-auth starttls; do
		for side in ms pf; do
			R[$kind,$side]+=" $(time_kind "$side" "$kind")"
		done
	done
done
R[pss,ms]=$(pss_side ms)
R[pss,pf]=$(pss_side pf)
delivered_ms=$(grep -c '^From ' "$WORK/ms/spool/bench" || true)
sleep 1
delivered_pf=$(grep -c '^From ' "$PF/mail/inbox" 2>/dev/null || true)
want=$((ROUNDS * SESSIONS * 3))
[ "$delivered_ms" = "$want" ] || fail "mailslot delivered $delivered_ms of $want messages"
grep -q 'TLS connection established' "$PF/maillog" || fail "Postfix logged no TLS connection"

{
	printf '\n## TLS submission: mailslot-smtpd --listen beside Postfix %s (%s)\n\n' \
		"$(postconf -c "$PF/etc" -h mail_version)" "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf '| %s | %s | %s | %s |\n' "medians of $ROUNDS rounds" mailslot Postfix ratio
	printf '|---|---|---|---|\n'
	for kind in starttls-auth smtps-auth starttls; do
		# shellcheck disable=SC2086 # one sample a word
		ms=$(median ${R[$kind,ms]})
		# shellcheck disable=SC2086
		pf=$(median ${R[$kind,pf]})
		case $kind in
		starttls-auth) label='STARTTLS + AUTH PLAIN + 2 KiB message (ms/session)' ;;
		smtps-auth) label='implicit TLS + AUTH PLAIN + 2 KiB message (ms/session)' ;;
		*) label='STARTTLS + 2 KiB message, no AUTH (ms/session)' ;;
		esac
		printf '| %s | %s | %s | %s |\n' "$label" "$ms" "$pf" "$(awk -v a="$ms" -v b="$pf" 'BEGIN { printf "%.2f", a / b }')"
	done
	printf '| PSS per idle TLS connection, %d open (KiB) | %s | %s | %s |\n' "$IDLE" "${R[pss,ms]}" "${R[pss,pf]}" \
		"$(awk -v a="${R[pss,ms]}" -v b="${R[pss,pf]}" 'BEGIN { printf "%.2f", a / b }')"
	printf '\nDelivered: mailslot %s of %s (mbox, fsynced before the 250); Postfix %s so far (queued before the 250).\n' \
		"$delivered_ms" "$want" "$delivered_pf"
} | tee -a "${RESULTS_FILE:-/dev/null}"
