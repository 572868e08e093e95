/* fuzz_reply: the relay's SMTP client (smtpc_run) against a fuzzed server.
 *
 * The input's first byte chooses the job: bits 0-1 one to four recipients,
 * bits 2-3 the stored message (text with dot lines, 8-bit with stray CRs,
 * no final line end, empty), bit 4 the null sender.  The rest is everything
 * the server says, written to the other end of a socketpair before the
 * client starts, then that end's sending side is closed: greeting, EHLO
 * reply (its extensions), the pipelined replies, the end-of-data reply.
 *
 * Checked: with SMTPC_DONE every recipient has a code from 200 to 599 and
 * a printable text starting with that code (the contract in smtpc.h); with
 * SMTPC_TEMP the job says why.  What the client sent has only CRLF line
 * ends, and after DATA comes exactly the dot-stuffed message and its final
 * dot, or only the dot (RFC 2920: DATA accepted although no RCPT was), or
 * nothing.  smtpc_parse_line also runs on each input line on its own.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "../../src/smtpc.h"
#include "fuzz_util.h"

static const struct {
	const char *text;
	const char *wire;	/* as it must be sent after DATA, final dot included */
} messages[] = {
	{ "Subject: dots\n\nhello\n.leading dot\n..two\n.\nend\n",
	  "Subject: dots\r\n\r\nhello\r\n..leading dot\r\n...two\r\n..\r\nend\r\n.\r\n" },
	{ "Subject: caf\xc3\xa9\n\n\xff\xfe body\r\nwith CR\rstray\n",
	  "Subject: caf\xc3\xa9\r\n\r\n\xff\xfe body\r\nwith CRstray\r\n.\r\n" },
	{ "no line end", "no line end\r\n.\r\n" },
	{ "", ".\r\n" },
};

static const char *const addresses[] = { "alice@example.net", "\"b o b\"@example.net", "carol@[192.0.2.9]",
					 "dave@example.org" };

static int msg_fd[4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	fuzz_quiet_init();
	for (int i = 0; i < 4; i++) {
		msg_fd[i] = fuzz_memfd("fuzz-reply-msg");
		fuzz_write_all(msg_fd[i], messages[i].text, strlen(messages[i].text));
	}
	return 0;
}

static void check_parse_line(const char *in, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *lf = memchr(in + pos, '\n', len - pos);
		size_t ll = lf ? (size_t)(lf - (in + pos)) : len - pos;
		int more = -1;
		int code = smtpc_parse_line(in + pos, ll, &more);
		if (code != -1) {
			FUZZ_CHECK(code >= 200 && code <= 599, "code %d", code);
			FUZZ_CHECK(code == (in[pos] - '0') * 100 + (in[pos + 1] - '0') * 10 + (in[pos + 2] - '0'),
				   "code %d is not the line's", code);
			FUZZ_CHECK(more == (ll > 3 && in[pos + 3] == '-'), "more %d", more);
		}
		pos += ll + 1;
	}
}

/* The server's replies as the client reads them (lineio_getline, then
 * smtpc_parse_line; at most SMTPC_REPLY_LINES lines of 1021 octets), up to
 * the first one it cannot read.  codes[i] is the code of reply i. */
static int parse_replies(const char *in, size_t len, int *codes, int max)
{
	size_t pos = 0;
	int n = 0;

	while (n < max) {
		int code = -1, more = 1;
		for (int lines = 0; more; lines++) {
			const char *lf = memchr(in + pos, '\n', len - pos);
			if (!lf || lines >= SMTPC_REPLY_LINES)
				return n;
			size_t ll = (size_t)(lf - (in + pos));
			size_t content = ll > 0 && in[pos + ll - 1] == '\r' ? ll - 1 : ll;
			if (content + 3 > 1024)
				return n;
			int c = smtpc_parse_line(in + pos, content, &more);
			if (c == -1 || (code != -1 && c != code))
				return n;
			code = c;
			pos += ll + 1;
		}
		codes[n++] = code;
	}
	return n;
}

/* What the client sent: CRLF only, and after DATA the right text.  When
 * the server answered DATA with 354, the client is in the data phase:
 * it must send the message or, with nothing to send, a lone dot (RFC 2920
 * 3.1), never its next command, which the server would take as text. */
