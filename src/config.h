/* config: the settings of mailslot-smtpd and mailslot-relay, from the
 * command line and a config file.
 *
 * One table (config.c) names every setting once: its long option (taken by
 * its whole name only, never a prefix), its short letter if it has one, the
 * programs whose command line takes it, its kind, and for numbers the
 * default, minimum and maximum beside the name.  The config file may hold
 * the settings of both programs; the command line wins over it whatever
 * their order.  config_load() prints only --help and --version (on stdout);
 * on failure it leaves a one-line reason in config_error, without the
 * program name, for the caller to report, and returns the sysexits status
 * to exit with (64 usage, 78 configuration).
 */
#ifndef MAILSLOT_CONFIG_H
#define MAILSLOT_CONFIG_H

#include <stdio.h>

#include "log.h"

#define CONFIG_MAX_DOMAINS 32
#define CONFIG_DONE (-1)	/* --help or --version printed: exit 0 */

enum mail_format { FORMAT_MBOX, FORMAT_MAILDIR, FORMAT_MH, FORMAT_NUMBERED };
enum relay_mode { RELAY_AUTO, RELAY_YES, RELAY_NO };

struct config {
	const char *spool;
	const char *queue;
	const char *users_file;
	const char *aliases_file;
	const char *hostname;
	const char *handoff;
	const char *run_user;
	enum mail_format format;
	enum relay_mode relay;
	enum log_dest log;
	const char *domains[CONFIG_MAX_DOMAINS];
	int ndomains;
	long long max_size;
	long long max_recipients;
	long long timeout;
	long long max_errors;
	long long soft_errors;		/* errors before every reply waits error_delay */
	long long error_delay;		/* milliseconds */
	long long junk_limit;		/* NOOP, RSET, VRFY... before each is an error */
	long long rcpt_overshoot;	/* RCPTs past max_recipients before they are errors */
	long long max_received;		/* Received: fields above this: a mail loop */
	long long lock_timeout;
	long long stale_lock_time;	/* a foreign dotlock older than this is stale */
	int verbose;
	long long max_session_time;	/* seconds a session may last (0: no limit) */
	const char *passwd;		/* name:HASH lines for AUTH, or NULL: no AUTH */
	int passwd_fd;			/* it, opened before privileges go; -1: none */
	int submission;			/* RFC 6409: AUTH first, own senders only */
	const char *tls_cert;		/* PEM chain and key: STARTTLS offered */
	const char *tls_key;
	int smtps;			/* implicit TLS from the first octet (RFC 8314) */
	int pop3s;			/* mailslot-pop3d: the same, port 995 */
	/* mailslot-smtpd --listen */
	int listen;
	long long max_connections;
	long long max_per_source;
	long long listen_idle;		/* seconds without a connection before exiting */
	int config_broken;		/* --listen: the config file failed; sessions report it */
	const char *config_file;	/* --config, or NULL */
	/* mailslot-relay */
	const char *smarthost;
	const char *dns_server;
	const char *smarthost_tls;	/* auto, starttls, smtps, may, none: remote.c checks it */
	const char *smarthost_ca;	/* PEM trust anchors instead of the system's */
	const char *smarthost_auth;	/* file with "user:password" */
	long long port;
	long long connect_timeout;
	long long min_backoff;
	long long max_backoff;
	long long max_lifetime;
	int list;
	int flush;
	const char *delete_id;
	const char *bounce_id;
	char **args;		/* queue ids after the options */
	int nargs;
};

#define CONFIG_ERROR_MAX 320
/* The one-line reason when config_load() fails, without the program name. */
extern char config_error[CONFIG_ERROR_MAX];

#define PROG_SMTPD 1u
#define PROG_RELAY 2u
#define PROG_POP3D 4u	/* mailslot-pop3d: the settings config.c's pop3d_takes lists */

/* Settings for program (PROG_SMTPD or PROG_RELAY) named progname.  The
 * config file may hold the settings of both programs. */
int config_load(struct config *cfg, int argc, char **argv, unsigned program, const char *progname);
const char *config_format_name(enum mail_format f);
/* s without leading blanks (space, tab) and trailing white space, cut in
 * place: one rule for the lines of the config, users and aliases files. */
char *config_trim(char *s);
/* A file opened for reading is a regular file (not a directory or a FIFO). */
int file_is_regular(FILE *f);
/* After getopt_long returned the long option lo: 0 when argv named it in
 * full, else 64 with the reason in config_error (no prefixes: see config.c). */
struct option;
int config_check_exact_name(char **argv, const struct option *lo);

#endif
