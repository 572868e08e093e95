/* addr: parsing and checking of SMTP paths and ESMTP parameters (RFC 5321 4.1.2).
 *
 * Pure functions, no I/O.  Limits are RFC 5321 4.5.3.1: local part 64,
 * domain 255, path 256 octets.  Tolerated as Postfix tolerates them by
 * default: a space after the colon and a path typed without angle brackets.
 * A source route (<@a,@b:user@c>) is accepted and ignored (RFC 5321 C).
 * Only ASCII is accepted (no SMTPUTF8), so an address is always printable
 * and never holds a space outside quotes, a tab or a line break.
 */
#ifndef MAILSLOT_ADDR_H
#define MAILSLOT_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256
#define ADDR_MAILBOX_MAX (ADDR_PATH_MAX - 2)

struct mailaddr {
	int null;				/* the null path <> */
	char local[ADDR_LOCAL_MAX + 1];		/* as sent, quotes included */
	char domain[ADDR_DOMAIN_MAX + 1];	/* empty when none was given */
	char mailbox[ADDR_MAILBOX_MAX + 1];	/* local@domain, or "" */
};

enum addr_status { ADDR_OK, ADDR_SYNTAX, ADDR_TOO_LONG, ADDR_NOT_ASCII };

/* Parse "<path> params" (text after "FROM:" or "TO:").  *params is set to
 * the parameter text after the path.  A missing domain is allowed (the
 * caller decides what it means); *why says what is wrong otherwise. */
enum addr_status addr_parse_path(const char *arg, struct mailaddr *a, const char **params,
				 const char **why);
/* Parse a bare mailbox "local@domain" (aliases file, queue).  len bytes. */
enum addr_status addr_parse_mailbox(const char *s, size_t len, struct mailaddr *a, const char **why);
/* Rebuild a->mailbox after the caller changed local or domain. */
int addr_set_domain(struct mailaddr *a, const char *domain);
int addr_is_literal(const char *domain);

/* Next "KEYWORD[=value]" of an ESMTP parameter list; returns 1 with one
 * parameter, 0 at the end, -1 on bad syntax. */
int addr_next_param(const char **p, char *key, size_t keysz, char *value, size_t valuesz);

/* The next address of an RFC 5322 address list (a To: field's value, or
 * sendmail's "a@b, Name <c@d>" argument) into out: 1, 0 at the end, -1
 * when one does not fit (skipped).  Not checked: addr_parse_mailbox is. */
int addr_list_next(const char **pp, char *out, size_t outsz);

#endif
