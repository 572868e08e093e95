/* mailslot-stat: main: options, the inputs (files, standard input, journalctl), the queue, the report.
 *
 * One pass over the input, a line at a time through the bounded line
 * reader (lineio.h): memory is the tables' fixed size whatever the log's
 * (tally.h).  Exit status (sysexits): 0 the report was printed; 64 usage
 * (an unknown option, a bad date or number); 66 a log file or the --queue
 * named cannot be read; 69 journalctl cannot be run or fails; 71 out of
 * memory or a system call that cannot fail did; 74 a read error.  Every
 * failure is one line on standard error naming what failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lineio.h"
#include "logparse.h"
#include "queue.h"
#include "statreport.h"
#include "tally.h"
#include "version.h"

#define PROG "mailslot-stat"
#define LINE_MAX_LEN 16384		/* a longer line is counted malformed and skipped */
#define READ_TIMEOUT_S 86400		/* a source silent for a day ends the run */
#define DEFAULT_QUEUE "/var/spool/mailslot/queue"
#define TOP_DEFAULT 10
#define KEYS_DEFAULT 10000

/* Options with their defaults beside them; the numbers' bounds too. */
static struct {
	const char *since, *until;
	const char *queue;
	int queue_given, no_queue;
	int journal;
	const char *journal_file;
	int json;
	long long top;		/* rows per table */
	long long max_keys;	/* distinct keys per table */
} opt = { .queue = DEFAULT_QUEUE, .top = TOP_DEFAULT, .max_keys = KEYS_DEFAULT };
#define TOP_MIN 0
#define TOP_MAX 100000
#define KEYS_MIN 100
#define KEYS_MAX 10000000

enum { O_SINCE = 0x100, O_UNTIL, O_JSON, O_JOURNAL_FILE, O_NO_QUEUE, O_MAX_KEYS };

static const struct option longopts[] = {
	{ "since", required_argument, NULL, O_SINCE },
	{ "until", required_argument, NULL, O_UNTIL },
	{ "journal", no_argument, NULL, 'j' },
	{ "journal-file", required_argument, NULL, O_JOURNAL_FILE },
	{ "queue", required_argument, NULL, 'q' },
	{ "no-queue", no_argument, NULL, O_NO_QUEUE },
	{ "json", no_argument, NULL, O_JSON },
	{ "top", required_argument, NULL, 'n' },
	{ "max-keys", required_argument, NULL, O_MAX_KEYS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ 0 },
};

