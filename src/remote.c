/* remote: one message to one domain's recipients: route, connect, TLS policy, SMTP, outcomes. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mx.h"
#include "smtpc.h"
#include "tls.h"

/* The TLS and AUTH policy of this run (remote_setup). */
static struct {
	enum smtpc_tls smarthost;	/* the smarthost's mode; every MX gets SMTPC_TLS_MAY */
	const char *ca;			/* --smarthost-ca, or NULL: the system's store */
	int auth;			/* AUTH with user and pass */
	char user[SMTPC_CRED_MAX + 1];
	char pass[SMTPC_CRED_MAX + 1];
	struct tls_ctx *may, *verify;	/* made when a connection first needs them */
} policy;

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

/* ------------------------------------------------------------ settings */

/* "auto" is resolved by the smarthost's port: 587 is submission with
 * STARTTLS (RFC 6409), 465 submission over TLS (RFC 8314). */
static int tls_mode(const struct config *cfg, unsigned port, char *err, size_t errlen)
{
	static const char *const names[] = { [SMTPC_TLS_NONE] = "none", [SMTPC_TLS_MAY] = "may",
					     [SMTPC_TLS_REQUIRE] = "starttls", [SMTPC_TLS_IMPLICIT] = "smtps" };
	const char *m = cfg->smarthost_tls ? cfg->smarthost_tls : "auto";

	if (strcasecmp(m, "auto") == 0) {
		policy.smarthost = port == 587 ? SMTPC_TLS_REQUIRE : port == 465 ? SMTPC_TLS_IMPLICIT : SMTPC_TLS_MAY;
		return 0;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcasecmp(m, names[i]) == 0) {
			policy.smarthost = (enum smtpc_tls)i;
			return 0;
		}
	}
	snprintf(err, errlen, "--smarthost-tls '%.100s': expected auto, starttls, smtps, may or none", m);
	return -1;
}

/* A secret belongs to this account alone (ssh's rule for keys): a file
 * others can read, or that another account owns and could change, is
 * refused before anything is read from it. */
static int private_file(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--smarthost-auth %s: not a regular file", path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "--smarthost-auth %s: owned by uid %u, not by this account (uid %u)", path,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "--smarthost-auth %s: permissions %04o are too open (group or others): chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* The first line that is not blank or a '#' comment: "user:password",
 * split at the first colon (a password may hold colons, a name may not). */
static int parse_credentials(char *text, const char *path, char *err, size_t errlen)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (line[strspn(line, " \t")] == '\0' || line[0] == '#')
			continue;
		char *colon = strchr(line, ':');
		if (!colon || colon == line || colon[1] == '\0') {
			snprintf(err, errlen, "--smarthost-auth %s: expected a line \"user:password\"", path);
			return -1;
		}
		*colon = '\0';
		if (strlen(line) > SMTPC_CRED_MAX || strlen(colon + 1) > SMTPC_CRED_MAX) {
			snprintf(err, errlen, "--smarthost-auth %s: user or password longer than %d octets", path,
				 SMTPC_CRED_MAX);
			return -1;
		}
		snprintf(policy.user, sizeof policy.user, "%s", line);
		snprintf(policy.pass, sizeof policy.pass, "%s", colon + 1);
		return 0;
	}
	snprintf(err, errlen, "--smarthost-auth %s: no \"user:password\" line", path);
	return -1;
}

