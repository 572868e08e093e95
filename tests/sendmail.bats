#!/usr/bin/env bats
# sendmail.bats: mailslot-sendmail as the programs of a Debian machine run
# it (cron's MAILTO command line, bsd-mailx, s-nail, mutt, git send-email,
# PHP's "sendmail -t -i"), mailq and newaliases by their names, a user
# who is not root going through the set-user-ID mailslot-enqueue, and a
# 50 MiB message with flat memory.  The checkout's programs read the test's
# configuration through $MAILSLOT_CONFIG, which they may do because they
# run with no privilege beyond the caller's (root); the installed,
# set-user-ID helper reads /etc/mailslot/mailslot.conf only (the test of
# a user who is not root puts one there in a private mount namespace).

load test_helper

SENDMAIL="$BATS_TEST_DIRNAME/../mailslot-sendmail"
ENQUEUE="$BATS_TEST_DIRNAME/../mailslot-enqueue"
RELAY="${RELAY:-$BATS_TEST_DIRNAME/../mailslot-relay}"
TEST_USER=mssend1

setup_file() {
	if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null && ! getent passwd "$TEST_USER" >/dev/null; then
		useradd -M -U -s /usr/sbin/nologin -c 'Send Tester,,,' "$TEST_USER"
		echo "$TEST_USER" >"$BATS_FILE_TMPDIR/made-users"
	fi
}

teardown_file() {
	if [ -f "$BATS_FILE_TMPDIR/made-users" ]; then
		userdel "$TEST_USER" 2>/dev/null || true
	fi
}

setup() {
	[ -x "$SENDMAIL" ] && [ -x "$ENQUEUE" ] || fail "mailslot-sendmail is not built: run make first"
	setup_spool
	write_conf "$MS/conf" "$SPOOL" "$QUEUE" "$(id -un)"
	export MAILSLOT_CONFIG="$MS/conf"
	# what the programs are told to run, as SENDMAIL=yes installs it
	BIN="$MS/bin"
	mkdir -p "$BIN"
	ln -s "$(realpath "$SENDMAIL")" "$BIN/sendmail"
	ln -s "$(realpath "$SENDMAIL")" "$BIN/mailq"
	ln -s "$(realpath "$SENDMAIL")" "$BIN/newaliases"
	export HOME="$MS"
}

teardown() {
	stop_listeners
	[ -n "${SYS:-}" ] && rm -rf "$SYS"
	return 0
}

# write_conf FILE SPOOL QUEUE USER [more lines]
write_conf() {
	local file=$1 spool=$2 queue=$3 user=$4
	shift 4
	{
		printf 'spool = %s\nqueue = %s\nusers = %s\naliases = %s\n' "$spool" "$queue" "$MS/users" "$MS/aliases"
		printf 'domain = example.org\ndomain = localhost\nhostname = mx.test\nuser = %s\n' "$user"
		printf 'max-size = 60m\n'
		printf '%s\n' "$@"
	} >"$file"
}

# system_layout: what make install and an administrator make, in $SYS:
# sbin/ with the set-user-ID mailslot-enqueue, a spool and a queue of the
# mail account, and etc/mailslot/mailslot.conf naming them, for an overlay
# of /etc in a private mount namespace.  Skips where that cannot be done.
system_layout() {
	[ "$(id -u)" = 0 ] || skip "needs root: to make a set-user-ID program and a test account"
	getent passwd "$TEST_USER" >/dev/null || skip "useradd could not make $TEST_USER"
	command -v unshare >/dev/null && command -v setpriv >/dev/null || skip "unshare and setpriv are needed"
	# not under bats' 0700 directory: the mail account and the user reach it
	SYS=$(mktemp -d /tmp/mailslot-sendmail.XXXXXX)
	chmod 755 "$SYS"
	mkdir -p "$SYS/sbin" "$SYS/mail" "$SYS/queue" "$SYS/etc/mailslot" "$SYS/work"
	cp "$SENDMAIL" "$ENQUEUE" "$SYS/sbin/"
	chmod 4755 "$SYS/sbin/mailslot-enqueue"
	chown mail:mail "$SYS/mail" "$SYS/queue"
	chmod 0770 "$SYS/queue"
	cp "$MS/users" "$MS/aliases" "$SYS/"
	MS=$SYS write_conf "$SYS/etc/mailslot/mailslot.conf" "$SYS/mail" "$SYS/queue" mail
}

