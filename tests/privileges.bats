#!/usr/bin/env bats
# privileges.bats: started as root, the handler runs as the --user account
# with no effective capability, and with system accounts (no --users) it
# writes each mailbox as its recipient.  These tests need root: they read
# another process's credentials, create test accounts with useradd and
# chown directories; as any other user they are skipped.

load test_helper
load helpers/deliv_common

TEST_USERS=(mstest1 mstest2)

# Why these tests cannot run here, or nothing.
cannot_run() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "needs root: the handler drops privileges only when started as root"
	elif ! command -v useradd >/dev/null; then
		echo "useradd is not installed"
	elif ! getent passwd mail >/dev/null; then
		echo "there is no 'mail' account to run as"
	fi
}

# The test accounts; only those made here are removed afterwards.
setup_file() {
	if [ -z "$(cannot_run)" ]; then
		for u in "${TEST_USERS[@]}"; do
			if ! getent passwd "$u" >/dev/null; then
				useradd -M -U -s /usr/sbin/nologin "$u"
				echo "$u" >>"$BATS_FILE_TMPDIR/made-users"
			fi
		done
		# a supplementary group, for the handler to find in /etc/group
		if grep -qx mstest2 "$BATS_FILE_TMPDIR/made-users" 2>/dev/null; then
			usermod -a -G mstest1 mstest2
		fi
	fi
}

teardown_file() {
	local u
	if [ -f "$BATS_FILE_TMPDIR/made-users" ]; then
		# members first: a group with members is not removed with its user
		tac "$BATS_FILE_TMPDIR/made-users" | while read -r u; do
			userdel "$u" 2>/dev/null || true
		done
	fi
}

setup() {
	why=$(cannot_run)
	[ -z "$why" ] || skip "$why"
	deliv_setup
	# the mail account must reach the spool and queue: not under bats' 0700 tmpdir
	PRIV=$(mktemp -d /tmp/mailslot-priv.XXXXXX)
	chmod 755 "$PRIV"
	SPOOL="$PRIV/spool"
	QUEUE="$PRIV/queue"
	mkdir "$SPOOL" "$QUEUE"
	chown root:mail "$SPOOL"
	chmod 2775 "$SPOOL"
	chown mail:mail "$QUEUE"
	chmod 0770 "$QUEUE"
	MAIL_UID=$(id -u mail)
	MAIL_GID=$(id -g mail)
}

teardown() {
	stop_listeners
	[ -n "${PRIV:-}" ] && rm -rf "$PRIV"
	return 0
}

# Options for a root-started handler on system accounts, running as mail.
priv_args() {
	echo --spool "$SPOOL" --queue "$QUEUE" --domain example.org --hostname mx.test --log stderr --user mail "$@"
}

# owner and permission bits (set-group-id, inherited from the spool, aside)
owner_perm() {
	local f
	for f in "$@"; do
		printf '%s %o\n' "$(stat -c %U "$f")" $((0$(stat -c %a "$f") & 0777))
	done
}

send_priv() {
	local opts=$1
	shift
	python3 "$DELIV_PY" send --exec "$SMTPD $(priv_args) $opts" --log "$LOG" --record "$REC" "$@"
}

@test "started as root with --user mail: waiting after the greeting it is mail, with no effective capability" {
	run python3 "$DELIV_PY" status "$SMTPD" $(priv_args)
	assert_success
	assert_line --regexp '^greeting 220 mx\.test '
	assert_line "Uid: $MAIL_UID $MAIL_UID $MAIL_UID $MAIL_UID"
	assert_line "Gid: $MAIL_GID $MAIL_GID $MAIL_GID $MAIL_GID"
	assert_line "CapEff: 0000000000000000"
	# only CAP_SETUID and CAP_SETGID stay permitted, to take a recipient's identity
	assert_line "CapPrm: 00000000000000c0"
	assert_line "CapInh: 0000000000000000"
	assert_line "CapAmb: 0000000000000000"
	# root's supplementary groups are gone
	groups=$(sed -n 's/^Groups: *//p' <<<"$output")
	for g in $groups; do
		assert [ "$g" -ne 0 ]
	done
	assert_line --regexp '^after 221 '
	assert_line "exit 0"
}

@test "started as root with --user mstest2: the same, as that account" {
	# a queue of its own: mail's is closed to it, and is checked at start-up
	install -d -o mstest2 -m 0700 "$PRIV/queue-mstest2"
	run python3 "$DELIV_PY" status "$SMTPD" $(priv_args) --user mstest2 --queue "$PRIV/queue-mstest2"
	assert_success
	uid=$(id -u mstest2)
	gid=$(id -g mstest2)
	assert_line "Uid: $uid $uid $uid $uid"
	assert_line "Gid: $gid $gid $gid $gid"
	assert_line "CapEff: 0000000000000000"
	assert_line "CapPrm: 00000000000000c0"
	# its groups are those /etc/group gives it, and only those
	groups=$(sed -n 's/^Groups: *//p' <<<"$output" | tr ' ' '\n' | sort -n | xargs)
	assert_equal "$groups" "$(id -G mstest2 | tr ' ' '\n' | sort -n | xargs)"
}

