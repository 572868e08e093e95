/* mailbox: the shared file helpers of the formats, the dispatch, and the
 * readers of Maildir, MH and numbered folders (mailbox.h). */
#include "mailbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"
#include "lock.h"
#include "log.h"

/* The highest N among the entries "N" (and "N<sidecar>" when a sidecar
 * suffix is given, so that an orphaned sidecar still takes its number);
 * stale temporaries of killed deliveries go on the way.  fdopendir takes
 * the descriptor it is given: it reads a duplicate.  0 or an errno value. */
int mailbox_highest_number(int dirfd, const char *shown, const char *sidecar, unsigned long *max)
{
	int fd = dup(dirfd);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d) {
		int err = errno;
		if (fd != -1)
			close(fd);
		return err;
	}
	*max = 0;
	while ((e = readdir(d))) {
		char *end;
		if (strncmp(e->d_name, ",mailslot.", 10) == 0)
			mailbox_drop_stale(dirfd, shown, e->d_name);
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		unsigned long n = strtoul(e->d_name, &end, 10);
		if ((*end == '\0' || (sidecar && strcmp(end, sidecar) == 0)) && n > *max)
			*max = n;
	}
	closedir(d);
	return 0;
}

/* No delivery in progress is 36 hours old, so the age alone makes the file
 * safe to remove, whoever left it. */
void mailbox_drop_stale(int dirfd, const char *dir, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    time(NULL) - st.st_mtime > MAILBOX_STALE_TEMP_SECONDS && unlinkat(dirfd, name, 0) == 0)
		log_msg(LOG_NOTICE, "removed %s/%s, left by an interrupted delivery", dir, name);
}

int mailbox_copy(const struct mailbox_msg *m, int fd, off_t *offset)
{
	return fileio_copy(m->fd, 0, m->size, fd, offset);
}

int mailbox_new_file(struct mailbox_job *job, int dirfd, const char *name)
{
	off_t pos = 0;
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd == -1)
		return errno;
	if (fileio_write(fd, job->prefix, job->prefix_len, &pos) == -1 ||
	    mailbox_copy(job->msg, fd, &pos) == -1 || fsync(fd) == -1) {
		int err = errno;
		close(fd);
		unlinkat(dirfd, name, 0);
		return err;
	}
	return close(fd) == -1 ? errno : 0;
}

int mailbox_new_temp(struct mailbox_job *job, int dirfd, char *name, size_t namesz, size_t room)
{
	static unsigned seq;	/* one process may deliver to one folder more than once */

	for (int tries = 0;; tries++) {
		int n = snprintf(name, namesz, ",mailslot.%s.%ld.%u", job->msg->qid, (long)getpid(), seq++);
		if (n < 0 || (size_t)n + room >= namesz)
			return ENAMETOOLONG;
		int err = mailbox_new_file(job, dirfd, name);
		if (err != EEXIST || tries == 10)
			return err;
	}
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

int mailbox_open_folder(struct mailbox_job *job, char *shown, size_t shownsz)
{
	int spoolfd, fd;

	if (snprintf(shown, shownsz, "%s/%s", job->spool, job->user) >= (int)shownsz)
		return -ENAMETOOLONG;
	if ((spoolfd = mailbox_open_spool(job)) < 0)
		return spoolfd;
	fd = mailbox_open_dir(job, spoolfd, job->user, shown);
	close(spoolfd);
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

/* --- reading -------------------------------------------------------------- */

#define MAILBOX_MESSAGES_MAX 1000000	/* a list longer than this is refused, not grown */

static int fail_why(struct mailbox *mb, int err, const char *what)
{
	if (mb->why && mb->why_len && !mb->why[0])
		snprintf(mb->why, mb->why_len, "%s/%s: %s: %s", mb->path, mb->user, what, strerror(err));
	return err;
}

struct mailbox_entry *mailbox_add_entry(struct mailbox *mb)
{
	if (mb->count >= MAILBOX_MESSAGES_MAX) {
		errno = EFBIG;
		return NULL;
	}
	if (mb->count % 256 == 0) {
		struct mailbox_entry *grown = realloc(mb->entry, (mb->count + 256) * sizeof *grown);
		if (!grown)
			return NULL;
		mb->entry = grown;
	}
	struct mailbox_entry *e = &mb->entry[mb->count++];
	memset(e, 0, sizeof *e);
	return e;
}

/* 64-bit FNV-1a, for uids made from what is too long or not printable */
uint64_t mailbox_hash(const void *data, size_t len, uint64_t h)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Copy, counting octets and LF; outfd -1 only counts. */
static int copy_counting(int fd, int outfd, off_t *size, off_t *lines)
{
	char buf[65536];
	off_t pos = 0;

	*size = *lines = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof buf, pos);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0)
			return 0;
		for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))); p++)
			(*lines)++;
		if (outfd != -1 && fileio_write(outfd, buf, (size_t)n, NULL) == -1)
			return errno;
		pos += n;
		*size += n;
	}
}

