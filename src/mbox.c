/* mbox: append to <spool>/<user> in mboxrd format, so that failure leaves the
 * mailbox as it was; and own mboxrd's quoting and its From_ count.
 *
 * Locking is lock.c's: the dotlock <mailbox>.lock, then lockf(3) on the
 * mailbox, the pair that Dovecot, mutt and Postfix's local(8) respect on
 * Linux, with its stale-lock rules.  Every line of the message matching
 * ^>*From  gets one more '>' as it is copied, whatever the caller thought
 * the message held.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "lock.h"
#include "log.h"
#include "mailbox.h"

#define MBOX_HEADER_MAX (ADDR_MAILBOX_MAX * 3 + 160)

/* What a killed append left: "<inode> <start> <end>", from its dotlock. */
struct marker {
	unsigned long long ino;
	long long start, end;
};

/* mboxrd: ">" in front of every line matching ^>*From .  Lines are at most
 * DATA_LINE_MAX+1 octets (the DATA reader refuses longer ones), so a line
 * split by the buffer end is carried to the next read; a longer one is
 * copied in pieces, and only its first piece can be quoted. */
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
		if (mailbox_write(fd, out, o, offset) == -1)
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

/* "<inode> <start> <end>", every number checked. */
static int parse_record(const char *s, struct marker *mk)
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
	mk->ino = (unsigned long long)v[0];
	mk->start = v[1];
	mk->end = v[2];
	return 0;
}

static int open_mailbox(struct mailbox_job *job, int dirfd, const char *path)
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
	struct marker mk;
	struct stat st;
	char head[5];

	if (!dl->have_record || parse_record(dl->record, &mk) == -1)
		return;
	if (fstat(fd, &st) == -1 || (unsigned long long)st.st_ino != mk.ino)
		return;
	if (st.st_size <= mk.start || st.st_size >= mk.end)
		return;
	if (pread(fd, head, 5, mk.start) != 5 || memcmp(head, "From ", 5) != 0)
		return;
	if (ftruncate(fd, mk.start) == 0 && fsync(fd) == 0)
		log_msg(LOG_WARNING, "%s: removed %lld bytes of an interrupted delivery",
			path, (long long)(st.st_size - mk.start));
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
	char header[MBOX_HEADER_MAX], marker[LOCK_RECORD_MAX];
	struct stat st;

	if (fstat(fd, &st) == -1)
		return errno;
	off_t start = st.st_size, pos = start;
	size_t hlen = build_header(job, fd, start, header, sizeof header);
	/* counted here, not taken from the caller: the record must be exact,
	 * and what we write is quoted by the copy itself whatever any count
	 * said (the count of DATA comes from the network-facing process) */
	off_t end = start + (off_t)hlen + job->msg->size + mbox_count_from_lines(job->msg->fd, job->msg->size) + 1;
	snprintf(marker, sizeof marker, "%llu %lld %lld", (unsigned long long)st.st_ino, (long long)start,
		 (long long)end);

	/* the record must be durable no later than the first byte of the append */
	int err = lock_dotlock_record(dl, marker);
	if (err)
		return err;
	if (mailbox_write(fd, header, hlen, &pos) == -1 || copy_quoted(job->msg->fd, job->msg->size, fd, &pos) == -1 ||
	    mailbox_write(fd, "\n", 1, &pos) == -1 || fsync(fd) == -1)
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

	if ((err = lock_dotlock_take(dl, deadline))) {
		if (err != ETIMEDOUT)
			snprintf(job->why, job->why_len, "cannot create %s: %s", dl->path, strerror(err));
		return err;
	}
	fd = open_mailbox(job, dl->dirfd, path);
	if (fd == -1) {
		err = errno;
		if (!job->why[0])
			snprintf(job->why, job->why_len, "cannot open %s: %s", path, strerror(err));
		lock_dotlock_release(dl);
		return err;
	}
	if ((err = lock_wait(fd, deadline)) == 0) {
		repair(dl, fd, path);
		err = append(job, dl, fd);
	}
	close(fd);
	lock_dotlock_release(dl);
	return err;
}

int mbox_append(struct mailbox_job *job)
{
	char path[PATH_MAX];
	struct dotlock dl = { .fd = -1, .owner = job->owner, .owner_alt = job->owner_alt };
	long long deadline = lock_now_ms() + job->lock_timeout * 1000;
	int err;

	if (snprintf(path, sizeof path, "%s/%s", job->spool, job->user) >= (int)sizeof path ||
	    snprintf(dl.path, sizeof dl.path, "%s.lock", path) >= (int)sizeof dl.path ||
	    snprintf(dl.name, sizeof dl.name, "%s.lock", job->user) >= (int)sizeof dl.name)
		return ENAMETOOLONG;
	if ((dl.dirfd = mailbox_open_spool(job)) < 0)
		return -dl.dirfd;
	err = locked_deliver(job, &dl, path, deadline);
	close(dl.dirfd);
	return err;
}
