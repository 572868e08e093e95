/* pop3mon: the privileged side of a POP3 connection, and its requests.
 *
 * mailslot-pop3d splits each connection as mailslot-smtpd does
 * (privsep.h): the session child speaks POP3 sandboxed (sandbox.h) and
 * holds nothing; this monitor, which never reads a byte from the client,
 * keeps the password file's descriptor and the right to act as the
 * recipient, checks the password, and is the only one that opens the
 * maildrop.  The two exchange fixed-size records over a SOCK_SEQPACKET
 * socketpair (fdpass.h), strictly in turn:
 *   LOGIN user, secret   check the password (authdb), pace and count the
 *                        failures, log the outcome ("authentication
 *                        failed: user=... peer=...", what fail2ban reads);
 *                        on success open the maildrop (mailbox.h) as its
 *                        owner: reply count and total octets, or IN-USE
 *   LIST first           up to PM_BATCH entries from first: size in
 *                        octets as RETR sends them (CRLF), uid, and
 *                        where the stored message is (start, len)
 *   OPEN i               read-only descriptors come with the reply: an
 *                        mbox's own (count 1, quoted: every message is
 *                        [start, start + len) of it, mboxrd-quoted), or
 *                        the files of messages i, i+1... (count of them,
 *                        at most FDPASS_MAX): the session reads messages
 *                        itself, and asks again only after that many
 *   RETR n, octets       told, not asked (no reply), once at the end:
 *                        how many messages and octets RETR sent, for the
 *                        session's figures (the session's own count: a
 *                        message read needs no request)
 *   SEEN i               told, not asked, before UPDATE, when LOGIN's
 *                        reply asked for it (the numbered format):
 *                        message i was retrieved, its status says so
 *   DELE i / RSET        mark message i deleted / unmark all
 *   UPDATE               remove what is marked (RFC 1939 UPDATE state)
 *   SIGN pad, octets     the TLS handshake's signature (STLS, or --pop3s
 *                        before the greeting) with the key only this
 *                        process holds (tls_key.c); once a session
 *                        (PM_SIGN_LIMIT): a second is logged and ends the
 *                        connection.  The key is parsed while the client
 *                        reads the greeting and let go after the signature,
 *                        or at the login, after which no handshake comes
 * Only LOGIN and SIGN are served before a login succeeds, and SIGN not
 * after it; a dropped connection never reaches UPDATE, so it deletes
 * nothing.  Anything malformed ends the connection.  At the end the
 * monitor logs the session's figures: user, messages and octets
 * retrieved, messages and octets deleted.
 */
#ifndef MAILSLOT_POP3MON_H
#define MAILSLOT_POP3MON_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "fdpass.h"
#include "mailbox.h"
#include "peer.h"
#include "sasl.h"
#include "tls.h"

enum pm_op { PM_LOGIN = 1, PM_LIST, PM_OPEN, PM_RETR, PM_SEEN, PM_DELE, PM_RSET, PM_UPDATE, PM_SIGN };

/* What a reply says: its POP3 response code (RFC 2449, RFC 3206). */
enum pm_result { PM_OK = 0, PM_AUTH, PM_IN_USE, PM_SYS_TEMP, PM_SYS_PERM, PM_BYE };

#define PM_BATCH 64
/* A session has one handshake (STLS once, or implicit TLS), which signs
 * once (TLS 1.3's CertificateVerify, TLS 1.2's ServerKeyExchange). */
#define PM_SIGN_LIMIT 1
#define PM_TEXT_MAX 200

struct pm_request {
	uint32_t op;
	uint32_t index;
	uint64_t octets;		/* RETR: the figures */
	char user[SASL_NAME_MAX + 1];
	char secret[SASL_SECRET_MAX + 1];	/* LOGIN only; wiped after use */
	char tls[64];				/* LOGIN: the session's TLS, for the log */
	int32_t sign_pad;			/* SIGN: TLS_SIGN_ECDSA or an RSA padding */
	uint32_t sign_len;
	unsigned char sign_in[TLS_SIGN_MAX];
};

struct pm_entry {
	uint64_t size;		/* with CRLF line ends: what RETR sends */
	uint64_t start, len;	/* the stored octets in OPEN's descriptor */
	char uid[MAILBOX_UID_MAX];
};

struct pm_reply {
	uint32_t result;	/* enum pm_result */
	uint32_t count;		/* LOGIN: messages; LIST: entries in this batch (at most PM_BATCH) */
	uint64_t total;		/* LOGIN: their octets; UPDATE: messages removed */
	uint32_t quoted;	/* OPEN: one mbox descriptor for every message */
	uint32_t seen_wanted;	/* LOGIN: tell SEEN before UPDATE */
	char text[PM_TEXT_MAX];
	struct pm_entry entry[PM_BATCH];
	uint32_t sig_len;	/* SIGN: 0 when the monitor could not */
	unsigned char sig[TLS_SIGN_MAX];
};

/* The session's side: one request and its reply, with the descriptors
 * that came (OPEN: up to max into fds, *nfds of them).  A broken link is
 * PM_BYE. */
void pm_call(int sock, const struct pm_request *req, struct pm_reply *rep, int *fds, size_t max, size_t *nfds);
/* A request told, not asked (RETR): no reply comes. */
void pm_tell(int sock, const struct pm_request *req);
/* The session's side of SIGN, as tls_server_sign takes it: 0, or -1
 * (the monitor could not, or the link is broken). */
int pm_sign(int sock, int pad, const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen);

/* The monitor: serve the session child over sock until it closes, then
 * reap child; tls: the key it signs with (tls_server_load), or NULL.  The
 * exit status for the process. */
int pm_monitor(int sock, pid_t child, const struct config *cfg, const struct peer *peer, struct tls_server *tls);

#endif
