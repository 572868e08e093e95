/* tls: OpenSSL contexts, the handshake under a deadline, and TLS as a connection's operations. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"

/* Mozilla's "intermediate" configuration (version 5.7) less its DHE
 * suites: ECDHE is as widely supported, and finite-field DH would need
 * parameters of our own. */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
		      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
		      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:prime256v1:secp384r1"

struct tls_ctx {
	SSL_CTX *ssl;
	int server;
};

/* ------------------------------------------------------------ errors */

/* The reason of OpenSSL's oldest queued error, the one that started the
 * failure; a system error (fopen) as strerror says it. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r;

	if (e == 0)
		return "unknown error";
	if (ERR_GET_LIB(e) == ERR_LIB_SYS)
		return strerror(ERR_GET_REASON(e));
	r = ERR_reason_error_string(e);
	return r ? r : "unknown error";
}

static void set_why(char *why, size_t whylen, const char *what, const char *file)
{
	if (file)
		snprintf(why, whylen, "%s %s: %s", what, file, ssl_reason());
	else
		snprintf(why, whylen, "%s: %s", what, ssl_reason());
	ERR_clear_error();
}

/* ------------------------------------------------------------ contexts */

static int fd_bio_init(void);

/* Once, and only when a context is first wanted. */
static int tls_init(char *why, size_t whylen)
{
	static int done;

	if (done)
		return 0;
	/* NO_LOAD_CONFIG: openssl.cnf would be read now and could loosen the
	 * policy; NO_ATEXIT: nothing to free at exit that exit does not */
	if (OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL) != 1 ||
	    fd_bio_init() == -1) {
		set_why(why, whylen, "cannot initialise OpenSSL", NULL);
		return -1;
	}
	done = 1;
	return 0;
}

/* A file to load must be a regular file we can open: said in our words,
 * since OpenSSL's for a missing file is "system lib" or "no such file". */
static int check_file(const char *what, const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(why, whylen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s %s: not a regular file", what, path);
		return -1;
	}
	return 0;
}

/* What both sides share: the protocol policy. */
static struct tls_ctx *ctx_new(int server, char *why, size_t whylen)
{
	struct tls_ctx *ctx;

