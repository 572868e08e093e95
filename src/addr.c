/* addr: RFC 5321 path, mailbox and ESMTP parameter syntax. */
#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_letdig(int c) { return is_alpha(c) || is_digit(c); }

static int is_atext(int c)
{
	return is_letdig(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Dot-string: atoms joined by single dots. */
static size_t scan_dot_string(const char *s, size_t len)
{
	size_t i = 0;

	for (;;) {
		size_t start = i;
		while (i < len && is_atext((unsigned char)s[i]))
			i++;
		if (i == start)
			return 0;
		if (i < len && s[i] == '.' && i + 1 < len && is_atext((unsigned char)s[i + 1])) {
			i++;
			continue;
		}
		return i;
	}
}

/* Quoted-string: qtextSMTP is %d32-33 / %d35-91 / %d93-126, quoted-pair %d92 %d32-126. */
static size_t scan_quoted(const char *s, size_t len)
{
	size_t i = 1;

	if (len < 2 || s[0] != '"')
		return 0;
	while (i < len && s[i] != '"') {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\') {
			if (i + 1 >= len || (unsigned char)s[i + 1] < 32 || (unsigned char)s[i + 1] > 126)
				return 0;
			i += 2;
		} else if (c >= 32 && c <= 126) {
			i++;
		} else {
			return 0;
		}
	}
	return i < len ? i + 1 : 0;
}

/* sub-domain = Let-dig [Ldh-str], joined by dots; returns octets used. */
static size_t scan_domain(const char *s, size_t len)
{
	size_t i = 0;

	for (;;) {
		size_t start = i;
		if (i >= len || !is_letdig((unsigned char)s[i]))
			return 0;
		while (i < len && (is_letdig((unsigned char)s[i]) || s[i] == '-'))
			i++;
		if (s[i - 1] == '-' || i - start > 63)
			return 0;
		if (i < len && s[i] == '.') {
			i++;
			continue;
		}
		return i;
	}
}

int addr_is_literal(const char *domain)
{
	return domain[0] == '[';
}

/* address-literal: [IPv4], [IPv6:...] or [tag:dcontent] (RFC 5321 4.1.3). */
static size_t scan_literal(const char *s, size_t len)
{
	char inner[ADDR_DOMAIN_MAX + 1];
	unsigned char bin[16];
	const char *close = memchr(s, ']', len);
	size_t n;

	if (len < 3 || s[0] != '[' || !close)
		return 0;
	n = (size_t)(close - s) - 1;
	if (n == 0 || n >= sizeof inner)
		return 0;
	memcpy(inner, s + 1, n);
	inner[n] = '\0';
	if (strncasecmp(inner, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, inner + 5, bin) != 1)
			return 0;
	} else if (is_digit((unsigned char)inner[0])) {
		if (inet_pton(AF_INET, inner, bin) != 1)
			return 0;
	} else {
		const char *colon = strchr(inner, ':');
		if (!colon || colon == inner)
			return 0;
		for (const char *p = colon + 1; *p; p++)
			if ((unsigned char)*p < 33 || (unsigned char)*p > 126 || *p == '[' || *p == '\\')
				return 0;
	}
	return n + 2;
}

static enum addr_status fill(struct mailaddr *a, const char *local, size_t llen,
			     const char *domain, size_t dlen, const char **why)
{
	if (llen > ADDR_LOCAL_MAX) {
		*why = "local part longer than 64 octets";
		return ADDR_TOO_LONG;
	}
	if (dlen > ADDR_DOMAIN_MAX) {
		*why = "domain longer than 255 octets";
		return ADDR_TOO_LONG;
	}
	memcpy(a->local, local, llen);
	a->local[llen] = '\0';
	memcpy(a->domain, domain, dlen);
	a->domain[dlen] = '\0';
	if (addr_set_domain(a, a->domain) == -1) {
		*why = "path longer than 256 octets";
		return ADDR_TOO_LONG;
	}
	return ADDR_OK;
}

int addr_set_domain(struct mailaddr *a, const char *domain)
{
	char copy[ADDR_DOMAIN_MAX + 1];
	int n;

	snprintf(copy, sizeof copy, "%s", domain);
	snprintf(a->domain, sizeof a->domain, "%s", copy);
	if (copy[0])
		n = snprintf(a->mailbox, sizeof a->mailbox, "%s@%s", a->local, copy);
	else
		n = snprintf(a->mailbox, sizeof a->mailbox, "%s", a->local);
	return n < 0 || (size_t)n >= sizeof a->mailbox ? -1 : 0;
}

static int all_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80 || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

enum addr_status addr_parse_mailbox(const char *s, size_t len, struct mailaddr *a, const char **why)
{
	size_t llen;

	memset(a, 0, sizeof *a);
	if (!all_ascii(s, len)) {
		*why = "address must be printable ASCII";
		return ADDR_NOT_ASCII;
	}
	if (len > ADDR_MAILBOX_MAX) {
		*why = "path longer than 256 octets";
		return ADDR_TOO_LONG;
	}
	llen = s[0] == '"' ? scan_quoted(s, len) : scan_dot_string(s, len);
	if (llen == 0) {
		*why = "bad local part";
		return ADDR_SYNTAX;
	}
	if (llen < len) {
		if (s[llen] != '@' || llen + 1 == len) {
			*why = "expected local-part@domain";
			return ADDR_SYNTAX;
		}
		const char *d = s + llen + 1;
		size_t left = len - llen - 1;
		size_t dlen = d[0] == '[' ? scan_literal(d, left) : scan_domain(d, left);
		if (dlen == 0 || dlen != left) {
			*why = "bad domain";
			return ADDR_SYNTAX;
		}
		return fill(a, s, llen, d, dlen, why);
	}
	return fill(a, s, llen, "", 0, why);
}

