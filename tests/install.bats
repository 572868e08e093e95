#!/usr/bin/env bats
# install.bats: `make install DESTDIR=...` puts what a system needs where
# the pages say it is, and a second install leaves the administrator's
# configuration alone.  The installed programs are run, not only listed.

load helpers/units_helper

setup() {
	require_smtpd
	DEST=$BATS_TEST_TMPDIR/root
}

# install_to DEST [make variables]: make install into DEST, quietly.
install_to() {
	local dest=$1
	shift
	make -s -C "$REPO" install DESTDIR="$dest" "$@"
}

@test "make install: programs, pages, units, the configuration and the examples" {
	run install_to "$DEST" PREFIX=/usr
	assert_success
	local f
	for f in usr/sbin/mailslot-smtpd usr/sbin/mailslot-relay; do
		[ -x "$DEST/$f" ] || fail "$f is not installed or not executable"
	done
	run "$DEST/usr/sbin/mailslot-relay" --version
	assert_success
	for f in "$REPO"/man/*.[1-9]; do
		f=${f##*/}
		[ -f "$DEST/usr/share/man/man${f##*.}/$f" ] || fail "man page $f is not in man${f##*.}"
	done
	for f in "$REPO"/units/*; do
		f=${f##*/}
		[ -f "$DEST/usr/lib/systemd/system/$f" ] || fail "unit $f is not installed"
	done
	# the units and examples name the programs where PREFIX put them
	run grep -rl /usr/local/sbin "$DEST/usr/lib" "$DEST/usr/share/doc" "$DEST/etc"
	assert_failure
	run grep -h 'ExecStart=' "$DEST/usr/lib/systemd/system/mailslot-smtpd@.service"
	assert_output --regexp '^ExecStart=/usr/sbin/mailslot-smtpd( |$)'

	local conf=$DEST/etc/mailslot/mailslot.conf doc=$DEST/usr/share/doc/mailslot/examples
	[ -f "$conf" ] || fail "no /etc/mailslot/mailslot.conf"
	run stat -c %a "$conf"
	assert_output 644
	for f in mailslot.conf inetd.conf users aliases xinetd.d/mailslot-smtpd; do
		[ -f "$doc/$f" ] || fail "example $f is not in share/doc/mailslot/examples"
	done
	cmp "$conf" "$doc/mailslot.conf"
	# the installed handler takes the installed configuration
	setup_mail
	run "$DEST/usr/sbin/mailslot-smtpd" -c "$conf" "${SMTPD_ARGS[@]}" <<<QUIT
	assert_success
	assert_line --partial '221 '
}

@test "make install: a second install keeps an edited /etc/mailslot/mailslot.conf" {
	run install_to "$DEST"
	assert_success
	local conf=$DEST/etc/mailslot/mailslot.conf
	printf 'hostname = mx.admin.test\n' >>"$conf"
	cp "$conf" "$BATS_TEST_TMPDIR/edited"
	run install_to "$DEST"
	assert_success
	cmp "$conf" "$BATS_TEST_TMPDIR/edited"
	# the example beside the documentation is the shipped one, as ever
	run grep -c mx.admin.test "$DEST/usr/local/share/doc/mailslot/examples/mailslot.conf"
	assert_output 0
}

# The programs have no built-in path: -c names the file.  Every place that
# names one names the file make install writes (the first test).
@test "every file that names the configuration names /etc/mailslot/mailslot.conf" {
	run grep -rnoP '(?<![\w.-])/[\w./-]*mailslot\.conf\b' "$REPO/examples" "$REPO/man" "$REPO/units" \
		"$REPO/README.md"
	assert_success
	run grep -v ':/etc/mailslot/mailslot\.conf$' <<<"$output"
	assert_output ''
}
