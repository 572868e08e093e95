/* fdpass: one fixed-size record, and perhaps a descriptor with it, over a
 * SOCK_SEQPACKET socket; and the end of the session child.
 *
 * The two halves of a connection (privsep.h for SMTP, pop3mon.h for POP3)
 * talk in whole records: a record of another size, a truncated one or a
 * truncated control message is an error, never half a request.  A
 * descriptor travels as SCM_RIGHTS and arrives close-on-exec.  Interrupted
 * calls are retried; nothing here blocks longer than the peer makes it.
 */
#ifndef MAILSLOT_FDPASS_H
#define MAILSLOT_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define FDPASS_MAX 32	/* descriptors with one record at the most */

/* Send len octets of msg, with fd when fd >= 0: 0, or -1 (errno). */
int fdpass_send(int sock, const void *msg, size_t len, int fd);
/* Receive exactly len octets into msg; *fd gets the descriptor that came
 * with them, or -1.  0, or -1 (end of the peer, an error, or a record that
 * was not len octets; no descriptor is then left open). */
int fdpass_recv(int sock, void *msg, size_t len, int *fd);
/* The same with up to FDPASS_MAX descriptors: nfds of fds sent; at most
 * max received into fds, *nfds of them (more are closed). */
int fdpass_send_fds(int sock, const void *msg, size_t len, const int *fds, size_t nfds);
int fdpass_recv_fds(int sock, void *msg, size_t len, int *fds, size_t max, size_t *nfds);

/* The monitor's next request from the session: 1 a record of exactly len
 * octets in req, 0 the session's end, -1 a record of another size. */
int fdpass_request(int sock, void *req, size_t len);
/* A malformed request: logged, the session killed (SIGKILL). */
void fdpass_malformed(pid_t child);

/* Reap the session child and log an abnormal end (a signal: SIGSYS is a
 * system call outside the sandbox's allow-list; SIGALRM is
 * --max-session-time; a non-zero exit status). */
void fdpass_reap(pid_t child);

/* The monitor's descriptors 0 and 1 (and 2 when it is the socket) become
 * /dev/null: the session's close must be the connection's end. */
void fdpass_leave_connection(void);

#endif
