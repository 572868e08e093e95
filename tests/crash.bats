#!/usr/bin/env bats
# crash.bats: what a handler leaves behind when it dies or the disk fills.
# A handler killed during DATA leaves no trace; one killed during delivery
# leaves mailboxes that Python's mbox reader parses and that the next
# delivery repairs (the "mailslot <pid> <inode> <start> <end>" marker in the
# dotlock); a full spool or queue gives a 4xx and changes nothing.

load test_helper
load helpers/deliv_common

setup() {
	deliv_setup
}

# Wait until the listener has no handler child left (it was killed or done).
wait_no_handler() {
	for _ in $(seq 1 100); do
		pgrep -P "$LISTENER_PID" >/dev/null || return 0
		sleep 0.05
	done
	echo "a handler is still running" >&2
	return 1
}

queue_is_empty() {
	run files_in "$QUEUE"
	assert_output ""
}

# --- killed while the message comes in ------------------------------------------

@test "SIGKILL in the middle of DATA: mailboxes untouched, nothing in the queue" {
	start_listener
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	cp "$SPOOL/alice" "$MS/alice.orig"
	run python3 "$DELIV_PY" send --port "$PORT" --record "$REC" --tag cut --size 300000 \
		--to alice@example.org --to bob@example.org --to someone@remote.example \
		--mid-data kill --kill-child-of "$LISTENER_PID"
	assert_line --regexp '^DATA cut after [0-9]+ of [0-9]+ octets$'
	wait_no_handler
	cmp "$SPOOL/alice" "$MS/alice.orig"
	assert [ ! -e "$SPOOL/bob" ]
	run ls "$SPOOL"
	assert_output "alice"
	queue_is_empty
}

@test "client gone in the middle of DATA: mailboxes untouched, nothing in the queue" {
	start_listener
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	cp "$SPOOL/alice" "$MS/alice.orig"
	run python3 "$DELIV_PY" send --port "$PORT" --record "$REC" --tag cut --size 300000 \
		--to alice@example.org --to bob@example.org --to someone@remote.example --mid-data drop
	assert_line --regexp '^DATA cut after [0-9]+ of [0-9]+ octets$'
	wait_no_handler
	cmp "$SPOOL/alice" "$MS/alice.orig"
	run ls "$SPOOL"
	assert_output "alice"
	queue_is_empty
}

# --- killed while it delivers ----------------------------------------------------

@test "SIGKILL at random points of a 20 MB delivery to three mboxes: parseable, then only whole messages" {
	start_listener
	rcpts=(--to alice@example.org --to bob@example.org --to carol@example.org)
	size=20000000
	run send_mail "${rcpts[@]}" --size "$size" --tag whole
	assert_line --partial "DATA 250 "
	took=$(sed -n 's/^AFTERDOT //p' <<<"$output")
	killed=0
	# three kills in the middle of an append (as soon as the mailbox has
	# grown by a random amount), one at a random time after the dot
	for round in alice bob carol time; do
		if [ "$round" = time ]; then
			when=(--kill-after "$(python3 -c "import random; print('%.3f' % ($took * random.uniform(0.05, 0.9)))")")
		else
			when=(--kill-at-growth "$SPOOL/$round" "$(python3 -c "import random; print(random.randrange(1000, $size))")")
		fi
		run python3 "$DELIV_PY" send --port "$PORT" --record "$REC" "${rcpts[@]}" --size "$size" \
			--tag "kill-$round" --kill-child-of "$LISTENER_PID" "${when[@]}"
		assert_success
		grep -q '^DATA killed' <<<"$output" && killed=$((killed + 1))
		wait_no_handler
		for box in alice bob carol; do
			run count_messages mbox "$SPOOL/$box"
			assert_success
		done
	done
	# the kills must have hit deliveries, or this test proves nothing
	assert [ "$killed" -ge 2 ]
	# one more delivery repairs what a killed one left half-written
	run send_mail "${rcpts[@]}" --tag after
	assert_line --partial "DATA 250 "
	for box in alice bob carol; do
		run check_box mbox "$SPOOL/$box" --delivered-to "$box@example.org"
		assert_success
		assert_line "ok"
		assert [ ! -e "$SPOOL/$box.lock" ]
	done
	run grep -c "removed [0-9]* bytes of an interrupted delivery" "$LOG"
	assert [ "$output" -ge 1 ]
	queue_is_empty
}

