/* sasl: base64 and the PLAIN and LOGIN responses of AUTH, bounded and strict. */
#include "sasl.h"

#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int sextet(char c)
{
	const char *p = c ? strchr(alphabet, c) : NULL;

	return p ? (int)(p - alphabet) : -1;
}

long sasl_b64_decode(const char *text, unsigned char *out, size_t outsz)
{
	size_t len = strlen(text), n = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			if (text[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = sextet(text[i + k])) < 0)
				return -1;	/* not the alphabet, or data after '=' */
		}
		unsigned long group = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
				      (unsigned long)v[2] << 6 | (unsigned long)v[3];
		/* bits that padding leaves over must be zero: one text, one meaning */
		if ((pad == 1 && (group & 0xff)) || (pad == 2 && (group & 0xffff)))
			return -1;
		for (int k = 0; k < 3 - pad; k++) {
			if (n >= outsz)
				return -1;
			out[n++] = (unsigned char)(group >> (16 - 8 * k));
		}
	}
	return (long)n;
}

long sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t outsz)
{
	size_t n = 0;

	if ((len + 2) / 3 * 4 + 1 > outsz)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		unsigned long group = (unsigned long)in[i] << 16;
		size_t left = len - i;
		if (left > 1)
			group |= (unsigned long)in[i + 1] << 8;
		if (left > 2)
			group |= in[i + 2];
		out[n++] = alphabet[group >> 18 & 63];
		out[n++] = alphabet[group >> 12 & 63];
		out[n++] = left > 1 ? alphabet[group >> 6 & 63] : '=';
		out[n++] = left > 2 ? alphabet[group & 63] : '=';
	}
	out[n] = '\0';
	return (long)n;
}

/* One field of a response: no NUL inside (the caller split on them), no
 * line break, within bounds. */
static int field(const unsigned char *p, size_t len, char *out, size_t outsz, const char **why)
{
	if (len >= outsz) {
		*why = "too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\0' || p[i] == '\r' || p[i] == '\n') {
			*why = "a control character in a name or password";
			return -1;
		}
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

int sasl_plain_split(const unsigned char *msg, size_t len, char user[SASL_NAME_MAX + 1],
		     char pass[SASL_SECRET_MAX + 1], const char **why)
{
	const unsigned char *nul1 = memchr(msg, '\0', len);
	const unsigned char *nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg)) : NULL;
	char authzid[SASL_NAME_MAX + 1];

	if (!nul2) {
		*why = "a PLAIN response is authzid NUL authcid NUL passwd";
		return -1;
	}
	size_t zlen = (size_t)(nul1 - msg), ulen = (size_t)(nul2 - nul1 - 1);
	size_t plen = len - (size_t)(nul2 + 1 - msg);
	if (field(msg, zlen, authzid, sizeof authzid, why) == -1 ||
	    field(nul1 + 1, ulen, user, SASL_NAME_MAX + 1, why) == -1 ||
	    field(nul2 + 1, plen, pass, SASL_SECRET_MAX + 1, why) == -1)
		return -1;
	if (!user[0] || !pass[0]) {
		*why = "an empty user name or password";
		return -1;
	}
	if (authzid[0] && strcmp(authzid, user) != 0) {
		*why = "acting for another user (authzid) is not allowed";
		return -1;
	}
	return 0;
}

int sasl_login_value(const unsigned char *msg, size_t len, char *out, size_t outsz, const char **why)
{
	if (field(msg, len, out, outsz, why) == -1)
		return -1;
	if (!out[0]) {
		*why = "an empty user name or password";
		return -1;
	}
	return 0;
}