# The messages of an mbox, Python's mailbox reading them: "Subject|body".
subjects() {
	read_mailbox mbox "$SPOOL/$1"
}

@test "cron's MAILTO command line (Debian cron 3.0pl1): -FCronDaemon -i -B8BITMIME -oem" {
	# the line in Debian's /usr/sbin/cron is "%s -FCronDaemon -i -B8BITMIME -oem  %s"
	if [ -x /usr/sbin/cron ]; then
		run grep -c -a -- '-FCronDaemon -i -B8BITMIME -oem' /usr/sbin/cron
		assert_output 1
	fi
	# the message as cron's do_command writes it
	run "$BIN/sendmail" -FCronDaemon -i -B8BITMIME -oem alice <<-'EOF'
	From: root (Cron Daemon)
	To: alice
	Subject: Cron <root@vm> echo job output
	MIME-Version: 1.0
	Content-Type: text/plain; charset=UTF-8
	Content-Transfer-Encoding: 8bit
	X-Cron-Env: <SHELL=/bin/sh>
	X-Cron-Env: <HOME=/root>

	job output
	.
	the line above was a lone dot, and -i keeps it
	EOF
	assert_success
	assert_output ''
	run subjects alice
	assert_output --regexp '^Cron <root@vm> echo job output\|'
	run grep -c '^\.$' "$SPOOL/alice"
	assert_output 1
	# the Received: field names the caller's uid; Date: and Message-ID: added
	run grep -A1 '^Received:' "$SPOOL/alice"
	assert_line --index 0 "Received: by mx.test (mailslot, from userid $(id -u))"
	grep -q '^Date: ' "$SPOOL/alice"
	grep -q '^Message-ID: <.*@mx.test>$' "$SPOOL/alice"
	# cron's own From: stays, and the envelope is the caller at the primary domain
	run grep -c '^From: ' "$SPOOL/alice"
	assert_output 1
	grep -q "^Return-Path: <$(id -un)@example.org>$" "$SPOOL/alice"
}

# The real daemon: an @reboot job of a user who is not root, run at
# once by a cron started with an empty /run, its output mailed to MAILTO
# through /usr/sbin/sendmail (an overlay of /usr/sbin names this one) and
# the set-user-ID helper.
@test "cron itself: a job's output mailed to MAILTO, as the job's user" {
	[ -x /usr/sbin/cron ] || fail "cron is not installed (make deps-test)"
	system_layout
	mkdir -p "$SYS/etc/cron.d" "$SYS/usrsbin" "$SYS/work2"
	printf 'SHELL=/bin/sh\nMAILTO=bob\n@reboot %s echo output of the job\n' "$TEST_USER" >"$SYS/etc/crontab"
	ln -s "$SYS/sbin/mailslot-sendmail" "$SYS/usrsbin/sendmail"
	run unshare -m --propagation private sh -c '
		mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/etc,workdir=$1/work" /etc &&
		mount --bind "$1/etc/cron.d" /etc/cron.d &&
		mount -t overlay overlay -o "lowerdir=/usr/sbin,upperdir=$1/usrsbin,workdir=$1/work2" /usr/sbin &&
		mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/spool/cron/crontabs || exit 99
		/usr/sbin/cron -f -L 0 & pid=$!
		for _ in $(seq 1 100); do [ -s "$1/mail/bob" ] && break; sleep 0.1; done
		kill "$pid"
	' sh "$SYS"
	assert_success
	run read_mailbox mbox "$SYS/mail/bob"
	assert_output --regexp "^Cron <$TEST_USER@[^>]*> echo output of the job\|"
	grep -q '^output of the job$' "$SYS/mail/bob"
	grep -q "^Received: by mx.test (mailslot, from userid $(id -u "$TEST_USER"))$" "$SYS/mail/bob"
	grep -q "^Return-Path: <$TEST_USER@example.org>$" "$SYS/mail/bob"
}

