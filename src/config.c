/* config: one table of settings; getopt_long, the config file and --help all read it. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "version.h"

enum kind { K_STRING, K_DOMAIN, K_NUMBER, K_SIZE, K_FORMAT, K_RELAY, K_LOG, K_FLAG, K_CONFIG, K_HELP, K_VERSION };

struct setting {
	const char *name;
	unsigned programs;	/* PROG_SMTPD | PROG_RELAY: whose command line takes it */
	int short_opt;
	enum kind kind;
	size_t offset;		/* into struct config */
	long long def, min, max;	/* numbers only */
	const char *arg;	/* name of the argument in --help */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)
#define SMTPD PROG_SMTPD
#define RELAY PROG_RELAY
#define BOTH (PROG_SMTPD | PROG_RELAY)
#define ONLY_CMDLINE 0x100u	/* an action, not a setting: not in the config file */
#define KIB 1024LL
#define MIB (1024LL * 1024)

static const struct setting settings[] = {
	{ "config", BOTH, 'c', K_CONFIG, 0, 0, 0, 0, "FILE", "read settings from FILE (same names as the long options)" },
	{ "spool", BOTH, 's', K_STRING, OFF(spool), 0, 0, 0, "DIR", "mail spool directory (default /var/spool/mail)" },
	{ "format", BOTH, 'f', K_FORMAT, OFF(format), 0, 0, 0, "FMT", "mailbox format: mbox (default), maildir, mh or numbered" },
	{ "domain", BOTH, 'd', K_DOMAIN, 0, 0, 0, 0, "DOMAIN", "local domain, repeatable; the first is primary (default: host name)" },
	{ "users", BOTH, 'u', K_STRING, OFF(users_file), 0, 0, 0, "FILE", "local users, one a line (default: system accounts)" },
	{ "aliases", BOTH, 'a', K_STRING, OFF(aliases_file), 0, 0, 0, "FILE", "aliases file (name: target, target...)" },
	{ "queue", BOTH, 'q', K_STRING, OFF(queue), 0, 0, 0, "DIR", "queue directory (default /var/spool/mailslot/queue)" },
	{ "hostname", BOTH, 'H', K_STRING, OFF(hostname), 0, 0, 0, "NAME", "name in the greeting and Received: (default: host name)" },
	{ "relay", SMTPD, 'r', K_RELAY, OFF(relay), 0, 0, 0, "MODE", "auto (loopback listener may relay), yes or no" },
	{ "max-size", BOTH, 'm', K_SIZE, OFF(max_size), 25 * MIB, 1 * KIB, 1024LL * 1024 * MIB, "BYTES", "largest message accepted (suffix k, m, g)" },
	{ "max-recipients", SMTPD, 'R', K_NUMBER, OFF(max_recipients), 100, 1, 10000, "N", "recipients per message" },
	{ "timeout", BOTH, 't', K_NUMBER, OFF(timeout), 300, 1, 3600, "SECONDS", "idle timeout for each command or text line (relay: every reply)" },
	{ "max-errors", SMTPD, 'e', K_NUMBER, OFF(max_errors), 10, 1, 1000, "N", "error replies before 421 and disconnect" },
	/* Postfix's smtpd_soft_error_limit and smtpd_error_sleep_time (1s);
	 * the soft limit is half of --max-errors, as Postfix's 10 is of 20 */
	{ "soft-errors", SMTPD, 0, K_NUMBER, OFF(soft_errors), 5, 1, 1000, "N", "errors after which every reply waits --error-delay" },
	{ "error-delay", SMTPD, 0, K_NUMBER, OFF(error_delay), 1000, 0, 60000, "MS", "milliseconds each reply waits past --soft-errors" },
	/* Postfix's smtpd_junk_command_limit */
	{ "junk-commands", SMTPD, 0, K_NUMBER, OFF(junk_limit), 100, 0, 10000, "N", "NOOP, RSET, VRFY, HELP, HELO, EHLO before each counts as an error" },
	/* Postfix's smtpd_recipient_overshoot_limit */
	{ "recipient-overshoot", SMTPD, 0, K_NUMBER, OFF(rcpt_overshoot), 1000, 0, 100000, "N", "RCPTs past --max-recipients before each counts as an error" },
	/* Postfix's hopcount_limit is 50; ours counts the sender's fields only */
	{ "max-received", SMTPD, 0, K_NUMBER, OFF(max_received), 100, 1, 1000, "N", "Received: fields a message may have (more: a mail loop)" },
	{ "lock-timeout", BOTH, 'l', K_NUMBER, OFF(lock_timeout), 30, 1, 3600, "SECONDS", "how long to wait for a mailbox lock" },
	/* Postfix's stale_lock_time */
	{ "stale-lock-time", BOTH, 0, K_NUMBER, OFF(stale_lock_time), 500, 1, 86400, "SECONDS", "age at which another program's dot-lock is stale" },
	/* what RuntimeMaxSec= was for one instance: a client that trickles a
	 * line per --timeout cannot hold a session for ever */
	{ "max-session-time", SMTPD, 0, K_NUMBER, OFF(max_session_time), 3600, 0, 604800, "SECONDS", "longest a session may last (0: no limit)" },
	{ "listen", SMTPD | ONLY_CMDLINE, 0, K_FLAG, OFF(listen), 0, 0, 0, NULL, "accept on the listening socket(s) passed in (systemd Accept=no), a session process each" },
	{ "max-connections", SMTPD, 0, K_NUMBER, OFF(max_connections), 1000, 1, 100000, "N", "--listen: sessions at once; more wait in the backlog" },
	{ "max-connections-per-source", SMTPD, 0, K_NUMBER, OFF(max_per_source), 50, 1, 100000, "N", "--listen: sessions at once from one address; more are turned away" },
	{ "listen-idle", SMTPD, 0, K_NUMBER, OFF(listen_idle), 60, 0, 86400, "SECONDS", "--listen: exit after this long with no session (0: never)" },
	{ "passwd", SMTPD, 0, K_STRING, OFF(passwd), 0, 0, 0, "FILE", "offer AUTH; passwords from FILE (name:HASH lines, /etc/shadow too)" },
	{ "tls-cert", SMTPD, 0, K_STRING, OFF(tls_cert), 0, 0, 0, "FILE", "PEM certificate (and chain): offer STARTTLS; needs --tls-key" },
	{ "tls-key", SMTPD, 0, K_STRING, OFF(tls_key), 0, 0, 0, "FILE", "PEM private key of --tls-cert (read before privileges are dropped)" },
	{ "smtps", SMTPD, 0, K_FLAG, OFF(smtps), 0, 0, 0, NULL, "implicit TLS from the first octet (port 465, RFC 8314)" },
	{ "pop3s", PROG_POP3D, 0, K_FLAG, OFF(pop3s), 0, 0, 0, NULL, "mailslot-pop3d: implicit TLS from the first octet (port 995, RFC 8314)" },
	{ "submission", SMTPD, 0, K_FLAG, OFF(submission), 0, 0, 0, NULL, "RFC 6409: AUTH before MAIL, the sender must be the user's" },
	{ "handoff", SMTPD, 'x', K_STRING, OFF(handoff), 0, 0, 0, "COMMAND", "run (sh -c) after a queue entry is written" },
	{ "user", BOTH, 'U', K_STRING, OFF(run_user), 0, 0, 0, "NAME", "account to run as when started as root (default mail)" },
	{ "log", BOTH, 'L', K_LOG, OFF(log), 0, 0, 0, "DEST", "auto, journal, syslog or stderr" },
	{ "verbose", BOTH, 'v', K_FLAG, OFF(verbose), 0, 0, 0, NULL, "log every command and reply" },
	{ "smarthost", RELAY, 'S', K_STRING, OFF(smarthost), 0, 0, 0, "HOST[:PORT]", "send all remote mail through this host instead of MX lookup" },
	{ "dns-server", RELAY, 'D', K_STRING, OFF(dns_server), 0, 0, 0, "ADDR[:PORT]", "DNS server to ask (default: resolv.conf)" },
	/* checked by remote.c (remote_setup): auto is starttls on port 587,
	 * smtps on 465, may elsewhere */
	{ "smarthost-tls", RELAY, 0, K_STRING, OFF(smarthost_tls), 0, 0, 0, "MODE", "TLS to the smarthost: auto (default), starttls, smtps, may or none" },
	{ "smarthost-ca", RELAY, 0, K_STRING, OFF(smarthost_ca), 0, 0, 0, "FILE", "CA certificates (PEM) the smarthost's must chain to (default: the system's)" },
	{ "smarthost-auth", RELAY, 0, K_STRING, OFF(smarthost_auth), 0, 0, 0, "FILE", "AUTH at the smarthost as the \"user:password\" line of FILE (mode 0600)" },
	{ "port", RELAY, 'p', K_NUMBER, OFF(port), 25, 1, 65535, "PORT", "TCP port of remote mail servers" },
	{ "connect-timeout", RELAY, 'C', K_NUMBER, OFF(connect_timeout), 30, 1, 3600, "SECONDS", "how long to wait for a connection" },
	{ "min-backoff", RELAY, 'b', K_NUMBER, OFF(min_backoff), 300, 1, 86400, "SECONDS", "delay before the first retry; doubles after each" },
	{ "max-backoff", RELAY, 'B', K_NUMBER, OFF(max_backoff), 4000, 1, 604800, "SECONDS", "longest delay between retries" },
	{ "max-lifetime", RELAY, 'T', K_NUMBER, OFF(max_lifetime), 432000, 0, 31536000, "SECONDS", "bounce what is still queued after this long (5 days)" },
	{ "list", RELAY | ONLY_CMDLINE, 'Q', K_FLAG, OFF(list), 0, 0, 0, NULL, "list the queue and exit" },
	{ "flush", RELAY | ONLY_CMDLINE, 'F', K_FLAG, OFF(flush), 0, 0, 0, NULL, "retry every entry now, whatever its next attempt" },
	{ "delete", RELAY | ONLY_CMDLINE, 'X', K_STRING, OFF(delete_id), 0, 0, 0, "ID", "remove a queue entry without a bounce" },
	{ "bounce", RELAY | ONLY_CMDLINE, 'G', K_STRING, OFF(bounce_id), 0, 0, 0, "ID", "give up on an entry now and bounce it to its sender" },
	{ "help", BOTH, 'h', K_HELP, 0, 0, 0, 0, NULL, "show this help" },
	{ "version", BOTH, 'V', K_VERSION, 0, 0, 0, 0, NULL, "show the version" },
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

/* --- mailslot-pop3d ---------------------------------------------------------
 * The settings of the table mailslot-pop3d's command line takes besides
 * its own (pop3s): the same names and meanings as mailslot-smtpd's. */
static const char *const pop3d_settings[] = {
	"config", "spool", "format", "users", "hostname", "timeout", "error-delay", "lock-timeout",
	"stale-lock-time", "max-session-time", "passwd", "tls-cert", "tls-key", "user", "log", "verbose",
	"listen", "max-connections", "max-connections-per-source", "listen-idle", "help", "version",
};

static int takes(const struct setting *s, unsigned program)
{
	if (s->programs & program)
		return 1;
	for (size_t i = 0; program == PROG_POP3D && i < sizeof pop3d_settings / sizeof *pop3d_settings; i++)
		if (strcmp(s->name, pop3d_settings[i]) == 0)
			return 1;
	return 0;
}

/* Defaults of mailslot-pop3d's own: RFC 1939 3 wants the autologout
 * timer at least 10 minutes. */
static const struct {
	const char *name;
	size_t offset;
	long long def;
} pop3d_defaults[] = {
	{ "timeout", OFF(timeout), 600 },
};

static long long default_of(const struct setting *s, unsigned program)
{
	for (size_t i = 0; program == PROG_POP3D && i < sizeof pop3d_defaults / sizeof *pop3d_defaults; i++)
		if (strcmp(s->name, pop3d_defaults[i].name) == 0)
			return pop3d_defaults[i].def;
	return s->def;
}

static void program_defaults(struct config *cfg, unsigned program)
{
	for (size_t i = 0; program == PROG_POP3D && i < sizeof pop3d_defaults / sizeof *pop3d_defaults; i++)
		*(long long *)((char *)cfg + pop3d_defaults[i].offset) = pop3d_defaults[i].def;
}
/* --- end of mailslot-pop3d -------------------------------------------------- */

/* Where a value came from, for messages: "option --x" or "FILE:LINE". */
struct origin {
	const char *file;
	int line;
	int cmdline_domains_seen;
};

char config_error[CONFIG_ERROR_MAX];

static int fail(const struct origin *o, const struct setting *s, const char *value, const char *why)
{
	if (o->file)
		snprintf(config_error, sizeof config_error, "%s:%d: %s '%.100s': %s", o->file, o->line, s->name, value, why);
	else
		snprintf(config_error, sizeof config_error, "option --%s '%.100s': %s", s->name, value, why);
	return o->file ? 78 : 64;
}

#define error(...) snprintf(config_error, sizeof config_error, __VA_ARGS__)

static int parse_number(const char *value, int with_suffix, long long *out)
{
	char *end;
	long long n;

	errno = 0;
	if (*value < '0' || *value > '9')
		return -1;
	n = strtoll(value, &end, 10);
	if (errno || end == value)
		return -1;
	if (with_suffix && *end) {
		long long mult;
		switch (*end) {
		case 'k': case 'K': mult = KIB; break;
		case 'm': case 'M': mult = MIB; break;
		case 'g': case 'G': mult = 1024 * MIB; break;
		default: return -1;
		}
		if (n > LLONG_MAX / mult)
			return -1;
		n *= mult;
		end++;
	}
	if (*end)
		return -1;
	*out = n;
	return 0;
}

static const char *const format_names[] = { "mbox", "maildir", "mh", "numbered" };
static const char *const relay_names[] = { "auto", "yes", "no" };
static const char *const log_names[] = { "auto", "journal", "syslog", "stderr" };

static int parse_choice(const char *value, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(value, names[i]) == 0)
			return i;
	return -1;
}

