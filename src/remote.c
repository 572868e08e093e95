/* remote: one message to one domain's recipients: route, connect, SMTP, outcomes. */
#include "remote.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "mx.h"
#include "smtpc.h"

void rcpt_result_set(struct rcpt_result *r, enum rcpt_outcome o, const char *status, const char *mta,
		     const char *fmt, ...)
{
	char text[QUEUE_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	r->outcome = o;
	snprintf(r->status, sizeof r->status, "%s", status);
	log_printable(r->text, sizeof r->text, text, strlen(text));
	snprintf(r->mta, sizeof r->mta, "%s", mta ? mta : "");
}

/* "550 5.1.1 text": the enhanced code when the reply has one. */
static void status_from_reply(int code, const char *text, char *out, size_t outsz)
{
	/* RFC 3463: class "." subject "." detail, 1-3 digits each */
	const char *p = strlen(text) > 4 ? text + 4 : "";
	size_t len = 0;
	int parts = 0;

	while (parts < 3) {
		size_t digits = strspn(p + len, "0123456789");
		if (digits == 0 || digits > 3)
			break;
		len += digits;
		parts++;
		if (parts < 3 && p[len] != '.')
			break;
		if (parts < 3)
			len++;
	}
	if (parts == 3 && p[0] - '0' == code / 100 && (p[len] == ' ' || p[len] == '\0'))
		snprintf(out, outsz, "%.*s", (int)len, p);
	else
		snprintf(out, outsz, "%d.0.0", code / 100);
}

static int connect_timeout(const struct config *cfg, const struct mx_addr *a, char *why, size_t whylen)
{
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct pollfd pfd;
	int err = 0;
	socklen_t len = sizeof err;

	if (fd == -1) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == -1 && errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	int pr = poll(&pfd, 1, (int)(cfg->connect_timeout * 1000));
	if (pr <= 0) {
		err = pr == 0 ? ETIMEDOUT : errno;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err)
		goto fail;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
fail:
	snprintf(why, whylen, "connect: %s", strerror(err ? err : errno));
	close(fd);
	return -1;
}

static void addr_text(const struct mx_addr *a, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (a->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		port = ntohs(s4->sin_port);
	}
	snprintf(out, outsz, "[%s]:%u", ip, port);
}

/* The hosts to try: the smarthost, an address literal, or the MX list. */
static enum mx_status destination(const struct config *cfg, const char *domain, struct mx_host *hosts,
				  int *nhosts, unsigned *port, char *why, size_t whylen)
{
	*port = (unsigned)cfg->port;
	*nhosts = 1;
	hosts[0].pref = 0;
	if (cfg->smarthost) {
		/* checked at start-up: it parses */
		if (mx_hostport(cfg->smarthost, *port, hosts[0].name, sizeof hosts[0].name, port) == -1) {
			snprintf(why, whylen, "bad --smarthost '%s'", cfg->smarthost);
			return MX_TEMP;
		}
		return MX_OK;
	}
	if (domain[0] == '[') {
		snprintf(hosts[0].name, sizeof hosts[0].name, "%s", domain);
		return MX_OK;
	}
	return mx_hosts(domain, cfg->hostname, hosts, nhosts, why, whylen);
}

/* Where to connect: every address of every host, best host first, and
 * whether connecting would loop back.  Resolved before any connection is
 * made, because RFC 5321 5.1 drops every host at or after the preference
 * of this host's own entry, and equal preferences come in random order. */
struct target_addr {
	int host;			/* index into the host list */
	struct mx_addr addr;
};

void remote_deliver(const struct config *cfg, const struct envelope *env, int msgfd, off_t msgsize,
		    const char *domain, const int *idx, int n, struct rcpt_result *res)
{
	struct mx_host hosts[MX_HOSTS_MAX];
	struct mx_addr addrs[MX_ADDRS_MAX];
	struct smtpc_rcpt *rcpts = calloc((size_t)n, sizeof *rcpts);
	struct target_addr *targets = calloc((size_t)MX_HOSTS_MAX * MX_ADDRS_MAX, sizeof *targets);
	char why[QUEUE_ERROR_MAX] = "no mail host answered", where[320];
	int nhosts = 0, naddrs, ntargets = 0;
	unsigned port;

	if (!rcpts || !targets) {
		for (int i = 0; i < n; i++)
			rcpt_result_set(&res[idx[i]], OUT_TEMP, "4.3.0", NULL, "out of memory");
		goto out;
	}
	enum mx_status st = destination(cfg, domain, hosts, &nhosts, &port, why, sizeof why);
	if (st != MX_OK) {
		static const char *const codes[] = { [MX_NXDOMAIN] = "5.1.2", [MX_NULL] = "5.1.10", [MX_BAD] = "5.4.4" };
		for (int i = 0; i < n; i++) {
			if (st == MX_TEMP || st == MX_NODATA)
				rcpt_result_set(&res[idx[i]], OUT_TEMP, "4.4.3", NULL, "%s", why);
			else
				rcpt_result_set(&res[idx[i]], OUT_PERM, codes[st], NULL, "%s", why);
		}
		goto out;
	}
	for (int i = 0; i < n; i++)
		rcpts[i] = (struct smtpc_rcpt){ .address = env->rcpt[idx[i]].address };
	int perm_dns = 1;	/* every host lookup said NXDOMAIN */
	int self_host = -1;	/* the best host that is this machine */
	char self_where[320] = "";
	for (int h = 0; h < nhosts; h++) {
		if (self_host != -1 && hosts[h].pref >= hosts[self_host].pref)
			break;	/* sorted: nothing after this one counts */
		int lit = mx_literal(hosts[h].name, port, &addrs[0]);
		if (lit != 0) {
			naddrs = lit == 1;
			st = naddrs ? MX_OK : MX_BAD;
		} else {
			st = mx_addresses(hosts[h].name, port, addrs, &naddrs);
		}
		if (st != MX_OK) {
			perm_dns &= st == MX_NXDOMAIN || st == MX_NODATA;
			snprintf(why, sizeof why, "cannot find the address of %s", hosts[h].name);
			continue;
		}
		perm_dns = 0;
		for (int a = 0; a < naddrs; a++) {
			/* RFC 5321 5.1: a host that is this machine is a loop, unless the
			 * administrator named it with --smarthost */
			if (!cfg->smarthost && mx_addr_is_self(&addrs[a])) {
				char addr[80];
				addr_text(&addrs[a], addr, sizeof addr);
				self_host = h;
				snprintf(self_where, sizeof self_where, "%s%s", hosts[h].name, addr);
				break;
			}
			targets[ntargets++] = (struct target_addr){ .host = h, .addr = addrs[a] };
		}
	}
	if (self_host != -1) {
		/* drop what came before it at its own preference (random order) */
		while (ntargets > 0 && hosts[targets[ntargets - 1].host].pref >= hosts[self_host].pref)
			ntargets--;
		if (ntargets == 0) {
			/* Postfix's words; 5.4.6: routing loop detected (RFC 3463) */
			for (int i = 0; i < n; i++)
				rcpt_result_set(&res[idx[i]], OUT_PERM, "5.4.6", NULL,
					   "mail for %s loops back to myself (%s is this host)", domain, self_where);
			goto out;
		}
	}
	for (int t = 0; t < ntargets; t++) {
		const struct mx_host *host = &hosts[targets[t].host];
		char addr[80], cwhy[160];
		addr_text(&targets[t].addr, addr, sizeof addr);
		snprintf(where, sizeof where, "%s%s", host->name, addr);
		int fd = connect_timeout(cfg, &targets[t].addr, cwhy, sizeof cwhy);
		if (fd == -1) {
			snprintf(why, sizeof why, "%s: %s", where, cwhy);
			log_msg(LOG_INFO, "%s: %s", env->id, why);
			continue;
		}
		/* the smarthost is the administrator's choice, whatever its name */
		struct smtpc_job job = { .fd = fd, .helo = cfg->hostname, .sender = env->sender,
					 .self = cfg->smarthost ? NULL : cfg->hostname,
					 .rcpts = rcpts, .nrcpt = n, .msgfd = msgfd, .msgsize = msgsize,
					 .timeout = cfg->timeout, .verbose = cfg->verbose };
		enum smtpc_outcome out = smtpc_run(&job);
		close(fd);
		if (out == SMTPC_TEMP) {
			snprintf(why, sizeof why, "%s: %s", where, job.error);
			log_msg(LOG_INFO, "%s: %s", env->id, why);
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct rcpt_result *r = &res[idx[i]];
			char status[16];
			status_from_reply(rcpts[i].code, rcpts[i].text, status, sizeof status);
			enum rcpt_outcome o = rcpts[i].code / 100 == 2 ? OUT_SENT :
					 rcpts[i].code / 100 == 5 ? OUT_PERM : OUT_TEMP;
			/* RFC 3464 Remote-MTA names the host; the address is for the log */
			rcpt_result_set(r, o, status, host->name, "%s", rcpts[i].text[0] ? rcpts[i].text : "no reply");
			snprintf(r->where, sizeof r->where, "%s", where);
		}
		goto out;
	}
	/* A host whose name does not resolve, with no other host, is as final as NXDOMAIN
	 * only when it is the domain itself (implicit MX). */
	int final = perm_dns && nhosts == 1 && !cfg->smarthost && strcasecmp(hosts[0].name, domain) == 0;
	for (int i = 0; i < n; i++)
		rcpt_result_set(&res[idx[i]], final ? OUT_PERM : OUT_TEMP, final ? "5.1.2" : "4.4.1", NULL, "%s", why);
out:
	free(targets);
	free(rcpts);
}
