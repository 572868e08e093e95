/* bounce: delivery status notifications (RFC 3464) for recipients that
 * failed for good, queued like any message, from the null sender.
 *
 * The report is multipart/report; report-type=delivery-status, with a
 * human-readable part, one per-recipient block each, and the original
 * headers (text/rfc822-headers).  No bounce is ever made for a message
 * from the null sender, so two servers cannot bounce at each other.
 */
#ifndef MAILSLOT_BOUNCE_H
#define MAILSLOT_BOUNCE_H

#include <sys/types.h>

#include "config.h"
#include "queue.h"
#include "remote.h"

/* A report on every recipient of orig whose result (res[i], one per
 * orig->rcpt[i]) is OUT_PERM.  0 and the new entry's id in newid (an empty
 * id when no bounce was due: null sender), or -1 with errno. */
int bounce_queue(const struct config *cfg, const struct envelope *orig, int msgfd,
		 const struct rcpt_result *res, char *newid, size_t newid_len);

#endif
