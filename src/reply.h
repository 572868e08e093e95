/* reply: every SMTP reply the server sends goes out through here.
 *
 * A reply is "CODE X.Y.Z text" (RFC 2034: the enhanced code is on every
 * reply except the greeting and the answer to HELO/EHLO, which pass NULL).
 * Multi-line replies use "CODE-" on all lines but the last.  Every 4xx/5xx
 * reply counts as an error; reply_errors_exhausted() tells the session when
 * to give up with 421.  With --verbose each reply is logged.
 */
#ifndef MAILSLOT_REPLY_H
#define MAILSLOT_REPLY_H

#include "lineio.h"

struct replier {
	struct lineio *io;
	long long errors;
	long long max_errors;
};

void reply(struct replier *r, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A refusal that is not the client's error (recipients over the limit:
 * RFC 5321 3.3 has the client send them again later). */
void reply_uncounted(struct replier *r, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* lines[0..n-1]; the code and enhanced code go in front of each. */
void reply_lines(struct replier *r, int code, const char *enhanced, const char *const *lines, int n);
int reply_errors_exhausted(const struct replier *r);

#endif
