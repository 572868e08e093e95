/* fuzz_data: the DATA reader (lineio_read_data) against a reference model.
 *
 * The first input byte chooses the transport and the size limit: bit 0 a
 * socketpair (strict: only <CRLF>.<CRLF> ends the data, the reader stops
 * after the first line with a bare CR or LF, as for a network client) or a file (lenient, a
 * person at a terminal); bit 1 a size limit of 200 octets instead of 1 MiB;
 * bit 2 a command-line reader first (lineio_getline, as the session reads
 * DATA) so the data starts mid-buffer.  The rest is what the client sends
 * after 354.
 *
 * The model below reads the same bytes one line at a time, the way RFC
 * 5321 4.5.2 and the lineio.h contract describe them, and the reader must
 * agree with it: where the data ends, that nothing after the end is
 * consumed (pipelined commands after the dot belong to the session), the
 * octet count, the Received: count, the flags that refuse a message, and
 * for an accepted message the stored text byte for byte (dot-unstuffed,
 * LF line ends).
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "../../src/lineio.h"
#include "fuzz_util.h"

struct model {
	int ended;
	int stopped;			/* strict: a bare CR or LF; consumed ends with its line */
	size_t consumed;		/* octets up to and including the final dot line */
	unsigned long long size;
	unsigned received;
	unsigned from_lines;
	int too_big, bad_line_end, long_line;
	char *stored;
	size_t stored_len;
};

static int starts_nocase(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	if (len < n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		char p = prefix[i];
		if (p >= 'A' && p <= 'Z')
			p = (char)(p - 'A' + 'a');
		if (c != p)
			return 0;
	}
	return 1;
}

static int is_from(const char *s, size_t len)
{
	while (len > 0 && *s == '>') {
		s++;
		len--;
	}
	return len >= 5 && memcmp(s, "From ", 5) == 0;
}

static void run_model(const char *in, size_t len, int strict, unsigned long long max, struct model *m)
{
	size_t pos = 0;
	int prev_crlf = 1, in_headers = 1;

	memset(m, 0, sizeof *m);
	m->stored = malloc(len + 1);
	if (!m->stored)
		fuzz_die("malloc");
	while (pos < len) {
		const char *line = in + pos;
		const char *lf = memchr(line, '\n', len - pos);
		if (!lf)
			return;		/* no line end: the data never ends */
		size_t raw = (size_t)(lf - line) + 1;
		int crlf = raw >= 2 && line[raw - 2] == '\r';
		size_t content = raw - (crlf ? 2 : 1);
		int bare_cr = memchr(line, '\r', content) != NULL;

		pos += raw;
		if (strict && (!crlf || bare_cr)) {
			m->bad_line_end = 1;
			m->stopped = 1;
			m->consumed = pos;
			return;
		}
		if (content == 1 && line[0] == '.' && (!strict || (crlf && prev_crlf))) {
			m->ended = 1;
			m->consumed = pos;
			return;
		}
		prev_crlf = crlf;
		if (line[0] == '.') {
			line++;
			content--;
		}
		if (content > DATA_LINE_MAX)
			m->long_line = 1;
		if (in_headers) {
			if (content == 0)
				in_headers = 0;
			else if (starts_nocase(line, content, "Received:"))
				m->received++;
		}
		m->size += content + 2;
		if (m->size > max)
			m->too_big = 1;
		if (m->too_big || m->bad_line_end || m->long_line)
			continue;
		m->from_lines += is_from(line, content);
		memcpy(m->stored + m->stored_len, line, content);
		m->stored_len += content;
		m->stored[m->stored_len++] = '\n';
	}
}

static int out_fd, file_fd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	out_fd = fuzz_memfd("fuzz-data-out");
	file_fd = fuzz_memfd("fuzz-data-in");
	return 0;
}

