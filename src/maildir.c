/* maildir: deliver to <spool>/<user>/{tmp,new,cur} (the qmail Maildir rules).
 *
 * Write to tmp/<unique>, fsync, link into new/ and fsync the directory: the
 * message appears whole or not at all, and no lock is needed.  The unique
 * name is <seconds>.M<usec>P<pid>Q<count>.<host>,S=<size> (Dovecot reads
 * S= as the size).  Directories are created 0700 when missing; existing ones
 * must be real directories (not symlinks) owned by the recipient, and are
 * only ever used through the descriptors that checked them (openat,
 * linkat, unlinkat): the recipient may rename them at any moment.  A file
 * in tmp/ older than 36 hours is what a killed delivery left: each delivery
 * removes those it finds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "mailbox.h"

/* '/' and ':' may not appear in the host part of the name */
static void safe_host(char *out, size_t outsz, const char *host)
{
	size_t n = 0;

	for (; *host && n + 5 < outsz; host++) {
		if (*host == '/')
			n += (size_t)snprintf(out + n, outsz - n, "\\057");
		else if (*host == ':')
			n += (size_t)snprintf(out + n, outsz - n, "\\072");
		else
			out[n++] = *host;
	}
	out[n] = '\0';
}

/* fdopendir takes the descriptor it is given: read a duplicate, so that
 * the directory stays the one we checked. */
static void sweep_tmp(int tmpfd, const char *shown)
{
	int fd = dup(tmpfd);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			mailbox_drop_stale(tmpfd, shown, e->d_name);
	closedir(d);
}

/* tmp/, new/ and cur/ under the folder: descriptors, or -errno. */
static int open_subdirs(struct mailbox_job *job, int userfd, const char *dir, int fds[3])
{
	static const char *const names[3] = { "tmp", "new", "cur" };
	char shown[PATH_MAX];

	for (int i = 0; i < 3; i++) {
		snprintf(shown, sizeof shown, "%s/%s", dir, names[i]);
		fds[i] = mailbox_open_dir(job, userfd, names[i], shown);
		if (fds[i] < 0) {
			int err = -fds[i];
			for (int j = 0; j < i; j++)
				close(fds[j]);
			return -err;
		}
	}
	return 0;
}

int maildir_append(struct mailbox_job *job)
{
	static unsigned count;
	char dir[PATH_MAX], shown[PATH_MAX], name[256], host[128];
	struct timeval tv;
	int err = 0, userfd, fds[3] = { -1, -1, -1 };

	if ((userfd = mailbox_open_folder(job, dir, sizeof dir)) < 0)
		return -userfd;
	err = -open_subdirs(job, userfd, dir, fds);
	close(userfd);
	if (err)
		return err;
	int tmpfd = fds[0], newfd = fds[1];
	close(fds[2]);
	snprintf(shown, sizeof shown, "%s/tmp", dir);
	sweep_tmp(tmpfd, shown);
	gettimeofday(&tv, NULL);
	safe_host(host, sizeof host, job->msg->hostname);
	if (snprintf(name, sizeof name, "%lld.M%ldP%ldQ%u.%s,S=%lld", (long long)tv.tv_sec, (long)tv.tv_usec,
		     (long)getpid(), count++, host,
		     (long long)job->prefix_len + (long long)job->msg->size) >= (int)sizeof name)
		err = ENAMETOOLONG;
	else if ((err = mailbox_new_file(job, tmpfd, name)) == 0) {
		if (linkat(tmpfd, name, newfd, name, 0) == -1)
			err = errno;
		unlinkat(tmpfd, name, 0);
		if (err == 0 && fsync(newfd) == -1) {
			err = errno;
			unlinkat(newfd, name, 0);
		}
	}
	close(tmpfd);
	close(newfd);
	return err;
}
