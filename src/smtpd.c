/* smtpd: main of mailslot-smtpd.  Options, logging, peer identity, privileges,
 * then one SMTP session on stdin/stdout; the exit status follows sysexits(3):
 * 0 the session ran (whatever the client did), 64 bad usage, 78 bad
 * configuration, 71 an operating-system failure before the session. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "peer.h"
#include "privs.h"
#include "session.h"
#include "users.h"

#define EX_USAGE 64
#define EX_OSERR 71
#define EX_CONFIG 78

/* Under inetd fd 2 is the client's socket: a startup error then goes to the
 * log, and the client gets a 421 instead of a stray line of text. */
static int fatal(int status, const char *why, const char *hostname)
{
	struct stat st;

	if (fstat(2, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "mailslot-smtpd: %s\n", why);
		return status;
	}
	log_open("mailslot-smtpd", LOG_DEST_SYSLOG, 0);
	log_msg(LOG_ERR, "fatal: %s", why);
	if (fstat(1, &st) == 0 && S_ISSOCK(st.st_mode))
		dprintf(1, "421 4.3.5 %s Service not available: configuration error\r\n",
			hostname ? hostname : "mailslot");
	return status;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct peer peer;
	char err[512];
	int rc;

	/* a client that goes away must not kill us in the middle of a delivery */
	signal(SIGPIPE, SIG_IGN);
	rc = config_load(&cfg, argc, argv, PROG_SMTPD, "mailslot-smtpd");
	if (rc == CONFIG_DONE)
		return 0;
	if (rc)
		return fatal(rc, config_error, NULL);
	if (users_init(&cfg, err, sizeof err) == -1)
		return fatal(EX_CONFIG, err, cfg.hostname);
	peer_identify(&peer);
	if (peer.kind == PEER_LISTENING)
		return fatal(EX_USAGE, "standard input is a listening socket; start one process per "
				       "connection (systemd Accept=yes, inetd 'nowait')", cfg.hostname);
	log_open("mailslot-smtpd", cfg.log, cfg.verbose);
	if ((rc = privs_drop(&cfg, err, sizeof err)) != 0)
		return fatal(rc == PRIVS_BAD_USER ? EX_CONFIG : EX_OSERR, err, cfg.hostname);
	return session_run(&cfg, &peer);
}
