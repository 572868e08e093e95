/* tlsshare: an acceptor's server TLS, built once and handed to the
 * sessions it forks (listen.h, struct listen_fork).
 *
 * tls_shared_refresh runs in the acceptor before each fork: it stats the
 * certificate and key files and loads them again when either changed (a
 * renewal), so that the next session serves the new pair.  A pair that
 * does not load leaves no context, logged: each session then loads for
 * itself and refuses its client the way an exec'd one would.
 * tls_shared_take, in the forked session: the acceptor's TLS when the
 * session's configuration names the same files (the session's own from
 * then on), else an empty one, and the session loads its own.
 */
#ifndef MAILSLOT_TLSSHARE_H
#define MAILSLOT_TLSSHARE_H

#include <sys/stat.h>

#include "tls.h"

struct tls_shared {
	struct tls_server tls;
	const char *cert, *key;
	tls_signer signer;
	struct stat cert_st, key_st;	/* as stat saw them before the last load */
};

void tls_shared_init(struct tls_shared *s, const char *cert, const char *key, tls_signer signer);
void tls_shared_refresh(struct tls_shared *s);
struct tls_server tls_shared_take(struct tls_shared *s, const char *cert, const char *key);

#endif