# kill_while_writing FORMAT USER WATCH: two deliveries of 8 MB killed as
# soon as WATCH (the directory the message is first written to) has grown
# by a random amount; then every message the reader sees is whole.
kill_while_writing() {
	local fmt=$1 user=$2 watch=$3 size=8000000 killed=0
	start_listener --format "$fmt"
	run send_mail --to "$user@example.org" --size "$size" --tag whole
	assert_line --partial "DATA 250 "
	for round in 1 2; do
		run python3 "$DELIV_PY" send --port "$PORT" --record "$REC" --to "$user@example.org" --size "$size" \
			--tag "kill$round" --kill-child-of "$LISTENER_PID" \
			--kill-at-growth "$watch" "$(python3 -c "import random; print(random.randrange(1000, $size))")"
		assert_success
		grep -q '^DATA killed' <<<"$output" && killed=$((killed + 1))
		wait_no_handler
		run check_box "$fmt" "$SPOOL/$user"
		assert_success
		assert_line "ok"
	done
	assert [ "$killed" -ge 1 ]
	run send_mail --to "$user@example.org" --tag after
	assert_line --partial "DATA 250 "
	run check_box "$fmt" "$SPOOL/$user"
	assert_success
	assert_line "ok"
	queue_is_empty
}

# sweep_leftovers USER DIR PATTERN: the temporaries killed deliveries left in
# DIR stay while young; once 37 hours old, the next delivery removes them,
# and a young one (a delivery in progress) stays.
sweep_leftovers() {
	local user=$1 dir=$2 pattern=$3 left
	left=$(find "$dir" -maxdepth 1 -type f -name "$pattern" | wc -l)
	assert [ "$left" -ge 1 ]
	find "$dir" -maxdepth 1 -type f -name "$pattern" -exec touch -d '37 hours ago' {} +
	young="$dir/${pattern%\*}young"
	echo "in progress" >"$young"
	run send_mail --to "$user@example.org" --tag swept
	assert_line --partial "DATA 250 "
	run find "$dir" -maxdepth 1 -type f -name "$pattern"
	assert_output "$young"
	assert_equal "$(grep -c 'left by an interrupted delivery' "$LOG")" "$left"
	run check_box "$4" "$SPOOL/$user"
	assert_success
	assert_line "ok"
}

@test "SIGKILL while a Maildir message is written: no partial message ever appears in new/; tmp/ swept after 36 h" {
	kill_while_writing maildir alice "$SPOOL/alice/tmp"
	run files_in "$SPOOL/alice/cur"
	assert_output ""
	sweep_leftovers alice "$SPOOL/alice/tmp" '*' maildir
}

@test "SIGKILL while an MH message is written: no partial message ever gets a number; leftovers swept after 36 h" {
	kill_while_writing mh bob "$SPOOL/bob"
	# plain MH: numbers and .mh_sequences, every number in unseen
	run sh -c "cd '$SPOOL/bob' && ls -A | grep -v '^,mailslot\.' | sort -n | tr '\n' ' '"
	assert_output ".mh_sequences $(seq 1 "$(ls "$SPOOL/bob" | grep -c '^[0-9]*$')" | tr '\n' ' ')"
	assert_equal "$(cat "$SPOOL/bob/.mh_sequences")" "unseen: 1-$(ls "$SPOOL/bob" | grep -c '^[0-9]*$')"
	sweep_leftovers bob "$SPOOL/bob" ',mailslot.*' mh
}