/* Read what is left after the reader stopped, to see what it consumed. */
static size_t rest_of(int fd)
{
	char buf[65536];
	size_t total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		total += (size_t)n;
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lineio io;
	struct data_result res;
	struct model m = { 0 };
	size_t skipped = 0;
	int in_fd, sv[2] = { -1, -1 };

	if (size < 1)
		return 0;
	unsigned mode = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	int strict = mode & 1;
	unsigned long long max = mode & 2 ? 200 : 1024 * 1024;

	if (strict) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			fuzz_die("socketpair");
		/* the whole input must fit before the reader starts */
		int big = 4 * 1024 * 1024;
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
		fuzz_write_all(sv[1], in, len);
		shutdown(sv[1], SHUT_WR);
		in_fd = sv[0];
	} else {
		fuzz_reset_fd(file_fd);
		fuzz_write_all(file_fd, in, len);
		if (lseek(file_fd, 0, SEEK_SET) == -1)
			fuzz_die("lseek");
		in_fd = file_fd;
	}
	fuzz_reset_fd(out_fd);
	lineio_init(&io, in_fd, out_fd, strict, 1);
	if (mode & 4) {
		/* the DATA command line itself, read as the session reads it */
		char cmd[513];
		size_t clen;
		const char *lf = memchr(in, '\n', len);
		if (!lf || lineio_getline(&io, cmd, sizeof cmd, &clen) != LINE_OK)
			goto done;
		skipped = (size_t)(lf - in) + 1;
	}
	lineio_read_data(&io, out_fd, max, &res);
	run_model(in + skipped, len - skipped, strict, max, &m);

	size_t left = lineio_pending(&io) + rest_of(in_fd);
	FUZZ_CHECK(res.size <= 2 * (unsigned long long)len, "size %llu for %zu input octets", res.size, len);
	if (m.stopped) {
		FUZZ_CHECK(res.status == LINE_BARELF, "status %d after a bare line end", res.status);
		FUZZ_CHECK(res.bad_line_end, "stopped without bad_line_end");
		FUZZ_CHECK(left == len - skipped - m.consumed, "reader consumed %zu octets, up to the bare line end is %zu",
			   len - skipped - left, m.consumed);
		goto done;
	}
	if (!m.ended) {
		FUZZ_CHECK(res.status == LINE_EOF, "status %d without the final dot", res.status);
		FUZZ_CHECK(left == 0, "%zu octets left unread at end of input", left);
		goto done;
	}
	FUZZ_CHECK(res.status == LINE_OK, "status %d although the data ends at %zu", res.status, m.consumed);
	FUZZ_CHECK(left == len - skipped - m.consumed, "reader consumed %zu octets, the data is %zu",
		   len - skipped - left, m.consumed);
	FUZZ_CHECK(res.write_errno == 0, "spool write error %d", res.write_errno);
	FUZZ_CHECK(!!res.long_line == m.long_line, "long_line %d, model %d", res.long_line, m.long_line);
	if (strict && !m.long_line)
		FUZZ_CHECK(!!res.bad_line_end == m.bad_line_end, "bad_line_end %d, model %d", res.bad_line_end,
			   m.bad_line_end);
	if (!strict)
		FUZZ_CHECK(!res.bad_line_end, "bare line end refused from a terminal");
	if (!m.long_line) {
		FUZZ_CHECK(res.size == m.size, "size %llu, model %llu", res.size, m.size);
		FUZZ_CHECK(!!res.too_big == m.too_big, "too_big %d, model %d", res.too_big, m.too_big);
		FUZZ_CHECK(res.received_headers == m.received, "Received: %u, model %u", res.received_headers,
			   m.received);
	}
	if (!res.too_big && !res.bad_line_end && !res.long_line) {
		size_t olen;
		char *out = fuzz_slurp(out_fd, &olen);
		FUZZ_CHECK(olen == m.stored_len && memcmp(out, m.stored, olen) == 0,
			   "stored %zu octets, model %zu", olen, m.stored_len);
		FUZZ_CHECK(res.from_lines == m.from_lines, "From lines %u, model %u", res.from_lines, m.from_lines);
		free(out);
	}
	free(m.stored);
	m.stored = NULL;
done:
	free(m.stored);
	if (sv[0] != -1) {
		close(sv[0]);
		close(sv[1]);
	}
	return 0;
}
