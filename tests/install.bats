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
	run grep -h 'ExecStart=' "$DEST/usr/lib/systemd/system/mailslot-smtpd.service"
	assert_output --regexp '^ExecStart=/usr/sbin/mailslot-smtpd --listen '
	run grep -h 'ExecStart=' "$DEST/usr/share/doc/mailslot/examples/systemd/mailslot-smtpd-accept@.service"
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

# The injector: mailslot-sendmail always, the set-user-ID mailslot-enqueue
# beside it (when root installs), and the system's names only when asked.
@test "make install: mailslot-sendmail, and with SENDMAIL=yes sendmail, mailq and newaliases" {
	run install_to "$DEST" PREFIX=/usr
	assert_success
	[ -x "$DEST/usr/sbin/mailslot-sendmail" ] || fail "mailslot-sendmail is not installed"
	[ -x "$DEST/usr/sbin/mailslot-enqueue" ] || fail "mailslot-enqueue is not installed"
	if [ "$(id -u)" = 0 ]; then
		run stat -c '%U %a' "$DEST/usr/sbin/mailslot-enqueue"
		assert_output 'root 4755'
	fi
	[ ! -e "$DEST/usr/sbin/sendmail" ] && [ ! -L "$DEST/usr/sbin/sendmail" ] ||
		fail "sbin/sendmail installed without SENDMAIL=yes"
	run install_to "$DEST" PREFIX=/usr SENDMAIL=yes
	assert_success
	local f
	for f in sbin/sendmail bin/mailq bin/newaliases; do
		run readlink "$DEST/usr/$f"
		assert_output /usr/sbin/mailslot-sendmail
	done
	# the installed program, by the name newaliases runs it
	printf 'root: alice\n' >"$BATS_TEST_TMPDIR/aliases"
	printf 'aliases = %s\n' "$BATS_TEST_TMPDIR/aliases" >"$BATS_TEST_TMPDIR/conf"
	ln -s "$DEST/usr/sbin/mailslot-sendmail" "$BATS_TEST_TMPDIR/newaliases"
	MAILSLOT_CONFIG=$BATS_TEST_TMPDIR/conf run "$BATS_TEST_TMPDIR/newaliases"
	assert_success
	assert_output --partial 'no errors'
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

# deps_with TOOL...: run install-deps.sh with a PATH that holds only the
# TOOLs named (linked from this machine), uname, and an `id` that says
# "not root", so that what is missing is printed, never installed.
deps_with() {
	local bin=$BATS_TEST_TMPDIR/bin tool group=$1
	shift
	rm -rf "$bin"
	mkdir -p "$bin"
	printf '#!/bin/sh\necho 1000\n' >"$bin/id"
	chmod 755 "$bin/id"
	# uname: the script asks it for clang's runtime name
	for tool in uname "$@"; do
		ln -sf "$(command -v "$tool")" "$bin/$tool"
	done
	PATH=$bin /bin/sh "$REPO/tests/install-deps.sh" "$group"
}

# make run starts the handler under systemd-socket-activate and nothing
# else; xinetd and tcpserver are for the tests only.
@test "install-deps.sh run asks for the compiler and systemd-socket-activate, not xinetd or tcpserver" {
	local build=(cc make pkg-config)
	[ -e /usr/include/stdio.h ] || skip "the C library headers are not installed"
	run deps_with run "${build[@]}" systemd-socket-activate
	assert_success
	assert_output ''
	run deps_with run systemd-socket-activate
	assert_failure
	assert_line --index 0 'install-deps.sh: missing packages: gcc make pkg-config'
	run deps_with run "${build[@]}"
	assert_failure
	assert_line --index 0 'install-deps.sh: missing packages: systemd'
	run deps_with test "${build[@]}" systemd-socket-activate
	assert_failure
	assert_line --index 0 --regexp '^install-deps.sh: missing packages: .*\<xinetd\>'
	assert_line --index 0 --regexp '^install-deps.sh: missing packages: .*\<ucspi-tcp\>'
}

# xinetd conflicts with inet-superserver, which every other inetd package
# provides: asking apt for one of them as well removes xinetd.
@test "install-deps.sh test asks apt for no inetd package besides xinetd" {
	local providers pkgs p
	providers=$(apt-cache showpkg inet-superserver 2>/dev/null |
		sed -n '/^Reverse Provides:/,$ { /^Reverse/d; s/ .*//p; }' | sort -u)
	[ -n "$providers" ] || skip "apt knows no inet-superserver packages here"
	run deps_with test
	assert_failure
	pkgs=$(sed -n 's/^install-deps.sh: missing packages: //p' <<<"$output")
	[[ " $pkgs " == *" xinetd "* ]] || fail "xinetd not asked for: $pkgs"
	for p in $providers; do
		[ "$p" = xinetd ] && continue
		[[ " $pkgs " != *" $p "* ]] || fail "asks apt for $p, which would remove xinetd"
	done
}
