/* pop3d: main of mailslot-pop3d.  Options, logging, peer identity,
 * privileges, then the split of the connection (pop3mon.h): a sandboxed
 * child speaks POP3 on stdin/stdout, this process checks passwords and
 * reads the maildrop for it.  The exit status follows sysexits(3): 0 the
 * session ran (however it ended: the monitor logs that), 64 bad usage,
 * 78 bad configuration, 71 an operating-system failure before the
 * session. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdpass.h"
#include "listen.h"
#include "log.h"
#include "peer.h"
#include "pop3.h"
#include "pop3mon.h"
#include "privs.h"
#include "sandbox.h"
#include "tls.h"
#include "tlsbuild.h"
#include "tlsshare.h"
#include "users.h"

#define EX_USAGE 64
#define EX_OSERR 71
#define EX_CONFIG 78

/* Under inetd fd 2 is the client's socket: a startup error then goes to
 * the log, and a client gets -ERR [SYS/TEMP] (RFC 3206), to come back. */
static int fatal(int status, const char *why)
{
	if (log_startup_failure("mailslot-pop3d", why))
		dprintf(1, "-ERR [SYS/TEMP] Service not available: %s\r\n",
			status == EX_OSERR ? "system error" : "configuration error");
	return status;
}

/* The session child: sandboxed for good before it reads a byte. */
static void run_session(const struct config *cfg, const struct peer *peer, int sock, struct tls_server *tls)
{
	const char *step;
	int abi;

	if (cfg->passwd_fd != -1)
		close(cfg->passwd_fd);	/* the hashes are the monitor's alone */
	tls_server_forget_key(tls);	/* and so is the TLS key: it signs for us */
	if (cfg->max_session_time > 0)
		alarm((unsigned)cfg->max_session_time);	/* SIGALRM ends the session */
	privs_shed_groups();
	if (sandbox_enter(&step, &abi) == -1) {
		log_msg(LOG_ERR, "cannot sandbox the session: %s: %s", step, strerror(errno));
		dprintf(1, "-ERR [SYS/TEMP] Service not available\r\n");
		_exit(EX_OSERR);
	}
	_exit(pop3_run(cfg, peer, tls->ctx, sock));
}

/* tls_shared: the context is the acceptor's too (forked): freeing it here
 * would only turn pages shared with the acceptor into copies. */
static int split(const struct config *cfg, const struct peer *peer, struct tls_server *tls, int tls_shared)
{
	char f_peer[PEER_ADDR_MAX + 32], shown[2 * PEER_ADDR_MAX + 3];
	const char *fields[] = { f_peer, NULL };
	int sv[2];
	pid_t pid;

	snprintf(f_peer, sizeof f_peer, "MAILSLOT_PEER=%s", peer->addr);
	log_fields(LOG_INFO, fields, "connect from %s class=%s", log_value(shown, sizeof shown, peer->addr),
		   peer->local_class ? "local" : "network");
	/* what the sandbox would forbid later: the time zone now */
	tzset();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return fatal(EX_OSERR, "cannot make the privsep socket pair");
	pid = fork();
	if (pid == -1)
		return fatal(EX_OSERR, "cannot fork the session process");
	if (pid == 0) {
		close(sv[0]);
		run_session(cfg, peer, sv[1], tls);
	}
	close(sv[1]);
	/* the context is the session's alone; the key stays here to sign
	 * with, unless it is of a kind the context had to hold: then a
	 * session that asks for a signature is not an honest one */
	if (!tls_shared) {
		tls_ctx_free(tls->ctx);
		tls->ctx = NULL;
	}
	struct tls_server *signer = cfg->tls_cert && !tls->key_in_session ? tls : NULL;
	fdpass_leave_connection();
	int rc = pm_monitor(sv[0], pid, cfg, peer, signer);
	log_fields(LOG_INFO, fields, "disconnect from %s", shown);
	return rc;
}

