/* smtpc: the outbound SMTP client for one connection and one message.
 *
 * Written as "enter a state, send; read the reply, decide": EHLO (HELO
 * when EHLO gets a 5xx), MAIL with SIZE= when offered, one RCPT per
 * recipient, DATA with dot-stuffing and CRLF line ends, QUIT.  With
 * PIPELINING (RFC 2920) MAIL, the RCPTs and DATA go in one write.  A SIZE
 * limit below the message size stops before MAIL (552 5.3.4 for all).
 * Every reply, however many lines it has (at most SMTPC_REPLY_LINES), is
 * read by one deadline; the message text goes by one deadline too (the
 * timeout plus its size at a minimum rate), so no server can hold the
 * relay longer by answering or reading a little at a time.
 * A server that answers EHLO with job->self (our own name) is this host
 * reached another way: SMTPC_TEMP before MAIL, nothing sent.
 * Each recipient ends with its own code and text; the caller decides what
 * is done, retried or bounced.
 *
 * TLS (tls.h): with job->tls, STARTTLS (RFC 3207) is sent when the EHLO
 * reply offers it, and the session starts again with EHLO inside TLS;
 * SMTPC_TLS_MAY goes on in clear when it is not offered or refused, the
 * required modes end with SMTPC_TEMP before MAIL, and so does any failed
 * handshake (job->tls_failed set: the connection is spent, and a MAY
 * caller may try the server again without TLS).  SMTPC_TLS_IMPLICIT
 * (RFC 8314, port 465) shakes hands before the greeting.  A server that
 * sends anything after its 220 to STARTTLS and before the handshake is
 * refused: those octets would be read as if they came inside TLS.
 * AUTH (RFC 4954) with job->auth_user: PLAIN (RFC 4616) when offered,
 * else LOGIN, only inside TLS (never in clear, whatever the mode says);
 * no mechanism we speak, or any answer but 235, is SMTPC_TEMP before
 * MAIL.  Credentials never reach a log, not even with --verbose.
 */
#ifndef MAILSLOT_SMTPC_H
#define MAILSLOT_SMTPC_H

#include <sys/types.h>

#include "tls.h"

#define SMTPC_TEXT_MAX 256
#define SMTPC_REPLY_LINES 100
#define SMTPC_CRED_MAX 255	/* octets of an AUTH name or password: both fit one line, encoded */

struct smtpc_rcpt {
	const char *address;
	int code;			/* 0 until the server said something about it */
	char text[SMTPC_TEXT_MAX];	/* the server's reply, printable */
};

enum smtpc_outcome {
	SMTPC_DONE,	/* every recipient has a code */
	SMTPC_TEMP,	/* this host failed before the end: try another, or later */
};

enum smtpc_tls {
	SMTPC_TLS_NONE,		/* never, even when offered */
	SMTPC_TLS_MAY,		/* STARTTLS when offered, else in clear */
	SMTPC_TLS_REQUIRE,	/* STARTTLS or nothing is sent */
	SMTPC_TLS_IMPLICIT,	/* TLS from the first octet */
};

struct smtpc_job {
	int fd;				/* connected socket, non-blocking: every wait is a poll */
	const char *helo;
	const char *self;		/* a server answering EHLO with this name is us: a loop; NULL: no check */
	const char *sender;		/* "" for the null sender */
	struct smtpc_rcpt *rcpts;
	int nrcpt;
	int msgfd;			/* stored message, LF line ends */
	off_t msgsize;
	long long timeout;		/* seconds for each whole reply */
	int verbose;			/* log the dialogue */
	enum smtpc_tls tls_mode;
	struct tls_ctx *tls;		/* client context; NULL: as SMTPC_TLS_NONE */
	const char *tls_name;		/* the server's name or address literal: SNI and certificate check */
	const char *auth_user;		/* AUTH inside TLS with these; NULL: no AUTH */
	const char *auth_pass;
	char error[SMTPC_TEXT_MAX];	/* why SMTPC_TEMP */
	char status[8];			/* its RFC 3463 code when not a network failure ("4.7.5"), else "" */
	int tls_failed;			/* the handshake failed: the connection is spent */
	char tls_info[TLS_DESCRIBE_MAX];	/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once up, "" in clear */
	int authenticated;		/* the server said 235 */
};

enum smtpc_outcome smtpc_run(struct smtpc_job *job);

/* One reply line: "NNN-text" or "NNN text".  Returns the code (200..599)
 * or -1; *more tells whether more lines follow. */
int smtpc_parse_line(const char *line, size_t len, int *more);

#endif
