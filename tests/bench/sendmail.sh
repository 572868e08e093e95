#!/usr/bin/env bash
# tests/bench/sendmail.sh - ms per message injected by a local program:
# mailslot-sendmail beside Postfix's sendmail on the same machine.
#
# Each side gets MESSAGES messages of 2 KiB, one sendmail run after the
# other, for one local mbox recipient, and is timed twice:
#   - "returns": the sendmail command's own time (what a caller such as
#     cron waits for).  mailslot-sendmail returns once the message is in
#     the mailbox, fsynced; Postfix's once postdrop has written it into
#     maildrop/, before pickup, cleanup, qmgr and local have run.
#   - "in the mbox": from the first run to the moment the mbox holds all
#     MESSAGES, divided by MESSAGES (Postfix's daemons work behind the
#     loop; mailslot's figure is the same as the first).
# mailslot-sendmail runs twice: as root (the checkout's programs), and as
# nobody through a set-user-ID copy of mailslot-enqueue reading
# /etc/mailslot/mailslot.conf (an overlay of /etc), as installed.
# A third row injects for a remote recipient (queued, no relay run).
# Postfix runs as a private instance in a mount namespace: its
# configuration and queue are bind-mounted over /etc/postfix and
# /var/spool/postfix, no chroot, no smtpd listener, mbox delivery into the
# work directory; nothing of the machine's own is touched.
#
# Environment: MESSAGES (300), ROUNDS (3: medians), SENDMAIL (the checkout's
# mailslot-sendmail), RESULTS_FILE (also receives the table).
# Needs root, Postfix (postfix, postdrop) and unshare.  Exit status 0
# measured, 1 a step failed (lost messages too), 2 a tool is missing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

BENCH=bench-sendmail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
MESSAGES=${MESSAGES:-300}
ROUNDS=${ROUNDS:-3}
SENDMAIL=${SENDMAIL:-$top/mailslot-sendmail}
USER_NAME=mail		# the mbox recipient on both sides: an account every Debian has

bench_need_root "a mount namespace, Postfix"
bench_need unshare /usr/sbin/postfix /usr/sbin/postdrop /usr/sbin/sendmail python3
[ -x "$SENDMAIL" ] || fail "$SENDMAIL is not built (make)"

# Inside the namespace: run the measurements and print the table.
if [ "${1:-}" = --inside ]; then
	work=$2
	now() { date +%s%N; }
	ms() { python3 -c "print('%.2f' % (($2 - $1) / 1e6 / $MESSAGES))"; }
	count() { grep -c '^From ' "$1" 2>/dev/null || echo 0; }
	# wait_for MBOX N: until MBOX holds N messages (60 s at most)
	wait_for() {
		local deadline=$((SECONDS + 60))
		while [ "$(count "$1")" -lt "$2" ]; do
			[ "$SECONDS" -lt "$deadline" ] || fail "$1 holds $(count "$1") of $2"
			sleep 0.01
		done
	}
	# run_side NAME CMD...: MESSAGES runs; prints "returns in-mbox" in ms/msg
	run_side() {
		local mbox=$1
		shift
		rm -f "$mbox"
		local t0 t1 t2 i
		t0=$(now)
		for ((i = 0; i < MESSAGES; i++)); do
			"$@" <"$work/msg" || fail "$* failed"
		done
		t1=$(now)
		wait_for "$mbox" "$MESSAGES"
		t2=$(now)
		echo "$(ms "$t0" "$t1") $(ms "$t0" "$t2")"
	}
	# as_nobody: MESSAGES runs by the nobody account through the
	# set-user-ID copy; prints ms/msg (the loop runs under one setpriv)
	as_nobody() {
		rm -f "$work/mail2/$USER_NAME"
		local t0 t1
		t0=$(now)
		setpriv --reuid=65534 --regid=65534 --clear-groups bash -c \
			'for ((i = 0; i < $1; i++)); do "$2" -i "$3" <"$4" || exit 1; done' \
			sh "$MESSAGES" "$work/sbin/mailslot-sendmail" "$USER_NAME" "$work/msg" ||
			fail "the set-user-ID injection failed"
		t1=$(now)
		[ "$(count "$work/mail2/$USER_NAME")" -eq "$MESSAGES" ] ||
			fail "the set-user-ID side lost messages"
		ms "$t0" "$t1"
	}

	# /etc/mailslot/mailslot.conf, which the set-user-ID helper reads
	mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/etc,workdir=$work/etc-work" /etc
	mount --bind "$work/postfix-etc" /etc/postfix
	mount --bind "$work/postfix-spool" /var/spool/postfix
	postfix start >/dev/null 2>&1 || fail "postfix did not start"
	trap 'postfix stop >/dev/null 2>&1 || true' EXIT
	export MAILSLOT_CONFIG=$work/mailslot.conf
	declare -a ms_ret ms_box pf_ret pf_box q_ret su_ret
	for ((r = 0; r < ROUNDS; r++)); do
		read -r a b < <(run_side "$work/mail/$USER_NAME" "$SENDMAIL" -i "$USER_NAME")
		ms_ret+=("$a") ms_box+=("$b")
		read -r a b < <(run_side "$work/pfmail/$USER_NAME" /usr/sbin/sendmail -i "$USER_NAME@bench.test")
		pf_ret+=("$a") pf_box+=("$b")
		t0=$(now)
		for ((i = 0; i < MESSAGES; i++)); do "$SENDMAIL" -i someone@remote.example <"$work/msg"; done
		t1=$(now)
		[ "$(find "$work/queue/env" -type f | wc -l)" -eq $(((r + 1) * MESSAGES)) ] ||
			fail "the queue does not hold every message"
		q_ret+=("$(ms "$t0" "$t1")")
		su_ret+=("$(env -u MAILSLOT_CONFIG bash -c "$(declare -f now ms count as_nobody); work=$work MESSAGES=$MESSAGES USER_NAME=$USER_NAME as_nobody")")
	done
	printf '| injector | returns (ms/msg) | in the mbox (ms/msg) |\n|---|---|---|\n'
	printf '| mailslot-sendmail, local mbox | %s | %s |\n' "$(median "${ms_ret[@]}")" \
		"$(median "${ms_box[@]}")"
	printf '| Postfix 3.7 sendmail (postdrop; pickup, cleanup, qmgr, local) | %s | %s |\n' \
		"$(median "${pf_ret[@]}")" "$(median "${pf_box[@]}")"
	printf '| mailslot-sendmail run by nobody (set-user-ID mailslot-enqueue), local mbox | %s | %s |\n' \
		"$(median "${su_ret[@]}")" "$(median "${su_ret[@]}")"
	printf '| mailslot-sendmail, remote recipient (queued) | %s | - |\n' "$(median "${q_ret[@]}")"
	exit 0
