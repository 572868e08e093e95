/* lock: the one lock protocol of mailslot's mailboxes, for writers and
 * readers alike.
 *
 * An mbox is locked by the dotlock <mailbox>.lock, then lockf(3) on the
 * mailbox: the pair Dovecot, mutt and Postfix's local(8) respect on Linux.
 * Our dotlock appears whole (an unnamed file, locked and written, then
 * linked to its name) and carries a lockf lock while its holder lives, so
 * a mailslot dotlock whose lockf can be taken is stale for certain; a
 * foreign one is stale when its pid is dead or it is older than 500 s
 * (--stale-lock-time, Postfix's stale_lock_time).  A
 * stale dotlock is renamed aside and removed only if it is still the file
 * judged stale; one that cannot be removed counts as held.  Every wait ends
 * at a deadline (monotonic ms), with ETIMEDOUT.  The holder may record a
 * line on its dotlock (an extended attribute, or the text where the file
 * system has none); the record of a dead holder is handed to the next
 * taker, so that it can undo what the dead one left (mbox.c's repair).
 * MH folders and the numbered layout lock .mh_sequences with lockf alone.
 */
#ifndef MAILSLOT_LOCK_H
#define MAILSLOT_LOCK_H

#include <limits.h>
#include <sys/types.h>

#define LOCK_STALE_SECONDS 500	/* Postfix's stale_lock_time */
#define LOCK_RECORD_MAX 96

struct dotlock {
	int fd;			/* ours while held */
	int dirfd;		/* the directory every name is looked up in */
	char name[NAME_MAX + 1];	/* <mailbox>.lock */
	char path[PATH_MAX];	/* the same, for the log */
	uid_t owner, owner_alt;	/* who our own dotlocks belong to */
	long long stale_seconds;	/* a foreign dotlock's age limit; 0: LOCK_STALE_SECONDS */
	int warned;		/* "cannot remove" logged once per take */
	int have_record;	/* a dead holder's record, from a lock we could have made */
	char record[LOCK_RECORD_MAX];
};

/* A pause of 10 ms growing to 200 ms (deadlines are clock.h's clock_ms). */
void lock_pause(int attempt);
/* lockf(fd) for writing, waiting until deadline: 0, or an errno value
 * (ETIMEDOUT when the holder kept it). */
int lock_wait(int fd, long long deadline);
/* Take dl->name in dl->dirfd (fd, dirfd, name, path, owner and owner_alt
 * filled in): 0, or an errno value (ETIMEDOUT: a live lock was kept). */
int lock_dotlock_take(struct dotlock *dl, long long deadline);
/* Record text (at most LOCK_RECORD_MAX - 1 octets, no newline) on the
 * held dotlock, durably: 0 or an errno value. */
int lock_dotlock_record(struct dotlock *dl, const char *text);
void lock_dotlock_release(struct dotlock *dl);
/* An MH or numbered folder (dirfd): lockf on its .mh_sequences, made when
 * missing, waiting until deadline.  0 with *lockfd to close, or an errno. */
int lock_folder(int dirfd, long long deadline, int *lockfd);

#endif
