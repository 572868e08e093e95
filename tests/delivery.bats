#!/usr/bin/env bats
# delivery.bats: what lands in the mailbox.  Messages go in through Python's
# smtplib, come back through Python's mailbox module, and are compared byte
# for byte with what was sent (helpers/deliv_mail.py): mbox (mboxrd), Maildir
# and MH, the headers added at delivery, aliases and the users file, the
# queue and the hand-off, many deliveries at once, and every mailbox the
# handler must refuse to write.

load test_helper
load helpers/deliv_common

setup() {
	deliv_setup
}

# parallel_senders N COUNT RCPT: N sessions at once on the listener, COUNT
# messages each; records in rec.<i>, output in out.<i>.  Prints how many
# messages were answered 250, then any other DATA reply with its count.
parallel_senders() {
	local n=$1 count=$2 rcpt=$3 i
	for i in $(seq 1 "$n"); do
		python3 "$DELIV_PY" send --port "$PORT" --to "$rcpt" --count "$count" --tag "p$i" \
			--record "$BATS_TEST_TMPDIR/rec.$i" >"$BATS_TEST_TMPDIR/out.$i" 2>&1 3>&- &
	done
	wait
	cat "$BATS_TEST_TMPDIR"/out.* | grep -c '^DATA 250 '
	cat "$BATS_TEST_TMPDIR"/out.* | grep -v '^DATA 250 \|^RCPT .* 250$\|^AFTERDOT ' |
		sed 's/queued as [0-9A-F]*//' | sort | uniq -c
}

# background OUTFILE COMMAND...: run COMMAND in the background, output in
# OUTFILE; sets BG_PID.  The test's teardown ends it (by pid).
background() {
	local out=$1
	shift
	"$@" >"$out" 2>&1 3>&- &
	BG_PID=$!
	echo "$BG_PID" >>"$BATS_TEST_TMPDIR/pids"
}

# --- the three formats --------------------------------------------------

@test "mbox: five messages come back byte for byte through Python's mbox reader" {
	start_listener
	run send_mail --to alice@example.org --count 5
	assert_success
	assert_equal "$(grep -c '^DATA 250 2.0.0 Ok: queued as ' <<<"$output")" 5
	run check_box mbox "$SPOOL/alice" --delivered-to alice@example.org --return-path sender@remote.example
	assert_success
	assert_line "count 5"
	assert_line "ok"
	assert [ ! -e "$SPOOL/alice.lock" ]
	run stat -c %a "$SPOOL/alice"
	assert_output 600
}

@test "mboxrd: a body line 'From ' is stored '>From ', '>From ' is stored '>>From ', and comes back exactly" {
	start_listener
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	box="$SPOOL/alice"
	# the raw file: one more '>' in front of every ^>*From , nothing else quoted
	assert_equal "$(grep -c '^From ' "$box")" 1
	assert_equal "$(grep -c '^>From the first line of a paragraph, which mbox must quote$' "$box")" 1
	assert_equal "$(grep -c '^>>From an already quoted line$' "$box")" 1
	assert_equal "$(grep -c '^>>>From a doubly quoted line$' "$box")" 1
	assert_equal "$(grep -c '^From:not a separator$' "$box")" 1
	assert_equal "$(grep -c '^From$' "$box")" 1
	assert_equal "$(grep -c '^ From indented, left alone$' "$box")" 1
	# Python's mbox reader does not unquote: it returns the quoted lines, and
	# undoing one level of mboxrd quoting gives the body that was sent
	run python3 - "$box" "$DELIV_PY" <<'PY'
import mailbox, sys, importlib.util
spec = importlib.util.spec_from_file_location("d", sys.argv[2]); d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)
box = mailbox.mbox(sys.argv[1], create=False)
assert len(box) == 1, len(box)
body = box.get_bytes(0).partition(b"\n\n")[2]
lines = body.split(b"\n")
print("quoted-from" if b">From the first line of a paragraph, which mbox must quote" in lines else "MISSING")
print("quoted-quoted" if b">>From an already quoted line" in lines else "MISSING")
sent = d.make_body(box[0]["X-Deliv-Id"])
print("round-trip" if d.mboxrd_unquote(body) == sent else "DIFFERS")
PY
	assert_success
	assert_output "quoted-from
quoted-quoted
round-trip"
	run check_box mbox "$box"
	assert_line "ok"
}

@test "mboxrd: quoting does not trust the caller's From_ count: 0 or 1000, every From line is quoted, the copy exact" {
	# from the sources: the sanitizer run's objects need another runtime
	cc -D_GNU_SOURCE -std=c17 -Wall -Wextra -Werror -Wno-format-truncation -I"$TESTS_DIR/../src" \
		-o "$MS/deliv_append" "$TESTS_DIR/helpers/deliv_append.c" \
		"$TESTS_DIR"/../src/{deliver,privs,users,addr,config,mailbox,lock,mbox,maildir,mh,numbered,log,fileio,status}.c
	printf 'Subject: counted wrong\n\nFrom the start\n>From quoted\nplain\nFrom again\n' >"$MS/msg"
	for count in 0 1000; do
		run "$MS/deliv_append" mbox "$SPOOL" alice "$count" <"$MS/msg"
		assert_success
		assert_output --regexp '^250 2\.0\.0 '
	done
	# no line of the mailbox starts "From " but the two From_ lines
	assert_equal "$(grep -c '^From ' "$SPOOL/alice")" 2
	assert_equal "$(grep -c '^>From the start$' "$SPOOL/alice")" 2
	assert_equal "$(grep -c '^>>From quoted$' "$SPOOL/alice")" 2
	# and each message unquotes to exactly what was sent, after the two added header lines
	run python3 - "$SPOOL/alice" "$MS/msg" "$TESTS_DIR/helpers" <<'PY'
import mailbox, sys
sys.path.insert(0, sys.argv[3])
import deliv_mail
want = open(sys.argv[2], "rb").read()
box = mailbox.mbox(sys.argv[1], create=False)
for key in box.keys():
    got = deliv_mail.mboxrd_unquote(box.get_bytes(key))
    assert got.split(b"\n", 2)[2] == want, got
print("ok %d" % len(box.keys()))
PY
	assert_output "ok 2"
}

@test "mboxrd: a 3 MB body with thousands of From and dot lines comes back exact (quoting across copy buffers)" {
	start_listener
	run send_mail --to alice@example.org --size 3000000 --count 2
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 2
	run check_box mbox "$SPOOL/alice"
	assert_line "count 2"
	assert_line "ok"
	assert [ "$(grep -c '^>\+From ' "$SPOOL/alice")" -gt 1000 ]
}

