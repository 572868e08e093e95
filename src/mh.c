/* mh: deliver to <spool>/<user>/N, numbered files in arrival order, each
 * with an N.status sidecar holding its IMAP-style flags (\Recent on arrival).
 *
 * .mh_sequences in the user's directory is the lock file (lockf), as
 * Python's mailbox.MH and nmh use it, so simultaneous arrivals get distinct
 * numbers.  The message is written to a temporary name, fsynced, and linked
 * to its number: it appears whole or not at all.  The status file is put in
 * place first, so a message never appears without its flags; an orphan
 * status file left by a crash only makes the next number one higher.  The
 * temporary files of a killed delivery (",mailslot.*": a comma hides a file
 * from MH) are removed by a later delivery once they are 36 hours old.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver.h"

/* Highest N among "N" and "N.status" entries; stale temporaries go on the way. */
static int highest_number(const char *dir, unsigned long *max)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return errno;
	*max = 0;
	while ((e = readdir(d))) {
		char *end;
		if (strncmp(e->d_name, ",mailslot.", 10) == 0)
			deliver_drop_stale(dirfd(d), dir, e->d_name);
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		unsigned long n = strtoul(e->d_name, &end, 10);
		if ((*end == '\0' || strcmp(end, ".status") == 0) && n > *max)
			*max = n;
	}
	closedir(d);
	return 0;
}

static int write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	int err = 0;

	if (fd == -1)
		return errno;
	if (deliver_write(fd, data, len, NULL) == -1 || fsync(fd) == -1)
		err = errno;
	close(fd);
	return err;
}

static int lock_folder(const char *dir, long long deadline, int *lockfd)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof path, "%s/.mh_sequences", dir);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return errno;
	int err = deliver_lock_wait(fd, deadline);
	if (err) {
		close(fd);
		return err;
	}
	*lockfd = fd;
	return 0;
}

static int place(const char *dir, const char *tmp, const char *status_tmp)
{
	char num[PATH_MAX], status[PATH_MAX];
	unsigned long n = 0;
	int err;

	if ((err = highest_number(dir, &n)))
		return err;
	for (int tries = 0; tries < 100; tries++) {
		n++;
		snprintf(num, sizeof num, "%s/%lu", dir, n);
		snprintf(status, sizeof status, "%s/%lu.status", dir, n);
		if (rename(status_tmp, status) == -1)
			return errno;
		if (link(tmp, num) == 0)
			return 0;
		err = errno;
		if (err != EEXIST) {
			unlink(status);
			return err;
		}
		/* a writer that ignores the lock took n: move the flags on */
		if (rename(status, status_tmp) == -1)
			return errno;
	}
	return EEXIST;
}

int mh_deliver(struct mailbox_job *job)
{
	char dir[PATH_MAX], tmp[PATH_MAX], status_tmp[PATH_MAX];
	long long deadline = deliver_now_ms() + job->lock_timeout * 1000;
	int err, lockfd = -1;

	if (snprintf(dir, sizeof dir, "%s/%s", job->spool, job->user) >= (int)sizeof dir)
		return ENAMETOOLONG;
	if ((err = deliver_ensure_dir(job, dir)))
		return err;
	snprintf(tmp, sizeof tmp, "%s/,mailslot.%s.%ld", dir, job->msg->qid, (long)getpid());
	snprintf(status_tmp, sizeof status_tmp, "%s.status", tmp);
	if ((err = deliver_new_file(job, tmp, O_TRUNC)))
		return err;
	if ((err = write_file(status_tmp, "\\Recent\n", 8)) == 0 &&
	    (err = lock_folder(dir, deadline, &lockfd)) == 0) {
		err = place(dir, tmp, status_tmp);
		if (err == 0) {
			int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd == -1 || fsync(dfd) == -1)
				err = errno;
			if (dfd != -1)
				close(dfd);
		}
		close(lockfd);
	}
	unlink(tmp);
	unlink(status_tmp);
	return err;
}
