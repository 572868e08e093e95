/* authdb: whether a password is right for a user, from a file of name:HASH lines.
 *
 * The file is read as pwfile.h describes (one account a line, further
 * colon fields ignored, so a Dovecot passwd-file with CRYPT hashes and
 * /etc/shadow itself work unchanged), on every call and from the start to
 * the end, so a change by mailslot-passwd counts at once and the time
 * taken does not depend on where the user stands in it.  The first line
 * of a name is the one that counts.  Names are compared octet for octet.
 *
 * A hash is any crypt(3) hash libxcrypt knows ($y$ yescrypt, $6$
 * sha512-crypt, $2b$ bcrypt, ...), optionally behind a Dovecot scheme
 * prefix of the crypt family ({CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT},
 * {SHA256-CRYPT}, {MD5-CRYPT}, any case), which is taken off; another
 * prefix ({PLAIN}, {SSHA}...) never matches.  Every call hashes exactly
 * once: an unknown user, a locked hash or an over-long password is checked
 * against a fixed yescrypt hash at libxcrypt's default cost instead, and
 * the result is compared in constant time, so that neither the time nor
 * the answer tells an unknown user from a wrong password.  Nothing is
 * logged or printed here; the copy of the password crypt makes is wiped.
 */
#ifndef MAILSLOT_AUTHDB_H
#define MAILSLOT_AUTHDB_H

#include <stddef.h>

#define AUTHDB_USER_MAX 255	/* octets; a longer name is no user */
#define AUTHDB_PASSWORD_MAX 255	/* octets; a longer password is wrong */
#define AUTHDB_WHY_MAX 512	/* a *why buffer: whole for file names up to 400 octets, cut after */

enum authdb_result { AUTHDB_OK = 0, AUTHDB_BAD = 1, AUTHDB_ERROR = -1 };

/* AUTHDB_OK: user has a line whose HASH (any crypt(3) hash: $y$ yescrypt, $6$ sha512-crypt, $2b$ bcrypt, ...) matches password.
 * AUTHDB_BAD: no such user, a locked or empty hash ('!', '*', '!!', "" never match), or the wrong password.
 * AUTHDB_ERROR: the file cannot be read, or a line in it is malformed/too long (errno set; *why names the file and line, one line of text).
 * Further colon fields after HASH are ignored, so a Dovecot passwd-file with CRYPT hashes, and /etc/shadow itself, work unchanged. */
enum authdb_result authdb_check(const char *file, const char *user, const char *password, char *why, size_t whylen);
/* The same over a descriptor opened earlier (the monitor opens the file
 * before it drops privileges, so that /etc/shadow works), read from its
 * start on every call; file names it in *why. */
enum authdb_result authdb_check_fd(int fd, const char *file, const char *user, const char *password, char *why,
				   size_t whylen);

#endif
