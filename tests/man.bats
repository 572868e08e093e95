#!/usr/bin/env bats
# man.bats: the manual pages are clean mdoc and cannot drift from the code.
# The options are taken from `mailslot-smtpd --help`, which prints the
# settings table of src/config.c, so a new, renamed or removed option, or a
# changed default, fails here until the pages say so.  The sanitizer pass
# of make test skips it: pages and option tables are the same.

load test_helper
load helpers/relay_helper

MAN_DIR="$BATS_TEST_DIRNAME/../man"
RELAY="${RELAY:-$BATS_TEST_DIRNAME/../mailslot-relay}"
POP3D="${POP3D:-$BATS_TEST_DIRNAME/../mailslot-pop3d}"
SMTPD_PAGE="$MAN_DIR/mailslot-smtpd.8"
CONF_PAGE="$MAN_DIR/mailslot.conf.5"

setup() {
	not_in_asan "the pages against --help"
	command -v mandoc >/dev/null || fail "mandoc is not installed (make deps-test)"
	[ -x "$SMTPD" ] || fail "$SMTPD is not built: run make first"
}

# help_options [PROGRAM]: the long options PROGRAM --help lists (default
# mailslot-smtpd), one per line, without the dashes.
help_options() {
	"${1:-$SMTPD}" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sed 's/^--//' | sort -u
}

# is_setting NAME: the config file takes NAME.  Asked of the program
# itself: a known name without a value is "has no value", an unknown one
# "unknown setting", and neither starts a session.
is_setting() {
	printf '%s\n' "$1" >"$BATS_TEST_TMPDIR/probe.conf"
	! "$SMTPD" -c "$BATS_TEST_TMPDIR/probe.conf" </dev/null 2>&1 | grep -q 'unknown setting'
}

# help_defaults [PROGRAM]: "name default" for every option whose --help
# line ends in [default] (with a short letter or without one).
help_defaults() {
	"${1:-$SMTPD}" --help | sed -nE 's/^ *(-., )?--([a-z-]+) .*\[([0-9]+)\]$/\2 \3/p'
}

# item_text PAGE ERE: the text of the list item of PAGE whose .It line
# matches ERE, up to the next item or the end of the list.  The ERE goes
# through the environment, where awk -v would eat its backslashes.
item_text() {
	RE="$2" awk '
		BEGIN { re = ENVIRON["RE"] }
		/^\.It / { inside = ($0 ~ re) }
		/^\.El/ { inside = 0 }
		inside { print }
	' "$1"
}

# Warning level, not style: style also reports cross references to pages
# that are not installed on this machine, which says nothing of the page.
@test "every page in man/ is clean under mandoc -Tlint -W warning" {
	local page n=0
	for page in "$MAN_DIR"/*.[1-9]; do
		[ -e "$page" ] || continue
		n=$((n + 1))
		run mandoc -Tlint -W warning "$page"
		if [ "$status" -ne 0 ] || [ -n "$output" ]; then
			fail "mandoc -Tlint on $page (status $status):
$output"
		fi
	done
	[ "$n" -ge 2 ] || fail "expected at least mailslot-smtpd.8 and mailslot.conf.5 in man/, found $n pages"
}

@test "the pages render without errors" {
	local page
	for page in "$MAN_DIR"/*.[1-9]; do
		run mandoc -Tascii "$page"
		assert_success
		assert [ "${#lines[@]}" -gt 20 ]
	done
}

# man(1) on Linux is man-db, which formats with groff, not mandoc: a page
# mandoc reads happily can still lose text under groff (a word such as
# "An" or "No" at the start of a %T title is called as a macro, and the
# rest of the page vanishes into a diversion).  So every page goes through
# groff too, with all warnings on.
groff_text() {
	groff -mandoc -Tutf8 -P-cbou "$1"
}

# section_text TITLE < rendered page: the lines of section TITLE.
section_text() {
	T="$1" awk '/^[^ ]/ { inside = ($0 == ENVIRON["T"]); next } inside'
}

@test "every page in man/ renders under groff -mandoc -ww without a warning" {
	command -v groff >/dev/null || fail "groff is not installed (make deps-test)"
	local page n=0
	for page in "$MAN_DIR"/*.[1-9]; do
		[ -e "$page" ] || continue
		n=$((n + 1))
		run groff -mandoc -Tutf8 -ww -z "$page"
		if [ "$status" -ne 0 ] || [ -n "$output" ]; then
			fail "groff -mandoc -ww on $page (status $status):
$output"
		fi
	done
	[ "$n" -ge 2 ] || fail "expected at least two pages in man/, found $n"
}

@test "groff renders every section heading and every reference of each page" {
	command -v groff >/dev/null || fail "groff is not installed (make deps-test)"
	local page text title ref lost=()
	for page in "$MAN_DIR"/*.[1-9]; do
		[ -e "$page" ] || continue
		text=$(groff_text "$page" 2>/dev/null)
		while read -r title; do
			grep -qxF -- "$title" <<<"$text" || lost+=("${page##*/}: .Sh $title")
		done < <(sed -nE 's/^\.Sh +"?([^"]*)"?$/\1/p' "$page")
		while read -r title; do
			grep -qxE -- " +$title" <<<"$text" || lost+=("${page##*/}: .Ss $title")
		done < <(sed -nE 's/^\.Ss +"?([^"]*)"?$/\1/p' "$page")
		# A reference that is cut off takes its report number with it;
		# looked for in its own section, as the text elsewhere names
		# the same RFCs.
		while IFS=$'\t' read -r title ref; do
			section_text "$title" <<<"$text" | tr -s ' \n' '  ' | grep -qF -- "$ref" ||
				lost+=("${page##*/}: .%R $ref in $title")
		done < <(awk '/^\.Sh / { sub(/^\.Sh +/, ""); gsub(/"/, ""); sh = $0 }
			/^\.%R / { sub(/^\.%R +/, ""); print sh "\t" $0 }' "$page")
	done
	[ "${#lost[@]}" -eq 0 ] || fail "in the source but not in groff's output:
$(printf '%s\n' "${lost[@]}")"
}

