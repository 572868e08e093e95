/* log: journald (native protocol), syslog or stderr, with printable text only. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <stdlib.h>

#ifdef WITH_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

#define LOG_LINE_MAX 2048	/* one record; longer text is cut */
#define LOG_FIELDS_MAX 24

static enum log_dest log_dest = LOG_DEST_STDERR;
static const char *log_ident = "mailslot";
static int log_is_verbose;

/* journald sets JOURNAL_STREAM to "dev:ino" of our stderr when it owns it;
 * comparing protects against an inherited variable that no longer applies. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	char *end;
	struct stat st;

	if (!js || *js < '0' || *js > '9')
		return 0;
	errno = 0;
	unsigned long long dev = strtoull(js, &end, 10);
	if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
		return 0;
	unsigned long long ino = strtoull(end + 1, &end, 10);
	if (errno || *end)
		return 0;
	if (fstat(2, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* Under inetd and xinetd, fd 2 is the client's socket: logging there would
 * talk to the client, so only a non-socket stderr may be used. */
static int stderr_usable(void)
{
	struct stat st;

	if (fstat(2, &st) == -1)
		return 0;
	return !S_ISSOCK(st.st_mode);
}

static enum log_dest choose_dest(void)
{
	if (stderr_is_journal())
		return LOG_DEST_JOURNAL;
	if (stderr_usable())
		return LOG_DEST_STDERR;
	return LOG_DEST_SYSLOG;
}

