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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "fileio.h"
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
		if (fileio_write(fd, out, o, offset) == -1)
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
	if (fileio_write(fd, header, hlen, &pos) == -1 || copy_quoted(job->msg->fd, job->msg->size, fd, &pos) == -1 ||
	    fileio_write(fd, "\n", 1, &pos) == -1 || fsync(fd) == -1)
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
	struct dotlock dl = { .fd = -1, .owner = job->owner, .owner_alt = job->owner_alt,
			      .stale_seconds = job->stale_lock_time };
	long long deadline = clock_ms() + job->lock_timeout * 1000;
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

/* --- reading ---------------------------------------------------------------- */

int mbox_unquote(int fd, off_t start, off_t len, mailbox_sink sink, void *ctx, off_t *written, off_t *lines)
{
	char in[65536], out[65536];
	size_t carry = 0;
	off_t in_off = 0;
	int mid_line = 0;	/* the last piece ended without LF */

	*written = *lines = 0;
	for (;;) {
		size_t want = sizeof in - carry;
		if ((off_t)want > len - in_off)
			want = (size_t)(len - in_off);
		ssize_t r = want ? pread(fd, in + carry, want, start + in_off) : 0;
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0 && want)
			return EIO;	/* the mailbox shrank under its lock */
		in_off += r;
		size_t have = carry + (size_t)r, pos = 0, o = 0;
		int at_end = in_off >= len;
		while (pos < have) {
			char *lf = memchr(in + pos, '\n', have - pos);
			if (!lf && !at_end && !(pos == 0 && have == sizeof in))
				break;
			size_t l = lf ? (size_t)(lf - (in + pos)) + 1 : have - pos, k = 0;
			while (k < l && in[pos + k] == '>')
				k++;
			/* the inverse of copy_quoted: one '>' less on ^>+From  */
			size_t skip = !mid_line && k >= 1 && l - k >= 5 && memcmp(in + pos + k, "From ", 5) == 0;
			if (sink)	/* listing only counts */
				memcpy(out + o, in + pos + skip, l - skip);
			o += l - skip;
			*lines += lf != NULL;
			mid_line = lf == NULL;
			pos += l;
		}
		*written += (off_t)o;
		if (sink) {
			int rc = sink(ctx, out, o);
			if (rc)
				return rc < 0 ? errno : 0;
		}
		carry = have - pos;
		memmove(in, in + pos, carry);
		if (in_off >= len && carry == 0)
			return 0;
	}
}

static int to_fd(void *ctx, const char *buf, size_t len)
{
	return fileio_write(*(const int *)ctx, buf, len, NULL);
}

int mbox_unquote_copy(int fd, off_t start, off_t len, int outfd, off_t *written, off_t *lines)
{
	return mbox_unquote(fd, start, len, outfd == -1 ? NULL : to_fd, &outfd, written, lines);
}

/* A message ends at the next From_ line (or the end of the file); the
 * empty line that separates it from the next belongs to the mailbox. */
static int end_message(struct mailbox *mb, off_t from, off_t start, off_t end)
{
	struct mailbox_entry *e;
	char tail[2];
	off_t len = end > start ? end - start : 0;
	int err;

	if (len >= 2 && pread(mb->fd, tail, 2, end - 2) == 2 && tail[0] == '\n' && tail[1] == '\n')
		len--;
	else if (len == 1 && pread(mb->fd, tail, 1, start) == 1 && tail[0] == '\n')
		len = 0;
	if (!(e = mailbox_add_entry(mb)))
		return errno;
	e->from = from;
	e->start = start;
	e->len = len;
	e->end = end;
	if ((err = mbox_unquote_copy(mb->fd, start, len, -1, &e->size, &e->lines)))
		return err;
	/* the From_ line (its date to the second) and the header block name a
	 * message well; identical copies are told apart below */
	char head[4096];
	ssize_t n = pread(mb->fd, head, (size_t)(end - from) < sizeof head ? (size_t)(end - from) : sizeof head, from);
	uint64_t h = mailbox_hash(head, n > 0 ? (size_t)n : 0, 0xcbf29ce484222325ULL);
	snprintf(e->uid, sizeof e->uid, "m%016llx", (unsigned long long)h);
	return 0;
}

static int by_uid(const void *a, const void *b, void *arg)
{
	const struct mailbox_entry *e = arg, *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];
	int c = strcmp(x->uid, y->uid);

	return c ? c : x->from < y->from ? -1 : 1;
}

/* Uids must be unique: the second and later of identical ones get "-N". */
static int unique_uids(struct mailbox *mb)
{
	size_t *idx;

	if (mb->count < 2)
		return 0;
	if (!(idx = calloc(mb->count, sizeof *idx)))
		return errno;
	for (size_t i = 0; i < mb->count; i++)
		idx[i] = i;
	qsort_r(idx, mb->count, sizeof *idx, by_uid, mb->entry);
	for (size_t i = 1, first = 0; i < mb->count; i++) {
		struct mailbox_entry *e = &mb->entry[idx[i]];
		if (strcmp(e->uid, mb->entry[idx[first]].uid) == 0)
			snprintf(e->uid + strlen(e->uid), sizeof e->uid - strlen(e->uid), "-%zu", i - first);
		else
			first = i;
	}
	free(idx);
	return 0;
}