@test "--help lists the options this test relies on" {
	run help_options
	assert_success
	assert_line spool
	assert_line max-size
	assert [ "${#lines[@]}" -ge 15 ]
}

@test "every long option of --help is an item in mailslot-smtpd.8" {
	local opt missing=()
	for opt in $(help_options); do
		grep -qE "^\.It .*Fl \\\\-$opt( |$)" "$SMTPD_PAGE" || missing+=("--$opt")
	done
	[ "${#missing[@]}" -eq 0 ] || fail "not documented in mailslot-smtpd.8: ${missing[*]}"
}

@test "every option item in mailslot-smtpd.8 still exists in --help" {
	local opts opt stale=()
	opts=" $(help_options | tr '\n' ' ') "
	for opt in $(sed -nE 's/^\.It .*Fl \\-([a-z][a-z-]*).*/\1/p' "$SMTPD_PAGE"); do
		[[ "$opts" == *" $opt "* ]] || stale+=("--$opt")
	done
	[ "${#stale[@]}" -eq 0 ] || fail "documented in mailslot-smtpd.8 but not in --help: ${stale[*]}"
}

@test "the short option of every --help line is the one mailslot-smtpd.8 gives" {
	local short long wrong=()
	while read -r short long; do
		grep -qE "^\.It Fl $short( Ar [A-Za-z-]+)? , Fl \\\\-$long( |$)" "$SMTPD_PAGE" ||
			wrong+=("-$short/--$long")
	done < <("$SMTPD" --help | sed -nE 's/^ *-(.), --([a-z-]+).*/\1 \2/p')
	[ "${#wrong[@]}" -eq 0 ] || fail "short and long option not paired in mailslot-smtpd.8: ${wrong[*]}"
}

@test "every setting of --help is an item in mailslot.conf.5, its command-line-only options are named" {
	local opt missing=() wrong=()
	for opt in $(help_options); do
		case $opt in
		config | help | version) continue ;; # actions, not settings
		esac
		if is_setting "$opt"; then
			grep -qE "^\.It Cm $opt( |$)" "$CONF_PAGE" || missing+=("$opt")
		elif grep -qE "^\.It Cm $opt( |$)" "$CONF_PAGE" || ! grep -qw -- "$opt" "$CONF_PAGE"; then
			wrong+=("$opt")
		fi
	done
	[ "${#missing[@]}" -eq 0 ] || fail "not documented in mailslot.conf.5: ${missing[*]}"
	[ "${#wrong[@]}" -eq 0 ] || fail "command-line options not named as such in mailslot.conf.5: ${wrong[*]}"
}

