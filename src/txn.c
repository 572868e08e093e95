/* txn: recipient policy, the spool, delivery, queueing and hand-off of one message. */
#include "txn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "authdb.h"
#include "clock.h"
#include "deliver.h"
#include "fileio.h"
#include "log.h"

void txn_init(struct txn *t, const struct config *cfg, const struct peer *peer)
{
	struct target *targets = t->targets;	/* kept across sessions (a fuzzer's) */

	memset(t, 0, sizeof *t);
	t->targets = targets;
	t->cfg = cfg;
	t->peer = peer;
	t->spool_fd = -1;
	t->may_relay = cfg->relay == RELAY_YES || (cfg->relay == RELAY_AUTO && peer->local_class);
	t->complete_header = cfg->submission;
	t->local_uid = -1;
}

void txn_local(struct txn *t, long long uid, const char *user, const char *from)
{
	txn_helo(t, user, 0);
	t->local_uid = uid;
	log_printable(t->local_from, sizeof t->local_from, from, strlen(from));
	t->complete_header = 1;
	t->may_relay = 1;
}

void txn_reset(struct txn *t)
{
	t->active = 0;
	memset(&t->sender, 0, sizeof t->sender);
	t->ntargets = 0;
	t->nrcpt = 0;
	t->first_rcpt[0] = '\0';
	t->spooled = 0;
}

void txn_close(struct txn *t)
{
	if (t->spool_fd != -1)
		close(t->spool_fd);
	t->spool_fd = -1;
	txn_reset(t);
}

void txn_helo(struct txn *t, const char *helo, int esmtp)
{
	log_printable(t->helo, sizeof t->helo, helo, strcspn(helo, " "));
	t->esmtp = esmtp;
}

void txn_tls(struct txn *t, const char *tls)
{
	log_printable(t->tls, sizeof t->tls, tls, strlen(tls));
}

/* The wait after a failed AUTH grows with each one: guessing costs time. */
static void auth_pause(const struct txn *t)
{
	clock_sleep_ms(t->cfg->error_delay * t->auth_failures);
}

void txn_auth(struct txn *t, const char *user, const char *password, struct status *st)
{
	char why[300], name[2 * TXN_USER_MAX + 3], peer[2 * PEER_ADDR_MAX + 3];

	log_value(name, sizeof name, user);
	log_value(peer, sizeof peer, t->peer->addr);
	if (t->cfg->passwd_fd == -1) {
		status_set(st, 503, "5.5.1", 0, "Error: authentication not enabled");
		return;
	}
	if (t->auth_user[0]) {
		status_set(st, 503, "5.5.1", 0, "Error: already authenticated");
		return;
	}
	if (t->auth_failures >= TXN_AUTH_FAILURES_MAX) {
		status_set(st, 421, "4.7.0", 0, "%s Error: too many authentication failures", t->cfg->hostname);
		return;
	}
	switch (authdb_check_fd(t->cfg->passwd_fd, t->cfg->passwd, user, password, why, sizeof why)) {
	case AUTHDB_OK:
		snprintf(t->auth_user, sizeof t->auth_user, "%s", user);
		log_msg(LOG_INFO, "authenticated: user=%s peer=%s", name, peer);
		status_set(st, 235, "2.7.0", 0, "Authentication successful");
		return;
	case AUTHDB_BAD:
		t->auth_failures++;
		/* fail2ban's filter (examples/) matches this line */
		log_msg(LOG_WARNING, "authentication failed: user=%s peer=%s", name, peer);
		auth_pause(t);
		if (t->auth_failures >= TXN_AUTH_FAILURES_MAX)
			status_set(st, 421, "4.7.0", 0, "%s Error: too many authentication failures",
				   t->cfg->hostname);
		else
			status_set(st, 535, "5.7.8", 0, "Error: authentication failed");
		return;
	default:
		log_msg(LOG_ERR, "cannot check a password: %s", why);
		status_set(st, 454, "4.7.0", errno, "Temporary authentication failure");
		return;
	}
}

/* --submission: a sender of the user's own, at a local domain, directly
 * or through an alias that reaches the user's mailbox. */
