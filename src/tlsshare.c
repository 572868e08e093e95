/* tlsshare: an acceptor's TLS context, loaded once, again on a renewal, given to its forked sessions. */
#include "tlsshare.h"

#include <string.h>

#include "fileio.h"
#include "log.h"

void tls_shared_init(struct tls_shared *s, const char *cert, const char *key, tls_signer signer)
{
	memset(s, 0, sizeof *s);
	s->cert = cert;
	s->key = key;
	s->signer = signer;
	s->cert_st.st_ino = (ino_t)-1;	/* nothing loaded yet */
	tls_shared_refresh(s);
}

void tls_shared_refresh(struct tls_shared *s)
{
	char why[TLS_WHY_MAX];
	struct stat cert_st = { 0 }, key_st = { 0 };

	(void)stat(s->cert, &cert_st);
	(void)stat(s->key, &key_st);
	if (fileio_same_file(&cert_st, &s->cert_st) && fileio_same_file(&key_st, &s->key_st))
		return;
	s->cert_st = cert_st;
	s->key_st = key_st;
	tls_server_free(&s->tls);
	if (tls_server_load(&s->tls, s->cert, s->key, s->signer, why, sizeof why) == -1)
		log_msg(LOG_ERR, "configuration error: %s (each session refuses its client until it is fixed)", why);
	else if (log_verbose())
		log_msg(LOG_DEBUG, "TLS certificate %s and key %s loaded", s->cert, s->key);
}

struct tls_server tls_shared_take(struct tls_shared *s, const char *cert, const char *key)
{
	struct tls_server tls = s->tls;

	s->tls = (struct tls_server){ 0 };
	if (tls.ctx && (!cert || !key || strcmp(cert, s->cert) != 0 || strcmp(key, s->key) != 0))
		tls_server_free(&tls);
	return tls;
}
