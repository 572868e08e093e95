/* pop3: the POP3 session, the only file that knows POP3 verbs.
 *
 * RFC 1939's states (AUTHORIZATION, TRANSACTION; UPDATE is the monitor's,
 * asked for at QUIT) in a table of {verb, handler, states}; RFC 2449 CAPA
 * and response codes ([AUTH], [IN-USE], [SYS/TEMP], [SYS/PERM]), RFC 2595
 * STLS, RFC 5034 AUTH PLAIN, RFC 8314 implicit TLS.  USER, PASS and AUTH
 * are offered only inside TLS or on a loopback connection.  Passwords and
 * messages are the monitor's (pop3mon.h): this process decodes, asks and
 * relays, and holds no descriptor of the maildrop.  Every message goes
 * out with CRLF line ends and dot-stuffed; its octet count in LIST and
 * STAT is what RETR sends (stuffing and the final dot aside).  Commands
 * may be pipelined (RFC 2449 PIPELINING): replies are flushed before a
 * read would wait.
 */
#ifndef MAILSLOT_POP3_H
#define MAILSLOT_POP3_H

#include "config.h"
#include "peer.h"
#include "tls.h"

/* Run the session on stdin/stdout, asking the monitor on sock; with
 * implicit TLS (--pop3s) the handshake comes before the greeting.  The
 * exit status for the process. */
int pop3_run(const struct config *cfg, const struct peer *peer, struct tls_ctx *tls, int sock);

/* The session's signer (tls_signer, tls.h): the handshake's signature is
 * the monitor's, asked over the run's sock (PM_SIGN). */
int pop3_sign(int pad, const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen);

#endif
