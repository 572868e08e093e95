/* reply: formatting, sending, logging, counting and pacing (error delay) of SMTP replies. */
#include "reply.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

#define REPLY_TEXT_MAX 512	/* RFC 5321 4.5.3.1.5: reply line with code and CRLF */

static void send_line(struct replier *r, int code, char sep, const char *enhanced, const char *text)
{
	char line[REPLY_TEXT_MAX];
	int n;

	if (enhanced)
		n = snprintf(line, sizeof line - 2, "%03d%c%s %s", code, sep, enhanced, text);
	else
		n = snprintf(line, sizeof line - 2, "%03d%c%s", code, sep, text);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 3)
		n = (int)(sizeof line - 3);
	if (log_verbose())
		log_msg(LOG_DEBUG, "> %.*s", n, line);
	line[n++] = '\r';
	line[n++] = '\n';
	lineio_write(r->io, line, (size_t)n);
}

static void count(struct replier *r, int code)
{
	if (code >= 400 && code != 421)
		r->errors++;
}

/* Sleep-on-anything past the soft limit, as Postfix does: the error that
 * reaches the limit already waits, and so does every reply after it. */
static void pace(const struct replier *r)
{
	if (r->delay_ms <= 0 || r->errors < r->soft_errors)
		return;
	clock_sleep_ms(r->delay_ms);
}

static void vreply(struct replier *r, int counted, int code, const char *enhanced, const char *fmt, va_list ap)
{
	char text[REPLY_TEXT_MAX];

	vsnprintf(text, sizeof text, fmt, ap);
	if (counted)
		count(r, code);
	pace(r);
	send_line(r, code, ' ', enhanced, text);
}

void reply(struct replier *r, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(r, 1, code, enhanced, fmt, ap);
	va_end(ap);
}

void reply_uncounted(struct replier *r, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(r, 0, code, enhanced, fmt, ap);
	va_end(ap);
}

void reply_lines(struct replier *r, int code, const char *enhanced, const char *const *lines, int n)
{
	count(r, code);
	pace(r);
	for (int i = 0; i < n; i++)
		send_line(r, code, i + 1 < n ? '-' : ' ', enhanced, lines[i]);
}

void reply_count_error(struct replier *r)
{
	r->errors++;
}

int reply_errors_exhausted(const struct replier *r)
{
	return r->errors >= r->max_errors;
}
