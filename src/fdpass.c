/* fdpass: whole records with an optional SCM_RIGHTS descriptor (fdpass.h). */
#include "fdpass.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

int fdpass_send_fds(int sock, const void *msg, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > FDPASS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		memset(&ctl, 0, sizeof ctl);
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	return n == (ssize_t)len ? 0 : -1;
}

int fdpass_send(int sock, const void *msg, size_t len, int fd)
{
	return fdpass_send_fds(sock, msg, len, &fd, fd >= 0 ? 1 : 0);
}

int fdpass_recv_fds(int sock, void *msg, size_t len, int *fds, size_t max, size_t *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof ctl.buf };
	ssize_t n;
	size_t got = 0;

	*nfds = 0;
	while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR)
		;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n > 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t j = 0; j < k; j++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof fd);
			if (got < max)
				fds[got++] = fd;
			else
				close(fd);	/* more than asked for: not kept */
		}
	}
	if (n != (ssize_t)len || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		while (got > 0)
			close(fds[--got]);
		return -1;
	}
	*nfds = got;
	return 0;
}

int fdpass_recv(int sock, void *msg, size_t len, int *fd)
{
	size_t n;

	*fd = -1;
	return fdpass_recv_fds(sock, msg, len, fd, 1, &n);
}

int fdpass_request(int sock, void *req, size_t len)
{
	for (;;) {
		ssize_t n = recv(sock, req, len, MSG_TRUNC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || n == -1)
			return 0;
		return n == (ssize_t)len ? 1 : -1;
	}
}

void fdpass_malformed(pid_t child)
{
	log_msg(LOG_ERR, "session process %ld sent a malformed request: connection ended", (long)child);
	kill(child, SIGKILL);
}

void fdpass_reap(pid_t child)
{
	int ws;

	while (waitpid(child, &ws, 0) == -1)
		if (errno != EINTR)
			return;
	if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM)
		log_msg(LOG_NOTICE, "session process %ld ended: it lasted --max-session-time", (long)child);
	else if (WIFSIGNALED(ws))
		log_msg(LOG_ERR, "session process %ld killed by signal %d (%s)%s", (long)child, WTERMSIG(ws),
			strsignal(WTERMSIG(ws)),
			WTERMSIG(ws) == SIGSYS ? ": a system call outside its allow-list" : "");
	else if (WIFEXITED(ws) && WEXITSTATUS(ws) != 0)
		log_msg(LOG_ERR, "session process %ld exited with status %d", (long)child, WEXITSTATUS(ws));
}

/* The monitor keeps no copy of the client's connection: the session's
 * close must be the connection's end. */
void fdpass_leave_connection(void)
{
	struct stat st;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null == -1)
		return;
	dup2(null, 0);
	dup2(null, 1);
	if (fstat(2, &st) == 0 && S_ISSOCK(st.st_mode))
		dup2(null, 2);
	if (null > 2)
		close(null);
}