@test "mbox: a mailbox another program left without the final empty line is appended to cleanly" {
	printf 'From x@y Thu Jan  1 00:00:00 2024\nSubject: one\n\nno empty line after me\n' >"$SPOOL/alice"
	printf 'From x@y Thu Jan  1 00:00:00 2024\nSubject: two\n\nno line end at all' >"$SPOOL/bob"
	start_listener
	run send_mail --to alice@example.org --to bob@example.org
	assert_line --partial "DATA 250 "
	for box in alice bob; do
		run python3 - "$SPOOL/$box" <<'PY'
import mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
print(len(box))
print(repr(box.get_bytes(0).partition(b"\n\n")[2]))
print(box[1]["X-Deliv-Id"] is not None)
PY
		assert_line --index 0 2
		assert_line --index 2 True
	done
	run python3 -c "import mailbox; print(repr(mailbox.mbox('$SPOOL/alice').get_bytes(0).partition(b'\n\n')[2]))"
	assert_output "b'no empty line after me\\n'"
	run python3 -c "import mailbox; print(repr(mailbox.mbox('$SPOOL/bob').get_bytes(0).partition(b'\n\n')[2]))"
	assert_output --regexp "^b'no line end at all(\\\\n)?'\$"
}

@test "mbox: a sender with a space in a quoted local part keeps the From_ line one word" {
	start_listener
	run send_mail --from '"john doe"@remote.example' --to carol@example.org
	assert_line --partial "DATA 250 "
	run head -1 "$SPOOL/carol"
	assert_output --regexp '^From "john_doe"@remote\.example [A-Z][a-z]{2} '
	run check_box mbox "$SPOOL/carol" --return-path '"john doe"@remote.example'
	assert_line "count 1"
	assert_line "ok"
}

@test "one session: a big local message, a remote one, then a small local one, each exact (the spool file is reused)" {
	start_listener
	run send_mail --message 400000:alice@example.org --message 100:someone@remote.example \
		--message 0:alice@example.org --message 50:alice@example.org,someone@remote.example \
		--message 0:bob@example.org
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 5
	run check_box mbox "$SPOOL/alice" --for alice@example.org
	assert_line "count 3"
	assert_line "ok"
	run check_box mbox "$SPOOL/bob" --for bob@example.org
	assert_line "count 1"
	assert_line "ok"
	assert_equal "$(files_in "$QUEUE/msg" | wc -l)" 2
	for f in $(files_in "$QUEUE/msg"); do
		run python3 "$DELIV_PY" check-queue "$QUEUE" "${f##*/}" "$REC"
		assert_success
	done
}

