/* mx: MX and address lookup with res_nquery and ns_initparse/ns_parserr;
 * HOST[:PORT] and address literals; this machine's own addresses. */
#include "mx.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define DNS_ANSWER_MAX 65536

static struct __res_state res;
static int res_ready;

/* A bare address as people write one: AF_INET, AF_INET6 or 0. */
static int bare_address(const char *name)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, name, buf) == 1 ? AF_INET : inet_pton(AF_INET6, name, buf) == 1 ? AF_INET6 : 0;
}

int mx_literal(const char *name, unsigned port, struct mx_addr *out)
{
	char inner[MX_NAME_MAX];
	size_t len = strlen(name);

	if (len < 3 || name[0] != '[')
		return 0;
	if (name[len - 1] != ']' || len - 2 >= sizeof inner)
		return -1;
	snprintf(inner, sizeof inner, "%.*s", (int)(len - 2), name + 1);
	memset(out, 0, sizeof *out);
	if (strncasecmp(inner, "IPv6:", 5) == 0) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->sa;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		out->len = sizeof *s6;
		return inet_pton(AF_INET6, inner + 5, &s6->sin6_addr) == 1 ? 1 : -1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->sa;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	out->len = sizeof *s4;
	return inet_pton(AF_INET, inner, &s4->sin_addr) == 1 ? 1 : -1;
}

int mx_hostport(const char *spec, unsigned defport, char *host, size_t hostsz, unsigned *port)
{
	const char *close = spec[0] == '[' ? strchr(spec, ']') : NULL;
	const char *colon = strrchr(spec, ':');
	size_t hlen = strlen(spec);

	*port = defport;
	if (spec[0] == '[' && !close)
		return -1;
	/* a colon inside the brackets belongs to the address; a bare IPv6
	 * address has no room for a port */
	if (colon && (close ? colon > close : !bare_address(spec))) {
		char *end;
		unsigned long p = strtoul(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end || p == 0 || p > 65535)
			return -1;
		*port = (unsigned)p;
		hlen = (size_t)(colon - spec);
	}
	if (close && spec + hlen != close + 1)
		return -1;	/* something between "]" and ":" */
	if (hlen == 0 || hlen >= hostsz)
		return -1;
	char name[MX_NAME_MAX];
	if (hlen >= sizeof name)
		return -1;
	snprintf(name, sizeof name, "%.*s", (int)hlen, spec);
	/* spelled as people do: 192.0.2.1, [2001:db8::1] and 2001:db8::1 are
	 * given the RFC 5321 forms [192.0.2.1] and [IPv6:2001:db8::1] */
	int family = bare_address(name);
	if (!family && name[0] == '[' && strncasecmp(name, "[IPv6:", 6) != 0) {
		name[hlen - 1] = '\0';
		if (bare_address(name + 1) == AF_INET6)
			family = AF_INET6;
		memmove(name, name + 1, hlen - 1);
		if (!family)
			snprintf(name, sizeof name, "%.*s", (int)hlen, spec);	/* as it was */
	}
	if (family == AF_INET6)
		snprintf(host, hostsz, "[IPv6:%s]", name);
	else if (family == AF_INET)
		snprintf(host, hostsz, "[%s]", name);
	else
		snprintf(host, hostsz, "%s", name);
	struct mx_addr probe;
	return host[0] == '[' && mx_literal(host, *port, &probe) != 1 ? -1 : 0;
}

int mx_init(const char *dns_server, char *err, size_t errlen)
{
	if (res_ninit(&res) == -1) {
		snprintf(err, errlen, "cannot initialise the resolver");
		return -1;
	}
	/* absolute names only: no search list appended to a mail domain */
	res.options &= ~(unsigned long)(RES_DEFNAMES | RES_DNSRCH);
	if (dns_server) {
		char host[MX_NAME_MAX];
		unsigned port;
		struct mx_addr a;
		if (mx_hostport(dns_server, 53, host, sizeof host, &port) == -1 || mx_literal(host, port, &a) != 1) {
			snprintf(err, errlen, "--dns-server '%s': bad address or port", dns_server);
			return -1;
		}
		if (a.sa.ss_family != AF_INET) {
			/* res_state holds IPv6 servers only in glibc's private _u._ext */
			snprintf(err, errlen, "--dns-server: only IPv4 addresses are supported");
			return -1;
		}
		memcpy(&res.nsaddr_list[0], &a.sa, sizeof res.nsaddr_list[0]);
		res.nscount = 1;
	}
	res_ready = 1;
	return 0;
}

