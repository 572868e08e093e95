#!/usr/bin/env bats
# install.bats: `make install DESTDIR=...` puts what a system needs where
# the pages say it is, and a second install leaves the administrator's
# configuration alone.  The installed programs are run, not only listed.

load helpers/units_helper

setup() {
	require_smtpd
	DEST=$BATS_TEST_TMPDIR/root
}

# The programs have no built-in path: -c names the file.  Every place that
# names one names the file make install writes.
@test "every file that names the configuration names /etc/mailslot/mailslot.conf" {
	run grep -rnoP '(?<![\w.-])/[\w./-]*mailslot\.conf\b' "$REPO/examples" "$REPO/man" "$REPO/units" \
		"$REPO/README.md" "$REPO/Makefile"
	assert_success
	run grep -v ':/etc/mailslot/mailslot\.conf$' <<<"$output"
	assert_output ''
}
