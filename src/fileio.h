/* fileio: whole writes to files, direct or through a caller's buffer.
 *
 * write(2) may write less than asked and may be interrupted; every file
 * the programs write (the spool file, envelopes, mailboxes, dotlocks,
 * bounces) goes through here, so that a short write is finished and a
 * failure is one errno.  The buffered writer keeps the first error and
 * drops everything after it, so a caller checks once, at the end.
 */
#ifndef MAILSLOT_FILEIO_H
#define MAILSLOT_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* All of buf, at *offset (advanced) when given, else at the file position.
 * 0, or -1 with errno (EIO for a write that wrote nothing). */
int fileio_write(int fd, const char *buf, size_t len, off_t *offset);

/* Octets from to end of infd into fd, at *offset (advanced) when given,
 * else at fd's position.  The kernel copies in one call where it can
 * (copy_file_range), without passing the bytes through us.  0, or -1. */
int fileio_copy(int infd, off_t from, off_t end, int fd, off_t *offset);

/* Descriptors 0, 1 and 2 open (/dev/null for a closed one), so that no
 * file opened later takes the place of standard input, output or error:
 * a set-user-ID program's caller could close them.  0, or -1. */
int fileio_std_open(void);

/* The same file with the same contents, as far as stat tells: device,
 * inode, size, modification and change times (a file replaced by rename,
 * edited in place, or touched).  Both absent (zeroed) also compare equal. */
struct stat;
int fileio_same_file(const struct stat *a, const struct stat *b);

struct fileio_buf {
	int fd;
	int err;		/* the first error, 0 while all is well */
	size_t len, cap;
	char *buf;		/* the caller's storage, cap octets */
};

void fileio_buf_init(struct fileio_buf *w, int fd, char *storage, size_t cap);
/* Append; a piece larger than the buffer is written through. */
void fileio_put(struct fileio_buf *w, const char *data, size_t len);
/* Write out what is buffered: 0, or -1 with the first error in w->err. */
int fileio_flush(struct fileio_buf *w);

#endif