/* A message file: regular, opened without following a symlink. */
static int open_message(int dirfd, const char *name)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* An existing directory of the owner's, or -ENOENT. */
static int open_owned_dir(int parentfd, const char *name, uid_t owner)
{
	struct stat st;
	int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1)
		return errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
	if (fstat(fd, &st) == -1 || st.st_uid != owner) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

static int add_file(struct mailbox *mb, int dirfd, const char *sub, const char *name)
{
	struct mailbox_entry *e;
	struct stat st;
	int fd = open_message(dirfd, name), err;

	if (fd == -ENOENT)
		return 0;	/* gone since the listing */
	if (fd < 0)
		return -fd;
	if (!(e = mailbox_add_entry(mb))) {
		close(fd);
		return errno;
	}
	snprintf(e->name, sizeof e->name, "%s%s", sub, name);
	if ((err = copy_counting(fd, -1, &e->size, &e->lines)) || fstat(fd, &st) == -1) {
		close(fd);
		return err ? err : errno;
	}
	close(fd);
	if (mb->format == FORMAT_MAILDIR) {
		/* the unique part of the name, before its ":2,flags" */
		size_t ulen = strcspn(name, ":");
		int printable = ulen < MAILBOX_UID_MAX;
		for (size_t i = 0; printable && i < ulen; i++)
			printable = name[i] > 0x20 && name[i] < 0x7f;
		if (printable)
			snprintf(e->uid, sizeof e->uid, "%.*s", (int)ulen, name);
		else
			snprintf(e->uid, sizeof e->uid, "h%016llx",
				 (unsigned long long)mailbox_hash(name, ulen, 0xcbf29ce484222325ULL));
	} else {
		/* MH numbers change with folder -pack; the inode stays with the file */
		snprintf(e->uid, sizeof e->uid, "i%llu", (unsigned long long)st.st_ino);
	}
	return 0;
}

static int scan_dir(struct mailbox *mb, int dirfd, const char *sub)
{
	int fd = dup(dirfd), err = 0;
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d) {
		err = errno;
		if (fd != -1)
			close(fd);
		return err;
	}
	while (!err && (e = readdir(d))) {
		char *end;
		if (e->d_name[0] == '.')
			continue;
		if (mb->format != FORMAT_MAILDIR &&
		    (e->d_name[0] < '1' || e->d_name[0] > '9' || (strtoul(e->d_name, &end, 10), *end != '\0')))
			continue;
		err = add_file(mb, dirfd, sub, e->d_name);
	}
	closedir(d);
	return err;
}

static int by_number(const void *a, const void *b)
{
	unsigned long x = strtoul(((const struct mailbox_entry *)a)->name, NULL, 10);
	unsigned long y = strtoul(((const struct mailbox_entry *)b)->name, NULL, 10);

	return x < y ? -1 : x > y;
}

/* Maildir names start with the delivery time, "SECONDS.M<usec>P<pid>...":
 * near enough arrival order once the numbers compare as numbers (M99 is
 * before M100000); other names compare as text after them. */
static void arrival_key(const char *name, unsigned long long *sec, unsigned long long *usec)
{
	char *end;

	*sec = strtoull(name, &end, 10);
	*usec = strncmp(end, ".M", 2) == 0 ? strtoull(end + 2, NULL, 10) : 0;
}

static int by_name(const void *a, const void *b)
{
	const char *x = strchr(((const struct mailbox_entry *)a)->name, '/') + 1;
	const char *y = strchr(((const struct mailbox_entry *)b)->name, '/') + 1;
	unsigned long long xs, xu, ys, yu;

	arrival_key(x, &xs, &xu);
	arrival_key(y, &ys, &yu);
	if (xs != ys)
		return xs < ys ? -1 : 1;
	if (xu != yu)
		return xu < yu ? -1 : 1;
	return strcmp(x, y);
}

/* Maildir: what is in new/ has now been seen and goes to cur/ with an
 * empty info (":2,"), as a reader's first look moves it; the unique part
 * of the name, and so the uid, stays.  One that cannot move is listed
 * where it is. */
