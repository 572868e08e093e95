/* enqueue: main of mailslot-enqueue, the privileged step of local injection.
 *
 * Installed set-user-ID root and run by mailslot-sendmail (inject.h has the
 * request).  It does what an SMTP session's monitor does for a client on
 * the loopback, and nothing else: before reading a byte it makes the
 * descriptors 0-2 safe, clears the caller's environment, resource limits,
 * signal mask and umask, reads the one fixed configuration file, and
 * becomes the --user account keeping only what delivery needs (privs.h).
 * The caller is known by its real uid alone: it names the account in the
 * Received: field and the default sender, and a sender chosen by anyone
 * but root or the --user account is marked with X-Authentication-Warning:
 * as sendmail does.  Exit status: sysexits(3), through status_exit. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "inject.h"
#include "lineio.h"
#include "log.h"
#include "peer.h"
#include "privs.h"
#include "queue.h"
#include "txn.h"
#include "users.h"

#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_NOUSER 67
#define EX_OSERR 71
#define EX_CONFIG 78

struct caller {
	uid_t uid;
	int privileged;		/* set-user-ID or set-group-ID: more than the caller */
	int trusted;		/* root or the --user account: may choose the sender */
	char user[USER_NAME_MAX + 1];
	char fullname[INJECT_NAME_MAX + 1];
};

