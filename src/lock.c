/* lock: dotlock + lockf, stale-lock rules, waits with a deadline (lock.h). */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"
#include "log.h"

#define RECORD_XATTR "user.mailslot.append"
#define LOCK_GONE (-1)	/* clear_stale: the dotlock is gone, link again now (errno values are > 0) */

/* 10 ms growing to 200 ms: quick when a lock is released soon, cheap when not */
void lock_pause(int attempt)
{
	long ms = attempt < 5 ? 10L << attempt : 200;
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

static void on_alarm(int sig)
{
	(void)sig;	/* only there to interrupt a blocking lockf() */
}

int lock_wait(int fd, long long deadline)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	long long left = deadline - clock_ms();
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

static int pid_is_dead(const char *text)
{
	char *end;
	long pid = strtol(text, &end, 10);

	if (end == text || pid <= 0 || (*end && *end != '\n' && *end != ' '))
		return 0;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

/* Remove the stale dotlock that st describes.  Checking a name and then
 * unlinking it removes whatever holds the name by then: another program
 * may have removed the stale lock and made its own, live one in between.
 * So the lock is first renamed aside (RENAME_NOREPLACE), then the file
 * under the new name compared with the one judged stale, and removed only
 * when it is that file; a fresh lock caught this way goes back.
 *
 * One that cannot be removed (a directory, another user's file in a
 * sticky spool) is live for our purposes: it will be waited for until the
 * deadline like any other, where counting it gone made the caller retry
 * at once, for ever, at full speed.  LOCK_GONE, or 0: still there. */
static int remove_stale(struct dotlock *dl, const struct stat *st)
{
	char aside[NAME_MAX + 1];
	struct stat now;

	if (snprintf(aside, sizeof aside, "%s.stale.%ld", dl->name, (long)getpid()) >= (int)sizeof aside)
		snprintf(aside, sizeof aside, ",stale.%ld", (long)getpid());
	/* a lock is a file: anything else of that name is not ours to remove */
	if (!S_ISREG(st->st_mode) ||
	    renameat2(dl->dirfd, dl->name, dl->dirfd, aside, RENAME_NOREPLACE) == -1) {
		if (S_ISREG(st->st_mode) && errno == ENOENT)
			return LOCK_GONE;
		/* once per delivery: the wait may last the whole lock timeout */
		if (!dl->warned)
			log_msg(LOG_WARNING, "cannot remove stale lock %s: %s; waiting for it", dl->path,
				S_ISREG(st->st_mode) ? strerror(errno) : "not a file");
		dl->warned = 1;
		return 0;
	}
	if (fstatat(dl->dirfd, aside, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == st->st_dev &&
	    now.st_ino == st->st_ino) {
		if (unlinkat(dl->dirfd, aside, 0) == 0 || errno == ENOENT) {
			log_msg(LOG_WARNING, "removed stale lock %s", dl->path);
			return LOCK_GONE;
		}
		/* renamed but not removable: put it back, where others expect it */
	}
	/* not the file judged stale: a new lock, put back under its name */
	if (renameat2(dl->dirfd, aside, dl->dirfd, dl->name, RENAME_NOREPLACE) == -1)
		log_msg(LOG_ERR, "cannot put back lock %s (now %s): %s", dl->path, aside, strerror(errno));
	return 0;
}

/* Look at an existing dotlock; remove it when stale.  LOCK_GONE: try again
 * now; 0: held by a live foreign program (or not removable), wait; or an
 * errno value. */
static long long stale_age(const struct dotlock *dl)
{
	return dl->stale_seconds > 0 ? dl->stale_seconds : LOCK_STALE_SECONDS;
}

static int clear_stale(struct dotlock *dl, long long deadline)
{
	char text[128];
	struct stat st, now_st;
	int stale = 0, err;
	int fd = openat(dl->dirfd, dl->name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd == -1) {
		if (errno == ENOENT)
			return LOCK_GONE;
		/* not ours to open: only the age rule applies */
		if (fstatat(dl->dirfd, dl->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    time(NULL) - st.st_mtime > stale_age(dl))
			return remove_stale(dl, &st);
		return 0;
	}
	/* A live mailslot holds lockf on its dotlock until it is done: wait
	 * for that in the kernel rather than polling.  Holding it also
	 * serialises stale-lock removal between waiters. */
	if ((err = lock_wait(fd, deadline)) || fstat(fd, &st) == -1) {
		close(fd);
		return err ? err : errno;
	}
	/* the holder removed it as it finished, or someone made a new one */
	if (fstatat(dl->dirfd, dl->name, &now_st, AT_SYMLINK_NOFOLLOW) == -1 || now_st.st_ino != st.st_ino ||
	    now_st.st_dev != st.st_dev) {
		close(fd);
		return LOCK_GONE;
	}
	ssize_t n = pread(fd, text, sizeof text - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	if (strncmp(text, "mailslot ", 9) == 0) {
		/* we got its lockf, so its holder is gone */
		char rec[LOCK_RECORD_MAX];
		ssize_t rlen = fgetxattr(fd, RECORD_XATTR, rec, sizeof rec - 1);
		stale = 1;
		rec[rlen > 0 ? rlen : 0] = '\0';
		/* the attribute, or the text form "mailslot <pid> <record>" */
		const char *textrec = strchr(text + 9, ' ');
		/* only a dotlock we could have made may be believed: in a
		 * spool others can write to, anyone can leave a "mailslot" lock */
		int ours = S_ISREG(st.st_mode) && st.st_nlink == 1 &&
			   (st.st_uid == dl->owner || st.st_uid == dl->owner_alt);
		if (ours && (rlen > 0 || textrec)) {
			snprintf(dl->record, sizeof dl->record, "%s", rlen > 0 ? rec : textrec + 1);
			dl->record[strcspn(dl->record, "\n")] = '\0';
			dl->have_record = 1;
		}
	} else if (n == 0 && time(NULL) - st.st_mtime < 2) {
		stale = 0;	/* just created by someone who has not written it yet */
	} else if (pid_is_dead(text) || time(NULL) - st.st_mtime > stale_age(dl)) {
		stale = 1;
	}
	err = stale ? remove_stale(dl, &st) : 0;
	close(fd);
	return err;
}

/* The dotlock appears whole or not at all: an unnamed file in the spool
 * directory gets its lockf and its text first, then its name (linkat fails
 * with EEXIST, as O_EXCL does).  A process killed before the link leaves
 * nothing, where an open(O_CREAT | O_EXCL) then write() left an empty lock
 * that no rule could call stale for LOCK_STALE_SECONDS.  The unnamed file is
 * made once and only its link retried: with many deliveries waiting on one
 * mailbox, a new inode per attempt was most of the file system's work. */
static int dotlock_unnamed(int dirfd, const char *text, size_t len)
{
	int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (lockf(fd, F_LOCK, 0) == -1 || fileio_write(fd, text, len, NULL) == -1) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* No unnamed files here (NFS): create, lock and write in place. */
static int dotlock_named(int dirfd, const char *name, const char *text, size_t len)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd == -1)
		return -1;
	if (lockf(fd, F_LOCK, 0) == -1 || fileio_write(fd, text, len, NULL) == -1) {
		int saved = errno;
		unlinkat(dirfd, name, 0);
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int lock_dotlock_take(struct dotlock *dl, long long deadline)
{
	char text[64], proc[64];
	int len = snprintf(text, sizeof text, "mailslot %ld\n", (long)getpid());
	int unnamed = dotlock_unnamed(dl->dirfd, text, (size_t)len);

	if (unnamed == -1 && errno != EOPNOTSUPP && errno != EISDIR)
		return errno;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", unnamed);
	for (int attempt = 0;; attempt++) {
		int fd = unnamed;
		if (unnamed == -1)
			fd = dotlock_named(dl->dirfd, dl->name, text, (size_t)len);
		else if (linkat(AT_FDCWD, proc, dl->dirfd, dl->name, AT_SYMLINK_FOLLOW) == -1)
			fd = -1;
		if (fd != -1) {
			dl->fd = fd;
			return 0;
		}
		int err = errno;
		if (err == EEXIST) {
			err = clear_stale(dl, deadline);
			/* the deadline holds on every pass, whatever clear_stale said */
			if ((err == 0 || err == LOCK_GONE) && clock_ms() >= deadline)
				err = ETIMEDOUT;
			else if (err == LOCK_GONE)
				continue;
		}
		if (err) {
			if (unnamed != -1)
				close(unnamed);
			return err;
		}
		lock_pause(attempt);	/* a live foreign lock */
	}
}

void lock_dotlock_release(struct dotlock *dl)
{
	unlinkat(dl->dirfd, dl->name, 0);
	close(dl->fd);
}

int lock_dotlock_record(struct dotlock *dl, const char *record)
{
	char text[LOCK_RECORD_MAX + 40];

	/* on a journaling file system the attribute is committed ahead of any
	 * later change to another file's size, at no extra sync */
	if (fsetxattr(dl->fd, RECORD_XATTR, record, strlen(record), 0) == 0)
		return 0;
	if (errno != ENOTSUP && errno != EPERM)
		return errno;
	int tlen = snprintf(text, sizeof text, "mailslot %ld %s\n", (long)getpid(), record);
	if (ftruncate(dl->fd, 0) == -1 || fileio_write(dl->fd, text, (size_t)tlen, &(off_t){ 0 }) == -1 ||
	    fdatasync(dl->fd) == -1)
		return errno;
	return 0;
}

/* The folder's lock: lockf on .mh_sequences, created when missing. */
int lock_folder(int dirfd, long long deadline, int *lockfd)
{
	int fd = openat(dirfd, ".mh_sequences", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd == -1)
		return errno;
	int err = lock_wait(fd, deadline);
	if (err) {
		close(fd);
		return err;
	}
	*lockfd = fd;
	return 0;
}
