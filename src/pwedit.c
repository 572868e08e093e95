/* pwedit: a name:HASH file replaced, under a lock, with one account changed. */
#include "pwedit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"
#include "lock.h"
#include "pwfile.h"

#define AGAIN (-1)		/* the file changed under us: start over (statuses are > 0) */
#define NEW_FILE_MODE 0640	/* a new file: the group may be the one that checks passwords */

struct edit {
	const char *file, *user, *hash;	/* hash NULL: remove user */
	char *why;
	size_t whylen;
	char tmp[PATH_MAX];		/* the new file while it is written */
};

__attribute__((format(printf, 3, 4)))
static int fail(struct edit *e, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->why, e->whylen, fmt, ap);
	va_end(ap);
	return status;
}

/* FILE.XXXXXX beside the file, so that the rename stays in one file system. */
static int make_temp(struct edit *e)
{
	int n = snprintf(e->tmp, sizeof e->tmp, "%s.XXXXXX", e->file);

	if (n < 0 || (size_t)n >= sizeof e->tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return mkostemp(e->tmp, O_CLOEXEC);
}

/* The rename or link is durable only once the directory is. */
static int sync_dir(const char *file)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(file, '/');

	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", slash == file ? 1 : (int)(slash - file), file);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	int rc = fsync(fd), saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* "user:hash", then the old line's fields after its hash, ended as the
 * old line was (the last line of a file may lack its newline). */
static void put_entry(struct fileio_buf *w, const struct edit *e, const struct pwfile_line *old)
{
	fileio_put(w, e->user, strlen(e->user));
	fileio_put(w, ":", 1);
	/* the old scheme ({SHA512-CRYPT}...) would misname a yescrypt hash;
	 * Dovecot reads {CRYPT} as "whatever crypt(3) makes of it" */
	if (old && old->hashlen > 0 && old->hash[0] == '{')
		fileio_put(w, "{CRYPT}", 7);
	fileio_put(w, e->hash, strlen(e->hash));
	if (old)
		fileio_put(w, old->rest, old->restlen);
	if (!old || old->text[old->len - 1] == '\n')
		fileio_put(w, "\n", 1);
}

/* The old file's lines into w with the change made: 0 or a status. */
static int copy(struct edit *e, FILE *in, struct fileio_buf *w)
{
	struct pwfile_line l;
	enum pwfile_status s;
	int found = 0, newline_last = 1;

	l.number = 0;
	while ((s = pwfile_next(in, &l)) == PWFILE_ENTRY || s == PWFILE_OTHER) {
		int mine = s == PWFILE_ENTRY && pwfile_is(&l, e->user);
		if (mine && e->hash && !found)
			put_entry(w, e, &l);
		else if (!mine || e->hash)
			fileio_put(w, l.text, l.len);
		found |= mine;
		newline_last = l.text[l.len - 1] == '\n';
	}
	if (s != PWFILE_EOF) {
		pwfile_why(&l, s, e->file, e->why, e->whylen);
		return s == PWFILE_ERROR ? 74 : 65;
	}
	if (!found && !e->hash)
		return fail(e, 67, "no user '%s' in %s", e->user, e->file);
	if (!found) {
		if (!newline_last)
			fileio_put(w, "\n", 1);
		put_entry(w, e, NULL);
	}
	return 0;
}

/* What is buffered written out and on the disk: 0 or a status. */
static int finish(struct edit *e, int fd, struct fileio_buf *w)
{
	if (fileio_flush(w) == -1)
		return fail(e, 74, "cannot write %s: %s", e->tmp, strerror(w->err));
	if (fsync(fd) == -1)
		return fail(e, 74, "cannot sync %s: %s", e->tmp, strerror(errno));
	return 0;
}

/* The new file (tmpfd) with the old one's owner, group and mode, and its lines. */
static int fill(struct edit *e, FILE *in, int tmpfd, const struct stat *old)
{
	char storage[8192];
	struct fileio_buf w;
	struct stat st;

	/* fchown only when needed: an owner editing a file of their own
	 * cannot give it away, and need not */
	if (fstat(tmpfd, &st) == -1 ||
	    ((st.st_uid != old->st_uid || st.st_gid != old->st_gid) &&
	     fchown(tmpfd, old->st_uid, old->st_gid) == -1))
		return fail(e, 73, "cannot give %s's owner and group to its new copy: %s", e->file,
			    strerror(errno));
	if (fchmod(tmpfd, old->st_mode & 07777) == -1)
		return fail(e, 73, "cannot give %s's mode to its new copy: %s", e->file, strerror(errno));
	fileio_buf_init(&w, tmpfd, storage, sizeof storage);
	int rc = copy(e, in, &w);
	return rc ? rc : finish(e, tmpfd, &w);
}

/* in: the existing file, whose lock this takes (the caller closes in,
 * which releases it, only after the rename). */
static int replace(struct edit *e, FILE *in, long long deadline)
{
	struct stat st, now;

	if (fstat(fileno(in), &st) == -1)
		return fail(e, 74, "cannot stat %s: %s", e->file, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(e, 66, "%s is not a regular file", e->file);
	int err = lock_wait(fileno(in), deadline);
	if (err == ETIMEDOUT)
		return fail(e, 75, "%s is locked by another run (waited %d s)", e->file, PWEDIT_LOCK_SECONDS);
	if (err)
		return fail(e, 74, "cannot lock %s: %s", e->file, strerror(err));
	/* the run we waited for has renamed its new file over the name: the
	 * inode we hold is the old one, and edited it would lose that change */
	if (lstat(e->file, &now) == -1) {
		if (errno == ENOENT)
			return AGAIN;
		return fail(e, 74, "cannot stat %s: %s", e->file, strerror(errno));
	}
	if (now.st_dev != st.st_dev || now.st_ino != st.st_ino)
		return AGAIN;
	int tmpfd = make_temp(e);
	if (tmpfd == -1)
		return fail(e, 73, "cannot create a new file beside %s: %s", e->file, strerror(errno));
	int rc = fill(e, in, tmpfd, &st);
	if (close(tmpfd) == -1 && rc == 0)
		rc = fail(e, 74, "cannot write %s: %s", e->tmp, strerror(errno));
	if (rc == 0 && rename(e->tmp, e->file) == -1)
		rc = fail(e, 74, "cannot rename %s to %s: %s", e->tmp, e->file, strerror(errno));
	if (rc) {
		unlink(e->tmp);
		return rc;
	}
	if (sync_dir(e->file) == -1)
		return fail(e, 74, "replaced %s but cannot sync its directory: %s", e->file, strerror(errno));
	return 0;
}

/* No file yet: the whole new one, linked to the name only if that is
 * still free (link fails with EEXIST where rename would overwrite). */
static int create(struct edit *e)
{
	if (!e->hash)
		return fail(e, 66, "%s does not exist", e->file);
	int fd = make_temp(e);
	if (fd == -1)
		return fail(e, 73, "cannot create a new file beside %s: %s", e->file, strerror(errno));
	int rc = 0;
	if (fchmod(fd, NEW_FILE_MODE) == -1) {
		rc = fail(e, 73, "cannot set the mode of %s: %s", e->tmp, strerror(errno));
	} else {
		char storage[PWFILE_LINE_MAX];
		struct fileio_buf w;
		fileio_buf_init(&w, fd, storage, sizeof storage);
		put_entry(&w, e, NULL);
		rc = finish(e, fd, &w);
	}
	if (close(fd) == -1 && rc == 0)
		rc = fail(e, 74, "cannot write %s: %s", e->tmp, strerror(errno));
	if (rc == 0 && link(e->tmp, e->file) == -1)
		rc = errno == EEXIST ? AGAIN : fail(e, 73, "cannot create %s: %s", e->file, strerror(errno));
	unlink(e->tmp);
	if (rc == 0 && sync_dir(e->file) == -1)
		rc = fail(e, 74, "created %s but cannot sync its directory: %s", e->file, strerror(errno));
	return rc;
}

static int attempt(struct edit *e, long long deadline)
{
	/* O_NOFOLLOW: the rename would put a plain file in a link's place;
	 * O_RDWR: lockf wants a descriptor open for writing */
	int fd = open(e->file, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd == -1 && errno == ENOENT)
		return create(e);
	if (fd == -1)
		return fail(e, 66, "cannot open %s: %s", e->file,
			    errno == ELOOP ? "a symbolic link (name the file itself)" : strerror(errno));
	FILE *in = fdopen(fd, "r");
	if (!in) {
		close(fd);
		return fail(e, 74, "cannot read %s: %s", e->file, strerror(errno));
	}
	int rc = replace(e, in, deadline);
	/* only now: closing a descriptor of the file releases the lock */
	fclose(in);
	return rc;
}

int pwedit_apply(const char *file, const char *user, const char *hash, char *why, size_t whylen)
{
	struct edit e = { .file = file, .user = user, .hash = hash, .why = why, .whylen = whylen };
	long long deadline = clock_ms() + PWEDIT_LOCK_SECONDS * 1000LL;
	int rc;

	/* each start over means another run finished a change */
	do
		rc = attempt(&e, deadline);
	while (rc == AGAIN && clock_ms() < deadline);
	if (rc == AGAIN)
		rc = fail(&e, 75, "%s kept changing for %d s", file, PWEDIT_LOCK_SECONDS);
	return rc;
}