static void maildir_take_new(int dirfd, uid_t owner)
{
	int newfd = open_owned_dir(dirfd, "new", owner), curfd = open_owned_dir(dirfd, "cur", owner);
	int fd = newfd < 0 ? -1 : dup(newfd);
	DIR *d = fd == -1 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d && fd != -1)
		close(fd);
	while (d && curfd >= 0 && (e = readdir(d))) {
		char to[NAME_MAX + 1];
		if (e->d_name[0] == '.' ||
		    snprintf(to, sizeof to, "%s%s", e->d_name, strchr(e->d_name, ':') ? "" : ":2,") >= (int)sizeof to)
			continue;
		renameat2(newfd, e->d_name, curfd, to, RENAME_NOREPLACE);
	}
	if (d)
		closedir(d);
	if (newfd >= 0)
		close(newfd);
	if (curfd >= 0)
		close(curfd);
}

int mailbox_open(struct mailbox *mb, enum mail_format format, const char *spool, const char *user, uid_t owner,
		 long long lock_timeout, char *why, size_t why_len)
{
	int spoolfd, err = 0;

	*mb = (struct mailbox){ .format = format, .dirfd = -1, .fd = -1, .dl = { .fd = -1, .dirfd = -1 },
				.lock_timeout = lock_timeout, .owner = owner, .why = why, .why_len = why_len };
	if (why_len)
		why[0] = '\0';
	if (snprintf(mb->path, sizeof mb->path, "%s", spool) >= (int)sizeof mb->path ||
	    snprintf(mb->user, sizeof mb->user, "%s", user) >= (int)sizeof mb->user || strchr(user, '/') ||
	    user[0] == '.' || !user[0])
		return fail_why(mb, ENAMETOOLONG, "bad mailbox name");
	spoolfd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (spoolfd == -1)
		return fail_why(mb, errno, "cannot open the spool");
	if (format == FORMAT_MBOX) {
		mb->dirfd = spoolfd;
		if ((err = mbox_scan(mb)))
			mailbox_close(mb);
		return err == EBUSY ? err : err ? fail_why(mb, err, "cannot read the mailbox") : 0;
	}
	mb->dirfd = open_owned_dir(spoolfd, user, owner);
	close(spoolfd);
	if (mb->dirfd == -ENOENT)
		return 0;	/* nothing delivered yet: an empty mailbox */
	if (mb->dirfd < 0)
		return fail_why(mb, -mb->dirfd, "not a directory of the recipient's");
	/* one reader at a time (mailbox.h); deliveries do not take it */
	if (flock(mb->dirfd, LOCK_EX | LOCK_NB) == -1) {
		err = errno == EWOULDBLOCK ? EBUSY : errno;
		mailbox_close(mb);
		return err == EBUSY ? err : fail_why(mb, err, "cannot lock the folder");
	}
	if (format == FORMAT_MAILDIR) {
		maildir_take_new(mb->dirfd, owner);
		for (const char *const *s = (const char *const[]){ "new", "cur", NULL }; *s && !err; s++) {
			char sub[8];
			int fd = open_owned_dir(mb->dirfd, *s, owner);
			if (fd == -ENOENT)
				continue;
			if (fd < 0) {
				err = -fd;
				break;
			}
			snprintf(sub, sizeof sub, "%s/", *s);
			err = scan_dir(mb, fd, sub);
			close(fd);
		}
		if (!err && mb->count)
			qsort(mb->entry, mb->count, sizeof *mb->entry, by_name);
	} else {
		err = scan_dir(mb, mb->dirfd, "");
		if (!err && mb->count)
			qsort(mb->entry, mb->count, sizeof *mb->entry, by_number);
	}
	if (err) {
		mailbox_close(mb);
		return fail_why(mb, err, "cannot list the messages");
	}
	return 0;
}

int mailbox_read(struct mailbox *mb, size_t i, int outfd)
{
	const struct mailbox_entry *e;
	off_t size, lines;
	int fd, err;

	if (i >= mb->count)
		return ENOENT;
	e = &mb->entry[i];
	if (mb->format == FORMAT_MBOX)
		return mbox_read(mb, e, outfd);
	if ((fd = open_message(mb->dirfd, e->name)) < 0)
		return -fd;
	err = copy_counting(fd, outfd, &size, &lines);
	close(fd);
	/* a message changed under us is not the one listed */
	return err ? err : size != e->size ? EIO : 0;
}

