/* lineio: bounded line reading with deadlines, buffered replies, the DATA reader. */
#include "lineio.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"

void lineio_init(struct lineio *io, int in_fd, int out_fd, int strict, long long timeout_s)
{
	conn_plain(&io->plain, in_fd, out_fd);
	io->conn = &io->plain;
	io->strict = strict;
	io->timeout_ms = (int)(timeout_s * 1000);
	io->in_start = io->in_end = 0;
	io->out_len = 0;
	io->out_error = 0;
}

void lineio_set_conn(struct lineio *io, struct conn *c)
{
	io->conn = c;
}

size_t lineio_pending(const struct lineio *io)
{
	return io->in_end - io->in_start;
}

void lineio_discard_input(struct lineio *io)
{
	io->in_start = io->in_end = 0;
}

/* All of len octets of buf out through the connection, under the deadline. */
static int send_bytes(struct lineio *io, const char *buf, size_t len)
{
	size_t done = 0;
	long long deadline = clock_ms() + io->timeout_ms;

	while (done < len && !io->out_error) {
		long long left = deadline - clock_ms();
		if (left <= 0 || conn_wait(io->conn, 1, (int)left) == 0) {
			io->out_error = ETIMEDOUT;	/* a peer that never reads */
			break;
		}
		ssize_t n = conn_write(io->conn, buf + done, len - done);
		if (n > 0)
			done += (size_t)n;
		else if (n == -1 && errno != EINTR && errno != EAGAIN)
			io->out_error = errno;
	}
	return io->out_error ? -1 : 0;
}

int lineio_flush(struct lineio *io)
{
	int rc = send_bytes(io, io->out, io->out_len);

	io->out_len = 0;
	return rc;
}

void lineio_write(struct lineio *io, const char *data, size_t len)
{
	/* a piece larger than the buffer (a POP3 message) goes out whole,
	 * not cut into buffer-sized writes */
	if (len >= sizeof io->out) {
		if (lineio_flush(io) == 0)
			send_bytes(io, data, len);
		return;
	}
	while (len > 0) {
		size_t room = sizeof io->out - io->out_len;
		size_t take = len < room ? len : room;
		memcpy(io->out + io->out_len, data, take);
		io->out_len += take;
		data += take;
		len -= take;
		if (io->out_len == sizeof io->out && lineio_flush(io) == -1)
			return;
	}
}

/* Wait for input until the deadline; replies still buffered go out first,
 * since the peer may be waiting for them before it sends more. */
static enum line_status fill(struct lineio *io, long long deadline)
{
	if (io->out_len && lineio_flush(io) == -1)
		return LINE_ERROR;
	io->in_start = io->in_end = 0;
	for (;;) {
		long long left = deadline - clock_ms();
		if (left <= 0)
			return LINE_TIMEOUT;
		int pr = conn_wait(io->conn, 0, (int)left);
		if (pr == 0)
			return LINE_TIMEOUT;
		if (pr == -1)
			return LINE_ERROR;
		ssize_t n = conn_read(io->conn, io->in, sizeof io->in);
		if (n > 0) {
			io->in_end = (size_t)n;
			return LINE_OK;
		}
		if (n == 0)
			return LINE_EOF;
		if (errno != EINTR && errno != EAGAIN)
			return errno == ECONNRESET ? LINE_EOF : LINE_ERROR;
	}
}

#define DRAIN_MS 2000		/* how long a closing peer may keep talking */
#define DRAIN_MAX ((size_t)1024 * 1024)	/* and how much of it we read to the floor */

void lineio_finish(struct lineio *io)
{
	long long deadline = clock_ms() + DRAIN_MS;
	size_t drained = 0;

	lineio_flush(io);
	if (conn_shutdown(io->conn) == -1)
		return;		/* not a socket: nothing to drain */
	while (drained < DRAIN_MAX) {
		long long left = deadline - clock_ms();
		if (left <= 0 || conn_wait(io->conn, 0, (int)left) <= 0)
			break;
		ssize_t n = conn_read(io->conn, io->in, sizeof io->in);
		if (n <= 0)
			break;
		drained += (size_t)n;
	}
}

int lineio_peer_spoke(struct lineio *io)
{
	return conn_peer_spoke(io->conn);
}

enum line_status lineio_getline(struct lineio *io, char *buf, size_t bufsz, size_t *len)
{
	long long deadline = clock_ms() + io->timeout_ms;
	size_t used = 0;
	int overflow = 0;

	for (;;) {
		if (io->in_start == io->in_end) {
			enum line_status st = fill(io, deadline);
			if (st != LINE_OK)
				return st;
		}
		char *p = io->in + io->in_start;
		size_t avail = io->in_end - io->in_start;
		char *lf = memchr(p, '\n', avail);
		size_t take = lf ? (size_t)(lf - p) + 1 : avail;

		io->in_start += take;
		if (!overflow && used + take < bufsz) {
			memcpy(buf + used, p, take);
			used += take;
		} else {
			overflow = 1;	/* skip to the end of the line, keep nothing */
		}
		if (!lf)
			continue;
		if (overflow)
			return LINE_TOOLONG;
		used--;			/* the LF */
		if (used > 0 && buf[used - 1] == '\r')
			used--;
		/* bufsz-3 octets of content, so that CRLF still fits the RFC limit */
		if (used + 3 > bufsz)
			return LINE_TOOLONG;
		buf[used] = '\0';
		*len = used;
		return LINE_OK;
	}
}