const char *config_format_name(enum mail_format f)
{
	return format_names[f];
}

/* A domain name as an administrator types it: labels of letters, digits and
 * hyphens.  Checked so that a typo shows at start, not as lost mail. */
static int domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 255)
		return 0;
	for (const char *p = d; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || *p == '-') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

static int apply(struct config *cfg, const struct setting *s, const char *value, struct origin *o)
{
	char *base = (char *)cfg;
	long long n;
	int choice;

	switch (s->kind) {
	case K_STRING:
		if (!*value)
			return fail(o, s, value, "must not be empty");
		if (strlen(value) > PATH_MAX)
			return fail(o, s, value, "too long");
		*(const char **)(base + s->offset) = o->file ? strdup(value) : value;
		return 0;
	case K_DOMAIN:
		if (!domain_ok(value))
			return fail(o, s, value, "not a domain name");
		/* command-line domains replace those of the config file */
		if (!o->file && !o->cmdline_domains_seen) {
			cfg->ndomains = 0;
			o->cmdline_domains_seen = 1;
		}
		if (cfg->ndomains >= CONFIG_MAX_DOMAINS)
			return fail(o, s, value, "too many domains");
		cfg->domains[cfg->ndomains++] = o->file ? strdup(value) : value;
		return 0;
	case K_NUMBER:
	case K_SIZE:
		if (parse_number(value, s->kind == K_SIZE, &n) == -1)
			return fail(o, s, value, "not a number");
		if (n < s->min || n > s->max) {
			char why[96];
			snprintf(why, sizeof why, "out of range (%lld to %lld)", s->min, s->max);
			return fail(o, s, value, why);
		}
		*(long long *)(base + s->offset) = n;
		return 0;
	case K_FORMAT:
		if ((choice = parse_choice(value, format_names, 4)) == -1)
			return fail(o, s, value, "expected mbox, maildir, mh or numbered");
		cfg->format = (enum mail_format)choice;
		return 0;
	case K_RELAY:
		if ((choice = parse_choice(value, relay_names, 3)) == -1)
			return fail(o, s, value, "expected auto, yes or no");
		cfg->relay = (enum relay_mode)choice;
		return 0;
	case K_LOG:
		if ((choice = parse_choice(value, log_names, 4)) == -1)
			return fail(o, s, value, "expected auto, journal, syslog or stderr");
		cfg->log = (enum log_dest)choice;
		return 0;
	case K_FLAG:
		if (o->file) {
			if ((choice = parse_choice(value, (const char *const[]){ "no", "yes" }, 2)) == -1)
				return fail(o, s, value, "expected yes or no");
			*(int *)(base + s->offset) = choice;
		} else {
			*(int *)(base + s->offset) = 1;
		}
		return 0;
	default:
		return fail(o, s, value, "not allowed here");
	}
}

