/* pop3: POP3 verbs and states; the maildrop is asked through the monitor (pop3mon.h). */
#include "pop3.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "lineio.h"
#include "log.h"
#include "pop3mon.h"
#include "sasl.h"
#include "version.h"

/* RFC 2449 4: a command line is at most 255 octets; an AUTH response
 * (RFC 5034 4) may be as long as a PLAIN message at its limits */
#define POP3_LINE_MAX (SASL_RESPONSE_MAX + 3)
#define POP3_ERRORS_MAX 10	/* error replies before the connection ends */

enum state { S_AUTH = 1, S_TRANS = 2 };

struct pop3 {
	const struct config *cfg;
	const struct peer *peer;
	int sock;			/* the monitor */
	enum state state;
	int quit;
	int errors;
	struct tls_ctx *tls_ctx;	/* STLS offered with it, or NULL */
	char tls[TLS_DESCRIBE_MAX];	/* "TLSv1.3 ...": inside TLS, else "" */
	char user[SASL_NAME_MAX + 1];	/* USER's argument, for PASS */
	size_t count;			/* the maildrop, as listed at login */
	struct pm_entry *entry;
	unsigned char *deleted;
	int mbox_fd;			/* an mbox's read-only descriptor, once opened */
	int *msg_fd;			/* other formats: message files opened ahead */
	size_t cached;			/* how many of those are open */
	unsigned char *seen;		/* retrieved, when the monitor wants to know */
	int seen_wanted;
	unsigned long retr;		/* RETR's figures, told to the monitor at the end */
	unsigned long long retr_octets;
	struct lineio io;
};

struct command {
	const char *verb;
	void (*handler)(struct pop3 *p, char *arg);
	int states;
};

/* --- replies ------------------------------------------------------------ */

static void vsay(struct pop3 *p, const char *status, const char *code, const char *fmt, va_list ap)
{
	char text[256], line[300];
	int n;

	vsnprintf(text, sizeof text, fmt, ap);
	n = snprintf(line, sizeof line - 2, "%s%s%s%s%s%s", status, code ? " [" : "", code ? code : "",
		     code ? "]" : "", text[0] ? " " : "", text);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 3)
		n = (int)sizeof line - 3;
	if (log_verbose())
		log_msg(LOG_DEBUG, "> %.*s", n, line);
	line[n++] = '\r';
	line[n++] = '\n';
	lineio_write(&p->io, line, (size_t)n);
}

