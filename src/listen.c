/* listen: the --listen acceptor: sockets from systemd, limits, one session process per connection. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define EX_USAGE 64
#define EX_OSERR 71
#define SD_LISTEN_FDS_START 3
#define SOCKETS_MAX 16

extern char **environ;

/* A running session: its process and where it came from (IPv4 as
 * v4-mapped IPv6, so that both families compare as 16 octets). */
struct slot {
	pid_t pid;
	int has_source;
	unsigned char source[16];
};

struct acceptor {
	const struct config *cfg;
	int sockets[SOCKETS_MAX];
	int nsockets;
	struct slot *slots;		/* cfg->max_connections of them */
	long long running;
	char self[32];			/* /proc/self/fd/N: this program, opened at start */
	int self_fd;
	int sigfd;
	char **session_argv;		/* ours without --listen */
	int session_argc;
	const struct listen_fork *fork_hooks;	/* fork sessions instead of exec (TLS) */
	sigset_t session_sigmask;
	int stopping;
	long long idle_since;		/* ms, when the last session ended */
};

static int is_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof on;

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

/* The sockets systemd passed (sd_listen_fds(3)'s protocol), else a
 * listening socket on standard input. */
static void take_sockets(struct acceptor *a)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;

	a->nsockets = 0;
	if (pid && fds && strtol(pid, &end, 10) == (long)getpid() && *end == '\0') {
		long n = strtol(fds, &end, 10);
		for (long i = 0; *end == '\0' && i < n && a->nsockets < SOCKETS_MAX; i++)
			if (is_listening(SD_LISTEN_FDS_START + (int)i))
				a->sockets[a->nsockets++] = SD_LISTEN_FDS_START + (int)i;
	} else if (is_listening(0)) {
		a->sockets[a->nsockets++] = 0;
	}
	/* the sessions must not take them for theirs */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (int i = 0; i < a->nsockets; i++) {
		fcntl(a->sockets[i], F_SETFD, FD_CLOEXEC);
		/* a client gone between poll and accept must not block us */
		fcntl(a->sockets[i], F_SETFL, fcntl(a->sockets[i], F_GETFL) | O_NONBLOCK);
	}
}

static int source_of(const struct sockaddr_storage *ss, unsigned char key[16])
{
	if (ss->ss_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		return 1;
	}
	if (ss->ss_family == AF_INET) {
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return 1;
	}
	return 0;	/* a Unix socket: no address to count by */
}

static void source_text(const unsigned char key[16], char *out, size_t outsz)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (memcmp(key, mapped, sizeof mapped) == 0)
		inet_ntop(AF_INET, key + 12, out, (socklen_t)outsz);
	else
		inet_ntop(AF_INET6, key, out, (socklen_t)outsz);
}

static long long sessions_from(const struct acceptor *a, const unsigned char key[16])
{
	long long n = 0;

	for (long long i = 0; i < a->cfg->max_connections; i++)
		if (a->slots[i].pid > 0 && a->slots[i].has_source && memcmp(a->slots[i].source, key, 16) == 0)
			n++;
	return n;
}

/* Best effort, never blocking: the client is being turned away. */
static void say_421(int conn, const struct config *cfg, const char *why)
{
	char line[300];
	int n = snprintf(line, sizeof line, "421 4.7.0 %s %s\r\n", cfg->hostname, why);

	if (n > 0 && (size_t)n < sizeof line)
		(void)send(conn, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* A forked session starts as an exec'd one would: the connection on
 * standard input and output, none of the acceptor's descriptors, signals
 * unblocked, and no trace of the other clients. */
static pid_t fork_session(struct acceptor *a, int conn)
{
	pid_t pid;

	a->fork_hooks->refresh();
	(void)fflush(NULL);
	if ((pid = fork()) != 0)
		return pid;
	if (dup2(conn, 0) == -1 || dup2(conn, 1) == -1)
		_exit(EX_OSERR);
	for (int i = 0; i < a->nsockets; i++)
		if (a->sockets[i] > 1)
			close(a->sockets[i]);
	if (conn > 1)
		close(conn);
	close(a->sigfd);
	close(a->self_fd);
	memset(a->slots, 0, (size_t)a->cfg->max_connections * sizeof *a->slots);
	sigprocmask(SIG_SETMASK, &a->session_sigmask, NULL);
	exit(a->fork_hooks->serve(a->session_argc, a->session_argv));
}

static pid_t start_session(struct acceptor *a, int conn)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t pid = -1;
	int rc;

	if (a->fork_hooks)
		return fork_session(a, conn);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	if (posix_spawnattr_init(&attr) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_adddup2(&fa, conn, 0);
	posix_spawn_file_actions_adddup2(&fa, conn, 1);
	posix_spawnattr_setsigmask(&attr, &a->session_sigmask);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(&pid, a->self, &fa, &attr, a->session_argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return pid;
}

static void accept_one(struct acceptor *a, int sock)
{
	const struct config *cfg = a->cfg;
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof ss;
	unsigned char key[16] = { 0 };
	char addr[INET6_ADDRSTRLEN] = "local";
	int conn = accept4(sock, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);

	if (conn == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_msg(LOG_ERR, "cannot accept a connection: %s", strerror(errno));
			/* the connection stays in the backlog: do not spin on it */
			nanosleep(&(struct timespec){ 0, 100000000L }, NULL);
		}
		return;
	}
	int has_source = source_of(&ss, key);
	if (has_source)
		source_text(key, addr, sizeof addr);
	if (has_source && sessions_from(a, key) >= cfg->max_per_source) {
		log_msg(LOG_WARNING, "connection from %s refused: %lld sessions from that address already "
				     "(--max-connections-per-source)", addr, cfg->max_per_source);
		say_421(conn, cfg, "Error: too many connections from your address");
		close(conn);
		return;
	}
	pid_t pid = start_session(a, conn);
	if (pid == -1) {
		log_msg(LOG_ERR, "cannot start a session for %s: %s", addr, strerror(errno));
		say_421(conn, cfg, "Service not available, closing transmission channel");
		close(conn);
		return;
	}
	close(conn);
	for (long long i = 0; i < cfg->max_connections; i++) {
		if (a->slots[i].pid <= 0) {
			a->slots[i] = (struct slot){ .pid = pid, .has_source = has_source };
			memcpy(a->slots[i].source, key, sizeof key);
			break;
		}
	}
	if (++a->running == cfg->max_connections)
		log_msg(LOG_WARNING, "%lld sessions running (--max-connections): new ones wait", a->running);
}

static void reap(struct acceptor *a)
{
	pid_t pid;
	int ws;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		for (long long i = 0; i < a->cfg->max_connections; i++) {
			if (a->slots[i].pid == pid) {
				a->slots[i].pid = 0;
				a->running--;
				break;
			}
		}
		/* a session logs its own failures; a signal it could not */
		if (WIFSIGNALED(ws))
			log_msg(LOG_ERR, "session %ld killed by signal %d (%s)", (long)pid, WTERMSIG(ws),
				strsignal(WTERMSIG(ws)));
	}
	if (a->running == 0)
		a->idle_since = clock_ms();
}

static void read_signals(struct acceptor *a, int sigfd)
{
	struct signalfd_siginfo si;

	while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD) {
			reap(a);
		} else if (!a->stopping) {
			a->stopping = 1;
			log_msg(LOG_INFO, "signal %u: accepting no more connections; %lld sessions to finish",
				si.ssi_signo, a->running);
		}
	}
}

