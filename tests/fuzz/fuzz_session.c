/* fuzz_session: the whole SMTP server state machine, driven by arbitrary bytes.
 *
 * The input's first byte chooses how the session is reached and set up;
 * the rest is what the client sends.  Transports, as in production:
 *   socket   fd 0 and fd 1 are one end of a socketpair (systemd Accept=yes,
 *            inetd).  A client thread waits for the greeting, then sends
 *            the whole input at once (pipelining at its worst), closes its
 *            sending side and reads every reply;
 *   terminal fd 0 is a file holding the input, fd 1 a file (lenient line ends);
 *   ucspi    the same files with TCPREMOTEIP/TCPLOCALIP set (tcpserver
 *            behind a proxy): strict line ends, loopback or network class.
 * Mode bits: 0-1 transport (0,1 socket, 2 terminal, 3 ucspi), 2-3 mailbox
 * format (mbox, maildir, mh, mbox), 4 --relay no, 5 --max-recipients 2,
 * 6 ucspi local address not loopback, 7 --max-size 1024.
 *
 * Delivery is real: a spool and a queue in a scratch directory (tmpfs when
 * there is one), emptied after every input; carol's mbox is a directory,
 * so that her deliveries fail and are deferred.  Checked after each session:
 * every byte the server sent is a well-formed reply line (printable, CRLF,
 * multi-line replies keep their code), and every queue entry it wrote
 * reads back with queue_read_env, as mailslot-relay will read it.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "../../src/config.h"
#include "../../src/log.h"
#include "../../src/peer.h"
#include "../../src/queue.h"
#include "../../src/session.h"
#include "../../src/users.h"
#include "fuzz_util.h"

#define OUT_MAX (8 * 1024 * 1024)	/* replies kept for the check */

static struct config cfg;
static char spool[300], queue[300];
static int in_file, out_file;		/* memory files for terminal and ucspi */

static void make_broken_mailbox(void);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char users_path[300], aliases_path[300], passwd_path[300];
	static char *args[32];
	char err[512];
	int n = 0;
	const char *dir;

	(void)argc;
	(void)argv;
	/* a client that goes away must not kill us, as in smtpd.c main */
	signal(SIGPIPE, SIG_IGN);
	fuzz_quiet_init();
	dir = fuzz_make_dir();
	snprintf(spool, sizeof spool, "%s/spool", dir);
	snprintf(queue, sizeof queue, "%s/queue", dir);
	snprintf(users_path, sizeof users_path, "%s/users", dir);
	snprintf(aliases_path, sizeof aliases_path, "%s/aliases", dir);
	if (mkdir(spool, 0700) == -1 || mkdir(queue, 0700) == -1)
		fuzz_die("mkdir");
	fuzz_write_file(dir, "users", "# fuzz users\nalice\nbob\nCarol\npostmaster\n");
	fuzz_write_file(dir, "aliases",
			"root: alice\n"
			"staff: alice, bob\n"
			"\tcarol\n"
			"friend: someone@example.net, alice\n"
			"loop1: loop2\n"
			"loop2: loop1, bob\n"
			"far: \"quoted user\"@example.net, someone@[192.0.2.7]\n");
	args[n++] = "mailslot-smtpd";
	args[n++] = "--spool";
	args[n++] = spool;
	args[n++] = "--queue";
	args[n++] = queue;
	args[n++] = "--users";
	args[n++] = users_path;
	args[n++] = "--aliases";
	args[n++] = aliases_path;
	args[n++] = "--domain";
	args[n++] = "fuzz.test";
	args[n++] = "--domain";
	args[n++] = "example.org";
	args[n++] = "--hostname";
	args[n++] = "mx.fuzz.test";
	args[n++] = "--timeout";
	args[n++] = "1";
	args[n++] = "--lock-timeout";
	args[n++] = "1";
	args[n++] = "--log";
	args[n++] = "stderr";
	args[n++] = "--verbose";
	/* no wait after errors: the fuzzer makes many */
	args[n++] = "--error-delay";
	args[n++] = "0";
	/* AUTH: alice's password is "fuzz secret" (md5-crypt: a cheap hash,
	 * so that a fuzzer that finds it still runs fast) */
	fuzz_write_file(dir, "passwd", "alice:$1$fuzzsalt$ahBTudq14VnwDdgZPmDkJ1\nbob:!locked\n");
	snprintf(passwd_path, sizeof passwd_path, "%s/passwd", dir);
	args[n++] = "--passwd";
	args[n++] = passwd_path;
	args[n] = NULL;
	optind = 0;
	if (config_load(&cfg, n, args, PROG_SMTPD, "mailslot-smtpd") != 0)
		fuzz_die(config_error);
	if (users_init(&cfg, err, sizeof err) == -1)
		fuzz_die(err);
	if ((cfg.passwd_fd = open(passwd_path, O_RDONLY | O_CLOEXEC)) == -1)
		fuzz_die("open passwd");
	log_open("mailslot-smtpd", LOG_DEST_STDERR, 1);
	make_broken_mailbox();
	in_file = fuzz_memfd("fuzz-session-in");
	out_file = fuzz_memfd("fuzz-session-out");
	unsetenv("TCPREMOTEIP");
	unsetenv("TCPLOCALIP");
	unsetenv("TCPREMOTEPORT");
	return 0;
}

