/* smtpc: outbound SMTP as a state machine (enter_state sends, on_reply
 * decides), with a bounded multi-line reply parser. */
#include "smtpc.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lineio.h"
#include "log.h"

#define SMTPC_LINE_MAX 1024
/* The slowest a server may take the message text, in octets a second,
 * beyond the --timeout every text gets: 32 KiB/s (256 kbit/s) gives a
 * 25 MiB message 13 minutes more, and no server can hold the relay
 * longer by reading a little before each timeout. */
#define SMTPC_MIN_DATA_RATE 32768

/* The states of a session (OpenSMTPD's mta_session: enter_state() sends,
 * on_reply() decides).  TLS and AUTH would be states between EHLO and
 * MAIL, entered from on_reply() when the EHLO reply offers them. */
enum state {
	ST_GREETING,	/* the server speaks first */
	ST_EHLO,
	ST_HELO,	/* EHLO got a 5xx */
	ST_MAIL,
	ST_RCPT,	/* one reply per recipient, rcpt is the one being answered */
	ST_DATA,
	ST_BODY,	/* the text went out; its reply is the end-of-data reply */
	ST_EMPTY_DOT,	/* pipelined DATA accepted with nobody to send to */
	ST_QUIT,
	ST_END,
};

struct reply {
	int code;
	char text[SMTPC_TEXT_MAX];	/* "NNN text" of the last line */
	char first[SMTPC_TEXT_MAX];	/* and of the first, which names the server */
};

struct client {
	struct smtpc_job *job;
	struct lineio io;
	enum state state;
	enum smtpc_outcome outcome;
	int pipelined;			/* MAIL, RCPTs and DATA went in one batch */
	int rcpt;			/* the recipient whose RCPT is answered next */
	int accepted;			/* recipients with a 2xx to RCPT */
	struct reply mail;		/* the reply to MAIL */
	int pipelining;
	int eightbit;
	unsigned long long size_limit;	/* 0: none announced */
	int size_ok;			/* SIZE offered at all */
	unsigned long long wire_size;	/* octets after DATA: CRLF, dot-stuffing */
	int has_8bit;
};

int smtpc_parse_line(const char *line, size_t len, int *more)
{
	if (len < 3)
		return -1;
	for (int i = 0; i < 3; i++)
		if (line[i] < '0' || line[i] > '9')
			return -1;
	if (line[0] < '2' || line[0] > '5')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*more = len > 3 && line[3] == '-';
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* EHLO keywords we use; lines after the first are "250-KEYWORD params". */
static void note_extension(struct client *c, const char *kw)
{
	if (strcasecmp(kw, "PIPELINING") == 0)
		c->pipelining = 1;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		c->eightbit = 1;
	else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == '\0' || kw[4] == ' ')) {
		c->size_ok = 1;
		c->size_limit = kw[4] ? strtoull(kw + 5, NULL, 10) : 0;
	}
}

/* lineio counts its timeout from each call; giving it what is left of our
 * deadline before every call makes the deadline one for the whole reply. */
static void until(struct client *c, long long deadline)
{
	long long left = deadline - clock_ms();

	c->io.timeout_ms = left > 0 ? (int)left : 0;
}

/* -1: the connection failed (job->error says how).  One deadline for the
 * whole reply, however many lines it has: a deadline per line let a server
 * hold a reply for SMTPC_REPLY_LINES times the timeout (hours by default). */
static int read_reply(struct client *c, struct reply *r, long long timeout, int ehlo)
{
	char line[SMTPC_LINE_MAX];
	size_t len;
	int more = 1, code = -1;
	long long deadline = clock_ms() + timeout * 1000;

	for (int n = 0; more; n++) {
		until(c, deadline);
		enum line_status st = lineio_getline(&c->io, line, sizeof line, &len);
		if (st != LINE_OK || n >= SMTPC_REPLY_LINES) {
			snprintf(c->job->error, sizeof c->job->error, "%s",
				 st == LINE_TIMEOUT ? "timeout waiting for a reply" :
				 st == LINE_EOF ? "connection closed by the server" :
				 st == LINE_TOOLONG ? "reply line too long" :
				 n >= SMTPC_REPLY_LINES ? "reply with too many lines" : "connection error");
			return -1;
		}
		int this = smtpc_parse_line(line, len, &more);
		if (this == -1 || (code != -1 && this != code)) {
			snprintf(c->job->error, sizeof c->job->error, "malformed reply from the server");
			return -1;
		}
		code = this;
		if (c->job->verbose) {
			char shown[160];
			log_printable(shown, sizeof shown, line, len);
			log_msg(LOG_DEBUG, "< %s", shown);
		}
		if (ehlo && n > 0 && len > 4)
			note_extension(c, line + 4);
		log_printable(r->text, sizeof r->text, line, len);
		if (n == 0)
			snprintf(r->first, sizeof r->first, "%s", r->text);
	}
	r->code = code;
	return 0;
}

