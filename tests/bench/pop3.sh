#!/usr/bin/env bash
# tests/bench/pop3.sh - mailslot-pop3d beside Dovecot's pop3d (make bench-pop3).
#
# Both read the same mailboxes on the same machine over loopback:
# mailslot-pop3d one process pair per connection under
# `systemd-socket-activate --accept --inetd` (what the Accept=yes units
# do, without systemd's own per-unit cost), Dovecot as Debian ships it
# (dovecot-pop3d, its compiled-in defaults: a pop3-login process per
# connection, then a pop3 process) from a private configuration on
# another port.  Passwords are the same sha512-crypt lines, in one file
# both read.  The mailboxes are written by mailslot-smtpd, as mbox and as
# Maildir: "small" holds 1,000 messages of 2 KiB, "big" 20 of 5 MiB.
#
# A session is connect, USER/PASS, STAT, UIDL, RETR of every message
# (pipelined: both servers offer PIPELINING), QUIT (tests/bench/pop3bench.py).
# For each row: the first session on a fresh copy (Dovecot builds its
# index then), and the median of ROUNDS later ones, in ms, and MB/s of
# RETR octets.  Then PSS per idle connection: IDLE users logged in and
# left idle after STAT, the Pss of every server process summed from
# /proc/PID/smaps_rollup, less the same sum before, divided by IDLE.
#
# Environment: POP3D, SMTPD (default: the tree's), ROUNDS (5), IDLE (50),
# BENCH_KEEP=1 keeps the work directory, RESULTS_FILE also receives the table.
# Must run as root (Dovecot's processes switch users).  Exit 0 measured,
# 1 a step failed, 2 a tool is missing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

BENCH=bench-pop3
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
POP3D=${POP3D:-$top/mailslot-pop3d}
SMTPD=${SMTPD:-$top/mailslot-smtpd}
ROUNDS=${ROUNDS:-5}
IDLE=${IDLE:-50}
CLIENT="python3 $here/pop3bench.py"

bench_need_root "Dovecot switches users"
bench_need dovecot
[ -x "$POP3D" ] && [ -x "$SMTPD" ] || fail "build first (make)"

bench_workdir
W=$WORK
PIDS=()
bench_cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$W/dovecot.conf" ] && dovecot -c "$W/dovecot.conf" stop 2>/dev/null || true
}

# --- the mailboxes -------------------------------------------------------
USERS=(small big)
for i in $(seq 1 "$IDLE"); do USERS+=("idle$i"); done
printf '%s\n' "${USERS[@]}" >"$W/users"
hash=$(openssl passwd -6 'bench secret')
for u in "${USERS[@]}"; do printf '%s:{CRYPT}%s\n' "$u" "$hash"; done >"$W/passwd"
chmod 644 "$W/passwd"