void mailbox_message_place(const struct mailbox *mb, size_t i, off_t *start, off_t *len, int *quoted)
{
	const struct mailbox_entry *e = &mb->entry[i];

	*quoted = mb->format == FORMAT_MBOX;
	*start = *quoted ? e->start : 0;
	*len = *quoted ? e->len : e->size;
}

int mailbox_message_fd(struct mailbox *mb, size_t i, off_t *start, off_t *len, int *quoted)
{
	struct stat st;
	int fd;

	if (i >= mb->count)
		return -ENOENT;
	mailbox_message_place(mb, i, start, len, quoted);
	if (!*quoted)
		return open_message(mb->dirfd, mb->entry[i].name);
	fd = openat(mb->dirfd, mb->user, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	/* a mailbox rewritten since (by another program) is not the one listed */
	if (fstat(fd, &st) == -1 || st.st_dev != mb->dev || st.st_ino != mb->ino || st.st_size < mb->scanned) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int mailbox_delete(struct mailbox *mb, size_t i)
{
	if (i >= mb->count)
		return ENOENT;
	mb->entry[i].deleted = 1;
	return 0;
}

int mailbox_seen(struct mailbox *mb, size_t i)
{
	if (i >= mb->count)
		return ENOENT;
	mb->entry[i].seen = 1;
	return 0;
}

/* The numbered format: a message read keeps "\Seen" as its flags, the
 * status file replaced whole (a temporary name, then rename). */
static void status_seen(struct mailbox *mb, const struct mailbox_entry *e)
{
	char status[NAME_MAX + 1], tmp[NAME_MAX + 1];
	int fd;

	snprintf(status, sizeof status, "%s.status", e->name);
	snprintf(tmp, sizeof tmp, ",mailslot.seen.%s", e->name);
	fd = openat(mb->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return;
	int ok = fileio_write(fd, "\\Seen\n", 6, NULL) == 0 && fsync(fd) == 0;
	close(fd);
	if (!ok || renameat(mb->dirfd, tmp, mb->dirfd, status) == -1)
		unlinkat(mb->dirfd, tmp, 0);
}

int mailbox_apply(struct mailbox *mb)
{
	int err = 0, lockfd = -1;

	if (mb->format == FORMAT_MBOX)
		return mbox_apply(mb);
	if (mb->format != FORMAT_MAILDIR) {
		/* numbering, and nmh's own rewriting, wait for us */
		if ((err = lock_folder(mb->dirfd, clock_ms() + mb->lock_timeout * 1000, &lockfd)))
			return fail_why(mb, err, "cannot lock .mh_sequences");
	}
	for (size_t i = 0; i < mb->count; i++) {
		if (!mb->entry[i].deleted && mb->entry[i].seen && mb->format == FORMAT_NUMBERED)
			status_seen(mb, &mb->entry[i]);
		if (!mb->entry[i].deleted)
			continue;
		if (unlinkat(mb->dirfd, mb->entry[i].name, 0) == -1 && errno != ENOENT && !err)
			err = errno;
		if (mb->format == FORMAT_NUMBERED) {
			char status[NAME_MAX + 1];
			snprintf(status, sizeof status, "%s.status", mb->entry[i].name);
			unlinkat(mb->dirfd, status, 0);
		}
	}
	if (!err && fsync(mb->dirfd) == -1)
		err = errno;
	if (!err && mb->format == FORMAT_MH && mb->count) {
		/* a removed number left in a sequence would mark the next
		 * message given that number: take them out, as rmm does */
		unsigned long *gone = calloc(mb->count, sizeof *gone);
		size_t n = 0;
		if (!gone)
			err = errno;
		for (size_t i = 0; gone && i < mb->count; i++)
			if (mb->entry[i].deleted)
				gone[n++] = strtoul(mb->entry[i].name, NULL, 10);
		if (gone && n)
			err = mh_drop_from_sequences(lockfd, gone, n);	/* entries are sorted by number */
		free(gone);
	}
	if (lockfd != -1)
		close(lockfd);
	return err ? fail_why(mb, err, "cannot remove deleted messages") : 0;
}

void mailbox_close(struct mailbox *mb)
{
	if (mb->format == FORMAT_MBOX && mb->dl.fd != -1)
		lock_dotlock_release(&mb->dl);
	if (mb->fd != -1)
		close(mb->fd);
	if (mb->dirfd >= 0)
		close(mb->dirfd);
	free(mb->entry);
	mb->entry = NULL;
	mb->count = 0;
	mb->fd = mb->dirfd = mb->dl.fd = -1;
}
