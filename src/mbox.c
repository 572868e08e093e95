/* mbox: append to <spool>/<user> in mboxrd format, so that failure leaves the
 * mailbox as it was.
 *
 * Locking, in this fixed order: the dotlock <mailbox>.lock (created with
 * O_EXCL), then lockf(3) on the mailbox, the pair that Dovecot, mutt and
 * Postfix's local(8) respect on Linux.  Our own dotlock also carries a lockf
 * lock while its holder lives, so a mailslot dotlock whose lockf can be taken
 * is stale for certain; a foreign dotlock is stale when its pid is dead or it
 * is older than STALE_LOCK_SECONDS.
 *
 * Before appending, the dotlock records where the append starts and ends,
 * "<inode> <start> <end>": if the process dies half-way, the next delivery
 * finds that stale lock, and cuts the mailbox back to <start> when it
 * stopped between the two (and the bytes at <start> are still our "From "
 * line).  The record is an extended attribute (user.mailslot.append) of the
 * dotlock: a journaling file system commits it ahead of any change to the
 * mailbox's size, so no append can reach the disk without it, at no extra
 * sync (an fdatasync of the record cost twice the append's own fsync).  On
 * a file system without user attributes the dotlock's text becomes
 * "mailslot <pid> <inode> <start> <end>", made durable with fdatasync.
 * Errors truncate back at once.  The mailbox must be a regular file with one link,
 * owned by the recipient, and no symlink is ever followed: the mailbox and
 * its dotlock are looked up in one descriptor of the spool directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "log.h"

#define STALE_LOCK_SECONDS 500	/* Postfix's stale_lock_time */
#define MARKER_XATTR "user.mailslot.append"
#define LOCK_GONE (-1)	/* clear_stale: the dotlock is gone, link again now (errno values are > 0) */
#define MBOX_HEADER_MAX (ADDR_MAILBOX_MAX * 3 + 160)

struct dotlock {
	int fd;
	int dirfd;		/* the spool: every name is looked up in it */
	char name[NAME_MAX + 1];	/* <user>.lock */
	char path[PATH_MAX];	/* the same, for the log */
	int have_marker;	/* a dead delivery's marker was found */
	int warned;		/* "cannot remove" logged once per delivery */
	uid_t owner, owner_alt;	/* who our own dotlocks belong to */
	unsigned long long ino;
	long long start, end;
};

/* mboxrd: ">" in front of every line matching ^>*From .  Lines are at most
 * DATA_LINE_MAX+1 octets (the DATA reader refuses longer ones), so a line
 * split by the buffer end is carried to the next read. */
static int copy_quoted(int msgfd, off_t size, int fd, off_t *offset)
{
	char in[65536], out[65536 + 65536 / 6 + 16];
	size_t carry = 0;
	off_t in_off = 0;
	int mid_line = 0;	/* the last piece written ended without LF */

	for (;;) {
		size_t want = sizeof in - carry;
		if ((off_t)want > size - in_off)
			want = (size_t)(size - in_off);
		ssize_t r = want ? pread(msgfd, in + carry, want, in_off) : 0;
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		in_off += r;
		size_t have = carry + (size_t)r, pos = 0, o = 0;
		/* at the end, or with a full buffer holding no line end, take all */
		int at_end = in_off >= size;
		while (pos < have) {
			char *lf = memchr(in + pos, '\n', have - pos);
			if (!lf && !at_end && !(pos == 0 && have == sizeof in))
				break;
			size_t len = lf ? (size_t)(lf - (in + pos)) + 1 : have - pos;
			size_t k = 0;
			while (k < len && in[pos + k] == '>')
				k++;
			if (!mid_line && len - k >= 5 && memcmp(in + pos + k, "From ", 5) == 0)
				out[o++] = '>';
			mid_line = lf == NULL;
			memcpy(out + o, in + pos, len);
			o += len;
			pos += len;
		}
		if (deliver_write(fd, out, o, offset) == -1)
			return -1;
		carry = have - pos;
		memmove(in, in + pos, carry);
		if (in_off >= size && carry == 0)
			return 0;
	}
}

unsigned mbox_count_from_lines(int fd, off_t size)
{
	char buf[65536];
	char head[6];		/* the first octets of the current line after any '>' */
	size_t have = 0;
	int in_quote = 1;	/* still inside the leading '>' run */
	unsigned count = 0;
	off_t off = 0;

	while (off < size) {
		ssize_t n = pread(fd, buf, sizeof buf, off);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			char c = buf[i];
			if (c == '\n') {
				have = 0;
				in_quote = 1;
				continue;
			}
			if (in_quote && c == '>')
				continue;
			in_quote = 0;
			if (have < 5) {
				head[have++] = c;
				if (have == 5 && memcmp(head, "From ", 5) == 0)
					count++;
			}
		}
		off += n;
	}
	return count;
}

