# mailslot: build, run, test, bench, install.  GNU make.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/mailslot
# fixed: the pages and examples name /etc/mailslot/mailslot.conf
CONFDIR     = /etc/mailslot
DESTDIR    ?=

CC         ?= cc
CFLAGS     ?= -O2 -g
# snprintf truncation is the intended bound on every text buffer here
WARN        = -std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral \
              -Wno-format-truncation $(if $(findstring clang,$(CC)),-Wno-unknown-warning-option)
HARDEN      = -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIE
CPPFLAGS   += -D_GNU_SOURCE
# Static PIE by default: the dynamic loader costs about 0.15 ms of every
# connection's start-up (README, "Performance").  A static build reads
# accounts from /etc/passwd and /etc/group only (glibc's NSS needs shared
# libraries); STATIC=0 builds a dynamic binary that falls back to NSS.
STATIC     ?= 1
ifeq ($(WITH_LIBSYSTEMD),1)
STATIC      = 0
endif
ifeq ($(STATIC),1)
LDHARDEN    = -static-pie -Wl,-z,relro,-z,now
CPPFLAGS   += -DMAILSLOT_STATIC
else
LDHARDEN    = -pie -Wl,-z,relro,-z,now
endif
# libsystemd costs about 1 ms of dynamic linking per connection (measured,
# README "Performance"); journald is reached through its native protocol
# instead.  WITH_LIBSYSTEMD=1 links it for sd_journal_sendv where wanted
# (and builds dynamically).
# OpenSSL (tls.c) for STARTTLS, implicit TLS and the relay's TLS.  A static
# PIE relocates libcrypto's pointer tables at every start (0.5 ms), so the
# handler is built twice: mailslot-smtpd without it (tls_off.c), which runs
# mailslot-smtpd-tls when TLS is configured (README, "Performance").
TLSLIBS     = -lssl -lcrypto
ifeq ($(WITH_LIBSYSTEMD),1)
CPPFLAGS   += -DWITH_LIBSYSTEMD $(shell pkg-config --cflags libsystemd)
LDLIBS     += $(shell pkg-config --libs libsystemd)
endif

SMTPD_OBJS = src/smtpd.o src/session.o src/txn.o src/privsep.o src/fdpass.o src/tlsbuild.o src/sandbox.o src/status.o src/reply.o src/conn.o src/fileio.o src/lineio.o src/addr.o src/users.o \
             src/peer.o src/queue.o src/deliver.o src/mbox.o src/maildir.o src/mh.o \
             src/numbered.o src/mailbox.o src/lock.o src/config.o src/log.o src/privs.o src/listen.o src/sasl.o src/authdb.o src/pwfile.o src/tlsshare.o
RELAY_OBJS = src/relay.o src/remote.o src/status.o src/smtpc.o src/mx.o src/bounce.o src/queue.o src/deliver.o src/mbox.o \
             src/maildir.o src/mh.o src/numbered.o src/mailbox.o src/lock.o src/users.o src/addr.o src/conn.o src/fileio.o src/lineio.o src/config.o src/log.o src/privs.o src/tls.o src/tls_key.o
PASSWD_OBJS = src/passwd.o src/pwedit.o src/pwfile.o src/lock.o src/fileio.o src/log.o
PROGRAMS   = mailslot-smtpd mailslot-smtpd-tls mailslot-relay mailslot-passwd
# Local injection: mailslot-sendmail runs as its caller; mailslot-enqueue,
# set-user-ID root, is the transaction of a message (src/inject.h).
SENDMAIL_OBJS = src/sendmail.o src/localmsg.o src/addr.o src/fileio.o src/config.o src/users.o src/log.o
ENQUEUE_OBJS = src/enqueue.o src/txn.o src/status.o src/conn.o src/fileio.o src/lineio.o src/addr.o src/users.o \
             src/peer.o src/queue.o src/deliver.o src/mbox.o src/maildir.o src/mh.o src/numbered.o src/mailbox.o \
             src/lock.o src/config.o src/log.o src/privs.o src/authdb.o src/pwfile.o
PROGRAMS  += mailslot-sendmail mailslot-enqueue
# mailslot-stat: log summary (issue 12)
STAT_OBJS  = src/stat.o src/logparse.o src/tally.o src/topn.o src/statreport.o src/lineio.o src/conn.o \
             src/fileio.o src/queue.o src/addr.o src/config.o src/log.o
PROGRAMS  += mailslot-stat
# mailslot-pop3d, split as mailslot-smtpd is: the plain build runs
# mailslot-pop3d-tls when TLS is configured
POP3D_OBJS = src/pop3d.o src/pop3.o src/pop3mon.o src/fdpass.o src/tlsbuild.o src/sandbox.o src/conn.o src/lineio.o \
             src/fileio.o src/users.o src/addr.o src/peer.o src/mailbox.o src/mbox.o src/maildir.o src/mh.o \
             src/numbered.o src/lock.o src/config.o src/log.o src/privs.o src/sasl.o src/authdb.o src/pwfile.o \
             src/listen.o src/tlsshare.o
