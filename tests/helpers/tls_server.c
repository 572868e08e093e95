/* tls_server: the server half of src/tls.c over standard input and output,
 * for tests/tls.bats, before any SMTP server speaks TLS.
 *
 * usage: tls_server [--starttls] [--fork] [--sandbox] [--user UID:GID] [--timeout MS] CERT KEY
 *
 * The context is made first (as mailslot-smtpd must: before it drops
 * privileges, so a key only root can read works); a failure prints one
 * line, "tls_server: <why>", and exits 78.  Then, with --user, the process
 * becomes that account (numbers: a static build has no NSS); with --fork
 * the rest runs in a child, as a session runs after the monitor made the
 * context; with --sandbox it applies src/sandbox.c's sandbox_enter()
 * exactly as a session does (no file access, the seccomp allow-list), so
 * that the handshake and every TLS read and write run under the real
 * filter: a call outside it kills the process (SIGSYS), and the parent
 * (with --fork) says "tls_server: killed by signal 31" and exits 2.
 *
 * Without --starttls the handshake starts at once (implicit TLS, RFC
 * 8314).  With it the helper speaks just enough SMTP for `openssl s_client
 * -starttls smtp` and Python's smtplib: "220" greeting, EHLO offering
 * STARTTLS, "220" to STARTTLS, and anything pipelined after STARTTLS in
 * clear is discarded (counted in the log on standard error), never read
 * as if it had come inside TLS.  Inside TLS every line is answered:
 * EHLO/HELO with 250 (no STARTTLS), "TLS?" with "250 <tls_describe>",
 * QUIT with 221 and the end, "BIG N" with N octets of text in one reply
 * line set (a write larger than a record), anything else with "250 echo:
 * <line>".  Exit 0 after QUIT or end of input, 1 on a handshake failure
 * (the reason on standard error).
 */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/lineio.h"
#include "../../src/sandbox.h"
#include "../../src/tls.h"

static struct lineio io;

static void say(const char *line)
{
	lineio_write(&io, line, strlen(line));
	lineio_write(&io, "\r\n", 2);
}

static int become(const char *ids)
{
	unsigned uid, gid;

	if (sscanf(ids, "%u:%u", &uid, &gid) != 2 || setgroups(0, NULL) == -1 || setgid(gid) == -1 ||
	    setuid(uid) == -1) {
		fprintf(stderr, "tls_server: cannot become %s\n", ids);
		return -1;
	}
	return 0;
}

/* --fork: the parent waits and reports how the child ended. */
static int wait_child(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) == -1)
		;
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "tls_server: killed by signal %d\n", WTERMSIG(st));
		return 2;
	}
	return WEXITSTATUS(st);
}

/* The plain part: up to STARTTLS.  0: go on with the handshake. */
static int plain_dialogue(void)
{
	char line[1024];
	size_t len;

	say("220 tls-server.test ESMTP test");
	for (;;) {
		if (lineio_getline(&io, line, sizeof line, &len) != LINE_OK)
			return -1;
		if (strncasecmp(line, "EHLO", 4) == 0) {
			say("250-tls-server.test");
			say("250 STARTTLS");
		} else if (strcasecmp(line, "STARTTLS") == 0) {
			size_t pipelined = lineio_pending(&io);
			say("220 2.0.0 Ready to start TLS");
			lineio_flush(&io);
			if (pipelined)
				fprintf(stderr, "tls_server: discarded %zu octets sent after STARTTLS\n", pipelined);
			/* CVE-2011-0411: what came in clear stays in clear */
			io.in_start = io.in_end = 0;
			return 0;
		} else if (strcasecmp(line, "QUIT") == 0) {
			say("221 2.0.0 bye");
			lineio_flush(&io);
			return -1;
		} else {
			say("530 5.7.0 Must issue a STARTTLS command first");
		}
	}
}

static void big_reply(unsigned long n)
{
	static char text[1000];

	memset(text, 'x', sizeof text - 1);
	while (n > 0) {
		size_t take = n < sizeof text - 1 ? n : sizeof text - 1;
		lineio_write(&io, n > take ? "250-" : "250 ", 4);
		lineio_write(&io, text, take);
		lineio_write(&io, "\r\n", 2);
		n -= take;
	}
}

static void tls_dialogue(void)
{
	char line[1024], out[1100], desc[TLS_DESCRIBE_MAX];
	size_t len;

	for (;;) {
		if (lineio_getline(&io, line, sizeof line, &len) != LINE_OK)
			break;
		if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0) {
			say("250-tls-server.test");
			say("250 AUTH PLAIN");
		} else if (strcmp(line, "TLS?") == 0) {
			tls_describe(io.conn, desc, sizeof desc);
			snprintf(out, sizeof out, "250 %s", desc);
			say(out);
		} else if (strncmp(line, "BIG ", 4) == 0) {
			big_reply(strtoul(line + 4, NULL, 10));
		} else if (strcasecmp(line, "QUIT") == 0) {
			say("221 2.0.0 bye");
			break;
		} else {
			snprintf(out, sizeof out, "250 echo: %s", line);
			say(out);
		}
	}
	lineio_finish(&io);
}

/* The dialogue, under whatever sandbox the caller applied: the exit status. */
static int serve(struct tls_ctx *ctx, int starttls, int timeout_ms)
{
	char why[TLS_WHY_MAX];

	lineio_init(&io, 0, 1, 1, 5);
	if (starttls && plain_dialogue() == -1)
		return 0;
	if (tls_start(io.conn, ctx, NULL, timeout_ms, why, sizeof why) == -1) {
		fprintf(stderr, "tls_server: %s\n", why);
		return 1;
	}
	tls_describe(io.conn, why, sizeof why);
	fprintf(stderr, "tls_server: established %s\n", why);
	if (!starttls)
		say("220 tls-server.test ESMTP test (implicit TLS)");
	tls_dialogue();
	return 0;
}

int main(int argc, char **argv)
{
	int starttls = 0, sandbox = 0, split = 0, timeout_ms = 5000;
	const char *user = NULL, *step;
	char why[TLS_WHY_MAX];
	int i = 1, abi;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--starttls") == 0)
			starttls = 1;
		else if (strcmp(argv[i], "--fork") == 0)
			split = 1;
		else if (strcmp(argv[i], "--sandbox") == 0)
			sandbox = 1;
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_ms = atoi(argv[++i]);
		else
			break;
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: tls_server [--starttls] [--fork] [--sandbox] [--user UID:GID] [--timeout MS] CERT KEY\n");
		return 64;
	}
	struct tls_ctx *ctx = tls_server_ctx(argv[i], argv[i + 1], why, sizeof why);
	if (!ctx) {
		fprintf(stderr, "tls_server: %s\n", why);
		return 78;
	}
	if (user && become(user) == -1)
		return 71;
	if (split) {
		pid_t pid = fork();
		if (pid == -1)
			return 71;
		if (pid > 0)
			return wait_child(pid);
	}
	if (sandbox && sandbox_enter(&step, &abi) == -1) {
		fprintf(stderr, "tls_server: sandbox: %s\n", step);
		return 71;
	}
	/* _exit from here on, as a session ends: exit() would run atexit
	 * handlers (a sanitizer's among them) inside the sandbox */
	_exit(serve(ctx, starttls, timeout_ms));
}