@test "SIGKILL while a numbered message is written: no partial message ever gets a number; leftovers swept after 36 h" {
	kill_while_writing numbered bob "$SPOOL/bob"
	# every numbered message has its status file
	for f in "$SPOOL"/bob/[0-9]*; do
		case $f in *.status) continue ;; esac
		assert [ -f "$f.status" ]
	done
	sweep_leftovers bob "$SPOOL/bob" ',mailslot.*' numbered
}

# --- the repair rule, on crafted mailboxes -------------------------------------------

# craft BOX LOCK MODE INO_DELTA END: the traces of a killed delivery, as the
# handler leaves them: the dotlock LOCK holding the marker
# "mailslot <deadpid> <inode+INO_DELTA> <start> <end>".  MODE "partial"
# appends a partial message to BOX and marks it (end beyond the file);
# "whole" marks BOX's last whole message, "not-from" one octet after its
# From_ line; END "beyond" puts end past the file size, "reached" at it.
# Prints "<start> <end>".
craft() {
	python3 - "$@" "$(dead_pid)" <<'PY'
import os, sys
box, lock, mode, ino_delta, end_mode, deadpid = sys.argv[1:7]
st = os.stat(box) if os.path.exists(box) else None
if mode == "partial":
    if st is None:
        open(box, "wb").close()
        os.chmod(box, 0o600)
        st = os.stat(box)
    start = st.st_size
    partial = (b"From sender@remote.example Thu Jan  1 00:00:00 2026\n"
               b"Return-Path: <sender@remote.example>\nDelivered-To: alice@example.org\n"
               b"Subject: half\n\nthe first half of a message that was never fin")
    with open(box, "ab") as f:
        f.write(partial)
    end = start + len(partial) + 4096
else:
    # the marker names the last whole message, which must survive
    data = open(box, "rb").read()
    start = data.rindex(b"\nFrom ") + 1
    if mode == "not-from":
        start += 1
    end = st.st_size + 4096 if end_mode == "beyond" else st.st_size
record = "%d %d %d" % (st.st_ino + int(ino_delta), start, end)
with open(lock, "w") as f:
    if os.environ.get("MARKER_STYLE") == "xattr":
        # as the handler writes it where the file system has user xattrs
        f.write("mailslot %s\n" % deadpid)
        f.flush()
        os.setxattr(lock, "user.mailslot.append", record.encode())
    else:
        f.write("mailslot %s %s\n" % (deadpid, record))
print(start, end)
PY
}

@test "repair: a partial append under a stale marker is cut off by the next delivery" {
	run send_mail_stdin "" --to alice --tag first
	assert_line --partial "DATA 250 "
	size=$(stat -c %s "$SPOOL/alice")
	run craft "$SPOOL/alice" "$SPOOL/alice.lock" partial 0 beyond
	assert_success
	assert_output --regexp "^$size [0-9]+\$"
	assert [ "$(stat -c %s "$SPOOL/alice")" -gt "$size" ]
	run send_mail_stdin "" --to alice --tag second
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/alice"
	assert_line "count 2"
	assert_line "ok"
	run grep -c "never fin" "$SPOOL/alice"
	assert_output 0
	assert [ ! -e "$SPOOL/alice.lock" ]
	grep -q "removed [0-9]* bytes of an interrupted delivery" "$LOG"
}

@test "repair: the marker kept as the dotlock's extended attribute cuts the partial append too" {
	run send_mail_stdin "" --to alice --tag first
	assert_line --partial "DATA 250 "
	size=$(stat -c %s "$SPOOL/alice")
	MARKER_STYLE=xattr run craft "$SPOOL/alice" "$SPOOL/alice.lock" partial 0 beyond
	assert_success
	run send_mail_stdin "" --to alice --tag second
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/alice"
	assert_line "count 2"
	assert_line "ok"
	run grep -c "never fin" "$SPOOL/alice"
	assert_output 0
	grep -q "removed [0-9]* bytes of an interrupted delivery" "$LOG"
}