/* -1 and the outcome in *st when the query gave no usable answer. */
static int query(const char *name, int type, unsigned char *answer, int size, enum mx_status *st)
{
	int len = res_nquery(&res, name, ns_c_in, type, answer, size);

	if (len == -1) {
		switch (res.res_h_errno) {
		case HOST_NOT_FOUND:
			*st = MX_NXDOMAIN;
			break;
		case NO_DATA:
			*st = MX_NODATA;
			break;
		default:
			*st = MX_TEMP;
			break;
		}
		return -1;
	}
	if (len > size)	/* truncated: the real length is larger than our buffer */
		len = size;
	return len;
}

int mx_parse_mx(const unsigned char *answer, int len, struct mx_host *out, int max)
{
	ns_msg msg;
	ns_rr rr;
	int n = 0;

	if (len <= 0 || ns_initparse(answer, len, &msg) == -1)
		return -1;
	int count = ns_msg_count(msg, ns_s_an);
	for (int i = 0; i < count; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			return -1;
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in)
			continue;	/* CNAMEs the server followed for us */
		if (ns_rr_rdlen(rr) < 3)
			return -1;
		const unsigned char *rd = ns_rr_rdata(rr);
		if (n >= max)
			continue;
		out[n].pref = ns_get16(rd);
		if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), rd + 2, out[n].name,
				       sizeof out[n].name) == -1)
			return -1;
		n++;
	}
	return n;
}

int mx_parse_addrs(const unsigned char *answer, int len, int type, unsigned port, struct mx_addr *out, int max)
{
	ns_msg msg;
	ns_rr rr;
	int n = 0;

	if (len <= 0 || ns_initparse(answer, len, &msg) == -1)
		return -1;
	int count = ns_msg_count(msg, ns_s_an);
	for (int i = 0; i < count && n < max; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			return -1;
		if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
			continue;
		memset(&out[n], 0, sizeof out[n]);
		if (type == ns_t_a && ns_rr_rdlen(rr) == 4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&out[n].sa;
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)port);
			memcpy(&sin->sin_addr, ns_rr_rdata(rr), 4);
			out[n++].len = sizeof *sin;
		} else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out[n].sa;
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)port);
			memcpy(&sin6->sin6_addr, ns_rr_rdata(rr), 16);
			out[n++].len = sizeof *sin6;
		} else {
			return -1;
		}
	}
	return n;
}

/* An MX exchange is a host name (RFC 7505, RFC 5321 5.1); one that reads
 * as an address, bare or as a literal, is not followed. */
static int looks_like_address(const char *name)
{
	char copy[MX_NAME_MAX];
	size_t len = strlen(name);

	snprintf(copy, sizeof copy, "%s", name);
	if (len > 0 && copy[len - 1] == '.')
		copy[len - 1] = '\0';
	return bare_address(copy) != 0 || copy[0] == '[';
}

static void sort_hosts(struct mx_host *h, int n)
{
	/* random order among equal preferences: a random key, then sort */
	unsigned keys[MX_HOSTS_MAX];

	if (getrandom(keys, sizeof keys, GRND_NONBLOCK) != (ssize_t)sizeof keys)
		for (int i = 0; i < n; i++)
			keys[i] = (unsigned)i;	/* no entropy yet: keep the DNS order */
	for (int i = 1; i < n; i++) {
		for (int j = i; j > 0; j--) {
			int swap = h[j].pref < h[j - 1].pref || (h[j].pref == h[j - 1].pref && keys[j] < keys[j - 1]);
			if (!swap)
				break;
			struct mx_host th = h[j];
			h[j] = h[j - 1];
			h[j - 1] = th;
			unsigned tk = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = tk;
		}
	}
}

enum mx_status mx_hosts(const char *domain, const char *self, struct mx_host *out, int *n, char *why, size_t whylen)
{
	static unsigned char answer[DNS_ANSWER_MAX];
	enum mx_status st = MX_OK;
	int len;

