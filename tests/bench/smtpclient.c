/*
 * smtpclient - the measuring client of tests/bench/run.sh.
 *
 * Usage:
 *   smtpclient [opts] latency HOST PORT SESSIONS
 *       SESSIONS sequential sessions: connect, 220, EHLO, MAIL, RCPT, DATA,
 *       a SIZE-byte message, ".", QUIT/221; each timed from connect(2) to
 *       the 221.  Prints "median_ms=M p10_ms=A p90_ms=B sessions=N".
 *   smtpclient [opts] idle HOST PORT COUNT
 *       Opens COUNT connections that each read the greeting and send EHLO,
 *       prints "ready COUNT", then idles until standard input reaches EOF,
 *       then sends QUIT on each and closes.
 *   smtpclient [opts] big -- SERVER [ARGS...]
 *       Runs SERVER with stdin/stdout on the accepted end of a loopback TCP
 *       connection (what inetd does), sends one SIZE-byte message through
 *       it and reads VmHWM from /proc/PID/status just before the final dot
 *       and again after the 250 to it, before QUIT.  Prints
 *       "hwm_before_dot_kib=X hwm_kib=Y elapsed_s=Z".
 *
 * Options: -f SENDER, -t RECIPIENT, -H HELO name, -s SIZE (bytes; k or m
 * suffix; default 2048, 100m for big), -e FILE (big: SERVER's stderr,
 * default /dev/null), -w SECONDS (deadline per reply, default 30).
 *
 * Every reply is awaited with a deadline and must have the expected code;
 * anything else is reported on stderr with the reply and exits 1, so the
 * harness never times a session that failed.  Exit status: 0 ok, 1 SMTP or
 * I/O failure, 64 usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	size_t off, len;
	char buf[4096];
};

static const char *sender = "bench-sender@bench.example";
static const char *recipient = "bench@bench.example";
static const char *helo = "client.bench.example";
static long long deadline_ms = 30000;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "smtpclient: fatal: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
}

/* One byte of the reply stream, waiting at most until deadline (ms, monotonic). */
static int get_byte(struct conn *c, double deadline)
{
	while (c->off == c->len) {
		double left = deadline - now_ms();
		if (left <= 0)
			die("timeout", "no reply in time");
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left + 1);
		if (r < 0 && errno != EINTR)
			die("poll", strerror(errno));
		if (r <= 0)
			continue;
		ssize_t n = read(c->fd, c->buf, sizeof c->buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read", strerror(errno));
		if (n == 0)
			return -1;
		c->off = 0;
		c->len = (size_t)n;
	}
	return (unsigned char)c->buf[c->off++];
}

/*
 * Read a whole (possibly multi-line) reply and insist on code `expect`.
 * `what` names the command for the error message.
 */
static void expect_reply(struct conn *c, int expect, const char *what)
{
	double deadline = now_ms() + (double)deadline_ms;
	char line[1024];

	for (;;) {
		size_t n = 0;
		int ch;
		while ((ch = get_byte(c, deadline)) != '\n') {
			if (ch < 0) {
				line[n] = '\0';
				fprintf(stderr, "smtpclient: fatal: connection closed after %s (partial reply \"%s\")\n",
					what, line);
				exit(1);
			}
			if (ch != '\r' && n < sizeof line - 1)
				line[n++] = (char)ch;
		}
		line[n] = '\0';
		if (n < 3) {
			fprintf(stderr, "smtpclient: fatal: malformed reply to %s: \"%s\"\n", what, line);
			exit(1);
		}
		if (n > 3 && line[3] == '-')
			continue;
		if (atoi(line) != expect) {
			fprintf(stderr, "smtpclient: fatal: %s: expected %d, got \"%s\"\n", what, expect, line);
			exit(1);
		}
		return;
	}
}

static void command(struct conn *c, const char *cmd, int expect)
{
	send_all(c->fd, cmd, strlen(cmd));
	expect_reply(c, expect, cmd);
}

