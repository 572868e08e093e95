/* queue: queue ids, spooling the incoming message, committing entries, envelope format.
 *
 * Envelope format, version 1 (one item a line, LF ends, no tabs):
 *   mailslot-envelope 1
 *   id <queue id>
 *   arrived <seconds since the epoch>
 *   sender <address>           "<>" for the null sender
 *   client <helo name and [address]>
 *   rcpt <attempts> <next attempt> <local user or -> <address>
 *   error <text>               last error of the rcpt line above (optional)
 * The address comes last on its line because a quoted local part may hold
 * spaces; nothing in an address can be a line break.
 */
#include "queue.h"
#include "fileio.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>

#define QUEUE_FILE_MODE 0660
#define QUEUE_DIR_MODE 0770

void queue_new_id(char *out, size_t outsz)
{
	static unsigned counter;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	/* time, microseconds and pid make it unique on this host; the counter
	 * covers two messages of one process in the same microsecond */
	snprintf(out, outsz, "%08llX%05lX%06X%02X", (unsigned long long)tv.tv_sec & 0xffffffffULL,
		 (unsigned long)tv.tv_usec, (unsigned)getpid() & 0xffffff, counter++ & 0xff);
}

static int sub_path(char *out, size_t outsz, const char *qdir, const char *sub, const char *name)
{
	int n = name ? snprintf(out, outsz, "%s/%s/%s", qdir, sub, name)
		     : snprintf(out, outsz, "%s/%s", qdir, sub);
	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int queue_prepare(const char *qdir)
{
	static const char *const subs[] = { "tmp", "msg", "env" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (sub_path(path, sizeof path, qdir, subs[i], NULL) == -1)
			return -1;
		if (mkdir(path, QUEUE_DIR_MODE) == 0) {
			/* the umask (022 from most shells) would leave 0750: the
			 * group (mail) enqueues, so it needs to write here */
			if (chmod(path, QUEUE_DIR_MODE) == -1)
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
	}
	return 0;
}

int queue_dir_usable(const char *qdir, int writable)
{
	struct stat st;

	if (stat(qdir, &st) == -1)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return ENOTDIR;
	if (writable && access(qdir, W_OK | X_OK) == -1)
		return errno;
	return 0;
}

int queue_spool_open(const char *qdir)
{
	char path[PATH_MAX];
	int fd;

	if (sub_path(path, sizeof path, qdir, "tmp", NULL) == -1)
		return -1;
	fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, QUEUE_FILE_MODE);
	if (fd == -1 && errno == ENOENT) {
		if (queue_prepare(qdir) == -1)
			return -1;
		fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, QUEUE_FILE_MODE);
	}
	return fd;
}

