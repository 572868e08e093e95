/* session: SMTP verbs and states; the transaction is asked through privsep. */
#include "session.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "addr.h"
#include "lineio.h"
#include "log.h"
#include "privsep.h"
#include "queue.h"
#include "reply.h"
#include "sasl.h"
#include "tls.h"
#include "version.h"

#define COMMAND_LINE_MAX 512	/* RFC 5321 4.5.3.1.4, CRLF included */

enum state { S_GREET = 1, S_HELO = 2, S_MAIL = 4, S_RCPT = 8 };
#define S_ANY (S_GREET | S_HELO | S_MAIL | S_RCPT)

struct session {
	const struct config *cfg;
	const struct peer *peer;
	struct replier r;
	enum state state;
	int esmtp;
	int quit;
	int authenticated;		/* the monitor accepted an AUTH */
	struct tls_ctx *tls_ctx;	/* STARTTLS offered with it, or NULL */
	char tls[TLS_DESCRIBE_MAX];	/* "TLSv1.3 ...": inside TLS, else "" */
	char helo[TXN_HELO_MAX + 1];	/* printable copy of the client's name */
	struct ps_link link;		/* to the transaction, in the monitor */
	/* the transaction, as far as the protocol needs it */
	unsigned long long declared_size;
	long long nrcpt;		/* accepted RCPT commands */
	long long overshoot;		/* RCPTs refused for the limit */
	long long junk;			/* junk commands since the last accepted message */
	int rcpt_tried;			/* some RCPT was given, accepted or not */
	char sender[ADDR_MAILBOX_MAX + 1];	/* for the log of a refused message */
	char qid[QUEUE_ID_MAX];
	int spool_fd;			/* the monitor's spool file for this message */
	struct lineio io;		/* last: its buffers are not cleared (see session_run) */
};

struct command {
	const char *verb;
	void (*handler)(struct session *s, const char *arg);
	int states;
	int junk;		/* moves no mail: past --junk-commands, an error */
};

static void reset_transaction(struct session *s)
{
	s->declared_size = 0;
	s->nrcpt = 0;
	s->overshoot = 0;
	s->rcpt_tried = 0;
	s->sender[0] = '\0';
	if (s->state != S_GREET)
		s->state = S_HELO;
}

/* The monitor's answer, as the reply to the client; a broken link ends the session. */
static void reply_status(struct session *s, const struct status *st)
{
	reply(&s->r, st->code, st->enhanced[0] ? st->enhanced : NULL, "%s", st->text);
	if (st->code == 421)
		s->quit = 1;
}