@test "bsd-mailx: mail -s through set sendmail" {
	command -v bsd-mailx >/dev/null || fail "bsd-mailx is not installed (make deps-test)"
	printf 'set sendmail=%s\n' "$BIN/sendmail" >"$MS/mailrc"
	echo "from bsd-mailx" | MAILRC="$MS/mailrc" bsd-mailx -s "bsd subject" bob
	run subjects bob
	assert_output --regexp '^bsd subject\|'
	grep -q '^from bsd-mailx$' "$SPOOL/bob"
	# mailx writes no From: and no Date: -- they are added
	run grep -c "^From: .*<$(id -un)@example.org>$" "$SPOOL/bob"
	assert_output 1
}

@test "s-nail: mail -s with mta set to this sendmail" {
	command -v s-nail >/dev/null || fail "s-nail is not installed (make deps-test)"
	echo "from s-nail" | s-nail -n -S mta="$BIN/sendmail" -S from=carol@example.org -s "snail subject" alice carol
	run subjects alice
	assert_output --regexp '^snail subject\|'
	run subjects carol
	assert_output --regexp '^snail subject\|'
	grep -q '^From: carol@example.org$' "$SPOOL/alice"
}

@test "mutt: set sendmail, batch mode" {
	command -v mutt >/dev/null || fail "mutt is not installed (make deps-test)"
	cat >"$MS/muttrc" <<-EOF
	set sendmail="$BIN/sendmail -oem -oi"
	set from="Dave Example <dave@example.org>"
	set use_from=yes
	set envelope_from=yes
	set record=""
	EOF
	echo "from mutt" | mutt -n -F "$MS/muttrc" -s "mutt subject" -b bob@example.org alice@example.org
	run subjects alice
	assert_output --regexp '^mutt subject\|'
	run subjects bob
	assert_output --regexp '^mutt subject\|'
	# the envelope sender mutt chose with -f, recorded: root may choose it
	grep -q '^Return-Path: <dave@example.org>$' "$SPOOL/alice"
	run grep -c '^X-Authentication-Warning:' "$SPOOL/alice"
	assert_output 0
	# the blind copy is not in what anyone receives
	run grep -ci '^Bcc:' "$SPOOL/alice" "$SPOOL/bob"
	refute_output --regexp ':[1-9]'
}

