/* authdb: one password checked against a name:HASH file with crypt(3). */
#include "authdb.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pwfile.h"

/* The yescrypt hash of a random password nobody kept, at libxcrypt's
 * default cost (j9T, what crypt_gensalt "$y$" with count 0 gives and what
 * mailslot-passwd writes): checking an unknown user against it costs what
 * checking a real one does. */
static const char dummy_hash[] = "$y$j9T$YfcLiPc7CZqxaM98gfL5R/$NiLuyq2xFb7NfCUyE35kj2pRKQ2VGi.sSYvXkxBkJs7";

/* Dovecot's passwd-file may name the scheme before the hash; these are
 * crypt(3) strings behind it (Dovecot itself hands them to crypt()). */
static const char *const crypt_schemes[] = {
	"{CRYPT}", "{BLF-CRYPT}", "{SHA512-CRYPT}", "{SHA256-CRYPT}", "{MD5-CRYPT}",
};

/* The crypt(3) string of a stored hash, or NULL for one that never
 * matches: empty, locked ('!' and '*' as in shadow(5), "!$6$..." too), or
 * of a scheme crypt does not know. */
static const char *crypt_string(const char *hash)
{
	if (hash[0] == '{') {
		const char *found = NULL;
		for (size_t i = 0; i < sizeof crypt_schemes / sizeof *crypt_schemes; i++) {
			size_t n = strlen(crypt_schemes[i]);
			if (strncasecmp(hash, crypt_schemes[i], n) == 0)
				found = hash + n;
		}
		if (!found)
			return NULL;
		hash = found;
	}
	if (hash[0] == '\0' || hash[0] == '!' || hash[0] == '*')
		return NULL;
	return hash;
}

/* Equal strings, in a time that depends on their lengths only (the length
 * of a hash is public: it follows from the algorithm). */
static int same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	volatile unsigned char diff = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* 1 when password hashes to hash, 0 when not (or crypt refuses the hash),
 * -1 when there is no memory for crypt's state. */
static int matches(const char *hash, const char *password)
{
	/* 32 KiB of state: too much for the stack of a monitor; zeroed, as
	 * crypt_rn wants it before first use */
	struct crypt_data *cd = calloc(1, sizeof *cd);

	if (!cd)
		return -1;
	const char *out = crypt_rn(password, hash, cd, (int)sizeof *cd);
	int ok = out && same(out, hash);
	/* cd->input holds a copy of the password */
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return ok;
}

static FILE *open_regular(const char *file)
{
	/* O_NONBLOCK: a FIFO put in the file's place must not hang the
	 * caller; it is refused below like any other non-regular file */
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	FILE *f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
}

/* The hash of user's first line into hash (hashsz octets, "" when the
 * line's is too long to be a crypt hash), *found set; the whole file is
 * read even past it.  0, or -1 with errno and *why. */
static int find_hash(FILE *f, const char *file, const char *user, char *hash, size_t hashsz, int *found,
		     char *why, size_t whylen)
{
	struct pwfile_line l;
	enum pwfile_status s;

	*found = 0;
	if (!f) {
		int saved = errno;
		snprintf(why, whylen, "cannot open %s: %s", file,
			 saved == EINVAL ? "not a regular file" : strerror(saved));
		errno = saved;
		return -1;
	}
	l.number = 0;
	while ((s = pwfile_next(f, &l)) == PWFILE_ENTRY || s == PWFILE_OTHER) {
		if (s != PWFILE_ENTRY || *found || !pwfile_is(&l, user))
			continue;
		*found = 1;
		snprintf(hash, hashsz, "%.*s", l.hashlen < hashsz ? (int)l.hashlen : 0, l.hash);
	}
	if (s != PWFILE_EOF) {
		if (s != PWFILE_ERROR)
			errno = EINVAL;
		pwfile_why(&l, s, file, why, whylen);
	}
	int saved = errno;
	fclose(f);
	errno = saved;
	return s == PWFILE_EOF ? 0 : -1;
}

static enum authdb_result check(FILE *f, const char *file, const char *user, const char *password, char *why,
				size_t whylen)
{
	char hash[CRYPT_OUTPUT_SIZE] = "", dummy_why[1];
	int found;

	if (!why || whylen == 0) {
		why = dummy_why;
		whylen = sizeof dummy_why;
	}
	why[0] = '\0';
	if (find_hash(f, file, user, hash, sizeof hash, &found, why, whylen) == -1)
		return AUTHDB_ERROR;
	int user_ok = found && strnlen(user, AUTHDB_USER_MAX + 1) <= AUTHDB_USER_MAX;
	int password_ok = strnlen(password, AUTHDB_PASSWORD_MAX + 1) <= AUTHDB_PASSWORD_MAX;
	const char *real = user_ok ? crypt_string(hash) : NULL;
	/* one hash whatever happens: the dummy stands in for a missing or
	 * locked hash, an empty phrase for an over-long one */
	int rc = matches(real ? real : dummy_hash, password_ok ? password : "");
	if (rc == -1) {
		snprintf(why, whylen, "checking a password for %s: out of memory", file);
		errno = ENOMEM;
		return AUTHDB_ERROR;
	}
	return rc == 1 && real && password_ok ? AUTHDB_OK : AUTHDB_BAD;
}

enum authdb_result authdb_check(const char *file, const char *user, const char *password, char *why, size_t whylen)
{
	return check(open_regular(file), file, user, password, why, whylen);
}

/* A stream of its own over fd, at the file's start. */
static FILE *from_start(int fd)
{
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	FILE *f = NULL;

	if (copy == -1)
		return NULL;
	if (lseek(copy, 0, SEEK_SET) == -1 || !(f = fdopen(copy, "r"))) {
		int saved = errno;
		close(copy);
		errno = saved;
	}
	return f;
}

enum authdb_result authdb_check_fd(int fd, const char *file, const char *user, const char *password, char *why,
				   size_t whylen)
{
	return check(from_start(fd), file, user, password, why, whylen);
}