static void send_line(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(struct client *c, const char *fmt, ...)
{
	char line[SMTPC_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > sizeof line - 3)
		n = (int)(sizeof line - 3);
	if (c->job->verbose)
		log_msg(LOG_DEBUG, "> %.*s", n, line);
	line[n++] = '\r';
	line[n++] = '\n';
	c->io.timeout_ms = (int)(c->job->timeout * 1000);
	lineio_write(&c->io, line, (size_t)n);
}

/* A command gets the whole timeout to go out (read_reply leaves lineio
 * with what was left of the last reply's deadline). */
static int flush(struct client *c)
{
	c->io.timeout_ms = (int)(c->job->timeout * 1000);
	if (lineio_flush(&c->io) == -1) {
		snprintf(c->job->error, sizeof c->job->error, "cannot send to the server: %s", strerror(c->io.out_error));
		return -1;
	}
	return 0;
}

/* Write len octets by the deadline; -1 with job->error set.  Not through
 * lineio_write, whose every 4 KiB flush would get a timeout of its own, so
 * that a server reading a little before each timeout could hold the relay
 * for as long as it liked. */
static int send_until(struct client *c, const char *buf, size_t len, long long deadline)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = { .fd = c->job->fd, .events = POLLOUT };
		long long left = deadline - clock_ms();
		int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (pr == -1 && errno == EINTR)
			continue;
		if (pr <= 0) {
			snprintf(c->job->error, sizeof c->job->error, "%s",
				 pr == 0 ? "timeout sending the message" : "cannot send to the server");
			return -1;
		}
		/* MSG_DONTWAIT: POLLOUT promises some room, not room for all of it */
		ssize_t n = send(c->job->fd, buf + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
		} else if (n == -1 && errno != EINTR && errno != EAGAIN) {
			snprintf(c->job->error, sizeof c->job->error, "cannot send to the server: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The stored message as SMTP wants it: CRLF line ends, a dot doubled at
 * the start of a line (RFC 5321 4.5.2), no stray CR (which could otherwise
 * form the <CR><CR><LF> a smuggling attack relies on), then ".".
 * The whole text gets one deadline: the timeout, plus the time the text
 * takes at SMTPC_MIN_DATA_RATE. */
static int send_body(struct client *c)
{
	static char in[65536], out[2 * sizeof in + 5];	/* every LF may become CRLF and a dot */
	long long deadline = clock_ms() + c->job->timeout * 1000 +
			     (long long)(c->wire_size * 1000 / SMTPC_MIN_DATA_RATE);
	off_t off = 0;
	int at_line_start = 1;
	size_t o = 0;

	/* what lineio still holds goes first, within the same deadline */
	until(c, deadline);
	if (lineio_flush(&c->io) == -1) {
		snprintf(c->job->error, sizeof c->job->error, "cannot send to the server: %s", strerror(c->io.out_error));
		return -1;
	}
	while (off < c->job->msgsize) {
		ssize_t n = pread(c->job->msgfd, in, sizeof in, off);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			snprintf(c->job->error, sizeof c->job->error, "cannot read the queued message");
			return -1;
		}
		off += n;
		o = 0;
		for (ssize_t i = 0; i < n; i++) {
			char ch = in[i];
			if (ch == '\r')
				continue;
			if (at_line_start && ch == '.')
				out[o++] = '.';
			if (ch == '\n')
				out[o++] = '\r';
			out[o++] = ch;
			at_line_start = ch == '\n';
		}
		/* the last piece waits for the final dot: sent apart, the dot's
		 * small segment waits under Nagle for the ACK the server delays
		 * (40 ms a message) */
		if (off < c->job->msgsize && send_until(c, out, o, deadline) == -1)
			return -1;
	}
	if (!at_line_start) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	return send_until(c, out, o, deadline);
}

/* RFC 1870 counts the message as sent: every LF becomes CRLF and a dot at
 * the start of a line is doubled.  One pass over the stored file. */
static void measure(struct client *c)
{
	char buf[65536];
	off_t off = 0;
	int at_line_start = 1;

	c->wire_size = 0;
	c->has_8bit = 0;
	while (off < c->job->msgsize) {
		ssize_t n = pread(c->job->msgfd, buf, sizeof buf, off);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)buf[i];
			if (ch == '\r')
				continue;	/* send_body drops it */
			c->wire_size += 1 + (ch == '\n') + (at_line_start && ch == '.');
			c->has_8bit |= ch >= 0x80;
			at_line_start = ch == '\n';
		}
		off += n;
	}
}

