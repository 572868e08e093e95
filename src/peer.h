/* peer: who is on the other end of standard input, and how we were reached.
 *
 * A socket on fd 0 (systemd Accept=yes, inetd, xinetd, tcpserver) gives
 * the peer and local addresses by getpeername/getsockname; v4-mapped IPv6
 * addresses are shown as IPv4.  Without a socket, UCSPI variables
 * (TCPREMOTEIP, TCPLOCALIP) are used when set; otherwise a person is at a
 * terminal.  The listener class is "local" when the local address is a
 * loopback address (or for a terminal or a Unix socket), else "network":
 * by default only a local-class connection may relay.
 */
#ifndef MAILSLOT_PEER_H
#define MAILSLOT_PEER_H

#include <arpa/inet.h>

#define PEER_ADDR_MAX (INET6_ADDRSTRLEN + 8)

enum peer_kind { PEER_TERMINAL, PEER_SOCKET, PEER_UCSPI, PEER_LISTENING };

struct peer {
	enum peer_kind kind;
	int network;			/* CRLF rules apply: not a person at a terminal */
	int local_class;		/* reached through a loopback address */
	int ipv6;
	char addr[PEER_ADDR_MAX];	/* peer address, or "terminal" */
	char local_addr[PEER_ADDR_MAX];
	unsigned port;
};

void peer_identify(struct peer *p);
/* "[192.0.2.1]" or "[IPv6:2001:db8::1]", as an address literal. */
void peer_literal(const struct peer *p, const char *addr, char *out, size_t outsz);

#endif