static int fail(int status, const char *fmt, const char *arg)
{
	fputs("mailslot-sendmail: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return status;
}

/* Nothing the caller set may reach us: variables (TZ too: dates are in
 * the system's zone), a file size limit that would cut a mailbox append,
 * a blocked or ignored signal, a umask. */
static void clean_process(void)
{
	static char *const keep[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	static const int lifted[] = { RLIMIT_FSIZE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_AS };
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY }, nocore = { 0, 0 };
	sigset_t none;

	clearenv();
	for (int i = 0; keep[i]; i++)
		putenv(keep[i]);
	/* raising a hard limit needs root: a caller's limits stay for root's own run */
	for (size_t i = 0; i < sizeof lifted / sizeof lifted[0]; i++)
		setrlimit(lifted[i], &unlimited);
	setrlimit(RLIMIT_CORE, &nocore);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	if (chdir("/") == -1)
		return;		/* nothing here is relative to it */
}

/* The fixed file, or none when it does not exist (the defaults). */
static int load_config(struct config *cfg, char *path)
{
	char *argv[] = { INJECT_HELPER, "--config", path, NULL };
	int argc = access(path, F_OK) == 0 || errno != ENOENT ? 3 : 1;
	int rc = config_load(cfg, argc, argv, PROG_SMTPD, INJECT_HELPER);
	if (rc)
		return fail(rc == CONFIG_DONE ? EX_CONFIG : rc, "configuration: %s", config_error);
	return 0;
}

/* The caller's account: its name and the first field of its GECOS. */
static int identify(struct caller *c, const struct config *cfg)
{
	const struct passwd *pw = users_getpwuid(c->uid);

	if (!pw)
		return -1;
	snprintf(c->user, sizeof c->user, "%s", pw->pw_name);
	log_printable(c->fullname, sizeof c->fullname, pw->pw_gecos, strcspn(pw->pw_gecos, ","));
	pw = users_getpw(cfg->run_user);
	c->trusted = c->uid == 0 || (pw && pw->pw_uid == c->uid);
	return 0;
}

/* RFC 5322 3.2.5: a display name that is not all atoms is quoted. */
static void from_field(char *out, size_t outsz, const char *name, const char *mailbox)
{
	char q[2 * INJECT_NAME_MAX + 3];
	size_t n = 0;
	int plain = 1;

	for (const char *p = name; *p; p++)
		if (!strchr(" !#$%&'*+-/=?^_`{|}~", *p) && !(*p >= '0' && *p <= '9') &&
		    !((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
			plain = 0;
	q[n++] = '"';
	for (const char *p = name; *p && n < sizeof q - 3; p++) {
		if (*p == '"' || *p == '\\')
			q[n++] = '\\';
		q[n++] = *p;
	}
	q[n++] = '"';
	q[n] = '\0';
	if (!*name)
		snprintf(out, outsz, "%s", mailbox);
	else
		snprintf(out, outsz, "%s <%s>", plain ? name : q, mailbox);
}

static int reply_exit(const struct status *st)
{
	if (st->kind == STATUS_OK)
		return 0;
	fprintf(stderr, "mailslot-sendmail: %d %s %s\n", st->code, st->enhanced, st->text);
	return status_exit(st);
}

/* Read one request line; 0, or an exit status after saying why. */
static int request_line(struct lineio *io, char *line, size_t linesz)
{
	size_t len;

	switch (lineio_getline(io, line, linesz, &len)) {
	case LINE_OK:
		if (strlen(line) != len)
			return fail(EX_DATAERR, "%s", "request: a NUL octet");
		return 0;
	case LINE_TOOLONG:
		return fail(EX_DATAERR, "%s", "request: a line too long (an address over 254 octets?)");
	case LINE_TIMEOUT:
		return fail(EX_DATAERR, "%s", "request: no input for an hour");
	default:
		return fail(EX_DATAERR, "%s", "request: input ended before the message did; nothing was queued");
	}
}

/* The message after D: spooled with the session's DATA reader; the
 * warning goes below our Received: field. */
static int read_message(struct txn *t, struct lineio *io, const char *warning, struct status *st)
{
	struct data_result dr;
	int fd = txn_data(t, st);

	if (fd == -1)
		return reply_exit(st);
	if (warning[0] && fileio_write(fd, warning, strlen(warning), NULL) == -1) {
		status_from_errno(st, errno);
		return reply_exit(st);
	}
	lineio_read_data(io, fd, (unsigned long long)t->cfg->max_size, &dr);
	if (dr.status != LINE_OK)
		return fail(EX_DATAERR, "%s", "request: input ended before the message did; nothing was queued");
	if (dr.write_errno)
		status_from_errno(st, dr.write_errno);
	else if (dr.too_big)
		status_set(st, 552, "5.3.4", 0, "Message size exceeds fixed limit (max-size)");
	else if (dr.long_line)
		status_set(st, 554, "5.5.2", 0, "Message has lines longer than %d characters", DATA_LINE_MAX);
	else if ((long long)dr.received_headers > t->cfg->max_received)
		status_set(st, 554, "5.4.6", 0, "Too many Received: headers: mail loop");
	else
		txn_commit(t, dr.size, st);
	return reply_exit(st);
}

/* The S line: the envelope sender (own: the caller's address), and the
 * warning a sender chosen by an untrusted caller gets -- as sendmail,
 * only when it is another account's.  0, or an exit status. */
static int envelope_sender(const struct txn *t, const struct caller *c, const char *line, char *sender,
			   char *own, char *warning, size_t warnsz)
{
	const char *domain = t->cfg->domains[0];

	if (line[0] != 'S' || (line[1] && line[1] != ' '))
		return fail(EX_DATAERR, "%s", "request: expected the sender first");
	snprintf(own, ADDR_MAILBOX_MAX + 1, "%s@%s", c->user, domain);
	if (!line[1] || !line[2])
		snprintf(sender, ADDR_MAILBOX_MAX + 1, "%s", own);
	else
		snprintf(sender, ADDR_MAILBOX_MAX + 1, "%s", strcmp(line + 2, "<>") == 0 ? "" : line + 2);
	/* -f user: at the primary domain, as a recipient would be */
	if (sender[0] && !strchr(sender, '@') && strlen(sender) + strlen(domain) < ADDR_MAILBOX_MAX)
		snprintf(sender + strlen(sender), ADDR_MAILBOX_MAX + 1 - strlen(sender), "@%s", domain);
	if (!c->trusted && strcasecmp(sender, own) != 0)
		snprintf(warning, warnsz, "X-Authentication-Warning: %s: %s set sender to %s using -f\n",
			 t->cfg->hostname, c->user, sender[0] ? sender : "<>");
	return 0;
}

/* S, then N, then R lines, then D and the message. */
static int serve(struct txn *t, struct lineio *io, const struct caller *c)
{
	char line[INJECT_LINE_MAX + 3], sender[ADDR_MAILBOX_MAX + 1], own[ADDR_MAILBOX_MAX + 1];
	char name[INJECT_NAME_MAX + 1], from[TXN_FROM_MAX + 1], warning[ADDR_MAILBOX_MAX + 200] = "";
	struct status st;
	int rc;

	if ((rc = request_line(io, line, sizeof line)) ||
	    (rc = envelope_sender(t, c, line, sender, own, warning, sizeof warning)) ||
	    (rc = request_line(io, line, sizeof line)))
		return rc;
	snprintf(name, sizeof name, "%s", c->fullname);
	if (line[0] == 'N' && line[1] == ' ') {
		log_printable(name, sizeof name, line + 2, strlen(line + 2));
		if ((rc = request_line(io, line, sizeof line)))
			return rc;
	}
	from_field(from, sizeof from, name, sender[0] ? sender : own);
	txn_local(t, c->uid, c->user, from);
	txn_mail(t, sender, &st);
	if (st.kind != STATUS_OK)
		return reply_exit(&st);
	while (line[0] == 'R' && line[1] == ' ') {
		txn_rcpt(t, line + 2, &st);
		if (st.kind != STATUS_OK)
			return reply_exit(&st);
		if ((rc = request_line(io, line, sizeof line)))
			return rc;
	}
	if (strcmp(line, "D") != 0)
		return fail(EX_DATAERR, "%s", "request: expected a recipient or the message");
	return read_message(t, io, warning, &st);
}

/* Every message is spooled in the queue, local ones too: one this
 * account cannot write is said now, with the likely reason. */
static int queue_check(const struct config *cfg, const struct caller *c)
{
	char err[PATH_MAX + 200];
	int qerr = queue_dir_usable(cfg->queue, 1);

	if (!qerr)
		return 0;
	snprintf(err, sizeof err, "queue directory %s: %s%s", cfg->queue,
		 qerr == ENOTDIR ? "not a directory" : strerror(qerr),
		 !c->privileged && getuid() != 0 ? " (mailslot-enqueue is not set-user-ID root: make install as root)"
						  : "");
	return fail(EX_CONFIG, "%s", err);
}

int main(int argc, char **argv)
{
	static struct txn t;
	struct caller c = { .uid = getuid() };
	struct config cfg;
	struct peer peer = { .kind = PEER_TERMINAL, .local_class = 1, .addr = "local", .local_addr = "local" };
	struct lineio io;
	char err[512];
	int rc;

	c.privileged = geteuid() != getuid() || getegid() != getgid();
	if (fileio_std_open() == -1)
		return EX_OSERR;
	(void)argv;
	if (argc != 1)
		return fail(EX_USAGE, "%s", "mailslot-enqueue takes no arguments: it is run by mailslot-sendmail");
	/* a caller with no more privilege than ours may name its own file */
	const char *env = c.privileged ? NULL : getenv("MAILSLOT_CONFIG");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s", env ? env : INJECT_CONFIG);
	clean_process();
	if ((rc = load_config(&cfg, path)))
		return rc;
	if (users_init(&cfg, err, sizeof err) == -1)
		return fail(EX_CONFIG, "%s", err);
	if (identify(&c, &cfg) == -1) {
		snprintf(err, sizeof err, "%u", (unsigned)c.uid);
		return fail(EX_NOUSER, "uid %s has no account in /etc/passwd", err);
	}
	/* standard error is the caller's: the log goes to the system's
	 * unless the configuration names stderr */
	log_open(INJECT_HELPER, cfg.log != LOG_DEST_AUTO ? cfg.log :
		 access("/run/systemd/journal/socket", F_OK) == 0 ? LOG_DEST_JOURNAL : LOG_DEST_SYSLOG,
		 cfg.verbose);
	tzset();
	if ((rc = privs_drop(&cfg, err, sizeof err)) != 0)
		return fail(rc == PRIVS_BAD_USER ? EX_CONFIG : EX_OSERR, "%s", err);
	if ((rc = queue_check(&cfg, &c)))
		return rc;
	lineio_init(&io, 0, 1, 0, INJECT_TIMEOUT);
	txn_init(&t, &cfg, &peer);
	rc = serve(&t, &io, &c);
	txn_close(&t);
	return rc;
}