@test "repair: a record in a dotlock someone else owns is never trusted (no mailbox cut by a forged lock)" {
	[ "$(id -u)" = 0 ] || skip "needs root to give the lock to another account"
	run send_mail_stdin "" --to alice --tag first
	assert_line --partial "DATA 250 "
	run send_mail_stdin "" --to alice --tag second
	assert_line --partial "DATA 250 "
	local before
	before=$(stat -c %s "$SPOOL/alice")
	# a forged record claiming the whole mailbox was an interrupted append
	printf 'mailslot 1 %s 0 %s\n' "$(stat -c %i "$SPOOL/alice")" "$((before + 1))" > "$SPOOL/alice.lock"
	chown nobody "$SPOOL/alice.lock"
	run send_mail_stdin "" --to alice --tag third
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/alice"
	assert_line "count 3"
	assert_line "ok"
	run grep -c "interrupted delivery" "$LOG"
	assert_output 0
}

@test "repair: a partial append at offset 0 leaves only the new message" {
	run craft "$SPOOL/alice" "$SPOOL/alice.lock" partial 0 beyond
	assert_success
	assert_output --regexp '^0 [0-9]+$'
	run send_mail_stdin "" --to alice --tag only
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/alice"
	assert_line "count 1"
	assert_line "ok"
}

# A stale marker that does not describe the mailbox any more must cut nothing.
marker_cuts_nothing() {
	run send_mail_stdin "" --to alice --tag a
	assert_line --partial "DATA 250 "
	run send_mail_stdin "" --to alice --tag b
	assert_line --partial "DATA 250 "
	run craft "$SPOOL/alice" "$SPOOL/alice.lock" "$@"
	assert_success
	run send_mail_stdin "" --to alice --tag c
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/alice"
	assert_line "count 3"
	assert_line "ok"
	assert [ ! -e "$SPOOL/alice.lock" ]
}

@test "repair: a marker for another inode (the mailbox was replaced) cuts nothing" {
	marker_cuts_nothing whole 1 beyond
}

@test "repair: a marker whose start is not a From_ line cuts nothing" {
	marker_cuts_nothing not-from 0 beyond
}

@test "repair: a marker whose end was reached (the append finished) cuts nothing" {
	marker_cuts_nothing whole 0 reached
}

# --- a full disk -----------------------------------------------------------------

# Skip unless a tmpfs can be mounted in a mount namespace of our own.
require_namespace() {
	command -v unshare >/dev/null || skip "unshare is not installed"
	[ "$(id -u)" -eq 0 ] || skip "mounting a tmpfs needs root"
}

# in_namespace SCRIPT: bash SCRIPT in a private mount namespace, where it
# may mount a tiny tmpfs; the helpers and variables above are available.
in_namespace() {
	export SPOOL QUEUE MS LOG REC SMTPD DELIV_PY
	export -f send_mail_stdin smtpd_args check_box count_messages files_in
	unshare -m --propagation private bash -c "set -u; $1"
}

# fill DIR KIB: fill the file system of DIR, then free KIB KiB again.
FILL='fill() { dd if=/dev/zero of="$1/.fill" bs=4k 2>/dev/null || true; truncate -s "-$2k" "$1/.fill"; }'

@test "disk full: an mbox append that does not fit gives 452 (or 451) and leaves the mailbox as it was" {
	require_namespace
	run in_namespace "$FILL
		mount -t tmpfs -o size=256k tmpfs \"\$SPOOL\" || exit 99
		send_mail_stdin '' --to alice --tag first | grep '^DATA'
		cp \"\$SPOOL/alice\" \"\$MS/alice.orig\"
		fill \"\$SPOOL\" 12
		send_mail_stdin '' --to alice --tag big --size 60000 | grep '^DATA'
		cmp \"\$SPOOL/alice\" \"\$MS/alice.orig\" && echo unchanged
		count_messages mbox \"\$SPOOL/alice\"
		ls -A \"\$SPOOL\"
		rm \"\$SPOOL/.fill\"
		send_mail_stdin '' --to alice --tag again --size 60000 | grep '^DATA'
		check_box mbox \"\$SPOOL/alice\""
	assert_success
	assert_line --index 0 --partial "DATA 250 "
	assert_line --index 1 --regexp '^DATA 45[12] 4\.3\.[01] '
	assert_line --index 2 "unchanged"
	assert_line --index 3 "1"
	assert_line --index 4 ".fill"
	assert_line --index 5 "alice"
	assert_line --index 6 --partial "DATA 250 "
	assert_line "count 2"
	assert_line "ok"
}