static int pid_is_dead(const char *text)
{
	char *end;
	long pid = strtol(text, &end, 10);

	if (end == text || pid <= 0 || (*end && *end != '\n' && *end != ' '))
		return 0;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

/* "<inode> <start> <end>", every number checked. */
static int parse_record(const char *s, struct dotlock *dl)
{
	long long v[3];
	char *end;

	for (int i = 0; i < 3; i++) {
		while (*s == ' ')
			s++;
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		v[i] = strtoll(s, &end, 10);
		if (errno || end == s)
			return -1;
		s = end;
	}
	if (*s && *s != '\n')
		return -1;
	dl->ino = (unsigned long long)v[0];
	dl->start = v[1];
	dl->end = v[2];
	return 0;
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
		    time(NULL) - st.st_mtime > STALE_LOCK_SECONDS)
			return remove_stale(dl, &st);
		return 0;
	}
	/* A live mailslot holds lockf on its dotlock until it is done: wait
	 * for that in the kernel rather than polling.  Holding it also
	 * serialises stale-lock removal between waiters. */
	if ((err = deliver_lock_wait(fd, deadline)) || fstat(fd, &st) == -1) {
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
		char rec[96];
		ssize_t rlen = fgetxattr(fd, MARKER_XATTR, rec, sizeof rec - 1);
		stale = 1;
		rec[rlen > 0 ? rlen : 0] = '\0';
		/* the attribute, or the text form "mailslot <pid> <record>" */
		const char *textrec = strchr(text + 9, ' ');
		/* only a dotlock we could have made may cut the mailbox: in a
		 * spool others can write to, anyone can leave a "mailslot" lock */
		int ours = S_ISREG(st.st_mode) && st.st_nlink == 1 &&
			   (st.st_uid == dl->owner || st.st_uid == dl->owner_alt);
		if (ours && ((rlen > 0 && parse_record(rec, dl) == 0) ||
			     (textrec && parse_record(textrec + 1, dl) == 0)))
			dl->have_marker = 1;
	} else if (n == 0 && time(NULL) - st.st_mtime < 2) {
		stale = 0;	/* just created by someone who has not written it yet */
	} else if (pid_is_dead(text) || time(NULL) - st.st_mtime > STALE_LOCK_SECONDS) {
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
 * that no rule could call stale for STALE_LOCK_SECONDS.  The unnamed file is
 * made once and only its link retried: with many deliveries waiting on one
 * mailbox, a new inode per attempt was most of the file system's work. */
static int dotlock_unnamed(int dirfd, const char *text, size_t len)
{
	int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (lockf(fd, F_LOCK, 0) == -1 || deliver_write(fd, text, len, NULL) == -1) {
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
	if (lockf(fd, F_LOCK, 0) == -1 || deliver_write(fd, text, len, NULL) == -1) {
		int saved = errno;
		unlinkat(dirfd, name, 0);
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int dotlock_take(struct dotlock *dl, long long deadline)
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
			if ((err == 0 || err == LOCK_GONE) && deliver_now_ms() >= deadline)
				err = ETIMEDOUT;
			else if (err == LOCK_GONE)
				continue;
		}
		if (err) {
			if (unnamed != -1)
				close(unnamed);
			return err;
		}
		deliver_pause(attempt);	/* a live foreign lock */
	}
}

static void dotlock_release(struct dotlock *dl)
{
	unlinkat(dl->dirfd, dl->name, 0);
	close(dl->fd);
}

static int mailbox_open(struct mailbox_job *job, int dirfd, const char *path)
{
	struct stat lst, st;
	int fd;

	if (fstatat(dirfd, job->user, &lst, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno != ENOENT)
			return -1;
		return openat(dirfd, job->user, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	fd = openat(dirfd, job->user, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || st.st_dev != lst.st_dev || st.st_ino != lst.st_ino ||
	    !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (st.st_uid != job->owner && st.st_uid != job->owner_alt)) {
		snprintf(job->why, job->why_len, "%s is not a regular file with one link owned by uid %u",
			 path, (unsigned)job->owner);
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* Cut off what a killed delivery left, if the marker still describes this file. */
static void repair(const struct dotlock *dl, int fd, const char *path)
{
	struct stat st;
	char head[5];

	if (!dl->have_marker || fstat(fd, &st) == -1 || (unsigned long long)st.st_ino != dl->ino)
		return;
	if (st.st_size <= dl->start || st.st_size >= dl->end)
		return;
	if (pread(fd, head, 5, dl->start) != 5 || memcmp(head, "From ", 5) != 0)
		return;
	if (ftruncate(fd, dl->start) == 0 && fsync(fd) == 0)
		log_msg(LOG_WARNING, "%s: removed %lld bytes of an interrupted delivery",
			path, (long long)(st.st_size - dl->start));
}

/* From_ line (with a blank line first when the mailbox does not end in one)
 * and the Return-Path:/Delivered-To: block. */
static size_t build_header(struct mailbox_job *job, int fd, off_t size, char *out, size_t outsz)
{
	char tail[2] = { '\n', '\n' }, date[64], sender[ADDR_MAILBOX_MAX + 1];
	const char *pad = "";
	struct tm tm;
	time_t t = job->msg->arrived;

	if (size >= 2 && pread(fd, tail, 2, size - 2) == 2 && !(tail[0] == '\n' && tail[1] == '\n'))
		pad = tail[1] == '\n' ? "\n" : "\n\n";
	else if (size == 1)
		pad = "\n";
	localtime_r(&t, &tm);
	strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
	/* the From_ line is split at spaces by readers: keep the sender one word */
	snprintf(sender, sizeof sender, "%s", job->msg->sender[0] ? job->msg->sender : "MAILER-DAEMON");
	for (char *p = sender; *p; p++)
		if (*p == ' ' || *p == '\t')
			*p = '_';
	int n = snprintf(out, outsz, "%sFrom %s %s\n%.*s", pad, sender, date, (int)job->prefix_len, job->prefix);
	return n < 0 ? 0 : (size_t)n < outsz ? (size_t)n : outsz - 1;
}

static int append(struct mailbox_job *job, struct dotlock *dl, int fd)
{
	char header[MBOX_HEADER_MAX], marker[128];
	struct stat st;

	if (fstat(fd, &st) == -1)
		return errno;
	off_t start = st.st_size, pos = start;
	size_t hlen = build_header(job, fd, start, header, sizeof header);
	/* counted here, not taken from the caller: the record must be exact,
	 * and what we write is quoted by the copy itself whatever any count
	 * said (the count of DATA comes from the network-facing process) */
	off_t end = start + (off_t)hlen + job->msg->size + mbox_count_from_lines(job->msg->msgfd, job->msg->size) + 1;
	int mlen = snprintf(marker, sizeof marker, "%llu %lld %lld", (unsigned long long)st.st_ino,
			    (long long)start, (long long)end);

	/* the record must be durable no later than the first byte of the append */
	if (fsetxattr(dl->fd, MARKER_XATTR, marker, (size_t)mlen, 0) == -1) {
		if (errno != ENOTSUP && errno != EPERM)
			return errno;
		char text[160];
		int tlen = snprintf(text, sizeof text, "mailslot %ld %s\n", (long)getpid(), marker);
		if (ftruncate(dl->fd, 0) == -1 || deliver_write(dl->fd, text, (size_t)tlen, &(off_t){ 0 }) == -1 ||
		    fdatasync(dl->fd) == -1)
			return errno;
	}
	if (deliver_write(fd, header, hlen, &pos) == -1 || copy_quoted(job->msg->msgfd, job->msg->size, fd, &pos) == -1 ||
	    deliver_write(fd, "\n", 1, &pos) == -1 || fsync(fd) == -1)
		goto undo;
	if (pos != end) {
		errno = EIO;
		goto undo;
	}
	return 0;
undo:;
	int saved = errno;
	if (ftruncate(fd, start) == -1 || fsync(fd) == -1)
		log_msg(LOG_ERR, "cannot truncate mailbox back to %lld: %s", (long long)start, strerror(errno));
	return saved;
}

/* The dotlock, then the mailbox and its lockf, all looked up in dl->dirfd. */
static int locked_deliver(struct mailbox_job *job, struct dotlock *dl, const char *path, long long deadline)
{
	int err, fd;

	if ((err = dotlock_take(dl, deadline))) {
		if (err != ETIMEDOUT)
			snprintf(job->why, job->why_len, "cannot create %s: %s", dl->path, strerror(err));
		return err;
	}
	fd = mailbox_open(job, dl->dirfd, path);
	if (fd == -1) {
		err = errno;
		if (!job->why[0])
			snprintf(job->why, job->why_len, "cannot open %s: %s", path, strerror(err));
		dotlock_release(dl);
		return err;
	}
	if ((err = deliver_lock_wait(fd, deadline)) == 0) {
		repair(dl, fd, path);
		err = append(job, dl, fd);
	}
	close(fd);
	dotlock_release(dl);
	return err;
}

int mbox_deliver(struct mailbox_job *job)
{
	char path[PATH_MAX];
	struct dotlock dl = { .fd = -1, .owner = job->owner, .owner_alt = job->owner_alt };
	long long deadline = deliver_now_ms() + job->lock_timeout * 1000;
	int err;

	if (snprintf(path, sizeof path, "%s/%s", job->spool, job->user) >= (int)sizeof path ||
	    snprintf(dl.path, sizeof dl.path, "%s.lock", path) >= (int)sizeof dl.path ||
	    snprintf(dl.name, sizeof dl.name, "%s.lock", job->user) >= (int)sizeof dl.name)
		return ENAMETOOLONG;
	if ((dl.dirfd = deliver_open_spool(job)) < 0)
		return -dl.dirfd;
	err = locked_deliver(job, &dl, path, deadline);
	close(dl.dirfd);
	return err;
}
