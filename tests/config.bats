#!/usr/bin/env bats
# config.bats: options, the config file, the users and aliases files.
#
# The contract (mailslot-smtpd(8) EXIT STATUS): a bad option is exit 64, a
# bad file exit 78, each with exactly one line "mailslot-smtpd: ..." on
# stderr and nothing on stdout, so that no SMTP is ever spoken by a process
# that is not going to run a session.  Standard input is /dev/null in the
# error cases: a program that wrongly went on would greet on stdout.

load test_helper

bats_require_minimum_version 1.5.0

setup() {
	setup_spool
	CONF="$BATS_TEST_TMPDIR/mailslot.conf"
}

# usage_error WORD ARGS...: ARGS is refused with status 64, one line on
# stderr that starts with the program name and holds WORD, nothing on stdout.
usage_error() {
	local word=$1
	shift
	run --separate-stderr "$SMTPD" "$@" </dev/null
	expect_refused 64 "$word"
}

# config_error WORD ARGS...: the same with status 78.
config_error() {
	local word=$1
	shift
	run --separate-stderr "$SMTPD" "$@" </dev/null
	expect_refused 78 "$word"
}

expect_refused() {
	if [ "$status" -ne "$1" ]; then
		fail "expected exit $1, got $status; stdout: '$output'; stderr: '$stderr'"
	fi
	[ -z "$output" ] || fail "expected nothing on stdout, got: '$output'"
	[ "${#stderr_lines[@]}" -eq 1 ] ||
		fail "expected one line on stderr, got ${#stderr_lines[@]}: '$stderr'"
	[[ "$stderr" == "mailslot-smtpd: "* ]] || fail "stderr does not start with the program name: '$stderr'"
	[[ "$stderr" == *"$2"* ]] || fail "stderr does not name '$2': '$stderr'"
}

# Options for a session whose hostname, domains and limits come from the
# config file: only the paths and the account are given here.
path_args() {
	echo --spool "$SPOOL" --queue "$QUEUE" --users "$MS/users" --user "$(id -un)" --log stderr
}

# session ARGS... < dialogue: a terminal session; replies on stdout, with
# the CR of their CRLF taken off; the status is the server's.
session() {
	"$SMTPD" $(path_args) "$@" 2>>"$LOG" | tr -d '\r'
	return "${PIPESTATUS[0]}"
}

# A dialogue that sends one message to each recipient given.
message_to() {
	local r
	echo "EHLO client.test"
	echo "MAIL FROM:<sender@remote.example>"
	for r in "$@"; do echo "RCPT TO:<$r>"; done
	printf 'DATA\nSubject: config\n\nbody\n.\nQUIT\n'
}

# ------------------------------------------------------------ help, version

@test "--help exits 0 and lists the options on stdout" {
	run --separate-stderr "$SMTPD" --help </dev/null
	assert_success
	[ -z "$stderr" ]
	assert_line --index 0 --regexp '^usage: mailslot-smtpd '
	local opt
	for opt in config spool format domain users aliases queue hostname relay max-size \
		max-recipients timeout max-errors lock-timeout handoff user log verbose help version; do
		assert_line --regexp "^  -., --$opt( |$)"
	done
}

@test "-h is --help" {
	run --separate-stderr "$SMTPD" -h </dev/null
	assert_success
	assert_line --index 0 --regexp '^usage: mailslot-smtpd '
}

@test "--help wins over the options around it and starts no session" {
	run --separate-stderr "$SMTPD" --spool /nonexistent --help --max-size 5 </dev/null
	assert_success
	assert_line --index 0 --regexp '^usage: '
	refute_line --regexp '^220 '
}

@test "--version prints one line with the program name and version" {
	run --separate-stderr "$SMTPD" --version </dev/null
	assert_success
	[ -z "$stderr" ]
	assert_equal "${#lines[@]}" 1
	assert_output --regexp '^mailslot-smtpd [0-9]+\.[0-9]+(\.[0-9]+)?'
	run --separate-stderr "$SMTPD" -V </dev/null
	assert_success
	assert_output --regexp '^mailslot-smtpd [0-9]'
}

# ------------------------------------------------------------ bad options: 64

@test "unknown long option: 64 naming it" {
	usage_error "--bogus" --bogus
}