void log_open(const char *ident, enum log_dest dest, int verbose)
{
	log_ident = ident;
	log_is_verbose = verbose;
	log_dest = dest == LOG_DEST_AUTO ? choose_dest() : dest;
	if (log_dest == LOG_DEST_STDERR && !stderr_usable())
		log_dest = LOG_DEST_SYSLOG;
	if (log_dest == LOG_DEST_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int log_verbose(void)
{
	return log_is_verbose;
}

void log_printable(char *out, size_t outsz, const char *in, size_t inlen)
{
	size_t n = 0;

	if (outsz == 0)
		return;
	for (size_t i = 0; i < inlen && n + 1 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];
		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n] = '\0';
}

/* Octets that would let a bare value end early or look like another field. */
static int needs_quotes(unsigned char c)
{
	return c <= ' ' || c >= 0x7f || c == '=' || c == '"' || c == '<' || c == '>' || c == '\\';
}

const char *log_value(char *out, size_t outsz, const char *in)
{
	const char *p = in;
	size_t n = 0;

	if (outsz == 0)
		return out;
	while (*p && !needs_quotes((unsigned char)*p))
		p++;
	if (!*p) {
		log_printable(out, outsz, in, strlen(in));
		return out;
	}
	if (outsz < 3) {
		out[0] = '\0';
		return out;
	}
	out[n++] = '"';
	for (p = in; *p; p++) {
		unsigned char c = (unsigned char)*p;
		int escaped = c == '"' || c == '\\';
		/* keep room for this octet, its escape, the closing quote and NUL */
		if (n + (size_t)escaped + 3 > outsz)
			break;
		if (escaped)
			out[n++] = '\\';
		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

#ifndef WITH_LIBSYSTEMD
static int journal_fd = -1;

/* The journal's native protocol: one datagram of "KEY=value\n" lines.  Values
 * here never hold a newline (the message and every field went through
 * log_printable). */
static int journal_send(int priority, const char *const *fields, const char *msg)
{
	static const char sock_path[] = "/run/systemd/journal/socket";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct iovec iov[LOG_FIELDS_MAX * 2 + 8];
	char prio[32], ident[96];
	int n = 0;

	if (journal_fd == -1) {
		journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (journal_fd == -1)
			return -1;
	}
	memcpy(sa.sun_path, sock_path, sizeof sock_path);
	snprintf(prio, sizeof prio, "PRIORITY=%d\n", priority);
	snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s\nSYSLOG_FACILITY=%d\n",
		 log_ident, LOG_MAIL >> 3);
	iov[n++] = (struct iovec){ "MESSAGE=", 8 };
	iov[n++] = (struct iovec){ (void *)msg, strlen(msg) };
	iov[n++] = (struct iovec){ "\n", 1 };
	iov[n++] = (struct iovec){ prio, strlen(prio) };
	iov[n++] = (struct iovec){ ident, strlen(ident) };
	for (int i = 0; fields && fields[i] && i < LOG_FIELDS_MAX; i++) {
		iov[n++] = (struct iovec){ (void *)fields[i], strlen(fields[i]) };
		iov[n++] = (struct iovec){ "\n", 1 };
	}
	struct msghdr mh = { .msg_name = &sa, .msg_namelen = sizeof sa,
			     .msg_iov = iov, .msg_iovlen = (size_t)n };
	return sendmsg(journal_fd, &mh, MSG_NOSIGNAL) == -1 ? -1 : 0;
}
#else
static int journal_send(int priority, const char *const *fields, const char *msg)
{
	struct iovec iov[LOG_FIELDS_MAX + 4];
	char m[LOG_LINE_MAX + 16], prio[32], ident[80];
	int n = 0;

	snprintf(m, sizeof m, "MESSAGE=%s", msg);
	snprintf(prio, sizeof prio, "PRIORITY=%d", priority);
	snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", log_ident);
	iov[n++] = (struct iovec){ m, strlen(m) };
	iov[n++] = (struct iovec){ prio, strlen(prio) };
	iov[n++] = (struct iovec){ ident, strlen(ident) };
	for (int i = 0; fields && fields[i] && i < LOG_FIELDS_MAX; i++)
		iov[n++] = (struct iovec){ (void *)fields[i], strlen(fields[i]) };
	return sd_journal_sendv(iov, n) < 0 ? -1 : 0;
}
#endif

/* One write(2) a line: dprintf() set up a stream for each call, three
 * extra system calls (fstat, ioctl, lseek) a line on the delivery path. */
static void stderr_line(const char *text)
{
	char line[LOG_LINE_MAX + 128];
	int len = snprintf(line, sizeof line, "%s[%ld]: %s\n", log_ident, (long)getpid(), text);

	if (len < 0)
		return;
	if ((size_t)len >= sizeof line) {
		len = (int)sizeof line - 1;
		line[len - 1] = '\n';
	}
	for (const char *p = line; len > 0;) {
		ssize_t n = write(2, p, (size_t)len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (int)n;
	}
}

/* The fields made printable, packed into store: a field value holding a
 * newline would end the field early in the journal's native protocol and
 * start one of the client's choosing. */
static const char *const *printable_fields(const char *const *fields, const char **out, char *store,
					   size_t storesz)
{
	size_t used = 0;
	int n = 0;

	if (!fields)
		return NULL;
	for (int i = 0; fields[i] && n < LOG_FIELDS_MAX && used < storesz; i++) {
		size_t len = strlen(fields[i]);
		if (len + 1 > storesz - used)
			break;	/* a cut field would be a wrong one: leave it out */
		log_printable(store + used, storesz - used, fields[i], len);
		out[n++] = store + used;
		used += len + 1;
	}
	out[n] = NULL;
	return out;
}

static void log_emit(int priority, const char *const *fields, const char *fmt, va_list ap)
{
	char raw[LOG_LINE_MAX], text[LOG_LINE_MAX], store[LOG_LINE_MAX * 2];
	const char *clean[LOG_FIELDS_MAX + 1];
	int len;

	if (priority == LOG_DEBUG && !log_is_verbose)
		return;
	len = vsnprintf(raw, sizeof raw, fmt, ap);
	if (len < 0)
		return;
	log_printable(text, sizeof text, raw, (size_t)len < sizeof raw ? (size_t)len : sizeof raw - 1);
	switch (log_dest) {
	case LOG_DEST_JOURNAL:
		if (journal_send(priority, printable_fields(fields, clean, store, sizeof store), text) == 0)
			break;
		/* no journal after all: syslog keeps the record */
		/* fall through */
	case LOG_DEST_SYSLOG:
		syslog(priority, "%s", text);
		break;
	default:
		stderr_line(text);
		break;
	}
}

void log_fields(int priority, const char *const *fields, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(priority, fields, fmt, ap);
	va_end(ap);
	errno = saved;
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(priority, NULL, fmt, ap);
	va_end(ap);
	errno = saved;
}

static int fd_is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int log_startup_failure(const char *ident, const char *why)
{
	if (!fd_is_socket(2)) {
		fprintf(stderr, "%s: %s\n", ident, why);
	} else {
		log_open(ident, LOG_DEST_SYSLOG, 0);
		log_msg(LOG_ERR, "fatal: %s", why);
	}
	return fd_is_socket(1);
}