static const struct setting *find_setting(const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

char *config_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int file_is_regular(FILE *f)
{
	struct stat st;

	return fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
}

/* "name = value" or "name value"; '#' starts a comment line. */
static int load_file(struct config *cfg, const char *path)
{
	char line[1024];
	struct origin o = { .file = path };
	FILE *f = fopen(path, "re");

	if (!f) {
		error("cannot open config file %s: %s", path, strerror(errno));
		return 78;
	}
	if (!file_is_regular(f)) {
		error("config file %s is not a regular file", path);
		fclose(f);
		return 78;
	}
	while (fgets(line, sizeof line, f)) {
		o.line++;
		if (!strchr(line, '\n') && !feof(f)) {
			error("%s:%d: line too long", path, o.line);
			fclose(f);
			return 78;
		}
		char *p = config_trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		size_t namelen = strcspn(p, " \t=");
		char *value = p + namelen;
		char saved = *value;
		*value = '\0';
		const struct setting *s = find_setting(p);
		if (!s || s->kind == K_CONFIG || s->kind == K_HELP || s->kind == K_VERSION ||
		    (s->programs & ONLY_CMDLINE)) {
			error("%s:%d: unknown setting '%s'", path, o.line, p);
			fclose(f);
			return 78;
		}
		if (saved) {
			value++;
			value = config_trim(value);
			if (*value == '=' && saved != '=')
				value = config_trim(value + 1);
		}
		if (!*value) {
			error("%s:%d: setting '%s' has no value", path, o.line, p);
			fclose(f);
			return 78;
		}
		int rc = apply(cfg, s, value, &o);
		if (rc) {
			fclose(f);
			return rc;
		}
	}
	if (ferror(f)) {
		error("cannot read config file %s: %s", path, strerror(errno));
		fclose(f);
		return 78;
	}
	fclose(f);
	return 0;
}

static void usage(FILE *out, unsigned program, const char *progname)
{
	if (program == PROG_SMTPD)
		fprintf(out, "usage: %s [options]\n"
			     "SMTP server for one connection on standard input and output.\n\n", progname);
	else if (program == PROG_POP3D)
		fprintf(out, "usage: %s [options]\n"
			     "POP3 server for one connection on standard input and output.\n\n", progname);
	else
		fprintf(out, "usage: %s [options] [queue-id...]\n"
			     "Deliver what the queue holds for remote recipients, then exit.\n\n", progname);
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		char left[48];
		if (!takes(s, program))
			continue;
		if (s->short_opt)
			snprintf(left, sizeof left, "-%c, --%s%s%s", s->short_opt, s->name,
				 s->arg ? " " : "", s->arg ? s->arg : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s", s->name, s->arg ? " " : "", s->arg ? s->arg : "");
		fprintf(out, "  %-30s %s", left, s->help);
		if (s->kind == K_NUMBER || s->kind == K_SIZE)
			fprintf(out, " [%lld]", default_of(s, program));
		fputc('\n', out);
	}
}

static void set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->spool = "/var/spool/mail";
	cfg->queue = "/var/spool/mailslot/queue";
	cfg->run_user = "mail";
	cfg->passwd_fd = -1;
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].kind == K_NUMBER || settings[i].kind == K_SIZE)
			*(long long *)((char *)cfg + settings[i].offset) = settings[i].def;
}