static void usage(void)
{
	printf("usage: " PROG " [options] [file...]\n"
	       "Summarise what the mailslot programs logged: from the files (syslog, standard error or\n"
	       "journalctl -o json lines; - is standard input), or from the journal.\n\n"
	       "      --since DATE               count records from DATE on (YYYY-MM-DD [HH:MM[:SS]], @SECONDS,\n"
	       "                                 today, yesterday, now, -N[smhd])\n"
	       "      --until DATE               count records before DATE\n"
	       "  -j, --journal                  read the journal with journalctl\n"
	       "      --journal-file FILE        read this journal file (of another machine, say)\n"
	       "  -q, --queue DIR                queue directory to report on (default " DEFAULT_QUEUE ")\n"
	       "      --no-queue                 leave the queue out\n"
	       "      --json                     the report as one JSON object\n"
	       "  -n, --top N                    rows of each table [%d]\n"
	       "      --max-keys N               distinct keys each table holds exactly [%d]\n"
	       "  -h, --help                     show this help\n"
	       "  -V, --version                  show the version\n",
	       TOP_DEFAULT, KEYS_DEFAULT);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char why[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	fprintf(stderr, PROG ": %s\n", why);
	return 64;
}

static int number(const char *name, const char *value, long long min, long long max, long long *out)
{
	char *end;

	errno = 0;
	long long n = strtoll(value, &end, 10);
	if (errno || end == value || *end || *value < '0' || *value > '9') {
		fprintf(stderr, PROG ": option --%s '%.100s': not a number\n", name, value);
		return 64;
	}
	if (n < min || n > max) {
		fprintf(stderr, PROG ": option --%s '%.100s': out of range (%lld to %lld)\n", name, value, min, max);
		return 64;
	}
	*out = n;
	return 0;
}

static int parse_options(int argc, char **argv)
{
	int o, li = -1;

	opterr = 0;
	while ((o = getopt_long(argc, argv, ":jq:n:hV", longopts, &li)) != -1) {
		int rc;
		if (li >= 0 && (rc = config_check_exact_name(argv, &longopts[li]))) {
			fprintf(stderr, PROG ": %s\n", config_error);
			return rc;
		}
		li = -1;
		switch (o) {
		case O_SINCE: opt.since = optarg; break;
		case O_UNTIL: opt.until = optarg; break;
		case 'j': opt.journal = 1; break;
		case O_JOURNAL_FILE: opt.journal_file = optarg; break;
		case 'q': opt.queue = optarg; opt.queue_given = 1; break;
		case O_NO_QUEUE: opt.no_queue = 1; break;
		case O_JSON: opt.json = 1; break;
		case 'n':
			if ((rc = number("top", optarg, TOP_MIN, TOP_MAX, &opt.top)))
				return rc;
			break;
		case O_MAX_KEYS:
			if ((rc = number("max-keys", optarg, KEYS_MIN, KEYS_MAX, &opt.max_keys)))
				return rc;
			break;
		case 'h': usage(); return CONFIG_DONE;
		case 'V': printf(PROG " %s\n", MAILSLOT_VERSION); return CONFIG_DONE;
		case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt && strncmp(argv[optind - 1], "--", 2) != 0) {
				char s[3] = { '-', (char)optopt, '\0' };
				return usage_error("unknown option '%s' (see --help)", s);
			}
			return usage_error("unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	return 0;
}

/* Every line of fd into the tally. */
static int read_lines(struct tally *t, struct logparse_clock *c, int fd, const char *name)
{
	static struct lineio io;
	static char line[LINE_MAX_LEN];
	size_t len;

	lineio_init(&io, fd, -1, 0, READ_TIMEOUT_S);
	for (;;) {
		switch (lineio_getline(&io, line, sizeof line, &len)) {
		case LINE_OK:
			tally_line(t, c, line, len);
			break;
		case LINE_TOOLONG:
			tally_malformed(t);
			break;
		case LINE_EOF:
			return 0;
		case LINE_TIMEOUT:
			fprintf(stderr, PROG ": %s: nothing read for %d seconds\n", name, READ_TIMEOUT_S);
			return 74;
		default:
			fprintf(stderr, PROG ": cannot read %s: %s\n", name, strerror(errno));
			return 74;
		}
	}
}

static int read_file(struct tally *t, struct logparse_clock *c, const char *path)
{
	if (strcmp(path, "-") == 0)
		return read_lines(t, c, 0, "standard input");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd == -1) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", path, strerror(errno));
		return 66;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr, PROG ": cannot read %s: %s\n", path, strerror(EISDIR));
		close(fd);
		return 66;
	}
	int rc = read_lines(t, c, fd, path);
	close(fd);
	return rc;
}

/* journalctl -o json for the period, only the fields the tally reads; the
 * period is filtered here again, so journalctl's own rounding of it does
 * not matter. */
static int read_journal(struct tally *t, struct logparse_clock *c)
{
	char since[32], until[32];
	const char *argv[16];
	int n = 0, p[2], ws;

	argv[n++] = "journalctl";
	argv[n++] = "--no-pager";
	argv[n++] = "-o";
	argv[n++] = "json";
	argv[n++] = "--output-fields=MESSAGE,SYSLOG_IDENTIFIER,MAILSLOT_STATUS,MAILSLOT_FROM,MAILSLOT_RCPT,"
		    "MAILSLOT_SIZE,MAILSLOT_CLASS,MAILSLOT_PEER";
	if (t->since != -1) {
		snprintf(since, sizeof since, "@%lld", t->since / 1000000);
		argv[n++] = "--since";
		argv[n++] = since;
	}
	if (t->until != -1) {
		snprintf(until, sizeof until, "@%lld", t->until / 1000000 + 1);
		argv[n++] = "--until";
		argv[n++] = until;
	}
	if (opt.journal_file) {
		argv[n++] = "--file";
		argv[n++] = opt.journal_file;
	}
	argv[n] = NULL;
	if (pipe2(p, O_CLOEXEC) == -1) {
		fprintf(stderr, PROG ": cannot make a pipe: %s\n", strerror(errno));
		return 71;
	}
	pid_t pid = fork();
	if (pid == -1) {
		fprintf(stderr, PROG ": cannot start journalctl: %s\n", strerror(errno));
		return 71;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, PROG ": cannot run journalctl: %s\n", strerror(errno));
		_exit(127);
	}
	close(p[1]);
	int rc = read_lines(t, c, p[0], "journalctl");
	close(p[0]);
	if (waitpid(pid, &ws, 0) == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		if (!(WIFEXITED(ws) && WEXITSTATUS(ws) == 127))
			fprintf(stderr, PROG ": journalctl failed (status %d)\n", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
		return 69;
	}
	return rc;
}

