/* fuzz_sasl: the AUTH decoder of sasl.c, on anything a client may send.
 *
 * The input is one response line (NUL-terminated copy).  Checked: the
 * decoder never writes past its buffer (ASan) and reports a length within
 * it; what it accepts encodes back to the very same text (strict base64:
 * one text, one meaning); a PLAIN message it splits gives a non-empty user
 * and password with no NUL, CR or LF, within their limits, and an authzid
 * that is empty or the user; a LOGIN value the same.  The raw input is
 * also split as a decoded PLAIN message, so every byte pattern reaches the
 * splitter, not only valid base64.
 */
#include <stdlib.h>

#include "../../src/sasl.h"
#include "fuzz_util.h"

static void check_value(const char *v, size_t max, const char *what)
{
	size_t len = strlen(v);

	FUZZ_CHECK(len > 0 && len <= max, "%s of length %zu", what, len);
	FUZZ_CHECK(!strpbrk(v, "\r\n"), "%s holds a line break", what);
}

static void check_plain(const unsigned char *msg, size_t len)
{
	char user[SASL_NAME_MAX + 1], pass[SASL_SECRET_MAX + 1], value[SASL_SECRET_MAX + 1];
	const char *why = NULL;

	if (sasl_plain_split(msg, len, user, pass, &why) == 0) {
		check_value(user, SASL_NAME_MAX, "user");
		check_value(pass, SASL_SECRET_MAX, "password");
		/* authzid NUL user NUL pass: the user is right after the first NUL */
		const unsigned char *nul = memchr(msg, '\0', len);
		FUZZ_CHECK(nul && (nul == msg || (size_t)(nul - msg) == strlen(user)), "authzid is another user");
	} else {
		FUZZ_CHECK(why && *why, "refused without a reason");
	}
	if (sasl_login_value(msg, len, value, sizeof value, &why) == 0) {
		check_value(value, SASL_SECRET_MAX, "login value");
		FUZZ_CHECK(strlen(value) == len, "login value cut short");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char out[3 * (SASL_NAME_MAX + 1)];
	char text[SASL_RESPONSE_MAX + 8], again[SASL_RESPONSE_MAX + 8];

	if (size >= sizeof text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	long n = sasl_b64_decode(text, out, sizeof out);
	if (n >= 0) {
		FUZZ_CHECK((size_t)n <= sizeof out, "decoded %ld octets into %zu", n, sizeof out);
		long m = sasl_b64_encode(out, (size_t)n, again, sizeof again);
		FUZZ_CHECK(m >= 0 && strcmp(again, text) == 0, "\"%s\" decodes and encodes to \"%s\"", text, again);
		check_plain(out, (size_t)n);
	}
	check_plain(data, size);
	return 0;
}