/* At most 5 octets at off: does a From_ line start there? */
static int from_at(int fd, const char *buf, size_t i, size_t n, off_t off)
{
	char five[5];

	if (i + 5 <= n)
		return memcmp(buf + i, "From ", 5) == 0;
	return pread(fd, five, 5, off) == 5 && memcmp(five, "From ", 5) == 0;
}

/* The list, made under the dotlock and lockf; the reader's flock on the
 * mailbox, taken without waiting, tells a second POP3 session (EBUSY). */
static int locked_scan(struct mailbox *mb)
{
	struct dotlock *dl = &mb->dl;
	long long deadline = clock_ms() + mb->lock_timeout * 1000;
	struct stat st;
	char buf[65536], path[PATH_MAX];
	int err;

	dl->dirfd = mb->dirfd;
	dl->owner = dl->owner_alt = mb->owner;
	if (snprintf(path, sizeof path, "%s/%s", mb->path, mb->user) >= (int)sizeof path ||
	    snprintf(dl->name, sizeof dl->name, "%s.lock", mb->user) >= (int)sizeof dl->name)
		return ENAMETOOLONG;
	snprintf(dl->path, sizeof dl->path, "%s.lock", path);
	if ((err = lock_dotlock_take(dl, deadline))) {
		dl->fd = -1;
		return err;
	}
	mb->fd = openat(mb->dirfd, mb->user, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (mb->fd == -1)
		return errno == ENOENT ? 0 : errno;	/* no mailbox yet: empty */
	if (fstat(mb->fd, &st) == -1)
		return errno;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != mb->owner)
		return EPERM;
	if (flock(mb->fd, LOCK_EX | LOCK_NB) == -1)
		return errno == EWOULDBLOCK ? EBUSY : errno;
	if ((err = lock_wait(mb->fd, deadline)))
		return err;
	repair(dl, mb->fd, path);	/* what a killed delivery left */
	if (fstat(mb->fd, &st) == -1)
		return errno;

	off_t cur = 0, from = -1, start = -1;
	int line_start = 1;
	while (cur < st.st_size) {
		size_t want = (size_t)(st.st_size - cur) < sizeof buf ? (size_t)(st.st_size - cur) : sizeof buf;
		ssize_t n = pread(mb->fd, buf, want, cur);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return n == 0 ? EIO : errno;
		}
		for (size_t i = 0; i < (size_t)n; i++) {
			if (line_start && from_at(mb->fd, buf, i, (size_t)n, cur + (off_t)i)) {
				if (from >= 0 && (err = end_message(mb, from, start, cur + (off_t)i)))
					return err;
				from = cur + (off_t)i;
				start = -1;
			}
			line_start = buf[i] == '\n';
			if (line_start && from >= 0 && start < 0)
				start = cur + (off_t)i + 1;
		}
		cur += n;
	}
	if (from >= 0 && (err = end_message(mb, from, start < 0 ? st.st_size : start, st.st_size)))
		return err;
	mb->dev = st.st_dev;
	mb->ino = st.st_ino;
	mb->scanned = st.st_size;
	return unique_uids(mb);
}

/* Deliveries must not wait for a POP3 session: the locks are held while
 * the list is made and again in mbox_apply, not in between (Dovecot does
 * the same).  What arrives meanwhile is appended after mb->scanned, which
 * the reader never reads and mbox_apply keeps. */
int mbox_scan(struct mailbox *mb)
{
	int err = locked_scan(mb);

	if (mb->fd != -1)
		lockf(mb->fd, F_ULOCK, 0);
	if (mb->dl.fd != -1) {
		lock_dotlock_release(&mb->dl);
		mb->dl.fd = -1;
	}
	return err;
}


int mbox_read(struct mailbox *mb, const struct mailbox_entry *e, int outfd)
{
	off_t size, lines;
	int err = mbox_unquote_copy(mb->fd, e->start, e->len, outfd, &size, &lines);

	return err ? err : size != e->size ? EIO : 0;
}

/* Raw octets [from, end) of the mailbox to fd. */
static int copy_range(int in, off_t from, off_t end, int out)
{
	char buf[65536];

	while (from < end) {
		size_t want = (size_t)(end - from) < sizeof buf ? (size_t)(end - from) : sizeof buf;
		ssize_t n = pread(in, buf, want, from);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return n == 0 ? EIO : errno;
		}
		if (fileio_write(out, buf, (size_t)n, NULL) == -1)
			return errno;
		from += n;
	}
	return 0;
}

