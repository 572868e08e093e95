#!/usr/bin/env bats
# man.bats: the manual pages are clean mdoc and cannot drift from the code.
# The options are taken from `mailslot-smtpd --help`, which prints the
# settings table of src/config.c, so a new, renamed or removed option, or a
# changed default, fails here until the pages say so.

load test_helper

MAN_DIR="$BATS_TEST_DIRNAME/../man"
RELAY="${RELAY:-$BATS_TEST_DIRNAME/../mailslot-relay}"
SMTPD_PAGE="$MAN_DIR/mailslot-smtpd.8"
CONF_PAGE="$MAN_DIR/mailslot.conf.5"

setup() {
	command -v mandoc >/dev/null || fail "mandoc is not installed (make deps-test)"
	[ -x "$SMTPD" ] || fail "$SMTPD is not built: run make first"
}

# help_options [PROGRAM]: the long options PROGRAM --help lists (default
# mailslot-smtpd), one per line, without the dashes.
help_options() {
	"${1:-$SMTPD}" --help | grep -oE -- '--[a-z][a-z-]*' | sed 's/^--//' | sort -u
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

@test "every setting of --help is an item in mailslot.conf.5" {
	local opt missing=()
	for opt in $(help_options); do
		case $opt in
		config | help | version) continue ;; # actions, not settings
		esac
		grep -qE "^\.It Cm $opt( |$)" "$CONF_PAGE" || missing+=("$opt")
	done
	[ "${#missing[@]}" -eq 0 ] || fail "not documented in mailslot.conf.5: ${missing[*]}"
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
	known=" $( { help_options; help_options "$RELAY"; } | sort -u | tr '\n' ' ') "
	for name in $(sed -nE 's/^\.It Cm ([a-z][a-z-]*).*/\1/p' "$CONF_PAGE"); do
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
