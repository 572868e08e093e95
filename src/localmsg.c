/* localmsg: a program's message, line by line, into an inject request. */
#include "localmsg.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "lineio.h"

void localmsg_init(struct localmsg *m, int fd, int ignore_dots, int extract)
{
	m->fd = fd;
	m->ignore_dots = ignore_dots;
	m->extract = extract;
	m->ended = 0;
	m->read_errno = 0;
	m->start = m->end = 0;
	m->hlen = m->rlen = 0;
	m->nrcpt = 0;
}

/* Make the next line, or its first DATA_LINE_MAX + 2 octets, readable
 * in in[]; 0 at the end of input, -1 on a read error. */
static int fill(struct localmsg *m)
{
	while (!memchr(m->in + m->start, '\n', m->end - m->start) && m->end - m->start < DATA_LINE_MAX + 2) {
		if (m->start > 0) {
			memmove(m->in, m->in + m->start, m->end - m->start);
			m->end -= m->start;
			m->start = 0;
		}
		ssize_t n = read(m->fd, m->in + m->end, sizeof m->in - m->end);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			m->read_errno = errno;
			return -1;
		}
		if (n == 0)
			break;
		m->end += (size_t)n;
	}
	return m->end > m->start;
}

/* The next line without its line end in *line and *len; *split when it
 * is the first part of a longer one.  1, 0 at the end (or after the lone
 * dot), -1 on a read error. */
static int next_line(struct localmsg *m, const char **line, size_t *len, int *split)
{
	int rc = m->ended ? 0 : fill(m);

	if (rc <= 0) {
		m->ended = 1;
		return rc;
	}
	char *p = m->in + m->start;
	size_t avail = m->end - m->start;
	char *lf = memchr(p, '\n', avail < DATA_LINE_MAX + 2 ? avail : DATA_LINE_MAX + 2);
	size_t take = lf ? (size_t)(lf - p) + 1 : avail;
	size_t n = lf ? (size_t)(lf - p) : avail;

	if (n > 0 && p[n - 1] == '\r' && lf)
		n--;
	*split = 0;
	if (n > DATA_LINE_MAX) {
		n = take = DATA_LINE_MAX;
		*split = 1;
	}
	m->start += take;
	if (!m->ignore_dots && !*split && n == 1 && p[0] == '.') {
		m->ended = 1;	/* sendmail without -i: the lone dot ends the message */
		return 0;
	}
	*line = p;
	*len = n;
	return 1;
}

/* "Name:" with a printable name (RFC 5322 3.6.8 ftext) */
static size_t field_name(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && line[i] > ' ' && line[i] < 127 && line[i] != ':')
		i++;
	return i > 0 && i < len && line[i] == ':' ? i : 0;
}

static int header_put(struct localmsg *m, const char *data, size_t len)
{
	if (m->hlen + len > sizeof m->header)
		return -1;
	memcpy(m->header + m->hlen, data, len);
	m->hlen += len;
	return 0;
}

/* The field that ends at hlen began at from: collect its addresses
 * (-t), and take Bcc: out of the header. */
static void field_done(struct localmsg *m, size_t from)
{
	size_t len = m->hlen - from;
	const char *f = m->header + from;
	int bcc = len > 4 && strncasecmp(f, "Bcc:", 4) == 0;
	int to = (len > 3 && strncasecmp(f, "To:", 3) == 0) || (len > 3 && strncasecmp(f, "Cc:", 3) == 0);

	if (m->extract && (to || bcc)) {
		char value[LOCALMSG_HEADER_MAX / 8], addr[ADDR_MAILBOX_MAX + 1];
		const char *colon = memchr(f, ':', len);
		size_t vlen = len - (size_t)(colon + 1 - f);
		if (vlen >= sizeof value)
			vlen = sizeof value - 1;
		memcpy(value, colon + 1, vlen);
		value[vlen] = '\0';
		const char *p = value;
		int rc;
		while ((rc = addr_list_next(&p, addr, sizeof addr)) != 0) {
			size_t alen = strlen(addr) + 1;
			if (rc == 1 && m->rlen + alen <= sizeof m->rcpts) {
				memcpy(m->rcpts + m->rlen, addr, alen);
				m->rlen += alen;
				m->nrcpt++;
			}
		}
	}
	if (bcc)
		m->hlen = from;
}

enum localmsg_status localmsg_read_header(struct localmsg *m)
{
	const char *line;
	size_t len, field = (size_t)-1;
	int split, continued = 0, first = 1, rc;

	while ((rc = next_line(m, &line, &len, &split)) == 1) {
		int cont = continued || (len > 0 && (line[0] == ' ' || line[0] == '\t'));
		if (first && len >= 5 && strncmp(line, "From ", 5) == 0) {
			first = 0;
			continue;	/* an mbox separator, not a field */
		}
		first = 0;
		if (!(cont && field != (size_t)-1)) {
			if (field != (size_t)-1)
				field_done(m, field);
			if (len == 0 || !field_name(line, len)) {
				/* the header's end; a body line is read again, as the body's first */
				if (len > 0)
					m->start = (size_t)(line - m->in);
				return header_put(m, "\n", 1) == 0 ? LOCALMSG_OK : LOCALMSG_TOOBIG;
			}
			field = m->hlen;
		}
		/* a broken line goes on as a folded continuation */
		if ((continued && header_put(m, "\t", 1) == -1) || header_put(m, line, len) == -1 ||
		    header_put(m, "\n", 1) == -1)
			return LOCALMSG_TOOBIG;
		continued = split;
	}
	if (field != (size_t)-1)
		field_done(m, field);
	if (header_put(m, "\n", 1) == -1)
		return LOCALMSG_TOOBIG;
	return rc == -1 ? LOCALMSG_READ_ERROR : LOCALMSG_OK;
}

/* One line of the request: dot-stuffed (RFC 5321 4.5.2), LF-ended. */
static void put_line(struct fileio_buf *out, const char *line, size_t len)
{
	if (len > 0 && line[0] == '.')
		fileio_put(out, ".", 1);
	fileio_put(out, line, len);
	fileio_put(out, "\n", 1);
}

enum localmsg_status localmsg_copy(struct localmsg *m, struct fileio_buf *out)
{
	const char *line;
	size_t len;
	int split;

	for (size_t at = 0; at < m->hlen;) {
		const char *lf = memchr(m->header + at, '\n', m->hlen - at);
		size_t n = (size_t)(lf - (m->header + at));
		put_line(out, m->header + at, n);
		at += n + 1;
	}
	while (!out->err && next_line(m, &line, &len, &split) == 1)
		put_line(out, line, len);
	if (m->read_errno)
		return LOCALMSG_READ_ERROR;
	fileio_put(out, ".\n", 2);
	return LOCALMSG_OK;
}
