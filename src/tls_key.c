/* tls_key: the server's private key is parsed and used by the monitor only; the session's context signs through it.
 *
 * A TLS server uses its key for one thing in our profile: the handshake's
 * signature (ECDHE only, no RSA key exchange).  The session's context
 * holds the certificate and its public key, given a method whose private
 * operation asks the monitor (privsep.h PS_SIGN for SMTP, pop3mon.h
 * PM_SIGN for POP3); the monitor signs what it is sent, as OpenSMTPD's
 * lka does.  A session taken over can have something signed while its
 * connection lasts, never read the key.
 *
 * The key is never parsed in a process a session is forked from: OpenSSL
 * 3's decoders leave copies of the DER in freed memory, which a fork would
 * hand down.  The file's octets wait in pages of their own (an anonymous
 * mapping the session unmaps); the pair is checked at load time in a
 * child process; the monitor parses the key at the first signature.
 *
 * OpenSSL 3 reaches such a key through the legacy EC_KEY_METHOD and
 * RSA_METHOD, deprecated but kept for engines; a provider of our own would
 * be ten times the code.  Another key type (Ed25519) is loaded into the
 * context as before, with a warning in the log.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "tls.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

#define KEY_FILE_MAX ((size_t)64 * 1024)

static tls_signer session_signer;

/* ------------------------------------------------------------ loading */

