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
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fdpass.h"
#include "fileio.h"
#include "log.h"
#include "tlsshare.h"

#define EX_USAGE 64
#define EX_OSERR 71
#define SD_LISTEN_FDS_START 3
#define SOCKETS_MAX 16
#define SPARE_FILES 6
#define SPARE_NICE 19	/* while it starts: the running sessions come first */

extern char **environ;

/* A running session: its process and where it came from (IPv4 as
 * v4-mapped IPv6, so that both families compare as 16 octets). */
struct slot {
	pid_t pid;
	int has_source;
	unsigned char source[16];
};

/* The session started ahead of its connection (listen.h), and the files
 * it read as stat saw them then: a change to any of them retires it. */
struct spare {
	pid_t pid;		/* 0: none */
	int channel;		/* the connection goes down it */
	struct stat files[SPARE_FILES];
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
	const struct listen_program *prog;
	const struct listen_fork *fork_hooks;	/* fork sessions instead of exec (TLS) */
	sigset_t session_sigmask;
	struct spare spare;
	char **spare_env;		/* environ and LISTEN_SPARE_ENV */
	int devnull;
	int renice;			/* root: a spare starts at SPARE_NICE, is raised at its client */
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
static void refuse(int conn, const char *line)
{
	(void)send(conn, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int is_spare;	/* this process: a spare the acceptor started */

/* A forked session starts as an exec'd one would: in and out on standard
 * input and output (the connection, or a spare's channel and /dev/null),
 * none of the acceptor's descriptors, signals unblocked, and no trace of
 * the other clients. */
static pid_t fork_session(struct acceptor *a, int in, int out, int spare)
{
	pid_t pid;

	tls_shared_refresh(a->fork_hooks->tls);
	(void)fflush(NULL);
	if ((pid = fork()) != 0)
		return pid;
	if (spare)
		(void)setpgid(0, 0);
	if (dup2(in, 0) == -1 || dup2(out, 1) == -1)
		_exit(EX_OSERR);
	for (int i = 0; i < a->nsockets; i++)
		if (a->sockets[i] > 1)
			close(a->sockets[i]);
	if (in > 1)
		close(in);
	if (a->spare.channel >= 0)
		close(a->spare.channel);
	close(a->devnull);
	close(a->sigfd);
	close(a->self_fd);
	memset(a->slots, 0, (size_t)a->cfg->max_connections * sizeof *a->slots);
	sigprocmask(SIG_SETMASK, &a->session_sigmask, NULL);
	is_spare = spare;
	exit(a->fork_hooks->serve(a->session_argc, a->session_argv));
}

static pid_t start_session(struct acceptor *a, int in, int out, int spare)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t pid = -1;
	int rc;

	if (a->fork_hooks)
		return fork_session(a, in, out, spare);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	if (posix_spawnattr_init(&attr) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawnattr_setsigmask(&attr, &a->session_sigmask);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, (short)(POSIX_SPAWN_SETSIGMASK | (spare ? POSIX_SPAWN_SETPGROUP : 0)));
	rc = posix_spawn(&pid, a->self, &fa, &attr, a->session_argv, spare ? a->spare_env : environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return pid;
}

/* What a session reads when it starts: the config file, the users,
 * aliases and password files, the certificate and key. */
static void snapshot(const struct config *cfg, struct stat files[SPARE_FILES])
{
	const char *paths[SPARE_FILES] = { cfg->config_file, cfg->users_file, cfg->aliases_file,
					   cfg->passwd, cfg->tls_cert, cfg->tls_key };

	memset(files, 0, SPARE_FILES * sizeof *files);
	for (int i = 0; i < SPARE_FILES; i++)
		if (paths[i])
			(void)stat(paths[i], &files[i]);
}

static int same_files(const struct stat *a, const struct stat *b)
{
	for (int i = 0; i < SPARE_FILES; i++)
		if (!fileio_same_file(&a[i], &b[i]))
			return 0;
	return 1;
}

/* The next connection's session, started now, while nobody waits for it. */
static void spare_start(struct acceptor *a)
{
	int sv[2];

	if (!a->prog->spares || a->spare.pid > 0 || a->stopping ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return;
	snapshot(a->cfg, a->spare.files);
	a->spare.channel = sv[0];
	pid_t pid = start_session(a, sv[1], a->devnull, 1);
	close(sv[1]);
	if (pid == -1) {
		close(sv[0]);
		a->spare.channel = -1;
		return;		/* the next connection starts its own */
	}
	a->spare.pid = pid;
	/* its own process group (its session child joins it): niced as one
	 * now, raised as one when its client comes */
	(void)setpgid(pid, pid);
	if (a->renice)
		(void)setpriority(PRIO_PGRP, (id_t)pid, SPARE_NICE);
}

/* The acceptor lets go of its spare: one without its connection yet
 * then exits at once, quietly. */
static void spare_retire(struct acceptor *a)
{
	if (a->spare.pid <= 0)
		return;
	close(a->spare.channel);
	a->spare.channel = -1;
	a->spare.pid = 0;
}

/* conn to the spare: its process id, or -1 (none, out of date, or gone). */
static pid_t spare_handoff(struct acceptor *a, int conn)
{
	struct stat now[SPARE_FILES];
	const char octet = 'c';

	if (a->spare.pid <= 0)
		return -1;
	snapshot(a->cfg, now);
	if (!same_files(now, a->spare.files) || fdpass_send(a->spare.channel, &octet, 1, conn) == -1) {
		spare_retire(a);
		return -1;
	}
	pid_t pid = a->spare.pid;
	if (a->renice)
		(void)setpriority(PRIO_PGRP, (id_t)pid, 0);
	spare_retire(a);
	return pid;
}

int listen_is_spare(void)
{
	static int checked;
	const char *v;

	if (!checked && (v = getenv(LISTEN_SPARE_ENV))) {
		char *end;
		is_spare = strtol(v, &end, 10) == (long)getppid() && *end == '\0';
		unsetenv(LISTEN_SPARE_ENV);
	}
	checked = 1;
	return is_spare;
}

void listen_spare_pass_on(void)
{
	char pid[24];

	if (!is_spare)
		return;
	snprintf(pid, sizeof pid, "%ld", (long)getppid());
	(void)setenv(LISTEN_SPARE_ENV, pid, 1);
}

int listen_spare_take(void)
{
	static int taken;
	char octet = 0;
	int conn;

	if (!is_spare || taken)
		return 0;
	if (fdpass_recv(0, &octet, 1, &conn) == -1 || conn == -1)
		return -1;
	taken = 1;
	if (dup2(conn, 0) == -1 || dup2(conn, 1) == -1) {
		close(conn);
		return -1;
	}
	close(conn);
	return 0;
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
		refuse(conn, a->prog->busy_line);
		close(conn);
		return;
	}
	pid_t pid = spare_handoff(a, conn);
	if (pid == -1)
		pid = start_session(a, conn, conn, 0);
	if (pid == -1) {
		log_msg(LOG_ERR, "cannot start a session for %s: %s", addr, strerror(errno));
		refuse(conn, a->prog->failed_line);
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
	spare_start(a);
}

static void reap(struct acceptor *a)
{
	pid_t pid;
	int ws;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		int was_spare = pid == a->spare.pid;
		if (was_spare)	/* gone before its connection came */
			spare_retire(a);
		for (long long i = 0; i < a->cfg->max_connections; i++) {
			if (a->slots[i].pid == pid) {
				a->slots[i].pid = 0;
				a->running--;
				break;
			}
		}
		/* a session logs its own failures; a signal it could not */
		if (WIFSIGNALED(ws))
			log_msg(LOG_ERR, "%s %ld killed by signal %d (%s)", was_spare ? "spare session" : "session",
				(long)pid, WTERMSIG(ws), strsignal(WTERMSIG(ws)));
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
			spare_retire(a);
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

/* environ and LISTEN_SPARE_ENV=our pid, for an exec'd spare. */
static char **spare_environment(void)
{
	static char mark[sizeof LISTEN_SPARE_ENV + 24];
	size_t n = 0;

	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof *env);
	if (!env)
		return NULL;
	memcpy(env, environ, n * sizeof *env);
	snprintf(mark, sizeof mark, "%s=%ld", LISTEN_SPARE_ENV, (long)getpid());
	env[n] = mark;
	return env;
}

static int prepare(struct acceptor *a, const struct config *cfg, int argc, char **argv,
		   const struct listen_program *prog)
{
	memset(a, 0, sizeof *a);
	a->cfg = cfg;
	a->prog = prog;
	a->fork_hooks = prog->fork_hooks;
	a->spare.channel = -1;
	take_sockets(a);
	if (a->nsockets == 0) {
		fprintf(stderr, "%s: --listen: no listening socket (none passed by systemd, "
				"and standard input is not one)\n", prog->name);
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
	a->renice = geteuid() == 0;
	a->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (a->devnull == -1 || !(a->spare_env = spare_environment())) {
		log_msg(LOG_ERR, "--listen: cannot prepare spare sessions: %s", strerror(errno));
		return EX_OSERR;
	}
	a->idle_since = clock_ms();
	return 0;
}

int listen_run(const struct config *cfg, int argc, char **argv, const struct listen_program *prog)
{
	static struct acceptor a;
	sigset_t mask;
	int rc;

	if ((rc = prepare(&a, cfg, argc, argv, prog)) != 0)
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
		log_msg(LOG_ERR, "configuration error: %s (each session refuses its client until it is fixed)",
			config_error);
	log_msg(LOG_INFO, "accepting on %d socket%s, at most %lld sessions, %lld from one address",
		a.nsockets, a.nsockets == 1 ? "" : "s", cfg->max_connections, cfg->max_per_source);
	spare_start(&a);
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
