/* sendmail: main of mailslot-sendmail (also sendmail, mailq, newaliases).
 *
 * Sendmail's command line as programs use it; the name it is run by
 * chooses the mode (mailq is -bp, newaliases -bi).  It runs as its caller
 * and holds nothing: a message (-bm) goes as a request (inject.h) to
 * mailslot-enqueue beside it, which checks it again and does the privileged
 * part; -bs, -bp and -q run mailslot-smtpd and mailslot-relay beside it.
 * Exit status: sysexits(3), the enqueue helper's own for a message, with
 * one line on standard error. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "inject.h"
#include "localmsg.h"
#include "users.h"

enum mode { MODE_MAIL, MODE_SMTP, MODE_LIST, MODE_QUEUE, MODE_ALIASES };

struct options {
	enum mode mode;
	int ignore_dots;	/* -i, -oi */
	int extract;		/* -t */
	const char *sender;	/* -f, -r */
	const char *fullname;	/* -F */
	char **rcpts;		/* the arguments after the options */
	int nrcpts;
};

static const char *progname = "mailslot-sendmail";

static int fail(int status, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", progname);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return status;
}

/* A flag's value: the rest of the argument (-fuser) or the next one (-f user). */
static const char *value(char **argv, int *i, int argc)
{
	if (argv[*i][2])
		return argv[*i] + 2;
	if (*i + 1 < argc)
		return argv[++*i];
	return NULL;
}

/* -b: the modes programs use; the daemon and test modes are not ours. */
static int mode_flag(struct options *o, const char *arg)
{
	switch (arg[2] == '\0' || arg[3] != '\0' ? '?' : arg[2]) {
	case 'm': o->mode = MODE_MAIL; return 0;
	case 's': o->mode = MODE_SMTP; return 0;
	case 'p': o->mode = MODE_LIST; return 0;
	case 'i': o->mode = MODE_ALIASES; return 0;
	default: return fail(EX_USAGE, "option %s is not supported (-bm, -bs, -bp, -bi are)", arg);
	}
}

/* One option at argv[*i] (its value may take the next argument).
 * Sendmail's options as Postfix's and Exim's sendmail take them: what
 * does not apply to us is accepted and ignored, never an error for a
 * caller such as cron (-oem, -odi, -B8BITMIME, -N, -R, -V...). */
static int one_option(struct options *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];

	switch (a[1]) {
	case 'i': o->ignore_dots = 1; return 0;
	case 't': o->extract = 1; return 0;
	case 'o':	/* -oi is -i; -oem, -odb, -odi, -oQ... do not apply */
		if (a[2] == 'i' && a[3] == '\0')
			o->ignore_dots = 1;
		return 0;
	case 'b': return mode_flag(o, a);
	case 'q': o->mode = MODE_QUEUE; return 0;
	case 'f':
	case 'r':
		if (!(o->sender = value(argv, i, argc)) || strpbrk(o->sender, "\r\n"))
			return fail(EX_USAGE, "option %s needs an address (on one line)", a);
		return 0;
	case 'F':
		if (!(o->fullname = value(argv, i, argc)) || strpbrk(o->fullname, "\r\n"))
			return fail(EX_USAGE, "option %s needs a name (on one line)", a);
		return 0;
	case 'B': case 'N': case 'R': case 'V': case 'O': case 'X': case 'h': case 'L': case 'A':
		/* body type, DSN, envelope id...: a value, ignored */
		if (!value(argv, i, argc))
			return fail(EX_USAGE, "option %s needs a value", a);
		return 0;
	case 'v': case 'm': case 'n': case 'U': case 'G': case 'e':
		return 0;
	default:
		return fail(EX_USAGE, "unknown option %s", a);
	}
}

/* Options anywhere before "--", as Postfix's sendmail (GNU getopt) takes
 * them: "sendmail alice -f bob" too.  The recipients are gathered at the
 * front of argv's tail, in their order. */
static int parse_options(struct options *o, int argc, char **argv)
{
	int n = 0, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] == '-' && argv[i][1]) {
			if (one_option(o, argc, argv, &i))
				return EX_USAGE;
		} else {
			argv[1 + n++] = argv[i];	/* never ahead of i: nothing unread is lost */
		}
	}
	while (i < argc)
		argv[1 + n++] = argv[i++];
	o->rcpts = argv + 1;
	o->nrcpts = n;
	return 0;
}

/* mailslot-relay or mailslot-smtpd, from the directory this program is in. */
static void beside(char *out, size_t outsz, const char *name)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n <= 0) {
		snprintf(out, outsz, "%s", name);
		return;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(out, outsz, "%s/%s", self, name);
}

static const char *config_path(void)
{
	const char *env = getenv("MAILSLOT_CONFIG");

	return env && *env ? env : INJECT_CONFIG;
}

/* Run a sibling program with the configuration (when there is one) and
 * the given arguments; only returns on failure. */
static int run_sibling(const char *name, const char *arg1, const char *arg2)
{
	char path[PATH_MAX];
	const char *argv[6];
	int n = 0;

	beside(path, sizeof path, name);
	argv[n++] = name;
	if (access(config_path(), F_OK) == 0) {
		argv[n++] = "--config";
		argv[n++] = config_path();
	}
	if (arg1)
		argv[n++] = arg1;
	if (arg2)
		argv[n++] = arg2;
	argv[n] = NULL;
	execv(path, (char *const *)argv);
	return fail(EX_UNAVAILABLE, "cannot run %s", path);
}

/* -bi: there is no database to build, the file is read as it is; say
 * whether it is right. */
