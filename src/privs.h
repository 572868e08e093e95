/* privs: what the privileged part of a connection keeps, and when it uses it.
 *
 * Started by an ordinary user, nothing changes.  Started as root (inetd,
 * xinetd, systemd), the process becomes the --user account before the
 * connection is split (privsep.h), with that account's groups, keeping
 * only CAP_SETUID and CAP_SETGID in the permitted set and none effective.
 * The monitor raises them only inside privs_become(), to take a
 * recipient's file-system uid and gid and to trade the run account's
 * groups for the recipient's primary group (plus the spool directory's
 * group when the spool is group-writable, as Debian's root:mail 2775
 * /var/mail is); privs_restore() gives all of that back.  The session
 * child drops even these (sandbox.h).
 */
#ifndef MAILSLOT_PRIVS_H
#define MAILSLOT_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define PRIVS_BAD_USER (-2)	/* --user names no account: a configuration error */
/* 0, PRIVS_BAD_USER, or -1 when the system refused (err says why). */
int privs_drop(const struct config *cfg, char *err, size_t errlen);
/* The session child, before its sandbox: no supplementary groups (it may
 * fail harmlessly when there is nothing to shed). */
void privs_shed_groups(void);
/* Whether deliveries may take the recipient's identity. */
int privs_can_switch(void);
/* Act as uid/gid for file access (raise, setfsuid); back again after. */
int privs_become(uid_t uid, gid_t gid);
void privs_restore(void);

#endif