static int sender_owned(const struct txn *t)
{
	struct target found[32];
	int n = 0;

	if (t->sender.null || !users_local_domain(t->sender.domain))
		return 0;
	(void)users_resolve(t->sender.local, t->sender.domain, found, 32, &n);
	for (int i = 0; i < n; i++)
		if (!found[i].remote && strcasecmp(found[i].user, t->auth_user) == 0)
			return 1;
	return 0;
}

/* A sender or recipient refused by policy leaves no other trace: no
 * message, so no queue id ("NOQUEUE", as Postfix writes it).  reason is
 * the refusal without the address, for mailslot-stat(8) to group by. */
static void log_policy_refusal(const struct txn *t, const char *cmd, const char *rcpt, int code, const char *reason)
{
	char f_from[ADDR_MAILBOX_MAX + 32], f_rcpt[ADDR_MAILBOX_MAX + 32], f_peer[PEER_ADDR_MAX + 32];
	char from[2 * ADDR_MAILBOX_MAX + 3], to[2 * ADDR_MAILBOX_MAX + 3], peer[2 * PEER_ADDR_MAX + 3];
	const char *fields[] = { "MAILSLOT_STATUS=refused", f_from, f_peer, f_rcpt, NULL };

	snprintf(f_from, sizeof f_from, "MAILSLOT_FROM=%s", t->sender.mailbox);
	snprintf(f_peer, sizeof f_peer, "MAILSLOT_PEER=%s", t->peer->addr);
	snprintf(f_rcpt, sizeof f_rcpt, "MAILSLOT_RCPT=%s", rcpt);
	if (!rcpt[0])
		fields[3] = NULL;
	log_fields(LOG_NOTICE, fields, "NOQUEUE: refused %s from=<%s>%s%s%s peer=%s code=%d reason=\"%s\"", cmd,
		   log_value(from, sizeof from, t->sender.mailbox), rcpt[0] ? " to=<" : "",
		   rcpt[0] ? log_value(to, sizeof to, rcpt) : "", rcpt[0] ? ">" : "",
		   log_value(peer, sizeof peer, t->peer->addr), code, reason);
}

void txn_mail(struct txn *t, const char *sender, struct status *st)
{
	const char *why;

	txn_reset(t);
	if (t->cfg->submission && !t->auth_user[0]) {
		status_set(st, 530, "5.7.0", 0, "Authentication required");
		return;
	}
	if (sender[0] && addr_parse_mailbox(sender, strlen(sender), &t->sender, &why) != ADDR_OK) {
		status_set(st, 501, "5.1.7", 0, "Bad sender address syntax: %s", why);
		return;
	}
	/* RFC 5321 4.1.2: a Mailbox has a domain (the session says so too) */
	if (sender[0] && !t->sender.domain[0]) {
		status_set(st, 501, "5.1.7", 0, "Bad sender address syntax: no domain (use user@domain)");
		return;
	}
	t->sender.null = !sender[0];
	if (t->cfg->submission && !sender_owned(t)) {
		status_set(st, 553, "5.7.1", 0, "<%s>: Sender address rejected: not owned by user %s", sender,
			   t->auth_user);
		log_policy_refusal(t, "MAIL", "", 553, "Sender address rejected: not owned by user");
		return;
	}
	t->active = 1;
	status_set(st, 250, "2.1.0", 0, "Ok");
}

/* Our own address literal ([192.0.2.1], [IPv6:...]) is a local domain too. */
static int domain_is_local(const struct txn *t, const char *domain)
{
	if (addr_is_literal(domain)) {
		char literal[PEER_ADDR_MAX + 8];
		if (t->peer->kind == PEER_TERMINAL)
			return 0;
		peer_literal(t->peer, t->peer->local_addr, literal, sizeof literal);
		return strcasecmp(domain, literal) == 0;
	}
	return users_local_domain(domain);
}