static int read_credentials(const char *path, char *err, size_t errlen)
{
	char text[2 * SMTPC_CRED_MAX + 512];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n = 0, got;

	if (fd == -1) {
		snprintf(err, errlen, "--smarthost-auth %s: %s", path, strerror(errno));
		return -1;
	}
	if (private_file(fd, path, err, errlen) == -1) {
		close(fd);
		return -1;
	}
	while ((size_t)n < sizeof text - 1 && (got = read(fd, text + n, sizeof text - 1 - (size_t)n)) != 0) {
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			snprintf(err, errlen, "--smarthost-auth %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		n += got;
	}
	close(fd);
	text[n] = '\0';
	int rc = parse_credentials(text, path, err, errlen);
	explicit_bzero(text, sizeof text);
	return rc;
}

/* The CA file is read when the first connection needs it: checked now,
 * so that a wrong path is a configuration error and not a deferral. */
static int check_ca(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--smarthost-ca %s: %s", path, fd == -1 ? strerror(errno) : "not a regular file");
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int remote_setup(const struct config *cfg, char *err, size_t errlen)
{
	char host[MX_NAME_MAX];
	unsigned port = (unsigned)cfg->port;

	policy.smarthost = SMTPC_TLS_MAY;
	if (!cfg->smarthost) {
		const char *what = cfg->smarthost_tls ? "tls" : cfg->smarthost_ca ? "ca" : cfg->smarthost_auth ? "auth" : NULL;
		if (what)
			snprintf(err, errlen, "--smarthost-%s is set without --smarthost", what);
		return what ? -1 : 0;
	}
	if (mx_hostport(cfg->smarthost, port, host, sizeof host, &port) == -1) {
		snprintf(err, errlen, "--smarthost '%s': bad host or port", cfg->smarthost);
		return -1;
	}
	if (tls_mode(cfg, port, err, errlen) == -1)
		return -1;
	int verified = policy.smarthost >= SMTPC_TLS_REQUIRE;
	if (cfg->smarthost_ca && !verified) {
		snprintf(err, errlen, "--smarthost-ca needs --smarthost-tls starttls or smtps (the certificate is not checked otherwise)");
		return -1;
	}
	if (cfg->smarthost_auth && !verified) {
		snprintf(err, errlen, "--smarthost-auth needs --smarthost-tls starttls or smtps: AUTH is never sent in clear");
		return -1;
	}
	if (cfg->smarthost_ca && check_ca(cfg->smarthost_ca, err, errlen) == -1)
		return -1;
	policy.ca = cfg->smarthost_ca;
	if (cfg->smarthost_auth && read_credentials(cfg->smarthost_auth, err, errlen) == -1)
		return -1;
	policy.auth = cfg->smarthost_auth != NULL;
	return 0;
}

/* ------------------------------------------------------------ one connection */

/* The client context for a mode, made once; NULL with why set. */
static struct tls_ctx *client_ctx(enum smtpc_tls mode, char *why, size_t whylen)
{
	int verify = mode >= SMTPC_TLS_REQUIRE;
	struct tls_ctx **slot = verify ? &policy.verify : &policy.may;

	if (!*slot)
		*slot = tls_client_ctx(verify ? TLS_VERIFY_PEER : TLS_VERIFY_NONE, verify ? policy.ca : NULL, why,
				       whylen);
	return *slot;
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
	/* left non-blocking: smtpc waits with poll under its deadlines */
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

/* "Verified TLS connection to smtp.example[192.0.2.1]:587: TLSv1.3
 * TLS_AES_256_GCM_SHA384", beside the delivery's status lines. */
static void log_tls(const struct envelope *env, const char *where, const struct smtpc_job *job)
{
	char f_id[64], f_tls[16 + TLS_DESCRIBE_MAX];
	const char *fields[] = { f_id, f_tls, NULL };

	snprintf(f_id, sizeof f_id, "MAILSLOT_QUEUE_ID=%s", env->id);
	snprintf(f_tls, sizeof f_tls, "MAILSLOT_TLS=%s", job->tls_info);
	log_fields(LOG_INFO, fields, "%s: %s TLS connection to %s: %s%s", env->id,
		   job->tls_mode >= SMTPC_TLS_REQUIRE ? "Verified" : "Unverified", where, job->tls_info,
		   job->authenticated ? ", authenticated" : "");
}

/* One address: connect and run the session under the TLS policy in
 * job->tls_mode; an opportunistic handshake that failed is tried once
 * more in clear on a new connection.  SMTPC_TEMP: why (and job->status)
 * say why. */
static enum smtpc_outcome try_address(const struct config *cfg, const struct envelope *env, const struct mx_addr *addr,
				      const char *where, struct smtpc_job *job, char *why, size_t whylen)
{
	enum smtpc_tls mode = job->tls_mode;
	char twhy[TLS_WHY_MAX], cwhy[160];

	job->tls = NULL;
	job->status[0] = '\0';
	if (mode != SMTPC_TLS_NONE && !(job->tls = client_ctx(mode, twhy, sizeof twhy))) {
		if (mode >= SMTPC_TLS_REQUIRE) {
			snprintf(why, whylen, "%s: %s", where, twhy);
			snprintf(job->status, sizeof job->status, "4.7.5");
			return SMTPC_TEMP;
		}
		log_msg(LOG_WARNING, "%s: %s: sending without TLS", env->id, twhy);
		mode = SMTPC_TLS_NONE;
	}
	for (int clear = 0; clear < 2; clear++) {
		int fd = connect_timeout(cfg, addr, cwhy, sizeof cwhy);
		if (fd == -1) {
			snprintf(why, whylen, "%s: %s", where, cwhy);
			log_msg(LOG_INFO, "%s: %s", env->id, why);
			return SMTPC_TEMP;
		}
		job->fd = fd;
		job->tls_mode = clear ? SMTPC_TLS_NONE : mode;
		enum smtpc_outcome out = smtpc_run(job);
		close(fd);
		if (job->tls_info[0])
			log_tls(env, where, job);
		if (out == SMTPC_DONE)
			return out;
		snprintf(why, whylen, "%s: %s", where, job->error);
		log_msg(LOG_INFO, "%s: %s", env->id, why);
		/* Postfix's "may": TLS that fails is no reason to keep the mail */
		if (!job->tls_failed || mode != SMTPC_TLS_MAY)
			return out;
		log_msg(LOG_INFO, "%s: %s: trying again without TLS", env->id, where);
	}
	return SMTPC_TEMP;
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
	char why[QUEUE_ERROR_MAX] = "no mail host answered", where[320], why_status[8] = "4.4.1";
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
		char addr[80];
		addr_text(&targets[t].addr, addr, sizeof addr);
		snprintf(where, sizeof where, "%s%s", host->name, addr);
		/* the smarthost is the administrator's choice, whatever its name;
		 * its name (or literal) is what its certificate must carry */
		struct smtpc_job job = { .helo = cfg->hostname, .sender = env->sender,
					 .self = cfg->smarthost ? NULL : cfg->hostname,
					 .rcpts = rcpts, .nrcpt = n, .msgfd = msgfd, .msgsize = msgsize,
					 .timeout = cfg->timeout, .verbose = cfg->verbose,
					 .tls_mode = cfg->smarthost ? policy.smarthost : SMTPC_TLS_MAY,
					 .tls_name = host->name,
					 .auth_user = policy.auth ? policy.user : NULL, .auth_pass = policy.pass };
		if (try_address(cfg, env, &targets[t].addr, where, &job, why, sizeof why) == SMTPC_TEMP) {
			if (job.status[0])
				snprintf(why_status, sizeof why_status, "%s", job.status);
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
		rcpt_result_set(&res[idx[i]], final ? OUT_PERM : OUT_TEMP, final ? "5.1.2" : why_status, NULL, "%s", why);
out:
	free(targets);
	free(rcpts);
}