fi

bench_workdir
work=$WORK
# a 2 KiB message with its own header, as a program writes it
python3 -c "
import sys
body = ''.join('line %03d of the benchmark message, some text to fill it\n' % i for i in range(32))
sys.stdout.write('From: bench@example.org\nSubject: bench\nDate: Tue, 01 Dec 2026 12:00:00 +0000\n'
                 'Message-ID: <bench@example.org>\n\n' + body[:2048])" >"$work/msg"

mkdir -p "$work/mail" "$work/queue" "$work/pfmail" "$work/postfix-spool"
chmod 1777 "$work/pfmail"
printf '%s\n' "$USER_NAME" >"$work/users"
cat >"$work/mailslot.conf" <<EOF
spool = $work/mail
queue = $work/queue
users = $work/users
domain = example.org
hostname = bench.test
user = root
log = syslog
EOF
# the installed layout for a user who is not root: the set-user-ID helper
# beside mailslot-sendmail, spool and queue of the mail account
mkdir -p "$work/sbin" "$work/mail2" "$work/queue2" "$work/etc/mailslot" "$work/etc-work"
cp "$SENDMAIL" "$(dirname "$SENDMAIL")/mailslot-enqueue" "$work/sbin/"
chmod 4755 "$work/sbin/mailslot-enqueue"
chown mail:mail "$work/mail2" "$work/queue2"
chmod 0770 "$work/queue2"
sed -e "s|^spool = .*|spool = $work/mail2|" -e "s|^queue = .*|queue = $work/queue2|" -e 's|^user = .*|user = mail|' \
	"$work/mailslot.conf" >"$work/etc/mailslot/mailslot.conf"
# Postfix: the package's master.cf without the smtpd listener and chroot
cp -a /etc/postfix "$work/postfix-etc"
cat >"$work/postfix-etc/main.cf" <<EOF
compatibility_level = 3.6
myhostname = bench.test
mydestination = bench.test, localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mail_spool_directory = $work/pfmail
alias_maps =
alias_database =
biff = no
maillog_file = $work/postfix.log
maillog_file_prefixes = $work
EOF
sed -i '/^smtp *inet/d' "$work/postfix-etc/master.cf"
postconf -c "$work/postfix-etc" -F '*/*/chroot = n'
unshare -m --propagation private bash "$0" --inside "$work" | tee ${RESULTS_FILE:+-a "$RESULTS_FILE"}