void txn_rcpt(struct txn *t, const char *mailbox, struct status *st)
{
	struct mailaddr a;
	const char *why;
	int before = t->ntargets;

	if (!t->active) {
		status_set(st, 503, "5.5.1", 0, "Error: need MAIL command");
		return;
	}
	if (t->nrcpt >= t->cfg->max_recipients) {
		status_set(st, 452, "4.5.3", 0, "Too many recipients");
		return;
	}
	if (addr_parse_mailbox(mailbox, strlen(mailbox), &a, &why) != ADDR_OK) {
		status_set(st, 501, "5.1.3", 0, "Bad recipient address syntax: %s", why);
		return;
	}
	/* RCPT TO:<bob> means bob at the primary domain; RFC 5321 4.5.1 <postmaster> */
	if (!a.domain[0] && addr_set_domain(&a, t->cfg->domains[0]) == -1) {
		status_set(st, 501, "5.1.3", 0, "Bad recipient address syntax: too long");
		return;
	}
	if (!t->targets && !(t->targets = malloc(TXN_TARGETS_MAX * sizeof *t->targets))) {
		status_set(st, 451, "4.3.0", ENOMEM, "Out of memory");
		return;
	}
	if (domain_is_local(t, a.domain)) {
		switch (users_resolve(a.local, a.domain, t->targets, TXN_TARGETS_MAX, &t->ntargets)) {
		case USERS_UNKNOWN:
			t->ntargets = before;
			status_set(st, 550, "5.1.1", 0, "<%s>: Recipient address rejected: User unknown", a.mailbox);
			log_policy_refusal(t, "RCPT", a.mailbox, 550, "Recipient address rejected: User unknown");
			return;
		case USERS_TOO_MANY:
			t->ntargets = before;
			status_set(st, 452, "4.5.3", 0, "Too many recipients");
			return;
		default:
			break;
		}
	} else if (!t->may_relay && !t->auth_user[0]) {
		status_set(st, 550, "5.7.1", 0, "<%s>: Relay access denied", a.mailbox);
		log_policy_refusal(t, "RCPT", a.mailbox, 550, "Relay access denied");
		return;
	} else {
		struct target fwd = { .remote = 1 };
		snprintf(fwd.address, sizeof fwd.address, "%s", a.mailbox);
		if (users_add_target(t->targets, TXN_TARGETS_MAX, &t->ntargets, &fwd) == USERS_TOO_MANY) {
			status_set(st, 452, "4.5.3", 0, "Too many recipients");
			return;
		}
	}
	if (t->nrcpt++ == 0)
		snprintf(t->first_rcpt, sizeof t->first_rcpt, "%s", a.mailbox);
	status_set(st, 250, "2.1.5", 0, "Ok");
}