@test "mailslot.conf.5 names the option that reads the file" {
	run grep -cE 'Fl \\-config' "$CONF_PAGE"
	assert_success
}

@test "the numeric defaults of --help are the ones both pages give" {
	local name def wrong=()
	while read -r name def; do
		item_text "$SMTPD_PAGE" "Fl \\\\-$name( |$)" | grep -qw "Default $def" ||
			wrong+=("mailslot-smtpd.8:--$name=$def")
		item_text "$CONF_PAGE" "^\\.It Cm $name( |$)" | grep -qw "Default $def" ||
			wrong+=("mailslot.conf.5:$name=$def")
	done < <(help_defaults)
	run help_defaults
	assert [ "${#lines[@]}" -ge 5 ]
	[ "${#wrong[@]}" -eq 0 ] || fail "default missing or different: ${wrong[*]}"
}

@test "every setting of mailslot-relay --help is an item in mailslot.conf.5, its actions are not" {
	[ -x "$RELAY" ] || skip "mailslot-relay is not built"
	local opt missing=() wrong=()
	for opt in $(help_options "$RELAY"); do
		case $opt in
		config | help | version) continue ;;
		esac
		if is_setting "$opt"; then
			grep -qE "^\.It Cm $opt( |$)" "$CONF_PAGE" || missing+=("$opt")
		elif grep -qE "^\.It Cm $opt( |$)" "$CONF_PAGE" || ! grep -qw -- "$opt" "$CONF_PAGE"; then
			wrong+=("$opt")
		fi
	done
	[ "${#missing[@]}" -eq 0 ] || fail "settings not documented in mailslot.conf.5: ${missing[*]}"
	[ "${#wrong[@]}" -eq 0 ] || fail "command-line actions not named as such in mailslot.conf.5: ${wrong[*]}"
}

@test "every setting item in mailslot.conf.5 is a setting of one of the programs" {
	[ -x "$RELAY" ] || skip "mailslot-relay is not built: its settings cannot be checked"
	local known name stale=()
	known=" $( { help_options; help_options "$RELAY"; help_options "$POP3D"; } | sort -u | tr '\n' ' ') "
	for name in $(sed -nE 's/^\.It Cm ([a-z][a-z0-9-]*).*/\1/p' "$CONF_PAGE"); do
		if [[ "$known" != *" $name "* ]] || ! is_setting "$name"; then
			stale+=("$name")
		fi
	done
	[ "${#stale[@]}" -eq 0 ] || fail "documented in mailslot.conf.5 but not a setting: ${stale[*]}"
}

@test "the numeric defaults of mailslot-relay --help are the ones mailslot.conf.5 gives" {
	[ -x "$RELAY" ] || skip "mailslot-relay is not built"
	local name def wrong=()
	while read -r name def; do
		item_text "$CONF_PAGE" "^\\.It Cm $name( |$)" | grep -qw "Default $def" || wrong+=("$name=$def")
	done < <(help_defaults "$RELAY")
	[ "${#wrong[@]}" -eq 0 ] || fail "default missing or different in mailslot.conf.5: ${wrong[*]}"
}

# --- mailslot-pop3d ---------------------------------------------------------
@test "every long option of mailslot-pop3d --help is an item in mailslot-pop3d.8, with its default and short letter" {
	[ -x "$POP3D" ] || fail "$POP3D is not built: run make first"
	local page=$MAN_DIR/mailslot-pop3d.8 opt name def short long missing=() opts
	# the option each line names first (a help text may name another)
	opts=$("$POP3D" --help | sed -nE 's/^ *(-., )?--([a-z0-9-]+).*/\2/p')
	for opt in $opts; do
		grep -qE "^\.It .*Fl \\\\-$opt( |$)" "$page" || missing+=("--$opt")
	done
	while read -r name def; do
		item_text "$page" "Fl \\\\-$name( |$)" | grep -qw "Default $def" || missing+=("--$name=$def")
	done < <(help_defaults "$POP3D")
	while read -r short long; do
		grep -qE "^\.It Fl $short( Ar [A-Za-z-]+)? , Fl \\\\-$long( |$)" "$page" || missing+=("-$short/--$long")
	done < <("$POP3D" --help | sed -nE 's/^ *-(.), --([a-z-]+).*/\1 \2/p')
	for opt in $(sed -nE 's/^\.It .*Fl \\-([a-z][a-z0-9-]*).*/\1/p' "$page"); do
		grep -qx -- "$opt" <<<"$opts" || missing+=("stale --$opt")
	done
	[ "${#missing[@]}" -eq 0 ] || fail "mailslot-pop3d.8 and --help differ: ${missing[*]}"
}

