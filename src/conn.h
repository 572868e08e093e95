/* conn: the transport under the line reader, plain now, TLS later.
 *
 * A connection reads and writes octets, says how many it holds already
 * decrypted (pending: poll(2) cannot see those), waits for readiness on
 * the descriptor the last call was blocked on, and shuts down its sending
 * side.  lineio.c speaks only through these calls, so that a TLS layer
 * (STARTTLS, implicit TLS) slots in by giving a connection other
 * operations, after the plain ones have carried the dialogue up to the
 * handshake.  Reads and writes keep the read(2)/write(2) contract: a
 * count, 0 at end of input, or -1 with errno (EAGAIN: wait and retry).
 */
#ifndef MAILSLOT_CONN_H
#define MAILSLOT_CONN_H

#include <stddef.h>
#include <sys/types.h>

struct conn;

struct conn_ops {
	ssize_t (*read)(struct conn *c, void *buf, size_t len);
	ssize_t (*write)(struct conn *c, const void *buf, size_t len);
	size_t (*pending)(const struct conn *c);
	int (*shutdown)(struct conn *c);
};

struct conn {
	int in_fd, out_fd;
	const struct conn_ops *ops;
	void *layer;		/* the TLS session, for the TLS operations */
	short want;		/* a layer's last EAGAIN waits for POLLIN or POLLOUT; 0: as asked */
};

/* A plain connection on two descriptors (the same socket, or a terminal). */
void conn_plain(struct conn *c, int in_fd, int out_fd);
ssize_t conn_read(struct conn *c, void *buf, size_t len);
ssize_t conn_write(struct conn *c, const void *buf, size_t len);
size_t conn_pending(const struct conn *c);
/* Wait until the connection can go on reading (or writing, for_write),
 * at most timeout_ms: 1 ready, 0 timed out, -1 error (errno). */
int conn_wait(struct conn *c, int for_write, int timeout_ms);
/* Close the sending side: -1 when that is not a socket (a terminal). */
int conn_shutdown(struct conn *c);
/* Input that arrived before we said anything: 1 when bytes (not just an
 * end of file) are waiting, without consuming them. */
int conn_peer_spoke(struct conn *c);

#endif