/* RFC 5321 4.4 trace field; the peer is named by address only (no DNS). */
static int write_received(struct txn *t, int fd)
{
	char hdr[1200], date[64], tcpinfo[PEER_ADDR_MAX + 16], forpart[ADDR_MAILBOX_MAX + 16] = "";
	char using[TXN_TLS_MAX + 32] = "", with[16];
	struct tm tm;

	localtime_r(&t->arrived, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (t->peer->kind == PEER_TERMINAL)
		snprintf(tcpinfo, sizeof tcpinfo, "local terminal, uid %u", (unsigned)getuid());
	else
		peer_literal(t->peer, t->peer->addr, tcpinfo, sizeof tcpinfo);
	/* "for" only with one recipient: more would disclose the Bcc list */
	if (t->nrcpt == 1)
		snprintf(forpart, sizeof forpart, "\n\tfor <%s>", t->first_rcpt);
	/* RFC 3848: ESMTP, then S for TLS and A for AUTH */
	snprintf(with, sizeof with, "%s%s%s", t->esmtp ? "ESMTP" : "SMTP", t->esmtp && t->tls[0] ? "S" : "",
		 t->esmtp && t->auth_user[0] ? "A" : "");
	if (t->tls[0])
		snprintf(using, sizeof using, "\n\t(using %s)", t->tls);
	/* no SMTP client to name: Postfix's form for its sendmail(1) */
	int n = t->local_uid >= 0 ?
		snprintf(hdr, sizeof hdr, "Received: by %s (mailslot, from userid %lld)\n\tid %s%s;\n\t%s\n",
			 t->cfg->hostname, t->local_uid, t->qid, forpart, date) :
		snprintf(hdr, sizeof hdr, "Received: from %s (%s)\n\tby %s (mailslot) with %s id %s%s%s;\n\t%s\n",
			 t->helo[0] ? t->helo : "unknown", tcpinfo, t->cfg->hostname, with, t->qid, using,
			 forpart, date);
	if (n < 0 || (size_t)n >= sizeof hdr) {
		errno = EOVERFLOW;
		return -1;
	}
	t->received_len = n;
	return fileio_write(fd, hdr, (size_t)n, NULL);
}

int txn_data(struct txn *t, struct status *st)
{
	if (!t->active || t->nrcpt == 0) {
		status_set(st, 503, "5.5.1", 0, "Error: need RCPT command");
		return -1;
	}
	t->arrived = time(NULL);
	queue_new_id(t->qid, sizeof t->qid);
	/* one spool file serves every message of the connection that is not
	 * queued: creating a file costs more than emptying one */
	if (t->spool_fd != -1 && (ftruncate(t->spool_fd, 0) == -1 || lseek(t->spool_fd, 0, SEEK_SET) == -1)) {
		close(t->spool_fd);
		t->spool_fd = -1;
	}
	if (t->spool_fd == -1)
		t->spool_fd = queue_spool_open(t->cfg->queue);
	if (t->spool_fd == -1 || write_received(t, t->spool_fd) == -1) {
		int err = errno;
		log_msg(LOG_ERR, "%s: cannot spool a message in %s/tmp: %s", t->qid, t->cfg->queue, strerror(err));
		if (t->spool_fd != -1)
			close(t->spool_fd);
		t->spool_fd = -1;
		status_set(st, 451, "4.3.0", err, "Temporary failure: cannot spool message");
		return -1;
	}
	t->spooled = 1;
	status_set(st, 354, NULL, 0, "End data with <CR><LF>.<CR><LF>");
	return t->spool_fd;
}

/* Run the configured hand-off command detached, so the client is not kept
 * waiting; only our queue id and directory are passed, never an address. */
static void handoff(const struct txn *t)
{
	pid_t pid;

	if (!t->cfg->handoff)
		return;
	pid = fork();
	if (pid == -1) {
		log_msg(LOG_WARNING, "%s: cannot start handoff: %s", t->qid, strerror(errno));
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
		setenv("MAILSLOT_QUEUE", t->cfg->queue, 1);
		setenv("MAILSLOT_QUEUE_ID", t->qid, 1);
		execl("/bin/sh", "sh", "-c", t->cfg->handoff, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

/* Values that carry client text go through log_value (see LOGGING in
 * mailslot-smtpd.8): a quoted address cannot forge a field after it. */
static void log_recipient(const struct txn *t, const struct target *r, const char *status, const char *why)
{
	char f_id[64], f_rcpt[ADDR_MAILBOX_MAX + 32], f_status[48];
	char rcpt[2 * ADDR_MAILBOX_MAX + 3], user[2 * sizeof r->user + 3], reason[400];
	const char *fields[] = { f_id, f_rcpt, f_status, NULL };

	snprintf(f_id, sizeof f_id, "MAILSLOT_QUEUE_ID=%s", t->qid);
	snprintf(f_rcpt, sizeof f_rcpt, "MAILSLOT_RCPT=%s", r->address);
	snprintf(f_status, sizeof f_status, "MAILSLOT_STATUS=%s", status);
	log_fields(LOG_INFO, fields, "%s: to=<%s>%s%s status=%s%s%s", t->qid, log_value(rcpt, sizeof rcpt, r->address),
		   r->remote ? "" : " mailbox=", r->remote ? "" : log_value(user, sizeof user, r->user), status,
		   why ? " reason=" : "", why ? log_value(reason, sizeof reason, why) : "");
}

static void log_message(const struct txn *t, unsigned long long size)
{
	char f_id[64], f_from[ADDR_MAILBOX_MAX + 32], f_peer[PEER_ADDR_MAX + 32], f_class[40], f_size[48];
	char from[2 * ADDR_MAILBOX_MAX + 3], peer[2 * PEER_ADDR_MAX + 3], helo[2 * TXN_HELO_MAX + 3];
	const char *fields[] = { f_id, f_from, f_peer, f_class, f_size, NULL };
	const char *class = t->peer->local_class ? "local" : "network";

	snprintf(f_id, sizeof f_id, "MAILSLOT_QUEUE_ID=%s", t->qid);
	snprintf(f_from, sizeof f_from, "MAILSLOT_FROM=%s", t->sender.mailbox);
	snprintf(f_peer, sizeof f_peer, "MAILSLOT_PEER=%s", t->peer->addr);
	snprintf(f_class, sizeof f_class, "MAILSLOT_CLASS=%s", class);
	snprintf(f_size, sizeof f_size, "MAILSLOT_SIZE=%llu", size);
	log_fields(LOG_INFO, fields, "%s: from=<%s> size=%llu nrcpt=%lld peer=%s class=%s helo=%s", t->qid,
		   log_value(from, sizeof from, t->sender.mailbox), size, t->nrcpt,
		   log_value(peer, sizeof peer, t->peer->addr), class, log_value(helo, sizeof helo, t->helo));
}

/* Queue what was not delivered; st is the answer for the whole message. */
static void queue_rest(struct txn *t, struct envelope *env, int delivered, struct status *st)
{
	snprintf(env->id, sizeof env->id, "%s", t->qid);
	snprintf(env->sender, sizeof env->sender, "%s", t->sender.mailbox);
	snprintf(env->client, sizeof env->client, "%s [%s]", t->helo, t->peer->addr);
	if (queue_commit(t->cfg->queue, t->spool_fd, env) == -1) {
		int err = errno;
		log_msg(LOG_ERR, "%s: cannot write queue entry in %s: %s%s", t->qid, t->cfg->queue,
			strerror(err), delivered ? " (local copies were delivered: a retry duplicates them)" : "");
		if (err == ENOSPC)
			status_set(st, 452, "4.3.1", err, "Insufficient system storage");
		else
			status_set(st, 451, "4.3.0", err, "Cannot queue message");
		return;
	}
	for (int i = 0; i < env->nrcpt; i++) {
		struct target r = { .remote = !env->rcpt[i].user[0] };
		snprintf(r.address, sizeof r.address, "%s", env->rcpt[i].address);
		snprintf(r.user, sizeof r.user, "%s", env->rcpt[i].user);
		log_recipient(t, &r, "queued", env->rcpt[i].last_error[0] ? env->rcpt[i].last_error : NULL);
	}
	handoff(t);
	/* the spool file is now the queued message: never reuse it */
	close(t->spool_fd);
	t->spool_fd = -1;
	status_set(st, 250, "2.0.0", 0, "Ok: queued as %s", t->qid);
}

/* Which of Date:, Message-ID: and From: the header holds (bits 1, 2, 4), from
 * the message's start (after our trace field) to its first empty line; a
 * header longer than the buffer counts as complete (left alone). */
static int header_fields(const struct txn *t, off_t size)
{
	static char head[65536];
	off_t at = t->received_len;
	ssize_t n = pread(t->spool_fd, head, sizeof head - 1, at);
	int found = 0, bol = 1;

	if (n <= 0)
		return 7;
	head[n] = '\0';
	for (char *p = head; *p; p++) {
		if (bol && *p == '\n')
			return found;		/* the empty line ends the header */
		if (bol && strncasecmp(p, "Date:", 5) == 0)
			found |= 1;
		if (bol && strncasecmp(p, "Message-ID:", 11) == 0)
			found |= 2;
		if (bol && strncasecmp(p, "From:", 5) == 0)
			found |= 4;
		bol = *p == '\n';
	}
	return at + n >= size ? found : 7;
}

/* RFC 6409 8.1 to 8.3: a submitted message without Date: or Message-ID:
 * gets them, below our trace field, and a local one without From: its
 * author (RFC 5322 3.6: From: and Date: are required).  The spool file becomes a new one of
 * the three parts; *size follows.  0, or -1 with errno. */
static int complete_header(struct txn *t, off_t *size)
{
	char add[600 + TXN_FROM_MAX], date[64];
	struct tm tm;
	int found = header_fields(t, *size), len = 0, wanted = t->local_from[0] ? 7 : 3;
	off_t out = 0;

	if ((found & wanted) == wanted)
		return 0;
	localtime_r(&t->arrived, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (!(found & 1))
		len += snprintf(add + len, sizeof add - (size_t)len, "Date: %s\n", date);
	if (!(found & 2))
		len += snprintf(add + len, sizeof add - (size_t)len, "Message-ID: <%s@%s>\n", t->qid,
				t->cfg->hostname);
	if (!(found & 4) && t->local_from[0])
		len += snprintf(add + len, sizeof add - (size_t)len, "From: %s\n", t->local_from);
	int fd = queue_spool_open(t->cfg->queue);
	if (fd == -1)
		return -1;
	if (fileio_copy(t->spool_fd, 0, t->received_len, fd, &out) == -1 ||
	    fileio_write(fd, add, (size_t)len, &out) == -1 ||
	    fileio_copy(t->spool_fd, t->received_len, *size, fd, &out) == -1) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	close(t->spool_fd);
	t->spool_fd = fd;
	*size = out;
	return 0;
}

void txn_commit(struct txn *t, unsigned long long size, struct status *st)
{
	struct stat sb;
	struct envelope env = { .arrived = t->arrived };
	struct status failure = { .kind = STATUS_OK };
	int delivered = 0, remote = 0;

	if (!t->spooled || t->spool_fd == -1 || fstat(t->spool_fd, &sb) == -1) {
		status_set(st, 451, "4.3.0", errno, "Cannot read spooled message");
		log_msg(LOG_ERR, "%s: refused: no spooled message to deliver%s%s", t->qid,
			t->spooled ? ": " : " (the session skipped DATA)", t->spooled ? strerror(st->err) : "");
		return;
	}
	t->spooled = 0;
	if (t->complete_header && complete_header(t, &sb.st_size) == -1) {
		status_set(st, 451, "4.3.0", errno, "Cannot spool message");
		log_msg(LOG_ERR, "%s: refused: cannot complete the header: %s", t->qid, strerror(st->err));
		return;
	}
	/* no From_ count from the network side: mbox counts and quotes for itself */
	struct delivery d = { .msgfd = t->spool_fd, .size = sb.st_size, .sender = t->sender.mailbox,
			      .qid = t->qid, .arrived = t->arrived, .hostname = t->cfg->hostname };
	env.rcpt = calloc((size_t)t->ntargets + 1, sizeof *env.rcpt);
	if (!env.rcpt) {
		status_set(st, 451, "4.3.0", ENOMEM, "Out of memory");
		log_msg(LOG_ERR, "%s: refused: out of memory for %d recipients", t->qid, t->ntargets);
		return;
	}
	log_message(t, size);
	for (int i = 0; i < t->ntargets; i++) {
		const struct target *r = &t->targets[i];
		struct env_rcpt *er = &env.rcpt[env.nrcpt];
		struct deliver_result res;
		if (r->remote) {
			remote = 1;
		} else {
			deliver_local(t->cfg, &d, r, &res);
			if (res.st.kind == STATUS_OK) {
				delivered++;
				log_recipient(t, r, "delivered", NULL);
				continue;
			}
			if (failure.kind == STATUS_OK)
				failure = res.st;
			snprintf(er->user, sizeof er->user, "%s", r->user);
			log_printable(er->last_error, sizeof er->last_error, res.detail, strlen(res.detail));
		}
		snprintf(er->address, sizeof er->address, "%s", r->address);
		env.nrcpt++;
	}
	if (env.nrcpt > 0 && delivered == 0 && !remote) {
		/* nothing is on disk: the client keeps the message and retries */
		*st = failure;
		for (int i = 0; i < t->ntargets; i++)
			log_recipient(t, &t->targets[i], "deferred", env.rcpt[i].last_error);
	} else if (env.nrcpt > 0) {
		queue_rest(t, &env, delivered, st);
	} else {
		status_set(st, 250, "2.0.0", 0, "Ok: queued as %s", t->qid);
	}
	free(env.rcpt);
	txn_reset(t);
}
