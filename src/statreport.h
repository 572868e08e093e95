/* statreport: mailslot-stat's report, as text for a person or JSON.
 *
 * The text follows pflogsumm's order (totals first, then the details an
 * administrator reads next: refusals, deferrals, bounces, top senders and
 * recipient domains) with exact figures, never rounded to "k" or "m".
 * The JSON holds the same figures under stable names (mailslot-stat(8),
 * JSON OUTPUT); its strings are escaped so that any log text is valid JSON.
 */
#ifndef MAILSLOT_STATREPORT_H
#define MAILSLOT_STATREPORT_H

#include <stdio.h>
#include <time.h>

#include "tally.h"

#define STATREPORT_ERROR_MAX 300

/* The queue as it is now (queue.h's entries), or why it could not be read. */
struct queue_summary {
	const char *dir;	/* NULL: not asked for */
	char error[STATREPORT_ERROR_MAX];	/* "" when it was read */
	unsigned long long entries, rcpts, waiting, bytes;	/* waiting: recipients tried before */
	long long oldest;	/* arrival of the oldest entry, seconds; -1: none */
};

struct statreport {
	const struct tally *t;
	const struct queue_summary *q;
	size_t top;		/* rows of each table */
	time_t now;
};

void statreport_text(FILE *out, const struct statreport *r);
void statreport_json(FILE *out, const struct statreport *r);

#endif
