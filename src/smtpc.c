/* smtpc: outbound SMTP as a state machine (enter_state sends, on_reply
 * decides), with a bounded multi-line reply parser, STARTTLS and AUTH. */
#include "smtpc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
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
 * on_reply() decides).  TLS and AUTH are states between EHLO and MAIL,
 * entered from after_ehlo() when the EHLO reply offers them. */
enum state {
	ST_GREETING,	/* the server speaks first */
	ST_EHLO,
	ST_HELO,	/* EHLO got a 5xx */
	ST_STARTTLS,	/* its 220, then the handshake and EHLO again */
	ST_AUTH_PLAIN,	/* AUTH PLAIN with the initial response */
	ST_AUTH_LOGIN,	/* AUTH LOGIN: 334, then the name */
	ST_AUTH_USER,	/* the name went: 334, then the password */
	ST_AUTH_PASS,	/* the password went: 235 */
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
	int starttls;			/* offered by the last EHLO reply */
	int auth_plain, auth_login;	/* mechanisms the last EHLO reply offered */
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

/* "AUTH PLAIN LOGIN ..." (or the old "AUTH=PLAIN LOGIN"): the mechanisms we speak. */
static void note_auth(struct client *c, const char *mechs)
{
	char word[32];

	while (*mechs) {
		size_t len = strcspn(mechs, " ");
		if (len > 0 && len < sizeof word) {
			memcpy(word, mechs, len);
			word[len] = '\0';
			c->auth_plain |= strcasecmp(word, "PLAIN") == 0;
			c->auth_login |= strcasecmp(word, "LOGIN") == 0;
		}
		mechs += len;
		mechs += strspn(mechs, " ");
	}
}

/* EHLO keywords we use; lines after the first are "250-KEYWORD params". */
static void note_extension(struct client *c, const char *kw)
{
	if (strcasecmp(kw, "STARTTLS") == 0)
		c->starttls = 1;
	else if (strncasecmp(kw, "AUTH", 4) == 0 && (kw[4] == ' ' || kw[4] == '='))
		note_auth(c, kw + 5);
	else if (strcasecmp(kw, "PIPELINING") == 0)
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

/* One command line.  shown: what --verbose logs instead of the line
 * (credentials), NULL for the line itself. */
static void send_vline(struct client *c, const char *shown, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void send_vline(struct client *c, const char *shown, const char *fmt, va_list ap)
{
	char line[SMTPC_LINE_MAX];
	int n = vsnprintf(line, sizeof line - 2, fmt, ap);

	if (n < 0 || (size_t)n > sizeof line - 3)
		n = (int)(sizeof line - 3);
	if (c->job->verbose)
		log_msg(LOG_DEBUG, "> %.*s", shown ? (int)strlen(shown) : n, shown ? shown : line);
	line[n++] = '\r';
	line[n++] = '\n';
	c->io.timeout_ms = (int)(c->job->timeout * 1000);
	lineio_write(&c->io, line, (size_t)n);
	explicit_bzero(line, sizeof line);
}

static void send_line(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(struct client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_vline(c, NULL, fmt, ap);
	va_end(ap);
}

static void send_secret(struct client *c, const char *shown, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void send_secret(struct client *c, const char *shown, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_vline(c, shown, fmt, ap);
	va_end(ap);
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
 * for as long as it liked.  Through the connection, plain or TLS: the
 * socket is non-blocking, so a write never waits past the deadline. */
static int send_until(struct client *c, const char *buf, size_t len, long long deadline)
{
	size_t done = 0;

	while (done < len) {
		long long left = deadline - clock_ms();
		int pr = left > 0 ? conn_wait(c->io.conn, 1, (int)left) : 0;
		if (pr <= 0) {
			snprintf(c->job->error, sizeof c->job->error, "%s",
				 pr == 0 ? "timeout sending the message" : "cannot send to the server");
			return -1;
		}
		ssize_t n = conn_write(c->io.conn, buf + done, len - done);
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

/* The RFC 3463 code of a failure that is not the network's (TLS, AUTH),
 * set before fail(). */
static void set_status(struct client *c, const char *status)
{
	snprintf(c->job->status, sizeof c->job->status, "%s", status);
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

/* RFC 4648 base64 of in[0..len) into out, NUL-terminated; -1 when it
 * does not fit. */
static int base64(const unsigned char *in, size_t len, char *out, size_t outsz)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	if (outsz < 4 * ((len + 2) / 3) + 1)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = digits[(v >> 18) & 63];
		out[o++] = digits[(v >> 12) & 63];
		out[o++] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? digits[v & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}

#define SMTPC_B64_MAX (4 * ((2 * SMTPC_CRED_MAX + 2 + 2) / 3) + 1)

/* AUTH PLAIN's initial response (RFC 4616): "" NUL name NUL password, no
 * authorisation identity of its own. */
static void send_auth_plain(struct client *c)
{
	const struct smtpc_job *job = c->job;
	unsigned char msg[2 * SMTPC_CRED_MAX + 2];
	char b64[SMTPC_B64_MAX];
	size_t ul = strlen(job->auth_user), pl = strlen(job->auth_pass);

	if (ul > SMTPC_CRED_MAX || pl > SMTPC_CRED_MAX) {
		fail(c, "AUTH credentials too long");
		return;
	}
	msg[0] = '\0';
	memcpy(msg + 1, job->auth_user, ul);
	msg[1 + ul] = '\0';
	memcpy(msg + 2 + ul, job->auth_pass, pl);
	if (base64(msg, ul + pl + 2, b64, sizeof b64) == 0)
		send_secret(c, "AUTH PLAIN (credentials not shown)", "AUTH PLAIN %s", b64);
	explicit_bzero(msg, sizeof msg);
	explicit_bzero(b64, sizeof b64);
}

/* One answer of AUTH LOGIN: the name or the password, encoded. */
static void send_auth_word(struct client *c, const char *word, const char *shown)
{
	char b64[SMTPC_B64_MAX];

	if (base64((const unsigned char *)word, strlen(word), b64, sizeof b64) == -1) {
		fail(c, "AUTH credentials too long");
		return;
	}
	send_secret(c, shown, "%s", b64);
	explicit_bzero(b64, sizeof b64);
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
		c->pipelining = c->eightbit = c->size_ok = c->starttls = c->auth_plain = c->auth_login = 0;
		send_line(c, "HELO %s", job->helo);
		break;
	case ST_STARTTLS:
		send_line(c, "STARTTLS");
		break;
	case ST_AUTH_PLAIN:
		send_auth_plain(c);
		break;
	case ST_AUTH_LOGIN:
		send_line(c, "AUTH LOGIN");
		break;
	case ST_AUTH_USER:
		send_auth_word(c, job->auth_user, "(user name not shown)");
		break;
	case ST_AUTH_PASS:
		send_auth_word(c, job->auth_pass, "(password not shown)");
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

/* The handshake on the connection (STARTTLS's 220, or implicit TLS).
 * On failure the connection is spent: no QUIT, nothing more in clear. */
static int handshake(struct client *c)
{
	struct smtpc_job *job = c->job;
	char why[TLS_WHY_MAX];

	if (!job->tls) {
		set_status(c, "4.7.5");
		fail(c, "TLS is required and no TLS context could be made");
		return -1;
	}
	if (tls_start(c->io.conn, job->tls, job->tls_name, (int)(job->timeout * 1000), why, sizeof why) == -1) {
		job->tls_failed = 1;
		set_status(c, "4.7.5");
		fail(c, "%s", why);
		return -1;
	}
	tls_describe(c->io.conn, job->tls_info, sizeof job->tls_info);
	return 0;
}

/* STARTTLS got 220 (RFC 3207 4.2): shake hands, forget what the server
 * said in clear, and start again with EHLO. */
static void start_tls(struct client *c)
{
	/* whatever came after the 220 was sent in clear, and would be read
	 * as if it had come inside TLS (CVE-2011-0411, the client's side) */
	if (lineio_pending(&c->io) > 0) {
		c->job->tls_failed = 1;
		set_status(c, "4.7.5");
		fail(c, "the server sent more after its 220 to STARTTLS");
		return;
	}
	if (handshake(c) == -1)
		return;
	c->pipelining = c->eightbit = c->size_ok = c->starttls = c->auth_plain = c->auth_login = 0;
	c->size_limit = 0;
	enter_state(c, ST_EHLO);
}

/* What follows a 2xx to EHLO or HELO: STARTTLS, AUTH, or the mail. */
static void after_ehlo(struct client *c)
{
	const struct smtpc_job *job = c->job;
	int tls = tls_active(c->io.conn);

	if (!tls && job->tls && job->tls_mode != SMTPC_TLS_NONE && c->starttls) {
		enter_state(c, ST_STARTTLS);
	} else if (!tls && job->tls_mode >= SMTPC_TLS_REQUIRE) {
		set_status(c, "4.7.4");
		fail(c, "TLS is required and the server does not offer STARTTLS");
	} else if (job->auth_user && !job->authenticated && tls && (c->auth_plain || c->auth_login)) {
		enter_state(c, c->auth_plain ? ST_AUTH_PLAIN : ST_AUTH_LOGIN);
	} else if (job->auth_user && !job->authenticated) {
		set_status(c, "4.7.4");
		fail(c, "%s", tls ? "the server offers no AUTH PLAIN or LOGIN" : "AUTH is only sent inside TLS");
	} else {
		enter_state(c, ST_MAIL);
	}
}

/* The replies of STARTTLS and AUTH. */
static void on_tls_auth_reply(struct client *c, const struct reply *r)
{
	struct smtpc_job *job = c->job;

	switch (c->state) {
	case ST_STARTTLS:
		if (r->code == 220) {
			start_tls(c);
		} else if (job->tls_mode == SMTPC_TLS_MAY) {
			c->starttls = 0;	/* refused: on in clear, as without it */
			after_ehlo(c);
		} else {
			set_status(c, "4.7.4");
			fail(c, "STARTTLS refused: %s", r->text);
		}
		break;
	case ST_AUTH_LOGIN:
	case ST_AUTH_USER:
		if (r->code == 334) {
			enter_state(c, c->state == ST_AUTH_LOGIN ? ST_AUTH_USER : ST_AUTH_PASS);
			break;
		}
		set_status(c, "4.7.8");
		fail(c, "AUTH LOGIN refused: %s", r->text);
		break;
	default:	/* ST_AUTH_PLAIN, ST_AUTH_PASS */
		if (r->code == 235) {
			job->authenticated = 1;
			enter_state(c, ST_MAIL);
			break;
		}
		/* RFC 4954 5.7.8 is the server's word on these credentials,
		 * but a smarthost may be wrong for a while: the mail waits */
		set_status(c, "4.7.8");
		fail(c, "AUTH %s refused: %s", c->state == ST_AUTH_PLAIN ? "PLAIN" : "LOGIN", r->text);
		break;
	}
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
			after_ehlo(c);
		} else if (class == 5 && c->state == ST_EHLO) {
			enter_state(c, ST_HELO);
		} else {
			fail(c, "EHLO/HELO: %s", r->text);
		}
		break;
	case ST_STARTTLS:
	case ST_AUTH_PLAIN:
	case ST_AUTH_LOGIN:
	case ST_AUTH_USER:
	case ST_AUTH_PASS:
		on_tls_auth_reply(c, r);
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
	job->status[0] = '\0';
	job->tls_info[0] = '\0';
	job->tls_failed = 0;
	job->authenticated = 0;
	for (int i = 0; i < job->nrcpt; i++) {
		job->rcpts[i].code = 0;
		job->rcpts[i].text[0] = '\0';
	}
	lineio_init(&c.io, job->fd, job->fd, 1, job->timeout);
	enter_state(&c, ST_GREETING);
	/* RFC 8314: TLS from the first octet, the greeting inside it */
	if (job->tls_mode == SMTPC_TLS_IMPLICIT)
		handshake(&c);
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
	if (tls_active(c.io.conn)) {
		/* close_notify after QUIT; the caller closes the socket */
		if (c.outcome == SMTPC_DONE)
			conn_shutdown(c.io.conn);
		tls_end(c.io.conn);
	}
	return c.outcome;
}