	*n = 0;
	if (!res_ready) {
		snprintf(why, whylen, "resolver not initialised");
		return MX_TEMP;
	}
	len = query(domain, ns_t_mx, answer, sizeof answer, &st);
	if (len == -1 && st != MX_NODATA) {
		snprintf(why, whylen, st == MX_NXDOMAIN ? "domain %s does not exist" : "DNS lookup of %s failed (MX)",
			 domain);
		return st;
	}
	if (len > 0) {
		int found = mx_parse_mx(answer, len, out, MX_HOSTS_MAX);
		if (found == -1) {
			snprintf(why, whylen, "malformed DNS answer for %s", domain);
			return MX_TEMP;
		}
		*n = found;
	}
	if (*n == 0) {
		/* RFC 5321 5.1: no MX, the domain itself is the mail host */
		snprintf(out[0].name, sizeof out[0].name, "%s", domain);
		out[0].pref = 0;
		*n = 1;
		return MX_OK;
	}
	for (int i = 0; i < *n; i++) {
		if (out[i].name[0] == '\0' || strcmp(out[i].name, ".") == 0) {
			snprintf(why, whylen, "domain %s accepts no mail (null MX)", domain);
			return MX_NULL;
		}
	}
	sort_hosts(out, *n);
	/* RFC 5321 5.1: when we are one of the MX hosts, only better ones count */
	int keep = 0;
	for (int i = 0; i < *n; i++) {
		if (self && strcasecmp(out[i].name, self) == 0)
			break;
		if (looks_like_address(out[i].name))
			continue;
		out[keep++] = out[i];
	}
	if (keep == 0) {
		snprintf(why, whylen, "MX for %s points to ourselves or to an address literal", domain);
		return MX_BAD;
	}
	*n = keep;
	return MX_OK;
}

enum mx_status mx_addresses(const char *host, unsigned port, struct mx_addr *out, int *n)
{
	static unsigned char answer[DNS_ANSWER_MAX];
	static const int types[] = { ns_t_aaaa, ns_t_a };
	enum mx_status worst = MX_NODATA;

	*n = 0;
	for (int t = 0; t < 2 && *n < MX_ADDRS_MAX; t++) {
		enum mx_status st = MX_OK;
		int len = query(host, types[t], answer, sizeof answer, &st);
		if (len == -1) {
			if (st == MX_TEMP || (st == MX_NXDOMAIN && worst != MX_TEMP))
				worst = st;
			continue;
		}
		int found = mx_parse_addrs(answer, len, types[t], port, out + *n, MX_ADDRS_MAX - *n);
		if (found > 0)
			*n += found;
		else if (found == -1)
			worst = MX_TEMP;
	}
	return *n > 0 ? MX_OK : worst;
}

/* The addresses of this machine's interfaces, read once a run. */
static struct mx_addr self_addrs[64];
static int nself = -1;

static void load_self(void)
{
	struct ifaddrs *ifs;

	nself = 0;
	if (getifaddrs(&ifs) == -1)
		return;		/* then only the fixed rules below apply */
	for (const struct ifaddrs *i = ifs; i && nself < (int)(sizeof self_addrs / sizeof self_addrs[0]);
	     i = i->ifa_next) {
		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		size_t len = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		memset(&self_addrs[nself], 0, sizeof self_addrs[nself]);
		memcpy(&self_addrs[nself].sa, i->ifa_addr, len);
		self_addrs[nself++].len = (socklen_t)len;
	}
	freeifaddrs(ifs);
}

/* 4 octets for an IPv4 or IPv4-mapped IPv6 address (::ffff:a.b.c.d
 * reaches the IPv4 address), else NULL. */
static const unsigned char *ipv4_of(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return IN6_IS_ADDR_V4MAPPED(a6) ? a6->s6_addr + 12 : NULL;
}

int mx_addr_is_self(const struct mx_addr *a)
{
	const unsigned char *v4 = ipv4_of(&a->sa);

	if (nself == -1)
		load_self();
	/* 0.0.0.0/8 and :: are "this host" (RFC 1122 3.2.1.3; Linux connects
	 * them to a local listener) */
	if (v4 ? v4[0] == 0 : IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr))
		return 1;
	for (int i = 0; i < nself; i++) {
		const unsigned char *mine = ipv4_of(&self_addrs[i].sa);
		if (v4 && mine && memcmp(v4, mine, 4) == 0)
			return 1;
		if (!v4 && !mine &&
		    memcmp(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr,
			   &((const struct sockaddr_in6 *)&self_addrs[i].sa)->sin6_addr, 16) == 0)
			return 1;
	}
	return 0;
}