/* The client of the socket transport. */
struct client {
	int fd;
	const uint8_t *data;
	size_t len;
	char *out;
	size_t out_len;
	int truncated;
};

static void *client_run(void *arg)
{
	struct client *c = arg;
	size_t sent = 0;
	int greeted = 0, shut = 0;

	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		if (greeted && !shut)
			pfd.events |= POLLOUT;
		/* the server answers in well under a second; 10 s means it hangs,
		 * and libFuzzer's -timeout reports that first */
		int pr = poll(&pfd, 1, 10000);
		if (pr == -1 && errno == EINTR)
			continue;
		if (pr <= 0)
			break;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			char buf[16384];
			ssize_t n = read(c->fd, buf, sizeof buf);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			size_t keep = (size_t)n;
			if (c->out_len + keep > OUT_MAX) {
				keep = OUT_MAX - c->out_len;
				c->truncated = 1;
			}
			memcpy(c->out + c->out_len, buf, keep);
			c->out_len += keep;
			greeted |= memchr(c->out, '\n', c->out_len) != NULL;
			continue;
		}
		if (pfd.revents & POLLOUT) {
			if (sent < c->len) {
				ssize_t n = send(c->fd, c->data + sent, c->len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
				if (n > 0)
					sent += (size_t)n;
				else if (n == -1 && errno != EAGAIN && errno != EINTR)
					shut = 1;	/* the server is gone */
			}
			if (sent == c->len && !shut) {
				shutdown(c->fd, SHUT_WR);
				shut = 1;
			}
		}
	}
	return NULL;
}

/* Every reply line well formed; a multi-line reply keeps one code. */
static void check_replies(const char *out, size_t len, int truncated)
{
	size_t pos = 0;
	int code = -1, more = 0;

	while (pos < len) {
		const char *lf = memchr(out + pos, '\n', len - pos);
		if (!lf) {
			FUZZ_CHECK(truncated, "reply without a line end at offset %zu", pos);
			return;
		}
		size_t ll = (size_t)(lf - (out + pos)) + 1;
		int m, c = fuzz_reply_line(out + pos, ll, &m);
		FUZZ_CHECK(c != -1, "malformed reply line at offset %zu: %.*s", pos, (int)ll, out + pos);
		FUZZ_CHECK(!more || c == code, "multi-line reply changes code %d to %d", code, c);
		code = c;
		more = m;
		pos += ll;
	}
	FUZZ_CHECK(!more || truncated, "the last reply line says more follows");
}

/* What the session queued is what the relay will read. */
static void check_queue(void)
{
	char **ids;
	int n;

	if (queue_list_ids(queue, &ids, &n) == -1)
		fuzz_die("queue_list_ids");
	for (int i = 0; i < n; i++) {
		struct envelope env;
		const char *why = "";
		FUZZ_CHECK(queue_read_env(queue, ids[i], &env, &why) == 0, "queued envelope %s unreadable: %s",
			   ids[i], why);
		FUZZ_CHECK(env.nrcpt > 0, "envelope %s without recipients", ids[i]);
		queue_env_free(&env);
	}
	queue_free_ids(ids, n);
}