@test "git send-email --sendmail-cmd" {
	git send-email --help >/dev/null 2>&1 || git send-email -h 2>&1 | grep -q usage ||
		fail "git send-email is not installed (git-email; make deps-test)"
	local repo=$MS/repo
	export GIT_AUTHOR_NAME='Carol Dev' GIT_AUTHOR_EMAIL=carol@example.org
	export GIT_COMMITTER_NAME='Carol Dev' GIT_COMMITTER_EMAIL=carol@example.org
	git init -q "$repo"
	git -C "$repo" commit -q --allow-empty -m 'first'
	echo change >"$repo/file"
	git -C "$repo" add file
	git -C "$repo" commit -q -m 'a patch by mail'
	git -C "$repo" format-patch -q -1 -o "$MS/patches"
	run git -C "$repo" send-email --sendmail-cmd="$BIN/sendmail" --to=alice@example.org \
		--from='Carol Dev <carol@example.org>' --envelope-sender=carol@example.org --confirm=never \
		--quiet "$MS/patches"/*.patch
	assert_success
	run subjects alice
	assert_output --regexp '^\[PATCH\] a patch by mail\|'
	grep -q '^Return-Path: <carol@example.org>$' "$SPOOL/alice"
	grep -q '^+change$' "$SPOOL/alice"
	# git copies the author (its default --suppress-cc): a second argument
	run subjects carol
	assert_output --regexp '^\[PATCH\] a patch by mail\|'
}

@test "PHP's sendmail -t -i: To:, Cc: and Bcc: from the header, Bcc: removed" {
	run "$BIN/sendmail" -t -i <<-'EOF'
	To: "Alice A." <alice@example.org>, bob
	Cc: Group: carol@localhost;
	Bcc: dave@example.org
	Subject: from php

	.
	..leading dots are text
	EOF
	assert_success
	local u
	for u in alice bob carol dave; do
		run subjects "$u"
		assert_output --regexp '^from php\|'
		run grep -ci '^Bcc:' "$SPOOL/$u"
		assert_output 0
	done
	grep -q '^\.\.leading dots are text$' "$SPOOL/alice"
	# -t with no recipient anywhere is a usage error; nothing is sent
	run "$BIN/sendmail" -t <<<$'Subject: nobody\n\nx'
	assert_failure 64
	assert_output --partial 'no recipient'
}

@test "without -i a lone dot ends the message; CRLF input becomes LF; long lines are broken" {
	local long
	long=$(printf 'x%.0s' $(seq 1 2500))
	printf 'Subject: dots\r\n\r\nfirst\r\n%s\r\n.\r\nnever read\r\n' "$long" | "$BIN/sendmail" alice
	run grep -c 'never read' "$SPOOL/alice"
	assert_output 0
	run grep -c $'\r' "$SPOOL/alice"
	assert_output 0
	# 2500 characters: lines of 998, 998 and 504
	run awk 'length($0) >= 500 { print length($0) }' "$SPOOL/alice"
	assert_output $'998\n998\n504'
	# a message with no header at all gets one, and its body stays a body
	printf 'just a line\n' | "$BIN/sendmail" bob
	run subjects bob
	assert_output '|12'
}

@test "options programs pass are accepted; unsupported modes and bad addresses have sysexits codes" {
	run "$BIN/sendmail" -oem -odb -odi -oQ/x -oi -B 8BITMIME -N never -R hdrs -V envid -v -m -U -Ox=y alice <<<$'Subject: opts\n\nx'
	assert_success
	run subjects alice
	assert_output --regexp '^opts\|'
	# options after the recipients, as GNU getopt in Postfix's sendmail takes them
	run "$BIN/sendmail" bob -f carol@example.org -i <<<$'Subject: late options\n\n.\nkept'
	assert_success
	grep -q '^Return-Path: <carol@example.org>$' "$SPOOL/bob"
	grep -q '^kept$' "$SPOOL/bob"
	rm "$SPOOL/bob"
	# closed standard descriptors: an empty message, nothing opened in their place
	"$BIN/sendmail" bob <&- >&- 2>&-
	run subjects bob
	assert_output '|0'
	rm "$SPOOL/bob"
	run "$BIN/sendmail" -bd </dev/null
	assert_failure 64
	assert_output --regexp '^sendmail: option -bd is not supported'
	run "$BIN/sendmail" -Z alice </dev/null
	assert_failure 64
	run "$BIN/sendmail" </dev/null
	assert_failure 64
	assert_output --partial 'no recipients given'
	# an unknown local user: nothing is delivered to anyone (67, EX_NOUSER)
	run "$BIN/sendmail" bob nosuchuser <<<$'Subject: unknown\n\nx'
	assert_failure 67
	assert_output --regexp '^mailslot-sendmail: 550 5\.1\.1 <nosuchuser@example.org>'
	[ ! -e "$SPOOL/bob" ] || fail "bob got a message that was refused"
	# a bad address
	run "$BIN/sendmail" 'bad address@' <<<$'Subject: bad\n\nx'
	assert_failure
}

@test "a remote recipient is queued, the hand-off runs, mailq lists it, -q delivers it" {
	write_conf "$MS/conf" "$SPOOL" "$QUEUE" "$(id -un)" "handoff = touch $MS/handoff-ran"
	run "$BIN/sendmail" -f alice@example.org friend <<<$'Subject: queued\n\nfor a friend'
	assert_success
	for _ in $(seq 1 50); do [ -e "$MS/handoff-ran" ] && break; sleep 0.05; done
	[ -e "$MS/handoff-ran" ] || fail "the hand-off command did not run"
	run "$BIN/mailq"
	assert_success
	assert_line --regexp '<alice@example.org>$'
	assert_line --regexp '<someone@remote.example>'
	run "$BIN/sendmail" -bp
	assert_line --regexp '<someone@remote.example>'
	# -q: the relay now, through a smarthost on this machine
	local sink=$MS/sink port
	mkdir -p "$sink"
	port=$(free_port)
	/usr/bin/python3 "$BATS_TEST_DIRNAME/helpers/relay_sink.py" 127.0.0.1 "$port" "$sink" 2>>"$LOG" &
	echo $! >>"$BATS_TEST_TMPDIR/pids"
	for _ in $(seq 1 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1).close()" 2>/dev/null && break
		sleep 0.05
	done
	write_conf "$MS/conf" "$SPOOL" "$QUEUE" "$(id -un)" "smarthost = 127.0.0.1:$port"
	run "$BIN/sendmail" -q
	assert_success
	run cat "$sink/1.env"
	assert_output $'from <alice@example.org>\nrcpt <someone@remote.example>'
	run "$BIN/mailq"
	refute_line --regexp 'someone@remote.example'
}

@test "newaliases checks the aliases file and says so; a broken one is an error" {
	run "$BIN/newaliases"
	assert_success
	assert_output --regexp "^newaliases: $MS/aliases: no errors"
	printf 'root: alice\nbroken line without a colon\n' >"$MS/aliases"
	run "$BIN/newaliases"
	assert_failure 78
	assert_output --regexp "^newaliases: $MS/aliases:2: "
	run "$BIN/sendmail" -bi
	assert_failure 78
}

@test "-bs: an SMTP session on standard input and output" {
	run "$BIN/sendmail" -bs <<-'EOF'
	HELO me
	MAIL FROM:<carol@example.org>
	RCPT TO:<alice>
	DATA
	Subject: over smtp

	hi
	.
	QUIT
	EOF
	assert_success
	assert_line --regexp '^250 2\.0\.0 Ok'
	run subjects alice
	assert_output --regexp '^over smtp\|'
}

@test "a user who is not root: the set-user-ID helper, the fixed configuration, the uid recorded" {
	system_layout
	local uid
	uid=$(id -u "$TEST_USER")
	# /etc/mailslot/mailslot.conf is the test's in a private mount
	# namespace (an overlay of /etc); the user's MAILSLOT_CONFIG names a
	# file that would send the mail elsewhere, and must be ignored
	write_conf "$MS/elsewhere.conf" "$MS/mail" "$MS/queue" "$(id -un)"
	run unshare -m --propagation private sh -c '
		mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/etc,workdir=$1/work" /etc || exit 99
		user=$2
		printf "Subject: plain\n\nfrom a user\n" |
			setpriv --reuid="$user" --regid="$user" --init-groups env MAILSLOT_CONFIG="$3" \
			"$1/sbin/mailslot-sendmail" alice || exit 1
		printf "Subject: forged\n\nfrom a user, -f\n" |
			setpriv --reuid="$user" --regid="$user" --init-groups env MAILSLOT_CONFIG="$3" \
			"$1/sbin/mailslot-sendmail" -f boss@example.org -F "The Boss" bob || exit 2
		printf "Subject: own\n\nfrom a user, -f itself\n" |
			setpriv --reuid="$user" --regid="$user" --init-groups \
			"$1/sbin/mailslot-sendmail" -f "$user" carol || exit 4
		# the queue is the mail account'"'"'s: a user cannot list it
		setpriv --reuid="$user" --regid="$user" --init-groups "$1/sbin/mailslot-sendmail" -bp && exit 3
		exit 0
	' sh "$SYS" "$TEST_USER" "$MS/elsewhere.conf"
	assert_success
	[ ! -e "$MS/mail/alice" ] || fail "the caller's MAILSLOT_CONFIG was followed"
	run read_mailbox mbox "$SYS/mail/alice"
	assert_output --regexp '^plain\|'
	grep -q "^Received: by mx.test (mailslot, from userid $uid)$" "$SYS/mail/alice"
	grep -q "^Return-Path: <$TEST_USER@example.org>$" "$SYS/mail/alice"
	grep -q "^From: Send Tester <$TEST_USER@example.org>$" "$SYS/mail/alice"
	run grep -c '^X-Authentication-Warning:' "$SYS/mail/alice"
	assert_output 0
	grep -q "^X-Authentication-Warning: mx.test: $TEST_USER set sender to boss@example.org using -f$" "$SYS/mail/bob"
	grep -q '^From: The Boss <boss@example.org>$' "$SYS/mail/bob"
	# -f naming the user's own address is no warning
	grep -q "^Return-Path: <$TEST_USER@example.org>$" "$SYS/mail/carol"
	run grep -c '^X-Authentication-Warning:' "$SYS/mail/carol"
	assert_output 0
	# delivered by the mail account, not by the caller
	run stat -c %U "$SYS/mail/alice"
	assert_output mail
}

@test "a 50 MiB message: delivered whole, with the memory of a small one" {
	[ -x /usr/bin/time ] || fail "/usr/bin/time is not installed (make deps-test)"
	# max RSS of mailslot-sendmail and the mailslot-enqueue it waits for,
	# for a 1 MiB and a 50 MiB message without Date: or Message-ID: (so
	# the header is completed too, by a copy in the kernel)
	local mib rss=() want=
	for mib in 1 50; do
		python3 -c "import sys; l = b'0123456789' * 9 + b'\\n'
sys.stdout.buffer.write(b'Subject: big $mib\\n\\n' + l * ($mib * 1048576 // len(l)))" >"$MS/msg$mib"
		/usr/bin/time -f %M -o "$MS/rss$mib" "$BIN/sendmail" -i bob <"$MS/msg$mib"
		rss+=("$(cat "$MS/rss$mib")")
		want+="big $mib|$(($(stat -c %s "$MS/msg$mib") - 15 - ${#mib}))"$'\n'""
	done
	echo "# max RSS: 1 MiB message ${rss[0]} KiB, 50 MiB message ${rss[1]} KiB" >&3
	[ "${rss[1]}" -lt $((rss[0] + 1024)) ] || fail "memory grew with the message: ${rss[0]} KiB -> ${rss[1]} KiB"
	run subjects bob
	assert_output "${want%$'\n'}"
}

@test "mailslot-enqueue: a request out of order, too long, or cut short queues nothing (65)" {
	run "$ENQUEUE" extra </dev/null
	assert_failure 64
	run "$ENQUEUE" <<<$'R alice\nD\nhi\n.'
	assert_failure 65
	assert_output --partial 'expected the sender first'
	run "$ENQUEUE" < <(printf 'S\nR %s@example.org\nD\nhi\n.\n' "$(printf 'a%.0s' $(seq 1 400))")
	assert_failure 65
	assert_output --partial 'too long'
	run "$ENQUEUE" < <(printf 'S\nR alice\x00bob\nD\nhi\n.\n')
	assert_failure 65
	run "$ENQUEUE" <<<$'S\nR alice\nX\n'
	assert_failure 65
	# the caller killed before its final line: nothing anywhere
	run "$ENQUEUE" < <(printf 'S\nR alice\nR friend\nD\nSubject: cut\n\nhalf a message\n')
	assert_failure 65
	assert_output --partial 'nothing was queued'
	[ ! -e "$SPOOL/alice" ] || fail "a cut-short request was delivered"
	run find "$QUEUE" -type f
	assert_output ''
	# and whole, the same request is delivered
	run "$ENQUEUE" < <(printf 'S\nR alice\nD\nSubject: whole\n\n..a dot\n.\n')
	assert_success
	run subjects alice
	assert_output --regexp '^whole\|'
	grep -q '^\.a dot$' "$SPOOL/alice"
}

@test "run by a user while mailslot-enqueue is not set-user-ID: 78, and the line says why" {
	[ "$(id -u)" = 0 ] && command -v setpriv >/dev/null || skip "needs root and setpriv, to run as nobody"
	SYS=$(mktemp -d /tmp/mailslot-sendmail.XXXXXX)
	chmod 755 "$SYS"
	cp "$SENDMAIL" "$ENQUEUE" "$SYS/"
	mkdir -m 0700 "$SYS/queue"
	printf 'queue = %s/queue\ndomain = example.org\nhostname = mx.test\n' "$SYS" >"$SYS/conf"
	chmod 644 "$SYS/conf"
	run setpriv --reuid=65534 --regid=65534 --clear-groups env MAILSLOT_CONFIG="$SYS/conf" \
		"$SYS/mailslot-sendmail" root <<<'x'
	assert_failure 78
	assert_output --regexp '^mailslot-sendmail: queue directory .*: Permission denied \(mailslot-enqueue is not set-user-ID root'
}