@test "a prefix of a long option is refused, not taken for the option: 64 naming it" {
	usage_error "'--spo'" --spo "$SPOOL"
	usage_error "'--verb'" --verb
	usage_error "'--max-si'" --max-si=2k
	usage_error "'--help2'" --help2
	# the whole name, with its value either way, is still fine
	run --separate-stderr "$SMTPD" $(smtpd_args) --max-size=2k --max-size 2k <<<"QUIT"
	assert_success
	assert_line --index 0 --regexp '^220 '
}

@test "mailslot-relay: a prefix of a long option is refused too" {
	local relay=$BATS_TEST_DIRNAME/../mailslot-relay
	[ -x "$relay" ] || fail "mailslot-relay is not built"
	run --separate-stderr "$relay" --queue "$QUEUE" --lis </dev/null
	assert_equal "$status" 64
	assert_equal "$stderr" "mailslot-relay: unknown option '--lis' (see --help)"
	assert_output ''
}

@test "unknown short option: 64 naming it" {
	usage_error "-Z" -Z
}

@test "unknown option after good ones: 64" {
	usage_error "--no-such" --spool "$SPOOL" --no-such --max-size 2m
}

@test "long option without its value: 64 naming the option" {
	usage_error "--spool" --spool
}

@test "short option without its value: 64 naming the option" {
	usage_error "-s" -s
}

@test "empty value: 64 naming the option" {
	usage_error "spool" --spool=
}

@test "a value given to an option that takes none: 64 naming that option" {
	usage_error "verbose" --verbose=yes
}

@test "not a number: 64 naming the option and the value" {
	usage_error "max-recipients 'ten'" --max-recipients ten
	usage_error "timeout" --timeout 5s
	usage_error "max-errors" --max-errors ''
}

@test "a negative number: 64" {
	usage_error "lock-timeout" --lock-timeout -1
}

@test "a size with an unknown suffix: 64" {
	usage_error "max-size" --max-size 1t
}

@test "numbers out of range: 64 with the range" {
	usage_error "out of range (1024 to" --max-size 1023
	usage_error "max-size" --max-size 1025g
	usage_error "out of range (1 to 10000)" --max-recipients 0
	usage_error "out of range (1 to 10000)" --max-recipients 10001
	usage_error "out of range (1 to 3600)" --timeout 3601
	usage_error "max-errors" --max-errors 1001
	usage_error "lock-timeout" -l 0
}

@test "the limits of every range are accepted" {
	local args
	for args in "--max-size 1k" "--max-size 1024g" "--max-recipients 1" "--max-recipients 10000" \
		"--timeout 1" "--timeout 3600" "--max-errors 1" "--max-errors 1000" \
		"--lock-timeout 1" "--lock-timeout 3600"; do
		run --separate-stderr session $args <<<"QUIT"
		assert_success
		assert_line --index 0 --regexp '^220 '
	done
}

@test "the limits of the settings table: long options without a letter, their ranges, the config file" {
	usage_error "out of range (1 to 1000)" --soft-errors 0
	usage_error "out of range (0 to 60000)" --error-delay 60001
	usage_error "out of range (0 to 10000)" --junk-commands 10001
	usage_error "out of range (0 to 100000)" --recipient-overshoot 100001
	usage_error "out of range (1 to 1000)" --max-received 0
	usage_error "out of range (1 to 86400)" --stale-lock-time 86401
	local args
	for args in "--soft-errors 1" "--soft-errors 1000" "--error-delay 0" "--error-delay 60000" \
		"--junk-commands 0" "--junk-commands 10000" "--recipient-overshoot 0" \
		"--recipient-overshoot 100000" "--max-received 1" "--max-received 1000" \
		"--stale-lock-time 1" "--stale-lock-time 86400"; do
		run --separate-stderr session $args <<<"QUIT"
		assert_success
		assert_line --index 0 --regexp '^220 '
	done
	printf 'hostname = mx.test\njunk-commands = 1\nmax-errors = 1\n' >"$CONF"
	run --separate-stderr session -c "$CONF" <<<$'EHLO a.test\nNOOP\nNOOP'
	assert_output - <<'EOF'
220 mx.test ESMTP mailslot
250-mx.test Hello a.test [terminal]
250-PIPELINING
250-SIZE 26214400
250-8BITMIME
250 ENHANCEDSTATUSCODES
250 2.0.0 Ok
421 4.7.0 mx.test Error: too many errors
EOF
	printf 'stale-lock-time = 0\n' >"$CONF"
	config_error "$CONF:1: stale-lock-time '0': out of range" -c "$CONF"
}

