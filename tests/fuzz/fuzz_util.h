/* fuzz_util: what the libFuzzer targets in tests/fuzz/ share.
 *
 * Memory files for the descriptors a module reads or writes, a check that
 * aborts with a message (libFuzzer then keeps the input as a crash), a
 * scratch directory removed at exit, and fd 2 silenced while project code
 * logs: sanitizer reports go to a copy of the real stderr, so a finding is
 * still shown in full.  Everything here is static: each target is one
 * translation unit plus the project's objects.
 */
#ifndef MAILSLOT_FUZZ_UTIL_H
#define MAILSLOT_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz check failed at %s:%d: %s: ",    \
				__FILE__, __LINE__, #cond);                    \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

static inline void fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz harness: %s: %s\n", what, strerror(errno));
	abort();
}

static inline int fuzz_memfd(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd == -1)
		fuzz_die("memfd_create");
	return fd;
}

/* An empty memory file again, position 0. */
static inline void fuzz_reset_fd(int fd)
{
	if (ftruncate(fd, 0) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		fuzz_die("ftruncate");
}

static inline void fuzz_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			fuzz_die("write");
		p += n;
		len -= (size_t)n;
	}
}

/* The whole content of a memory file, NUL-terminated; free it. */
static inline char *fuzz_slurp(int fd, size_t *len)
{
	struct stat st;
	char *buf;

	if (fstat(fd, &st) == -1)
		fuzz_die("fstat");
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		fuzz_die("malloc");
	ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
	if (n != st.st_size)
		fuzz_die("pread");
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* Scratch directory: tmpfs when there is one, since delivery fsyncs. */
static __attribute__((unused)) char fuzz_dir[256];

static inline int fuzz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

/* Remove everything below dir, keeping dir itself. */
static inline void fuzz_empty_dir(const char *dir)
{
	nftw(dir, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void fuzz_remove_dir(void)
{
	if (fuzz_dir[0]) {
		fuzz_empty_dir(fuzz_dir);
		rmdir(fuzz_dir);
	}
}

static inline const char *fuzz_make_dir(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");

	snprintf(fuzz_dir, sizeof fuzz_dir, "%s/mailslot-fuzz.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(fuzz_dir))
		fuzz_die("mkdtemp");
	atexit(fuzz_remove_dir);
	return fuzz_dir;
}

static inline void fuzz_write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		fuzz_die(path);
	fuzz_write_all(fd, text, strlen(text));
	close(fd);
}

/* Project code logs to fd 2; a million sessions must not flood the
 * terminal.  Sanitizer reports keep going to the real stderr. */
static __attribute__((unused)) int fuzz_stderr = -1, fuzz_null = -1;

static inline void fuzz_quiet_init(void)
{
	if (getenv("FUZZ_VERBOSE"))
		return;
	fuzz_stderr = fcntl(2, F_DUPFD_CLOEXEC, 10);
	fuzz_null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fuzz_stderr == -1 || fuzz_null == -1)
		fuzz_die("quiet");
	__sanitizer_set_report_fd((void *)(intptr_t)fuzz_stderr);
}

static inline void fuzz_quiet(int on)
{
	if (fuzz_stderr == -1)
		return;
	if (dup2(on ? fuzz_null : fuzz_stderr, 2) == -1)
		fuzz_die("dup2");
}

/* A reply line as RFC 5321 4.2 has it: "NNN" then ' ' or '-', printable
 * text, CRLF.  Returns the code, or -1. */
static inline int fuzz_reply_line(const char *line, size_t len, int *more)
{
	if (len < 5 || line[len - 2] != '\r' || line[len - 1] != '\n')
		return -1;
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9')
		return -1;
	if (len > 5 && line[3] != ' ' && line[3] != '-')
		return -1;
	for (size_t i = 3; i < len - 2; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			return -1;
	*more = len > 5 && line[3] == '-';
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

#endif