static void check_sent(const char *out, size_t len, int msg, const char *in, size_t inlen)
{
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '\n')
			FUZZ_CHECK(i > 0 && out[i - 1] == '\r', "bare LF sent at offset %zu", i);
		if (out[i] == '\r')
			FUZZ_CHECK(i + 1 < len && out[i + 1] == '\n', "bare CR sent at offset %zu", i);
	}
	FUZZ_CHECK(len == 0 || (len >= 2 && out[len - 2] == '\r' && out[len - 1] == '\n'), "last line unfinished");
	const char *data = memmem(out, len, "\r\nDATA\r\n", 8);
	if (!data)
		return;
	const char *rest = data + 8;
	size_t left = len - (size_t)(rest - out);
	size_t wl = strlen(messages[msg].wire);
	int sent_text = 0;
	if (left >= wl && memcmp(rest, messages[msg].wire, wl) == 0) {
		rest += wl;
		left -= wl;
		sent_text = 1;
	} else if (left >= 3 && memcmp(rest, ".\r\n", 3) == 0) {
		rest += 3;
		left -= 3;
		sent_text = 1;
	}
	FUZZ_CHECK(left == 0 || (left == 6 && memcmp(rest, "QUIT\r\n", 6) == 0),
		   "after DATA the client sent: %.*s", (int)left, rest);

	/* the commands before DATA; reply i + 1 answers command i */
	int ncmd = 0, codes[16];
	for (const char *p = out; p <= data; p = memchr(p, '\n', (size_t)(data + 2 - p)) + 1)
		ncmd++;
	int nrep = parse_replies(in, inlen, codes, 16);
	if (nrep > ncmd + 1 && codes[ncmd + 1] == 354)
		FUZZ_CHECK(sent_text, "DATA got 354 but the client sent: %.*s", (int)left, rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char sent[1024 * 1024];
	struct smtpc_rcpt rcpts[4];
	int sv[2];

	if (size < 1)
		return 0;
	unsigned mode = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	int nrcpt = 1 + (int)(mode & 3), msg = (int)((mode >> 2) & 3);

	check_parse_line(in, len);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fuzz_die("socketpair");
	int big = 4 * 1024 * 1024;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	fuzz_write_all(sv[1], in, len);
	shutdown(sv[1], SHUT_WR);

	memset(rcpts, 0, sizeof rcpts);
	for (int i = 0; i < nrcpt; i++)
		rcpts[i].address = addresses[i];
	struct smtpc_job job = {
		.fd = sv[0],
		.helo = "relay.fuzz.test",
		.sender = mode & 0x10 ? "" : "sender@fuzz.test",
		.rcpts = rcpts,
		.nrcpt = nrcpt,
		.msgfd = msg_fd[msg],
		.msgsize = (off_t)strlen(messages[msg].text),
		.timeout = 1,
		.verbose = 1,
	};
	fuzz_quiet(1);
	enum smtpc_outcome out = smtpc_run(&job);
	fuzz_quiet(0);
	if (out == SMTPC_DONE) {
		for (int i = 0; i < nrcpt; i++) {
			const struct smtpc_rcpt *r = &rcpts[i];
			FUZZ_CHECK(r->code >= 200 && r->code <= 599, "recipient %d has code %d after DONE", i, r->code);
			FUZZ_CHECK(strlen(r->text) >= 3 && r->text[0] - '0' == r->code / 100 &&
				   r->text[1] - '0' == r->code / 10 % 10 && r->text[2] - '0' == r->code % 10,
				   "recipient %d: code %d, text '%s'", i, r->code, r->text);
			for (const char *p = r->text; *p; p++)
				FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "unprintable text");
		}
	} else {
		FUZZ_CHECK(out == SMTPC_TEMP && job.error[0], "outcome %d without a reason", out);
	}

	/* everything the client wrote is waiting at the server's end */
	shutdown(sv[0], SHUT_WR);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(sv[1], sent + got, sizeof sent - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		FUZZ_CHECK(got < sizeof sent, "the client sent more than %zu octets", sizeof sent);
	}
	check_sent(sent, got, msg, in, len);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
