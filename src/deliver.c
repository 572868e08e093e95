/* deliver: identity switch, header block, format dispatch, errno to SMTP code. */
#include "deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "privs.h"

long long deliver_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 10 ms growing to 200 ms: quick when a lock is released soon, cheap when not */
void deliver_pause(int attempt)
{
	long ms = attempt < 5 ? 10L << attempt : 200;
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* No delivery in progress is 36 hours old, so the age alone makes the file
 * safe to remove, whoever left it. */
void deliver_drop_stale(int dirfd, const char *dir, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    time(NULL) - st.st_mtime > DELIVER_STALE_TEMP_SECONDS && unlinkat(dirfd, name, 0) == 0)
		log_msg(LOG_NOTICE, "removed %s/%s, left by an interrupted delivery", dir, name);
}

static void on_alarm(int sig)
{
	(void)sig;	/* only there to interrupt a blocking lockf() */
}

int deliver_lock_wait(int fd, long long deadline)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	long long left = deadline - deliver_now_ms();
	int rc, saved;

	if (lockf(fd, F_TLOCK, 0) == 0)
		return 0;
	if (errno != EACCES && errno != EAGAIN)
		return errno;
	if (left <= 0)
		return ETIMEDOUT;
	/* block in the kernel, woken the moment the holder lets go; a timer
	 * interrupts the wait at the deadline (no SA_RESTART) */
	struct itimerval it = { .it_value = { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 } };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	setitimer(ITIMER_REAL, &it, NULL);
	rc = lockf(fd, F_LOCK, 0);
	saved = errno;
	setitimer(ITIMER_REAL, &(struct itimerval){ 0 }, NULL);
	sigaction(SIGALRM, &old, NULL);
	if (rc == 0)
		return 0;
	return saved == EINTR ? ETIMEDOUT : saved;
}

int deliver_write(int fd, const char *buf, size_t len, off_t *offset)
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
			if (deliver_write(fd, buf, (size_t)r, offset) == -1)
				return -1;
			in_off += r;
		}
	}
	return 0;
}

/* The count is the mbox module's: it owns mboxrd quoting. */
unsigned deliver_count_from_lines(int fd, off_t size)
{
	return mbox_count_from_lines(fd, size);
}

int deliver_copy(const struct delivery *d, int fd, off_t *offset)
{
	return copy_plain(d->msgfd, d->size, fd, offset);
}

int deliver_new_file(struct mailbox_job *job, int dirfd, const char *name)
{
	off_t pos = 0;
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd == -1)
		return errno;
	if (deliver_write(fd, job->prefix, job->prefix_len, &pos) == -1 ||
	    deliver_copy(job->msg, fd, &pos) == -1 || fsync(fd) == -1) {
		int err = errno;
		close(fd);
		unlinkat(dirfd, name, 0);
		return err;
	}
	return close(fd) == -1 ? errno : 0;
}

int deliver_open_spool(struct mailbox_job *job)
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
int deliver_open_dir(struct mailbox_job *job, int parentfd, const char *name, const char *shown)
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

static void fill_failure(struct deliver_result *res, int err, const char *why)
{
	res->status = DELIVER_TEMP;
	snprintf(res->detail, sizeof res->detail, "%s", why);
	switch (err) {
	case ETIMEDOUT:
		res->code = 451;
		res->enhanced = "4.2.0";
		snprintf(res->text, sizeof res->text, "Mailbox busy (locked), try again later");
		break;
	case ENOSPC:
		res->code = 452;
		res->enhanced = "4.3.1";
		snprintf(res->text, sizeof res->text, "Insufficient system storage");
		break;
	case EDQUOT:
		res->code = 452;
		res->enhanced = "4.2.2";
		snprintf(res->text, sizeof res->text, "Mailbox full");
		break;
	default:
		res->code = 451;
		res->enhanced = "4.3.0";
		/* the reason names paths: it goes to the log and the queue, not the client */
		snprintf(res->text, sizeof res->text, "Local delivery failed, try again later");
		break;
	}
}

void deliver_local(const struct config *cfg, const struct delivery *d, const struct target *t,
		   struct deliver_result *res)
{
	char prefix[2 * ADDR_MAILBOX_MAX + 64], why[160] = "";
	struct mailbox_job job = {
		.spool = cfg->spool, .user = t->user, .msg = d, .prefix = prefix,
		.lock_timeout = cfg->lock_timeout, .why = why, .why_len = sizeof why,
	};
	int switched = 0, err;

	/* RFC 5321 4.4: Return-Path: is added at final delivery */
	int n = snprintf(prefix, sizeof prefix, "Return-Path: <%s>\nDelivered-To: %s\n", d->sender, t->address);
	job.prefix_len = (size_t)n < sizeof prefix ? (size_t)n : sizeof prefix - 1;
	/* a mailbox belongs to its recipient, or to the account that delivers */
	job.owner = geteuid();
	job.owner_alt = t->has_ids ? t->uid : job.owner;
	if (t->has_ids && privs_can_switch()) {
		if (privs_become(t->uid, t->gid) == -1) {
			privs_restore();
			fill_failure(res, EPERM, "cannot take the recipient's identity");
			return;
		}
		switched = 1;
		job.owner = t->uid;
	}
	switch (cfg->format) {
	case FORMAT_MAILDIR:
		err = maildir_deliver(&job);
		break;
	case FORMAT_MH:
		err = mh_deliver(&job);
		break;
	case FORMAT_NUMBERED:
		err = numbered_deliver(&job);
		break;
	default:
		err = mbox_deliver(&job);
		break;
	}
	if (switched)
		privs_restore();
	if (err == 0) {
		res->status = DELIVER_OK;
		res->code = 250;
		res->enhanced = "2.0.0";
		snprintf(res->text, sizeof res->text, "delivered");
		return;
	}
	if (!why[0] && err == ETIMEDOUT)
		snprintf(why, sizeof why, "the mailbox lock was still held after %lld s", cfg->lock_timeout);
	else if (!why[0])
		snprintf(why, sizeof why, "%s", strerror(err));
	log_msg(LOG_WARNING, "%s: delivery to %s (%s) failed: %s", d->qid, t->address, t->user, why);
	fill_failure(res, err, why);
}
