/* session: SMTP verbs, states and the mail transaction. */
#include "session.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "deliver.h"
#include "lineio.h"
#include "log.h"
#include "queue.h"
#include "reply.h"
#include "users.h"
#include "version.h"

#define COMMAND_LINE_MAX 512	/* RFC 5321 4.5.3.1.4, CRLF included */
#define HELO_MAX 255
#define TARGETS_MAX 10000	/* recipients after alias expansion */

enum state { S_GREET = 1, S_HELO = 2, S_MAIL = 4, S_RCPT = 8 };
#define S_ANY (S_GREET | S_HELO | S_MAIL | S_RCPT)

struct session {
	const struct config *cfg;
	const struct peer *peer;
	struct replier r;
	enum state state;
	int esmtp;
	int may_relay;
	int quit;
	char helo[HELO_MAX + 1];	/* printable copy of the client's name */
	/* the transaction */
	struct mailaddr sender;
	unsigned long long declared_size;
	long long nrcpt;		/* accepted RCPT commands */
	long long overshoot;		/* RCPTs refused for the limit */
	long long junk;			/* junk commands since the last accepted message */
	int rcpt_tried;			/* some RCPT was given, accepted or not */
	char first_rcpt[ADDR_MAILBOX_MAX + 1];
	struct target *targets;
	int ntargets;
	char qid[QUEUE_ID_MAX];
	int spool_fd;			/* unnamed spool file, reused until queued */
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
	memset(&s->sender, 0, sizeof s->sender);
	s->declared_size = 0;
	s->nrcpt = 0;
	s->overshoot = 0;
	s->rcpt_tried = 0;
	s->first_rcpt[0] = '\0';
	s->ntargets = 0;
	if (s->state != S_GREET)
		s->state = S_HELO;
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

static void cmd_ehlo(struct session *s, const char *arg)
{
	char first[300], size[48];

	if (cmd_helo_common(s, arg, 1) == -1)
		return;
	snprintf(first, sizeof first, "%s Hello %s [%s]", s->cfg->hostname, s->helo, s->peer->addr);
	snprintf(size, sizeof size, "SIZE %lld", s->cfg->max_size);
	const char *lines[] = { first, "PIPELINING", size, "8BITMIME", "ENHANCEDSTATUSCODES" };
	reply_lines(&s->r, 250, NULL, lines, 5);
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
	s->sender = a;
	s->state = S_MAIL;
	reply(&s->r, 250, "2.1.0", "Ok");
}

/* Our own address literal ([192.0.2.1], [IPv6:...]) is a local domain too. */
static int domain_is_local(const struct session *s, const char *domain)
{
	if (addr_is_literal(domain)) {
		char literal[PEER_ADDR_MAX + 8];
		if (s->peer->kind == PEER_TERMINAL)
			return 0;
		peer_literal(s->peer, s->peer->local_addr, literal, sizeof literal);
		return strcasecmp(domain, literal) == 0;
	}
	return users_local_domain(domain);
}

static int ensure_targets(struct session *s)
{
	if (s->targets)
		return 0;
	s->targets = malloc(TARGETS_MAX * sizeof *s->targets);
	return s->targets ? 0 : -1;
}

static void cmd_rcpt(struct session *s, const char *arg)
{
	const char *path = after_keyword(arg, "TO:"), *params, *why;
	struct mailaddr a;
	int before;

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
	/* RCPT TO:<bob> means bob at the primary domain; RFC 5321 4.5.1 <postmaster> */
	if (!a.domain[0] && addr_set_domain(&a, s->cfg->domains[0]) == -1) {
		reply(&s->r, 501, "5.1.3", "Bad recipient address syntax: too long");
		return;
	}
	if (ensure_targets(s) == -1) {
		reply(&s->r, 451, "4.3.0", "Out of memory");
		return;
	}
	before = s->ntargets;
	if (domain_is_local(s, a.domain)) {
		switch (users_resolve(a.local, a.domain, s->targets, TARGETS_MAX, &s->ntargets)) {
		case USERS_UNKNOWN:
			s->ntargets = before;
			reply(&s->r, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown", a.mailbox);
			return;
		case USERS_TOO_MANY:
			s->ntargets = before;
			reply(&s->r, 452, "4.5.3", "Too many recipients");
			return;
		default:
			break;
		}
	} else if (!s->may_relay) {
		reply(&s->r, 550, "5.7.1", "<%s>: Relay access denied", a.mailbox);
		return;
	} else {
		struct target t = { .remote = 1 };
		snprintf(t.address, sizeof t.address, "%s", a.mailbox);
		int dup = 0;
		for (int i = 0; i < s->ntargets; i++)
			dup |= s->targets[i].remote && strcasecmp(s->targets[i].address, t.address) == 0;
		if (!dup) {
			if (s->ntargets >= TARGETS_MAX) {
				reply(&s->r, 452, "4.5.3", "Too many recipients");
				return;
			}
			s->targets[s->ntargets++] = t;
		}
	}
	if (s->nrcpt++ == 0)
		snprintf(s->first_rcpt, sizeof s->first_rcpt, "%s", a.mailbox);
	s->state = S_RCPT;
	reply(&s->r, 250, "2.1.5", "Ok");
}

/* RFC 5321 4.4 trace field; the peer is named by address only (no DNS). */
static int write_received(struct session *s, int fd, time_t now)
{
	char hdr[1200], date[64], tcpinfo[PEER_ADDR_MAX + 16], forpart[ADDR_MAILBOX_MAX + 16] = "";
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (s->peer->kind == PEER_TERMINAL)
		snprintf(tcpinfo, sizeof tcpinfo, "local terminal, uid %u", (unsigned)getuid());
	else
		peer_literal(s->peer, s->peer->addr, tcpinfo, sizeof tcpinfo);
	/* "for" only with one recipient: more would disclose the Bcc list */
	if (s->nrcpt == 1)
		snprintf(forpart, sizeof forpart, "\n\tfor <%s>", s->first_rcpt);
	int n = snprintf(hdr, sizeof hdr, "Received: from %s (%s)\n\tby %s (mailslot) with %s id %s%s;\n\t%s\n",
			 s->helo[0] ? s->helo : "unknown", tcpinfo, s->cfg->hostname,
			 s->esmtp ? "ESMTP" : "SMTP", s->qid, forpart, date);
	if (n < 0 || (size_t)n >= sizeof hdr) {
		errno = EOVERFLOW;
		return -1;
	}
	return deliver_write(fd, hdr, (size_t)n, NULL);
}

/* Run the configured hand-off command detached, so the client is not kept
 * waiting; only our queue id and directory are passed, never an address. */
static void handoff(const struct session *s)
{
	pid_t pid;

	if (!s->cfg->handoff)
		return;
	pid = fork();
	if (pid == -1) {
		log_msg(LOG_WARNING, "%s: cannot start handoff: %s", s->qid, strerror(errno));
		return;
	}
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		setsid();
		int null = open("/dev/null", O_RDWR);
		if (null != -1) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		setenv("MAILSLOT_QUEUE", s->cfg->queue, 1);
		setenv("MAILSLOT_QUEUE_ID", s->qid, 1);
		execl("/bin/sh", "sh", "-c", s->cfg->handoff, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

/* Values that carry client text go through log_value (see LOGGING in
 * mailslot-smtpd.8): a quoted address cannot forge a field after it. */
static void log_recipient(const struct session *s, const struct target *t, const char *status, const char *why)
{
	char f_id[64], f_rcpt[ADDR_MAILBOX_MAX + 32], f_status[48];
	char rcpt[2 * ADDR_MAILBOX_MAX + 3], user[2 * sizeof t->user + 3], reason[400];
	const char *fields[] = { f_id, f_rcpt, f_status, NULL };

	snprintf(f_id, sizeof f_id, "MAILSLOT_QUEUE_ID=%s", s->qid);
	snprintf(f_rcpt, sizeof f_rcpt, "MAILSLOT_RCPT=%s", t->address);
	snprintf(f_status, sizeof f_status, "MAILSLOT_STATUS=%s", status);
	log_fields(LOG_INFO, fields, "%s: to=<%s>%s%s status=%s%s%s", s->qid, log_value(rcpt, sizeof rcpt, t->address),
		   t->remote ? "" : " mailbox=", t->remote ? "" : log_value(user, sizeof user, t->user), status,
		   why ? " reason=" : "", why ? log_value(reason, sizeof reason, why) : "");
}

static void log_message(const struct session *s, unsigned long long size)
{
	char f_id[64], f_from[ADDR_MAILBOX_MAX + 32], f_peer[PEER_ADDR_MAX + 32], f_class[40], f_size[48];
	char from[2 * ADDR_MAILBOX_MAX + 3], peer[2 * PEER_ADDR_MAX + 3], helo[2 * HELO_MAX + 3];
	const char *fields[] = { f_id, f_from, f_peer, f_class, f_size, NULL };
	const char *class = s->peer->local_class ? "local" : "network";

	snprintf(f_id, sizeof f_id, "MAILSLOT_QUEUE_ID=%s", s->qid);
	snprintf(f_from, sizeof f_from, "MAILSLOT_FROM=%s", s->sender.mailbox);
	snprintf(f_peer, sizeof f_peer, "MAILSLOT_PEER=%s", s->peer->addr);
	snprintf(f_class, sizeof f_class, "MAILSLOT_CLASS=%s", class);
	snprintf(f_size, sizeof f_size, "MAILSLOT_SIZE=%llu", size);
	log_fields(LOG_INFO, fields, "%s: from=<%s> size=%llu nrcpt=%lld peer=%s class=%s helo=%s", s->qid,
		   log_value(from, sizeof from, s->sender.mailbox), size, s->nrcpt,
		   log_value(peer, sizeof peer, s->peer->addr), class, log_value(helo, sizeof helo, s->helo));
}

/* After the final dot: deliver locally, queue the rest, then answer once. */
static void finish_message(struct session *s, int fd, const struct data_result *dr, time_t arrived)
{
	struct stat st;
	struct envelope env = { .arrived = arrived };
	struct deliver_result failure = { .status = DELIVER_OK };
	int delivered = 0, remote = 0;

	if (fstat(fd, &st) == -1) {
		reply(&s->r, 451, "4.3.0", "Cannot read spooled message");
		return;
	}
	struct delivery d = { .msgfd = fd, .size = st.st_size, .from_lines = dr->from_lines,
			      .sender = s->sender.mailbox, .qid = s->qid, .arrived = arrived,
			      .hostname = s->cfg->hostname };
	env.rcpt = calloc((size_t)s->ntargets, sizeof *env.rcpt);
	if (!env.rcpt) {
		reply(&s->r, 451, "4.3.0", "Out of memory");
		return;
	}
	log_message(s, dr->size);
	for (int i = 0; i < s->ntargets; i++) {
		const struct target *t = &s->targets[i];
		struct deliver_result res;
		struct env_rcpt *er = &env.rcpt[env.nrcpt];
		if (t->remote) {
			remote = 1;
		} else {
			deliver_local(s->cfg, &d, t, &res);
			if (res.status == DELIVER_OK) {
				delivered++;
				log_recipient(s, t, "delivered", NULL);
				continue;
			}
			if (failure.status == DELIVER_OK)
				failure = res;
			snprintf(er->user, sizeof er->user, "%s", t->user);
			log_printable(er->last_error, sizeof er->last_error, res.detail, strlen(res.detail));
		}
		snprintf(er->address, sizeof er->address, "%s", t->address);
		env.nrcpt++;
	}
	if (env.nrcpt > 0 && delivered == 0 && !remote) {
		/* nothing is on disk: the client keeps the message and retries */
		reply(&s->r, failure.code, failure.enhanced, "%s", failure.text);
		for (int i = 0; i < s->ntargets; i++)
			log_recipient(s, &s->targets[i], "deferred", failure.detail);
		free(env.rcpt);
		return;
	}
	if (env.nrcpt > 0) {
		snprintf(env.id, sizeof env.id, "%s", s->qid);
		snprintf(env.sender, sizeof env.sender, "%s", s->sender.mailbox);
		snprintf(env.client, sizeof env.client, "%s [%s]", s->helo, s->peer->addr);
		if (queue_commit(s->cfg->queue, fd, &env) == -1) {
			log_msg(LOG_ERR, "%s: cannot write queue entry in %s: %s%s", s->qid, s->cfg->queue,
				strerror(errno), delivered ? " (local copies were delivered: a retry duplicates them)" : "");
			if (errno == ENOSPC)
				reply(&s->r, 452, "4.3.1", "Insufficient system storage");
			else
				reply(&s->r, 451, "4.3.0", "Cannot queue message");
			free(env.rcpt);
			return;
		}
		for (int i = 0; i < env.nrcpt; i++) {
			struct target t = { .remote = !env.rcpt[i].user[0] };
			snprintf(t.address, sizeof t.address, "%s", env.rcpt[i].address);
			snprintf(t.user, sizeof t.user, "%s", env.rcpt[i].user);
			log_recipient(s, &t, "queued", env.rcpt[i].last_error[0] ? env.rcpt[i].last_error : NULL);
		}
		handoff(s);
		/* the spool file is now the queued message: never reuse it */
		close(s->spool_fd);
		s->spool_fd = -1;
	}
	free(env.rcpt);
	reply(&s->r, 250, "2.0.0", "Ok: queued as %s", s->qid);
}

/* A message refused at its end leaves no other trace: the queue id ties
 * the log to what the client was told. */
static void log_refusal(const struct session *s, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void log_refusal(const struct session *s, int priority, const char *fmt, ...)
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
	log_fields(priority, fields, "%s: refused from=<%s> nrcpt=%lld peer=%s reason=%s", s->qid,
		   log_value(from, sizeof from, s->sender.mailbox), s->nrcpt,
		   log_value(peer, sizeof peer, s->peer->addr), log_value(reason, sizeof reason, why));
}

static void cmd_data(struct session *s, const char *arg)
{
	struct data_result dr;
	time_t now = time(NULL);
	int fd;

	if (*arg) {
		reply(&s->r, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	queue_new_id(s->qid, sizeof s->qid);
	/* one spool file serves every message of the session that is not
	 * queued: creating a file costs more than emptying one */
	if (s->spool_fd != -1 && (ftruncate(s->spool_fd, 0) == -1 || lseek(s->spool_fd, 0, SEEK_SET) == -1)) {
		close(s->spool_fd);
		s->spool_fd = -1;
	}
	if (s->spool_fd == -1)
		s->spool_fd = queue_spool_open(s->cfg->queue);
	fd = s->spool_fd;
	if (fd == -1 || write_received(s, fd, now) == -1) {
		log_msg(LOG_ERR, "%s: cannot spool a message in %s/tmp: %s", s->qid, s->cfg->queue, strerror(errno));
		if (fd != -1)
			close(fd);
		s->spool_fd = -1;
		reply(&s->r, 451, "4.3.0", "Temporary failure: cannot spool message");
		return;
	}
	reply(&s->r, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	lineio_read_data(&s->io, fd, (unsigned long long)s->cfg->max_size, &dr);
	if (dr.status == LINE_BARELF) {
		/* the reader stopped there: what follows is neither text nor
		 * commands, so the connection ends (session_run drains it) */
		reply(&s->r, 521, "5.5.2", "%s Error: bare <CR> or <LF> received; lines must end in CRLF",
		      s->cfg->hostname);
		log_refusal(s, LOG_NOTICE, "bare CR or LF in the message, connection closed");
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
		reply(&s->r, dr.write_errno == ENOSPC ? 452 : 451, dr.write_errno == ENOSPC ? "4.3.1" : "4.3.0",
		      "%s", dr.write_errno == ENOSPC ? "Insufficient system storage" : "Cannot spool message");
		log_refusal(s, LOG_ERR, "cannot write the spool file in %s/tmp: %s", s->cfg->queue,
			    strerror(dr.write_errno));
	} else if (dr.too_big) {
		reply(&s->r, 552, "5.3.4", "Message size exceeds fixed limit");
		log_refusal(s, LOG_NOTICE, "message over the size limit of %lld bytes", s->cfg->max_size);
	} else if (dr.long_line) {
		reply(&s->r, 554, "5.5.2", "Message has lines longer than %d characters", DATA_LINE_MAX);
		log_refusal(s, LOG_NOTICE, "line longer than %d characters", DATA_LINE_MAX);
	} else if (dr.received_headers > s->cfg->max_received) {
		reply(&s->r, 554, "5.4.6", "Too many Received: headers: mail loop");
		log_refusal(s, LOG_NOTICE, "mail loop: %u Received: fields", dr.received_headers);
	} else {
		long long errors = s->r.errors;
		finish_message(s, fd, &dr, now);
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
	{ "AUTH", cmd_not_implemented, S_ANY, 0 },
	{ "STARTTLS", cmd_not_implemented, S_ANY, 0 },
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
		log_printable(shown, sizeof shown, line, len);
		log_msg(LOG_DEBUG, "< %s", shown);
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

int session_run(const struct config *cfg, const struct peer *peer)
{
	static struct session s;
	char line[COMMAND_LINE_MAX + 1];
	size_t len;
	struct target *targets = s.targets;	/* kept across calls (a fuzzer's) */

	/* the line buffers stay untouched: clearing them would dirty pages
	 * that every idle connection then pays for */
	memset(&s, 0, offsetof(struct session, io));
	s.targets = targets;
	s.cfg = cfg;
	s.peer = peer;
	s.state = S_GREET;
	s.spool_fd = -1;
	s.may_relay = cfg->relay == RELAY_YES || (cfg->relay == RELAY_AUTO && peer->local_class);
	lineio_init(&s.io, 0, 1, peer->network, cfg->timeout);
	s.r = (struct replier){ .io = &s.io, .max_errors = cfg->max_errors, .soft_errors = cfg->soft_errors,
				.delay_ms = cfg->error_delay };
	log_connection(&s, "connect");

	/* RFC 2920 clients wait for the greeting; bytes before it mean a bot */
	if (peer->kind == PEER_SOCKET && lineio_peer_spoke(&s.io)) {
		reply(&s.r, 554, NULL, "%s ESMTP not accepting: you spoke before my greeting", cfg->hostname);
		lineio_finish(&s.io);
		log_connection(&s, "early talker, disconnect");
		return 0;	/* nothing opened yet */
	}
	reply(&s.r, 220, NULL, "%s ESMTP mailslot", cfg->hostname);
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
	log_connection(&s, "disconnect");
	return 0;
}
