/* pwfile: the passwd-style file of name:HASH lines, read one bounded line
 * at a time.
 *
 * The one format that authdb checks passwords against and mailslot-passwd
 * edits: an account a line, "name:HASH", then any further colon fields,
 * which are carried but never read, so that /etc/shadow and a Dovecot
 * passwd-file are read unchanged.  Empty lines, lines of white space and
 * lines starting with '#' are not accounts (Dovecot skips them too).
 *
 * A line is at most PWFILE_LINE_MAX octets, its newline included; the last
 * line needs no newline.  A longer line, a NUL byte, an account line
 * without a colon, an empty or over-long name, or a control character in
 * the name or the hash is an error of the whole file, never skipped: a
 * password file read otherwise than its administrator reads it is worse
 * than one refused.  The reader keeps one line and allocates nothing, so a
 * file of any number of accounts streams through it.
 */
#ifndef MAILSLOT_PWFILE_H
#define MAILSLOT_PWFILE_H

#include <stddef.h>
#include <stdio.h>

#define PWFILE_LINE_MAX 4096	/* octets of a line, newline included */
#define PWFILE_NAME_MAX 255	/* octets of a name */

enum pwfile_status {
	PWFILE_ENTRY,		/* an account: name and hash are set */
	PWFILE_OTHER,		/* a comment or an empty line */
	PWFILE_EOF,
	PWFILE_TOOLONG,		/* errors of the file: stop reading */
	PWFILE_MALFORMED,
	PWFILE_ERROR		/* read error, errno set */
};

struct pwfile_line {
	unsigned long number;	/* of the line last read, from 1; start at 0 */
	size_t len;		/* octets of text, its newline included if it had one */
	const char *name;	/* the fields, in text, not NUL-terminated */
	size_t namelen;
	const char *hash;	/* from after the first colon up to the next or the end */
	size_t hashlen;
	const char *rest;	/* ":more:fields" after the hash, or empty; no newline */
	size_t restlen;
	char text[PWFILE_LINE_MAX + 1];	/* the line as read, NUL after it */
};

/* The next line of f into l (whose number was 0 before the first call). */
enum pwfile_status pwfile_next(FILE *f, struct pwfile_line *l);
/* Whether the entry l holds is the account name (NUL-terminated). */
int pwfile_is(const struct pwfile_line *l, const char *name);
/* Whether name can be written as an account: 1 to PWFILE_NAME_MAX octets,
 * no colon, white space or control character, not starting with '#'. */
int pwfile_name_ok(const char *name);
/* One line of text for an error status of file: "FILE:N: what" or
 * "cannot read FILE: reason". */
void pwfile_why(const struct pwfile_line *l, enum pwfile_status s, const char *file, char *why,
		size_t whylen);

#endif