@test "bad --format value: 64 naming the choices" {
	usage_error "mbox, maildir, mh or numbered" --format mbx
}

@test "bad --relay value: 64 naming the choices" {
	usage_error "auto, yes or no" --relay maybe
}

@test "bad --log value: 64 naming the choices" {
	usage_error "stderr" --log file
}

@test "bad --domain: 64 naming the domain" {
	usage_error "bad_domain" --domain bad_domain
	usage_error "a..b" --domain a..b
	usage_error "domain" --domain .example.org
	usage_error "domain" --domain "$(printf 'a%.0s' {1..64}).example"
}

@test "a stray argument: 64 naming it" {
	usage_error "stray" stray
	usage_error "extra" --spool "$SPOOL" extra
}

@test "a bad option is found before a bad config file is read" {
	usage_error "--bogus" -c "$BATS_TEST_TMPDIR/missing.conf" --bogus
}

# ------------------------------------------------------------ config file: 78

@test "config: unknown setting: 78 naming FILE:LINE" {
	printf '# comment\n\nbogus = 1\n' >"$CONF"
	config_error "$CONF:3: unknown setting 'bogus'" -c "$CONF"
}

@test "config: bad number: 78 naming FILE:LINE and the setting" {
	printf 'spool = /tmp\nmax-recipients = zero\n' >"$CONF"
	config_error "$CONF:2: max-recipients" -c "$CONF"
}

@test "config: number out of range: 78 naming FILE:LINE" {
	printf 'timeout = 0\n' >"$CONF"
	config_error "$CONF:1: timeout '0': out of range" -c "$CONF"
}

@test "config: bad choice: 78 naming FILE:LINE" {
	printf 'format = mbox\nformat = mbox2\n' >"$CONF"
	config_error "$CONF:2: format" -c "$CONF"
}

@test "config: bad domain: 78 naming FILE:LINE" {
	printf 'domain = example.org\ndomain = exa mple.org\n' >"$CONF"
	config_error "$CONF:2: domain" -c "$CONF"
}

@test "config: verbose takes yes or no: 78 otherwise" {
	printf 'verbose = 1\n' >"$CONF"
	config_error "$CONF:1: verbose" -c "$CONF"
}

@test "config: missing file: 78 naming the file" {
	config_error "$BATS_TEST_TMPDIR/nope.conf" -c "$BATS_TEST_TMPDIR/nope.conf"
}

# A directory opens with fopen() but every read fails (EISDIR): a typo such
# as "-c /etc/mailslot/" must not run the server on its defaults.
@test "config: a directory as the config file: 78 naming it" {
	mkdir -p "$BATS_TEST_TMPDIR/confdir"
	config_error "$BATS_TEST_TMPDIR/confdir" -c "$BATS_TEST_TMPDIR/confdir"
}

@test "config: setting without value: 78 naming FILE:LINE" {
	printf 'spool = %s\n\ntimeout\n' "$SPOOL" >"$CONF"
	config_error "$CONF:3: setting 'timeout' has no value" -c "$CONF"
	printf 'spool =   \n' >"$CONF"
	config_error "$CONF:1: setting 'spool' has no value" -c "$CONF"
}

@test "config: the actions config, help and version are not settings" {
	printf 'config = /etc/other.conf\n' >"$CONF"
	config_error "$CONF:1: unknown setting 'config'" -c "$CONF"
	printf 'help = yes\n' >"$CONF"
	config_error "$CONF:1: unknown setting 'help'" -c "$CONF"
	printf 'version = yes\n' >"$CONF"
	config_error "$CONF:1: unknown setting 'version'" -c "$CONF"
}

@test "config: names are the long options, not the short ones" {
	printf 'R = 5\n' >"$CONF"
	config_error "$CONF:1: unknown setting 'R'" -c "$CONF"
}

@test "config: a line too long: 78 naming FILE:LINE" {
	{
		echo "# fine"
		printf 'handoff = %s\n' "$(printf 'x%.0s' {1..1100})"
	} >"$CONF"
	config_error "$CONF:2:" -c "$CONF"
}

