/* deliver: local delivery of a spooled message to one mailbox, in the
 * configured format (through mailbox.h: mbox.c, maildir.c, mh.c,
 * numbered.c).
 *
 * The message is read from the spool file; Return-Path: and Delivered-To:
 * go in front of it.  A delivery either completes durably (fsynced, the
 * 250 may be sent) or leaves the mailbox as it was and reports a temporary
 * failure with its SMTP code; delivery code never writes SMTP replies.
 * When the process may act as the recipient (started as root, a system
 * account), files are opened with the recipient's identity (setfsuid), so
 * permissions are checked as the user and new mailboxes are the user's.
 */
#ifndef MAILSLOT_DELIVER_H
#define MAILSLOT_DELIVER_H

#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "status.h"
#include "users.h"

struct delivery {
	int msgfd;		/* the spooled message (LF line ends) */
	off_t size;
	unsigned from_lines;	/* lines mboxrd quoting changes: advisory only,
				 * mbox counts and quotes for itself */
	const char *sender;	/* "" for the null sender */
	const char *qid;
	time_t arrived;
	const char *hostname;
};

struct deliver_result {
	struct status st;	/* OK, or a temporary failure with its codes */
	char detail[200];	/* the reason, for the log and the queue */
};

void deliver_local(const struct config *cfg, const struct delivery *d, const struct target *t,
		   struct deliver_result *res);

/* Lines of a stored message that mboxrd quoting changes (^>*From ): the
 * mbox module's count, for callers that want it in struct delivery. */
unsigned deliver_count_from_lines(int fd, off_t size);

#endif
