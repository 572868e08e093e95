/* conn: plain read/write/poll/shutdown behind the transport operations. */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t plain_read(struct conn *c, void *buf, size_t len)
{
	return read(c->in_fd, buf, len);
}

static ssize_t plain_write(struct conn *c, const void *buf, size_t len)
{
	return write(c->out_fd, buf, len);
}

static size_t plain_pending(const struct conn *c)
{
	(void)c;
	return 0;	/* the kernel's buffer is visible to poll */
}

static int plain_shutdown(struct conn *c)
{
	return shutdown(c->out_fd, SHUT_WR);
}

static const struct conn_ops plain_ops = {
	.read = plain_read,
	.write = plain_write,
	.pending = plain_pending,
	.shutdown = plain_shutdown,
};

void conn_plain(struct conn *c, int in_fd, int out_fd)
{
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->ops = &plain_ops;
	c->layer = NULL;
	c->want = 0;
}

ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	return c->ops->read(c, buf, len);
}

ssize_t conn_write(struct conn *c, const void *buf, size_t len)
{
	return c->ops->write(c, buf, len);
}

size_t conn_pending(const struct conn *c)
{
	return c->ops->pending(c);
}

int conn_shutdown(struct conn *c)
{
	return c->ops->shutdown(c);
}

int conn_wait(struct conn *c, int for_write, int timeout_ms)
{
	if (!for_write && conn_pending(c) > 0)
		return 1;
	/* a TLS read may need the socket writable (and a write readable):
	 * the layer says which in c->want; a plain one waits as asked */
	short events = c->want ? c->want : (for_write ? POLLOUT : POLLIN);
	struct pollfd pfd = { .fd = events == POLLOUT ? c->out_fd : c->in_fd, .events = events };

	for (;;) {
		int pr = poll(&pfd, 1, timeout_ms);
		if (pr >= 0)
			return pr > 0;
		if (errno != EINTR)
			return -1;
	}
}

int conn_peer_spoke(struct conn *c)
{
	struct pollfd pfd = { .fd = c->in_fd, .events = POLLIN };
	char octet;

	if (poll(&pfd, 1, 0) != 1)
		return 0;
	/* POLLIN is also set at end of file: only real bytes count */
	return recv(c->in_fd, &octet, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}