/* Whether the mailbox at fd (size octets, locked) still holds, from its
 * start, what the list was made from: the same file, no shorter, each
 * listed message's From_ line and header block where it was, and only
 * whole messages after (a delivery's blank line, then a From_ line).
 * Another program (a mail reader) may have rewritten it in between. */
static int unchanged(const struct mailbox *mb, int fd, const struct stat *st)
{
	char head[4096];

	if (st->st_dev != mb->dev || st->st_ino != mb->ino || st->st_size < mb->scanned)
		return 0;
	for (size_t i = 0; i < mb->count; i++) {
		const struct mailbox_entry *e = &mb->entry[i];
		size_t want = (size_t)(e->end - e->from) < sizeof head ? (size_t)(e->end - e->from) : sizeof head;
		char uid[MAILBOX_UID_MAX];
		if (pread(fd, head, want, e->from) != (ssize_t)want)
			return 0;
		snprintf(uid, sizeof uid, "m%016llx",
			 (unsigned long long)mailbox_hash(head, want, 0xcbf29ce484222325ULL));
		if (strncmp(uid, e->uid, strlen(uid)) != 0)
			return 0;
	}
	if (st->st_size > mb->scanned) {
		char tail[7];
		ssize_t n = pread(fd, tail, sizeof tail, mb->scanned);
		size_t skip = 0;
		while (skip < 2 && n > (ssize_t)skip && tail[skip] == '\n')
			skip++;
		if (n < (ssize_t)(skip + 5) || memcmp(tail + skip, "From ", 5) != 0)
			return 0;
	}
	return 1;
}

/* The kept messages, then whatever arrived since the list was made, go
 * to a new file, fsynced, renamed over the mailbox while we hold its
 * dotlock and lockf (every writer takes the dotlock first, so none is
 * left writing to the old file): the mailbox is whole before or after.
 * A crash leaves at most the hidden ",user.rewrite" beside it, which the
 * next rewrite replaces. */
static int rewrite(struct mailbox *mb, int fd, const struct stat *st)
{
	char tmp[NAME_MAX + 1];
	int out, err = 0;

	/* a leading comma: no user's mailbox has that name.  One name for
	 * every rewrite: only the dotlock's holder writes it, so one that
	 * exists is what a killed rewrite left, and goes */
	if (snprintf(tmp, sizeof tmp, ",%s.rewrite", mb->user) >= (int)sizeof tmp)
		return ENAMETOOLONG;
	out = openat(mb->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out == -1 && errno == EEXIST && unlinkat(mb->dirfd, tmp, 0) == 0)
		out = openat(mb->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out == -1)
		return errno;
	for (size_t i = 0; i < mb->count && !err; i++)
		if (!mb->entry[i].deleted)
			err = copy_range(fd, mb->entry[i].from, mb->entry[i].end, out);
	if (!err)
		err = copy_range(fd, mb->scanned, st->st_size, out);
	/* the mode the administrator gave it (0660 for a mail group) */
	if (!err && fchmod(out, st->st_mode & 07777) == -1)
		err = errno;
	if (!err && fsync(out) == -1)
		err = errno;
	if (!err && renameat(mb->dirfd, tmp, mb->dirfd, mb->user) == -1)
		err = errno;
	if (err)
		unlinkat(mb->dirfd, tmp, 0);
	else if (fsync(mb->dirfd) == -1)
		err = errno;
	close(out);
	return err;
}

int mbox_apply(struct mailbox *mb)
{
	struct dotlock *dl = &mb->dl;
	long long deadline = clock_ms() + mb->lock_timeout * 1000;
	char path[PATH_MAX];
	struct stat st;
	size_t deleted = 0;
	int fd, err;

	for (size_t i = 0; i < mb->count; i++)
		deleted += mb->entry[i].deleted != 0;
	if (!deleted || mb->fd == -1)
		return 0;
	snprintf(path, sizeof path, "%s/%s", mb->path, mb->user);
	if ((err = lock_dotlock_take(dl, deadline))) {
		dl->fd = -1;
		return err;
	}
	fd = openat(mb->dirfd, mb->user, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1)
		err = errno;
	else if (st.st_dev != mb->dev || st.st_ino != mb->ino)
		err = ESTALE;
	else if (!(err = lock_wait(fd, deadline))) {
		repair(dl, fd, path);	/* what a killed delivery left */
		if (fstat(fd, &st) == -1)
			err = errno;
		else if (!unchanged(mb, fd, &st))
			err = ESTALE;
		else
			err = rewrite(mb, fd, &st);
	}
	if (err == ESTALE && mb->why && mb->why_len)
		snprintf(mb->why, mb->why_len, "%s was changed by another program since it was listed: nothing deleted",
			 path);
	if (fd != -1)
		close(fd);	/* and its lockf with it */
	lock_dotlock_release(dl);
	dl->fd = -1;
	return err;
}