static void set_all(struct smtpc_job *job, const struct reply *r, int only_accepted)
{
	for (int i = 0; i < job->nrcpt; i++) {
		if (only_accepted && job->rcpts[i].code / 100 != 2)
			continue;
		job->rcpts[i].code = r->code;
		snprintf(job->rcpts[i].text, sizeof job->rcpts[i].text, "%s", r->text);
	}
}

static void send_mail(struct client *c)
{
	char params[64] = "";

	if (c->size_ok)
		snprintf(params, sizeof params, " SIZE=%llu", c->wire_size);
	/* RFC 6152: announce 8-bit content to a server that takes it */
	if (c->eightbit && c->has_8bit)
		snprintf(params + strlen(params), sizeof params - strlen(params), " BODY=8BITMIME");
	send_line(c, "MAIL FROM:<%s>%s", c->job->sender, params);
}

/* The session ends here as a temporary failure: this host, not the
 * recipients, failed.  No QUIT: the server may be anywhere in its dialogue. */
static void fail(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct client *c, const char *fmt, ...)
{
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->job->error, sizeof c->job->error, fmt, ap);
		va_end(ap);
	}
	c->outcome = SMTPC_TEMP;
	c->state = ST_END;
}

/* Enter a state: send what it sends (nothing when the command already went
 * in a pipelined batch).  The reply to it goes to on_reply. */
static void enter_state(struct client *c, enum state st)
{
	struct smtpc_job *job = c->job;

	c->state = st;
	switch (st) {
	case ST_GREETING:
	case ST_END:
		break;
	case ST_EHLO:
		send_line(c, "EHLO %s", job->helo);
		break;
	case ST_HELO:
		/* an old server: plain SMTP, no extensions */
		c->pipelining = c->eightbit = c->size_ok = 0;
		send_line(c, "HELO %s", job->helo);
		break;
	case ST_MAIL:
		measure(c);
		if (c->size_limit && c->wire_size > c->size_limit) {
			/* RFC 1870: the server said it would refuse it; do not send it */
			struct reply r = { .code = 552 };
			snprintf(r.text, sizeof r.text, "552 5.3.4 message larger than the server's SIZE limit %llu",
				 c->size_limit);
			set_all(job, &r, 0);
			enter_state(c, ST_QUIT);
			return;
		}
		send_mail(c);
		/* RFC 2920: MAIL, every RCPT and DATA in one write; the replies
		 * are then taken in order, by the same states */
		c->pipelined = c->pipelining;
		if (c->pipelined) {
			for (int i = 0; i < job->nrcpt; i++)
				send_line(c, "RCPT TO:<%s>", job->rcpts[i].address);
			send_line(c, "DATA");
		}
		break;
	case ST_RCPT:
		if (!c->pipelined)
			send_line(c, "RCPT TO:<%s>", job->rcpts[c->rcpt].address);
		break;
	case ST_DATA:
		if (!c->pipelined)
			send_line(c, "DATA");
		break;
	case ST_EMPTY_DOT:
		lineio_write(&c->io, ".\r\n", 3);
		break;
	case ST_BODY:
		if (send_body(c) == -1)
			fail(c, NULL);
		break;
	case ST_QUIT:
		send_line(c, "QUIT");
		break;
	}
}

/* Whether the first word after the code ("250-name ..." or "250 name")
 * is name; never when name is NULL. */
static int greets_as(const struct reply *r, const char *name)
{
	const char *word = strlen(r->first) > 4 ? r->first + 4 : "";
	size_t len = strcspn(word, " ");

	return name && name[0] && len == strlen(name) && strncasecmp(word, name, len) == 0;
}