@test "maildir: five messages in new/, each file exactly the message, tmp/ left empty" {
	start_listener --format maildir
	run send_mail --to bob@example.org --count 5
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 5
	run check_box maildir "$SPOOL/bob" --delivered-to bob@example.org --return-path sender@remote.example
	assert_success
	assert_line "count 5"
	assert_line "ok"
	assert_equal "$(files_in "$SPOOL/bob/new" | wc -l)" 5
	assert_equal "$(files_in "$SPOOL/bob/tmp" | wc -l)" 0
	assert_equal "$(files_in "$SPOOL/bob/cur" | wc -l)" 0
	run stat -c %a "$SPOOL/bob" "$SPOOL/bob/new" "$SPOOL/bob/tmp" "$SPOOL/bob/cur"
	assert_output "700
700
700
700"
	run sh -c "stat -c %a '$SPOOL'/bob/new/* | sort -u"
	assert_output 600
	# Dovecot takes S= in the name for the file size: it must be exact
	for f in "$SPOOL"/bob/new/*; do
		assert_equal "${f##*,S=}" "$(stat -c %s "$f")"
	done
}

@test "mh: five messages numbered 1 to 5, plain MH: no other file, all five in the unseen sequence" {
	start_listener --format mh
	run send_mail --to carol@example.org --count 5
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 5
	run check_box mh "$SPOOL/carol" --delivered-to carol@example.org --return-path sender@remote.example
	assert_success
	assert_line "count 5"
	assert_line "ok"
	run ls -A "$SPOOL/carol"
	assert_output ".mh_sequences
1
2
3
4
5"
	assert_equal "$(cat "$SPOOL/carol/.mh_sequences")" "unseen: 1-5"
}

@test "mh: the unseen sequence is extended in place, other sequences and gaps kept" {
	mkdir -m 700 "$SPOOL/carol"
	for n in 2 4 7; do
		printf 'From: a@b\nSubject: old\n\nold\n' >"$SPOOL/carol/$n"
	done
	printf 'cur: 7\nunseen: 2 4\nflagged: 7\n' >"$SPOOL/carol/.mh_sequences"
	start_listener --format mh
	run send_mail --to carol@example.org --count 2
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 2
	assert_equal "$(cat "$SPOOL/carol/.mh_sequences")" "cur: 7
unseen: 2 4 8-9
flagged: 7"
	# Python's reader sees the same sequences
	run python3 -c "import mailbox, sys; print(sorted(mailbox.MH(sys.argv[1]).get_sequences().items()))" "$SPOOL/carol"
	assert_output "[('cur', [7]), ('flagged', [7]), ('unseen', [2, 4, 8, 9])]"
}

@test "mh: nmh reads it as MH: scan, flist shows the new mail unseen, rmm and folder -pack renumber, rmf removes the folder" {
	[ -x /usr/bin/mh/scan ] || skip "nmh is not installed"
	start_listener --format mh
	run send_mail --to carol@example.org --count 3
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 3
	export HOME="$MS" MH="$MS/.mh_profile" MHCONTEXT="$MS/context"
	printf 'Path: %s\nUnseen-Sequence: unseen\n' "$SPOOL" >"$MH"
	run /usr/bin/mh/scan +carol
	assert_success
	assert_equal "${#lines[@]}" 3
	run /usr/bin/mh/flist -sequence unseen +carol
	assert_success
	assert_output --regexp '^carol\+? +has +3 in sequence unseen; out of +3$'
	run /usr/bin/mh/rmm +carol 2
	assert_success
	run /usr/bin/mh/folder -pack +carol
	assert_success
	# (rmm keeps the removed message as ",2")
	run ls "$SPOOL/carol"
	assert_output ",2
1
2"
	run /usr/bin/mh/flist -sequence unseen +carol
	assert_output --regexp 'has +2 in sequence unseen; out of +2$'
	# a delivery after nmh wrote the sequences takes the next number
	run send_mail --to carol@example.org
	assert_line --partial "DATA 250 "
	run /usr/bin/mh/flist -sequence unseen +carol
	assert_output --regexp 'has +3 in sequence unseen; out of +3$'
	run /usr/bin/mh/rmf -nointeractive +carol
	assert_success
	assert [ ! -e "$SPOOL/carol" ]
}

@test "mh: mutt finds the new mail (mutt -Z), and none in a folder whose unseen sequence is empty" {
	command -v mutt >/dev/null || skip "mutt is not installed"
	command -v script >/dev/null || skip "script (util-linux) is not installed"
	start_listener --format mh
	run send_mail --to carol@example.org --count 2
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 2
	# mutt -Z opens the first mailbox with new mail, or says there is none
	mutt_new_mail() {
		# (folder: else mutt asks whether to create ~/Mail)
		printf 'set mbox_type=MH\nset folder=%s\nmailboxes %s\n' "$SPOOL" "$1" >"$MS/muttrc"
		TERM=dumb HOME="$MS" timeout 20 script -qec "mutt -n -F '$MS/muttrc' -Z -e 'push <exit>'" /dev/null \
			</dev/null | tr -d '\r' | grep -a -c 'No mailbox with new mail' || true
	}
	assert_equal "$(mutt_new_mail "$SPOOL/carol")" 0
	# the same folder with its unseen sequence emptied: mutt sees nothing new
	: >"$SPOOL/carol/.mh_sequences"
	assert_equal "$(mutt_new_mail "$SPOOL/carol")" 1
}

@test "numbered: five messages numbered 1 to 5, each with N.status holding \\Recent" {
	start_listener --format numbered
	run send_mail --to carol@example.org --count 5
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 5
	run check_box mh "$SPOOL/carol" --delivered-to carol@example.org --return-path sender@remote.example
	assert_success
	assert_line "count 5"
	assert_line "ok"
	run ls "$SPOOL/carol"
	assert_output "1
1.status
2
2.status
3
3.status
4
4.status
5
5.status"
	for n in 1 2 3 4 5; do
		assert_equal "$(cat "$SPOOL/carol/$n.status")" '\Recent'
	done
	# no temporary file is left behind (ls -A shows dot files: .mh_sequences only)
	run ls -A "$SPOOL/carol"
	refute_output --partial ","
}

@test "mh, numbered: temporary files are created exclusively (O_EXCL), never truncated through an existing name" {
	command -v strace >/dev/null || skip "strace is not installed"
	for f in mh:1 numbered:2; do
		SMTPD="strace -f -o $MS/trace.${f%:*} -e trace=openat $SMTPD" run send_mail_stdin "--format ${f%:*}" \
			--to carol@example.org
		assert_line --partial "DATA 250 "
		run grep 'openat([^,]*, ",mailslot\.' "$MS/trace.${f%:*}"
		refute_output --partial O_TRUNC
		assert_equal "$(grep -c O_EXCL <<<"$output")" "${f#*:}"
		rm -rf "${SPOOL:?}/carol"
	done
}

# --- headers added at delivery -------------------------------------------

@test "Return-Path: is the envelope sender and Delivered-To: the final recipient of each copy" {
	start_listener
	run send_mail --from sender@remote.example --to staff@example.org
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/alice" --delivered-to alice@example.org --return-path sender@remote.example
	assert_line "ok"
	run check_box mbox "$SPOOL/bob" --delivered-to bob@example.org --return-path sender@remote.example
	assert_line "ok"
	# the two lines come first, once, before the Received: the handler wrote
	run sed -n '2,4p' "$SPOOL/alice"
	assert_line --index 0 "Return-Path: <sender@remote.example>"
	assert_line --index 1 "Delivered-To: alice@example.org"
	assert_line --index 2 --regexp '^Received: from client\.test '
}

@test "Return-Path: <> for the null sender, and the From_ line names MAILER-DAEMON" {
	start_listener
	run send_mail --from "" --to carol@example.org
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/carol" --return-path "" --delivered-to carol@example.org
	assert_line "ok"
	run head -1 "$SPOOL/carol"
	assert_output --regexp '^From MAILER-DAEMON [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [0-9]{4}$'
}

# --- who is local ---------------------------------------------------------

@test "aliases: staff reaches alice and bob, root reaches alice, friend is queued" {
	start_listener
	REC="$BATS_TEST_TMPDIR/staff.jsonl" run send_mail --to staff@example.org
	assert_line --partial "DATA 250 "
	REC="$BATS_TEST_TMPDIR/root.jsonl" run send_mail --to root@example.org
	assert_line --partial "DATA 250 "
	REC="$BATS_TEST_TMPDIR/friend.jsonl" run send_mail --to friend@example.org
	assert_line --partial "DATA 250 "
	qid=$(queued_id)
	run check_box mbox "$SPOOL/alice" "$BATS_TEST_TMPDIR/staff.jsonl" "$BATS_TEST_TMPDIR/root.jsonl" \
		--delivered-to alice@example.org
	assert_line "count 2"
	assert_line "ok"
	run check_box mbox "$SPOOL/bob" "$BATS_TEST_TMPDIR/staff.jsonl"
	assert_line "count 1"
	assert_line "ok"
	# no mailbox is named after an alias
	run ls "$SPOOL"
	assert_output "alice
bob"
	# friend's message is in the queue, for someone@remote.example only
	assert [ -f "$QUEUE/env/$qid" ]
	run grep '^rcpt ' "$QUEUE/env/$qid"
	assert_output --regexp '^rcpt [0-9]+ [0-9]+ - someone@remote\.example$'
	run python3 "$DELIV_PY" check-queue "$QUEUE" "$qid" "$BATS_TEST_TMPDIR/friend.jsonl"
	assert_success
}

@test "users file: Dave, dave and DAVE@EXAMPLE.ORG are one mailbox, named in lower case" {
	start_listener
	run send_mail --to Dave@example.org
	assert_line --partial "DATA 250 "
	run send_mail --to dave@example.org
	assert_line --partial "DATA 250 "
	run send_mail --to DAVE@EXAMPLE.ORG
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/dave"
	assert_line "count 3"
	assert_line "ok"
	run ls "$SPOOL"
	assert_output "dave"
	run send_mail --to eve@example.org
	assert_line "RCPT eve@example.org 550"
}

@test "postmaster: accepted in any case and with no domain, and all copies land in one mailbox" {
	start_listener
	run send_mail --to postmaster@example.org
	assert_line --partial "DATA 250 "
	run send_mail --to Postmaster@EXAMPLE.org
	assert_line --partial "DATA 250 "
	run send_mail --to postmaster
	assert_line --partial "DATA 250 "
	# the users file has no postmaster: it goes where root goes (the
	# alias root: alice), one mailbox holding the three messages whole
	run ls "$SPOOL"
	assert_output 'alice'
	run check_box mbox "$SPOOL/$output"
	assert_line "count 3"
	assert_line "ok"
}

@test "postmaster: an alias for postmaster is followed" {
	printf 'postmaster: bob\n' >>"$MS/aliases"
	start_listener
	run send_mail --to postmaster@example.org
	assert_line --partial "DATA 250 "
	run ls "$SPOOL"
	assert_output "bob"
	run check_box mbox "$SPOOL/bob" --delivered-to bob@example.org
	assert_line "ok"
}

# --- the queue and the hand-off -------------------------------------------

@test "remote recipient: queued in msg/ and env/, the envelope lists it, the file holds the message" {
	start_listener
	run send_mail --from sender@remote.example --to someone@remote.example
	assert_line --partial "DATA 250 2.0.0 Ok: queued as "
	qid=$(queued_id)
	assert [ -n "$qid" ]
	assert [ -f "$QUEUE/msg/$qid" ]
	assert [ -f "$QUEUE/env/$qid" ]
	run cat "$QUEUE/env/$qid"
	assert_line --index 0 "mailslot-envelope 1"
	assert_line "id $qid"
	assert_line "sender sender@remote.example"
	assert_line --regexp '^rcpt 0 [0-9]+ - someone@remote\.example$'
	assert_equal "$(grep -c '^rcpt ' "$QUEUE/env/$qid")" 1
	run python3 "$DELIV_PY" check-queue "$QUEUE" "$qid" "$REC"
	assert_success
	assert_equal "$(files_in "$QUEUE/tmp" | wc -l)" 0
	assert_equal "$(files_in "$SPOOL" | wc -l)" 0
}

@test "local and remote together: local copies delivered, only the remote one queued" {
	start_listener
	run send_mail --to staff@example.org --to someone@remote.example
	assert_line --partial "DATA 250 "
	qid=$(queued_id)
	run grep '^rcpt ' "$QUEUE/env/$qid"
	assert_output --regexp '^rcpt [0-9]+ [0-9]+ - someone@remote\.example$'
	run check_box mbox "$SPOOL/alice"
	assert_line "ok"
	run check_box mbox "$SPOOL/bob"
	assert_line "ok"
	run python3 "$DELIV_PY" check-queue "$QUEUE" "$qid" "$REC"
	assert_success
}

@test "handoff: runs after the entry is committed, with MAILSLOT_QUEUE_ID, and not when nothing is queued" {
	hlog="$BATS_TEST_TMPDIR/handoff.log"
	start_listener --handoff "test -f \"\$MAILSLOT_QUEUE/env/\$MAILSLOT_QUEUE_ID\" && test -f \"\$MAILSLOT_QUEUE/msg/\$MAILSLOT_QUEUE_ID\" && echo \"committed \$MAILSLOT_QUEUE_ID \$MAILSLOT_QUEUE\" >>$hlog"
	# local only: nothing queued, no hand-off
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	sleep 1
	assert [ ! -e "$hlog" ]
	run send_mail --to someone@remote.example
	assert_line --partial "DATA 250 "
	qid=$(queued_id)
	for _ in $(seq 1 50); do
		[ -s "$hlog" ] && break
		sleep 0.1
	done
	sleep 0.3
	run cat "$hlog"
	assert_output "committed $qid $QUEUE"
}

# --- many deliveries at once ------------------------------------------------

@test "concurrency: 20 sessions of 10 messages to one mbox leave 200 whole messages" {
	start_listener
	run parallel_senders 20 10 alice@example.org
	assert_output 200
	run check_box mbox "$SPOOL/alice" "$BATS_TEST_TMPDIR"/rec.*
	assert_success
	assert_line "count 200"
	assert_line "ok"
	assert [ ! -e "$SPOOL/alice.lock" ]
}

@test "concurrency: 20 sessions of 10 messages to one Maildir leave 200 distinct files" {
	start_listener --format maildir
	run parallel_senders 20 10 bob@example.org
	assert_output 200
	run check_box maildir "$SPOOL/bob" "$BATS_TEST_TMPDIR"/rec.*
	assert_success
	assert_line "count 200"
	assert_line "ok"
	assert_equal "$(files_in "$SPOOL/bob/new" | wc -l)" 200
	assert_equal "$(files_in "$SPOOL/bob/tmp" | wc -l)" 0
}

@test "concurrency: 20 sessions of 10 messages to one numbered folder leave messages 1 to 200, each with its status" {
	start_listener --format numbered
	run parallel_senders 20 10 carol@example.org
	assert_output 200
	run check_box mh "$SPOOL/carol" "$BATS_TEST_TMPDIR"/rec.*
	assert_success
	assert_line "count 200"
	assert_line "ok"
	run sh -c "cd '$SPOOL/carol' && ls | grep -E '^[0-9]+\$' | sort -n | tr '\n' ' '"
	assert_output "$(seq 1 200 | tr '\n' ' ')"
	run sh -c "cd '$SPOOL/carol' && ls | grep -E '^[0-9]+\.status\$' | sort -n | tr '\n' ' '"
	assert_output "$(seq 1 200 | sed 's/$/.status/' | tr '\n' ' ')"
	run sh -c "cat '$SPOOL'/carol/*.status | sort | uniq -c"
	assert_output --regexp '^ *200 \\Recent$'
	run ls -A "$SPOOL/carol"
	refute_output --partial ","
}

@test "concurrency: 20 sessions of 10 messages to one MH folder leave messages 1 to 200, all in unseen" {
	start_listener --format mh
	run parallel_senders 20 10 carol@example.org
	assert_output 200
	run check_box mh "$SPOOL/carol" "$BATS_TEST_TMPDIR"/rec.*
	assert_success
	assert_line "count 200"
	assert_line "ok"
	run sh -c "cd '$SPOOL/carol' && ls -A | sort -n | tr '\n' ' '"
	assert_output ".mh_sequences $(seq 1 200 | tr '\n' ' ')"
	assert_equal "$(cat "$SPOOL/carol/.mh_sequences")" "unseen: 1-200"
}

# --- mailboxes the handler must not write ---------------------------------------

@test "a mailbox that is a symlink is refused with 451, and its target is untouched" {
	printf 'From x@y Thu Jan  1 00:00:00 2024\nSubject: keep\n\nkeep me\n\n' >"$MS/target"
	cp "$MS/target" "$MS/target.orig"
	ln -s "$MS/target" "$SPOOL/alice"
	ln -s "$MS/nowhere" "$SPOOL/bob"
	start_listener
	run send_mail --to alice@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	run send_mail --to bob@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	cmp "$MS/target" "$MS/target.orig"
	assert [ -L "$SPOOL/alice" ]
	assert [ ! -e "$MS/nowhere" ]
	assert [ ! -e "$SPOOL/alice.lock" ]
	# the refusal is per mailbox: carol in the same message still gets it
	run send_mail --to alice@example.org --to carol@example.org
	assert_line --partial "DATA 250 "
	cmp "$MS/target" "$MS/target.orig"
	run check_box mbox "$SPOOL/carol"
	assert_line "count 1"
	assert_line "ok"
}

@test "a mailbox that is a FIFO is refused with 451 and does not hang the handler" {
	mkfifo "$SPOOL/alice"
	start_listener
	run timeout 20 python3 "$DELIV_PY" send --port "$PORT" --to alice@example.org --timeout 15
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	assert [ -p "$SPOOL/alice" ]
}

@test "a mailbox with two hard links is refused with 451, and neither name changes" {
	start_listener
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	ln "$SPOOL/alice" "$MS/second-name"
	cp "$SPOOL/alice" "$MS/alice.orig"
	run send_mail --to alice@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	cmp "$SPOOL/alice" "$MS/alice.orig"
	assert [ ! -e "$SPOOL/alice.lock" ]
}

# --- locks ---------------------------------------------------------------

@test "lock contention: a lockf held past --lock-timeout 1 gives 451 4.2.0, mailbox unchanged; then it delivers" {
	start_listener --lock-timeout 1
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	cp "$SPOOL/alice" "$MS/alice.orig"
	background "$MS/holder.out" python3 "$DELIV_PY" hold-lock "$SPOOL/alice" 60
	holder=$BG_PID
	for _ in $(seq 1 50); do
		grep -q locked "$MS/holder.out" && break
		sleep 0.1
	done
	assert_equal "$(cat "$MS/holder.out")" locked
	run send_mail --to alice@example.org
	assert_line --regexp '^DATA 451 4\.2\.0 '
	# it waited for the lock timeout, not less, not the default 30 s
	after=$(sed -n 's/^AFTERDOT //p' <<<"$output")
	python3 -c "import sys; sys.exit(not 0.8 <= $after < 10)"
	cmp "$SPOOL/alice" "$MS/alice.orig"
	assert [ ! -e "$SPOOL/alice.lock" ]
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	run check_box mbox "$SPOOL/alice"
	assert_line "count 2"
	assert_line "ok"
}

@test "lock contention: a dotlock held by a live process gives 451 4.2.0 and is left alone" {
	start_listener --lock-timeout 1
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	cp "$SPOOL/alice" "$MS/alice.orig"
	background /dev/null sleep 60
	sleeper=$BG_PID
	printf '%d\n' "$sleeper" >"$SPOOL/alice.lock"
	run send_mail --to alice@example.org
	assert_line --regexp '^DATA 451 4\.2\.0 '
	cmp "$SPOOL/alice" "$MS/alice.orig"
	assert_equal "$(cat "$SPOOL/alice.lock")" "$sleeper"
}

@test "lock contention: a live dotlock removed during the wait: delivered, no lock or stray file left" {
	start_listener --lock-timeout 10
	background /dev/null sleep 60
	sleeper=$BG_PID
	printf '%d\n' "$sleeper" >"$SPOOL/alice.lock"
	(sleep 2.5; rm -f "$SPOOL/alice.lock") &
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	# it found the lock and waited (the dialogue up to the dot takes well
	# under 2 s, even on a loaded machine), then linked its own
	after=$(sed -n 's/^AFTERDOT //p' <<<"$output")
	python3 -c "import sys; sys.exit(not 0.4 <= $after < 9)"
	refute grep -q "stale lock" "$LOG"
	assert [ ! -e "$SPOOL/alice.lock" ]
	run ls -A "$SPOOL"
	assert_output "alice"
	run check_box mbox "$SPOOL/alice"
	assert_line "count 1"
	assert_line "ok"
}

@test "stale dotlock: a dead pid's lock is removed and the message delivered" {
	start_listener --lock-timeout 5
	printf '%d\n' "$(dead_pid)" >"$SPOOL/alice.lock"
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	assert [ ! -e "$SPOOL/alice.lock" ]
	run check_box mbox "$SPOOL/alice"
	assert_line "count 1"
	assert_line "ok"
}

@test "stale dotlock: 'mailslot <deadpid>' left by a killed handler is removed and the message delivered" {
	start_listener --lock-timeout 5
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	printf 'mailslot %d\n' "$(dead_pid)" >"$SPOOL/alice.lock"
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	assert [ ! -e "$SPOOL/alice.lock" ]
	run check_box mbox "$SPOOL/alice"
	assert_line "count 2"
	assert_line "ok"
}

@test "--stale-lock-time: a live program's dotlock older than it is stale; younger, it is waited for" {
	background /dev/null sleep 60
	printf '%d\n' "$BG_PID" >"$SPOOL/alice.lock"
	touch -d '20 seconds ago' "$SPOOL/alice.lock"
	# the default (500 s) keeps a live holder's 20-second-old lock
	start_listener --lock-timeout 1
	run send_mail --to alice@example.org
	assert_line --regexp '^DATA 451 4\.2\.0 '
	assert [ -e "$SPOOL/alice.lock" ]
	stop_listeners
	start_listener --lock-timeout 5 --stale-lock-time 10
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	assert [ ! -e "$SPOOL/alice.lock" ]
	run check_box mbox "$SPOOL/alice"
	assert_line "count 1"
}

@test "a dotlock that is a directory cannot be removed: waited for, 451 4.2.0 at --lock-timeout, a bounded log" {
	mkdir "$SPOOL/alice.lock"
	# old enough for the age rule to call it stale
	touch -d '1 hour ago' "$SPOOL/alice.lock"
	start_listener --lock-timeout 2
	run timeout 30 python3 "$DELIV_PY" send --port "$PORT" --record "$REC" --to alice@example.org --timeout 25
	assert_line --regexp '^DATA 451 4\.2\.0 '
	after=$(sed -n 's/^AFTERDOT //p' <<<"$output")
	python3 -c "import sys; sys.exit(not 1.5 <= $after < 10)"
	assert [ -d "$SPOOL/alice.lock" ]
	# one line about the lock, not one a pass (there were 50,000 a second)
	assert_equal "$(grep -c 'stale lock' "$LOG")" 1
	assert [ "$(grep -c '^mailslot-smtpd' "$LOG")" -le 10 ]
	assert [ ! -e "$SPOOL/alice" ]
}

@test "a stale dotlock another user owns in a sticky spool: waited for, 451 4.2.0 at --lock-timeout, a bounded log" {
	[ "$(id -u)" -eq 0 ] || skip "needs root: the lock must belong to another account"
	getent passwd mail >/dev/null || skip "there is no 'mail' account to run as"
	PRIV=$(mktemp -d /tmp/mailslot-sticky.XXXXXX)
	chmod 755 "$PRIV"
	SPOOL="$PRIV/spool"
	QUEUE="$PRIV/queue"
	mkdir "$SPOOL" "$QUEUE"
	chmod 1777 "$SPOOL"
	chown mail "$QUEUE"
	cp "$MS/users" "$MS/aliases" "$PRIV/"
	chmod 644 "$PRIV/users" "$PRIV/aliases"
	# a dead foreign holder, long ago: stale by every rule, but not ours to unlink
	printf '%d\n' "$(dead_pid)" >"$SPOOL/alice.lock"
	chown nobody "$SPOOL/alice.lock"
	chmod 644 "$SPOOL/alice.lock"
	touch -d '1 hour ago' "$SPOOL/alice.lock"
	run timeout 30 python3 "$DELIV_PY" send --exec "$SMTPD --spool $SPOOL --queue $QUEUE --users $PRIV/users \
		--aliases $PRIV/aliases --domain example.org --hostname mx.test --log stderr --user mail --lock-timeout 2" \
		--log "$LOG" --record "$REC" --to alice@example.org --timeout 25
	lines=$(grep -c '^mailslot-smtpd' "$LOG")
	lock_lines=$(grep -c 'stale lock' "$LOG" || true)
	rm -rf "$PRIV"
	assert_line --regexp '^DATA 451 4\.2\.0 '
	after=$(sed -n 's/^AFTERDOT //p' <<<"$output")
	python3 -c "import sys; sys.exit(not 1.5 <= $after < 10)"
	assert_equal "$lock_lines" 1
	assert [ "$lines" -le 10 ]
}

@test "stale dotlock: one replaced by a live lock while it is being removed is put back, not removed" {
	command -v strace >/dev/null || skip "strace is not installed"
	printf '%d\n' "$(dead_pid)" >"$SPOOL/alice.lock"
	background /dev/null sleep 60
	sleeper=$BG_PID
	# the removal of alice.lock is held 1.5 s at its system call; in that
	# time another program takes the stale lock away and makes its own
	# (waited for below, so not left for teardown to kill by a pid that
	# may have been reused by then)
	python3 "$DELIV_PY" send --exec "strace -f -o $MS/trace \
		-e trace=unlinkat,renameat2 -e inject=unlinkat,renameat2:delay_enter=1500000 \
		$SMTPD $(smtpd_args) --lock-timeout 4" --log "$LOG" --record "$REC" --to alice@example.org --timeout 30 \
		>"$MS/send.out" 2>&1 3>&- &
	sender=$!
	for _ in $(seq 1 200); do
		grep -qE '(unlinkat|renameat2)\([0-9A-Z_]+, "alice\.lock"' "$MS/trace" 2>/dev/null && break
		sleep 0.05
	done
	printf '%d\n' "$sleeper" >"$SPOOL/fresh"
	mv "$SPOOL/fresh" "$SPOOL/alice.lock"
	wait "$sender" || true
	run cat "$MS/send.out"
	assert_line --regexp '^DATA 451 4\.2\.0 '
	assert_equal "$(cat "$SPOOL/alice.lock")" "$sleeper"
	run ls -A "$SPOOL"
	assert_output "alice.lock"
}

@test "a dotlock that is a symlink is never written through: 451 4.2.0, its target untouched" {
	printf 'precious\n' >"$MS/victim"
	ln -s "$MS/victim" "$SPOOL/alice.lock"
	ln -s "$MS/absent" "$SPOOL/bob.lock"
	start_listener --lock-timeout 1
	run send_mail --to alice@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	run send_mail --to bob@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	assert_equal "$(cat "$MS/victim")" precious
	assert [ ! -e "$MS/absent" ]
	assert [ -L "$SPOOL/alice.lock" ]
}

@test "a locked mailbox among several recipients: 250, the others delivered, the locked one queued with its error" {
	start_listener --lock-timeout 1
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	background "$MS/holder.out" python3 "$DELIV_PY" hold-lock "$SPOOL/alice" 60
	for _ in $(seq 1 50); do
		grep -q locked "$MS/holder.out" && break
		sleep 0.1
	done
	cp "$SPOOL/alice" "$MS/alice.orig"
	REC="$MS/both.jsonl" run send_mail --to alice@example.org --to bob@example.org
	assert_line --partial "DATA 250 "
	qid=$(queued_id)
	cmp "$SPOOL/alice" "$MS/alice.orig"
	run check_box mbox "$SPOOL/bob" "$MS/both.jsonl"
	assert_line "ok"
	run grep -A1 '^rcpt ' "$QUEUE/env/$qid"
	assert_line --index 0 --regexp '^rcpt [0-9]+ [0-9]+ alice alice@example\.org$'
	assert_line --index 1 --regexp '^error .*(busy|lock)'
	assert_equal "$(grep -c '^rcpt ' "$QUEUE/env/$qid")" 1
}

@test "Python's own mbox locking (lockf + dotlock) is respected: the handler waits, both messages stay whole" {
	start_listener --lock-timeout 20
	run send_mail --to alice@example.org --tag before
	assert_line --partial "DATA 250 "
	# a writer that locks the way Python's mailbox module does, for 2 s
	cat >"$MS/writer.py" <<'PY'
import mailbox, sys, time
box = mailbox.mbox(sys.argv[1], create=False)
box.lock()
print("locked", flush=True)
time.sleep(2)
box.add(b"From: python@example.org\nSubject: from python\n\nwritten under Python's lock\nFrom here, mboxo quoting\n")
box.flush()
box.unlock()
print("done", flush=True)
PY
	background "$MS/writer.out" python3 "$MS/writer.py" "$SPOOL/alice"
	writer=$BG_PID
	for _ in $(seq 1 50); do
		grep -q locked "$MS/writer.out" && break
		sleep 0.1
	done
	run send_mail --to alice@example.org --tag while-locked
	assert_line --partial "DATA 250 "
	after=$(sed -n 's/^AFTERDOT //p' <<<"$output")
	python3 -c "import sys; sys.exit(not $after >= 1.0)"
	wait "$writer"
	assert_equal "$(cat "$MS/writer.out")" "locked
done"
	run python3 - "$SPOOL/alice" <<'PY'
import mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
for key in box.keys():
    m = box[key]
    print(m["X-Deliv-Id"] or m["Subject"])
print(repr(box.get_bytes(1).partition(b"\n\n")[2]))
PY
	assert_line --index 0 --regexp '^before-'
	assert_line --index 1 "from python"
	assert_line --index 2 --regexp '^while-locked-'
	assert_line --index 3 "b\"written under Python's lock\\n>From here, mboxo quoting\\n\""
	# ours, byte for byte: the mailbox without Python's message
	python3 - "$SPOOL/alice" "$MS/ours" <<'PY'
import mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
with open(sys.argv[2], "wb") as f:
    f.write(b"".join(box.get_bytes(k, from_=True) + b"\n" for k in box.keys() if box[k]["X-Deliv-Id"]))
PY
	run check_box mbox "$MS/ours"
	assert_line "count 2"
	assert_line "ok"
}

@test "a mailbox owned by another account is refused with 451 and left alone" {
	[ "$(id -u)" -eq 0 ] || skip "chown needs root"
	start_listener
	run send_mail --to alice@example.org
	assert_line --partial "DATA 250 "
	chown nobody "$SPOOL/alice"
	cp "$SPOOL/alice" "$MS/alice.orig"
	run send_mail --to alice@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	cmp "$SPOOL/alice" "$MS/alice.orig"
}

@test "Maildir and MH: a folder or new/ that is a symlink is refused with 451 and its target untouched" {
	mkdir -p "$MS/elsewhere/new" "$MS/elsewhere/cur" "$MS/elsewhere/tmp" "$SPOOL/alice/cur" "$SPOOL/alice/tmp"
	ln -s "$MS/elsewhere/new" "$SPOOL/alice/new"
	ln -s "$MS/elsewhere" "$SPOOL/bob"
	start_listener --format maildir
	run send_mail --to alice@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	run send_mail --to bob@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	stop_listeners
	start_listener --format mh
	run send_mail --to bob@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	run find "$MS/elsewhere" "$SPOOL/alice" -type f
	assert_output ""
}

@test "a failed delivery's reply names no path; the log and the queue keep the reason" {
	mkdir "$SPOOL/carol"	# a directory where the mbox should be
	run smtpd_stdin <<'EOM'
HELO client.test
MAIL FROM:<a@remote.example>
RCPT TO:<carol@example.org>
DATA
Subject: refused

.
QUIT
EOM
	assert_line --regexp '^451 4\.3\.0 '
	refute_output --partial "$SPOOL"
	grep -q "delivery failed to=<carol@example.org> mailbox=carol reason=.*$SPOOL/carol" "$LOG"
}

# --- a local user racing a delivery (started as root) ---------------------

# race_setup: a root-started handler (--user mail) delivering to the system
# account nobody, the attacker; $PRIV/target is a directory nobody cannot
# reach but the mail group can, holding a 40-hour-old file "old".
race_setup() {
	# a race is a matter of timing: under ASan, the same paths, slower
	not_in_asan "symlink swaps during deliveries"
	[ "$(id -u)" -eq 0 ] || skip "needs root: the handler takes the recipient's identity only when started as root"
	getent passwd mail >/dev/null || skip "there is no 'mail' account to run as"
	getent passwd nobody >/dev/null || skip "there is no 'nobody' account"
	PRIV=$(mktemp -d /tmp/mailslot-race.XXXXXX)
	chmod 755 "$PRIV"
	SPOOL="$PRIV/spool"
	QUEUE="$PRIV/queue"
	mkdir "$SPOOL" "$QUEUE" "$PRIV/target"
	chown mail:mail "$QUEUE"
	chmod 0770 "$QUEUE"
	chown root:mail "$PRIV/target"
	chmod 0770 "$PRIV/target"
	echo "not yours" >"$PRIV/target/old"
	touch -d '40 hours ago' "$PRIV/target/old"
	NOBODY_UID=$(id -u nobody)
	NOBODY_GID=$(id -g nobody)
}

race_teardown() {
	[ -n "${PRIV:-}" ] && rm -rf "$PRIV"
	return 0
}

# race_send FORMAT COUNT PAIRS...: COUNT messages to nobody while nobody
# swaps each pair of names (renameat2 RENAME_EXCHANGE) in a loop.
race_send() {
	local fmt=$1 count=$2
	shift 2
	python3 "$BATS_TEST_DIRNAME/helpers/deliv_race.py" "$NOBODY_UID" "$NOBODY_GID" 600 "$@" \
		>"$PRIV/race.out" 2>&1 3>&- &
	echo "$!" >>"$BATS_TEST_TMPDIR/pids"
	python3 "$DELIV_PY" send --exec "$SMTPD --spool $SPOOL --queue $QUEUE --domain example.org \
		--hostname mx.test --log stderr --user mail --format $fmt --lock-timeout 2" \
		--log "$LOG" --record "$REC" --to nobody@example.org --count "$count"
	stop_listeners
}

@test "race: Maildir tmp/ and new/ swapped for symlinks during deliveries as root: nothing made or removed through them" {
	race_setup
	local box="$SPOOL/nobody"
	mkdir -p "$box/tmp" "$box/new" "$box/cur"
	ln -s "$PRIV/target" "$box/tmp.swap"
	ln -s "$PRIV/target" "$box/new.swap"
	chown -hR nobody:"$NOBODY_GID" "$box"
	chmod 700 "$box" "$box/tmp" "$box/new" "$box/cur"
	# an old file in the real tmp/, so that every sweep has work to do
	echo leftover >"$box/tmp/1.stale"
	chown nobody "$box/tmp/1.stale"
	touch -d '40 hours ago' "$box/tmp/1.stale"
	run race_send maildir 40 "$box/tmp" "$box/tmp.swap" "$box/new" "$box/new.swap"
	delivered=$(grep -c '^DATA 250 ' <<<"$output" || true)
	run ls -A "$PRIV/target"
	race_teardown
	assert_output "old"
	# the race was run against deliveries that happened, not only refusals
	assert [ "$delivered" -ge 1 ]
}

@test "race: an MH folder swapped for a symlink during deliveries as root (sticky spool): nothing made or removed there" {
	race_setup
	chmod 1777 "$SPOOL"
	local box="$SPOOL/nobody"
	mkdir "$box"
	ln -s "$PRIV/target" "$SPOOL/nobody.swap"
	chown -h nobody:"$NOBODY_GID" "$box" "$SPOOL/nobody.swap"
	chmod 700 "$box"
	# what a killed delivery leaves looks like this: a sweep would remove it
	echo leftover >"$PRIV/target/,mailslot.X.1"
	touch -d '40 hours ago' "$PRIV/target/,mailslot.X.1"
	run race_send mh 40 "$box" "$SPOOL/nobody.swap"
	delivered=$(grep -c '^DATA 250 ' <<<"$output" || true)
	run ls -A "$PRIV/target"
	race_teardown
	assert_output ",mailslot.X.1
old"
	assert [ "$delivered" -ge 1 ]
}

# --- the reading side of the mailbox layer (for the POP3 server) ------------

# The layer as the POP3 server will drive it, built from this tree's
# sources (tests/helpers/deliv_mbread.c); not from its objects, which the
# sanitizer run builds with another compiler and runtime.
build_mbread() {
	MBREAD="$BATS_TEST_TMPDIR/deliv_mbread"
	cc -D_GNU_SOURCE -std=c17 -Wall -Wextra -Werror -Wno-format-truncation -I"$TESTS_DIR/../src" -o "$MBREAD" \
		"$TESTS_DIR/helpers/deliv_mbread.c" "$TESTS_DIR"/../src/{mailbox,lock,mbox,maildir,mh,numbered,log,fileio}.c
}

@test "reading: every format lists unique uids and sizes, reads each message byte-exact, deletes and keeps the rest" {
	build_mbread
	start_listener --format mbox
	run send_mail --to alice@example.org --count 4
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 4
	for box in maildir:bob mh:carol numbered:dave; do
		stop_listeners
		start_listener --format "${box%:*}"
		run send_mail --to "${box#*:}@example.org" --count 4
		assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 4
	done
	for box in mbox:alice maildir:bob mh:carol numbered:dave; do
		f=${box%:*} user=${box#*:}
		run "$MBREAD" "$f" "$SPOOL" "$user" list
		assert_success
		assert_equal "${#lines[@]}" 4
		assert_equal "$(cut -d' ' -f1 <<<"$output" | sort -u | wc -l)" 4
		listed=$output
		for n in 1 2 3 4; do
			"$MBREAD" "$f" "$SPOOL" "$user" read "$n" >"$MS/read.$f.$n"
		done
		# Python's reader, mboxrd quoting undone for mbox, in the same order
		run python3 - "$f" "$SPOOL/$user" "$MS/read.$f" "$listed" "$TESTS_DIR/helpers" <<'PY'
import mailbox, sys
fmt, path, prefix, listed, helpers = sys.argv[1:6]
sys.path.insert(0, helpers)
import deliv_mail
box = {"mbox": mailbox.mbox, "maildir": mailbox.Maildir, "mh": mailbox.MH, "numbered": mailbox.MH}[fmt](path, create=False)
keys = list(box.keys())
if fmt in ("mh", "numbered"):
    keys.sort(key=int)
want = [box.get_bytes(k) for k in keys]
if fmt == "maildir":
    want.sort(key=lambda b: b)  # compared as a set below
if fmt == "mbox":
    want = [deliv_mail.mboxrd_unquote(b) for b in want]
got = [open("%s.%d" % (prefix, n), "rb").read() for n in range(1, 5)]
if fmt == "maildir":
    got_sorted = sorted(got)
    assert got_sorted == want, "maildir contents differ"
else:
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, "message %d differs: %r vs %r" % (i + 1, g[:80], w[:80])
for line, g in zip(listed.splitlines(), got):
    uid, size, nl = line.split()
    assert int(size) == len(g) and int(nl) == g.count(b"\n"), line
print("ok")
PY
		assert_output "ok"
		# delete the second: the others stay, with the same uids
		run "$MBREAD" "$f" "$SPOOL" "$user" delete 2
		assert_success
		if [ "$f" = mh ]; then
			# and it leaves the sequences, as nmh's rmm would have it
			assert_equal "$(cat "$SPOOL/$user/.mh_sequences")" "unseen: 1 3-4"
		fi
		run "$MBREAD" "$f" "$SPOOL" "$user" list
		assert_equal "$(cut -d' ' -f1 <<<"$output")" "$(sed -n '1p;3p;4p' <<<"$listed" | cut -d' ' -f1)"
		assert_equal "$(count_messages "$f" "$SPOOL/$user")" 3
	done
	run ls -A "$SPOOL"
	refute_output --partial ".lock"
	refute_output --partial ","
	run ls "$SPOOL/dave"
	refute_output --partial "2.status"
}

@test "reading: deleting from an MH folder takes the numbers out of every sequence, ranges split, empty ones gone" {
	build_mbread
	mkdir -m 700 "$SPOOL/carol"
	for n in 1 2 3 4 5 6 7 8 9; do
		printf 'Subject: %s\n\nbody\n' "$n" >"$SPOOL/carol/$n"
	done
	# a continuation line, as long sequences may be written
	printf 'cur: 4\nunseen: 1-3 5 7-9\nflagged: 2\n  4-5\nx: 3\n' >"$SPOOL/carol/.mh_sequences"
	run "$MBREAD" mh "$SPOOL" carol delete 3 4 8
	assert_success
	assert_equal "$(cat "$SPOOL/carol/.mh_sequences")" "unseen: 1-2 5 7 9
flagged: 2 5"
	run ls "$SPOOL/carol"
	assert_output "1
2
5
6
7
9"
}
