/* privs: what a handler started as root keeps, and when it lets go.
 *
 * Started by an ordinary user, nothing changes.  Started as root (inetd,
 * xinetd), the handler becomes the --user account before it speaks, with
 * its groups, keeping only the capabilities that delivery as another user
 * needs (CAP_SETUID/CAP_SETGID to switch the file-system identity to the
 * recipient, CAP_CHOWN, CAP_DAC_OVERRIDE and CAP_FOWNER for the spool),
 * and none of them in the effective set outside a delivery.
 */
#ifndef MAILSLOT_PRIVS_H
#define MAILSLOT_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define PRIVS_BAD_USER (-2)	/* --user names no account: a configuration error */
/* 0, PRIVS_BAD_USER, or -1 when the system refused (err says why). */
int privs_drop(const struct config *cfg, char *err, size_t errlen);
/* Whether deliveries may take the recipient's identity. */
int privs_can_switch(void);
/* Act as uid/gid for file access (raise, setfsuid); back again after. */
int privs_become(uid_t uid, gid_t gid);
void privs_restore(void);

#endif