static int cmd_helo_common(struct session *s, const char *arg, int esmtp)
{
	if (!*arg) {
		reply(&s->r, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return -1;
	}
	/* RFC 5321 4.1.4: a new HELO/EHLO resets any transaction */
	log_printable(s->helo, sizeof s->helo, arg, strcspn(arg, " "));
	s->esmtp = esmtp;
	s->state = S_HELO;
	reset_transaction(s);
	return 0;
}

static void cmd_helo(struct session *s, const char *arg)
{
	if (cmd_helo_common(s, arg, 0) == 0)
		reply(&s->r, 250, NULL, "%s", s->cfg->hostname);
}

/* RFC 4954 14: AUTH only where the password cannot be read off the wire:
 * inside TLS, or on a connection that never left this host. */
static int auth_offered(const struct session *s)
{
	return s->cfg->passwd && (s->tls[0] || s->peer->local_class);
}

static void cmd_ehlo(struct session *s, const char *arg)
{
	char first[300], size[48];

	if (cmd_helo_common(s, arg, 1) == -1)
		return;
	snprintf(first, sizeof first, "%s Hello %s [%s]", s->cfg->hostname, s->helo, s->peer->addr);
	snprintf(size, sizeof size, "SIZE %lld", s->cfg->max_size);
	const char *lines[7] = { first, "PIPELINING", size, "8BITMIME", "ENHANCEDSTATUSCODES" };
	int n = 5;
	if (s->tls_ctx && !s->tls[0])
		lines[n++] = "STARTTLS";
	if (auth_offered(s))
		lines[n++] = "AUTH PLAIN LOGIN";
	reply_lines(&s->r, 250, NULL, lines, n);
}

/* STARTTLS and AUTH come once, between transactions: 1 when refused
 * (the reply is sent). */
static int refused_mid_session(struct session *s)
{
	if (s->authenticated)
		reply(&s->r, 503, "5.5.1", "Error: already authenticated");
	else if (s->state & (S_MAIL | S_RCPT))
		reply(&s->r, 503, "5.5.1", "Error: MAIL transaction in progress");
	else
		return 0;
	return 1;
}

/* The handshake on the client's connection, after a 220 (STARTTLS) or
 * before anything (--smtps).  0, or -1: the stream is spent, the session
 * ends without another word. */
static int start_tls(struct session *s)
{
	char why[TLS_WHY_MAX];

	/* CVE-2011-0411: what the client pipelined in clear after STARTTLS
	 * is dropped, never read as if it had come inside TLS */
	lineio_discard_input(&s->io);
	if (tls_start(s->io.conn, s->tls_ctx, NULL, (int)s->cfg->timeout * 1000, why, sizeof why) == -1) {
		char peer[2 * PEER_ADDR_MAX + 3];
		log_msg(LOG_NOTICE, "TLS handshake with %s failed: %s", log_value(peer, sizeof peer, s->peer->addr),
			why);
		s->quit = 1;
		return -1;
	}
	/* the client's Finished is read and its ACK delayed; a client that
	 * sends EHLO right after it (Nagle holding it for that ACK) would
	 * wait 40 ms: acknowledge now */
	int on = 1;
	(void)setsockopt(s->io.conn->in_fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
	/* the handshake's temporaries are freed: their pages, copies of the
	 * acceptor's (listen.h), go back rather than stay for the session */
	malloc_trim(0);
	tls_describe(s->io.conn, s->tls, sizeof s->tls);
	if (log_verbose())
		log_msg(LOG_DEBUG, "TLS: %s", s->tls);
	return 0;
}

static void cmd_starttls(struct session *s, const char *arg)
{
	if (*arg) {
		reply(&s->r, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (!s->tls_ctx) {
		reply(&s->r, 502, "5.5.1", "Error: command not implemented");
		return;
	}
	if (s->tls[0]) {
		reply(&s->r, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	/* after AUTH, RFC 3207 4.2 would have it forgotten: simpler not to start */
	if (refused_mid_session(s))
		return;
	reply(&s->r, 220, "2.0.0", "Ready to start TLS");
	if (lineio_flush(&s->io) == -1 || start_tls(s) == -1) {
		s->quit = 1;
		return;
	}
	/* RFC 3207 4.2: all that was learnt before is forgotten; EHLO again */
	reset_transaction(s);
	s->state = S_GREET;
	s->esmtp = 0;
	s->helo[0] = '\0';
}

/* One response of the AUTH dialogue after a 334 challenge, decoded into
 * out: its length, or -1 when the exchange ends here (the reply is sent). */
static long auth_response(struct session *s, const char *challenge, unsigned char *out, size_t outsz)
{
	char line[SASL_RESPONSE_MAX + 3];
	size_t len;
	long n;

	reply_uncounted(&s->r, 334, NULL, "%s", challenge);
	enum line_status st = lineio_getline(&s->io, line, sizeof line, &len);
	if (st == LINE_TOOLONG) {
		reply(&s->r, 500, "5.5.6", "Authentication exchange line is too long");
		return -1;
	}
	if (st != LINE_OK) {
		s->quit = 1;
		return -1;
	}
	if (strcmp(line, "*") == 0) {
		reply(&s->r, 501, "5.7.0", "Authentication aborted");
		return -1;
	}
	n = sasl_b64_decode(line, out, outsz);
	explicit_bzero(line, sizeof line);
	if (n < 0)
		reply(&s->r, 501, "5.5.2", "Cannot decode response");
	return n;
}

/* The initial response on the AUTH line ("=" is an empty one), or one
 * asked for with an empty challenge. */
static long auth_first(struct session *s, const char *initial, const char *challenge, unsigned char *out,
		       size_t outsz)
{
	long n;

	if (!*initial)
		return auth_response(s, challenge, out, outsz);
	if (strcmp(initial, "=") == 0)
		return 0;
	if ((n = sasl_b64_decode(initial, out, outsz)) < 0)
		reply(&s->r, 501, "5.5.2", "Cannot decode response");
	return n;
}

/* PLAIN or LOGIN into user and password: 0, or -1 when replied to. */
static int auth_exchange(struct session *s, const char *mech, const char *initial, char *user, char *pass)
{
	unsigned char msg[3 * (SASL_NAME_MAX + 1)];
	const char *why = NULL;
	long n;
	int rc = -1;

	if (strcasecmp(mech, "PLAIN") == 0) {
		if ((n = auth_first(s, initial, "", msg, sizeof msg)) >= 0 &&
		    (rc = sasl_plain_split(msg, (size_t)n, user, pass, &why)) == -1)
			reply(&s->r, 501, "5.5.2", "Bad PLAIN response: %s", why);
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		/* the challenges are "Username:" and "Password:", in base64 */
		if ((n = auth_first(s, initial, "VXNlcm5hbWU6", msg, sizeof msg)) >= 0 &&
		    sasl_login_value(msg, (size_t)n, user, SASL_NAME_MAX + 1, &why) == 0 &&
		    (n = auth_response(s, "UGFzc3dvcmQ6", msg, sizeof msg)) >= 0 &&
		    sasl_login_value(msg, (size_t)n, pass, SASL_SECRET_MAX + 1, &why) == 0)
			rc = 0;
		else if (why)
			reply(&s->r, 501, "5.5.2", "Bad LOGIN response: %s", why);
	} else {
		reply(&s->r, 504, "5.5.4", "Unrecognized authentication type");
	}
	explicit_bzero(msg, sizeof msg);
	return rc;
}

static void cmd_auth(struct session *s, const char *arg)
{
	char mech[32], user[SASL_NAME_MAX + 1], pass[SASL_SECRET_MAX + 1];
	const char *initial;
	size_t mlen = strcspn(arg, " ");

	if (!s->cfg->passwd) {
		reply(&s->r, 502, "5.5.1", "Error: authentication not enabled");
		return;
	}
	if (!auth_offered(s)) {
		reply(&s->r, 538, "5.7.11", "Encryption required for requested authentication mechanism");
		return;
	}
	if (!s->esmtp) {
		reply(&s->r, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (refused_mid_session(s))
		return;
	if (mlen == 0 || mlen >= sizeof mech) {
		reply(&s->r, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	snprintf(mech, sizeof mech, "%.*s", (int)mlen, arg);
	for (initial = arg + mlen; *initial == ' '; initial++)
		;
	if (auth_exchange(s, mech, initial, user, pass) == 0) {
		/* the check is the monitor's: this process only decoded */
		struct ps_request req = { .op = PS_AUTH };
		struct ps_reply rep;
		snprintf(req.arg, sizeof req.arg, "%s", user);
		snprintf(req.secret, sizeof req.secret, "%s", pass);
		ps_call(&s->link, &req, &rep, NULL);
		explicit_bzero(&req, sizeof req);
		reply_status(s, &rep.st);
		s->authenticated = rep.st.kind == STATUS_OK;
	}
	explicit_bzero(user, sizeof user);
	explicit_bzero(pass, sizeof pass);
}

/* "FROM:" or "TO:" in front of the path, in any case. */
static const char *after_keyword(const char *arg, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(arg, kw, n) != 0)
		return NULL;
	return arg + n;
}

/* RFC 1870 size-value = 1*20DIGIT: strtoull alone would take "+5", " 5" or "-5". */
static int all_digits(const char *v)
{
	if (!*v)
		return 0;
	for (; *v; v++)
		if (*v < '0' || *v > '9')
			return 0;
	return 1;
}

static int mail_params(struct session *s, const char *params)
{
	char key[32], value[64];
	int rc, seen_size = 0, seen_body = 0;

	while ((rc = addr_next_param(&params, key, sizeof key, value, sizeof value)) == 1) {
		if (!s->esmtp) {
			/* RFC 1869: parameters only after EHLO */
			reply(&s->r, 555, "5.5.4", "Parameters not allowed after HELO");
			return -1;
		}
		if (strcasecmp(key, "SIZE") == 0) {
			char *end;
			/* RFC 5321 4.1.2: a parameter is given once; two SIZEs
			 * leave it open which one a later check believes */
			if (seen_size++) {
				reply(&s->r, 501, "5.5.4", "Duplicate SIZE parameter");
				return -1;
			}
			errno = 0;
			unsigned long long n = strtoull(value, &end, 10);
			if (!all_digits(value) || *end || errno) {
				reply(&s->r, 501, "5.5.4", "Bad SIZE parameter");
				return -1;
			}
			if (n > (unsigned long long)s->cfg->max_size) {
				reply(&s->r, 552, "5.3.4", "Message size exceeds fixed limit");
				return -1;
			}
			s->declared_size = n;
		} else if (strcasecmp(key, "BODY") == 0) {
			if (seen_body++) {
				reply(&s->r, 501, "5.5.4", "Duplicate BODY parameter");
				return -1;
			}
			if (strcasecmp(value, "7BIT") != 0 && strcasecmp(value, "8BITMIME") != 0) {
				reply(&s->r, 501, "5.5.4", "BODY must be 7BIT or 8BITMIME");
				return -1;
			}
		} else {
			reply(&s->r, 555, "5.5.4", "Unsupported parameter %s", key);
			return -1;
		}
	}
	if (rc == -1) {
		reply(&s->r, 501, "5.5.4", "Bad parameter syntax");
		return -1;
	}
	return 0;
}

static void cmd_mail(struct session *s, const char *arg)
{
	const char *path = after_keyword(arg, "FROM:"), *params, *why;
	struct mailaddr a;

	if (s->cfg->submission && !s->authenticated) {
		reply(&s->r, 530, "5.7.0", "Authentication required");
		return;
	}
	if (!path) {
		reply(&s->r, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	if (addr_parse_path(path, &a, &params, &why) != ADDR_OK) {
		reply(&s->r, 501, "5.1.7", "Bad sender address syntax: %s", why);
		return;
	}
	/* RFC 5321 4.1.2: a Mailbox has a domain.  An unqualified sender is
	 * refused rather than completed: it would go into Return-Path and the
	 * queue, and a bounce to it could reach nobody.  A person at a
	 * terminal gets the same rule (one rule for every input). */
	if (!a.null && !a.domain[0]) {
		reply(&s->r, 501, "5.1.7", "Bad sender address syntax: no domain (use user@domain)");
		return;
	}
	if (mail_params(s, params) == -1)
		return;
	/* told to the monitor, not asked (privsep.h): the answer is ours,
	 * unless the monitor is gone */
	struct ps_request req = { .op = PS_MAIL, .esmtp = (uint32_t)s->esmtp };
	struct ps_reply rep;
	status_set(&rep.st, 250, "2.1.0", 0, "Ok");
	snprintf(req.arg, sizeof req.arg, "%s", a.mailbox);
	snprintf(req.helo, sizeof req.helo, "%s", s->helo);
	snprintf(req.tls, sizeof req.tls, "%s", s->tls);
	ps_call(&s->link, &req, &rep, NULL);
	reply_status(s, &rep.st);
	if (rep.st.kind == STATUS_OK) {
		snprintf(s->sender, sizeof s->sender, "%s", a.mailbox);
		s->state = S_MAIL;
	}
}

static void cmd_rcpt(struct session *s, const char *arg)
{
	const char *path = after_keyword(arg, "TO:"), *params, *why;
	struct mailaddr a;
	struct ps_request req = { .op = PS_RCPT };
	struct ps_reply rep;

	if (!path) {
		reply(&s->r, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return;
	}
	s->rcpt_tried = 1;
	if (addr_parse_path(path, &a, &params, &why) != ADDR_OK || a.null) {
		reply(&s->r, 501, "5.1.3", "Bad recipient address syntax: %s", a.null ? "empty address" : why);
		return;
	}
	if (*params) {
		reply(&s->r, 555, "5.5.4", "Unsupported parameter");
		return;
	}
	if (s->nrcpt >= s->cfg->max_recipients) {
		/* Postfix's recipient overshoot: a client sending a big list
		 * is not misbehaving until it overshoots by far */
		if (++s->overshoot > s->cfg->rcpt_overshoot)
			reply(&s->r, 452, "4.5.3", "Too many recipients");
		else
			reply_uncounted(&s->r, 452, "4.5.3", "Too many recipients");
		return;
	}
	/* resolution and relay policy are the monitor's (txn.c) */
	snprintf(req.arg, sizeof req.arg, "%s", a.mailbox);
	ps_call(&s->link, &req, &rep, NULL);
	reply_status(s, &rep.st);
	if (rep.st.kind == STATUS_OK) {
		s->nrcpt++;
		s->state = S_RCPT;
	}
}

/* After the final dot: the monitor delivers and queues, then we answer once. */
static void finish_message(struct session *s, const struct data_result *dr)
{
	struct ps_request req = { .op = PS_DOT, .size = dr->size };
	struct ps_reply rep;

	ps_call(&s->link, &req, &rep, NULL);
	reply_status(s, &rep.st);
}

/* A message refused at its end leaves no other trace: the queue id ties
 * the log to what the client was told. */
static void log_refusal(const struct session *s, int priority, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void log_refusal(const struct session *s, int priority, int code, const char *fmt, ...)
{
	char f_id[64], f_peer[PEER_ADDR_MAX + 32];
	char why[256], reason[2 * sizeof why + 3], from[2 * ADDR_MAILBOX_MAX + 3], peer[2 * PEER_ADDR_MAX + 3];
	const char *fields[] = { f_id, f_peer, "MAILSLOT_STATUS=refused", NULL };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(f_id, sizeof f_id, "MAILSLOT_QUEUE_ID=%s", s->qid);
	snprintf(f_peer, sizeof f_peer, "MAILSLOT_PEER=%s", s->peer->addr);
	log_fields(priority, fields, "%s: refused from=<%s> nrcpt=%lld peer=%s code=%d reason=%s", s->qid,
		   log_value(from, sizeof from, s->sender), s->nrcpt,
		   log_value(peer, sizeof peer, s->peer->addr), code, log_value(reason, sizeof reason, why));
}

static void cmd_data(struct session *s, const char *arg)
{
	struct data_result dr;
	struct ps_request req = { .op = PS_DATA };
	struct ps_reply rep;
	int fd;

	if (*arg) {
		reply(&s->r, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	/* the monitor names the message, writes its trace field and hands
	 * over the file: this process cannot open one */
	if (s->spool_fd != -1)
		close(s->spool_fd);
	ps_call(&s->link, &req, &rep, &s->spool_fd);
	snprintf(s->qid, sizeof s->qid, "%s", rep.qid);
	fd = s->spool_fd;
	if (rep.st.code == 354 && fd == -1)	/* never a 354 without the file */
		status_set(&rep.st, 451, "4.3.0", EBADF, "Temporary failure: cannot spool message");
	reply_status(s, &rep.st);
	if (rep.st.code != 354)
		return;
	lineio_read_data(&s->io, fd, (unsigned long long)s->cfg->max_size, &dr);
	if (dr.status == LINE_BARELF) {
		/* the reader stopped there: what follows is neither text nor
		 * commands, so the connection ends (session_run drains it) */
		reply(&s->r, 521, "5.5.2", "%s Error: bare <CR> or <LF> received; lines must end in CRLF",
		      s->cfg->hostname);
		log_refusal(s, LOG_NOTICE, 521, "bare CR or LF in the message, connection closed");
		s->quit = 1;
		return;
	}
	if (dr.status != LINE_OK) {
		if (dr.status == LINE_TIMEOUT)
			reply(&s->r, 421, "4.4.2", "%s Error: timeout exceeded", s->cfg->hostname);
		char peer[2 * PEER_ADDR_MAX + 3];
		log_msg(LOG_INFO, "%s: connection lost during DATA from %s", s->qid,
			log_value(peer, sizeof peer, s->peer->addr));
		s->quit = 1;
		return;
	}
	if (dr.write_errno) {
		int full = dr.write_errno == ENOSPC;
		reply(&s->r, full ? 452 : 451, full ? "4.3.1" : "4.3.0", "%s",
		      full ? "Insufficient system storage" : "Cannot spool message");
		log_refusal(s, LOG_ERR, full ? 452 : 451, "cannot write the spool file in %s/tmp: %s", s->cfg->queue,
			    strerror(dr.write_errno));
	} else if (dr.too_big) {
		reply(&s->r, 552, "5.3.4", "Message size exceeds fixed limit");
		log_refusal(s, LOG_NOTICE, 552, "message over the size limit of %lld bytes", s->cfg->max_size);
	} else if (dr.long_line) {
		reply(&s->r, 554, "5.5.2", "Message has lines longer than %d characters", DATA_LINE_MAX);
		log_refusal(s, LOG_NOTICE, 554, "line longer than %d characters", DATA_LINE_MAX);
	} else if (dr.received_headers > s->cfg->max_received) {
		reply(&s->r, 554, "5.4.6", "Too many Received: headers: mail loop");
		log_refusal(s, LOG_NOTICE, 554, "mail loop: %u Received: fields", dr.received_headers);
	} else {
		long long errors = s->r.errors;
		finish_message(s, &dr);
		/* Postfix resets the junk count once mail is accepted: a client
		 * that delivers is not flooding (every refusal is an error) */
		if (s->r.errors == errors)
			s->junk = 0;
	}
	reset_transaction(s);
}

static void cmd_rset(struct session *s, const char *arg)
{
	if (*arg) {
		reply(&s->r, 501, "5.5.4", "Syntax: RSET");
		return;
	}
	reset_transaction(s);
	reply(&s->r, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct session *s, const char *arg)
{
	(void)arg;
	reply(&s->r, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct session *s, const char *arg)
{
	(void)arg;
	reply(&s->r, 221, "2.0.0", "%s closing connection", s->cfg->hostname);
	s->quit = 1;
}

/* RFC 5321 3.5.3: 252 says neither yes nor no, so no user list leaks */
static void cmd_vrfy(struct session *s, const char *arg)
{
	if (!*arg) {
		reply(&s->r, 501, "5.5.4", "Syntax: VRFY address");
		return;
	}
	reply(&s->r, 252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct session *s, const char *arg)
{
	(void)arg;
	reply(&s->r, 502, "5.5.1", "EXPN not available");
}

static void cmd_help(struct session *s, const char *arg)
{
	static const char *const lines[] = {
		"mailslot " MAILSLOT_VERSION ", RFC 5321",
		"Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
	};
	(void)arg;
	reply_lines(&s->r, 214, "2.0.0", lines, 2);
}

static void cmd_not_implemented(struct session *s, const char *arg)
{
	(void)arg;
	reply(&s->r, 502, "5.5.1", "Command not implemented");
}

/* The junk column follows Postfix (HELO, EHLO, RSET, NOOP, VRFY, ETRN),
 * plus HELP; EXPN and the verbs not offered are errors anyway. */
static const struct command commands[] = {
	{ "HELO", cmd_helo, S_ANY, 1 },
	{ "EHLO", cmd_ehlo, S_ANY, 1 },
	{ "MAIL", cmd_mail, S_HELO, 0 },
	{ "RCPT", cmd_rcpt, S_MAIL | S_RCPT, 0 },
	{ "DATA", cmd_data, S_RCPT, 0 },
	{ "RSET", cmd_rset, S_ANY, 1 },
	{ "NOOP", cmd_noop, S_ANY, 1 },
	{ "QUIT", cmd_quit, S_ANY, 0 },
	{ "VRFY", cmd_vrfy, S_ANY, 1 },
	{ "EXPN", cmd_expn, S_ANY, 0 },
	{ "HELP", cmd_help, S_ANY, 1 },
	/* known verbs this server does not offer */
	{ "TURN", cmd_not_implemented, S_ANY, 0 },
	{ "ETRN", cmd_not_implemented, S_ANY, 0 },
	{ "ATRN", cmd_not_implemented, S_ANY, 0 },
	{ "SEND", cmd_not_implemented, S_ANY, 0 },
	{ "SOML", cmd_not_implemented, S_ANY, 0 },
	{ "SAML", cmd_not_implemented, S_ANY, 0 },
	{ "BDAT", cmd_not_implemented, S_ANY, 0 },
	{ "AUTH", cmd_auth, S_ANY, 0 },
	{ "STARTTLS", cmd_starttls, S_ANY, 0 },
};

static void out_of_sequence(struct session *s, const struct command *c)
{
	const char *need = "Bad sequence of commands";

	if (s->state == S_GREET)
		need = "Send HELO/EHLO first";
	else if (c->handler == cmd_mail)
		need = "Nested MAIL command";
	else if (s->state == S_HELO)
		need = "Need MAIL command";
	else if (c->handler == cmd_data && s->rcpt_tried) {
		/* RFC 5321 3.3: every RCPT was rejected */
		reply(&s->r, 554, "5.5.1", "No valid recipients");
		return;
	} else if (c->handler == cmd_data)
		need = "Need RCPT command";
	reply(&s->r, 503, "5.5.1", "Error: %s", need);
}

static int valid_command_text(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == 0 || c >= 0x80 || (c < 0x20 && c != '\t'))
			return 0;
	}
	return 1;
}

static void dispatch(struct session *s, char *line, size_t len)
{
	if (log_verbose()) {
		char shown[80];
		/* AUTH's initial response is a password in base64 */
		size_t keep = strncasecmp(line, "AUTH ", 5) == 0 ? 5 + strcspn(line + 5, " ") : len;
		log_printable(shown, sizeof shown, line, keep);
		log_msg(LOG_DEBUG, "< %s%s", shown, keep < len ? " ..." : "");
	}
	if (!valid_command_text(line, len)) {
		reply(&s->r, 500, "5.5.2", "Error: invalid character in command");
		return;
	}
	size_t vlen = strcspn(line, " ");
	const char *arg = line + vlen;
	while (*arg == ' ')
		arg++;
	/* trailing spaces are not part of an argument */
	for (char *end = line + len; end > arg && end[-1] == ' ';)
		*--end = '\0';
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		const struct command *c = &commands[i];
		if (strlen(c->verb) != vlen || strncasecmp(line, c->verb, vlen) != 0)
			continue;
		/* Postfix's smtpd_junk_command_limit: a NOOP or VRFY flood
		 * costs its sender an error each, so it ends in 421 */
		if (c->junk && ++s->junk > s->cfg->junk_limit)
			reply_count_error(&s->r);
		if (!(c->states & (int)s->state))
			out_of_sequence(s, c);
		else
			c->handler(s, arg);
		return;
	}
	reply(&s->r, 500, "5.5.2", "Error: command not recognized");
}

static void log_connection(const struct session *s, const char *what)
{
	char f_peer[PEER_ADDR_MAX + 32], f_class[40], peer[2 * PEER_ADDR_MAX + 3];
	const char *fields[] = { f_peer, f_class, NULL };
	const char *class = s->peer->local_class ? "local" : "network";

	snprintf(f_peer, sizeof f_peer, "MAILSLOT_PEER=%s", s->peer->addr);
	snprintf(f_class, sizeof f_class, "MAILSLOT_CLASS=%s", class);
	log_fields(LOG_INFO, fields, "%s from %s class=%s", what, log_value(peer, sizeof peer, s->peer->addr), class);
}

/* The one session of this process (a fuzzer runs many in turn). */
static struct session s;
static struct txn local;	/* no monitor: the transaction runs here */

void session_attach(const struct config *cfg, const struct peer *peer, int in_fd, int out_fd)
{
	/* the line buffers stay untouched: clearing them would dirty pages
	 * that every idle connection then pays for */
	memset(&s, 0, offsetof(struct session, io));
	s.cfg = cfg;
	s.peer = peer;
	s.state = S_GREET;
	s.spool_fd = -1;
	s.link.fd = -1;
	s.link.mail_asked = cfg->submission;
	lineio_init(&s.io, in_fd, out_fd, peer->network, cfg->timeout);
	s.r = (struct replier){ .io = &s.io, .max_errors = cfg->max_errors, .soft_errors = cfg->soft_errors,
				.delay_ms = cfg->error_delay };
}

void session_prepare(const struct config *cfg, const struct peer *peer)
{
	session_attach(cfg, peer, 0, 1);
	log_connection(&s, "connect");
}

int session_greet(void)
{
	/* RFC 2920 clients wait for the greeting; bytes before it mean a bot */
	if (s.peer->kind == PEER_SOCKET && lineio_peer_spoke(&s.io)) {
		reply(&s.r, 554, NULL, "%s ESMTP not accepting: you spoke before my greeting", s.cfg->hostname);
		lineio_finish(&s.io);
		log_connection(&s, "early talker, disconnect");
		return -1;	/* nothing opened yet */
	}
	reply(&s.r, 220, NULL, "%s ESMTP mailslot", s.cfg->hostname);
	/* out now: the client answers while the connection is split */
	lineio_flush(&s.io);
	return 0;
}

int session_sign(int pad, const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen)
{
	struct ps_request req = { .op = PS_SIGN, .sign_pad = pad, .sign_len = (uint32_t)inlen };
	struct ps_reply rep;

	if (inlen > sizeof req.sign_in)
		return -1;
	memcpy(req.sign_in, in, inlen);
	ps_call(&s.link, &req, &rep, NULL);
	if (rep.sig_len == 0 || rep.sig_len > sizeof rep.sig || rep.sig_len > *outlen)
		return -1;
	memcpy(out, rep.sig, rep.sig_len);
	*outlen = rep.sig_len;
	return 0;
}

void session_use_tls(struct tls_ctx *ctx, int monitor_fd)
{
	s.tls_ctx = ctx;
	s.link.fd = monitor_fd;	/* the handshake may ask the monitor to sign */
}

int session_greet_in_tls(void)
{
	if (start_tls(&s) == -1)
		return -1;
	reply(&s.r, 220, NULL, "%s ESMTP mailslot", s.cfg->hostname);
	return 0;
}

int session_open(const struct config *cfg, const struct peer *peer)
{
	session_prepare(cfg, peer);
	return session_greet();
}

int session_run(int monitor_fd)
{
	const struct config *cfg = s.cfg;
	const struct peer *peer = s.peer;
	char line[COMMAND_LINE_MAX + 1];
	size_t len;

	s.link.fd = monitor_fd;
	if (monitor_fd == -1) {
		txn_init(&local, cfg, peer);
		s.link.local = &local;
	}
	while (!s.quit) {
		if (reply_errors_exhausted(&s.r)) {
			reply(&s.r, 421, "4.7.0", "%s Error: too many errors", cfg->hostname);
			break;
		}
		enum line_status st = lineio_getline(&s.io, line, sizeof line, &len);
		if (st == LINE_TOOLONG) {
			reply(&s.r, 500, "5.5.2", "Error: line too long");
			continue;
		}
		if (st == LINE_TIMEOUT) {
			reply(&s.r, 421, "4.4.2", "%s Error: timeout exceeded", cfg->hostname);
			break;
		}
		if (st != LINE_OK)
			break;
		dispatch(&s, line, len);
	}
	if (peer->network)
		lineio_finish(&s.io);
	else
		lineio_flush(&s.io);
	if (s.spool_fd != -1)
		close(s.spool_fd);
	if (monitor_fd == -1)
		txn_close(&local);
	log_connection(&s, "disconnect");
	return 0;
}