/* Our command line without --listen, for the sessions. */
static char **session_args(int argc, char **argv, int *count)
{
	char **out = calloc((size_t)argc + 1, sizeof *out);
	int n = 0;

	if (!out)
		return NULL;
	for (int i = 0; i < argc; i++)
		if (i == 0 || strcmp(argv[i], "--listen") != 0)
			out[n++] = argv[i];
	out[n] = NULL;
	*count = n;
	return out;
}

static int prepare(struct acceptor *a, const struct config *cfg, int argc, char **argv,
		   const struct listen_fork *fork_hooks)
{
	memset(a, 0, sizeof *a);
	a->cfg = cfg;
	a->fork_hooks = fork_hooks;
	take_sockets(a);
	if (a->nsockets == 0) {
		fprintf(stderr, "mailslot-smtpd: --listen: no listening socket (none passed by systemd, "
				"and standard input is not one)\n");
		return EX_USAGE;
	}
	int self = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (self == -1) {
		log_msg(LOG_ERR, "--listen: cannot open /proc/self/exe to start sessions: %s", strerror(errno));
		return EX_OSERR;
	}
	snprintf(a->self, sizeof a->self, "/proc/self/fd/%d", self);
	a->self_fd = self;
	a->slots = calloc((size_t)cfg->max_connections, sizeof *a->slots);
	a->session_argv = session_args(argc, argv, &a->session_argc);
	if (!a->slots || !a->session_argv) {
		log_msg(LOG_ERR, "--listen: out of memory");
		return EX_OSERR;
	}
	a->idle_since = clock_ms();
	return 0;
}

int listen_run(const struct config *cfg, int argc, char **argv, const struct listen_fork *fork_hooks)
{
	static struct acceptor a;
	sigset_t mask;
	int rc;

	if ((rc = prepare(&a, cfg, argc, argv, fork_hooks)) != 0)
		return rc;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &a.session_sigmask) == -1)
		return EX_OSERR;
	int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a.sigfd = sigfd;
	if (sigfd == -1) {
		log_msg(LOG_ERR, "--listen: signalfd: %s", strerror(errno));
		return EX_OSERR;
	}
	if (cfg->config_broken)
		log_msg(LOG_ERR, "configuration error: %s (each session answers 421 until it is fixed)",
			config_error);
	log_msg(LOG_INFO, "accepting on %d socket%s, at most %lld sessions, %lld from one address",
		a.nsockets, a.nsockets == 1 ? "" : "s", cfg->max_connections, cfg->max_per_source);
	while (!(a.stopping && a.running == 0)) {
		struct pollfd p[SOCKETS_MAX + 1] = { { .fd = sigfd, .events = POLLIN } };
		int np = 1, timeout = -1;

		if (!a.stopping && a.running < cfg->max_connections)
			for (int i = 0; i < a.nsockets; i++)
				p[np++] = (struct pollfd){ .fd = a.sockets[i], .events = POLLIN };
		if (!a.stopping && a.running == 0 && cfg->listen_idle > 0) {
			long long left = a.idle_since + cfg->listen_idle * 1000 - clock_ms();
			if (left <= 0)
				break;
			timeout = (int)left;
		}
		if (poll(p, (nfds_t)np, timeout) == -1 && errno != EINTR) {
			log_msg(LOG_ERR, "--listen: poll: %s", strerror(errno));
			return EX_OSERR;
		}
		if (p[0].revents & POLLIN)
			read_signals(&a, sigfd);
		for (int i = 1; i < np; i++)
			if (p[i].revents & POLLIN)
				accept_one(&a, p[i].fd);
	}
	if (log_verbose())
		log_msg(LOG_DEBUG, "acceptor exits: %s", a.stopping ? "told to stop" : "idle");
	return 0;
}