/* One connection on standard input and output, from the configuration
 * on; tls: the acceptor's for cfg's certificate, or nothing. */
static int serve(struct config *cfg, struct tls_server *tls)
{
	int tls_shared = tls->ctx != NULL;
	struct peer peer;
	char err[512];
	int rc;

	if (users_init(cfg, err, sizeof err) == -1)
		return fatal(EX_CONFIG, err);
	peer_identify(&peer);
	if (peer.kind == PEER_LISTENING)
		return fatal(EX_USAGE, "standard input is a listening socket: add --listen, or start one process "
				       "per connection (systemd Accept=yes, inetd 'nowait')");
	log_open("mailslot-pop3d", cfg->log, cfg->verbose);
	/* a password file readable by root only (/etc/shadow) is opened now;
	 * the monitor reads it again from the start for every login */
	if ((cfg->passwd_fd = open(cfg->passwd, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, sizeof err, "cannot read the password file %s (--passwd): %s", cfg->passwd,
			 strerror(errno));
		return fatal(EX_CONFIG, err);
	}
	if (cfg->tls_cert && !tls->ctx &&
	    tls_server_load(tls, cfg->tls_cert, cfg->tls_key, pop3_sign, err, sizeof err) == -1)
		return fatal(EX_CONFIG, err);
	if ((rc = privs_drop(cfg, err, sizeof err)) != 0)
		return fatal(rc == PRIVS_BAD_USER ? EX_CONFIG : EX_OSERR, err);
	return split(cfg, &peer, tls, tls_shared);
}

/* With TLS, the acceptor forks its sessions with the context it built
 * once (listen.h says why); each reads the configuration again. */
static struct tls_shared shared_tls;

static int serve_forked(int argc, char **argv)
{
	static struct config cfg;
	int rc = config_load(&cfg, argc, argv, PROG_POP3D, "mailslot-pop3d");

	if (rc)
		return fatal(rc == CONFIG_DONE ? EX_USAGE : rc, config_error);
	struct tls_server tls = tls_shared_take(&shared_tls, cfg.tls_cert, cfg.tls_key);
	return serve(&cfg, &tls);
}

/* --listen: the acceptor (listen.h) for systemd's Accept=no: each session
 * is this program again, exec'd with the connection, or with TLS forked. */
static int run_acceptor(const struct config *cfg, int argc, char **argv)
{
	static const struct listen_fork tls_fork = { &shared_tls, serve_forked };
	struct listen_program prog = {
		"mailslot-pop3d", "-ERR [SYS/TEMP] too many connections from your address\r\n",
		"-ERR [SYS/TEMP] Service not available\r\n", NULL, 0,
	};

	log_open("mailslot-pop3d", cfg->log, cfg->verbose);
	if (cfg->tls_cert && tls_built_in()) {
		tls_shared_init(&shared_tls, cfg->tls_cert, cfg->tls_key, pop3_sign);
		prog.fork_hooks = &tls_fork;
	}
	return listen_run(cfg, argc, argv, &prog);
}

int main(int argc, char **argv)
{
	static struct tls_server tls;
	static struct config cfg;
	int rc;

	/* a client that goes away must not kill the monitor mid-update; a
	 * session that closes its pipe early (TOP) is an EPIPE */
	signal(SIGPIPE, SIG_IGN);
	rc = config_load(&cfg, argc, argv, PROG_POP3D, "mailslot-pop3d");
	if (rc == CONFIG_DONE)
		return 0;
	if (rc)
		return fatal(rc, config_error);
	/* the plain build has no OpenSSL: mailslot-pop3d-tls does TLS */
	if (cfg.tls_cert && !tls_built_in()) {
		char err[512];
		tlsbuild_exec(argv, "mailslot-pop3d", err, sizeof err);
		return fatal(EX_CONFIG, err);
	}
	if (cfg.listen)
		return run_acceptor(&cfg, argc, argv);
	return serve(&cfg, &tls);
}
