/* remote: one message to the recipients of one remote domain.
 *
 * Where it goes: the --smarthost (the administrator's choice, used as
 * given), an address literal domain, or the domain's MX hosts (mx.c).
 * Every address of every host is known before the first connection, so
 * that a host with this machine's address drops itself and every host of
 * its preference or worse (RFC 5321 5.1; none left: 5.4.6, a loop); a
 * server that answers EHLO with our --hostname is a loop too (smtpc.c).
 * Addresses are tried best first, each with --connect-timeout, until one
 * server answers the recipients (smtpc.c); its answers are final for this
 * run.  The result is one outcome per recipient, never an SMTP reply:
 * relay.c records, retries and bounces.
 */
#ifndef MAILSLOT_REMOTE_H
#define MAILSLOT_REMOTE_H

#include <sys/types.h>

#include "config.h"
#include "queue.h"

enum rcpt_outcome { OUT_PENDING, OUT_SENT, OUT_TEMP, OUT_PERM };

/* What became of one recipient in this run. */
struct rcpt_result {
	enum rcpt_outcome outcome;
	char status[16];		/* RFC 3463 code for a bounce */
	char text[QUEUE_ERROR_MAX];	/* reply or reason, printable */
	char mta[300];			/* the host that answered (RFC 3464 Remote-MTA) */
	char where[320];		/* host[address]:port, for the log */
};

/* Set an outcome; the text is made printable.  mta may be NULL. */
void rcpt_result_set(struct rcpt_result *r, enum rcpt_outcome o, const char *status, const char *mta,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Deliver the stored message (msgfd, msgsize) to env's recipients idx[0..n-1],
 * all at domain, over one connection; res[idx[i]] gets each outcome. */
void remote_deliver(const struct config *cfg, const struct envelope *env, int msgfd, off_t msgsize,
		    const char *domain, const int *idx, int n, struct rcpt_result *res);

#endif
