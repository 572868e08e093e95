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
 */
#ifndef MAILSLOT_SMTPC_H
#define MAILSLOT_SMTPC_H

#include <sys/types.h>

#define SMTPC_TEXT_MAX 256
#define SMTPC_REPLY_LINES 100

struct smtpc_rcpt {
	const char *address;
	int code;			/* 0 until the server said something about it */
	char text[SMTPC_TEXT_MAX];	/* the server's reply, printable */
};

enum smtpc_outcome {
	SMTPC_DONE,	/* every recipient has a code */
	SMTPC_TEMP,	/* this host failed before the end: try another, or later */
};

struct smtpc_job {
	int fd;				/* connected socket */
	const char *helo;
	const char *self;		/* a server answering EHLO with this name is us: a loop; NULL: no check */
	const char *sender;		/* "" for the null sender */
	struct smtpc_rcpt *rcpts;
	int nrcpt;
	int msgfd;			/* stored message, LF line ends */
	off_t msgsize;
	long long timeout;		/* seconds for each whole reply */
	int verbose;			/* log the dialogue */
	char error[SMTPC_TEXT_MAX];	/* why SMTPC_TEMP */
};

enum smtpc_outcome smtpc_run(struct smtpc_job *job);

/* One reply line: "NNN-text" or "NNN text".  Returns the code (200..599)
 * or -1; *more tells whether more lines follow. */
int smtpc_parse_line(const char *line, size_t len, int *more);

#endif