static int fsync_dir(const char *qdir, const char *sub)
{
	char path[PATH_MAX];
	int fd, rc;

	if (sub_path(path, sizeof path, qdir, sub, NULL) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int queue_commit(const char *qdir, int msgfd, const struct envelope *env)
{
	char msg_path[PATH_MAX], tmp_path[PATH_MAX], env_path[PATH_MAX], proc[64];
	char tmp_name[QUEUE_ID_MAX + 8];
	int fd, saved;

	if (queue_prepare(qdir) == -1)
		return -1;
	if (fsync(msgfd) == -1)
		return -1;
	snprintf(tmp_name, sizeof tmp_name, "%s.env", env->id);
	if (sub_path(msg_path, sizeof msg_path, qdir, "msg", env->id) == -1 ||
	    sub_path(tmp_path, sizeof tmp_path, qdir, "tmp", tmp_name) == -1 ||
	    sub_path(env_path, sizeof env_path, qdir, "env", env->id) == -1)
		return -1;
	/* give the unnamed spool file its name (no CAP_DAC_READ_SEARCH needed via /proc) */
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", msgfd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, msg_path, AT_SYMLINK_FOLLOW) == -1)
		return -1;
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, QUEUE_FILE_MODE);
	if (fd == -1)
		goto undo_msg;
	if (queue_env_write(fd, env) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		unlink(tmp_path);
		errno = saved;
		goto undo_msg;
	}
	close(fd);
	if (fsync_dir(qdir, "msg") == -1 || rename(tmp_path, env_path) == -1) {
		saved = errno;
		unlink(tmp_path);
		errno = saved;
		goto undo_msg;
	}
	if (fsync_dir(qdir, "env") == -1) {
		saved = errno;
		unlink(env_path);
		errno = saved;
		goto undo_msg;
	}
	return 0;
undo_msg:
	saved = errno;
	unlink(msg_path);
	errno = saved;
	return -1;
}

/* One envelope line into the buffered writer: an envelope costs one or
 * two write() calls. */
static void env_line(struct fileio_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void env_line(struct fileio_buf *o, const char *fmt, ...)
{
	char line[QUEUE_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line - 1) {
		if (!o->err)
			o->err = EOVERFLOW;
		return;
	}
	line[n++] = '\n';
	fileio_put(o, line, (size_t)n);
}

int queue_env_write(int fd, const struct envelope *env)
{
	static char storage[8192];
	struct fileio_buf o;

	fileio_buf_init(&o, fd, storage, sizeof storage);
	env_line(&o, "mailslot-envelope 1");
	env_line(&o, "id %s", env->id);
	env_line(&o, "arrived %lld", env->arrived);
	env_line(&o, "sender %s", env->sender[0] ? env->sender : "<>");
	env_line(&o, "client %s", env->client);
	for (int i = 0; i < env->nrcpt; i++) {
		const struct env_rcpt *r = &env->rcpt[i];
		env_line(&o, "rcpt %u %lld %s %s", r->attempts, r->next_attempt,
			 r->user[0] ? r->user : "-", r->address);
		if (r->last_error[0])
			env_line(&o, "error %s", r->last_error);
	}
	if (fileio_flush(&o) == -1) {
		errno = o.err;
		return -1;
	}
	return 0;
}

void queue_env_free(struct envelope *env)
{
	free(env->rcpt);
	env->rcpt = NULL;
	env->nrcpt = 0;
}

static int printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static int copy_field(char *out, size_t outsz, const char *s, size_t len)
{
	if (len >= outsz || !printable(s, len))
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int parse_number(const char *s, size_t len, long long max, long long *out)
{
	long long n = 0;

	if (len == 0 || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (n > (max - (s[i] - '0')) / 10)
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	*out = n;
	return 0;
}

/* rcpt <attempts> <next> <user|-> <address> */
static int parse_rcpt(const char *v, size_t len, struct env_rcpt *r)
{
	const char *f[3];
	size_t flen[3];
	long long n;
	struct mailaddr a;
	const char *why;

	memset(r, 0, sizeof *r);
	for (int i = 0; i < 3; i++) {
		const char *sp = memchr(v, ' ', len);
		if (!sp)
			return -1;
		f[i] = v;
		flen[i] = (size_t)(sp - v);
		len -= flen[i] + 1;
		v = sp + 1;
	}
	if (parse_number(f[0], flen[0], UINT_MAX, &n) == -1)
		return -1;
	r->attempts = (unsigned)n;
	if (parse_number(f[1], flen[1], LLONG_MAX, &r->next_attempt) == -1)
		return -1;
	if (!(flen[2] == 1 && f[2][0] == '-') && copy_field(r->user, sizeof r->user, f[2], flen[2]) == -1)
		return -1;
	if (addr_parse_mailbox(v, len, &a, &why) != ADDR_OK)
		return -1;
	return copy_field(r->address, sizeof r->address, v, len);
}

int queue_env_parse(const char *text, size_t len, struct envelope *env, const char **why)
{
	const char *p = text, *end = text + len;
	int lineno = 0, have_id = 0, have_sender = 0;

	memset(env, 0, sizeof *env);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			*why = "last line has no line end";
			goto bad;
		}
		size_t ll = (size_t)(nl - p);
		const char *sp = memchr(p, ' ', ll);
		size_t klen = sp ? (size_t)(sp - p) : ll;
		const char *v = sp ? sp + 1 : nl;
		size_t vlen = (size_t)(nl - v);
		lineno++;
		if (ll >= QUEUE_LINE_MAX) {
			*why = "line too long";
			goto bad;
		}
		if (lineno == 1) {
			if (ll != 19 || memcmp(p, "mailslot-envelope 1", 19) != 0) {
				*why = "not a version 1 envelope";
				goto bad;
			}
		} else if (klen == 2 && memcmp(p, "id", 2) == 0) {
			if (vlen == 0 || copy_field(env->id, sizeof env->id, v, vlen) == -1 ||
			    memchr(v, '/', vlen) || v[0] == '.') {
				*why = "bad id";
				goto bad;
			}
			have_id = 1;
		} else if (klen == 7 && memcmp(p, "arrived", 7) == 0) {
			if (parse_number(v, vlen, LLONG_MAX, &env->arrived) == -1) {
				*why = "bad arrival time";
				goto bad;
			}
		} else if (klen == 6 && memcmp(p, "sender", 6) == 0) {
			struct mailaddr a;
			const char *w;
			if (vlen == 2 && memcmp(v, "<>", 2) == 0) {
				env->sender[0] = '\0';
			} else if (addr_parse_mailbox(v, vlen, &a, &w) != ADDR_OK ||
				   copy_field(env->sender, sizeof env->sender, v, vlen) == -1) {
				*why = "bad sender";
				goto bad;
			}
			have_sender = 1;
		} else if (klen == 6 && memcmp(p, "client", 6) == 0) {
			if (copy_field(env->client, sizeof env->client, v, vlen) == -1) {
				*why = "bad client";
				goto bad;
			}
		} else if (klen == 4 && memcmp(p, "rcpt", 4) == 0) {
			if (env->nrcpt >= 100000) {
				*why = "too many recipients";
				goto bad;
			}
			struct env_rcpt *grown = realloc(env->rcpt, (size_t)(env->nrcpt + 1) * sizeof *grown);
			if (!grown) {
				*why = "out of memory";
				goto bad;
			}
			env->rcpt = grown;
			if (parse_rcpt(v, vlen, &env->rcpt[env->nrcpt]) == -1) {
				*why = "bad rcpt line";
				goto bad;
			}
			env->nrcpt++;
		} else if (klen == 5 && memcmp(p, "error", 5) == 0) {
			if (env->nrcpt == 0 ||
			    copy_field(env->rcpt[env->nrcpt - 1].last_error, QUEUE_ERROR_MAX, v, vlen) == -1) {
				*why = "bad error line";
				goto bad;
			}
		} else {
			*why = "unknown line";
			goto bad;
		}
		p = nl + 1;
	}
	if (!have_id || !have_sender) {
		*why = "id or sender missing";
		goto bad;
	}
	return 0;
bad:
	queue_env_free(env);
	return -1;
}

int queue_lock(const char *qdir, const char *id)
{
	char path[PATH_MAX];
	int fd;

	if (sub_path(path, sizeof path, qdir, "msg", id) == -1)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return -1;
	/* the message file keeps its inode for the entry's whole life, unlike
	 * the envelope, which is replaced by rename */
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

#define ENV_FILE_MAX ((off_t)4 * 1024 * 1024)

int queue_read_env(const char *qdir, const char *id, struct envelope *env, const char **why)
{
	char path[PATH_MAX];
	struct stat st;
	char *text;
	int fd, rc;

	if (sub_path(path, sizeof path, qdir, "env", id) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) == -1 || st.st_size > ENV_FILE_MAX || !(text = malloc((size_t)st.st_size + 1))) {
		*why = "envelope unreadable or too large";
		close(fd);
		return -1;
	}
	ssize_t n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		*why = "short read";
		free(text);
		return -1;
	}
	rc = queue_env_parse(text, (size_t)n, env, why);
	free(text);
	if (rc == 0 && strcmp(env->id, id) != 0) {
		*why = "id does not match the file name";
		queue_env_free(env);
		return -1;
	}
	return rc;
}

int queue_remove(const char *qdir, const char *id)
{
	char env_path[PATH_MAX], msg_path[PATH_MAX];

	if (sub_path(env_path, sizeof env_path, qdir, "env", id) == -1 ||
	    sub_path(msg_path, sizeof msg_path, qdir, "msg", id) == -1)
		return -1;
	if (unlink(env_path) == -1 && errno != ENOENT)
		return -1;
	fsync_dir(qdir, "env");
	unlink(msg_path);
	return 0;
}

int queue_update(const char *qdir, const struct envelope *env)
{
	char tmp_path[PATH_MAX], env_path[PATH_MAX], tmp_name[QUEUE_ID_MAX + 16];
	int fd;

	if (env->nrcpt == 0)
		return queue_remove(qdir, env->id);
	snprintf(tmp_name, sizeof tmp_name, "%s.env.%ld", env->id, (long)getpid());
	if (sub_path(tmp_path, sizeof tmp_path, qdir, "tmp", tmp_name) == -1 ||
	    sub_path(env_path, sizeof env_path, qdir, "env", env->id) == -1)
		return -1;
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, QUEUE_FILE_MODE);
	if (fd == -1)
		return -1;
	if (queue_env_write(fd, env) == -1 || fsync(fd) == -1 || close(fd) == -1 ||
	    rename(tmp_path, env_path) == -1) {
		int saved = errno;
		unlink(tmp_path);
		errno = saved;
		return -1;
	}
	return fsync_dir(qdir, "env");
}