	if (tls_init(why, whylen) == -1)
		return NULL;
	ctx = calloc(1, sizeof *ctx);
	if (!ctx) {
		snprintf(why, whylen, "cannot make a TLS context: out of memory");
		return NULL;
	}
	ctx->server = server;
	ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx->ssl || SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx->ssl, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx->ssl, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx->ssl, TLS13_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(ctx->ssl, TLS_GROUPS) != 1) {
		set_why(why, whylen, "cannot make a TLS context", NULL);
		tls_ctx_free(ctx);
		return NULL;
	}
	/* IGNORE_UNEXPECTED_EOF: many SMTP peers close after QUIT without
	 * close_notify, and SMTP's own framing (the final dot, QUIT) is what
	 * tells a whole message from a cut one */
	SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
				      SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* no resumption: a session process lives for one connection, so a
	 * cache or ticket key would die with it; TLS 1.3 tickets would only
	 * cost the server their encryption on every handshake */
	SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx->ssl, 0);
	/* PARTIAL_WRITE: write(2)'s contract (a short count); MOVING_BUFFER:
	 * lineio retries from its own buffer; RELEASE_BUFFERS: an idle
	 * connection does not hold 2 x 16 KiB of record buffers */
	SSL_CTX_set_mode(ctx->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				   SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* Whether OpenSSL's first error says a key is not the certificate's. */
static int key_mismatch(void)
{
	unsigned long e = ERR_peek_error();

	return ERR_GET_LIB(e) == ERR_LIB_X509 &&
	       (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

static int load_pair(SSL_CTX *ssl, const char *cert_file, const char *key_file, char *why, size_t whylen)
{
	if (SSL_CTX_use_certificate_chain_file(ssl, cert_file) != 1) {
		set_why(why, whylen, "cannot load the TLS certificate", cert_file);
		return -1;
	}
	/* the key is checked against the certificate as it is loaded */
	if (SSL_CTX_use_PrivateKey_file(ssl, key_file, SSL_FILETYPE_PEM) != 1 && !key_mismatch()) {
		set_why(why, whylen, "cannot load the TLS key", key_file);
		return -1;
	}
	if (key_mismatch() || SSL_CTX_check_private_key(ssl) != 1) {
		snprintf(why, whylen, "TLS key %s does not match the certificate %s", key_file, cert_file);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

struct tls_ctx *tls_server_ctx_cert(const char *cert_file, char *why, size_t whylen)
{
	struct tls_ctx *ctx;

	if (check_file("TLS certificate", cert_file, why, whylen) == -1 || !(ctx = ctx_new(1, why, whylen)))
		return NULL;
	SSL_CTX_set_security_level(ctx->ssl, 2);
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cert_file) != 1) {
		set_why(why, whylen, "cannot load the TLS certificate", cert_file);
		tls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

struct tls_ctx *tls_server_ctx(const char *cert_file, const char *key_file, char *why, size_t whylen)
{
	struct tls_ctx *ctx;

	if (check_file("TLS certificate", cert_file, why, whylen) == -1 ||
	    check_file("TLS key", key_file, why, whylen) == -1)
		return NULL;
	if (!(ctx = ctx_new(1, why, whylen)))
		return NULL;
	/* OpenSSL's default level 1 would take 1024-bit RSA; 2 is Debian's
	 * system policy (112-bit security), which the profile meets */
	SSL_CTX_set_security_level(ctx->ssl, 2);
	if (load_pair(ctx->ssl, cert_file, key_file, why, whylen) == -1) {
		tls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

struct tls_ctx *tls_client_ctx(enum tls_verify verify, const char *ca_file, char *why, size_t whylen)
{
	struct tls_ctx *ctx;

	if (verify == TLS_VERIFY_PEER && ca_file && check_file("TLS CA file", ca_file, why, whylen) == -1)
		return NULL;
	if (!(ctx = ctx_new(0, why, whylen)))
		return NULL;
	if (verify == TLS_VERIFY_NONE) {
		/* opportunistic: the alternative to a weak key is clear text */
		SSL_CTX_set_security_level(ctx->ssl, 1);
		SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	SSL_CTX_set_security_level(ctx->ssl, 2);
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
	if (ca_file ? SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
		set_why(why, whylen, ca_file ? "cannot load the TLS CA file" : "cannot load the system's CA store",
			ca_file);
		tls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_ctx_ssl(struct tls_ctx *ctx)
{
	return ctx ? ctx->ssl : NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

/* ------------------------------------------------------------ a BIO that never blocks */

/* One descriptor; sock: recv/send with MSG_DONTWAIT, else read/write
 * after a poll that says they will not block.  The descriptor's own flags
 * are never changed: it may be shared (inetd's stdin and stdout). */
struct fd_bio {
	int fd;
	int sock;
};

static int ready_now(int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	return poll(&pfd, 1, 0) == 1;
}

static int fd_bio_read(BIO *b, char *buf, int len)
{
	const struct fd_bio *f = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (f->sock) {
		n = recv(f->fd, buf, (size_t)len, MSG_DONTWAIT);
	} else if (ready_now(f->fd, POLLIN)) {
		n = read(f->fd, buf, (size_t)len);
	} else {
		errno = EAGAIN;
		n = -1;
	}
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static int fd_bio_write(BIO *b, const char *buf, int len)
{
	const struct fd_bio *f = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (f->sock) {
		/* NOSIGNAL: a peer that went away is EPIPE here, not a signal */
		n = send(f->fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
	} else if (ready_now(f->fd, POLLOUT)) {
		/* a pipe that polls writable takes PIPE_BUF octets at once */
		n = write(f->fd, buf, (size_t)len < PIPE_BUF ? (size_t)len : PIPE_BUF);
	} else {
		errno = EAGAIN;
		n = -1;
	}
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static long fd_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	/* writes are not buffered here: a flush has nothing to do */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int fd_bio_destroy(BIO *b)
{
	free(BIO_get_data(b));	/* the descriptor is the connection's, not ours */
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *fd_bio_method;

/* Made with the first context, not at the first handshake: its index
 * comes from a pthread_once, whose futex call the session's seccomp
 * filter does not allow. */
static int fd_bio_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mailslot fd");

	if (!m || BIO_meth_set_read(m, fd_bio_read) != 1 || BIO_meth_set_write(m, fd_bio_write) != 1 ||
	    BIO_meth_set_ctrl(m, fd_bio_ctrl) != 1 || BIO_meth_set_destroy(m, fd_bio_destroy) != 1) {
		BIO_meth_free(m);
		return -1;
	}
	fd_bio_method = m;
	return 0;
}

static BIO *fd_bio_new(int fd)
{
	struct fd_bio *f;
	int type = 0;
	socklen_t len = sizeof type;
	BIO *b;

	if (!(f = malloc(sizeof *f)))
		return NULL;
	f->fd = fd;
	f->sock = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
	if (!(b = BIO_new(fd_bio_method))) {
		free(f);
		return NULL;
	}
	BIO_set_data(b, f);
	BIO_set_init(b, 1);
	return b;
}

/* ------------------------------------------------------------ TLS operations */

/* What an SSL read or write call returned (rc, n octets), in read(2)'s
 * terms.  dir is the poll event the operation itself waits for (POLLIN
 * for a read). */
static ssize_t tls_result(struct conn *c, int rc, size_t n, short dir)
{
	int saved = errno;

	c->want = 0;
	if (rc == 1)
		return (ssize_t)n;
	int err = SSL_get_error(c->layer, rc);
	switch (err) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE: {
		short need = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		/* only the other direction is news to conn_wait (tls.h) */
		c->want = need == dir ? 0 : need;
		errno = EAGAIN;
		return -1;
	}
	case SSL_ERROR_SYSCALL:
		errno = saved ? saved : ECONNRESET;
		ERR_clear_error();
		return -1;
	default:
		errno = EPROTO;
		ERR_clear_error();
		return -1;
	}
}

/* Once tls_end freed the session (layer NULL) the stream is spent: reads
 * see its end, writes fail, and nothing is ever written in clear. */
static ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
	size_t got = 0;
	int rc;

	if (!c->layer)
		return 0;
	ERR_clear_error();
	errno = 0;
	rc = SSL_read_ex(c->layer, buf, len, &got);
	return tls_result(c, rc, got, POLLIN);
}

static ssize_t tls_write(struct conn *c, const void *buf, size_t len)
{
	size_t done = 0;
	int rc;

	if (!c->layer) {
		errno = EPIPE;
		return -1;
	}
	if (len == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	rc = SSL_write_ex(c->layer, buf, len, &done);
	return tls_result(c, rc, done, POLLOUT);
}

static size_t tls_pending(const struct conn *c)
{
	int n = c->layer ? SSL_pending(c->layer) : 0;

	return n > 0 ? (size_t)n : 0;
}

static int tls_shutdown(struct conn *c)
{
	/* one try: our close_notify goes out unless the socket is full, and
	 * the peer's answer is read (or not) by the caller's drain */
	if (c->layer) {
		ERR_clear_error();
		SSL_shutdown(c->layer);
		ERR_clear_error();
	}
	return shutdown(c->out_fd, SHUT_WR);
}

static const struct conn_ops tls_ops = {
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
	.shutdown = tls_shutdown,
};

/* ------------------------------------------------------------ the handshake */

/* peer_name as an IP address for the certificate check: "192.0.2.1",
 * "[192.0.2.1]", "[IPv6:2001:db8::1]".  1 with ip set, else 0. */
static int peer_ip(const char *name, char *ip, size_t ipsz)
{
	unsigned char bin[sizeof(struct in6_addr)];
	size_t len = strlen(name);

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
		if (len > 5 && strncasecmp(name, "IPv6:", 5) == 0) {
			name += 5;
			len -= 5;
		}
	}
	if (len == 0 || len >= ipsz)
		return 0;
	memcpy(ip, name, len);
	ip[len] = '\0';
	return inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1;
}

/* Names for a client's handshake: SNI and the certificate check. */
static int set_peer(SSL *ssl, const struct tls_ctx *ctx, const char *peer_name)
{
	char ip[INET6_ADDRSTRLEN + 8];

	if (ctx->server || !peer_name || !peer_name[0])
		return 0;
	if (peer_ip(peer_name, ip, sizeof ip))
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1 ? 0 : -1;
	/* RFC 6125: no "f*.example.com"; "*.example.com" still matches */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(ssl, peer_name) != 1 || SSL_set_tlsext_host_name(ssl, peer_name) != 1)
		return -1;
	return 0;
}

static SSL *ssl_for(const struct conn *c, const struct tls_ctx *ctx, const char *peer_name)
{
	SSL *ssl = SSL_new(ctx->ssl);
	BIO *rbio, *wbio;

	if (!ssl)
		return NULL;
	rbio = fd_bio_new(c->in_fd);
	wbio = c->out_fd == c->in_fd ? rbio : fd_bio_new(c->out_fd);
	if (!rbio || !wbio) {
		BIO_free(rbio);
		SSL_free(ssl);
		return NULL;
	}
	/* one BIO for both: SSL_set_bio takes the one reference */
	SSL_set_bio(ssl, rbio, wbio);
	if (set_peer(ssl, ctx, peer_name) == -1) {
		SSL_free(ssl);
		return NULL;
	}
	if (ctx->server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

/* Why a handshake failed, in one line. */
static void handshake_why(SSL *ssl, int rc, int saved_errno, char *why, size_t whylen)
{
	int err = SSL_get_error(ssl, rc);
	long vr = SSL_get_verify_result(ssl);

	if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		snprintf(why, whylen, "TLS handshake failed: %s",
			 saved_errno ? strerror(saved_errno) : "connection closed by the peer");
	else if (err == SSL_ERROR_ZERO_RETURN)
		snprintf(why, whylen, "TLS handshake failed: connection closed by the peer");
	else if (vr != X509_V_OK)
		snprintf(why, whylen, "TLS handshake failed: %s (%s)", ssl_reason(), X509_verify_cert_error_string(vr));
	else
		snprintf(why, whylen, "TLS handshake failed: %s", ssl_reason());
	ERR_clear_error();
}

/* Until the handshake is done, failed, or the deadline passed. */
static int handshake(const struct conn *c, SSL *ssl, int timeout_ms, char *why, size_t whylen)
{
	long long deadline = clock_ms() + timeout_ms;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		int rc = SSL_do_handshake(ssl);
		if (rc == 1)
			return 0;
		int saved = errno, err = SSL_get_error(ssl, rc);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			handshake_why(ssl, rc, saved, why, whylen);
			return -1;
		}
		struct pollfd pfd = { .fd = err == SSL_ERROR_WANT_READ ? c->in_fd : c->out_fd,
				      .events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT };
		long long left = deadline - clock_ms();
		int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (pr == -1 && errno != EINTR) {
			snprintf(why, whylen, "TLS handshake failed: poll: %s", strerror(errno));
			return -1;
		}
		if (pr == 0) {
			snprintf(why, whylen, "TLS handshake timed out");
			return -1;
		}
	}
}

int tls_start(struct conn *c, struct tls_ctx *ctx, const char *peer_name, int timeout_ms, char *why,
	      size_t whylen)
{
	SSL *ssl;

	if (c->ops == &tls_ops) {
		snprintf(why, whylen, "TLS was already started on this connection");
		return -1;
	}
	ERR_clear_error();
	if (!(ssl = ssl_for(c, ctx, peer_name))) {
		set_why(why, whylen, "cannot start TLS", NULL);
		return -1;
	}
	if (handshake(c, ssl, timeout_ms, why, whylen) == -1) {
		SSL_free(ssl);
		return -1;
	}
	c->layer = ssl;
	c->ops = &tls_ops;
	c->want = 0;
	return 0;
}

int tls_built_in(void)
{
	return 1;
}

int tls_active(const struct conn *c)
{
	return c->ops == &tls_ops && c->layer;
}

void tls_describe(const struct conn *c, char *out, size_t outsz)
{
	if (outsz == 0)
		return;
	out[0] = '\0';
	if (!tls_active(c))
		return;
	const SSL *ssl = c->layer;
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	snprintf(out, outsz, "%s %s", SSL_get_version(ssl), cipher ? SSL_CIPHER_get_name(cipher) : "?");
}

void tls_end(struct conn *c)
{
	if (!tls_active(c))
		return;
	SSL_free(c->layer);
	c->layer = NULL;	/* the operations stay: see tls_read */
	c->want = 0;
}