PROGRAMS  += mailslot-pop3d mailslot-pop3d-tls

.PHONY: all run test test-asan bench soak install clean deps-build deps-run deps-test
all: $(PROGRAMS)

mailslot-smtpd: $(SMTPD_OBJS) src/tls_off.o
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(SMTPD_OBJS) src/tls_off.o $(LDLIBS) -lcrypt

mailslot-smtpd-tls: $(SMTPD_OBJS) src/tls.o src/tls_key.o
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(SMTPD_OBJS) src/tls.o src/tls_key.o $(LDLIBS) $(TLSLIBS) -lcrypt

mailslot-relay: $(RELAY_OBJS)
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(RELAY_OBJS) $(LDLIBS) $(TLSLIBS) -lresolv

mailslot-sendmail: $(SENDMAIL_OBJS)
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(SENDMAIL_OBJS) $(LDLIBS)

mailslot-enqueue: $(ENQUEUE_OBJS)
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(ENQUEUE_OBJS) $(LDLIBS) -lcrypt

mailslot-pop3d: $(POP3D_OBJS) src/tls_off.o
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(POP3D_OBJS) src/tls_off.o $(LDLIBS) -lcrypt

mailslot-pop3d-tls: $(POP3D_OBJS) src/tls.o src/tls_key.o
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(POP3D_OBJS) src/tls.o src/tls_key.o $(LDLIBS) $(TLSLIBS) -lcrypt

mailslot-passwd: $(PASSWD_OBJS)
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(PASSWD_OBJS) $(LDLIBS) -lcrypt

