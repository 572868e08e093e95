/* fuzz_addr: the path, mailbox and ESMTP parameter parsers of addr.c.
 *
 * The input is the text after "MAIL FROM:" or "RCPT TO:" (a NUL-terminated
 * copy, as the session passes it), and also a bare mailbox of the same
 * bytes (aliases file, queue envelope).  Checked on every accepted address:
 * the RFC 5321 limits hold, the mailbox is local@domain of the parts, it
 * is printable ASCII without a line break, and it parses again as a bare
 * mailbox to the same parts: the session writes it into the queue and
 * mailslot-relay reads it back with addr_parse_mailbox, so an address the
 * server accepts but the relay refuses is a message stuck in the queue.
 * Parameters: each keyword and value has the RFC 5321 4.1.2 syntax, and the
 * list ends (no parameter is returned twice at one position).  As an RFC
 * 5322 address list (mailslot-sendmail's arguments and -t): every step
 * advances, the list ends, and each address fits its buffer.
 */
#include <stdlib.h>

#include "../../src/addr.h"
#include "fuzz_util.h"

static int is_letdig(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static void check_printable(const char *s, const char *what)
{
	for (const char *p = s; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "%s holds byte 0x%02x",
			   what, (unsigned char)*p);
}

static void check_address(const struct mailaddr *a)
{
	char expect[ADDR_PATH_MAX + 8];
	struct mailaddr again;
	const char *why = "";

	if (a->null) {
		FUZZ_CHECK(!a->local[0] && !a->domain[0] && !a->mailbox[0], "null path with parts");
		return;
	}
	FUZZ_CHECK(strlen(a->local) <= ADDR_LOCAL_MAX, "local part of %zu octets", strlen(a->local));
	FUZZ_CHECK(strlen(a->domain) <= ADDR_DOMAIN_MAX, "domain of %zu octets", strlen(a->domain));
	FUZZ_CHECK(strlen(a->mailbox) <= ADDR_MAILBOX_MAX, "mailbox of %zu octets", strlen(a->mailbox));
	FUZZ_CHECK(a->local[0], "accepted an empty local part");
	check_printable(a->mailbox, "mailbox");
	if (a->domain[0])
		snprintf(expect, sizeof expect, "%s@%s", a->local, a->domain);
	else
		snprintf(expect, sizeof expect, "%s", a->local);
	FUZZ_CHECK(strcmp(expect, a->mailbox) == 0, "mailbox '%s' is not '%s'", a->mailbox, expect);
	FUZZ_CHECK(addr_parse_mailbox(a->mailbox, strlen(a->mailbox), &again, &why) == ADDR_OK,
		   "accepted '%s' but it does not parse back: %s", a->mailbox, why);
	FUZZ_CHECK(strcmp(again.local, a->local) == 0 && strcmp(again.domain, a->domain) == 0 &&
		   strcmp(again.mailbox, a->mailbox) == 0 && !again.null,
		   "'%s' parses back as '%s' + '%s'", a->mailbox, again.local, again.domain);
}

static void check_params(const char *params)
{
	const char *p = params;
	char key[32], value[64];
	int rc, n = 0;

	while ((rc = addr_next_param(&p, key, sizeof key, value, sizeof value)) == 1) {
		FUZZ_CHECK(++n <= 1000 && p > params, "parameter list does not advance");
		FUZZ_CHECK(key[0] && is_letdig((unsigned char)key[0]), "keyword '%s'", key);
		for (const char *k = key; *k; k++)
			FUZZ_CHECK(is_letdig((unsigned char)*k) || *k == '-', "keyword '%s'", key);
		for (const char *v = value; *v; v++)
			FUZZ_CHECK((unsigned char)*v >= 33 && (unsigned char)*v <= 126 && *v != '=', "value '%s'", value);
		FUZZ_CHECK(*p == '\0' || *p == ' ', "parameter ends before '%c'", *p);
		params = p;
	}
	FUZZ_CHECK(rc == 0 || rc == -1, "addr_next_param returned %d", rc);
}

static void check_list(const char *text)
{
	const char *p = text, *before = text;
	char out[ADDR_MAILBOX_MAX + 1];
	int rc;

	while ((rc = addr_list_next(&p, out, sizeof out)) != 0) {
		FUZZ_CHECK(p > before && p <= text + strlen(text), "the address list does not advance");
		FUZZ_CHECK(rc == 1 || rc == -1, "addr_list_next returned %d", rc);
		if (rc == 1)
			FUZZ_CHECK(out[0] && strlen(out) < sizeof out, "address '%s'", out);
		before = p;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *arg = malloc(size + 1);
	struct mailaddr a;
	const char *params = NULL, *why = NULL;

	if (!arg)
		return 0;
	memcpy(arg, data, size);
	arg[size] = '\0';

	enum addr_status st = addr_parse_path(arg, &a, &params, &why);
	if (st == ADDR_OK) {
		check_address(&a);
		FUZZ_CHECK(params >= arg && params <= arg + strlen(arg), "params outside the argument");
		check_params(params);
		/* the session completes a bare local part with its primary domain */
		if (!a.null && !a.domain[0] && addr_set_domain(&a, "example.org") == 0)
			check_address(&a);
		if (!a.null && a.domain[0] == '[')
			FUZZ_CHECK(addr_is_literal(a.domain), "literal not recognised");
	} else {
		FUZZ_CHECK(why && *why, "refusal %d without a reason", st);
	}

	/* the same bytes as a bare mailbox, with their real length (NULs too) */
	why = NULL;
	st = addr_parse_mailbox((const char *)data, size, &a, &why);
	if (st == ADDR_OK) {
		FUZZ_CHECK(memchr(data, '\0', size) == NULL, "accepted a mailbox with a NUL");
		check_address(&a);
		FUZZ_CHECK(strlen(a.mailbox) == size, "mailbox '%s' is not all of the %zu input octets", a.mailbox,
			   size);
	} else {
		FUZZ_CHECK(why && *why, "refusal %d without a reason", st);
	}

	/* the parameter parser on its own, from the start of the text */
	check_params(arg);
	check_list(arg);
	free(arg);
	return 0;
}