/* Skip a source route "@a,@b:" at the front of a path. */
static size_t skip_route(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || s[0] != '@')
		return 0;
	while (i < len && s[i] == '@') {
		size_t d = scan_domain(s + i + 1, len - i - 1);
		if (d == 0)
			return (size_t)-1;
		i += 1 + d;
		if (i < len && s[i] == ',') {
			i++;
			continue;
		}
		if (i < len && s[i] == ':')
			return i + 1;
		return (size_t)-1;
	}
	return (size_t)-1;
}

enum addr_status addr_parse_path(const char *arg, struct mailaddr *a, const char **params, const char **why)
{
	const char *start, *end;

	memset(a, 0, sizeof *a);
	while (*arg == ' ')
		arg++;
	if (*arg == '<') {
		start = arg + 1;
		/* a quoted local part may hold '>' */
		const char *p = start;
		int quoted = 0;
		for (; *p && (quoted || *p != '>'); p++) {
			if (*p == '\\' && quoted && p[1])
				p++;
			else if (*p == '"')
				quoted = !quoted;
		}
		if (*p != '>') {
			*why = "missing '>'";
			return ADDR_SYNTAX;
		}
		end = p;
		*params = p + 1;
	} else {
		/* typed by a person: the path ends at the first space */
		start = arg;
		end = start + strcspn(start, " ");
		*params = end;
	}
	if (**params && **params != ' ') {
		*why = "expected a space before parameters";
		return ADDR_SYNTAX;
	}
	while (**params == ' ')
		(*params)++;
	if (end == start) {
		if (*arg != '<') {
			*why = "missing address";
			return ADDR_SYNTAX;
		}
		a->null = 1;
		return ADDR_OK;
	}
	size_t len = (size_t)(end - start);
	if (len > ADDR_PATH_MAX) {
		*why = "path longer than 256 octets";
		return ADDR_TOO_LONG;
	}
	size_t route = skip_route(start, len);
	if (route == (size_t)-1) {
		*why = "bad source route";
		return ADDR_SYNTAX;
	}
	return addr_parse_mailbox(start + route, len - route, a, why);
}

int addr_next_param(const char **pp, char *key, size_t keysz, char *value, size_t valuesz)
{
	const char *p = *pp;
	size_t k = 0;

	while (*p == ' ')
		p++;
	if (!*p)
		return 0;
	if (!is_letdig((unsigned char)*p))
		return -1;
	while (is_letdig((unsigned char)*p) || *p == '-') {
		if (k + 1 >= keysz)
			return -1;
		key[k++] = *p++;
	}
	key[k] = '\0';
	value[0] = '\0';
	if (*p == '=') {
		size_t v = 0;
		p++;
		/* esmtp-value = 1*(%d33-60 / %d62-126) */
		while ((unsigned char)*p >= 33 && (unsigned char)*p <= 126 && *p != '=') {
			if (v + 1 >= valuesz)
				return -1;
			value[v++] = *p++;
		}
		if (v == 0)
			return -1;
		value[v] = '\0';
	}
	if (*p && *p != ' ')
		return -1;
	*pp = p;
	return 1;
}

/* One element of an RFC 5322 3.4 address list, from *pp to the comma,
 * semicolon or end that closes it: the angle-addr when there is one, else
 * the text without comments and white space.  A group's display name
 * ("undisclosed-recipients:") is dropped.  Quotes are kept. */
int addr_list_next(const char **pp, char *out, size_t outsz)
{
	const char *p = *pp;

	for (;;) {
		size_t n = 0, angle_at = (size_t)-1;
		int quoted = 0, depth = 0, angle = 0, overflow = 0;
		if (!*p)
			return 0;
		for (; *p; p++) {
			char c = *p;
			if (quoted) {
				if (c == '\\' && p[1])
					p++;
				else if (c == '"')
					quoted = 0;
			} else if (depth) {
				if (c == '\\' && p[1])
					p++;
				depth += c == '(' ? 1 : c == ')' ? -1 : 0;
				continue;
			} else if (c == '(') {
				depth = 1;
				continue;
			} else if (c == '"') {
				quoted = 1;
			} else if (c == '<' && !angle) {
				angle = 1;
				n = 0;		/* what came before was the display name */
				angle_at = 0;
				continue;
			} else if (c == '>' && angle) {
				angle = 0;
				angle_at = n;	/* text after the angle-addr is ignored */
				continue;
			} else if (c == ':' && !angle) {
				n = 0;		/* a group's name */
				continue;
			} else if ((c == ',' || c == ';') && !angle) {
				p++;
				break;
			}
			if (!quoted && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
				continue;
			if (angle_at != (size_t)-1 && !angle)
				continue;
			if (n + 1 < outsz)
				out[n++] = *p;
			else
				overflow = 1;
		}
		out[n] = '\0';
		*pp = p;
		if (overflow)
			return -1;
		if (n > 0)
			return 1;
	}
}
