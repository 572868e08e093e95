/* tally: what the mailslot programs' log records add up to.
 *
 * Each parsed line (logparse.h) of a mailslot program is one event, known
 * by its text as mailslot-smtpd(8) and mailslot-relay(8) describe it under
 * LOGGING: a connection, an accepted message (from=, size=), a recipient
 * (to=, status=), a refusal with its reply code and reason, a login good
 * or bad, a bounce notice.  The journal's MAILSLOT_* fields are used where
 * a record has them, the text elsewhere; both give the same counts.  All
 * memory is fixed at the start: per-program rows are a small array, and
 * every table keyed by client text (senders, domains, reasons) is a
 * bounded topn table.  Nothing is kept per message or per queue id.
 */
#ifndef MAILSLOT_TALLY_H
#define MAILSLOT_TALLY_H

#include "logparse.h"
#include "topn.h"

#define TALLY_PROGS_MAX 16	/* mailslot programs told apart; more share the last row */
#define TALLY_DAYS_MAX 366	/* days told apart; an older one gives its place to a newer */

/* What a day or an hour of the day saw, as pflogsumm's traffic summaries. */
struct tally_traffic {
	unsigned long long received, delivered, relayed, deferred, bounced, refused;
};

struct tally_day {
	long long start;	/* local midnight, seconds; 0: unused */
	struct tally_traffic n;
};

struct tally_prog {
	char name[LOGPARSE_PROG_MAX];
	unsigned long long conn_local, conn_network;
	unsigned long long logins_good, logins_bad;
	unsigned long long retrieved, deleted;	/* messages, from records with those fields (POP3) */
};

struct tally {
	long long since, until;		/* microseconds; -1: open */
	/* lines */
	unsigned long long lines, used, other_programs, unknown, malformed, outside, undated;
	/* connections */
	struct tally_prog progs[TALLY_PROGS_MAX];
	int nprogs;
	unsigned long long early_talkers, conn_refused;
	/* messages */
	unsigned long long received, bytes, largest, refused;
	/* recipients */
	unsigned long long delivered, queued, relayed, deferred, bounced, bounce_notices;
	long long first, last;		/* times of the first and last record counted; -1: none */
	struct tally_day days[TALLY_DAYS_MAX];	/* by day number modulo TALLY_DAYS_MAX */
	unsigned long long days_dropped;	/* counts of days no longer (or never) kept */
	struct tally_traffic hours[24];	/* by local hour, over the whole period */
	long long day_start, day_end;	/* the local day of the last record, seconds */
	struct topn senders, rcpt_domains, refusals, deferrals, bounces;
	struct topn clients;		/* peer addresses of the messages received */
	struct topn auth_failures;	/* peer addresses of failed logins */
};

/* cap: distinct keys each table holds (topn.h).  0, or -1 (no memory). */
int tally_init(struct tally *t, size_t cap, long long since, long long until);
void tally_free(struct tally *t);
/* One line of input, as read (NUL-terminated, without its line end). */
void tally_line(struct tally *t, struct logparse_clock *c, const char *line, size_t len);
/* A line that could not be read whole (longer than the reader's buffer). */
void tally_malformed(struct tally *t);

#endif