static int dial(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	int one = 1;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("not an IPv4 address", host);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		die("connect", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* The envelope and "DATA" of one transaction after the greeting. */
static void begin_transaction(struct conn *c, int say_ehlo)
{
	char cmd[600];

	if (say_ehlo) {
		snprintf(cmd, sizeof cmd, "EHLO %s\r\n", helo);
		command(c, cmd, 250);
	}
	snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>\r\n", sender);
	command(c, cmd, 250);
	snprintf(cmd, sizeof cmd, "RCPT TO:<%s>\r\n", recipient);
	command(c, cmd, 250);
	command(c, "DATA\r\n", 354);
}

/* A message of exactly `size` bytes (headers included) followed by ".\r\n". */
static char *make_message(size_t size, size_t *len)
{
	char head[1024];
	int hn = snprintf(head, sizeof head,
			  "From: <%s>\r\nTo: <%s>\r\nSubject: mailslot bench\r\n"
			  "Message-ID: <bench.%ld@bench.example>\r\n"
			  "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n",
			  sender, recipient, (long)getpid());
	size_t n = (size_t)hn;

	if (size < n + 2)
		size = n + 2;
	char *m = malloc(size + 4);
	if (m == NULL)
		die("malloc", strerror(errno));
	memcpy(m, head, n);
	while (n < size) {
		/* body lines of 76 characters; the last one shorter */
		size_t room = size - n - 2, k = room < 76 ? room : 76;
		for (size_t i = 0; i < k; i++)
			m[n + i] = (char)('a' + (int)((n + i) % 26));
		n += k;
		m[n++] = '\r';
		m[n++] = '\n';
	}
	memcpy(m + n, ".\r\n", 3);
	*len = n + 3;
	return m;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int run_latency(const char *host, int port, int sessions, size_t size)
{
	size_t mlen;
	char *msg = make_message(size, &mlen);
	double *t = calloc((size_t)sessions, sizeof *t);

	if (t == NULL)
		die("calloc", strerror(errno));
	for (int i = 0; i < sessions; i++) {
		struct conn c = { .fd = -1 };
		double t0 = now_ms();
		c.fd = dial(host, port);
		expect_reply(&c, 220, "greeting");
		begin_transaction(&c, 1);
		send_all(c.fd, msg, mlen); /* one write: no Nagle stall before the dot */
		expect_reply(&c, 250, "end of data");
		command(&c, "QUIT\r\n", 221);
		t[i] = now_ms() - t0;
		close(c.fd);
	}
	qsort(t, (size_t)sessions, sizeof *t, cmp_double);
	printf("median_ms=%.3f p10_ms=%.3f p90_ms=%.3f sessions=%d\n", t[sessions / 2],
	       t[sessions / 10], t[sessions * 9 / 10], sessions);
	free(t);
	free(msg);
	return 0;
}

static int run_idle(const char *host, int port, int count)
{
	struct conn *c = calloc((size_t)count, sizeof *c);
	char cmd[600], junk[256];

	if (c == NULL)
		die("calloc", strerror(errno));
	snprintf(cmd, sizeof cmd, "EHLO %s\r\n", helo);
	for (int i = 0; i < count; i++) {
		c[i].fd = dial(host, port);
		expect_reply(&c[i], 220, "greeting");
		command(&c[i], cmd, 250);
	}
	printf("ready %d\n", count);
	fflush(stdout);
	while (read(0, junk, sizeof junk) > 0)
		;
	for (int i = 0; i < count; i++) {
		send_all(c[i].fd, "QUIT\r\n", 6);
		close(c[i].fd);
	}
	free(c);
	return 0;
}

static long hwm_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;

	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		die("open", path);
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = atol(line + 6);
	fclose(f);
	if (kib < 0)
		die("no VmHWM in", path);
	return kib;
}

static int run_big(char **argv, size_t size, const char *errfile)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof sa;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0)
		die("loopback listener", strerror(errno));
	struct conn c = { .fd = dial("127.0.0.1", ntohs(sa.sin_port)) };
	int sfd = accept(lfd, NULL, NULL);
	if (sfd < 0)
		die("accept", strerror(errno));
	close(lfd);

	pid_t pid = fork();
	if (pid < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		int efd = open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (efd < 0 || dup2(sfd, 0) < 0 || dup2(sfd, 1) < 0 || dup2(efd, 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(sfd);

	double t0 = now_ms();
	expect_reply(&c, 220, "greeting");
	begin_transaction(&c, 1);

	/* 840 lines of 76 characters + CRLF: one 65,520-byte chunk to repeat */
	enum { LINES = 840, LLEN = 78 };
	static char chunk[LINES * LLEN];
	for (int l = 0; l < LINES; l++) {
		for (int i = 0; i < 76; i++)
			chunk[l * LLEN + i] = (char)('a' + (l + i) % 26);
		chunk[l * LLEN + 76] = '\r';
		chunk[l * LLEN + 77] = '\n';
	}
	static const char head[] = "Subject: mailslot bench big message\r\n\r\n";
	send_all(c.fd, head, sizeof head - 1);
	size_t sent = sizeof head - 1;
	while (sent + sizeof chunk <= size) {
		send_all(c.fd, chunk, sizeof chunk);
		sent += sizeof chunk;
	}
	size_t rest = (size - sent) / LLEN * LLEN; /* whole lines only */
	send_all(c.fd, chunk, rest);

	long before = hwm_kib(pid);
	send_all(c.fd, ".\r\n", 3);
	expect_reply(&c, 250, "end of data");
	long after = hwm_kib(pid);
	double elapsed = (now_ms() - t0) / 1e3;
	command(&c, "QUIT\r\n", 221);
	close(c.fd);

	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	printf("hwm_before_dot_kib=%ld hwm_kib=%ld elapsed_s=%.3f exit=%d\n", before, after, elapsed,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		die("bad size", s);
	if (*end == 'k' || *end == 'K')
		v <<= 10;
	else if (*end == 'm' || *end == 'M')
		v <<= 20;
	else if (*end != '\0')
		die("bad size", s);
	return (size_t)v;
}

static void usage(void)
{
	fputs("usage: smtpclient [-f from] [-t rcpt] [-H helo] [-s size] [-e errfile] [-w secs]\n"
	      "         latency HOST PORT SESSIONS | idle HOST PORT COUNT | big -- SERVER [ARGS...]\n",
	      stderr);
	exit(64);
}

int main(int argc, char **argv)
{
	const char *errfile = "/dev/null";
	size_t size = 0;
	int opt;

	while ((opt = getopt(argc, argv, "+f:t:H:s:e:w:")) != -1) {
		switch (opt) {
		case 'f': sender = optarg; break;
		case 't': recipient = optarg; break;
		case 'H': helo = optarg; break;
		case 's': size = parse_size(optarg); break;
		case 'e': errfile = optarg; break;
		case 'w': deadline_ms = atoll(optarg) * 1000; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (strcmp(argv[0], "latency") == 0 && argc == 4)
		return run_latency(argv[1], atoi(argv[2]), atoi(argv[3]) > 0 ? atoi(argv[3]) : 1,
				   size ? size : 2048);
	if (strcmp(argv[0], "idle") == 0 && argc == 4)
		return run_idle(argv[1], atoi(argv[2]), atoi(argv[3]));
	if (strcmp(argv[0], "big") == 0 && argc >= 3 && strcmp(argv[1], "--") == 0)
		return run_big(argv + 2, size ? size : (size_t)100 << 20, errfile);
	usage();
	return 64;
}