# one SMTP session of COUNT messages of SIZE octets to USER
smtp_script() {
	python3 - "$@" <<'PY'
import sys
user, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line = b"abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456\n"
out = sys.stdout.buffer
out.write(b"HELO bench\n")
for i in range(count):
    out.write(b"MAIL FROM:<bench@remote.example>\nRCPT TO:<%s@localhost>\nDATA\n" % user.encode())
    out.write(b"From: bench@remote.example\nSubject: message %d\n\n" % i)
    out.write(line * (size // len(line)))
    out.write(b".\n")
out.write(b"QUIT\n")
PY
}

mkdir -p "$W/queue"
chown nobody:nogroup "$W/queue"
for fmt in mbox maildir; do
	mkdir -p "$W/pristine/$fmt"
	chown nobody:nogroup "$W/pristine/$fmt"
	for spec in small:1000:2048 big:20:5242880 $(for i in $(seq 1 "$IDLE"); do echo "idle$i:10:2048"; done); do
		IFS=: read -r u n size <<<"$spec"
		smtp_script "$u" "$n" "$size" | "$SMTPD" --spool "$W/pristine/$fmt" --queue "$W/queue" --users "$W/users" \
			--domain localhost --hostname bench.test --format "$fmt" --user nobody --log stderr --max-size 10m \
			>/dev/null 2>>"$W/smtpd.log" || fail "delivery to $u ($fmt) failed"
	done
done
echo "mailboxes: $(du -sh "$W/pristine/mbox" | cut -f1) mbox, $(du -sh "$W/pristine/maildir" | cut -f1) Maildir" >&2

# a fresh copy of the spool of FMT in $W/spool/FMT (Dovecot's indexes gone)
fresh() {
	rm -rf "$W/spool/$1" "$W/dovehome"
	mkdir -p "$W/spool" "$W/dovehome"
	cp -a "$W/pristine/$1" "$W/spool/$1"
	chown nobody:nogroup "$W/dovehome"
}

# --- the servers ---------------------------------------------------------
start_mailslot() {
	MS_PORT=$(free_port)
	systemd-socket-activate --accept --inetd -l "127.0.0.1:$MS_PORT" "$POP3D" --spool "$W/spool/$1" --format "$1" \
		--users "$W/users" --passwd "$W/passwd" --user nobody --log stderr --hostname bench.test \
		2>>"$W/pop3d.log" >/dev/null &
	MS_PID=$!
	PIDS+=("$MS_PID")
	wait_port "$MS_PORT"
}

start_dovecot() {
	DC_PORT=$(free_port)
	local location="mbox:~/mail:INBOX=$W/spool/mbox/%u"
	[ "$1" = maildir ] && location="maildir:$W/spool/maildir/%u"
	mkdir -p "$W/dovecot-run"
	cat >"$W/dovecot.conf" <<-EOF
		base_dir = $W/dovecot-run
		state_dir = $W/dovecot-state
		log_path = $W/dovecot.log
		protocols = pop3
		listen = 127.0.0.1
		ssl = no
		disable_plaintext_auth = no
		auth_mechanisms = plain
		first_valid_uid = 1
		passdb {
		  driver = passwd-file
		  args = scheme=CRYPT $W/passwd
		}
		userdb {
		  driver = static
		  args = uid=nobody gid=nogroup home=$W/dovehome/%u
		}
		mail_location = $location
		pop3_uidl_format = %08Xu%08Xv
		service pop3-login {
		  inet_listener pop3 {
		    port = $DC_PORT
		  }
		  inet_listener pop3s {
		    port = 0
		  }
		}
	EOF
	dovecot -c "$W/dovecot.conf" || fail "dovecot did not start (see $W/dovecot.log)"
	wait_port "$DC_PORT"
}

stop_servers() {
	kill "$MS_PID" 2>/dev/null || true
	wait "$MS_PID" 2>/dev/null || true
	dovecot -c "$W/dovecot.conf" stop 2>/dev/null || true
	sleep 0.5
}

# row SERVER PORT USER: "first_ms later_ms MB/s"
row() {
	local first later octets
	first=$($CLIENT sessions "$2" "$3" 'bench secret' 1) || fail "$1 $3: $first"
	later=$($CLIENT sessions "$2" "$3" 'bench secret' "$ROUNDS") || fail "$1 $3: $later"
	octets=$(awk 'NR == 1 { print $2 }' <<<"$later")
	local med
	# shellcheck disable=SC2046 # one number a word
	med=$(median $(awk '{ print $1 }' <<<"$later"))
	printf '%s %s %s\n' "$(awk '{ print $1 }' <<<"$first")" "$med" \
		"$(awk -v o="$octets" -v ms="$med" 'BEGIN { printf "%.0f", o / 1048576 / (ms / 1000) }')"
}

# pss_of PATTERN: Pss (KiB) summed over processes whose executable matches
pss_of() {
	local total=0 pid exe kb
	for pid in /proc/[0-9]*; do
		exe=$(readlink "$pid/exe" 2>/dev/null) || continue
		[[ "$exe" =~ $1 ]] || continue
		kb=$(awk '/^Pss:/ { print $2 }' "$pid/smaps_rollup" 2>/dev/null) || continue
		total=$((total + ${kb:-0}))
	done
	echo "$total"
}

idle_pss() {
	local pattern=$1 port=$2 before after
	before=$(pss_of "$pattern")
	local users=()
	for i in $(seq 1 "$IDLE"); do users+=("idle$i"); done
	coproc IDLER { $CLIENT idle "$port" 'bench secret' "${users[@]}"; }
	read -r ready <&"${IDLER[0]}" || fail "idle clients: no answer"
	[ "$ready" = "ready $IDLE" ] || fail "idle clients: $ready"
	sleep 0.5
	after=$(pss_of "$pattern")
	echo >&"${IDLER[1]}"
	wait "$IDLER_PID" || true
	echo $(((after - before) / IDLE))
}

out=$W/table
{
	echo "| format | mailbox | server | first session ms | later sessions ms | MB/s |"
	echo "|---|---|---|---:|---:|---:|"
} >"$out"
for fmt in mbox maildir; do
	for box in small big; do
		for server in mailslot dovecot; do
			fresh "$fmt"
			if [ "$server" = mailslot ]; then
				start_mailslot "$fmt"
				port=$MS_PORT
			else
				start_dovecot "$fmt"
				port=$DC_PORT
			fi
			read -r first later mbs < <(row "$server" "$port" "$box")
			echo "| $fmt | $box | $server | $first | $later | $mbs |" | tee -a "$out" >&2
			stop_servers
		done
	done
done
{
	echo
	echo "| format | server | PSS per idle logged-in connection (KiB) |"
	echo "|---|---|---:|"
} >>"$out"
for fmt in mbox maildir; do
	fresh "$fmt"
	start_mailslot "$fmt"
	echo "| $fmt | mailslot | $(idle_pss 'mailslot-pop3d' "$MS_PORT") |" | tee -a "$out" >&2
	stop_servers
	fresh "$fmt"
	start_dovecot "$fmt"
	echo "| $fmt | dovecot | $(idle_pss '/usr/(lib/dovecot/|sbin/dovecot)' "$DC_PORT") |" | tee -a "$out" >&2
	stop_servers
done
echo
cat "$out"
[ -z "${RESULTS_FILE:-}" ] || cat "$out" >>"$RESULTS_FILE"
