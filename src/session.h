/* session: the SMTP server state machine for one connection (RFC 5321).
 *
 * The only module that knows SMTP verbs.  A table maps each verb to its
 * handler and the states it is allowed in; handlers check syntax before
 * they change any state ("check, then proceed").  After the final dot the
 * transaction delivers each local recipient and queues the remote ones
 * (and local ones that failed temporarily) before the 250 is sent.
 */
#ifndef MAILSLOT_SESSION_H
#define MAILSLOT_SESSION_H

#include "config.h"
#include "peer.h"

/* Runs until QUIT, end of input, timeout or too many errors. */
int session_run(const struct config *cfg, const struct peer *peer);

#endif