static int is_from_line(const char *s, size_t len)
{
	while (len > 0 && *s == '>') {
		s++;
		len--;
	}
	return len >= 5 && memcmp(s, "From ", 5) == 0;
}

struct data_state {
	struct data_result *res;
	struct fileio_buf *w;
	unsigned long long max_size;
	int strict;
	int in_headers;
};

#define DATA_MORE 0
#define DATA_END 1		/* the final dot */
#define DATA_STOP 2		/* a bare CR or LF on a network connection */

/* One whole line (ending in LF); bare_cr: it holds a CR not followed by LF. */
static int data_line(struct data_state *ds, const char *line, size_t len, int overflow, int crlf,
		     int bare_cr)
{
	struct data_result *res = ds->res;

	/* Postfix's smtpd_forbid_bare_newline: a client or proxy that sends
	 * a bare line end may see a message end where we do not, and read
	 * our next replies against commands we would take as text.  Stop at
	 * once, so that nothing after it is read at all. */
	if (ds->strict && (!crlf || bare_cr)) {
		res->bad_line_end = 1;
		res->long_line |= overflow;
		return DATA_STOP;
	}
	if (overflow) {
		/* too long to keep: the message is refused, only its end matters */
		res->long_line = 1;
		return DATA_MORE;
	}
	size_t content = len - (crlf ? 2 : 1);

	/* strict: every line so far ended in CRLF, so this is <CRLF>.<CRLF> */
	if (content == 1 && line[0] == '.')
		return DATA_END;
	if (line[0] == '.') {	/* RFC 5321 4.5.2: remove the stuffed dot */
		line++;
		content--;
	}
	if (content > DATA_LINE_MAX)
		res->long_line = 1;
	if (ds->in_headers) {
		if (content == 0)
			ds->in_headers = 0;
		else if (content >= 9 && strncasecmp(line, "Received:", 9) == 0)
			res->received_headers++;
	}
	res->size += content + 2;
	if (res->size > ds->max_size)
		res->too_big = 1;
	if (res->too_big || res->long_line)
		return DATA_MORE;	/* rejected anyway: stop storing, keep reading */
	if (is_from_line(line, content))
		res->from_lines++;
	fileio_put(ds->w, line, content);
	fileio_put(ds->w, "\n", 1);
	return DATA_MORE;
}

/* A CR in p[0..n) that is not right before an LF; prev is the octet before p. */
static int has_bare_cr(const char *p, size_t n, char prev)
{
	if (prev == '\r' && n > 0 && p[0] != '\n')
		return 1;
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i] == '\r' && p[i + 1] != '\n')
			return 1;
	return 0;
}

void lineio_read_data(struct lineio *io, int out_fd, unsigned long long max_size,
		      struct data_result *res)
{
	static char storage[65536];	/* large writes to the spool file */
	struct fileio_buf w;
	/* a stuffed dot and CRLF on top of the longest allowed line */
	char line[DATA_LINE_MAX + 4];
	struct data_state ds = { .res = res, .w = &w, .max_size = max_size,
				 .strict = io->strict, .in_headers = 1 };
	size_t used = 0;
	int overflow = 0, bare_cr = 0, rc = DATA_MORE;
	char last = '\0';	/* last octet of the line so far, for long lines */
	long long deadline = clock_ms() + io->timeout_ms;

	memset(res, 0, sizeof *res);
	fileio_buf_init(&w, out_fd, storage, sizeof storage);
	for (;;) {
		if (io->in_start == io->in_end) {
			enum line_status st = fill(io, deadline);
			if (st != LINE_OK) {
				res->status = st;
				return;
			}
		}
		char *p = io->in + io->in_start;
		size_t avail = io->in_end - io->in_start;
		char *lf = memchr(p, '\n', avail);
		size_t take = lf ? (size_t)(lf - p) + 1 : avail;

		io->in_start += take;
		if (!overflow && used + take <= sizeof line) {
			memcpy(line + used, p, take);
			used += take;
		} else {
			overflow = 1;
		}
		char before_lf = take >= 2 ? p[take - 2] : last;
		/* seen on every piece, kept or not: a long line is checked too */
		bare_cr |= has_bare_cr(p, take, last);
		last = p[take - 1];
		if (!lf)
			continue;
		int crlf = overflow ? before_lf == '\r' : (used >= 2 && line[used - 2] == '\r');
		if ((rc = data_line(&ds, line, used, overflow, crlf, bare_cr)) != DATA_MORE)
			break;
		used = 0;
		overflow = 0;
		bare_cr = 0;
		last = '\0';
		deadline = clock_ms() + io->timeout_ms;
	}
	fileio_flush(&w);
	res->write_errno = w.err;
	res->status = rc == DATA_STOP ? LINE_BARELF : LINE_OK;
}