# ------------------------------------------------------------ config file takes effect

@test "config: hostname, max-recipients and domain take effect" {
	cat >"$CONF" <<-'EOF'
	# a comment, then the three forms
	hostname = mx.conf.test
	max-recipients 1
	domain=conf.example
	EOF
	run session -c "$CONF" --relay no < <(message_to alice@conf.example bob@conf.example)
	assert_success
	assert_line --index 0 "220 mx.conf.test ESMTP mailslot"
	assert_line --regexp '^250-mx\.conf\.test Hello client\.test'
	assert_line "250 2.1.5 Ok"
	assert_line "452 4.5.3 Too many recipients"
	assert_line --partial "250 2.0.0 Ok: queued as"
	run grep -c '^Delivered-To: alice@conf.example$' "$SPOOL/alice"
	assert_output 1
}

@test "config: the domains of the file replace the host name, the first is primary" {
	cat >"$CONF" <<-'EOF'
	hostname = mx.conf.test
	domain = first.example
	domain = second.example
	EOF
	run session -c "$CONF" --relay no < <(message_to bob second.example@second.example alice@mx.conf.test)
	assert_success
	# bare "bob" is at the primary domain
	assert_line "550 5.1.1 <second.example@second.example>: Recipient address rejected: User unknown"
	assert_line "550 5.7.1 <alice@mx.conf.test>: Relay access denied"
	run grep -c '^Delivered-To: bob@first.example$' "$SPOOL/bob"
	assert_output 1
}

@test "config: blanks, comments and empty lines are ignored; '#' inside a value is kept" {
	printf '\n   # indented comment\n\t hostname \t=\t mx.blank.test \t\n\n' >"$CONF"
	run session -c "$CONF" <<<"QUIT"
	assert_success
	assert_line --index 0 "220 mx.blank.test ESMTP mailslot"
	printf 'max-recipients = 5 # five\n' >"$CONF"
	config_error "$CONF:1: max-recipients" -c "$CONF" $(path_args)
}

@test "config: sizes with suffixes, choices in any case, verbose = yes" {
	printf 'max-size = 2k\nformat = MAILDIR\nverbose = Yes\nhostname = mx.conf.test\n' >"$CONF"
	run session -c "$CONF" < <(message_to alice@mx.conf.test)
	assert_success
	assert_line "250-SIZE 2048"
	assert_line --partial "250 2.0.0 Ok: queued as"
	run find "$SPOOL/alice/new" -type f
	assert_equal "${#lines[@]}" 1
	# verbose logs the dialogue
	run grep -c '< EHLO client.test' "$LOG"
	assert_output 1
}

@test "config: a later line wins over an earlier one" {
	printf 'hostname = mx.one.test\nhostname = mx.two.test\n' >"$CONF"
	run session -c "$CONF" <<<"QUIT"
	assert_line --index 0 "220 mx.two.test ESMTP mailslot"
}

@test "command line wins over the config file, whatever the order" {
	printf 'hostname = mx.conf.test\nmax-recipients = 1\n' >"$CONF"
	run session --hostname mx.cli.test -c "$CONF" -R 3 < <(message_to alice@mx.cli.test bob@mx.cli.test carol@mx.cli.test)
	assert_success
	assert_line --index 0 "220 mx.cli.test ESMTP mailslot"
	refute_line --partial "452 4.5.3"
	run session -c "$CONF" --hostname mx.cli.test <<<"QUIT"
	assert_line --index 0 "220 mx.cli.test ESMTP mailslot"
}

@test "--domain on the command line replaces every domain of the config file" {
	printf 'hostname = mx.conf.test\ndomain = conf.example\ndomain = conf2.example\n' >"$CONF"
	run session -c "$CONF" --relay no --domain cli.example < <(message_to alice@conf.example alice@cli.example)
	assert_success
	assert_line "550 5.7.1 <alice@conf.example>: Relay access denied"
	assert_line "250 2.1.5 Ok"
	run grep -c '^Delivered-To: alice@cli.example$' "$SPOOL/alice"
	assert_output 1
}