@test "disk full: Maildir and MH deliveries that do not fit give 452 (or 451) and leave no file behind" {
	require_namespace
	run in_namespace "$FILL
		mount -t tmpfs -o size=256k tmpfs \"\$SPOOL\" || exit 99
		for f in maildir:alice mh:bob; do
			u=\${f#*:} f=\${f%:*}
			REC=\$MS/\$f.jsonl send_mail_stdin \"--format \$f\" --to \$u --tag first\$f | grep '^DATA'
			fill \"\$SPOOL\" 8
			REC=\$MS/\$f.jsonl send_mail_stdin \"--format \$f\" --to \$u --tag big\$f --size 60000 | grep '^DATA'
			rm \"\$SPOOL/.fill\"
			echo \"\$f: \$(cd \"\$SPOOL/\$u\" && find . -type f | sort | tr '\n' ' ')\"
		done
		check_box maildir \"\$SPOOL/alice\" \"\$MS/maildir.jsonl\"
		check_box mh \"\$SPOOL/bob\" \"\$MS/mh.jsonl\""
	assert_success
	assert_line --index 0 --partial "DATA 250 "
	assert_line --index 1 --regexp '^DATA 45[12] 4\.3\.[01] '
	assert_line --index 2 --regexp '^maildir: \./new/[^ ]+ $'
	assert_line --index 3 --partial "DATA 250 "
	assert_line --index 4 --regexp '^DATA 45[12] 4\.3\.[01] '
	assert_line --index 5 "mh: ./.mh_sequences ./1 "
	assert_equal "$(grep -c '^ok$' <<<"$output")" 2
}

@test "queue full while spooling: 452 (or 451), no mailbox written, nothing left in the queue" {
	require_namespace
	run in_namespace "$FILL
		mount -t tmpfs -o size=256k tmpfs \"\$QUEUE\" || exit 99
		mkdir \"\$QUEUE/tmp\" \"\$QUEUE/msg\" \"\$QUEUE/env\"
		fill \"\$QUEUE\" 12
		send_mail_stdin '' --to alice --to someone@remote.example --tag big --size 60000 | grep '^DATA'
		echo \"spool: \$(ls -A \"\$SPOOL\")\"
		echo \"queue: \$(find \"\$QUEUE\" -type f ! -name .fill)\"
		rm \"\$QUEUE/.fill\"
		send_mail_stdin '' --to alice --tag again --size 60000 | grep '^DATA'
		check_box mbox \"\$SPOOL/alice\""
	assert_success
	assert_line --index 0 --regexp '^DATA 45[12] 4\.3\.[01] '
	assert_line --index 1 "spool: "
	assert_line --index 2 "queue: "
	assert_line --index 3 --partial "DATA 250 "
	assert_line "count 1"
	assert_line "ok"
}

@test "queue full at commit (no inode for the envelope): 452 (or 451) and no half entry" {
	require_namespace
	run in_namespace "
		mount -t tmpfs -o size=1m,nr_inodes=5 tmpfs \"\$QUEUE\" || exit 99
		mkdir \"\$QUEUE/tmp\" \"\$QUEUE/msg\" \"\$QUEUE/env\"
		send_mail_stdin '' --to someone@remote.example --tag remote | grep '^DATA'
		echo \"queue: \$(find \"\$QUEUE\" -type f)\"
		echo \"spool: \$(ls -A \"\$SPOOL\")\""
	assert_success
	assert_line --index 0 --regexp '^DATA 45[12] 4\.3\.[01] '
	assert_line --index 1 "queue: "
	assert_line --index 2 "spool: "
}