mailslot-stat: $(STAT_OBJS)
	@echo "  LD  $@"
	@$(CC) $(CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $(STAT_OBJS) $(LDLIBS)

src/%.o: src/%.c $(wildcard src/*.h)
	@echo "  CC  $<"
	@$(CC) $(CPPFLAGS) $(WARN) $(HARDEN) $(CFLAGS) -c -o $@ $<

deps-build:
	@sh tests/install-deps.sh build
deps-run:
	@sh tests/install-deps.sh run
deps-test:
	@sh tests/install-deps.sh test

# The handler on 127.0.0.1:2525 and [::1]:2525 under real socket activation
# (Accept=no and the --listen acceptor, as the shipped units run it),
# delivering into the checkout's spool/ for the users of examples/users.
RUN_ARGS = --spool $(CURDIR)/spool/mail --queue $(CURDIR)/spool/queue \
           --users $(CURDIR)/examples/users --aliases $(CURDIR)/examples/aliases \
           --domain localhost --domain example.org --log stderr --user $(shell id -un)
run: deps-run all
	@mkdir -p spool/mail spool/queue
	@echo "mailslot-smtpd on 127.0.0.1:2525 and [::1]:2525; try: nc -C localhost 2525"
	@echo "mail lands in $(CURDIR)/spool/mail/<user>; Ctrl-C stops"
	exec systemd-socket-activate -l 127.0.0.1:2525 -l '[::1]:2525' \
		$(CURDIR)/mailslot-smtpd --listen --listen-idle 0 $(RUN_ARGS)

# Builds with -j2: make test is timed on two cores (README, "Tests").
# MAILSLOT_SKIP_SLOW=1 leaves the scans of make test-slow out.
test: deps-test
	$(MAKE) clean
	$(MAKE) -j2 all
	MAILSLOT_SKIP_SLOW=1 SUITE_LABEL=tests sh tests/run.sh
	$(MAKE) -j2 fuzz-smoke
	$(MAKE) test-asan

# The whole suite once more against an AddressSanitizer+UBSan build, less
# the scans it would only repeat (not_in_asan in tests/test_helper.bash).
test-asan:
	$(MAKE) clean
	$(MAKE) -j2 all STATIC=0 CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		MAILSLOT_SKIP_SLOW=1 SUITE_LABEL=asan sh tests/run.sh
	$(MAKE) clean
	$(MAKE) -j2 all

# --- make test-slow: the longest scans, which make test skips and nothing
# else runs (README, "Tests"); the files that hold them, run whole.
SLOW_TESTS = tests/starttls.bats
.PHONY: test-slow
test-slow: deps-test all
	SUITE_LABEL=slow sh tests/run.sh $(SLOW_TESTS)
# --- end of make test-slow

# Then the real-systemd rows: the same binary under the installed units,
# in a real systemd booted in a container (make bench-systemd alone).
bench: all
	@sh tests/install-deps.sh bench
	SMTPD=$(CURDIR)/mailslot-smtpd bash tests/bench/run.sh
	bash tests/bench/tls.sh
	bash tests/bench/sendmail.sh
	bash tests/bench/systemd.sh

# Submission inside TLS (STARTTLS or implicit, AUTH, one message) and the
# PSS of an idle TLS connection, beside a private Postfix instance with
# Dovecot's SASL on the same machine (tests/bench/tls.sh).
.PHONY: bench-tls
bench-tls: all
	@sh tests/install-deps.sh bench
	bash tests/bench/tls.sh

# The units make install installs (and the Accept=yes pair of
# examples/systemd), under the machine's systemd as PID 1 in
# systemd-nspawn, against the same binary under systemd-socket-activate
# there: ms per session, msg/s from 20 clients, ms per POP3 login through
# the POP3 units, and each service with groups of hardening lines removed
# (tests/bench/systemd.sh).
.PHONY: bench-systemd
bench-systemd: all
	@sh tests/install-deps.sh bench
	bash tests/bench/systemd.sh

# mailslot-stat and Postfix's pflogsumm over one million log lines each
# (tests/bench/stat.sh; LINES=... for another size)
.PHONY: bench-stat
bench-stat: mailslot-stat mailslot-smtpd mailslot-relay
	@sh tests/install-deps.sh bench
	bash tests/bench/stat.sh
# mailslot-pop3d beside Dovecot's pop3d on the same mbox and Maildir
# mailboxes: ms per session, MB/s, PSS per idle connection (as root)
.PHONY: bench-pop3
bench-pop3: all
	@sh tests/install-deps.sh bench
	bash tests/bench/pop3.sh

# 50 clients, 10,000 messages, every delivery checked byte for byte (not in make test)
soak: deps-run all
	SMTPD=$(CURDIR)/mailslot-smtpd RELAY=$(CURDIR)/mailslot-relay bash tests/soak/run.sh

# Units and examples name the programs in $(SBINDIR).  The example
# configuration becomes $(CONFDIR)/mailslot.conf only where there is none:
# an administrator's file is never overwritten.
EXAMPLES   = examples/mailslot.conf examples/inetd.conf examples/users examples/aliases \
             examples/systemd/mailslot-smtpd-accept.socket examples/systemd/mailslot-smtpd-accept@.service \
             examples/fail2ban/filter.d/mailslot-auth.conf examples/fail2ban/jail.d/mailslot-auth.conf
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR)
	install -d $(DESTDIR)$(DOCDIR)/examples/xinetd.d $(DESTDIR)$(DOCDIR)/examples/systemd \
		$(DESTDIR)$(DOCDIR)/examples/fail2ban/filter.d $(DESTDIR)$(DOCDIR)/examples/fail2ban/jail.d $(DESTDIR)$(CONFDIR)
	install -d -m 0770 $(DESTDIR)/var/spool/mailslot/queue
	-chown mail:mail $(DESTDIR)/var/spool/mailslot/queue
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(SBINDIR)/
	install -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	-install -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5/
	for u in units/*; do sed 's|/usr/local/sbin|$(SBINDIR)|g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	for f in $(EXAMPLES) examples/xinetd.d/mailslot-smtpd examples/xinetd.d/mailslot-submission \
		examples/xinetd.d/mailslot-submissions examples/xinetd.d/mailslot-pop3 examples/xinetd.d/mailslot-pop3s; do \
		sed 's|/usr/local/sbin|$(SBINDIR)|g' $$f > $(DESTDIR)$(DOCDIR)/$$f && \
		chmod 0644 $(DESTDIR)$(DOCDIR)/$$f || exit 1; \
	done
	[ -e $(DESTDIR)$(CONFDIR)/mailslot.conf ] || [ -L $(DESTDIR)$(CONFDIR)/mailslot.conf ] || \
		install -m 0644 $(DESTDIR)$(DOCDIR)/examples/mailslot.conf $(DESTDIR)$(CONFDIR)/mailslot.conf
	# local injection: mailslot-enqueue is set-user-ID root (installed by
	# root only: a set-user-ID file of another account would be that
	# account's door); SENDMAIL=yes also makes it the system's sendmail
	if [ "$$(id -u)" = 0 ]; then chown root:root $(DESTDIR)$(SBINDIR)/mailslot-enqueue && \
		chmod 4755 $(DESTDIR)$(SBINDIR)/mailslot-enqueue; fi
	if [ "$(SENDMAIL)" = yes ]; then install -d $(DESTDIR)$(BINDIR) && \
		ln -sf $(SBINDIR)/mailslot-sendmail $(DESTDIR)$(SBINDIR)/sendmail && \
		ln -sf $(SBINDIR)/mailslot-sendmail $(DESTDIR)$(BINDIR)/mailq && \
		ln -sf $(SBINDIR)/mailslot-sendmail $(DESTDIR)$(BINDIR)/newaliases; fi

clean:
	rm -f src/*.o $(PROGRAMS)

# optional, so that a copy of the sources without tests/ still builds
-include tests/fuzz.mk
