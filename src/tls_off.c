/* tls_off: the TLS interface (tls.h) in the handler built without OpenSSL.
 *
 * mailslot-smtpd and mailslot-pop3d are linked without OpenSSL: a static
 * PIE relocates every pointer in libcrypto's tables at each start, about
 * 20,000 relocations and 115 more pages, 0.5 ms of every plain connection.
 * When TLS is configured each runs its -tls build instead (tlsbuild.h),
 * the same program linked with tls.c; here every TLS call says it is not
 * built in.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>

int tls_built_in(void)
{
	return 0;
}

static struct tls_ctx *not_built(char *why, size_t whylen)
{
	snprintf(why, whylen, "this program is built without TLS (mailslot-smtpd-tls has it)");
	errno = ENOSYS;
	return NULL;
}

struct tls_ctx *tls_server_ctx(const char *cert_file, const char *key_file, char *why, size_t whylen)
{
	(void)cert_file;
	(void)key_file;
	return not_built(why, whylen);
}

struct tls_ctx *tls_client_ctx(enum tls_verify verify, const char *ca_file, char *why, size_t whylen)
{
	(void)verify;
	(void)ca_file;
	return not_built(why, whylen);
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	(void)ctx;
}

int tls_start(struct conn *c, struct tls_ctx *ctx, const char *peer_name, int timeout_ms, char *why,
	      size_t whylen)
{
	(void)c;
	(void)ctx;
	(void)peer_name;
	(void)timeout_ms;
	not_built(why, whylen);
	return -1;
}

int tls_active(const struct conn *c)
{
	(void)c;
	return 0;
}

void tls_describe(const struct conn *c, char *out, size_t outsz)
{
	(void)c;
	if (outsz)
		out[0] = '\0';
}

void tls_end(struct conn *c)
{
	(void)c;
}

int tls_server_load(struct tls_server *t, const char *cert, const char *key, tls_signer signer, char *why,
		    size_t whylen)
{
	(void)cert;
	(void)key;
	(void)signer;
	*t = (struct tls_server){ 0 };
	not_built(why, whylen);
	return -1;
}

void tls_server_forget_key(struct tls_server *t)
{
	(void)t;
}

int tls_server_prepare(struct tls_server *t)
{
	(void)t;
	return -1;
}

int tls_server_sign(struct tls_server *t, int pad, const unsigned char *in, size_t inlen, unsigned char *out,
		    size_t *outlen)
{
	(void)t;
	(void)pad;
	(void)in;
	(void)inlen;
	(void)out;
	(void)outlen;
	return -1;
}

void tls_server_free(struct tls_server *t)
{
	(void)t;
}