static int check_aliases(void)
{
	struct config cfg;
	char err[512];
	const char *path = config_path();
	char *argv[] = { "mailslot-sendmail", "--config", (char *)path, NULL };
	int rc = config_load(&cfg, access(path, F_OK) == 0 ? 3 : 1, argv, PROG_SMTPD, progname);

	if (rc)
		return fail(rc == CONFIG_DONE ? EX_CONFIG : rc, "%s", config_error);
	if (!cfg.aliases_file) {
		printf("%s: no aliases file is configured (aliases in %s)\n", progname, path);
		return EX_OK;
	}
	if (users_init(&cfg, err, sizeof err) == -1)
		return fail(EX_CONFIG, "%s", err);
	printf("%s: %s: no errors (it is read as it is: there is no database to rebuild)\n", progname,
	       cfg.aliases_file);
	return EX_OK;
}

/* One request line: a letter, and text that checks made single-line. */
static void put_line(struct fileio_buf *out, const char *letter, const char *text)
{
	fileio_put(out, letter, strlen(letter));
	fileio_put(out, text, strlen(text));
	fileio_put(out, "\n", 1);
}

/* The envelope, then the message, into the helper's standard input. */
static int send_request(int fd, const struct options *o, struct localmsg *m)
{
	static char storage[65536];
	struct fileio_buf out;

	fileio_buf_init(&out, fd, storage, sizeof storage);
	if (o->sender)
		put_line(&out, "S ", *o->sender ? o->sender : "<>");
	else
		put_line(&out, "S", "");
	if (o->fullname)
		put_line(&out, "N ", o->fullname);
	for (int i = 0; i < o->nrcpts; i++) {
		char addr[ADDR_MAILBOX_MAX + 1];
		const char *p = o->rcpts[i];
		while (addr_list_next(&p, addr, sizeof addr) == 1)
			put_line(&out, "R ", addr);
	}
	for (size_t at = 0; at < m->rlen; at += strlen(m->rcpts + at) + 1)
		if (!strpbrk(m->rcpts + at, "\r\n"))
			put_line(&out, "R ", m->rcpts + at);
	fileio_put(&out, "D\n", 2);
	if (localmsg_copy(m, &out) == LOCALMSG_READ_ERROR)
		return fail(EX_IOERR, "cannot read the message: %s", strerror(m->read_errno));
	fileio_flush(&out);
	return 0;	/* a write error: the helper went away, its status says why */
}

/* The recipients of the arguments, or -1 after saying which is bad. */
static int count_args(const struct options *o)
{
	int n = 0;

	for (int i = 0; i < o->nrcpts; i++) {
		char addr[ADDR_MAILBOX_MAX + 1];
		const char *p = o->rcpts[i];
		int rc;
		while ((rc = addr_list_next(&p, addr, sizeof addr)) != 0) {
			if (rc == -1 || strpbrk(addr, "\r\n"))
				return fail(-1, "%s: not an address (too long, or broken across lines)", o->rcpts[i]);
			n++;
		}
	}
	return n;
}

static int mail(const struct options *o)
{
	static struct localmsg m;
	char helper[PATH_MAX];
	int pipefd[2], ws, rc;

	localmsg_init(&m, 0, o->ignore_dots, o->extract);
	switch (localmsg_read_header(&m)) {
	case LOCALMSG_TOOBIG:
		return fail(EX_DATAERR, "the header is over %s octets", "262144");
	case LOCALMSG_READ_ERROR:
		return fail(EX_IOERR, "cannot read the message: %s", strerror(m.read_errno));
	default:
		break;
	}
	int nargs = count_args(o);
	if (nargs == -1)
		return EX_NOUSER;
	if (nargs + m.nrcpt == 0)
		return fail(EX_USAGE, "%s", o->extract ? "no recipient in the arguments or in To:, Cc:, Bcc:" :
						       "no recipients given (or -t to take them from the header)");
	beside(helper, sizeof helper, INJECT_HELPER);
	if (pipe2(pipefd, O_CLOEXEC) == -1)
		return fail(EX_OSERR, "cannot make a pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == -1)
		return fail(EX_OSERR, "cannot fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(pipefd[0], 0);
		execl(helper, INJECT_HELPER, (char *)NULL);
		fail(EX_UNAVAILABLE, "cannot run %s", helper);
		_exit(EX_UNAVAILABLE);
	}
	close(pipefd[0]);
	rc = send_request(pipefd[1], o, &m);
	close(pipefd[1]);
	while (waitpid(pid, &ws, 0) == -1)
		if (errno != EINTR)
			return fail(EX_OSERR, "cannot wait for %s", INJECT_HELPER);
	if (rc)
		return rc;
	if (WIFSIGNALED(ws))
		return fail(EX_TEMPFAIL, "%s was killed: nothing was queued", INJECT_HELPER);
	return WEXITSTATUS(ws);
}

int main(int argc, char **argv)
{
	struct options o = { .mode = MODE_MAIL };
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int rc;

	/* a helper that stops reading must not kill us before we say why;
	 * a closed standard input must not become the pipe to it */
	signal(SIGPIPE, SIG_IGN);
	if (fileio_std_open() == -1)
		return EX_OSERR;
	progname = base;
	if (strcmp(base, "mailq") == 0)
		o.mode = MODE_LIST;
	else if (strcmp(base, "newaliases") == 0)
		o.mode = MODE_ALIASES;
	if ((rc = parse_options(&o, argc, argv)))
		return rc;
	switch (o.mode) {
	case MODE_SMTP:
		return run_sibling("mailslot-smtpd", NULL, NULL);
	case MODE_LIST:
		return run_sibling("mailslot-relay", "--list", NULL);
	case MODE_QUEUE:
		return run_sibling("mailslot-relay", "--flush", NULL);
	case MODE_ALIASES:
		return check_aliases();
	default:
		return mail(&o);
	}
}
