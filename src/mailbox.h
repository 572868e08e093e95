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
 *
 * Reading (mailbox_open and the rest, below) is the same formats seen by
 * a POP3 server: list with sizes and stable unique ids, read one message
 * byte-exact, mark deleted, apply.
 */
#ifndef MAILSLOT_MAILBOX_H
#define MAILSLOT_MAILBOX_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "lock.h"

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
	long long stale_lock_time;	/* --stale-lock-time: a foreign dotlock's age limit */
	char *why;		/* filled on failure */
	size_t why_len;
};

int mailbox_append(enum mail_format format, struct mailbox_job *job);

/* --- for the formats ---------------------------------------------------- */

/* The message, as it is, to fd at *offset (or the current position). */
int mailbox_copy(const struct mailbox_msg *m, int fd, off_t *offset);
/* Create name in dirfd, exclusively (an existing name, perhaps a link
 * someone left for us, gives EEXIST), holding the header block and the
 * message, fsynced; removed again on failure.  0 or errno. */
int mailbox_new_file(struct mailbox_job *job, int dirfd, const char *name);
/* The same under a fresh hidden name ",mailslot.<qid>.<pid>.<n>" (MH
 * readers skip it), put in name: a name someone else made is never written
 * through, the next one is tried.  room octets of name stay free for a
 * suffix.  0 or errno. */
int mailbox_new_temp(struct mailbox_job *job, int dirfd, char *name, size_t namesz, size_t room);
/* The spool directory: a descriptor, or -errno (job->why filled). */
int mailbox_open_spool(struct mailbox_job *job);
/* The directory name in parentfd (shown as shown in messages), made 0700
 * when missing, never through a symlink, owned by the recipient: a
 * descriptor, or -errno (-EPERM with job->why filled when refused). */
int mailbox_open_dir(struct mailbox_job *job, int parentfd, const char *name, const char *shown);
/* The recipient's folder <spool>/<user> (Maildir, MH, numbered), opened as
 * mailbox_open_dir does; its path for messages in shown.  A descriptor,
 * or -errno. */
int mailbox_open_folder(struct mailbox_job *job, char *shown, size_t shownsz);
/* Remove name in dirfd (shown as dir in the log) when it is a regular file
 * untouched for MAILBOX_STALE_TEMP_SECONDS: what a killed delivery left. */
#define MAILBOX_STALE_TEMP_SECONDS (36L * 3600)	/* the Maildir rule */
void mailbox_drop_stale(int dirfd, const char *dir, const char *name);
/* MH numbering: the highest message number in dirfd, counting "N" and,
 * with a sidecar suffix (".status"), "N<sidecar>"; 0 or an errno value. */
int mailbox_highest_number(int dirfd, const char *shown, const char *sidecar, unsigned long *max);

/* The formats. */
int mbox_append(struct mailbox_job *job);
int maildir_append(struct mailbox_job *job);
int mh_append(struct mailbox_job *job);
int numbered_append(struct mailbox_job *job);
/* mboxrd: lines of a message that quoting changes (^>*From ). */
unsigned mbox_count_from_lines(int fd, off_t size);

/* --- reading (the POP3 server's view) -------------------------------------
 *
 * mailbox_open takes the mailbox for the reader: an mbox is locked
 * (dotlock + lockf, lock.c) while the list is made and again while
 * mailbox_apply rewrites it, never in between, so that deliveries go on
 * during a POP3 session; Maildir needs no lock; an MH or numbered folder
 * is locked (.mh_sequences) only while mailbox_apply removes files.  RFC
 * 1939 wants the maildrop exclusive: the reader holds flock(2) on the mbox
 * or the folder until mailbox_close (deliveries do not take it), and a
 * second reader gets EBUSY.  The list is made once, at open; Maildir's
 * new/ messages move to cur/ then, as they are seen.  Each message has a uid that stays the same for
 * as long as the message is in the mailbox, at most 70 printable octets
 * (a POP3 UIDL), and the size and line count of what mailbox_read gives:
 * the message as it was delivered, LF line ends, without mbox's From_ line
 * or its mboxrd quoting (size + lines is the size with CRLF line ends).
 * mailbox_delete only marks (and mailbox_seen: the numbered format's
 * N.status becomes "\Seen" at apply); mailbox_apply removes what is marked (an
 * mbox is rewritten to a new file, renamed over the old one under the
 * lock: it is whole before or after, never between).  All return 0 or an
 * errno value, with the reason in why. */
