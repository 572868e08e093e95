/* queue: the on-disk queue shared by mailslot-smtpd and mailslot-relay.
 *
 * An entry is two files named by its queue id:
 *   <queue>/msg/<id>   the message as stored (LF line ends, our Received: first)
 *   <queue>/env/<id>   the envelope, text, one item a line (format in queue.c)
 * Both are written under <queue>/tmp, fsynced, then given their final name;
 * the envelope is named last, so an entry exists exactly when env/<id> does.
 * The message being received is spooled to an unnamed file (O_TMPFILE) in
 * <queue>/tmp, so that a connection killed at any point leaves nothing.
 * Addresses never travel on a command line: the envelope is a file.
 */
#ifndef MAILSLOT_QUEUE_H
#define MAILSLOT_QUEUE_H

#include <stddef.h>
#include <sys/types.h>

#include "addr.h"

#define QUEUE_ID_MAX 32
#define QUEUE_USER_MAX 64
#define QUEUE_ERROR_MAX 256
#define QUEUE_CLIENT_MAX 300
#define QUEUE_LINE_MAX 1024

struct env_rcpt {
	char address[ADDR_MAILBOX_MAX + 1];
	char user[QUEUE_USER_MAX + 1];	/* local mailbox to retry, "" when remote */
	unsigned attempts;
	long long next_attempt;		/* seconds since the epoch, 0 = now */
	char last_error[QUEUE_ERROR_MAX];
};

struct envelope {
	char id[QUEUE_ID_MAX];
	long long arrived;
	char sender[ADDR_MAILBOX_MAX + 1];	/* "" for the null sender */
	char client[QUEUE_CLIENT_MAX];		/* helo name and address, for bounces */
	int nrcpt;
	struct env_rcpt *rcpt;
};

void queue_new_id(char *out, size_t outsz);
/* A queue id as a file name may hold it: letters and digits, bounded. */
int queue_id_ok(const char *name);
/* The queue directory is there and is a directory, and with writable
 * this account may add to it: 0, or an errno value (ENOTDIR, EACCES...). */
int queue_dir_usable(const char *qdir, int writable);
/* Make <queue>/{tmp,msg,env} when missing, mode 0770 whatever the umask. */
int queue_prepare(const char *qdir);
/* An unnamed file in <queue>/tmp for the message being received. */
int queue_spool_open(const char *qdir);
/* Name the spooled message and write its envelope, durably. 0 or -1 (errno). */
int queue_commit(const char *qdir, int msgfd, const struct envelope *env);

/* For the relay: open and lock msg/<id> (flock, not waiting: -1 with
 * EWOULDBLOCK when another run holds it), then read env/<id>. */
int queue_lock(const char *qdir, const char *id);
int queue_read_env(const char *qdir, const char *id, struct envelope *env, const char **why);
/* Replace env/<id> durably (tmp, fsync, rename), or remove the entry when
 * no recipient is left (envelope first, then the message). */
int queue_update(const char *qdir, const struct envelope *env);
int queue_remove(const char *qdir, const char *id);
/* Queue ids in env/, sorted, for one pass; free with queue_free_ids. */
int queue_list_ids(const char *qdir, char ***ids, int *n);
void queue_free_ids(char **ids, int n);
/* Remove files a crash can leave: msg/ without env/ and tmp/ older than age. */
void queue_sweep(const char *qdir, long long age);

/* Envelope text; parse returns 0 or -1 with *why set.  free with queue_env_free. */
int queue_env_write(int fd, const struct envelope *env);
int queue_env_parse(const char *text, size_t len, struct envelope *env, const char **why);
void queue_env_free(struct envelope *env);

#endif