static void ok(struct pop3 *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(struct pop3 *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(p, "+OK", NULL, fmt, ap);
	va_end(ap);
}

/* -ERR, with an RFC 2449 response code when there is one; counted */
static void fail(struct pop3 *p, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct pop3 *p, const char *code, const char *fmt, ...)
{
	va_list ap;

	p->errors++;
	va_start(ap, fmt);
	vsay(p, "-ERR", code, fmt, ap);
	va_end(ap);
}

static void lines_end(struct pop3 *p)
{
	lineio_write(&p->io, ".\r\n", 3);
}

/* --- helpers ------------------------------------------------------------ */

/* RFC 1939 4: passwords cross the wire in clear; RFC 2595 and RFC 8314
 * want them inside TLS, or on a connection that never left this host */
static int auth_offered(const struct pop3 *p)
{
	return p->tls[0] || p->peer->local_class;
}

/* A message number that names a message not deleted: its index, or -1
 * with the reply sent. */
static long message_arg(struct pop3 *p, const char *arg, const char **rest)
{
	unsigned long n = 0;
	const char *s = arg;

	if (*s < '0' || *s > '9') {
		fail(p, NULL, "Message number required");
		return -1;
	}
	while (*s >= '0' && *s <= '9' && n <= p->count)
		n = n * 10 + (unsigned long)(*s++ - '0');
	if ((*s && *s != ' ') || (!rest && *s)) {
		fail(p, NULL, "Bad message number");
		return -1;
	}
	if (n == 0 || n > p->count || p->deleted[n - 1]) {
		fail(p, NULL, "No such message");
		return -1;
	}
	if (rest)
		for (*rest = s; **rest == ' '; (*rest)++)
			;
	return (long)n - 1;
}

static void totals(const struct pop3 *p, size_t *n, unsigned long long *octets)
{
	*n = 0;
	*octets = 0;
	for (size_t i = 0; i < p->count; i++)
		if (!p->deleted[i]) {
			(*n)++;
			*octets += p->entry[i].size;
		}
}

/* The monitor's answer to a login: the list in batches, TRANSACTION */
static void logged_in(struct pop3 *p, const struct pm_reply *rep)
{
	static struct pm_reply batch;
	struct pm_request req = { .op = PM_LIST };
	size_t n = rep->count;

	p->entry = calloc(n ? n : 1, sizeof *p->entry);
	p->deleted = calloc(n ? n : 1, 1);
	p->msg_fd = malloc((n ? n : 1) * sizeof *p->msg_fd);
	p->seen = calloc(n ? n : 1, 1);
	p->seen_wanted = rep->seen_wanted != 0;
	if (!p->entry || !p->deleted || !p->msg_fd || !p->seen) {
		fail(p, "SYS/TEMP", "Out of memory");
		p->quit = 1;
		return;
	}
	for (size_t i = 0; i < n; i++)
		p->msg_fd[i] = -1;
	while (p->count < n) {
		req.index = (uint32_t)p->count;
		pm_call(p->sock, &req, &batch, NULL, 0, NULL);
		if (batch.result != PM_OK || batch.count == 0 || batch.count > PM_BATCH) {
			fail(p, "SYS/TEMP", "Cannot list the mailbox");
			p->quit = 1;
			return;
		}
		for (size_t i = 0; i < batch.count && p->count < n; i++)
			p->entry[p->count++] = batch.entry[i];
	}
	p->state = S_TRANS;
	ok(p, "Logged in, %zu message%s (%llu octets)", n, n == 1 ? "" : "s", (unsigned long long)rep->total);
}

/* The password is the monitor's to check; this process only relays it. */
static void login(struct pop3 *p, const char *user, const char *pass)
{
	static struct pm_reply rep;
	struct pm_request req = { .op = PM_LOGIN };

	snprintf(req.user, sizeof req.user, "%s", user);
	snprintf(req.secret, sizeof req.secret, "%s", pass);
	snprintf(req.tls, sizeof req.tls, "%s", p->tls);
	pm_call(p->sock, &req, &rep, NULL, 0, NULL);
	explicit_bzero(&req, sizeof req);
	p->user[0] = '\0';
	switch (rep.result) {
	case PM_OK:
		logged_in(p, &rep);
		return;
	case PM_AUTH:
		fail(p, "AUTH", "%s", rep.text);
		return;
	case PM_IN_USE:
		fail(p, "IN-USE", "%s", rep.text);
		return;
	case PM_SYS_PERM:
		fail(p, "SYS/PERM", "%s", rep.text);
		return;
	case PM_SYS_TEMP:
		fail(p, "SYS/TEMP", "%s", rep.text);
		return;
	default:
		fail(p, "AUTH", "%s", rep.text);
		p->quit = 1;
	}
}

/* --- AUTHORIZATION -------------------------------------------------------- */

static void cmd_capa(struct pop3 *p, char *arg)
{
	static const char always[] = "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n";
	static const char implementation[] = "IMPLEMENTATION mailslot-" MAILSLOT_VERSION "\r\n";

	(void)arg;
	ok(p, "Capability list follows");
	lineio_write(&p->io, always, sizeof always - 1);
	lineio_write(&p->io, implementation, sizeof implementation - 1);
	if (p->state == S_AUTH && auth_offered(p))
		lineio_write(&p->io, "USER\r\nSASL PLAIN\r\n", 18);
	if (p->state == S_AUTH && p->tls_ctx && !p->tls[0])
		lineio_write(&p->io, "STLS\r\n", 6);
	lines_end(p);
}

/* The handshake after +OK (STLS) or before anything (--pop3s): 0, or -1
 * when the stream is spent and the session ends without another word. */
static int start_tls(struct pop3 *p)
{
	char why[TLS_WHY_MAX];
	int on = 1;

	/* CVE-2011-0411: what was pipelined in clear is never read as if it
	 * had come inside TLS */
	lineio_discard_input(&p->io);
	if (tls_start(p->io.conn, p->tls_ctx, NULL, (int)p->cfg->timeout * 1000, why, sizeof why) == -1) {
		char peer[2 * PEER_ADDR_MAX + 3];
		log_msg(LOG_NOTICE, "TLS handshake with %s failed: %s", log_value(peer, sizeof peer, p->peer->addr),
			why);
		p->quit = 1;
		return -1;
	}
	/* the client speaks right after its Finished: no delayed ACK (smtpd does the same) */
	(void)setsockopt(p->io.conn->in_fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
	tls_describe(p->io.conn, p->tls, sizeof p->tls);
	return 0;
}

static void cmd_stls(struct pop3 *p, char *arg)
{
	(void)arg;
	if (!p->tls_ctx) {
		fail(p, NULL, "STLS not available");
		return;
	}
	if (p->tls[0]) {
		fail(p, NULL, "Already in TLS");
		return;
	}
	ok(p, "Begin TLS negotiation");
	if (lineio_flush(&p->io) == -1 || start_tls(p) == -1) {
		p->quit = 1;
		return;
	}
	p->user[0] = '\0';	/* RFC 2595 4: nothing said in clear counts */
}

static int auth_refused(struct pop3 *p)
{
	if (auth_offered(p))
		return 0;
	fail(p, "AUTH", "Plaintext authentication disallowed on non-secure connections: use STLS");
	return 1;
}

static void cmd_user(struct pop3 *p, char *arg)
{
	if (auth_refused(p))
		return;
	if (!*arg || strlen(arg) > SASL_NAME_MAX) {
		fail(p, NULL, "Syntax: USER name");
		return;
	}
	snprintf(p->user, sizeof p->user, "%s", arg);
	ok(p, "Send PASS");
}

static void cmd_pass(struct pop3 *p, char *arg)
{
	if (auth_refused(p))
		return;
	if (!p->user[0]) {
		fail(p, NULL, "Send USER first");
		return;
	}
	if (strlen(arg) > SASL_SECRET_MAX) {
		p->user[0] = '\0';
		fail(p, "AUTH", "Authentication failed");
		return;
	}
	login(p, p->user, arg);
}

/* RFC 5034 4: the response to "+ ", or the initial one; -1 when the
 * exchange ends here (the reply is sent) */
static long auth_response(struct pop3 *p, const char *initial, unsigned char *out, size_t outsz)
{
	char line[POP3_LINE_MAX];
	size_t len;
	long n;

	if (*initial) {
		if (strcmp(initial, "=") == 0)
			return 0;
		if ((n = sasl_b64_decode(initial, out, outsz)) < 0)
			fail(p, NULL, "Cannot decode the response");
		return n;
	}
	lineio_write(&p->io, "+ \r\n", 4);
	enum line_status st = lineio_getline(&p->io, line, sizeof line, &len);
	if (st != LINE_OK) {
		if (st == LINE_TOOLONG)
			fail(p, NULL, "Response too long");
		else
			p->quit = 1;
		return -1;
	}
	if (strcmp(line, "*") == 0) {
		fail(p, NULL, "Authentication aborted");
		return -1;
	}
	n = sasl_b64_decode(line, out, outsz);
	explicit_bzero(line, sizeof line);
	if (n < 0)
		fail(p, NULL, "Cannot decode the response");
	return n;
}

static void cmd_auth(struct pop3 *p, char *arg)
{
	unsigned char msg[3 * (SASL_NAME_MAX + 1)];
	char user[SASL_NAME_MAX + 1], pass[SASL_SECRET_MAX + 1];
	const char *why, *initial;
	size_t mlen = strcspn(arg, " ");
	long n;

	if (!*arg) {
		/* the mechanism list some clients ask for (Outlook) */
		ok(p, "Mechanisms follow");
		if (auth_offered(p))
			lineio_write(&p->io, "PLAIN\r\n", 7);
		lines_end(p);
		return;
	}
	if (auth_refused(p))
		return;
	if (mlen != 5 || strncasecmp(arg, "PLAIN", 5) != 0) {
		fail(p, NULL, "Unsupported authentication mechanism");
		return;
	}
	for (initial = arg + mlen; *initial == ' '; initial++)
		;
	if ((n = auth_response(p, initial, msg, sizeof msg)) < 0)
		return;
	if (sasl_plain_split(msg, (size_t)n, user, pass, &why) == -1)
		fail(p, NULL, "Bad PLAIN response: %s", why);
	else
		login(p, user, pass);
	explicit_bzero(msg, sizeof msg);
	explicit_bzero(user, sizeof user);
	explicit_bzero(pass, sizeof pass);
}

static void cmd_apop(struct pop3 *p, char *arg)
{
	(void)arg;
	fail(p, NULL, "APOP not supported (it needs the password in clear on the server)");
}

/* --- TRANSACTION ---------------------------------------------------------- */

static void cmd_stat(struct pop3 *p, char *arg)
{
	size_t n;
	unsigned long long octets;

	(void)arg;
	totals(p, &n, &octets);
	ok(p, "%zu %llu", n, octets);
}

/* LIST and UIDL: one message, or every one not deleted */
static void listing(struct pop3 *p, char *arg, int uidl)
{
	char line[MAILBOX_UID_MAX + 32];

	if (*arg) {
		long i = message_arg(p, arg, NULL);
		if (i < 0)
			return;
		if (uidl)
			ok(p, "%ld %s", i + 1, p->entry[i].uid);
		else
			ok(p, "%ld %llu", i + 1, (unsigned long long)p->entry[i].size);
		return;
	}
	ok(p, "%s", uidl ? "Unique-ID listing follows" : "Scan listing follows");
	for (size_t k = 0; k < p->count; k++) {
		if (p->deleted[k])
			continue;
		int n = uidl ? snprintf(line, sizeof line, "%zu %s\r\n", k + 1, p->entry[k].uid)
			     : snprintf(line, sizeof line, "%zu %llu\r\n", k + 1, (unsigned long long)p->entry[k].size);
		lineio_write(&p->io, line, (size_t)n);
	}
	lines_end(p);
}

static void cmd_list(struct pop3 *p, char *arg)
{
	listing(p, arg, 0);
}

static void cmd_uidl(struct pop3 *p, char *arg)
{
	listing(p, arg, 1);
}

/* What goes to the client of one message: LF to CRLF, a leading dot
 * doubled (RFC 1939 3), at most body_lines lines after the header (TOP;
 * -1: all). */
struct stuffer {
	struct pop3 *p;
	long long body_lines;
	long long octets;	/* of the message with CRLF, stuffing aside */
	int line_start, in_body;
	char out[65536];
};

/* One octet into f->out; 1 when TOP has what it asked for. */
static int stuff_octet(struct stuffer *f, char c, size_t *o)
{
	if (f->line_start && f->in_body && f->body_lines >= 0 && f->body_lines-- == 0)
		return 1;
	if (f->line_start && c == '.')
		f->out[(*o)++] = '.';
	if (f->line_start && c == '\n')
		f->in_body = 1;	/* the empty line after the header */
	if (c == '\n') {
		f->out[(*o)++] = '\r';
		f->octets++;
	}
	f->out[(*o)++] = c;
	f->octets++;
	f->line_start = c == '\n';
	return 0;
}

static int stuff(void *ctx, const char *in, size_t n)
{
	struct stuffer *f = ctx;
	size_t o = 0;
	int stop = 0;

	for (size_t k = 0; k < n && !stop; k++) {
		stop = stuff_octet(f, in[k], &o);
		if (o >= sizeof f->out - 3 || k + 1 == n || stop) {
			lineio_write(&f->p->io, f->out, o);
			o = 0;
		}
	}
	return stop;
}

/* A plain message file: [start, start + len) of fd into the stuffer. */
static int stuff_file(struct stuffer *f, int fd, off_t start, off_t len)
{
	char buf[65536];

	while (len > 0) {
		ssize_t n = pread(fd, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf, start);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? EIO : errno;
		if (stuff(f, buf, (size_t)n))
			return 0;
		start += n;
		len -= n;
	}
	return 0;
}

/* Open files ahead of the client: at most this many */
#define POP3_FILES_AHEAD ((size_t)2 * FDPASS_MAX)

static void drop_cached(struct pop3 *p)
{
	for (size_t k = 0; k < p->count && p->cached > 0; k++)
		if (p->msg_fd[k] != -1) {
			close(p->msg_fd[k]);
			p->msg_fd[k] = -1;
			p->cached--;
		}
}

/* The descriptor message i is in (*quoted: the mbox's), asking the
 * monitor for it and the next ones when it is not open yet; -1 when the
 * monitor could not (the reply is sent). */
static int message_fd(struct pop3 *p, long i, int *quoted)
{
	static struct pm_reply rep;
	struct pm_request req = { .op = PM_OPEN, .index = (uint32_t)i };
	int fds[FDPASS_MAX];
	size_t n;

	*quoted = p->mbox_fd != -1;
	if (*quoted || p->msg_fd[i] != -1)
		return *quoted ? p->mbox_fd : p->msg_fd[i];
	if (p->cached > POP3_FILES_AHEAD)
		drop_cached(p);	/* a client reading here and there */
	pm_call(p->sock, &req, &rep, fds, FDPASS_MAX, &n);
	if (rep.result != PM_OK || n == 0) {
		while (n > 0)
			close(fds[--n]);
		fail(p, "SYS/TEMP", "%s", rep.text[0] ? rep.text : "Cannot read the message");
		if (rep.result == PM_BYE)
			p->quit = 1;
		return -1;
	}
	if (rep.quoted) {
		*quoted = 1;
		p->mbox_fd = fds[0];
		while (n > 1)
			close(fds[--n]);
		return p->mbox_fd;
	}
	for (size_t k = 0; k < n; k++) {
		if ((size_t)i + k < p->count && p->msg_fd[i + k] == -1) {
			p->msg_fd[i + k] = fds[k];
			p->cached++;
		} else {
			close(fds[k]);
		}
	}
	return p->msg_fd[i];
}

static void send_message(struct pop3 *p, long i, int retr, long long body_lines)
{
	static struct stuffer f;
	const struct pm_entry *e = &p->entry[i];
	off_t written, lines;
	int quoted, err;
	int fd = message_fd(p, i, &quoted);

	if (fd == -1)
		return;
	ok(p, "%llu octets", (unsigned long long)e->size);
	f.p = p;
	f.body_lines = body_lines;
	f.octets = 0;
	f.line_start = 1;
	f.in_body = 0;
	if (quoted)
		err = mbox_unquote(fd, (off_t)e->start, (off_t)e->len, stuff, &f, &written, &lines);
	else
		err = stuff_file(&f, fd, (off_t)e->start, (off_t)e->len);
	if (!quoted) {
		/* read once: a second RETR asks again */
		close(fd);
		p->msg_fd[i] = -1;
		p->cached--;
	}
	if (err || (retr && f.octets != (long long)e->size)) {
		/* changed under us (another program rewrote the mailbox): the
		 * client must not take a short message for a whole one: the
		 * connection ends without the dot */
		log_msg(LOG_ERR, "message %ld: %lld octets read instead of %llu, connection ended", i + 1, f.octets,
			(unsigned long long)e->size);
		_exit(0);
	}
	if (!f.line_start)
		lineio_write(&p->io, "\r\n", 2);
	lines_end(p);
	if (retr) {
		p->retr++;
		p->retr_octets += e->size;
		p->seen[i] = 1;
	}
}

static void cmd_retr(struct pop3 *p, char *arg)
{
	long i = message_arg(p, arg, NULL);

	if (i >= 0)
		send_message(p, i, 1, -1);
}

static void cmd_top(struct pop3 *p, char *arg)
{
	const char *rest;
	char *end;
	long i = message_arg(p, arg, &rest);

	if (i < 0)
		return;
	errno = 0;
	long long n = strtoll(rest, &end, 10);
	if (*rest < '0' || *rest > '9' || *end || errno) {
		fail(p, NULL, "Syntax: TOP message lines");
		return;
	}
	send_message(p, i, 0, n);
}

static void cmd_dele(struct pop3 *p, char *arg)
{
	static struct pm_reply rep;
	long i = message_arg(p, arg, NULL);

	if (i < 0)
		return;
	struct pm_request req = { .op = PM_DELE, .index = (uint32_t)i };
	pm_call(p->sock, &req, &rep, NULL, 0, NULL);
	if (rep.result != PM_OK) {
		fail(p, "SYS/TEMP", "%s", rep.text);
		p->quit = 1;
		return;
	}
	p->deleted[i] = 1;
	ok(p, "Message %ld deleted", i + 1);
}

static void cmd_noop(struct pop3 *p, char *arg)
{
	(void)arg;
	ok(p, "%s", "");
}

static void cmd_rset(struct pop3 *p, char *arg)
{
	static struct pm_reply rep;
	struct pm_request req = { .op = PM_RSET };
	size_t n;
	unsigned long long octets;

	(void)arg;
	pm_call(p->sock, &req, &rep, NULL, 0, NULL);
	if (rep.result != PM_OK) {
		fail(p, "SYS/TEMP", "%s", rep.text);
		p->quit = 1;
		return;
	}
	memset(p->deleted, 0, p->count);
	totals(p, &n, &octets);
	ok(p, "Maildrop has %zu message%s (%llu octets)", n, n == 1 ? "" : "s", octets);
}

static void cmd_quit(struct pop3 *p, char *arg)
{
	static struct pm_reply rep;
	struct pm_request req = { .op = PM_UPDATE };

	(void)arg;
	p->quit = 1;
	if (p->state == S_AUTH) {
		ok(p, "%s POP3 server signing off", p->cfg->hostname);
		return;
	}
	/* RFC 1939 6: the UPDATE state, only now */
	for (size_t i = 0; p->seen_wanted && i < p->count; i++)
		if (p->seen[i] && !p->deleted[i]) {
			struct pm_request seen = { .op = PM_SEEN, .index = (uint32_t)i };
			pm_tell(p->sock, &seen);
		}
	pm_call(p->sock, &req, &rep, NULL, 0, NULL);
	if (rep.result != PM_OK) {
		fail(p, "SYS/TEMP", "%s", rep.text);
		return;
	}
	size_t n;
	unsigned long long octets;
	totals(p, &n, &octets);
	ok(p, "%s POP3 server signing off (%zu message%s left)", p->cfg->hostname, n, n == 1 ? "" : "s");
}

static const struct command commands[] = {
	{ "CAPA", cmd_capa, S_AUTH | S_TRANS },
	{ "QUIT", cmd_quit, S_AUTH | S_TRANS },
	{ "STLS", cmd_stls, S_AUTH },
	{ "USER", cmd_user, S_AUTH },
	{ "PASS", cmd_pass, S_AUTH },
	{ "AUTH", cmd_auth, S_AUTH },
	{ "APOP", cmd_apop, S_AUTH },
	{ "STAT", cmd_stat, S_TRANS },
	{ "LIST", cmd_list, S_TRANS },
	{ "UIDL", cmd_uidl, S_TRANS },
	{ "RETR", cmd_retr, S_TRANS },
	{ "TOP", cmd_top, S_TRANS },
	{ "DELE", cmd_dele, S_TRANS },
	{ "NOOP", cmd_noop, S_TRANS },
	{ "RSET", cmd_rset, S_TRANS },
};

static void dispatch(struct pop3 *p, char *line, size_t len)
{
	size_t vlen = strcspn(line, " ");
	char *arg = line + vlen;

	if (log_verbose()) {
		char shown[80];
		/* PASS and AUTH carry a password */
		int secret = (vlen == 4 && (strncasecmp(line, "PASS", 4) == 0 || strncasecmp(line, "AUTH", 4) == 0));
		log_printable(shown, sizeof shown, line, secret ? vlen : len);
		log_msg(LOG_DEBUG, "< %s%s", shown, secret && vlen < len ? " ..." : "");
	}
	if (*arg)
		arg++;
	/* PASS takes the rest of the line as it is: a password may hold or
	 * end in spaces; other arguments lose trailing ones */
	if (!(vlen == 4 && strncasecmp(line, "PASS", 4) == 0))
		for (char *end = line + len; end > arg && end[-1] == ' ';)
			*--end = '\0';
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
		const struct command *c = &commands[i];
		if (strlen(c->verb) != vlen || strncasecmp(line, c->verb, vlen) != 0)
			continue;
		if (!(c->states & (int)p->state))
			fail(p, NULL, "Command not valid in this state");
		else
			c->handler(p, arg);
		return;
	}
	fail(p, NULL, "Unknown command");
}

static struct pop3 session;

int pop3_sign(int pad, const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen)
{
	return pm_sign(session.sock, pad, in, inlen, out, outlen);
}

int pop3_run(const struct config *cfg, const struct peer *peer, struct tls_ctx *tls, int sock)
{
	struct pop3 *p = &session;
	char line[POP3_LINE_MAX];
	size_t len;

	p->cfg = cfg;
	p->peer = peer;
	p->sock = sock;
	p->state = S_AUTH;
	p->tls_ctx = tls;
	p->mbox_fd = -1;
	lineio_init(&p->io, 0, 1, peer->network, cfg->timeout);
	if (cfg->pop3s && start_tls(p) == -1)
		return 0;
	ok(p, "%s POP3 mailslot ready", cfg->hostname);
	while (!p->quit) {
		if (p->errors >= POP3_ERRORS_MAX) {
			fail(p, NULL, "Too many errors");
			break;
		}
		enum line_status st = lineio_getline(&p->io, line, sizeof line, &len);
		if (st == LINE_TOOLONG) {
			fail(p, NULL, "Line too long");
			continue;
		}
		if (st == LINE_TIMEOUT) {
			/* RFC 1939 3: the autologout timer; no UPDATE */
			fail(p, NULL, "Autologout: idle for too long");
			break;
		}
		if (st != LINE_OK)
			break;
		dispatch(p, line, len);
		explicit_bzero(line, len);
	}
	if (peer->network)
		lineio_finish(&p->io);
	else
		lineio_flush(&p->io);
	if (p->state == S_TRANS) {
		struct pm_request req = { .op = PM_RETR, .index = (uint32_t)p->retr, .octets = p->retr_octets };
		pm_tell(p->sock, &req);
	}
	free(p->entry);
	free(p->deleted);
	free(p->msg_fd);
	free(p->seen);
	return 0;
}
