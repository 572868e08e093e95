#!/usr/bin/env bash
# tests/soak/run.sh - the soak test behind `make soak`.
#
# mailslot-smtpd under systemd-socket-activate --accept --inetd on a free
# loopback port, as in production, delivering locally in SOAK_FORMAT.
# SOAK_CLIENTS concurrent clients send SOAK_MESSAGES messages in all
# (tests/soak/soak.py: sizes log-uniform from 1 KiB to 1 MiB, a third of
# the single-recipient ones to one shared mailbox, some to two to four
# users, some to an alias that names three), each session carrying one to
# five messages.  Then:
#   - no handler process is left and the queue is empty (a local delivery
#     deferred under load would sit there: mailslot-relay runs the queue
#     once, and what it delivers is counted, so that nothing is missed);
#   - every mailbox is read with Python's mailbox module and holds exactly
#     the messages sent to it, each once, byte for byte, with the queue id
#     of its 250: SOAK_MESSAGES x recipients deliveries in all.
# Prints messages, deliveries and octets per second.
#
# Environment: SMTPD, RELAY (default: the binaries at the top of the tree),
# SOAK_MESSAGES (10000), SOAK_CLIENTS (50), SOAK_FORMAT (mbox; maildir, mh),
# SOAK_SEED (1), SOAK_KEEP=1 keeps the work directory, TMPDIR.
# Exit status: 0 every delivery checked; 1 a message was refused, lost,
# duplicated or altered, or a step failed; 2 a needed tool is missing.
# shellcheck disable=SC2317 # cleanup runs from a trap
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
SMTPD=${SMTPD:-$top/mailslot-smtpd}
RELAY=${RELAY:-$top/mailslot-relay}
SOAK_MESSAGES=${SOAK_MESSAGES:-10000}
SOAK_CLIENTS=${SOAK_CLIENTS:-50}
SOAK_FORMAT=${SOAK_FORMAT:-mbox}
SOAK_SEED=${SOAK_SEED:-1}
SOAK_PY="python3 $here/soak.py"

say() { printf 'soak: %s\n' "$*" >&2; }
fail() { say "fatal: $*"; exit 1; }

case $SOAK_FORMAT in mbox | maildir | mh) ;; *) fail "SOAK_FORMAT must be mbox, maildir or mh" ;; esac
for t in systemd-socket-activate python3 pgrep; do
	command -v "$t" >/dev/null || { say "missing: $t (sh tests/install-deps.sh test)"; exit 2; }
done
if [ ! -x "$SMTPD" ] || [ ! -x "$RELAY" ]; then fail "no binaries at $SMTPD and $RELAY (run make)"; fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailslot-soak.XXXXXX")
LISTENER=
cleanup() {
	if [ -n "$LISTENER" ]; then
		kill "$LISTENER" 2>/dev/null || true
		wait "$LISTENER" 2>/dev/null || true
	fi
	if [ "${SOAK_KEEP:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK/mail" "$WORK/queue"
$SOAK_PY setup "$WORK"
ARGS=(--spool "$WORK/mail" --queue "$WORK/queue" --users "$WORK/users" --aliases "$WORK/aliases"
	--domain example.org --hostname mx.soak.test --format "$SOAK_FORMAT" --user "$(id -un)")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
systemd-socket-activate --accept --inetd -l "127.0.0.1:$port" "$SMTPD" "${ARGS[@]}" --log stderr \
	>/dev/null 2>"$WORK/smtpd.log" &
LISTENER=$!
for _ in $(seq 100); do
	grep -q "Listening on" "$WORK/smtpd.log" && break
	kill -0 "$LISTENER" 2>/dev/null || fail "the listener did not start: $(tail -3 "$WORK/smtpd.log")"
	sleep 0.05
done

say "$SOAK_MESSAGES messages, $SOAK_CLIENTS clients, $SOAK_FORMAT, $(nproc) cores, work $WORK"
status=0
$SOAK_PY send --port "$port" --messages "$SOAK_MESSAGES" --clients "$SOAK_CLIENTS" --seed "$SOAK_SEED" \
	--results "$WORK/results.jsonl" || status=1

handlers() { pgrep -P "$LISTENER" | wc -l || true; }
for _ in $(seq 200); do
	[ "$(handlers)" = 0 ] && break
	sleep 0.05
done
left=$(handlers)
[ "$left" = 0 ] || { say "$left handler processes still running after the clients finished"; status=1; }

queued=$(find "$WORK/queue" -path '*/env/*' -type f | wc -l)
if [ "$queued" != 0 ]; then
	say "$queued queue entries (local deliveries deferred under load); running the queue once"
	"$RELAY" "${ARGS[@]}" --log stderr --dns-server 127.0.0.1:9 --flush 2>>"$WORK/relay.log" || status=1
	left=$(find "$WORK/queue" -path '*/env/*' -type f | wc -l)
	[ "$left" = 0 ] || { say "$left entries still queued after the run"; status=1; }
fi
locks=$(find "$WORK/mail" -maxdepth 1 -name '*.lock' | wc -l)
[ "$locks" = 0 ] || { say "$locks dotlocks left in the spool"; status=1; }
if grep -q -E 'fatal|AddressSanitizer|runtime error' "$WORK/smtpd.log"; then
	grep -E 'fatal|AddressSanitizer|runtime error' "$WORK/smtpd.log" | head -5 >&2
	status=1
fi

t0=$EPOCHREALTIME
$SOAK_PY check --spool "$WORK/mail" --format "$SOAK_FORMAT" --results "$WORK/results.jsonl" \
	--seed "$SOAK_SEED" || status=1
say "checked in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s;" \
	"spool $(du -sh "$WORK/mail" | cut -f1)"
if [ "$status" = 0 ]; then say "ok"; else say "FAILED (SOAK_KEEP=1 keeps the logs in the work directory)"; fi
exit "$status"
