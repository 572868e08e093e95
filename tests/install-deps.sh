#!/bin/sh
# install-deps.sh [build|run|test|bench]...: make sure the tools that
# mailslot's build, running, tests or benchmarks need are installed.
#
# With no argument every group is checked.  The checks are shell builtins
# only, so a machine that has everything pays a few milliseconds and no
# apt-get.  When something is missing, root gets it installed (Debian
# packages, no recommends, no service left running); anyone else gets the
# exact command to run and exit status 1.  POSIX sh: make calls it with sh.
set -eu

usage() {
	echo "usage: $0 [build|run|test|bench]..." >&2
	exit 64
}

missing=""

# need PACKAGE CHECK: CHECK is a command name, or a path when it has a '/'.
need() {
	case $2 in
	*/*) [ -e "$2" ] && return 0 ;;
	*) command -v "$2" >/dev/null 2>&1 && return 0 ;;
	esac
	case " $missing " in
	*" $1 "*) ;;
	*) missing="${missing:+$missing }$1" ;;
	esac
}

# unpack PACKAGE FILE: FILE of PACKAGE is wanted, from the package's
# files unpacked under $OPT/PACKAGE rather than from installing it.
OPT=/opt/mailslot-tests
unpacked=""
unpack() {
	[ -e "$OPT/$1$2" ] && return 0
	case " $unpacked " in
	*" $1 "*) ;;
	*) unpacked="${unpacked:+$unpacked }$1" ;;
	esac
}

group_build() {
	need gcc cc
	need make make
	need pkg-config pkg-config
	# gcc only recommends the C library headers.
	need libc6-dev /usr/include/stdio.h
	# mailslot-passwd and authdb: libxcrypt's crypt_rn and crypt_gensalt_rn
	# (the static archive too, for the static PIE)
	need libcrypt-dev /usr/include/crypt.h
	# tls.c: OpenSSL 3's headers and the static libssl.a and libcrypto.a
	# the default static build links
	need libssl-dev /usr/include/openssl/ssl.h
}

# make run (and make soak): build, then the handler under real socket
# activation.  Nothing else.
group_run() {
	group_build
	need systemd systemd-socket-activate
}

group_test() {
	group_run
	# xinetd.bats: the other superservers the examples start the handler with
	need xinetd xinetd
	need ucspi-tcp tcpserver
	# inetd.bats: examples/inetd.conf under Debian's openbsd-inetd.  Every
	# inetd package provides inet-superserver, which xinetd conflicts
	# with: installing one removes xinetd.  So it is unpacked, not
	# installed (no service, no /etc/inetd.conf), and only what it
	# depends on is installed.
	unpack openbsd-inetd /usr/sbin/inetd
	need systemd systemd-analyze
	need bats bats
	need bats-assert /usr/lib/bats/bats-assert/load.bash
	need bats-support /usr/lib/bats/bats-support/load.bash
	need swaks swaks
	# The traditional netcat lacks -z and -U that the tests use.
	need netcat-openbsd nc.openbsd
	need python3 python3
	need mandoc mandoc
	# man.bats also formats the pages as man(1) does, with groff;
	# groff-base is the part man-db uses (the tty devices), enough here.
	need groff-base groff
	# dnsmasq-base is the binary alone: the "dnsmasq" package would also
	# start a system resolver on port 53 that the tests do not want.
	need dnsmasq-base dnsmasq
	need clang clang
	# clang only recommends its runtimes: libclang-rt-dev holds ASan and
	# UBSan (make test-asan) and libFuzzer (tests/fuzz.mk).  Asked of
	# clang itself, which prints a bare name when it has no such file.
	need libclang-rt-dev "$(clang -print-file-name="libclang_rt.fuzzer-$(uname -m).a" 2>/dev/null)"
	# logging.bats builds the WITH_LIBSYSTEMD=1 variant once
	need libsystemd-dev /usr/include/systemd/sd-journal.h
	# relay.bats: the foreign mail servers (Postfix's smtp-sink, aiosmtpd
	# for Debian's own python3), and ip/ss for the network namespace and
	# the waits on listening sockets.
	need postfix /usr/sbin/smtp-sink
	need python3-aiosmtpd /usr/lib/python3/dist-packages/aiosmtpd/__init__.py
	need iproute2 /usr/bin/ss
	# lint.bats, and crashpoints.bats (fault injection)
	need cppcheck cppcheck
	need clang-tidy clang-tidy
	need strace strace
	# privsep.bats: a forbidden system call made in the session (gdb call)
	need gdb gdb
	# systemd.bats: the shipped units under a real systemd booted in a
	# container (systemd-nspawn), entered with nsenter (util-linux)
	need systemd-container systemd-nspawn
	need util-linux nsenter
	# auth.bats: examples/fail2ban checked by fail2ban-regex (the daemon is
	# kept from starting like the others)
	need fail2ban fail2ban-regex
	# starttls.bats: the TLS clients, and testssl.sh's scan
	need msmtp msmtp
	need s-nail s-nail
	need curl curl
	need libnet-ssleay-perl "/var/lib/dpkg/info/libnet-ssleay-perl:$(dpkg --print-architecture 2>/dev/null).list"
	need libio-socket-ssl-perl /var/lib/dpkg/info/libio-socket-ssl-perl.list
	need testssl.sh testssl
	# passwd.bats: hashes made by other tools (mkpasswd is in whois);
	# tls.bats, relay_tls.bats: the test CA and certificates, s_client
	need whois mkpasswd
	need openssl openssl
	# delivery.bats: nmh and mutt read the MH folders
	need nmh /usr/bin/mh/scan
	need mutt mutt
	# sendmail.bats: the programs that run sendmail (mutt and s-nail are
	# above; cron only for the command line in its binary), /usr/bin/time
	need bsd-mailx bsd-mailx
	need git-email /usr/lib/git-core/git-send-email
	need cron /usr/sbin/cron
	need time /usr/bin/time
	# stat.bats: captured journal records made a real journal file
	need systemd-journal-remote /lib/systemd/systemd-journal-remote
	# pop3.bats: the POP3 clients mailslot-pop3d is tried with
	need fetchmail fetchmail
	need getmail6 getmail6
	need mpop mpop
}

group_bench() {
	group_build
	need systemd systemd-socket-activate
	need hyperfine hyperfine
	need postfix smtp-source
	# make bench-systemd: the shipped units in a systemd-nspawn container
	need systemd-container systemd-nspawn
	need util-linux nsenter
	# make bench-tls: Postfix's SASL through Dovecot's auth service
	need dovecot-core dovecot
	# make bench-stat: Postfix's pflogsumm beside mailslot-stat, peak memory by GNU time
	need pflogsumm pflogsumm
	need time /usr/bin/time
	# make bench-pop3: Dovecot's pop3d beside mailslot-pop3d
	need dovecot-pop3d /usr/sbin/dovecot
}

[ $# -gt 0 ] || set -- build run test bench
for g; do
	case $g in
	build) group_build ;;
	run) group_run ;;
	test) group_test ;;
	bench) group_bench ;;
	*) usage ;;
	esac
done

[ -z "$missing$unpacked" ] && exit 0

if [ "$(id -u 2>/dev/null)" != 0 ]; then
	if [ -n "$missing" ]; then
		echo "install-deps.sh: missing packages: $missing" >&2
		echo "run as root: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing" >&2
	fi
	if [ -n "$unpacked" ]; then
		echo "install-deps.sh: to unpack under $OPT: $unpacked" >&2
		echo "run as root: sh $0 $*" >&2
	fi
	exit 1
fi

echo "install-deps.sh: installing ${missing:-nothing}${unpacked:+, unpacking $unpacked}" >&2

# Package scripts must not start daemons (xinetd, postfix) on a build or
# test machine; policy-rc.d is honoured by invoke-rc.d and, under systemd,
# by deb-systemd-invoke.  Leave an existing policy alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	trap 'rm -f "$policy"' EXIT
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
fi

case " $missing " in
*" postfix "*)
	# Only smtp-source is wanted: no main.cf, no questions.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	;;
esac

export DEBIAN_FRONTEND=noninteractive
apt-get update
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086 # one word per package
	apt-get install -y --no-install-recommends $missing
fi

# The package's Depends (first alternatives, no versions) are installed;
# the package itself is downloaded and its files unpacked under $OPT.
for pkg in $unpacked; do
	dir=$(mktemp -d)
	chmod 755 "$dir" # apt downloads as the _apt user
	(cd "$dir" && apt-get download "$pkg")
	deb=$(ls "$dir"/*.deb)
	deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//' | tr -d ' ')
	# shellcheck disable=SC2086 # one word per package
	apt-get install -y --no-install-recommends $deps
	rm -rf "${OPT:?}/$pkg"
	mkdir -p "$OPT/$pkg"
	dpkg-deb -x "$deb" "$OPT/$pkg"
	rm -rf "$dir"
done

# If a daemon started anyway (a policy that allows it), stop it and keep it
# from starting at boot.
for pkg in $missing; do
	case $pkg in
	postfix | xinetd | fail2ban | dovecot-pop3d) ;;
	*) continue ;;
	esac
	if [ -d /run/systemd/system ]; then
		# dovecot-pop3d's daemon is dovecot.service
		systemctl disable --now "${pkg%-pop3d}.service" >/dev/null 2>&1 || true
	elif [ "$pkg" = postfix ]; then
		if postfix status >/dev/null 2>&1; then postfix stop || true; fi
	elif [ "$pkg" = dovecot-pop3d ]; then
		if [ -x /etc/init.d/dovecot ]; then /etc/init.d/dovecot stop >/dev/null 2>&1 || true; fi
	elif [ -x /etc/init.d/xinetd ]; then
		/etc/init.d/xinetd stop >/dev/null 2>&1 || true
	fi
done
exit 0
