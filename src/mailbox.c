/* mailbox: the shared file helpers of the formats, and the dispatch (mailbox.h). */
#include "mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* No delivery in progress is 36 hours old, so the age alone makes the file
 * safe to remove, whoever left it. */
void mailbox_drop_stale(int dirfd, const char *dir, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    time(NULL) - st.st_mtime > MAILBOX_STALE_TEMP_SECONDS && unlinkat(dirfd, name, 0) == 0)
		log_msg(LOG_NOTICE, "removed %s/%s, left by an interrupted delivery", dir, name);
}

int mailbox_write(int fd, const char *buf, size_t len, off_t *offset)
{
	while (len > 0) {
		ssize_t n = offset ? pwrite(fd, buf, len, *offset) : write(fd, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		if (offset)
			*offset += n;
	}
	return 0;
}

/* The spool file lives elsewhere; the kernel copies it in one call where
 * it can (copy_file_range), without passing the bytes through us. */
static int copy_plain(int msgfd, off_t size, int fd, off_t *offset)
{
	off_t in_off = 0;
	char buf[65536];

	while (in_off < size) {
		size_t want = (size_t)(size - in_off);
		ssize_t n = offset ? copy_file_range(msgfd, &in_off, fd, offset, want, 0) : -1;
		if (n > 0)
			continue;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		if (offset && errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP && errno != EBADF)
			return -1;
		/* fall back to read and write for the rest */
		while (in_off < size) {
			size_t chunk = (size_t)(size - in_off) < sizeof buf ? (size_t)(size - in_off) : sizeof buf;
			ssize_t r = pread(msgfd, buf, chunk, in_off);
			if (r <= 0) {
				if (r == -1 && errno == EINTR)
					continue;
				if (r == 0)
					errno = EIO;
				return -1;
			}
			if (mailbox_write(fd, buf, (size_t)r, offset) == -1)
				return -1;
			in_off += r;
		}
	}
	return 0;
}

int mailbox_copy(const struct mailbox_msg *m, int fd, off_t *offset)
{
	return copy_plain(m->fd, m->size, fd, offset);
}

int mailbox_new_file(struct mailbox_job *job, int dirfd, const char *name)
{
	off_t pos = 0;
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd == -1)
		return errno;
	if (mailbox_write(fd, job->prefix, job->prefix_len, &pos) == -1 ||
	    mailbox_copy(job->msg, fd, &pos) == -1 || fsync(fd) == -1) {
		int err = errno;
		close(fd);
		unlinkat(dirfd, name, 0);
		return err;
	}
	return close(fd) == -1 ? errno : 0;
}

int mailbox_open_spool(struct mailbox_job *job)
{
	/* the spool itself is the administrator's: its path may hold symlinks */
	int fd = open(job->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1) {
		int err = errno;
		snprintf(job->why, job->why_len, "cannot open %s: %s", job->spool, strerror(err));
		return -err;
	}
	return fd;
}

/* Everything below the spool is the recipient's to rename at will, so it
 * is only ever reached through a descriptor of the directory above it and
 * never through a symlink: a name swapped for a symlink between our checks
 * and our use (renameat2 RENAME_EXCHANGE in a loop) cannot redirect a
 * create, a link or an unlink into a directory the user cannot reach. */
int mailbox_open_dir(struct mailbox_job *job, int parentfd, const char *name, const char *shown)
{
	struct stat st;
	int fd;

	if (mkdirat(parentfd, name, 0700) == -1 && errno != EEXIST)
		return -errno;
	fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		int err = errno;
		if (err == ELOOP || err == ENOTDIR) {
			snprintf(job->why, job->why_len, "%s is not a directory owned by uid %u", shown,
				 (unsigned)job->owner);
			return -EPERM;
		}
		return -err;
	}
	if (fstat(fd, &st) == -1) {
		int err = errno;
		close(fd);
		return -err;
	}
	if (st.st_uid != job->owner && st.st_uid != job->owner_alt) {
		close(fd);
		snprintf(job->why, job->why_len, "%s is not a directory owned by uid %u", shown,
			 (unsigned)job->owner);
		return -EPERM;
	}
	return fd;
}

int mailbox_append(enum mail_format format, struct mailbox_job *job)
{
	switch (format) {
	case FORMAT_MAILDIR:
		return maildir_append(job);
	case FORMAT_MH:
		return mh_append(job);
	case FORMAT_NUMBERED:
		return numbered_append(job);
	case FORMAT_MBOX:
		break;
	}
	return mbox_append(job);
}
