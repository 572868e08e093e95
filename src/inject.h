/* inject: the request mailslot-sendmail sends to mailslot-enqueue.
 *
 * mailslot-sendmail runs as its caller and does what needs no privilege:
 * sendmail's command line, the header (-t, Bcc:), line ends.  Whatever it
 * sends, mailslot-enqueue (set-user-ID root, or run by root) trusts none
 * of it: the request is read from its standard input with the SMTP
 * session's bounded reader, every address is parsed again by the
 * transaction (txn.c), and all a caller can do is what an SMTP client on
 * the loopback could: have a message delivered or queued.
 *
 * The request, LF-ended lines of at most INJECT_LINE_MAX octets each:
 *   S [address]   the envelope sender: none for the caller's own address,
 *                 "<>" for the null sender.  First, once.
 *   N name        optional: the author's full name, for a From: that the
 *                 message lacks
 *   R address     a recipient; at least one, at most --max-recipients
 *   D             the message follows, dot-stuffed as in SMTP DATA, and
 *                 ends with a line holding only "."
 * An input that ends before that dot (the caller was killed) queues
 * nothing.  The answer is mailslot-enqueue's exit status (sysexits(3))
 * and, on failure, one line on its standard error.
 */
#ifndef MAILSLOT_INJECT_H
#define MAILSLOT_INJECT_H

#include "addr.h"

#define INJECT_LINE_MAX (ADDR_MAILBOX_MAX + 64)
#define INJECT_NAME_MAX 200	/* the -F full name */
/* The one configuration a set-user-ID mailslot-enqueue reads; run without
 * privilege beyond its caller's, it takes $MAILSLOT_CONFIG instead. */
#define INJECT_CONFIG "/etc/mailslot/mailslot.conf"
#define INJECT_HELPER "mailslot-enqueue"	/* installed beside mailslot-sendmail */
/* A request line may wait this long: a slow pipeline is normal here. */
#define INJECT_TIMEOUT 3600

#endif
