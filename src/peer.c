/* peer: addresses of the connection on fd 0, from the socket, UCSPI or a terminal. */
#include "peer.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Text form of an address; v4-mapped IPv6 shown as IPv4.  Returns 1 if loopback. */
static int format_addr(const struct sockaddr_storage *ss, char *out, size_t outsz, unsigned *port, int *v6)
{
	*v6 = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)outsz);
		if (port)
			*port = ntohs(sin->sin_port);
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		if (port)
			*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], out, (socklen_t)outsz);
			return sin6->sin6_addr.s6_addr[12] == 127;
		}
		*v6 = 1;
		inet_ntop(AF_INET6, &sin6->sin6_addr, out, (socklen_t)outsz);
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	snprintf(out, outsz, "%s", ss->ss_family == AF_UNIX ? "unix" : "unknown");
	return ss->ss_family == AF_UNIX;
}

static int text_is_loopback(const char *a)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (inet_pton(AF_INET, a, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, a, &v6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&v6))
			return v6.s6_addr[12] == 127;
		return IN6_IS_ADDR_LOOPBACK(&v6);
	}
	return 0;
}

void peer_identify(struct peer *p)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int v6 = 0;

	memset(p, 0, sizeof *p);
	if (getpeername(0, (struct sockaddr *)&ss, &len) == 0) {
		p->kind = PEER_SOCKET;
		p->network = 1;
		format_addr(&ss, p->addr, sizeof p->addr, &p->port, &p->ipv6);
		len = sizeof ss;
		if (getsockname(0, (struct sockaddr *)&ss, &len) == 0)
			p->local_class = format_addr(&ss, p->local_addr, sizeof p->local_addr, NULL, &v6);
		return;
	}
	if (errno == ENOTCONN) {
		/* a listening socket: started without Accept=yes / --accept */
		p->kind = PEER_LISTENING;
		return;
	}
	const char *remote = getenv("TCPREMOTEIP");
	if (remote && *remote) {
		const char *local = getenv("TCPLOCALIP");
		const char *port = getenv("TCPREMOTEPORT");
		p->kind = PEER_UCSPI;
		p->network = 1;
		snprintf(p->addr, sizeof p->addr, "%s", remote);
		snprintf(p->local_addr, sizeof p->local_addr, "%s", local ? local : "");
		p->ipv6 = strchr(remote, ':') != NULL;
		p->port = port ? (unsigned)strtoul(port, NULL, 10) : 0;
		p->local_class = local && text_is_loopback(local);
		return;
	}
	p->kind = PEER_TERMINAL;
	p->local_class = 1;
	snprintf(p->addr, sizeof p->addr, "terminal");
	snprintf(p->local_addr, sizeof p->local_addr, "terminal");
}

void peer_literal(const struct peer *p, const char *addr, char *out, size_t outsz)
{
	(void)p;
	if (strchr(addr, ':'))
		snprintf(out, outsz, "[IPv6:%s]", addr);
	else
		snprintf(out, outsz, "[%s]", addr);
}
