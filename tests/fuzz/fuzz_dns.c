/* fuzz_dns: raw DNS messages into the MX code (mx_parse_mx, mx_parse_addrs).
 *
 * The input is a whole DNS answer as res_nquery returns it, with its real
 * length.  Each parser runs with room for all records and with room for
 * one (the caller's array may be smaller than the answer).  Checked: the
 * count stays within the array, every host name is NUL-terminated inside
 * its buffer, and every address has the family and length of the type
 * asked for, with the port set.
 */
#include <arpa/nameser.h>
#include <netinet/in.h>

#include "../../src/mx.h"
#include "fuzz_util.h"

#define PORT 2525

static void check_hosts(const struct mx_host *h, int n, int max)
{
	FUZZ_CHECK(n >= -1 && n <= max, "%d hosts for room %d", n, max);
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(memchr(h[i].name, '\0', sizeof h[i].name) != NULL, "host %d not terminated", i);
		FUZZ_CHECK(h[i].pref <= 65535, "preference %u", h[i].pref);
	}
}

static void check_addrs(const struct mx_addr *a, int n, int max, int type)
{
	FUZZ_CHECK(n >= -1 && n <= max, "%d addresses for room %d", n, max);
	for (int i = 0; i < n; i++) {
		if (type == ns_t_a) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&a[i].sa;
			FUZZ_CHECK(sin->sin_family == AF_INET && a[i].len == sizeof *sin, "A record %d", i);
			FUZZ_CHECK(ntohs(sin->sin_port) == PORT, "A record %d port", i);
		} else {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a[i].sa;
			FUZZ_CHECK(sin6->sin6_family == AF_INET6 && a[i].len == sizeof *sin6, "AAAA record %d", i);
			FUZZ_CHECK(ntohs(sin6->sin6_port) == PORT, "AAAA record %d port", i);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_host hosts[MX_HOSTS_MAX];
	struct mx_addr addrs[MX_ADDRS_MAX];
	static const int types[] = { ns_t_a, ns_t_aaaa };
	int len = size > 65536 ? 65536 : (int)size;
	int n;

	n = mx_parse_mx(data, len, hosts, MX_HOSTS_MAX);
	check_hosts(hosts, n, MX_HOSTS_MAX);
	n = mx_parse_mx(data, len, hosts, 1);
	check_hosts(hosts, n, 1);
	for (int t = 0; t < 2; t++) {
		n = mx_parse_addrs(data, len, types[t], PORT, addrs, MX_ADDRS_MAX);
		check_addrs(addrs, n, MX_ADDRS_MAX, types[t]);
		n = mx_parse_addrs(data, len, types[t], PORT, addrs, 1);
		check_addrs(addrs, n, 1, types[t]);
	}
	return 0;
}