int queue_id_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= QUEUE_ID_MAX)
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
			return 0;
	return 1;
}

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int queue_list_ids(const char *qdir, char ***ids, int *n)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;

	*ids = NULL;
	*n = 0;
	if (sub_path(path, sizeof path, qdir, "env", NULL) == -1)
		return -1;
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d))) {
		if (!queue_id_ok(e->d_name))
			continue;
		char **grown = realloc(*ids, (size_t)(*n + 1) * sizeof **ids);
		if (!grown || !(grown[*n] = strdup(e->d_name))) {
			*ids = grown ? grown : *ids;
			closedir(d);
			queue_free_ids(*ids, *n);
			errno = ENOMEM;
			return -1;
		}
		*ids = grown;
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(*ids, (size_t)*n, sizeof **ids, cmp_ids);
	return 0;
}

void queue_free_ids(char **ids, int n)
{
	for (int i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

void queue_sweep(const char *qdir, long long age)
{
	static const char *const subs[] = { "msg", "tmp" };
	char dir[PATH_MAX], path[PATH_MAX], env[PATH_MAX];
	time_t now = time(NULL);
	struct stat st;
	struct dirent *e;

	for (size_t i = 0; i < 2; i++) {
		if (sub_path(dir, sizeof dir, qdir, subs[i], NULL) == -1)
			continue;
		DIR *d = opendir(dir);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			if (sub_path(path, sizeof path, qdir, subs[i], e->d_name) == -1 ||
			    lstat(path, &st) == -1 || now - st.st_mtime < age)
				continue;
			/* a message is an orphan only when no envelope names it */
			if (i == 0 && sub_path(env, sizeof env, qdir, "env", e->d_name) == 0 && access(env, F_OK) == 0)
				continue;
			unlink(path);
		}
		closedir(d);
	}
}
