/* pop3mon: the monitor's request loop over the maildrop, and the session's way of asking. */
#include "pop3mon.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "authdb.h"
#include "clock.h"
#include "fdpass.h"
#include "log.h"
#include "privs.h"
#include "users.h"

#define PM_AUTH_FAILURES_MAX 3	/* failed logins before the connection ends */

struct mon {
	const struct config *cfg;
	const struct peer *peer;
	struct mailbox mb;
	int open;
	int failures;
	char user[2 * SASL_NAME_MAX + 3];	/* log_value of the login name */
	char peer_shown[2 * PEER_ADDR_MAX + 3];
	unsigned long long retr, retr_octets, dele, dele_octets;
	int updated;
	char why[256];
	struct tls_server *tls;	/* the key, until the signature or the login */
	int signs;
};

/* RFC 1939: sizes are those of the message with CRLF line ends */
static unsigned long long wire_size(const struct mailbox_entry *e)
{
	return (unsigned long long)e->size + (unsigned long long)e->lines;
}

static void set(struct pm_reply *rep, enum pm_result r, const char *text)
{
	rep->result = r;
	snprintf(rep->text, sizeof rep->text, "%s", text);
}

/* The login name's mailbox, opened as its owner: 0, or the result to give. */
static enum pm_result open_maildrop(struct mon *m, const char *name, struct pm_reply *rep)
{
	char low[USER_NAME_MAX + 1];
	struct target t = { 0 };
	uid_t owner = geteuid();
	size_t i;
	int err;

