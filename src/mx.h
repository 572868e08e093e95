/* mx: where mail for a domain goes, through libresolv (RFC 5321 5.1).
 *
 * MX records sorted by preference, random order among equal preferences;
 * no MX records: the domain itself is the implicit MX; a null MX "0 ."
 * (RFC 7505) is a permanent failure.  Addresses come from AAAA then A
 * queries to the same DNS server (no getaddrinfo, so --dns-server rules
 * every lookup).  NXDOMAIN is permanent; SERVFAIL, timeouts and anything
 * unclear are temporary, so that only an authoritative answer bounces.
 * The answer parser (mx_parse) is pure and takes the real answer length.
 * Also the one place that parses HOST[:PORT] and address literals, and
 * that knows which addresses are this machine's (a loop, not a host).
 */
#ifndef MAILSLOT_MX_H
#define MAILSLOT_MX_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#define MX_NAME_MAX 256
#define MX_HOSTS_MAX 16
#define MX_ADDRS_MAX 16

enum mx_status {
	MX_OK,
	MX_TEMP,	/* try again later */
	MX_NXDOMAIN,	/* the domain does not exist: 5.1.2 */
	MX_NULL,	/* RFC 7505 null MX: 5.1.10 */
	MX_NODATA,	/* the name exists, no record of that type */
	MX_BAD,		/* MX to an address literal, or only to ourselves: 5.4.4 */
};

struct mx_host {
	char name[MX_NAME_MAX];
	unsigned pref;
};

struct mx_addr {
	struct sockaddr_storage sa;
	socklen_t len;
};

/* dns_server "ADDR", "ADDR:PORT" or "[ADDR]:PORT", IPv4 only (an IPv6
 * server is refused with a reason); NULL for resolv.conf. */
int mx_init(const char *dns_server, char *err, size_t errlen);
/* The one parser of HOST[:PORT] (--smarthost, --dns-server): a name, an
 * address or an address literal, then ":PORT" (1-65535, defport when
 * absent).  host gets the name, or the address in the RFC 5321 literal
 * form: 192.0.2.1 and [192.0.2.1] as [192.0.2.1]; 2001:db8::1,
 * [2001:db8::1] and [IPv6:2001:db8::1] as [IPv6:2001:db8::1].  -1 when
 * malformed. */
int mx_hostport(const char *spec, unsigned defport, char *host, size_t hostsz, unsigned *port);
/* The one parser of address literals (RFC 5321 4.1.3): "[192.0.2.1]" or
 * "[IPv6:2001:db8::1]".  1 with *out set; 0 when name is not bracketed
 * (a host name); -1 when bracketed but not an address. */
int mx_literal(const char *name, unsigned port, struct mx_addr *out);

/* The hosts to try for a domain, best first.  self: our own host name. */
enum mx_status mx_hosts(const char *domain, const char *self, struct mx_host *out, int *n, char *why,
			size_t whylen);
/* Addresses of one host, IPv6 first. */
enum mx_status mx_addresses(const char *host, unsigned port, struct mx_addr *out, int *n);

/* Whether connecting to this address would reach this machine: an
 * address of one of its interfaces (getifaddrs, read once), 0.0.0.0/8 or
 * ::, also in IPv4-mapped form.  Other addresses of 127.0.0.0/8 are not
 * an interface's address and do not count (as in Postfix). */
int mx_addr_is_self(const struct mx_addr *a);

/* Parse a DNS answer: up to max MX records (type MX) or addresses (A/AAAA)
 * into the callbacks' arrays.  Returns the number found, -1 if malformed. */
int mx_parse_mx(const unsigned char *answer, int len, struct mx_host *out, int max);
int mx_parse_addrs(const unsigned char *answer, int len, int type, unsigned port, struct mx_addr *out, int max);

#endif
