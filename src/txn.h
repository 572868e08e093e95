/* txn: one mail transaction, from sender to "every recipient is safe".
 *
 * The transaction owns what happens to a message: the sender, recipient
 * resolution and relay policy (local domains, users, aliases, de-duplication
 * of the mailboxes they resolve to), the spool file and its Received: field,
 * local delivery, the queue entry for the rest, and the hand-off to the
 * relay.  Every step ends in a struct status (status.h); the caller turns it
 * into its own kind of answer and never sees a path.
 *
 * It runs in the privileged part of a connection (privsep.c): its inputs are
 * the addresses the network-facing session parsed, and it parses and checks
 * each of them again, so a subverted session can name only mailboxes that a
 * client could have reached by talking SMTP.
 *
 * Order: txn_mail, then txn_rcpt for each recipient, txn_data (the spool
 * file to write the message into, already holding the trace field), then
 * txn_commit.  txn_reset abandons the transaction at any point.
 */
#ifndef MAILSLOT_TXN_H
#define MAILSLOT_TXN_H

#include <time.h>

#include "addr.h"
#include "config.h"
#include "peer.h"
#include "queue.h"
#include "status.h"
#include "users.h"

#define TXN_HELO_MAX 255
#define TXN_USER_MAX 255	/* an AUTH name, or a mailbox (ADDR_MAILBOX_MAX) */
#define TXN_SECRET_MAX 255
#define TXN_TLS_MAX 63		/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
#define TXN_AUTH_FAILURES_MAX 3	/* failed AUTHs before the connection ends */
#define TXN_TARGETS_MAX 10000	/* mailboxes and forwards after alias expansion */
#define TXN_FROM_MAX 400	/* a From: field's value: a full name and a mailbox */

struct txn {
	const struct config *cfg;
	const struct peer *peer;
	int may_relay;
	char auth_user[TXN_USER_MAX + 1];	/* after a good AUTH, else "" */
	int auth_failures;
	char helo[TXN_HELO_MAX + 1];	/* printable copy of the client's name */
	int esmtp;
	char tls[TXN_TLS_MAX + 1];	/* the session's TLS protocol and cipher, or "" */
	int active;			/* a sender was given */
	struct mailaddr sender;
	struct target *targets;		/* allocated on the first recipient */
	int ntargets;
	long long nrcpt;		/* accepted recipients */
	char first_rcpt[ADDR_MAILBOX_MAX + 1];
	char qid[QUEUE_ID_MAX];
	int spool_fd;			/* unnamed spool file, reused until queued */
	int spooled;			/* txn_data gave out the spool file */
	off_t received_len;		/* the trace field at the spool file's start */
	time_t arrived;
	int complete_header;		/* add the Date: and Message-ID: a message lacks */
	long long local_uid;		/* txn_local: the injecting account, else -1 */
	char local_from[TXN_FROM_MAX + 1];	/* txn_local: the From: a message lacks */
};

void txn_init(struct txn *t, const struct config *cfg, const struct peer *peer);
/* The client's HELO/EHLO name (any bytes; kept printable) and dialect. */
void txn_helo(struct txn *t, const char *helo, int esmtp);
/* The session's word on its TLS ("" for none), for the trace field only. */
void txn_tls(struct txn *t, const char *tls);
/* A message injected by a local program (mailslot-sendmail): the trace
 * field names the account by uid, the header is completed (From:, Date:,
 * Message-ID:), and the account may send anywhere.  from is the value
 * of the From: field to add when the message has none. */
void txn_local(struct txn *t, long long uid, const char *user, const char *from);
/* AUTH: whether password is user's (--passwd).  OK: the connection is
 * user's from now on and may relay; a failure waits, is counted and
 * logged, and the last one allowed is a 421. */
void txn_auth(struct txn *t, const char *user, const char *password, struct status *st);
/* Start a transaction; sender is a mailbox ("" for the null sender <>).
 * With --submission only after AUTH, and only a sender of that user. */
void txn_mail(struct txn *t, const char *sender, struct status *st);
/* Add a recipient: local@domain, or a bare local part (the primary domain). */
void txn_rcpt(struct txn *t, const char *mailbox, struct status *st);
/* The file to write the message into (LF line ends, after the trace
 * field already in it), or -1 with st saying why.  t->qid names it. */
int txn_data(struct txn *t, struct status *st);
/* The message is complete (size: octets the client sent, for the log).
 * Deliver and queue; st is OK only when every recipient is on disk. */
void txn_commit(struct txn *t, unsigned long long size, struct status *st);
void txn_reset(struct txn *t);
/* End of the connection: release the spool file. */
void txn_close(struct txn *t);

#endif
