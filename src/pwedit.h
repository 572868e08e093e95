/* pwedit: one account of a name:HASH file set or removed, atomically and
 * under a lock, for mailslot-passwd.
 *
 * The new file is written beside the old one (FILE.XXXXXX, made with
 * O_EXCL), given the old file's mode, owner and group, fsynced and renamed
 * over it, then the directory is fsynced: a reader (authdb) sees the old
 * file or the new one, never a mix, and a run killed at any point leaves
 * the old file whole (at worst a FILE.XXXXXX beside it).  Runs exclude
 * each other with lockf(3) on FILE itself, held until after the rename;
 * a run that waited finds the name now on a new inode and starts again on
 * that one, so two concurrent changes never lose one.  A missing FILE is
 * made by link(2) of the finished temporary file (mode 0640), which fails
 * if another run made it first; that run's file is then edited instead.
 *
 * Every other line is copied octet for octet.  Setting replaces the hash
 * of the user's first line and keeps its fields after the hash (a Dovecot
 * scheme prefix on the old hash becomes {CRYPT}), or appends "user:hash";
 * removing drops every line of the user, so that no older line of theirs
 * can take over.  A file that pwfile.h refuses is not rewritten.
 */
#ifndef MAILSLOT_PWEDIT_H
#define MAILSLOT_PWEDIT_H

#include <stddef.h>

#define PWEDIT_LOCK_SECONDS 10	/* the longest wait for another run */

/* Set user's hash (hash non-NULL) or remove user (hash NULL) in file.
 * 0, or a sysexits(3) status with one line of text in why: 65 the file has
 * a bad line, 66 it cannot be opened (or is missing, when removing), 67
 * no such user to remove, 73 the new file cannot be made, 74 an I/O
 * error, 75 another run held the lock for PWEDIT_LOCK_SECONDS. */
int pwedit_apply(const char *file, const char *user, const char *hash, char *why, size_t whylen);

#endif
