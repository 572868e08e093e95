/* numbered: deliver to <spool>/<user>/N, numbered files in arrival order,
 * each with an N.status sidecar holding its IMAP-style flags (\Recent on
 * arrival).  This is the layout of the original assignment, kept as a
 * format of its own: MH readers (nmh, mutt) do not know the sidecars, so
 * --format mh (mh.c) is plain MH instead.
 *
 * .mh_sequences in the user's directory is the lock file (lockf), as
 * Python's mailbox.MH and nmh use it, so simultaneous arrivals get distinct
 * numbers.  The message is written to a temporary name, fsynced, and linked
 * to its number: it appears whole or not at all.  The status file is put in
 * place first, so a message never appears without its flags; an orphan
 * status file left by a crash only makes the next number one higher.  The
 * temporary files of a killed delivery (",mailslot.*": a comma hides a file
 * from MH) are removed by a later delivery once they are 36 hours old.
 * The folder is used only through one descriptor, opened without following
 * a symlink and checked to be the recipient's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"
#include "lock.h"
#include "mailbox.h"

static int write_file(int dirfd, const char *name, const char *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int err = 0;

	if (fd == -1)
		return errno;
	if (fileio_write(fd, data, len, NULL) == -1 || fsync(fd) == -1)
		err = errno;
	close(fd);
	return err;
}

static int place(int dirfd, const char *shown, const char *tmp, const char *status_tmp)
{
	char num[32], status[48];
	unsigned long n = 0;
	int err;

	if ((err = mailbox_highest_number(dirfd, shown, ".status", &n)))
		return err;
	for (int tries = 0; tries < 100; tries++) {
		n++;
		snprintf(num, sizeof num, "%lu", n);
		snprintf(status, sizeof status, "%lu.status", n);
		if (renameat(dirfd, status_tmp, dirfd, status) == -1)
			return errno;
		if (linkat(dirfd, tmp, dirfd, num, 0) == 0)
			return 0;
		err = errno;
		if (err != EEXIST) {
			unlinkat(dirfd, status, 0);
			return err;
		}
		/* a writer that ignores the lock took n: move the flags on */
		if (renameat(dirfd, status, dirfd, status_tmp) == -1)
			return errno;
	}
	return EEXIST;
}

int numbered_append(struct mailbox_job *job)
{
	char dir[PATH_MAX], tmp[NAME_MAX + 1], status_tmp[NAME_MAX + 1];
	long long deadline = clock_ms() + job->lock_timeout * 1000;
	int err, lockfd = -1, dirfd;

	if ((dirfd = mailbox_open_folder(job, dir, sizeof dir)) < 0)
		return -dirfd;
	/* room for the ".status" of its sidecar */
	if ((err = mailbox_new_temp(job, dirfd, tmp, sizeof tmp, 7))) {
		close(dirfd);
		return err;
	}
	snprintf(status_tmp, sizeof status_tmp, "%s.status", tmp);
	if ((err = write_file(dirfd, status_tmp, "\\Recent\n", 8)) == 0 &&
	    (err = lock_folder(dirfd, deadline, &lockfd)) == 0) {
		err = place(dirfd, dir, tmp, status_tmp);
		if (err == 0 && fsync(dirfd) == -1)
			err = errno;
		close(lockfd);
	}
	unlinkat(dirfd, tmp, 0);
	unlinkat(dirfd, status_tmp, 0);
	close(dirfd);
	return err;
}
