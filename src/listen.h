/* listen: mailslot-smtpd --listen, the acceptor for systemd's Accept=no.
 *
 * One process takes the listening socket(s) systemd passes (LISTEN_FDS),
 * or a listening socket on standard input (inetd "wait"), accepts each
 * connection and starts a session for it: fork, then exec of this same
 * program without --listen, the connection on standard input and output
 * (one connection ahead: the spare, below).
 * So every connection is a fresh process (its own address-space layout
 * and stack canary, the configuration read again) that splits and
 * sandboxes itself as under Accept=yes (with TLS: forked, below); the acceptor keeps no state about
 * a connection beyond its process id and peer address, for the limits:
 *   --max-connections: at the limit, no more are accepted until a session
 *     ends; clients wait in the listen backlog;
 *   --max-connections-per-source: one more from the same address is told
 *     "421 4.7.0" and closed;
 *   --listen-idle: with no session running and none accepted for that
 *     long, the acceptor exits; systemd starts it again on the next
 *     connection, so nothing stays resident without need.
 * With TLS configured (struct listen_fork) a session is forked from the
 * acceptor and not exec'd: OpenSSL's start, the key's load and the
 * relocation of libcrypto's tables would otherwise be paid by every
 * connection (about 3 ms and 1.3 MiB), and the context the acceptor built
 * once is shared copy-on-write.  The price: the sessions of one acceptor
 * share its address-space layout and stack canary, as Postfix's smtpd
 * processes do across the sessions each serves (README, "Security").
 * The configuration is still read again by every session.
 * SIGTERM or SIGHUP: accept no more, wait for the running sessions, exit
 * (a reload: the next connection starts a new acceptor).
 *
 * The acceptor reads nothing from any client; it holds what the sessions
 * it starts need (root, for their monitors' identity switches).
 */
#ifndef MAILSLOT_LISTEN_H
#define MAILSLOT_LISTEN_H

#include "config.h"

/* How to fork a session rather than exec one: tls, the acceptor's
 * context, is refreshed before each fork (tlsshare.h); serve runs in the
 * child with the session's command line (ours without --listen), its
 * return the exit status. */
struct tls_shared;
struct listen_fork {
	struct tls_shared *tls;
	int (*serve)(int argc, char **argv);
};

/* The program the acceptor starts sessions of: its name for messages,
 * the lines (its protocol's, CRLF-ended) for a client turned away at
 * --max-connections-per-source and for one whose session could not be
 * started; fork_hooks NULL: every session is exec'd; spares: its
 * sessions can be started ahead (listen_is_spare, below). */
struct listen_program {
	const char *name;
	const char *busy_line;
	const char *failed_line;
	const struct listen_fork *fork_hooks;
	int spares;
};

/* The spare.  Right after each connection (and at start) the acceptor
 * starts the session for the next one: the configuration read, the
 * identity switched, the monitor and its sandboxed child split, the key
 * parsed, all before any client is waiting.  The spare then waits on a
 * channel on its standard input (standard output: /dev/null) for exactly
 * one connection, and serves it as any session; it never sees another.
 * A spare goes unused and exits when a file it read (config, users,
 * aliases, passwords, certificate, key) changed in the meantime, when the
 * acceptor stops, or when the acceptor does: that connection then starts
 * a session of its own, as without spares.  An exec'd spare is told by
 * LISTEN_SPARE_ENV, holding the acceptor's pid.  A spare is a process
 * group of its own; an acceptor running as root starts it at nice 19 and
 * raises it to 0 at the hand-over, so that its start does not slow the
 * sessions running meanwhile. */
#define LISTEN_SPARE_ENV "MAILSLOT_SPARE"
/* 1 in a spare (the variable is then removed), else 0. */
int listen_is_spare(void);
/* A spare about to exec another build of itself (TLS): the variable
 * again, for the program it becomes. */
void listen_spare_pass_on(void);
/* A spare's connection: wait for it and put it on standard input and
 * output.  0, also when this is no spare or the connection was taken
 * already; -1 when the acceptor let the spare go (exit quietly). */
int listen_spare_take(void);

/* Serve until idle or told to stop; returns the exit status (sysexits). */
int listen_run(const struct config *cfg, int argc, char **argv, const struct listen_program *prog);

#endif