#define MAILBOX_UID_MAX 71

struct mailbox_entry {
	char uid[MAILBOX_UID_MAX];
	off_t size;		/* octets mailbox_read gives */
	off_t lines;		/* LF in them */
	int deleted;
	int seen;		/* retrieved: the numbered format's status says \Seen after apply */
	char name[NAME_MAX + 1];	/* Maildir: new/ or cur/ and the file name; MH: its number */
	off_t from, end;	/* mbox: the From_ line, the end of the message's block */
	off_t start, len;	/* mbox: the stored (quoted) message after its From_ line */
};

struct mailbox {
	enum mail_format format;
	int dirfd;		/* the folder (Maildir, MH, numbered) or the spool (mbox) */
	int fd;			/* mbox: the mailbox, locked */
	struct dotlock dl;	/* mbox: held while listing and applying */
	dev_t dev;		/* mbox: the file listed, and its size then */
	ino_t ino;
	off_t scanned;
	struct mailbox_entry *entry;
	size_t count;
	long long lock_timeout;
	uid_t owner;
	char path[PATH_MAX];	/* for messages */
	char user[NAME_MAX + 1];
	char *why;
	size_t why_len;
};

/* Open <spool>/<user> as a reader acting as owner (the recipient). */
int mailbox_open(struct mailbox *mb, enum mail_format format, const char *spool, const char *user, uid_t owner,
		 long long lock_timeout, char *why, size_t why_len);
/* Message i (0-based) to outfd, byte-exact as delivered. */
int mailbox_read(struct mailbox *mb, size_t i, int outfd);
int mailbox_delete(struct mailbox *mb, size_t i);
int mailbox_seen(struct mailbox *mb, size_t i);
int mailbox_apply(struct mailbox *mb);
void mailbox_close(struct mailbox *mb);

/* The formats' readers, behind those. */
int mbox_scan(struct mailbox *mb);
int mbox_read(struct mailbox *mb, const struct mailbox_entry *e, int outfd);
int mbox_apply(struct mailbox *mb);
/* MH: take the numbers gone (sorted) out of every sequence in the locked
 * .mh_sequences, as nmh's rmm does. */
int mh_drop_from_sequences(int seqfd, const unsigned long *gone, size_t ngone);
/* mboxrd unquoting: copy len octets of fd at start to outfd, one '>' less
 * on every line matching ^>+From ; counts the LF written in *lines. */
int mbox_unquote_copy(int fd, off_t start, off_t len, int outfd, off_t *written, off_t *lines);
/* The same into sink, piece by piece (NULL: only count).  The sink
 * returns 0 to go on, 1 to stop there (0 returned), -1 with errno. */
typedef int (*mailbox_sink)(void *ctx, const char *buf, size_t len);
int mbox_unquote(int fd, off_t start, off_t len, mailbox_sink sink, void *ctx, off_t *written, off_t *lines);
/* For a reader that copies message i itself (a sandboxed POP3 session):
 * a new read-only descriptor in which it is the octets [*start, *start +
 * *len), mboxrd-quoted when *quoted (mbox: the mailbox listed, else
 * ESTALE; otherwise the message's own file).  The descriptor, or -errno. */
int mailbox_message_fd(struct mailbox *mb, size_t i, off_t *start, off_t *len, int *quoted);
/* Where message i is in that descriptor, without opening it. */
void mailbox_message_place(const struct mailbox *mb, size_t i, off_t *start, off_t *len, int *quoted);

/* For the readers: one more entry in mb (NULL with errno when the list is
 * full), and a 64-bit FNV-1a hash for uids. */
struct mailbox_entry *mailbox_add_entry(struct mailbox *mb);
uint64_t mailbox_hash(const void *data, size_t len, uint64_t h);

#endif