/* The key file's octets in a mapping of their own. */
static int read_key_file(struct tls_server *t, const char *path, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	if (fd == -1) {
		snprintf(why, whylen, "cannot read the TLS key %s: %s", path, strerror(errno));
		return -1;
	}
	t->pem_map = KEY_FILE_MAX;
	t->pem = mmap(NULL, t->pem_map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->pem == MAP_FAILED) {
		t->pem = NULL;
		close(fd);
		snprintf(why, whylen, "cannot read the TLS key %s: %s", path, strerror(errno));
		return -1;
	}
	(void)madvise(t->pem, t->pem_map, MADV_DONTDUMP);
	t->pem_len = 0;
	while (t->pem_len < t->pem_map && (n = read(fd, t->pem + t->pem_len, t->pem_map - t->pem_len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			break;
		t->pem_len += (size_t)n;
	}
	close(fd);
	if (t->pem_len == t->pem_map) {
		snprintf(why, whylen, "TLS key %s: larger than %zu KiB", path, KEY_FILE_MAX / 1024);
		return -1;
	}
	return 0;
}

/* PKCS#8's inner key: EC with its curve from the algorithm's
 * parameters (the inner ECPrivateKey may leave them out), or RSA. */
static int key_of_pkcs8(struct tls_server *t, const unsigned char *der, long len)
{
	const unsigned char *p = der, *inner;
	const ASN1_OBJECT *alg;
	const X509_ALGOR *algor;
	const void *param;
	int inner_len, ptype;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);

	if (!p8 || PKCS8_pkey_get0(&alg, &inner, &inner_len, &algor, p8) != 1) {
		PKCS8_PRIV_KEY_INFO_free(p8);
		return -1;
	}
	if (OBJ_obj2nid(alg) == NID_rsaEncryption) {
		t->rsa = d2i_RSAPrivateKey(NULL, &inner, inner_len);
	} else if (OBJ_obj2nid(alg) == NID_X9_62_id_ecPublicKey) {
		X509_ALGOR_get0(NULL, &ptype, &param, algor);
		if (ptype == V_ASN1_OBJECT && (t->ec = EC_KEY_new_by_curve_name(OBJ_obj2nid(param))) &&
		    !d2i_ECPrivateKey(&t->ec, &inner, inner_len)) {
			EC_KEY_free(t->ec);
			t->ec = NULL;
		}
	}
	PKCS8_PRIV_KEY_INFO_free(p8);	/* wipes the inner octets */
	return t->rsa || t->ec ? 0 : -1;
}

/* The key, by the legacy decoders: OpenSSL 3's decoder framework would
 * fill each monitor's heap with its caches, and leave the DER behind in
 * freed memory.  The DER itself is in memory wiped when freed. */
static int parse_key(struct tls_server *t)
{
	BIO *bio = BIO_new_mem_buf(t->pem, (int)t->pem_len);
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long len = 0;
	int rc = -1;

	if (bio && PEM_read_bio_ex(bio, &name, &header, &der, &len, PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE) == 1) {
		const unsigned char *p = der;
		if (strcmp(name, "PRIVATE KEY") == 0)
			rc = key_of_pkcs8(t, der, len);
		else if (strcmp(name, "EC PRIVATE KEY") == 0)
			rc = (t->ec = d2i_ECPrivateKey(NULL, &p, len)) ? 0 : -1;
		else if (strcmp(name, "RSA PRIVATE KEY") == 0)
			rc = (t->rsa = d2i_RSAPrivateKey(NULL, &p, len)) ? 0 : -1;
	}
	OPENSSL_secure_clear_free(der, (size_t)len);
	OPENSSL_free(name);
	OPENSSL_free(header);
	BIO_free(bio);
	return rc;
}

/* The whole pair loaded and checked by tls_server_ctx, in a child that
 * takes its copies of the key with it; its reason comes back by a pipe. */
static int check_pair(const char *cert, const char *key, char *why, size_t whylen)
{
	int fds[2];
	pid_t pid;
	int ws = 0;

	if (pipe2(fds, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		snprintf(why, whylen, "cannot check the TLS key %s: %s", key, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char child_why[TLS_WHY_MAX] = "";
		struct tls_ctx *ctx = tls_server_ctx(cert, key, child_why, sizeof child_why);
		(void)!write(fds[1], child_why, strlen(child_why));
		_exit(ctx ? 0 : 1);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], why, whylen - 1);
	why[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	while (waitpid(pid, &ws, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	if (!why[0])
		snprintf(why, whylen, "cannot check the TLS key %s", key);
	return -1;
}

/* ------------------------------------------------------------ the session's side */

static int ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
		   const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	size_t len = (size_t)ECDSA_size(ec);

	(void)type;
	(void)kinv;
	(void)r;
	if (dlen < 0 || !session_signer || session_signer(TLS_SIGN_ECDSA, dgst, (size_t)dlen, sig, &len) == -1)
		return 0;
	*siglen = (unsigned int)len;
	return 1;
}

static int rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	size_t len = (size_t)RSA_size(rsa);

	if (flen < 0 || !session_signer || session_signer(padding, from, (size_t)flen, to, &len) == -1)
		return -1;
	return (int)len;
}

/* The certificate's public key, its private operation sent to the signer. */
static EVP_PKEY *proxy_of(X509 *cert)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert), *proxy = EVP_PKEY_new();
	int ok = 0;

	if (!pub || !proxy) {
		EVP_PKEY_free(proxy);
		return NULL;
	}
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC) {
		static EC_KEY_METHOD *ec_method;
		if (!ec_method && (ec_method = EC_KEY_METHOD_new(EC_KEY_OpenSSL())))
			EC_KEY_METHOD_set_sign(ec_method, ec_sign, NULL, NULL);
		EC_KEY *ec = EVP_PKEY_get1_EC_KEY(pub);
		ok = ec && ec_method && EC_KEY_set_method(ec, ec_method) == 1 && EVP_PKEY_assign_EC_KEY(proxy, ec) == 1;
		if (!ok)
			EC_KEY_free(ec);
	} else if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA) {
		static RSA_METHOD *rsa_method;
		if (!rsa_method && (rsa_method = RSA_meth_dup(RSA_PKCS1_OpenSSL())))
			RSA_meth_set_priv_enc(rsa_method, rsa_priv_enc);
		RSA *rsa = EVP_PKEY_get1_RSA(pub);
		ok = rsa && rsa_method && RSA_set_method(rsa, rsa_method) == 1 && EVP_PKEY_assign_RSA(proxy, rsa) == 1;
		if (!ok)
			RSA_free(rsa);
	}
	if (!ok) {
		EVP_PKEY_free(proxy);
		return NULL;
	}
	return proxy;
}