@test "a bad value on the command line is 64 even with a config file" {
	printf 'hostname = mx.conf.test\n' >"$CONF"
	usage_error "max-recipients" -c "$CONF" --max-recipients 0
}

# ------------------------------------------------------------ users and aliases files: 78

@test "users file with a bad name: 78 naming FILE:LINE" {
	printf 'alice\n# comment\n\nb/ad\n' >"$MS/users"
	config_error "$MS/users:4: bad user name 'b/ad'" --users "$MS/users"
	printf '.hidden\n' >"$MS/users"
	config_error "$MS/users:1:" --users "$MS/users"
	printf -- '-rf\n' >"$MS/users"
	config_error "$MS/users:1:" --users "$MS/users"
}

@test "users file that cannot be read: 78 naming it" {
	config_error "$MS/none" --users "$MS/none"
}

# Read as an empty list, a directory would make every local user unknown:
# all mail answered 550, a permanent failure.
@test "users file that is a directory: 78 naming it" {
	mkdir -p "$MS/usersdir"
	config_error "$MS/usersdir" --users "$MS/usersdir"
}

@test "users file set in the config file is checked the same way" {
	printf 'alice\nbad name\n' >"$MS/users"
	printf 'users = %s\n' "$MS/users" >"$CONF"
	config_error "$MS/users:2:" -c "$CONF"
}

@test "aliases: a |command target: 78 naming FILE:LINE" {
	printf 'root: alice\nlist: |/usr/bin/procmail\n' >"$MS/aliases"
	config_error "$MS/aliases:2: '|/usr/bin/procmail'" --aliases "$MS/aliases"
}

@test "aliases: a /file target: 78 naming FILE:LINE" {
	printf 'root: alice\n# comment\narchive: alice, /var/archive/mbox\n' >"$MS/aliases"
	config_error "$MS/aliases:3: '/var/archive/mbox'" --aliases "$MS/aliases"
}

@test "aliases: an :include: target: 78 naming FILE:LINE" {
	printf 'staff: :include:/etc/staff\n' >"$MS/aliases"
	config_error "$MS/aliases:1: ':include:/etc/staff'" --aliases "$MS/aliases"
}

@test "aliases: a |command on a continuation line names the entry's line" {
	printf 'root: alice\nstaff: alice,\n  bob,\n  |/bin/cat\n' >"$MS/aliases"
	config_error "$MS/aliases:2:" --aliases "$MS/aliases"
}

@test "aliases: an entry without a colon: 78 naming FILE:LINE" {
	printf 'root: alice\nstaff alice\n' >"$MS/aliases"
	config_error "$MS/aliases:2:" --aliases "$MS/aliases"
}

@test "aliases file that cannot be read: 78 naming it" {
	config_error "$MS/none" --aliases "$MS/none"
}

@test "aliases file that is a directory: 78 naming it" {
	mkdir -p "$MS/aliasesdir"
	config_error "$MS/aliasesdir" --aliases "$MS/aliasesdir"
}

# ------------------------------------------------------------ standard input

@test "stdin a listening TCP socket (no --accept): 64 with a clear message" {
	run --separate-stderr python3 -c '
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
os.dup2(s.fileno(), 0)
os.execv(sys.argv[1], sys.argv[1:])
' "$SMTPD" $(smtpd_args)
	expect_refused 64 "listening socket"
	[[ "$stderr" == *"Accept=yes"* ]] || fail "message does not say how to fix it: $stderr"
}

@test "stdin a listening Unix socket: 64" {
	run --separate-stderr python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
os.dup2(s.fileno(), 0)
os.execv(sys.argv[2], sys.argv[2:])
' "$BATS_TEST_TMPDIR/listen.sock" "$SMTPD" $(smtpd_args)
	expect_refused 64 "listening socket"
}

@test "a missing or unwritable --queue is refused at start-up: 78 naming the directory, before any greeting" {
	config_error "$BATS_TEST_TMPDIR/noqueue: No such file or directory (--queue)" \
		--spool "$SPOOL" --queue "$BATS_TEST_TMPDIR/noqueue" --users "$MS/users" --user "$(id -un)"
	: >"$BATS_TEST_TMPDIR/file"
	config_error "not a directory (--queue)" \
		--spool "$SPOOL" --queue "$BATS_TEST_TMPDIR/file" --users "$MS/users" --user "$(id -un)"
}
