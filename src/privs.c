/* privs: drop root to the --user account, keeping only CAP_SETUID/CAP_SETGID
 * (not effective) so that a delivery can take the recipient's file-system
 * identity; file permissions are then checked as the recipient. */
#include "privs.h"
#include "users.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEEP_CAPS ((1ULL << CAP_SETUID) | (1ULL << CAP_SETGID))

static int switching;		/* root dropped to run_uid with the caps above */
static uid_t run_uid;
static gid_t run_gid;

static int set_caps(uint64_t permitted, uint64_t effective)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof data);
	data[0].permitted = (uint32_t)permitted;
	data[1].permitted = (uint32_t)(permitted >> 32);
	data[0].effective = (uint32_t)effective;
	data[1].effective = (uint32_t)(effective >> 32);
	return (int)syscall(SYS_capset, &hdr, data);
}

int privs_drop(const struct config *cfg, char *err, size_t errlen)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	pw = users_getpw(cfg->run_user);
	if (!pw) {
		snprintf(err, errlen, "unknown user '%s' (--user)", cfg->run_user);
		return PRIVS_BAD_USER;
	}
	if (pw->pw_uid == 0) {
		/* asked to stay root: deliveries still act as the recipient */
		switching = 1;
		return 0;
	}
	run_uid = pw->pw_uid;
	run_gid = pw->pw_gid;
	gid_t groups[64];
	int ngroups = users_groups(pw->pw_name, pw->pw_gid, groups, 64);
	if (setgroups((size_t)ngroups, groups) == -1 || prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) == -1 ||
	    setresgid(run_gid, run_gid, run_gid) == -1 || setresuid(run_uid, run_uid, run_uid) == -1 ||
	    prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) == -1 || set_caps(KEEP_CAPS, 0) == -1) {
		snprintf(err, errlen, "cannot become user '%s': %s", cfg->run_user, strerror(errno));
		return -1;
	}
	switching = 1;
	return 0;
}

int privs_can_switch(void)
{
	return switching;
}

int privs_become(uid_t uid, gid_t gid)
{
	if (!switching)
		return -1;
	if (run_uid != 0 && set_caps(KEEP_CAPS, KEEP_CAPS) == -1)
		return -1;
	setfsgid(gid);
	setfsuid(uid);
	/* nothing effective while touching the recipient's files */
	if (run_uid != 0)
		set_caps(KEEP_CAPS, 0);
	return (uid_t)setfsuid((uid_t)-1) == uid ? 0 : -1;
}

void privs_restore(void)
{
	if (!switching)
		return;
	if (run_uid != 0)
		set_caps(KEEP_CAPS, KEEP_CAPS);
	setfsuid(run_uid);
	setfsgid(run_gid);
	if (run_uid != 0)
		set_caps(KEEP_CAPS, 0);
}