int tls_server_load(struct tls_server *t, const char *cert, const char *key, tls_signer signer, char *why,
		    size_t whylen)
{
	*t = (struct tls_server){ 0 };
	/* the certificate's context first: the child that checks the pair
	 * then finds OpenSSL started and its algorithms fetched, 1.5 ms less
	 * for every process that loads a pair (pop3d: every connection) */
	if (!(t->ctx = tls_server_ctx_cert(cert, why, whylen)))
		return -1;
	if (check_pair(cert, key, why, whylen) == -1) {
		tls_server_free(t);
		return -1;
	}
	SSL_CTX *ssl = tls_ctx_ssl(t->ctx);
	EVP_PKEY *proxy = proxy_of(SSL_CTX_get0_certificate(ssl));
	int ok = proxy && SSL_CTX_use_PrivateKey(ssl, proxy) == 1;
	EVP_PKEY_free(proxy);
	if (ok) {
		session_signer = signer;
		ok = read_key_file(t, key, why, whylen) == 0;
	} else {
		/* a key type the monitor cannot sign with: in the context */
		tls_ctx_free(t->ctx);
		t->ctx = tls_server_ctx(cert, key, why, whylen);
		t->key_in_session = 1;
		ok = t->ctx != NULL;
		if (ok)
			log_msg(LOG_WARNING, "TLS key %s stays in the session process: the monitor signs with EC "
					     "and RSA keys only", key);
	}
	if (!ok)
		tls_server_free(t);
	return ok ? 0 : -1;
}

void tls_server_forget_key(struct tls_server *t)
{
	if (t->pem)
		munmap(t->pem, t->pem_map);	/* the monitor's copy stays: ours goes */
	t->pem = NULL;
	EC_KEY_free(t->ec);
	RSA_free(t->rsa);
	t->ec = NULL;
	t->rsa = NULL;
}

void tls_server_free(struct tls_server *t)
{
	if (t->pem) {
		OPENSSL_cleanse(t->pem, t->pem_len);
		munmap(t->pem, t->pem_map);
	}
	EC_KEY_free(t->ec);
	RSA_free(t->rsa);
	tls_ctx_free(t->ctx);
	*t = (struct tls_server){ 0 };
}

/* ------------------------------------------------------------ the monitor's side */

static int sign_with(const struct tls_server *t, int pad, const unsigned char *in, size_t inlen, unsigned char *out,
		     size_t *outlen)
{
	if (pad == TLS_SIGN_ECDSA) {
		unsigned int len;
		/* a digest: SHA-512's at most */
		if (!t->ec || inlen == 0 || inlen > 64 || (size_t)ECDSA_size(t->ec) > *outlen ||
		    ECDSA_sign(0, in, (int)inlen, out, &len, t->ec) != 1)
			return -1;
		*outlen = len;
		return 0;
	}
	if (!t->rsa || (pad != RSA_NO_PADDING && pad != RSA_PKCS1_PADDING) || (size_t)RSA_size(t->rsa) > *outlen ||
	    inlen > (size_t)RSA_size(t->rsa))
		return -1;
	int n = RSA_private_encrypt((int)inlen, in, out, t->rsa, pad);
	if (n < 0)
		return -1;
	*outlen = (size_t)n;
	return 0;
}

int tls_server_prepare(struct tls_server *t)
{
	if (t->ec || t->rsa)
		return 0;
	if (!t->pem)
		return -1;
	int rc = parse_key(t);
	munmap(t->pem, t->pem_map);	/* parsed or not, the octets are done with */
	t->pem = NULL;
	return rc;
}

int tls_server_sign(struct tls_server *t, int pad, const unsigned char *in, size_t inlen, unsigned char *out,
		    size_t *outlen)
{
	int rc = -1;

	if (tls_server_prepare(t) == 0)
		rc = sign_with(t, pad, in, inlen, out, outlen);
	/* one signature a connection: the key goes with the file's octets,
	 * and the pages the parse took */
	tls_server_forget_key(t);
	malloc_trim(0);
	return rc;
}
