/* mailbox: one interface over the mailbox formats, in files of their own:
 * mbox.c (mboxrd, dotlock + lockf), maildir.c, mh.c (plain MH with the
 * unseen sequence) and numbered.c (MH with a status file per message).
 *
 * Appending: a message (a file descriptor and its size, LF line ends) with
 * a header block in front goes to <spool>/<user> in the format asked for;
 * it is there whole and fsynced, or the mailbox is as it was, and the
 * result is 0 or an errno value (ETIMEDOUT: the lock was not free), with
 * the reason in job->why.  Below the spool every file is reached through
 * directory descriptors and never through a symlink: the recipient may
 * rename anything in their folder at any moment.  The locks are lock.c's.
 * Nothing here knows SMTP or the caller's idea of the message (a count of
 * its From lines, say): the formats work from the bytes.
 */
#ifndef MAILSLOT_MAILBOX_H
#define MAILSLOT_MAILBOX_H

#include <sys/types.h>
#include <time.h>

#include "config.h"

struct mailbox_msg {
	int fd;			/* the spooled message, read with pread */
	off_t size;
	const char *sender;	/* "" for the null sender (mbox's From_ line) */
	const char *qid;	/* for temporary names */
	time_t arrived;
	const char *hostname;	/* Maildir names */
};

/* What each format gets: the mailbox directory entry, the header block to
 * put in front of the message, and who must own what it opens. */
struct mailbox_job {
	const char *spool;
	const char *user;	/* one file name: no '/', no leading dot */
	const struct mailbox_msg *msg;
	const char *prefix;	/* Return-Path:, Delivered-To: lines */
	size_t prefix_len;
	uid_t owner, owner_alt;	/* who may own the mailbox */
	long long lock_timeout;
	char *why;		/* filled on failure */
	size_t why_len;
};

int mailbox_append(enum mail_format format, struct mailbox_job *job);

/* --- for the formats ---------------------------------------------------- */

/* Write all of buf, at *offset when given: 0, or -1 with errno. */
int mailbox_write(int fd, const char *buf, size_t len, off_t *offset);
/* The message, as it is, to fd at *offset (or the current position). */
int mailbox_copy(const struct mailbox_msg *m, int fd, off_t *offset);
/* Create name in dirfd, exclusively (an existing name, perhaps a link
 * someone left for us, gives EEXIST), holding the header block and the
 * message, fsynced; removed again on failure.  0 or errno. */
int mailbox_new_file(struct mailbox_job *job, int dirfd, const char *name);
/* The spool directory: a descriptor, or -errno (job->why filled). */
int mailbox_open_spool(struct mailbox_job *job);
/* The directory name in parentfd (shown as shown in messages), made 0700
 * when missing, never through a symlink, owned by the recipient: a
 * descriptor, or -errno (-EPERM with job->why filled when refused). */
int mailbox_open_dir(struct mailbox_job *job, int parentfd, const char *name, const char *shown);
/* Remove name in dirfd (shown as dir in the log) when it is a regular file
 * untouched for MAILBOX_STALE_TEMP_SECONDS: what a killed delivery left. */
#define MAILBOX_STALE_TEMP_SECONDS (36L * 3600)	/* the Maildir rule */
void mailbox_drop_stale(int dirfd, const char *dir, const char *name);

/* The formats. */
int mbox_append(struct mailbox_job *job);
int maildir_append(struct mailbox_job *job);
int mh_append(struct mailbox_job *job);
int numbered_append(struct mailbox_job *job);
/* mboxrd: lines of a message that quoting changes (^>*From ). */
unsigned mbox_count_from_lines(int fd, off_t size);

#endif