/* Put in and out on fds 0 and 1, keeping the originals in saved. */
static void std_redirect(int in, int out, int saved[2])
{
	saved[0] = fcntl(0, F_DUPFD_CLOEXEC, 10);
	saved[1] = fcntl(1, F_DUPFD_CLOEXEC, 10);
	if (saved[0] == -1 || saved[1] == -1 || dup2(in, 0) == -1 || dup2(out, 1) == -1)
		fuzz_die("dup2");
}

static void std_restore(const int saved[2])
{
	if (dup2(saved[0], 0) == -1 || dup2(saved[1], 1) == -1)
		fuzz_die("dup2");
	close(saved[0]);
	close(saved[1]);
}

static void run_socket(const uint8_t *data, size_t len)
{
	static char out[OUT_MAX];
	struct client c = { .data = data, .len = len, .out = out };
	struct peer peer;
	pthread_t tid;
	int sv[2], saved[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fuzz_die("socketpair");
	c.fd = sv[1];
	std_redirect(sv[0], sv[0], saved);
	close(sv[0]);
	if (pthread_create(&tid, NULL, client_run, &c) != 0)
		fuzz_die("pthread_create");
	peer_identify(&peer);
	FUZZ_CHECK(peer.kind == PEER_SOCKET && peer.network, "a socketpair is not a network peer");
	fuzz_quiet(1);
	if (session_open(&cfg, &peer) == 0)
		session_run(-1);
	fuzz_quiet(0);
	/* the server's end closes here: the client reads to the end */
	std_restore(saved);
	pthread_join(tid, NULL);
	close(sv[1]);
	check_replies(c.out, c.out_len, c.truncated);
}

static void run_files(const uint8_t *data, size_t len, int ucspi, int loopback)
{
	struct peer peer;
	int saved[2];

	fuzz_reset_fd(in_file);
	fuzz_reset_fd(out_file);
	fuzz_write_all(in_file, data, len);
	if (lseek(in_file, 0, SEEK_SET) == -1)
		fuzz_die("lseek");
	if (ucspi) {
		setenv("TCPREMOTEIP", "192.0.2.1", 1);
		setenv("TCPLOCALIP", loopback ? "127.0.0.1" : "192.0.2.25", 1);
		setenv("TCPREMOTEPORT", "4242", 1);
	}
	std_redirect(in_file, out_file, saved);
	peer_identify(&peer);
	FUZZ_CHECK(peer.kind == (ucspi ? PEER_UCSPI : PEER_TERMINAL), "peer kind %d", peer.kind);
	fuzz_quiet(1);
	if (session_open(&cfg, &peer) == 0)
		session_run(-1);
	fuzz_quiet(0);
	std_restore(saved);
	if (ucspi) {
		unsetenv("TCPREMOTEIP");
		unsetenv("TCPLOCALIP");
		unsetenv("TCPREMOTEPORT");
	}
	size_t olen;
	char *out = fuzz_slurp(out_file, &olen);
	check_replies(out, olen, 0);
	free(out);
}

/* carol's mbox is a directory: her deliveries fail temporarily, so the
 * deferral paths (queued with a local user, or 451 when nothing else was
 * delivered) run too. */
static void make_broken_mailbox(void)
{
	char path[400];

	snprintf(path, sizeof path, "%s/carol", spool);
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		fuzz_die("mkdir carol");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;

	cfg.format = ((mode >> 2) & 3) == 1 ? FORMAT_MAILDIR : ((mode >> 2) & 3) == 2 ? FORMAT_MH : FORMAT_MBOX;
	cfg.relay = mode & 0x10 ? RELAY_NO : RELAY_AUTO;
	cfg.max_recipients = mode & 0x20 ? 2 : 100;
	cfg.max_size = mode & 0x80 ? 1024 : 25 * 1024 * 1024;
	cfg.submission = (mode & 0x50) == 0x50;
	switch (mode & 3) {
	case 0:
	case 1:
		run_socket(data, size);
		break;
	case 2:
		run_files(data, size, 0, 1);
		break;
	default:
		run_files(data, size, 1, !(mode & 0x40));
		break;
	}
	check_queue();
	fuzz_empty_dir(spool);
	fuzz_empty_dir(queue);
	make_broken_mailbox();
	return 0;
}
