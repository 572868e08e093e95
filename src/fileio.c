/* fileio: complete writes and a small buffered writer for files. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_write(int fd, const char *buf, size_t len, off_t *offset)
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

void fileio_buf_init(struct fileio_buf *w, int fd, char *storage, size_t cap)
{
	w->fd = fd;
	w->err = 0;
	w->len = 0;
	w->cap = cap;
	w->buf = storage;
}

int fileio_flush(struct fileio_buf *w)
{
	if (!w->err && w->len > 0 && fileio_write(w->fd, w->buf, w->len, NULL) == -1)
		w->err = errno;
	w->len = 0;
	return w->err ? -1 : 0;
}

void fileio_put(struct fileio_buf *w, const char *data, size_t len)
{
	if (w->err)
		return;
	if (w->len + len > w->cap && fileio_flush(w) == -1)
		return;
	if (len > w->cap) {
		if (fileio_write(w->fd, data, len, NULL) == -1)
			w->err = errno;
		return;
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
}

int fileio_copy(int infd, off_t from, off_t end, int fd, off_t *offset)
{
	off_t in_off = from;
	char buf[65536];

	while (in_off < end) {
		size_t want = (size_t)(end - in_off);
		ssize_t n = offset ? copy_file_range(infd, &in_off, fd, offset, want, 0) : -1;
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
		while (in_off < end) {
			size_t chunk = (size_t)(end - in_off) < sizeof buf ? (size_t)(end - in_off) : sizeof buf;
			ssize_t r = pread(infd, buf, chunk, in_off);
			if (r <= 0) {
				if (r == -1 && errno == EINTR)
					continue;
				if (r == 0)
					errno = EIO;
				return -1;
			}
			if (fileio_write(fd, buf, (size_t)r, offset) == -1)
				return -1;
			in_off += r;
		}
	}
	return 0;
}

int fileio_std_open(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd)
			return -1;
	return 0;
}

int fileio_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}
