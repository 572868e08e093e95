/* smtpd: main of mailslot-smtpd.  Options, logging, peer identity, privileges,
 * then the split of the connection (privsep.h): a sandboxed child speaks SMTP
 * on stdin/stdout, this process serves its requests.  The exit status follows
 * sysexits(3): 0 the session ran (whatever the client did, or however the
 * session process ended: the monitor logs that), 64 bad usage, 78 bad
 * configuration, 71 an operating-system failure before the session. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdpass.h"
#include "fileio.h"
#include "listen.h"
#include "log.h"
#include "peer.h"
#include "privs.h"
#include "privsep.h"
#include "sandbox.h"
#include "session.h"
#include "tls.h"
#include "tlsbuild.h"
#include "tlsshare.h"
#include "users.h"

#define EX_USAGE 64
#define EX_OSERR 71
#define EX_CONFIG 78

/* Under inetd fd 2 is the client's socket: a startup error then goes to the
 * log, not to the client as a stray line of text.  Whoever started us, a
 * client on a socket gets a 421, so that it retries later. */
static int fatal(int status, const char *why, const char *hostname)
{
	/* a spare tells the connection it was started for */
	if (listen_spare_take() == -1)
		return status;
	if (log_startup_failure("mailslot-smtpd", why))
		dprintf(1, "421 %s %s Service not available: %s\r\n", status == EX_OSERR ? "4.3.0" : "4.3.5",
			hostname ? hostname : "mailslot",
			status == EX_OSERR ? "system error" : "configuration error");
	return status;
}

/* TLS is configured and this is the plain build: the same command line
 * goes to mailslot-smtpd-tls beside this program (under --listen once,
 * for the acceptor: its sessions are started from it). */
static int run_tls_build(char **argv, const char *hostname)
{
	char why[PATH_MAX + 100];

	listen_spare_pass_on();	/* a spare stays one in the TLS build */
	tlsbuild_exec(argv, "mailslot-smtpd", why, sizeof why);
	return fatal(EX_CONFIG, why, hostname);
}

/* The acceptor's TLS, forked into every session (listen.h). */
static struct tls_shared shared_tls;

/* Every message that is not delivered at once goes to the queue: a queue
 * this account cannot write is a configuration error now, not a 451 for
 * every message later with the reason only in the log. */
static int queue_usable(const struct config *cfg, char *err, size_t errlen)
{
	int qerr = queue_dir_usable(cfg->queue, 1);

	if (qerr)
		snprintf(err, errlen, "queue directory %s: %s (--queue)", cfg->queue,
			 qerr == ENOTDIR ? "not a directory" : strerror(qerr));
	return qerr ? -1 : 0;
}

/* The session child: sandbox itself for good while the monitor greets,
 * then speak SMTP once told the greeting went out (--smtps: after the
 * handshake, greeting inside TLS).  A spare's child learns its client
 * only then: the connection comes with the word to go.  A session that
 * could not sandbox itself answers 421 after the greeting and ends. */
static void run_session(const struct config *cfg, int sock, struct tls_server *tls)
{
	static struct ps_go go;
	const char *step;
	int abi, conn = -1;

	if (cfg->passwd_fd != -1)
		close(cfg->passwd_fd);	/* the hashes are the monitor's alone */
	tls_server_forget_key(tls);	/* and so is the TLS key */
	privs_shed_groups();
	int sandboxed = sandbox_enter(&step, &abi);
	int sandbox_errno = errno;
	if (fdpass_recv(sock, &go, sizeof go, &conn) == -1 || go.go != PS_GO)
		_exit(0);	/* an early talker, refused by the monitor */
	if (cfg->max_session_time > 0)
		alarm((unsigned)cfg->max_session_time);	/* SIGALRM ends the session */
	int in = conn == -1 ? 0 : conn, out = conn == -1 ? 1 : conn;
	if (sandboxed == -1) {
		log_msg(LOG_ERR, "cannot sandbox the session: %s: %s", step, strerror(sandbox_errno));
		dprintf(out, "421 4.3.0 %s Service not available, closing transmission channel\r\n", cfg->hostname);
		_exit(EX_OSERR);
	}
	if (log_verbose())
		log_msg(LOG_DEBUG, "session sandboxed (Landlock ABI %d)", abi);
	session_attach(cfg, &go.peer, in, out);
	session_use_tls(tls->ctx, sock);
	if (cfg->smtps && session_greet_in_tls() == -1)
		_exit(0);
	_exit(session_run(sock));
}

/* A spare's client, once the acceptor hands it over: 0, or -1 when there
 * is none (the spare was let go) or it is not a connected socket. */
static int spare_client(struct peer *peer)
{
	if (!listen_is_spare())
		return 0;
	if (listen_spare_take() == -1)
		return -1;
	peer_identify(peer);
	return peer->kind == PEER_SOCKET ? 0 : -1;
}

/* The fork comes before the greeting (for a spare, before the client
 * even came), so that the child's start and its sandbox overlap the
 * client's reading of the 220 instead of delaying the answer to its
 * first command. */