	for (i = 0; i < sizeof low - 1 && name[i]; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[i] = '\0';
	if (name[i] || !users_lookup(low, &t)) {
		log_msg(LOG_WARNING, "login refused: user=%s peer=%s: no mailbox of that name", m->user, m->peer_shown);
		set(rep, PM_SYS_PERM, "No mailbox for this user");
		return PM_SYS_PERM;
	}
	if (t.has_ids && privs_can_switch()) {
		/* this process serves this one user from now on */
		if (privs_become(t.uid, t.gid) == -1) {
			log_msg(LOG_ERR, "cannot act as uid %u for user=%s", (unsigned)t.uid, m->user);
			set(rep, PM_SYS_TEMP, "Cannot open the mailbox now");
			return PM_SYS_TEMP;
		}
		owner = t.uid;
	}
	err = mailbox_open(&m->mb, m->cfg->format, m->cfg->spool, t.user, owner, m->cfg->lock_timeout, m->why,
			   sizeof m->why);
	if (err && owner != geteuid())
		privs_restore();	/* another login may follow, as another user */
	if (err == EBUSY) {
		log_msg(LOG_NOTICE, "mailbox in use: user=%s peer=%s", m->user, m->peer_shown);
		set(rep, PM_IN_USE, "Mailbox is locked by another POP3 session");
		return PM_IN_USE;
	}
	if (err) {
		log_msg(LOG_ERR, "cannot open the mailbox of user=%s: %s", m->user, m->why[0] ? m->why : strerror(err));
		set(rep, PM_SYS_TEMP, err == ETIMEDOUT ? "Mailbox lock timed out, try again later"
						      : "Cannot open the mailbox now");
		return PM_SYS_TEMP;
	}
	m->open = 1;
	return PM_OK;
}

static void login(struct mon *m, const struct pm_request *req, struct pm_reply *rep)
{
	char why[AUTHDB_WHY_MAX];

	log_value(m->user, sizeof m->user, req->user);
	if (m->failures >= PM_AUTH_FAILURES_MAX) {
		set(rep, PM_BYE, "Too many authentication failures");
		return;
	}
	switch (authdb_check_fd(m->cfg->passwd_fd, m->cfg->passwd, req->user, req->secret, why, sizeof why)) {
	case AUTHDB_OK:
		break;
	case AUTHDB_BAD:
		m->failures++;
		/* fail2ban's filter (examples/) matches this line, as smtpd's */
		log_msg(LOG_WARNING, "authentication failed: user=%s peer=%s", m->user, m->peer_shown);
		/* the wait grows with each failure: guessing costs time */
		clock_sleep_ms(m->cfg->error_delay * m->failures);
		set(rep, m->failures >= PM_AUTH_FAILURES_MAX ? PM_BYE : PM_AUTH, "Authentication failed");
		return;
	default:
		log_msg(LOG_ERR, "cannot check a password: %s", why);
		set(rep, PM_SYS_TEMP, "Temporary authentication failure");
		return;
	}
	if (open_maildrop(m, req->user, rep) != PM_OK)
		return;
	unsigned long long octets = 0;
	for (size_t i = 0; i < m->mb.count; i++)
		octets += wire_size(&m->mb.entry[i]);
	char tls[2 * sizeof req->tls + 3];
	log_msg(LOG_INFO, "login: user=%s peer=%s messages=%zu octets=%llu tls=%s", m->user, m->peer_shown,
		m->mb.count, octets, log_value(tls, sizeof tls, req->tls[0] ? req->tls : "no"));
	/* STLS is over: no handshake comes after a login, and the key goes */
	if (m->tls)
		tls_server_forget_key(m->tls);
	set(rep, PM_OK, "Logged in");
	rep->seen_wanted = m->cfg->format == FORMAT_NUMBERED;
	rep->count = (uint32_t)m->mb.count;
	rep->total = octets;
}

static void list(const struct mon *m, uint32_t first, struct pm_reply *rep)
{
	set(rep, PM_OK, "");
	for (size_t i = first; i < m->mb.count && rep->count < PM_BATCH; i++) {
		struct pm_entry *e = &rep->entry[rep->count++];
		off_t start, len;
		int quoted;
		mailbox_message_place(&m->mb, i, &start, &len, &quoted);
		e->size = wire_size(&m->mb.entry[i]);
		e->start = (uint64_t)start;
		e->len = (uint64_t)len;
		snprintf(e->uid, sizeof e->uid, "%s", m->mb.entry[i].uid);
	}
}

/* The session reads messages itself, from read-only descriptors of the
 * files they are in: the maildrop stays the monitor's, and no octet of
 * it passes through this process.  Several at once, so that a client
 * fetching everything costs one request per FDPASS_MAX messages. */
static int open_messages(struct mon *m, int sock, uint32_t first, struct pm_reply *rep)
{
	int fds[FDPASS_MAX];
	size_t n = 0;
	int rc;

	set(rep, PM_OK, "");
	for (size_t i = first; i < m->mb.count && n < FDPASS_MAX; i++) {
		off_t start, len;
		int quoted;
		int fd = mailbox_message_fd(&m->mb, i, &start, &len, &quoted);
		if (fd < 0) {
			if (n == 0) {
				log_msg(LOG_ERR, "cannot read message %zu of user=%s: %s", i + 1, m->user, strerror(-fd));
				set(rep, PM_SYS_TEMP, -fd == ESTALE ? "Mailbox changed meanwhile"
								    : "Cannot read the message now");
			}
			break;
		}
		fds[n++] = fd;
		rep->quoted = (uint32_t)quoted;
		if (quoted)
			break;	/* one mbox holds them all */
	}
	rep->count = (uint32_t)n;
	rc = fdpass_send_fds(sock, rep, sizeof *rep, fds, n);
	while (n > 0)
		close(fds[--n]);
	return rc;
}

static void update(struct mon *m, struct pm_reply *rep)
{
	unsigned long long n = 0, octets = 0;
	int err;

	for (size_t i = 0; i < m->mb.count; i++)
		if (m->mb.entry[i].deleted) {
			n++;
			octets += wire_size(&m->mb.entry[i]);
		}
	m->why[0] = '\0';
	if ((err = mailbox_apply(&m->mb))) {
		log_msg(LOG_ERR, "cannot remove the deleted messages of user=%s: %s", m->user,
			m->why[0] ? m->why : strerror(err));
		set(rep, PM_SYS_TEMP, err == ESTALE ? "Mailbox changed meanwhile: nothing deleted"
						    : "Deleted messages not removed");
		return;
	}
	m->updated = 1;
	m->dele = n;
	m->dele_octets = octets;
	set(rep, PM_OK, "");
	rep->total = n;
}

/* The handshake's signature: an honest session asks PM_SIGN_LIMIT times
 * at most, before a login, within the bounds of its request, and only
 * when there is a key (0, or -1: the session is not honest). */
static int sign(struct mon *m, const struct pm_request *req, struct pm_reply *rep)
{
	size_t len = sizeof rep->sig;

	if (!m->tls || m->open || req->sign_len > sizeof req->sign_in)
		return -1;
	if (++m->signs > PM_SIGN_LIMIT) {
		log_msg(LOG_ERR, "session asked for a TLS signature %d times (at most %d): peer=%s", m->signs,
			PM_SIGN_LIMIT, m->peer_shown);
		return -1;
	}
	set(rep, PM_OK, "");
	if (tls_server_sign(m->tls, req->sign_pad, req->sign_in, req->sign_len, rep->sig, &len) == 0)
		rep->sig_len = (uint32_t)len;
	else
		log_msg(LOG_ERR, "cannot sign for the TLS handshake (kind %d, %u octets)", (int)req->sign_pad,
			(unsigned)req->sign_len);
	return 0;
}

/* One request: 0, or -1 when the link is done for (a malformed request,
 * or a reply that cannot be sent). */
static int serve(struct mon *m, int sock, struct pm_request *req)
{
	static struct pm_reply rep;

	memset(&rep, 0, sizeof rep);
	if (!memchr(req->user, '\0', sizeof req->user) || !memchr(req->secret, '\0', sizeof req->secret) ||
	    !memchr(req->tls, '\0', sizeof req->tls))
		return -1;
	/* before a login only LOGIN (and SIGN), after it no LOGIN; a
	 * message number names a listed message */
	if (req->op != PM_SIGN && (req->op == PM_LOGIN) == m->open)
		return -1;
	if ((req->op == PM_OPEN || req->op == PM_SEEN || req->op == PM_DELE) && req->index >= m->mb.count)
		return -1;
	switch (req->op) {
	case PM_LOGIN:
		login(m, req, &rep);
		break;
	case PM_LIST:
		list(m, req->index, &rep);
		break;
	case PM_OPEN:
		return open_messages(m, sock, req->index, &rep);
	case PM_RETR:
		m->retr = req->index;
		m->retr_octets = req->octets;
		return 0;	/* told, not asked */
	case PM_SEEN:
		mailbox_seen(&m->mb, req->index);
		return 0;	/* told, not asked */
	case PM_DELE:
		mailbox_delete(&m->mb, req->index);
		break;
	case PM_RSET:
		for (size_t i = 0; i < m->mb.count; i++)
			m->mb.entry[i].deleted = 0;
		break;
	case PM_UPDATE:
		update(m, &rep);
		break;
	case PM_SIGN:
		if (sign(m, req, &rep) == -1)
			return -1;
		break;
	default:
		return -1;
	}
	return fdpass_send(sock, &rep, sizeof rep, -1);
}

void pm_tell(int sock, const struct pm_request *req)
{
	while (send(sock, req, sizeof *req, MSG_NOSIGNAL) == -1 && errno == EINTR)
		;
}

void pm_call(int sock, const struct pm_request *req, struct pm_reply *rep, int *fds, size_t max, size_t *nfds)
{
	int none[1] = { -1 };
	size_t got = 0;
	ssize_t n;

	while ((n = send(sock, req, sizeof *req, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof *req ||
	    fdpass_recv_fds(sock, rep, sizeof *rep, fds ? fds : none, fds ? max : 0, &got) == -1) {
		memset(rep, 0, sizeof *rep);
		set(rep, PM_BYE, "Service not available");
		got = 0;
	}
	rep->text[sizeof rep->text - 1] = '\0';
	for (size_t i = 0; i < PM_BATCH; i++)
		rep->entry[i].uid[MAILBOX_UID_MAX - 1] = '\0';
	if (nfds)
		*nfds = got;
}

int pm_sign(int sock, int pad, const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen)
{
	static struct pm_reply rep;
	struct pm_request req = { .op = PM_SIGN, .sign_pad = pad, .sign_len = (uint32_t)inlen };

	if (inlen > sizeof req.sign_in)
		return -1;
	memcpy(req.sign_in, in, inlen);
	pm_call(sock, &req, &rep, NULL, 0, NULL);
	if (rep.result != PM_OK || rep.sig_len == 0 || rep.sig_len > sizeof rep.sig || rep.sig_len > *outlen)
		return -1;
	memcpy(out, rep.sig, rep.sig_len);
	*outlen = rep.sig_len;
	return 0;
}

int pm_monitor(int sock, pid_t child, const struct config *cfg, const struct peer *peer, struct tls_server *tls)
{
	static struct mon m;
	struct pm_request req;

	m.cfg = cfg;
	m.peer = peer;
	m.tls = tls;
	log_value(m.peer_shown, sizeof m.peer_shown, peer->addr);
	/* the key, while the client reads the greeting and asks for STLS
	 * (--pop3s: while its ClientHello is on its way) */
	if (tls)
		(void)tls_server_prepare(tls);
	for (int got; (got = fdpass_request(sock, &req, sizeof req)) != 0;) {
		int rc = got == 1 ? serve(&m, sock, &req) : -1;
		explicit_bzero(&req, sizeof req);	/* a password, for LOGIN */
		if (rc == -1) {
			fdpass_malformed(child);
			break;
		}
	}
	close(sock);
	if (m.open) {
		/* the session's figures, for the statistics (RFC 1939: a
		 * connection that ends before QUIT deletes nothing) */
		log_msg(LOG_INFO, "logout: user=%s peer=%s retrieved=%llu octets=%llu deleted=%llu deleted_octets=%llu "
			"left=%zu%s", m.user, m.peer_shown, m.retr, m.retr_octets, m.dele, m.dele_octets,
			m.mb.count - (size_t)m.dele, m.updated ? "" : " quit=no");
		mailbox_close(&m.mb);
	}
	fdpass_reap(child);
	return 0;
}