/* The host name is needed for the greeting anyway; uname() is one system call. */
static int default_hostname(struct config *cfg)
{
	static struct utsname u;

	if (cfg->hostname)
		return 0;
	if (uname(&u) == -1 || !u.nodename[0]) {
		error("cannot find the host name; set --hostname");
		return 78;
	}
	cfg->hostname = u.nodename;
	return 0;
}

/* getopt_long's value for a setting without a short letter: its index,
 * past every character. */
#define LONG_ONLY 0x100

/* The settings one program takes on its command line; short letters are
 * unique within a program, not across both. */
static const struct setting *by_short(int opt, unsigned program)
{
	if (opt >= LONG_ONLY && (size_t)(opt - LONG_ONLY) < NSETTINGS)
		return &settings[opt - LONG_ONLY];
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].short_opt == opt && takes(&settings[i], program))
			return &settings[i];
	return NULL;
}

/* getopt_long takes any unambiguous prefix of a long option, so that a typo
 * such as --max-size's "--max" once reached --max-recipients when the other
 * option did not exist yet, and turns into another option whenever one is
 * added.  Only the whole name is accepted.  The option just returned is
 * argv[optind-1], or argv[optind-2] when its value was the next argument. */
int config_check_exact_name(char **argv, const struct option *lo)
{
	const char *text = argv[optind - 1];

	if (optarg && optarg == argv[optind - 1] && optind >= 2)
		text = argv[optind - 2];
	if (strncmp(text, "--", 2) != 0)
		return 0;
	size_t len = strcspn(text + 2, "=");
	if (len == strlen(lo->name) && strncmp(text + 2, lo->name, len) == 0)
		return 0;
	error("unknown option '%.*s' (see --help)", (int)len + 2, text);
	return 64;
}