static int split(const struct config *cfg, struct peer *peer, struct tls_server *tls, int tls_shared)
{
	struct ps_go go = { .go = PS_GO };
	int sv[2];
	pid_t pid;

	/* what the sandbox would forbid later: the time zone now */
	tzset();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return fatal(EX_OSERR, "cannot make the privsep socket pair", cfg->hostname);
	pid = fork();
	if (pid == -1)
		return fatal(EX_OSERR, "cannot fork the session process", cfg->hostname);
	if (pid == 0) {
		close(sv[0]);
		run_session(cfg, sv[1], tls);
	}
	close(sv[1]);
	/* the monitor signs for the session (PS_SIGN) and needs no context;
	 * one the acceptor holds anyway stays, since freeing it would only
	 * turn pages shared with the acceptor into copies of our own */
	ps_monitor_key(tls);
	if (!tls_shared) {
		tls_ctx_free(tls->ctx);
		tls->ctx = NULL;
	}
	if (listen_is_spare())
		(void)tls_server_prepare(tls);	/* the key, while nobody waits */
	if (spare_client(peer) == -1) {
		close(sv[0]);
		fdpass_reap(pid);
		return 0;
	}
	session_prepare(cfg, peer);
	go.peer = *peer;
	/* --smtps: the client speaks first (its ClientHello), the session greets */
	if ((!cfg->smtps && session_greet() == -1) ||
	    fdpass_send(sv[0], &go, sizeof go, listen_is_spare() ? 0 : -1) == -1)
		shutdown(sv[0], SHUT_RDWR);
	fdpass_leave_connection();
	return ps_monitor(sv[0], pid, cfg, peer);
}

static int serve_forked(int argc, char **argv);

static const struct listen_fork tls_fork = { &shared_tls, serve_forked };

/* The acceptor: with TLS configured, sessions are forked from it with the
 * context built here (listen.h says why). */
static int run_acceptor(const struct config *cfg, int argc, char **argv)
{
	static char busy[300], failed[300];
	struct listen_program prog = { "mailslot-smtpd", busy, failed, NULL, 1 };

	snprintf(busy, sizeof busy, "421 4.7.0 %s Error: too many connections from your address\r\n", cfg->hostname);
	snprintf(failed, sizeof failed, "421 4.3.0 %s Service not available, closing transmission channel\r\n",
		 cfg->hostname);
	log_open("mailslot-smtpd", cfg->log, cfg->verbose);
	if (!cfg->tls_cert || !tls_built_in())
		return listen_run(cfg, argc, argv, &prog);
	tls_shared_init(&shared_tls, cfg->tls_cert, cfg->tls_key, session_sign);
	prog.fork_hooks = &tls_fork;
	return listen_run(cfg, argc, argv, &prog);
}

/* One connection on standard input and output, from the configuration on;
 * tls: what the acceptor built for cfg's certificate, or nothing. */
static int serve(struct config *cfg, struct tls_server *tls)
{
	int tls_shared = tls->ctx != NULL;
	struct peer peer = { 0 };
	char err[512];
	int rc;

	if (users_init(cfg, err, sizeof err) == -1)
		return fatal(EX_CONFIG, err, cfg->hostname);
	if (!listen_is_spare()) {	/* a spare's peer comes later */
		peer_identify(&peer);
		if (peer.kind == PEER_LISTENING)
			return fatal(EX_USAGE, "standard input is a listening socket: add --listen, or start one "
					       "process per connection (systemd Accept=yes, inetd 'nowait')",
				     cfg->hostname);
	}
	log_open("mailslot-smtpd", cfg->log, cfg->verbose);
	/* a password file readable by root only (/etc/shadow) is opened now;
	 * the monitor reads it again from the start for every AUTH */
	if (cfg->passwd && (cfg->passwd_fd = open(cfg->passwd, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, sizeof err, "cannot read the password file %s (--passwd): %s", cfg->passwd,
			 strerror(errno));
		return fatal(EX_CONFIG, err, cfg->hostname);
	}
	/* the certificate and key are read while we may still read anything */
	if (cfg->tls_cert && !tls->ctx &&
	    tls_server_load(tls, cfg->tls_cert, cfg->tls_key, session_sign, err, sizeof err) == -1)
		return fatal(EX_CONFIG, err, cfg->hostname);
	if ((rc = privs_drop(cfg, err, sizeof err)) != 0)
		return fatal(rc == PRIVS_BAD_USER ? EX_CONFIG : EX_OSERR, err, cfg->hostname);
	if (queue_usable(cfg, err, sizeof err) == -1)
		return fatal(EX_CONFIG, err, cfg->hostname);
	return split(cfg, &peer, tls, tls_shared);
}

/* A session forked by the acceptor: the configuration is read again, and
 * the acceptor's context serves if it is for the same files. */
static int serve_forked(int argc, char **argv)
{
	static struct config cfg;
	int rc = config_load(&cfg, argc, argv, PROG_SMTPD, "mailslot-smtpd");

	if (rc)
		return fatal(rc == CONFIG_DONE ? EX_USAGE : rc, config_error, NULL);
	struct tls_server tls = tls_shared_take(&shared_tls, cfg.tls_cert, cfg.tls_key);
	return serve(&cfg, &tls);
}

int main(int argc, char **argv)
{
	static struct config cfg;
	int rc;

	/* a client that goes away must not kill us in the middle of a delivery */
	signal(SIGPIPE, SIG_IGN);
	(void)listen_is_spare();
	rc = config_load(&cfg, argc, argv, PROG_SMTPD, "mailslot-smtpd");
	if (rc == CONFIG_DONE)
		return 0;
	if (rc)
		return fatal(rc, config_error, NULL);
	if ((cfg.tls_cert || cfg.smtps) && !tls_built_in())
		return run_tls_build(argv, cfg.hostname);
	if (cfg.listen)
		return run_acceptor(&cfg, argc, argv);
	static struct tls_server tls;
	return serve(&cfg, &tls);
}
