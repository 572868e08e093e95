/* maildir: deliver to <spool>/<user>/{tmp,new,cur} (the qmail Maildir rules).
 *
 * Write to tmp/<unique>, fsync, link into new/ and fsync the directory: the
 * message appears whole or not at all, and no lock is needed.  The unique
 * name is <seconds>.M<usec>P<pid>Q<count>.<host>,S=<size> (Dovecot reads
 * S= as the size).  Directories are created 0700 when missing; existing ones
 * must be real directories (not symlinks) owned by the recipient.  A file
 * in tmp/ older than 36 hours is what a killed delivery left: each delivery
 * removes those it finds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "deliver.h"

/* '/' and ':' may not appear in the host part of the name */
static void safe_host(char *out, size_t outsz, const char *host)
{
	size_t n = 0;

	for (; *host && n + 5 < outsz; host++) {
		if (*host == '/')
			n += (size_t)snprintf(out + n, outsz - n, "\\057");
		else if (*host == ':')
			n += (size_t)snprintf(out + n, outsz - n, "\\072");
		else
			out[n++] = *host;
	}
	out[n] = '\0';
}

static void sweep_tmp(const char *tmpdir)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			deliver_drop_stale(dirfd(d), tmpdir, e->d_name);
	closedir(d);
}

int maildir_deliver(struct mailbox_job *job)
{
	static unsigned count;
	char dir[PATH_MAX], sub[PATH_MAX], name[256], tmp[PATH_MAX], dst[PATH_MAX], host[128];
	struct timeval tv;
	int err, fd;

	if (snprintf(dir, sizeof dir, "%s/%s", job->spool, job->user) >= (int)sizeof dir)
		return ENAMETOOLONG;
	if ((err = deliver_ensure_dir(job, dir)))
		return err;
	for (const char *const *s = (const char *const[]){ "tmp", "new", "cur", NULL }; *s; s++) {
		snprintf(sub, sizeof sub, "%s/%s", dir, *s);
		if ((err = deliver_ensure_dir(job, sub)))
			return err;
	}
	snprintf(sub, sizeof sub, "%s/tmp", dir);
	sweep_tmp(sub);
	gettimeofday(&tv, NULL);
	safe_host(host, sizeof host, job->msg->hostname);
	snprintf(name, sizeof name, "%lld.M%ldP%ldQ%u.%s,S=%lld", (long long)tv.tv_sec, (long)tv.tv_usec,
		 (long)getpid(), count++, host, (long long)job->prefix_len + (long long)job->msg->size);
	if (snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name) >= (int)sizeof tmp ||
	    snprintf(dst, sizeof dst, "%s/new/%s", dir, name) >= (int)sizeof dst)
		return ENAMETOOLONG;
	if ((err = deliver_new_file(job, tmp, O_EXCL)))
		return err;
	if (link(tmp, dst) == -1) {
		err = errno;
		unlink(tmp);
		return err;
	}
	unlink(tmp);
	snprintf(sub, sizeof sub, "%s/new", dir);
	fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fsync(fd) == -1) {
		err = errno;
		if (fd != -1)
			close(fd);
		unlink(dst);
		return err;
	}
	close(fd);
	return 0;
}
