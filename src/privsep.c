/* privsep: the monitor's request loop, and the session's way of asking. */
#include "privsep.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"
#include "log.h"

#define PS_BAD (-2)	/* a request no honest session sends */

static struct tls_server *monitor_tls;	/* ps_monitor_key */
static int signs;

void ps_monitor_key(struct tls_server *tls)
{
	monitor_tls = tls;
}

/* The handshake's signature; an honest session asks PS_SIGN_LIMIT times
 * at most, within the bounds of its request. */
static int sign(const struct ps_request *req, struct ps_reply *rep)
{
	size_t len = sizeof rep->sig;

	if (++signs > PS_SIGN_LIMIT || req->sign_len > sizeof req->sign_in)
		return PS_BAD;
	if (monitor_tls && tls_server_sign(monitor_tls, req->sign_pad, req->sign_in, req->sign_len, rep->sig, &len) == 0)
		rep->sig_len = (uint32_t)len;
	else
		log_msg(LOG_ERR, "cannot sign for the TLS handshake (kind %d, %u octets)", (int)req->sign_pad,
			(unsigned)req->sign_len);
	return -1;
}
#define PS_QUIET (-3)	/* a request that gets no reply */

static int bounded(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* One request against the transaction.  Returns the descriptor to pass
 * with the reply (DATA), -1 for none, PS_QUIET for no reply (MAIL), or
 * PS_BAD. */
static int serve(struct txn *t, const struct ps_request *req, struct ps_reply *rep)
{
	memset(rep, 0, sizeof *rep);
	if (!bounded(req->arg, sizeof req->arg) || !bounded(req->helo, sizeof req->helo) ||
	    !bounded(req->secret, sizeof req->secret) || !bounded(req->tls, sizeof req->tls))
		return PS_BAD;
	switch (req->op) {
	case PS_MAIL:
		txn_helo(t, req->helo, req->esmtp != 0);
		txn_tls(t, req->tls);
		txn_mail(t, req->arg, &rep->st);
		if (t->cfg->submission)
			return -1;	/* whose sender it is: the monitor's answer */
		/* no reply: the session checked the same syntax with the same
		 * parser; a sender refused here leaves no transaction, and the
		 * recipients that follow get 503 */
		if (rep->st.kind != STATUS_OK)
			log_msg(LOG_WARNING, "sender refused by the monitor after the session accepted it: %s",
				rep->st.text);
		return PS_QUIET;
	case PS_AUTH:
		txn_auth(t, req->arg, req->secret, &rep->st);
		return -1;
	case PS_SIGN:
		return sign(req, rep);
	case PS_RCPT:
		txn_rcpt(t, req->arg, &rep->st);
		return -1;
	case PS_DATA: {
		int fd = txn_data(t, &rep->st);
		snprintf(rep->qid, sizeof rep->qid, "%s", t->qid);
		return fd;
	}
	case PS_DOT:
		snprintf(rep->qid, sizeof rep->qid, "%s", t->qid);
		txn_commit(t, req->size, &rep->st);
		return -1;
	default:
		return PS_BAD;
	}
}

static void link_broken(struct ps_reply *rep)
{
	memset(rep, 0, sizeof *rep);
	status_set(&rep->st, 421, "4.3.0", EPIPE, "Service not available, closing transmission channel");
}

static int send_reply(int sock, const struct ps_reply *rep, int fd)
{
	return fdpass_send(sock, rep, sizeof *rep, fd);
}

/* The reply and, when one came with it, the descriptor. */
static int recv_reply(int sock, struct ps_reply *rep, int *fd)
{
	if (fdpass_recv(sock, rep, sizeof *rep, fd) == -1)
		return -1;
	rep->st.text[sizeof rep->st.text - 1] = '\0';
	rep->st.enhanced[sizeof rep->st.enhanced - 1] = '\0';
	rep->qid[sizeof rep->qid - 1] = '\0';
	return 0;
}

void ps_call(struct ps_link *l, const struct ps_request *req, struct ps_reply *rep, int *spool_fd)
{
	int fd = -1;

	if (spool_fd)
		*spool_fd = -1;
	if (l->fd == -1) {
		fd = serve(l->local, req, rep);
		if (fd == PS_QUIET)
			return;
		/* the session owns what it is given, as over the socket */
		if (fd >= 0 && spool_fd)
			*spool_fd = dup(fd);
		else if (fd == PS_BAD)
			link_broken(rep);
		return;
	}
	ssize_t n;
	while ((n = send(l->fd, req, sizeof *req, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof *req && req->op == PS_MAIL && !l->mail_asked)
		return;		/* told, not asked: no reply comes */
	if (n != (ssize_t)sizeof *req || recv_reply(l->fd, rep, &fd) == -1) {
		link_broken(rep);
		return;
	}
	if (spool_fd)
		*spool_fd = fd;
	else if (fd != -1)
		close(fd);
}

int ps_monitor(int sock, pid_t child, const struct config *cfg, const struct peer *peer)
{
	static struct txn t;
	struct ps_request req;
	struct ps_reply rep;

	txn_init(&t, cfg, peer);
	/* the key, while the client reads the greeting and asks for STARTTLS */
	if (monitor_tls)
		(void)tls_server_prepare(monitor_tls);
	for (int got; (got = fdpass_request(sock, &req, sizeof req)) != 0;) {
		int fd = got == 1 ? serve(&t, &req, &rep) : PS_BAD;
		explicit_bzero(&req, sizeof req);	/* a password, for AUTH */
		if (fd == PS_BAD) {
			fdpass_malformed(child);
			break;
		}
		if (fd != PS_QUIET && send_reply(sock, &rep, fd) == -1)
			break;
	}
	close(sock);
	txn_close(&t);
	fdpass_reap(child);
	return 0;
}
