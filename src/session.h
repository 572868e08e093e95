/* session: the SMTP server state machine for one connection (RFC 5321).
 *
 * The only module that knows SMTP verbs.  A table maps each verb to its
 * handler and the states it is allowed in; handlers check syntax before
 * they change any state ("check, then proceed").  What a verb asks of the
 * mail transaction (the sender, a recipient, the spool file, delivery
 * after the final dot) goes to the monitor as a privsep request, and its
 * status becomes the reply; this module opens no file and resolves no user.
 */
#ifndef MAILSLOT_SESSION_H
#define MAILSLOT_SESSION_H

#include "config.h"
#include "peer.h"

/* The session's state for this connection, the client on standard input
 * and output; logs the connection (the monitor's part). */
void session_prepare(const struct config *cfg, const struct peer *peer);
/* The same state without the log line, the client on in_fd and out_fd
 * (the session child's part, told its peer by the monitor). */
void session_attach(const struct config *cfg, const struct peer *peer, int in_fd, int out_fd);
/* Greet the client on stdout (or refuse an early talker: -1, the session
 * is over).  It reads nothing but a peek for early bytes, so the process
 * that still holds privileges may call it, and the client reads the 220
 * while the session child sandboxes itself. */
int session_greet(void);
/* In the session child, before session_run: offer STARTTLS with ctx,
 * asking the monitor at monitor_fd for the handshake's signature when
 * ctx's key is the monitor's (session_sign, a tls_signer). */
struct tls_ctx;
void session_use_tls(struct tls_ctx *ctx, int monitor_fd);
int session_sign(int pad, const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen);
/* --smtps: the handshake first (nothing is read in clear), then the
 * greeting inside TLS.  -1: the handshake failed, the session is over. */
int session_greet_in_tls(void);
/* Both, in one process (a fuzzer). */
int session_open(const struct config *cfg, const struct peer *peer);
/* Then serve commands until QUIT, end of input, timeout or too many
 * errors.  monitor_fd is the socket to the monitor (privsep.h), or -1 to
 * run the transaction in this process (a fuzzer). */
int session_run(int monitor_fd);

#endif