# The README's "Tests" table is where a reader learns what a suite drives.
@test "README's Tests table names every tests/*.bats file" {
	local f tick='`' missing=() table
	# the first column of the table's rows
	table=$(sed -n 's/^| *\([^|]*\)|.*/\1/p' "$BATS_TEST_DIRNAME/../README.md")
	for f in "$BATS_TEST_DIRNAME"/*.bats; do
		f=${f##*/}
		grep -qF "$tick$f$tick" <<<"$table" || missing+=("$f")
	done
	[ "${#missing[@]}" -eq 0 ] || fail "not in README's Tests table: ${missing[*]}"
}

# mail_args NAME: the MAIL parameters smtp-sink NAME received, one a line,
# as a page names them: SIZE=n as "SIZE=", a keyword value (BODY=8BITMIME)
# whole.
mail_args() {
	cat "$BATS_TEST_TMPDIR/$1"/dump/* | sed -n 's/^X-Mail-Args: <[^>]*>//p' | tr ' ' '\n' |
		sed -E '/^$/d; s/=[0-9]+$/=/'
}

# The relay is run against Postfix's smtp-sink, which offers 8BITMIME or,
# with -8, does not, and records the MAIL arguments; the page must name
# every parameter sent, and not as something the relay lacks.
@test "mailslot-relay.8 names the MAIL parameters the relay sends, BODY=8BITMIME among them" {
	[ -x "$RELAY" ] || fail "$RELAY is not built: run make first"
	[ -x "$SMTP_SINK" ] || fail "smtp-sink is not installed (make deps-test)"
	local page=$MAN_DIR/mailslot-relay.8 text missing param sent=()
	relay_setup
	# --smarthost with an address: no DNS query is made; a port that
	# nothing serves stands in for the DNS server all the same
	DNSPORT=$(relay_free_udp_port)

	relay_smtp_sink 127.0.0.5 eight
	relay_queue alice@example.org bob@remote.test < <(printf 'Subject: 8-bit\n\nGr\303\274\303\237e\n')
	run relay --smarthost "127.0.0.5:$RPORT"
	assert_success
	mapfile -t -O "${#sent[@]}" sent < <(mail_args eight)
	[[ " ${sent[*]} " == *" BODY=8BITMIME "* ]] || fail "no BODY=8BITMIME in MAIL: ${sent[*]}"
	relay_stop eight

	# 7-bit text is not announced; to a server without 8BITMIME, 8-bit
	# text goes as it is, unannounced
	RPORT=$(free_port)
	relay_smtp_sink 127.0.0.5 plain
	relay_queue alice@example.org bob@remote.test < <(printf 'Subject: 7-bit\n\nplain\n')
	run relay --smarthost "127.0.0.5:$RPORT"
	assert_success
	run mail_args plain
	refute_output --partial BODY=
	mapfile -t -O "${#sent[@]}" sent < <(mail_args plain)
	relay_stop plain
	RPORT=$(free_port)
	relay_smtp_sink 127.0.0.5 old -8
	relay_queue alice@example.org bob@remote.test < <(printf 'Subject: 8-bit\n\nGr\303\274\303\237e\n')
	run relay --smarthost "127.0.0.5:$RPORT"
	assert_success
	run mail_args old
	refute_output --partial BODY=
	run grep -rlF $'Gr\303\274\303\237e' "$BATS_TEST_TMPDIR/old/dump"
	assert_success

	text=$(groff_text "$page" 2>/dev/null | tr -s ' \n' '  ')
	missing=$(awk 'BEGIN { RS = "" } /^ *Not implemented/' <<<"$(groff_text "$page" 2>/dev/null)" |
		tr -s ' \n' '  ')
	[ -n "$missing" ] || fail "mailslot-relay.8 has no \"Not implemented\" paragraph to check"
	for param in $(printf '%s\n' "${sent[@]}" | sort -u); do
		[[ "$text" == *"$param"* ]] || fail "mailslot-relay.8 does not name $param, which the relay sends"
		[[ "$missing" != *"${param%%=*}"* ]] ||
			fail "mailslot-relay.8 says the relay lacks ${param%%=*}, which it sends: $missing"
	done
}