/* The queue as relay --list sees it: entries, recipients, bytes, age. */
static int scan_queue(struct queue_summary *q)
{
	char **ids;
	int n, err;

	if ((err = queue_dir_usable(q->dir, 0)) != 0 || queue_list_ids(q->dir, &ids, &n) == -1) {
		snprintf(q->error, sizeof q->error, "%s", strerror(err ? err : errno));
		return -1;
	}
	q->oldest = -1;
	for (int i = 0; i < n; i++) {
		struct envelope env;
		const char *why;
		char path[PATH_MAX];
		struct stat st;
		/* an entry the relay finished between the listing and now is gone: not an error */
		if (queue_read_env(q->dir, ids[i], &env, &why) == -1)
			continue;
		q->entries++;
		q->rcpts += (unsigned long long)env.nrcpt;
		for (int r = 0; r < env.nrcpt; r++)
			q->waiting += env.rcpt[r].attempts > 0;
		if (q->oldest == -1 || env.arrived < q->oldest)
			q->oldest = env.arrived;
		snprintf(path, sizeof path, "%s/msg/%s", q->dir, ids[i]);
		if (stat(path, &st) == 0)
			q->bytes += (unsigned long long)st.st_size;
		queue_env_free(&env);
	}
	queue_free_ids(ids, n);
	return 0;
}

static int period(struct tally *t, time_t now)
{
	long long since = -1, until = -1;

	if (opt.since && (since = logparse_date(opt.since, now)) == -1)
		return usage_error("--since '%.100s': not a date (YYYY-MM-DD [HH:MM[:SS]], @SECONDS, today, "
				   "yesterday, now or -N[smhd])", opt.since);
	if (opt.until && (until = logparse_date(opt.until, now)) == -1)
		return usage_error("--until '%.100s': not a date (YYYY-MM-DD [HH:MM[:SS]], @SECONDS, today, "
				   "yesterday, now or -N[smhd])", opt.until);
	if (since != -1 && until != -1 && until <= since)
		return usage_error("--until '%.100s' is not after --since '%.100s'", opt.until, opt.since);
	t->since = since;
	t->until = until;
	return 0;
}

static int read_inputs(struct tally *t, struct logparse_clock *c, int nfiles, char **files)
{
	int rc = 0;

	if (opt.journal || opt.journal_file)
		rc = read_journal(t, c);
	for (int i = 0; i < nfiles && rc == 0; i++)
		rc = read_file(t, c, files[i]);
	if (rc == 0 && nfiles == 0 && !opt.journal && !opt.journal_file) {
		if (isatty(0))
			return usage_error("no input: name log files, - for standard input, or --journal");
		rc = read_lines(t, c, 0, "standard input");
	}
	return rc;
}

int main(int argc, char **argv)
{
	static struct tally t;
	struct logparse_clock clock;
	struct queue_summary q = { .oldest = -1 };
	time_t now = time(NULL);
	int rc;

	if ((rc = parse_options(argc, argv)))
		return rc == CONFIG_DONE ? 0 : rc;
	if (tally_init(&t, (size_t)opt.max_keys, -1, -1) == -1) {
		fprintf(stderr, PROG ": out of memory for --max-keys %lld\n", opt.max_keys);
		return 71;
	}
	if ((rc = period(&t, now)))
		return rc;
	logparse_clock_init(&clock, now);
	if ((rc = read_inputs(&t, &clock, argc - optind, argv + optind)))
		return rc;
	if (!opt.no_queue) {
		q.dir = opt.queue;
		if (scan_queue(&q) == -1 && opt.queue_given) {
			fprintf(stderr, PROG ": cannot read queue %s: %s\n", q.dir, q.error);
			return 66;
		}
	}
	struct statreport r = { .t = &t, .q = &q, .top = (size_t)opt.top, .now = now };
	if (opt.json)
		statreport_json(stdout, &r);
	else
		statreport_text(stdout, &r);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, PROG ": cannot write the report: %s\n", strerror(errno));
		return 74;
	}
	tally_free(&t);
	return 0;
}