@test "account files are read by hand: a last line without its newline still counts, in passwd and in group" {
	command -v unshare >/dev/null || skip "unshare is not installed"
	cp /etc/passwd "$PRIV/passwd"
	cp /etc/group "$PRIV/group"
	printf 'mslast:x:4242:4242::/nonexistent:/usr/sbin/nologin' >>"$PRIV/passwd"
	printf 'mslastgrp:x:4343:mstest1,mslast' >>"$PRIV/group"
	install -d -o 4242 -m 0700 "$PRIV/queue-mslast"
	# the copies stand in for the system's files in a mount namespace of
	# the handler's own (unshare and sh exec it: the pid stays the same)
	run python3 "$DELIV_PY" status unshare -m sh -c \
		'mount --bind "$0" /etc/passwd && mount --bind "$1" /etc/group && shift && exec "$@"' \
		"$PRIV/passwd" "$PRIV/group" "$SMTPD" $(priv_args) --user mslast --queue "$PRIV/queue-mslast"
	assert_success
	assert_line "Uid: 4242 4242 4242 4242"
	assert_line "Gid: 4242 4242 4242 4242"
	assert_line "Groups: 4242 4343"
	assert_line "CapEff: 0000000000000000"
}

@test "system accounts: a message to a system user creates its mbox owned by it, mode 0600 (spool root:mail 2775)" {
	run send_priv "" --to mstest1@example.org --count 2
	assert_equal "$(grep -c '^DATA 250 ' <<<"$output")" 2
	run stat -c '%U %a' "$SPOOL/mstest1"
	assert_output "mstest1 600"
	run check_box mbox "$SPOOL/mstest1" --delivered-to mstest1@example.org
	assert_line "count 2"
	assert_line "ok"
	assert [ ! -e "$SPOOL/mstest1.lock" ]
}

@test "system accounts: the same in a sticky spool (root 1777)" {
	chown root:root "$SPOOL"
	chmod 1777 "$SPOOL"
	chmod g-s "$SPOOL"
	run send_priv "" --to mstest1@example.org
	assert_line --partial "DATA 250 "
	run stat -c '%U %G %a' "$SPOOL/mstest1"
	assert_output "mstest1 mstest1 600"
	run check_box mbox "$SPOOL/mstest1"
	assert_line "ok"
}

@test "system accounts: a Maildir is made by and for its user (directories 0700, file 0600)" {
	run send_priv "--format maildir" --to mstest1@example.org
	assert_line --partial "DATA 250 "
	run owner_perm "$SPOOL/mstest1" "$SPOOL/mstest1/new" "$SPOOL/mstest1/tmp" "$SPOOL/mstest1/cur"
	assert_output "mstest1 700
mstest1 700
mstest1 700
mstest1 700"
	run owner_perm "$SPOOL"/mstest1/new/*
	assert_output "mstest1 600"
	run check_box maildir "$SPOOL/mstest1"
	assert_line "ok"
}

@test "system accounts: each recipient of one message gets a mailbox of its own" {
	run send_priv "" --to mstest1@example.org --to mstest2@example.org
	assert_line --partial "DATA 250 "
	run stat -c '%U %a' "$SPOOL/mstest1" "$SPOOL/mstest2"
	assert_output "mstest1 600
mstest2 600"
	run check_box mbox "$SPOOL/mstest2" --delivered-to mstest2@example.org
	assert_line "ok"
}

@test "system accounts: a mailbox owned by someone else is refused with 451 and left alone" {
	printf 'From x@y Thu Jan  1 00:00:00 2024\nSubject: not yours\n\nkeep\n\n' >"$SPOOL/mstest1"
	chown mstest2:mstest2 "$SPOOL/mstest1"
	chmod 600 "$SPOOL/mstest1"
	cp "$SPOOL/mstest1" "$PRIV/orig"
	run send_priv "" --to mstest1@example.org
	assert_line --regexp '^DATA 451 4\.[0-9]\.[0-9] '
	cmp "$SPOOL/mstest1" "$PRIV/orig"
	run stat -c '%U %a' "$SPOOL/mstest1"
	assert_output "mstest2 600"
}

@test "system accounts: an unknown account is refused at RCPT with 550" {
	run send_priv "" --to nosuchuser-mstest@example.org
	assert_line "RCPT nosuchuser-mstest@example.org 550"
	run files_in "$SPOOL"
	assert_output ""
}

@test "queued mail belongs to the run account (mail), and others cannot read it" {
	run send_priv "" --to someone@remote.example
	assert_line --partial "DATA 250 "
	qid=$(queued_id)
	# (0660 as created, less the umask; never readable by others)
	run owner_perm "$QUEUE/msg/$qid"
	assert_output --regexp '^mail 6[46]0$'
	run owner_perm "$QUEUE/env/$qid"
	assert_output --regexp '^mail 6[46]0$'
	run python3 "$DELIV_PY" check-queue "$QUEUE" "$qid" "$REC"
	assert_success
}

@test "postmaster with system accounts is root's mailbox, owned by root, mode 0600" {
	run send_priv "" --to postmaster@example.org
	assert_line --partial "DATA 250 "
	run stat -c '%U %a' "$SPOOL/root"
	assert_output "root 600"
	# postmaster goes where root goes; Delivered-To names that final address
	run check_box mbox "$SPOOL/root" --delivered-to root@example.org
	assert_line "ok"
}
