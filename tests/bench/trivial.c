/*
 * trivial - the least an SMTP responder can do, as a yardstick for
 * mailslot-smtpd in tests/bench/run.sh.
 *
 * Usage: trivial MBOX
 *
 * Speaks SMTP on stdin/stdout (inetd style): 220, then EHLO/HELO 250,
 * MAIL 250, RCPT 250, DATA 354, reads until CRLF.CRLF, appends the
 * message to MBOX behind a "From " line with one write(2) (O_APPEND) and
 * fsync(2), answers 250; QUIT 221 and exit; anything else 500.  It does
 * no parsing beyond the first four bytes of a command line, so every
 * cost mailslot-smtpd adds on top of it (checks, queue, locking,
 * logging) shows up in the ratio.  The message is kept in memory until
 * the dot: fine for the benchmark's 2 KiB messages, and the reason this
 * program is not measured with the 100 MiB one.
 *
 * Exit status: 0 after QUIT or EOF, 1 on a read, write or delivery error.
 * Built static (cc -O2 -static) so that it pays no dynamic-loader cost.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum { LINE_MAX_BYTES = 8192 };

static const char *mbox_path;
static char inbuf[65536];
static size_t in_off, in_len;

static void put(const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(1, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		s += w;
		n -= (size_t)w;
	}
}

/*
 * One line including its LF into line (at most LINE_MAX_BYTES - 1 bytes;
 * a longer line comes back in pieces, which DATA copies verbatim anyway).
 * Returns the length, 0 at EOF.
 */
static size_t get_line(char *line)
{
	size_t n = 0;

	while (n < LINE_MAX_BYTES - 1) {
		if (in_off == in_len) {
			ssize_t r = read(0, inbuf, sizeof inbuf);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return n;
			in_off = 0;
			in_len = (size_t)r;
		}
		char c = inbuf[in_off++];
		line[n++] = c;
		if (c == '\n')
			break;
	}
	line[n] = '\0';
	return n;
}

static int append_message(const char *msg, size_t len)
{
	int fd = open(mbox_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	/* one write per message: O_APPEND keeps concurrent sessions apart */
	ssize_t w = write(fd, msg, len);
	int ok = w == (ssize_t)len && fsync(fd) == 0;
	if (close(fd) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static void do_data(char *line)
{
	static const char sep[] = "From trivial@bench Thu Jan  1 00:00:00 1970\n";
	size_t cap = 16384, len = 0;
	char *msg = malloc(cap);

	if (msg == NULL)
		_exit(1);
	memcpy(msg, sep, sizeof sep - 1);
	len = sizeof sep - 1;
	put("354 go ahead\r\n");
	for (;;) {
		size_t n = get_line(line);
		if (n == 0)
			_exit(1);
		if (strcmp(line, ".\r\n") == 0 || strcmp(line, ".\n") == 0)
			break;
		char *p = line;
		if (p[0] == '.') {
			p++;
			n--;
		}
		if (n >= 2 && p[n - 2] == '\r') {
			n -= 2;
			p[n++] = '\n';
		}
		if (len + n + 1 > cap) {
			while (len + n + 1 > cap)
				cap *= 2;
			char *bigger = realloc(msg, cap);
			if (bigger == NULL)
				_exit(1);
			msg = bigger;
		}
		memcpy(msg + len, p, n);
		len += n;
	}
	msg[len++] = '\n';
	put(append_message(msg, len) == 0 ? "250 ok\r\n" : "451 append failed\r\n");
	free(msg);
}

int main(int argc, char **argv)
{
	static char line[LINE_MAX_BYTES];

	if (argc != 2) {
		fputs("usage: trivial MBOX\n", stderr);
		return 64;
	}
	mbox_path = argv[1];
	put("220 trivial ESMTP\r\n");
	while (get_line(line) > 0) {
		if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0)
			put("250 trivial\r\n");
		else if (strncasecmp(line, "MAIL", 4) == 0 || strncasecmp(line, "RCPT", 4) == 0 ||
			 strncasecmp(line, "RSET", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0)
			put("250 ok\r\n");
		else if (strncasecmp(line, "DATA", 4) == 0)
			do_data(line);
		else if (strncasecmp(line, "QUIT", 4) == 0) {
			put("221 bye\r\n");
			return 0;
		} else
			put("500 unrecognized\r\n");
	}
	return 0;
}
