/* deliver: local delivery of a spooled message to one mailbox, in the
 * configured format (mbox.c, maildir.c, mh.c behind one interface).
 *
 * The message is read from the spool file; Return-Path: and Delivered-To:
 * go in front of it.  A delivery either completes durably (fsynced, the
 * 250 may be sent) or leaves the mailbox as it was and reports a temporary
 * failure with its SMTP code; delivery code never writes SMTP replies.
 * When the process may act as the recipient (started as root, a system
 * account), files are opened with the recipient's identity (setfsuid), so
 * permissions are checked as the user and new mailboxes are the user's.
 */
#ifndef MAILSLOT_DELIVER_H
#define MAILSLOT_DELIVER_H

#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "users.h"

struct delivery {
	int msgfd;		/* the spooled message (LF line ends) */
	off_t size;
	unsigned from_lines;	/* lines mboxrd quoting changes: advisory only,
				 * mbox counts and quotes for itself */
	const char *sender;	/* "" for the null sender */
	const char *qid;
	time_t arrived;
	const char *hostname;
};

enum deliver_status { DELIVER_OK, DELIVER_TEMP };

struct deliver_result {
	enum deliver_status status;
	int code;
	const char *enhanced;
	char text[200];		/* for the SMTP reply */
	char detail[200];	/* the reason, for the log and the queue */
};

/* What each format gets: the mailbox directory entry, the header block to
 * put in front of the message, and who must own what it opens. */
struct mailbox_job {
	const char *spool;
	const char *user;
	const struct delivery *msg;
	const char *prefix;	/* Return-Path:, Delivered-To: lines */
	size_t prefix_len;
	uid_t owner, owner_alt;	/* who may own the mailbox */
	long long lock_timeout;
	char *why;		/* filled on failure */
	size_t why_len;
};

void deliver_local(const struct config *cfg, const struct delivery *d, const struct target *t,
		   struct deliver_result *res);

/* Shared by the formats: copy the spooled message to fd at *offset (or the
 * current position when offset is NULL), as it is. */
int deliver_copy(const struct delivery *d, int fd, off_t *offset);
/* Lines of a stored message that mboxrd quoting changes (^>*From ): the
 * mbox module's count (mbox_count_from_lines), kept for the relay. */
unsigned deliver_count_from_lines(int fd, off_t size);
unsigned mbox_count_from_lines(int fd, off_t size);
/* Write all of buf, at *offset when given. */
int deliver_write(int fd, const char *buf, size_t len, off_t *offset);
/* Create name in dirfd, exclusively (an existing name, perhaps a link
 * someone left for us, gives EEXIST), holding the header block and the
 * message, fsynced; removed again on failure.  0 or errno. */
int deliver_new_file(struct mailbox_job *job, int dirfd, const char *name);
/* The spool directory: a descriptor, or -errno (job->why filled). */
int deliver_open_spool(struct mailbox_job *job);
/* The directory name in parentfd (shown as shown in messages), made 0700
 * when missing, never through a symlink, owned by the recipient: a
 * descriptor, or -errno (-EPERM with job->why filled when refused). */
int deliver_open_dir(struct mailbox_job *job, int parentfd, const char *name, const char *shown);
/* Remove name in dirfd (shown as dir in the log) when it is a regular file
 * untouched for DELIVER_STALE_TEMP_SECONDS: what a killed delivery left. */
#define DELIVER_STALE_TEMP_SECONDS (36L * 3600)	/* the Maildir rule */
void deliver_drop_stale(int dirfd, const char *dir, const char *name);
/* lockf(fd) for writing, waiting until deadline (monotonic ms): 0, or an
 * errno value (ETIMEDOUT when the holder kept it). */
int deliver_lock_wait(int fd, long long deadline);
/* Monotonic milliseconds and a short sleep, for lock waits. */
long long deliver_now_ms(void);
void deliver_pause(int attempt);

/* The formats; 0 or an errno value (ETIMEDOUT: the lock was not free). */
int mbox_deliver(struct mailbox_job *job);
int maildir_deliver(struct mailbox_job *job);
int mh_deliver(struct mailbox_job *job);
int numbered_deliver(struct mailbox_job *job);

#endif
