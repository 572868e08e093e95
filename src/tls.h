/* tls: OpenSSL 3 for both sides, behind the connection seam (conn.h).
 *
 * Contexts.  A context holds what every connection of one kind shares:
 * the certificate chain and key (server), the trust anchors (verifying
 * client), the protocol policy.  Both kinds take TLS 1.2 and 1.3 only,
 * Mozilla's "intermediate" profile (TLS 1.2: ECDHE with AES-GCM or
 * ChaCha20-Poly1305, nothing else; TLS 1.3: OpenSSL's default suites;
 * groups X25519, P-256, P-384), no compression (CRIME), no renegotiation
 * (the 2009 injection and a cheap CPU drain), and no session resumption:
 * every session process is new, so a ticket or cache entry could only be
 * presented to a process that has never seen its key.
 *
 * OpenSSL itself is initialised when the first context is made, never
 * before: a program that makes none (a plain session, a relay run with
 * nothing to send) pays nothing but the size of the binary.  The system's
 * openssl.cnf is not read (OPENSSL_INIT_NO_LOAD_CONFIG): what this file
 * sets is the whole policy, and no file is opened later behind the
 * caller's back.
 *
 * Files.  Every file a context needs (certificate chain, key, CA file,
 * the system trust store's bundle) is read while the context is made, so
 * a server makes its context before it drops privileges (a key readable
 * only by root works) and before the session sandboxes itself.  During
 * tls_start() and the TLS reads and writes OpenSSL makes only the system
 * calls of plain I/O (recvfrom/sendto or read/write, poll) plus getrandom
 * and clock_gettime, all on sandbox.c's allow-list.  Exception: a
 * verifying client context made with the system store (ca_file NULL) may
 * also look certificates up by hash in /etc/ssl/certs during the
 * handshake; only the relay makes one, and it is not sandboxed.
 *
 * Connections.  tls_start() runs the handshake over a connection's own
 * descriptors (c->in_fd for reading, c->out_fd for writing: one socket,
 * or two descriptors such as inetd's stdin and stdout) and on success
 * gives the connection TLS operations, so that lineio and everything above
 * it go on unchanged.  The descriptors' flags are left alone: sockets are
 * read and written with MSG_DONTWAIT, other descriptors only after poll(2)
 * says they are ready, so no call blocks whether they are non-blocking or
 * not, and every wait is conn_wait()'s, under the caller's deadline.
 * The TLS operations keep the read(2)/write(2) contract of conn.h:
 *   read      a count; 0 at the peer's close_notify or end of input (a
 *             missing close_notify is not an error: SMTP frames its own
 *             data, so a cut cannot pass for a whole message); -1 with
 *             errno EAGAIN (wait and retry), EPROTO (a TLS error),
 *             ECONNRESET or the descriptor's errno
 *   write     a count (possibly partial, one record at a time), -1 with
 *             errno as for read; retry with the same octets after EAGAIN
 *   pending   octets already decrypted, which poll cannot see
 *   shutdown  sends close_notify, then shuts the socket's sending side
 *             (-1 when that is not a socket, as plain)
 * c->want is set only when an operation needs the other direction first
 * (a read that must write, a write that must read): a read that waited
 * for input and timed out leaves it 0, so the next flush waits for
 * POLLOUT as asked rather than for input that may never come.
 *
 * STARTTLS (RFC 3207).  Before tls_start() the caller discards whatever
 * plain input it already holds (lineio_pending): bytes the peer pipelined
 * after STARTTLS must never be read as if they had come inside TLS
 * (CVE-2011-0411).  After it, the SMTP session starts again from EHLO.
 *
 * Errors come back as one line of text in why (no newline, at most
 * whylen-1 octets, TLS_WHY_MAX is enough), for the caller to log or
 * print; what to exit with is the caller's (78 for a bad certificate or
 * key at start-up).
 */
#ifndef MAILSLOT_TLS_H
#define MAILSLOT_TLS_H

#include <stddef.h>

#include "conn.h"

#define TLS_WHY_MAX 256
#define TLS_DESCRIBE_MAX 64	/* "TLSv1.3 TLS_CHACHA20_POLY1305_SHA256" and room */

struct tls_ctx;

enum tls_verify {
	TLS_VERIFY_NONE,	/* opportunistic: encrypt, accept any certificate */
	TLS_VERIFY_PEER,	/* chain to a trust anchor and the peer's name, or fail the handshake */
};

