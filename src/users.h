/* users: who is local.  Local domains, the users file or the system
 * accounts, and the aliases file.
 *
 * A recipient at a local domain resolves to one or more targets: a local
 * mailbox (a user name that is safe as a file name, with the account's
 * uid/gid when it comes from the system accounts) or a remote address
 * (an alias may forward).  Local parts compare case-insensitively.
 * postmaster always resolves (RFC 5321 4.5.1): through an alias, a user of
 * that name, root's mailbox, or a mailbox named postmaster.
 * Aliases expand recursively, at most USERS_ALIAS_DEPTH deep.
 */
#ifndef MAILSLOT_USERS_H
#define MAILSLOT_USERS_H

#include <pwd.h>
#include <sys/types.h>

#include "addr.h"
#include "config.h"

#define USER_NAME_MAX 64
#define USERS_ALIAS_DEPTH 8

struct target {
	int remote;				/* forward to address, else deliver to user */
	char user[USER_NAME_MAX + 1];		/* mailbox name in the spool */
	char address[ADDR_MAILBOX_MAX + 1];	/* Delivered-To, or where to forward */
	int has_ids;				/* a system account: deliver as uid/gid */
	uid_t uid;
	gid_t gid;
};

enum users_result { USERS_FOUND, USERS_UNKNOWN, USERS_TOO_MANY };

/* Load the users and aliases files.  0, or -1 with a one-line reason. */
int users_init(const struct config *cfg, char *err, size_t errlen);
int users_local_domain(const char *domain);
/* Resolve local@domain (domain local).  Appends to out[*n], at most max. */
enum users_result users_resolve(const char *local, const char *domain,
				struct target *out, int max, int *n);
/* Append t to out[*n] unless the same mailbox (or remote address, in any
 * case) is there already: one copy per mailbox.  USERS_TOO_MANY past max. */
enum users_result users_add_target(struct target *out, int max, int *n, const struct target *t);
int users_name_ok(const char *name);
/* An account from /etc/passwd (NSS only as a fallback), and its groups
 * from /etc/group: the primary first, at most max. */
struct passwd *users_getpw(const char *name);
struct passwd *users_getpwuid(uid_t uid);
int users_groups(const char *name, gid_t primary, gid_t *out, int max);
/* The mailbox user "name" (already lower case): 1 and *t filled, or 0. */
int users_lookup(const char *name, struct target *t);

#endif