int config_load(struct config *cfg, int argc, char **argv, unsigned program, const char *progname)
{
	struct option longopts[NSETTINGS + 1];
	char shortopts[NSETTINGS * 2 + 2];
	size_t ns = 0, nl = 0;
	const char *config_file = NULL;
	int opt, rc;

	set_defaults(cfg);
	program_defaults(cfg, program);
	shortopts[ns++] = ':';
	for (size_t i = 0; i < NSETTINGS; i++) {
		int takes_arg = settings[i].arg != NULL;
		if (!takes(&settings[i], program))
			continue;
		int val = settings[i].short_opt ? settings[i].short_opt : LONG_ONLY + (int)i;
		longopts[nl++] = (struct option){ settings[i].name, takes_arg ? required_argument : no_argument,
						  NULL, val };
		if (!settings[i].short_opt)
			continue;
		shortopts[ns++] = (char)settings[i].short_opt;
		if (takes_arg)
			shortopts[ns++] = ':';
	}
	longopts[nl] = (struct option){ 0 };
	shortopts[ns] = '\0';

	/* First pass: only --config, --help, --version and option errors.
	 * optind = 0: a session forked by the acceptor loads again */
	opterr = 0;
	optind = 0;
	int li = -1;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, &li)) != -1) {
		if (li >= 0 && (rc = config_check_exact_name(argv, &longopts[li])))
			return rc;
		li = -1;
		if (opt == '?' || opt == ':') {
			const char *what = argv[optind - 1];
			if (opt == '?' && strncmp(what, "--", 2) == 0 && strchr(what, '='))
				error("option '%.*s' takes no value", (int)(strchr(what, '=') - what), what);
			else if (optopt && opt == '?' && strncmp(what, "--", 2) != 0)
				error("unknown option '-%c' (see --help)", optopt);
			else if (opt == '?')
				error("unknown option '%s' (see --help)", what);
			else
				error("option '%s' needs a value", what);
			return 64;
		}
		if (opt == 'h') {
			usage(stdout, program, progname);
			return CONFIG_DONE;
		}
		if (opt == 'V') {
			printf("%s %s\n", progname, MAILSLOT_VERSION);
			return CONFIG_DONE;
		}
		if (opt == 'c')
			config_file = optarg;
	}
	if (optind < argc && program != PROG_RELAY) {
		error("unexpected argument '%s' (see --help)", argv[optind]);
		return 64;
	}
	/* a listener outlives a broken config file: every session it starts
	 * reads the file again and answers 421 until it is fixed */
	char file_error[CONFIG_ERROR_MAX] = "";
	int file_rc = config_file ? load_file(cfg, config_file) : 0;
	if (file_rc) {
		snprintf(file_error, sizeof file_error, "%s", config_error);
		set_defaults(cfg);
		program_defaults(cfg, program);
	}
	cfg->args = argv + optind;
	cfg->config_file = config_file;
	cfg->nargs = argc - optind;

	struct origin o = { 0 };
	optind = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct setting *s = by_short(opt, program);
		if (s && s->kind != K_CONFIG && (rc = apply(cfg, s, optarg ? optarg : "", &o)))
			return rc;
	}
	if (file_rc) {
		snprintf(config_error, sizeof config_error, "%s", file_error);
		if (!cfg->listen)
			return file_rc;
		cfg->config_broken = 1;
	}
	if ((rc = default_hostname(cfg)))
		return rc;
	if (!domain_ok(cfg->hostname)) {
		error("host name '%.100s' is not a domain name; set --hostname", cfg->hostname);
		return 78;
	}
	if (cfg->ndomains == 0)
		cfg->domains[cfg->ndomains++] = cfg->hostname;
	if (!cfg->tls_cert != !cfg->tls_key) {
		error("--tls-cert and --tls-key go together");
		return 64;
	}
	if (cfg->smtps && !cfg->tls_cert) {
		error("--smtps needs --tls-cert and --tls-key");
		return 64;
	}
	if (cfg->pop3s && !cfg->tls_cert) {
		error("--pop3s needs --tls-cert and --tls-key");
		return 64;
	}
	if (program == PROG_POP3D && !cfg->passwd) {
		error("--passwd is needed: without passwords nobody could log in");
		return 64;
	}
	if (cfg->submission && !cfg->passwd) {
		error("--submission needs --passwd: without AUTH no client could send");
		return 64;
	}
	return 0;
}
