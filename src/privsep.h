/* privsep: the two halves of a connection and the requests between them.
 *
 * mailslot-smtpd forks once per connection, just before the greeting: the
 * monitor greets while the child sandboxes itself, then sends PS_GO.  The
 * child (the session) speaks SMTP with the client and holds nothing: no
 * capabilities, no_new_privs, a seccomp allow-list, no file-system access
 * (sandbox.c).  The parent (the monitor) keeps what delivery needs (as root:
 * the --user account plus CAP_SETUID/CAP_SETGID to act as a recipient; as
 * anyone else: that user) and never reads a byte from the client (a
 * peek for early talkers aside).
 *
 * The two talk over a SOCK_SEQPACKET socketpair, one fixed-size record per
 * request and per reply, strictly in turn.  The monitor serves four
 * requests and checks each one itself, through txn.c:
 *   MAIL sender, helo, esmtp   start a transaction (the sender is re-parsed);
 *                              no reply: the session parsed it with the same
 *                              code, and a sender the monitor refuses leaves
 *                              no transaction for the RCPTs that follow
 *   RCPT mailbox               resolve a recipient (re-parsed, policy applied)
 *   DATA                       a spool file to write the message into (its
 *                              descriptor travels with the reply, SCM_RIGHTS)
 *   DOT size                   deliver and queue; the answer for the client
 *   AUTH user, secret          check a password (the monitor's authdb), pace
 *                              and count failures, log the outcome; later
 *                              MAILs and RCPTs are that user's
 *   SIGN pad, octets           the handshake's signature with the TLS key,
 *                              which only the monitor holds (tls_key.c); once
 *                              a session (PS_SIGN_LIMIT)
 * With --submission the MAIL request is asked, not told: whether the sender
 * belongs to the user is the monitor's answer.
 * Anything else (a short record, an unknown request, text that is not a
 * bounded C string) ends the connection.  When the session's side closes,
 * the monitor reaps it, logs an abnormal end (a seccomp kill is SIGSYS),
 * and exits.
 *
 * Without a monitor (a fuzzer drives session_run in one process) the same
 * requests go straight to an in-process transaction.
 */
#ifndef MAILSLOT_PRIVSEP_H
#define MAILSLOT_PRIVSEP_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "peer.h"
#include "queue.h"
#include "status.h"
#include "tls.h"
#include "txn.h"

enum ps_op { PS_MAIL = 1, PS_RCPT, PS_DATA, PS_DOT, PS_AUTH, PS_SIGN };

/* A session has one handshake (STARTTLS once, or implicit TLS), which
 * signs once (TLS 1.3's CertificateVerify, TLS 1.2's ServerKeyExchange). */
#define PS_SIGN_LIMIT 1

/* The record the monitor sends first, once the greeting is out: the
 * session may read the client, who is peer; a spare's session gets the
 * connection with it (SCM_RIGHTS), any other has it on standard input and
 * output.  The socket's end instead means the client was refused before
 * the greeting. */
#define PS_GO 'G'
struct ps_go {
	char go;			/* PS_GO */
	struct peer peer;
};

struct ps_request {
	uint32_t op;
	uint32_t esmtp;
	uint64_t size;
	char arg[TXN_USER_MAX + 1];	/* sender or recipient mailbox; AUTH: the user */
	char helo[TXN_HELO_MAX + 1];
	char secret[TXN_SECRET_MAX + 1];	/* AUTH: the password, wiped after use */
	char tls[TXN_TLS_MAX + 1];	/* MAIL: the session's TLS, for Received: */
	int32_t sign_pad;		/* SIGN: TLS_SIGN_ECDSA or an RSA padding */
	uint32_t sign_len;
	unsigned char sign_in[TLS_SIGN_MAX];
};

struct ps_reply {
	struct status st;
	char qid[QUEUE_ID_MAX];
	uint32_t sig_len;		/* SIGN: 0 when the monitor could not */
	unsigned char sig[TLS_SIGN_MAX];
};

/* The session's end: a socket to the monitor, or a local transaction. */
struct ps_link {
	int fd;
	struct txn *local;
	int mail_asked;		/* --submission: MAIL waits for the monitor's reply */
};

/* Ask; the reply is filled in any case (a broken link is a 421), except
 * for MAIL without mail_asked, which is told and not answered (rep
 * untouched).  For DATA,
 * *spool_fd receives the spool file (the caller closes it), or -1. */
void ps_call(struct ps_link *l, const struct ps_request *req, struct ps_reply *rep, int *spool_fd);

/* The monitor: serve the session child over sock until it closes, then
 * reap child.  Returns the exit status for the process. */
int ps_monitor(int sock, pid_t child, const struct config *cfg, const struct peer *peer);

/* The TLS the monitor signs with for its session (PS_SIGN), or NULL. */
void ps_monitor_key(struct tls_server *tls);

#endif