/* A server context from a PEM certificate file (the leaf first, then its
 * chain) and a PEM private key file, checked to match.  NULL with why
 * set ("cannot load the TLS key /etc/x.pem: ...") on any failure. */
struct tls_ctx *tls_server_ctx(const char *cert_file, const char *key_file, char *why, size_t whylen);

/* A client context.  TLS_VERIFY_PEER trusts ca_file (PEM, one or more
 * certificates) when given, else the system store; tls_start() then
 * checks the peer_name it is given.  NULL with why set on failure. */
struct tls_ctx *tls_client_ctx(enum tls_verify verify, const char *ca_file, char *why, size_t whylen);

void tls_ctx_free(struct tls_ctx *ctx);

/* The handshake on c, which must be a plain connection (conn_plain), as
 * server or client as ctx was made, within timeout_ms.  peer_name, for a
 * client: the server's host name (sent as SNI and, when verifying,
 * matched against the certificate's names, no partial wildcards) or an
 * address ("192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]": matched
 * against its IP addresses, no SNI); NULL: neither.  A server ignores it.
 * 0: c now reads and writes through TLS.  -1: why says what failed ("TLS
 * handshake timed out", "...: certificate verify failed (Hostname
 * mismatch)"); c keeps its plain operations but its stream is spent, and
 * the caller ends the connection. */
int tls_start(struct conn *c, struct tls_ctx *ctx, const char *peer_name, int timeout_ms, char *why,
	      size_t whylen);

/* A server's TLS with the key out of the session (tls_key.c).
 * tls_server_load checks the pair (in a child process), makes ctx with the
 * certificate and its public key, whose private operation is signer's,
 * and keeps the key file's octets in pages of their own (0, or -1 with
 * why set).  The session unmaps those (tls_server_forget_key) and signs
 * through the monitor, which parses the key once the session has started
 * (tls_server_prepare) and signs once (tls_server_sign: pad TLS_SIGN_ECDSA, an ECDSA signature of a digest,
 * DER; or an RSA padding, RSA_PKCS1_PADDING or RSA_NO_PADDING, the raw
 * private operation; *outlen: room in out, then the signature's length;
 * 0 or -1).  A key type other than EC or RSA is loaded into ctx itself
 * (key_in_session).  TLS_SIGN_MAX: the largest signature or input. */
#define TLS_SIGN_MAX 512
#define TLS_SIGN_ECDSA (-1)
typedef int (*tls_signer)(int pad, const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen);
struct tls_server {
	struct tls_ctx *ctx;
	unsigned char *pem;		/* the key file, mapped on its own */
	size_t pem_len, pem_map;
	struct ec_key_st *ec;		/* parsed, in the monitor, for one signature */
	struct rsa_st *rsa;
	int key_in_session;
};
int tls_server_load(struct tls_server *t, const char *cert, const char *key, tls_signer signer, char *why,
		    size_t whylen);
void tls_server_forget_key(struct tls_server *t);
/* The monitor parses the key ahead of the signature, while the client
 * is still on its way to STARTTLS (0, or -1: no key to be had). */
int tls_server_prepare(struct tls_server *t);
int tls_server_sign(struct tls_server *t, int pad, const unsigned char *in, size_t inlen, unsigned char *out,
		    size_t *outlen);
void tls_server_free(struct tls_server *t);

/* Between tls.c and tls_key.c: ctx's OpenSSL context; a server context
 * with the certificate chain only. */
struct ssl_ctx_st *tls_ctx_ssl(struct tls_ctx *ctx);
struct tls_ctx *tls_server_ctx_cert(const char *cert_file, char *why, size_t whylen);

/* 1 in a program linked with OpenSSL (tls.c), 0 in mailslot-smtpd's
 * plain build (tls_off.c). */
int tls_built_in(void);

/* Whether c reads and writes through TLS. */
int tls_active(const struct conn *c);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384": the protocol and cipher, for logs and
 * Received: comments; "" when c is not a TLS connection. */
void tls_describe(const struct conn *c, char *out, size_t outsz);

/* Free c's TLS session (nothing is sent: call conn_shutdown first for a
 * close_notify).  Afterwards every write fails (EPIPE) and every read
 * reads end of input: the stream is never spoken in clear again. */
void tls_end(struct conn *c);

#endif