/* A reply in a state: decide, and enter the next state. */
static void on_reply(struct client *c, const struct reply *r)
{
	struct smtpc_job *job = c->job;
	int class = r->code / 100;

	switch (c->state) {
	case ST_GREETING:
		if (class == 2)
			enter_state(c, ST_EHLO);
		else
			fail(c, "greeting: %s", r->text);
		break;
	case ST_EHLO:
	case ST_HELO:
		if (class == 2 && greets_as(r, job->self)) {
			/* Postfix's check: a server that answers EHLO with our own
			 * name is this host (a 127/8 address, a NAT), and what it
			 * takes comes back to this queue */
			fail(c, "mail loops back to myself: the server greets as %s", job->self);
		} else if (class == 2) {
			enter_state(c, ST_MAIL);
		} else if (class == 5 && c->state == ST_EHLO) {
			enter_state(c, ST_HELO);
		} else {
			fail(c, "EHLO/HELO: %s", r->text);
		}
		break;
	case ST_MAIL:
		c->mail = *r;
		c->rcpt = 0;
		if (class != 2 && !c->pipelined) {
			set_all(job, r, 0);
			enter_state(c, ST_QUIT);
		} else {
			enter_state(c, ST_RCPT);
		}
		break;
	case ST_RCPT:
		job->rcpts[c->rcpt].code = r->code;
		snprintf(job->rcpts[c->rcpt].text, sizeof job->rcpts[c->rcpt].text, "%s", r->text);
		c->accepted += class == 2;
		if (++c->rcpt < job->nrcpt)
			enter_state(c, ST_RCPT);
		else if (c->accepted == 0 && !c->pipelined)
			enter_state(c, ST_QUIT);
		else
			enter_state(c, ST_DATA);
		break;
	case ST_DATA:
		if (c->pipelined && (c->mail.code / 100 != 2 || c->accepted == 0)) {
			/* RFC 2920 3.1: DATA was accepted although MAIL or every
			 * RCPT was not; end the empty message, or QUIT would be
			 * taken as its text */
			if (c->mail.code / 100 != 2)
				set_all(job, &c->mail, 0);
			c->accepted = 0;
			enter_state(c, r->code == 354 ? ST_EMPTY_DOT : ST_QUIT);
		} else if (r->code == 354) {
			enter_state(c, ST_BODY);
		} else if (class == 4 || class == 5) {
			set_all(job, r, 1);
			enter_state(c, ST_QUIT);
		} else {
			/* RFC 5321 4.3.2: DATA is answered 354 or an error.  A server
			 * that says 250 has not taken the text we did not send:
			 * nothing is recorded as sent, and no QUIT goes into what
			 * it may take for the text. */
			fail(c, "protocol error: DATA answered \"%s\", not 354", r->text);
		}
		break;
	case ST_BODY:
		set_all(job, r, 1);
		enter_state(c, ST_QUIT);
		break;
	case ST_EMPTY_DOT:
		enter_state(c, ST_QUIT);
		break;
	case ST_QUIT:
	case ST_END:
		c->state = ST_END;
		break;
	}
}

/* How long the reply of a state may take. */
static long long reply_timeout(const struct client *c)
{
	switch (c->state) {
	case ST_BODY:
		return c->job->timeout * 2;	/* RFC 5321 4.5.3.2.6: the end of data may take a while */
	case ST_QUIT:
		return 5;			/* nothing depends on it */
	default:
		return c->job->timeout;
	}
}

enum smtpc_outcome smtpc_run(struct smtpc_job *job)
{
	static struct client c;
	struct reply r;

	memset(&c, 0, sizeof c);
	c.job = job;
	c.outcome = SMTPC_DONE;
	job->error[0] = '\0';
	for (int i = 0; i < job->nrcpt; i++) {
		job->rcpts[i].code = 0;
		job->rcpts[i].text[0] = '\0';
	}
	lineio_init(&c.io, job->fd, job->fd, 1, job->timeout);
	enter_state(&c, ST_GREETING);
	while (c.state != ST_END) {
		/* every recipient has its answer by then: a failure is no failure */
		int quitting = c.state == ST_QUIT || c.state == ST_EMPTY_DOT;
		if (flush(&c) == -1 || read_reply(&c, &r, reply_timeout(&c), c.state == ST_EHLO) == -1) {
			if (quitting)
				break;
			fail(&c, NULL);
			break;
		}
		on_reply(&c, &r);
	}
	return c.outcome;
}
