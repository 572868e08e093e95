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
 *
 * TLS.  Every server is asked for STARTTLS when it offers it, without
 * checking its certificate (opportunistic, Postfix's "may": an MX's name
 * comes from unsigned DNS, so a check would prove nothing, and clear text
 * is the alternative); a handshake that fails there is tried once more
 * in clear on a new connection to the same address, as Postfix does, so
 * that a server with broken TLS still gets its mail.  The smarthost
 * follows --smarthost-tls: "starttls" requires STARTTLS and "smtps" TLS
 * from the first octet (RFC 8314), both with the certificate verified
 * against --smarthost-ca or the system's store and the smarthost's name
 * (or address literal) checked; "auto" is starttls on port 587, smtps on
 * 465, may elsewhere.  A required TLS or AUTH that fails defers the mail
 * (4.7.x): nothing is sent in clear.  Each TLS connection is logged with
 * its protocol, cipher and whether the certificate was verified.
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

/* Check the TLS and AUTH settings and read the credentials file (which
 * must be a regular file of this account, mode 0600 or stricter, as ssh
 * wants of a key): -1 with a one-line reason in err (exit 78).  Called
 * once, after the switch to --user; OpenSSL is started only when a
 * connection first needs it. */
int remote_setup(const struct config *cfg, char *err, size_t errlen);

/* Deliver the stored message (msgfd, msgsize) to env's recipients idx[0..n-1],
 * all at domain, over one connection; res[idx[i]] gets each outcome. */
void remote_deliver(const struct config *cfg, const struct envelope *env, int msgfd, off_t msgsize,
		    const char *domain, const int *idx, int n, struct rcpt_result *res);

#endif
