/* sasl: the octets of AUTH PLAIN and AUTH LOGIN (RFC 4954, RFC 4616).
 *
 * Base64 (RFC 4648) both ways, strict on decoding: only the alphabet,
 * padding where it belongs and nowhere else, no white space, so that one
 * response has one meaning.  PLAIN's message is authzid NUL authcid NUL
 * passwd; an authzid other than empty or the authcid itself is refused
 * (mailslot lets nobody act for another user).  Every output is bounded
 * by its caller's buffer and NUL-terminated; a user name or password
 * holding NUL, CR or LF is refused.  Nothing here logs: the callers must
 * never log what passes through.
 */
#ifndef MAILSLOT_SASL_H
#define MAILSLOT_SASL_H

#include <stddef.h>

#define SASL_NAME_MAX 255
#define SASL_SECRET_MAX 255
/* the longest base64 response a client may send: a PLAIN message of
 * authzid, authcid and passwd at their limits, encoded */
#define SASL_RESPONSE_MAX (((3 * (SASL_NAME_MAX + 1) + 2) / 3) * 4 + 4)

/* Decode text (its whole length) into out: the length, or -1 when text
 * is not base64 or does not fit. */
long sasl_b64_decode(const char *text, unsigned char *out, size_t outsz);
/* Encode len octets into out (NUL-terminated): the length, or -1 when out
 * is too small. */
long sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t outsz);

/* A decoded PLAIN message into its user and password: 0, or -1 with *why
 * a reason fit for the client. */
int sasl_plain_split(const unsigned char *msg, size_t len, char user[SASL_NAME_MAX + 1],
		     char pass[SASL_SECRET_MAX + 1], const char **why);
/* A decoded LOGIN user name or password: 0, or -1 (*why as above). */
int sasl_login_value(const unsigned char *msg, size_t len, char *out, size_t outsz, const char **why);

#endif
