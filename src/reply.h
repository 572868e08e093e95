/* reply: every SMTP reply the server sends goes out through here.
 *
 * A reply is "CODE X.Y.Z text" (RFC 2034: the enhanced code is on every
 * reply except the greeting and the answer to HELO/EHLO, which pass NULL).
 * Multi-line replies use "CODE-" on all lines but the last.  Every 4xx/5xx
 * reply counts as an error; reply_errors_exhausted() tells the session when
 * to give up with 421.  Once the errors reach soft_errors, every reply
 * waits delay_ms first (Postfix's smtpd_error_sleep_time): a client that
 * keeps erring is slowed down before it is cut off.  The wait is a
 * nanosleep, which a sandboxed session may still make.  With --verbose each
 * reply is logged.
 */
#ifndef MAILSLOT_REPLY_H
#define MAILSLOT_REPLY_H

#include "lineio.h"

struct replier {
	struct lineio *io;
	long long errors;
	long long max_errors;
	long long soft_errors;
	long long delay_ms;	/* 0: never wait */
};

void reply(struct replier *r, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A refusal that is not the client's error (recipients over the limit:
 * RFC 5321 3.3 has the client send them again later). */
void reply_uncounted(struct replier *r, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* lines[0..n-1]; the code and enhanced code go in front of each. */
void reply_lines(struct replier *r, int code, const char *enhanced, const char *const *lines, int n);
/* An error without an error reply: a junk command past its limit. */
void reply_count_error(struct replier *r);
int reply_errors_exhausted(const struct replier *r);

#endif
