/* privs: drop root to the --user account, keeping only CAP_SETUID/CAP_SETGID
 * (not effective) so that a delivery can take the recipient's file-system
 * identity and groups; file permissions are then checked as the recipient. */
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEEP_CAPS ((1ULL << CAP_SETUID) | (1ULL << CAP_SETGID))

#define RUN_GROUPS_MAX 64

static int switching;		/* root dropped to run_uid with the caps above */
static uid_t run_uid;
static gid_t run_gid;
static gid_t run_groups[RUN_GROUPS_MAX];	/* restored after each delivery */
static int run_ngroups;
static gid_t spool_gid = (gid_t)-1;	/* the group of a group-writable spool */

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
	struct stat st;

	if (geteuid() != 0)
		return 0;
	/* Debian's /var/mail is root:mail 2775: mbox files and dot-locks are
	 * created there through the group, as by a setgid-mail MDA */
	if (cfg->spool && stat(cfg->spool, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & S_IWGRP))
		spool_gid = st.st_gid;
	pw = users_getpw(cfg->run_user);
	if (!pw) {
		snprintf(err, errlen, "unknown user '%s' (--user)", cfg->run_user);
		return PRIVS_BAD_USER;
	}
	if (pw->pw_uid == 0) {
		/* asked to stay root: deliveries still act as the recipient */
		run_ngroups = getgroups(RUN_GROUPS_MAX, run_groups);
		if (run_ngroups == -1) {
			snprintf(err, errlen, "cannot read root's groups: %s", strerror(errno));
			return -1;
		}
		switching = 1;
		return 0;
	}
	run_uid = pw->pw_uid;
	run_gid = pw->pw_gid;
	run_ngroups = users_groups(pw->pw_name, pw->pw_gid, run_groups, RUN_GROUPS_MAX);
	if (setgroups((size_t)run_ngroups, run_groups) == -1 || prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) == -1 ||
	    setresgid(run_gid, run_gid, run_gid) == -1 || setresuid(run_uid, run_uid, run_uid) == -1 ||
	    prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) == -1 || set_caps(KEEP_CAPS, 0) == -1) {
		snprintf(err, errlen, "cannot become user '%s': %s", cfg->run_user, strerror(errno));
		return -1;
	}
	switching = 1;
	return 0;
}

void privs_shed_groups(void)
{
	if (!switching)
		return;
	if (run_uid != 0)
		set_caps(KEEP_CAPS, 1ULL << CAP_SETGID);
	setgroups(0, NULL);
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
	/* the run account's groups would otherwise reach what the recipient
	 * cannot; only a group-writable spool's own group stays */
	gid_t groups[2] = { gid, spool_gid };
	size_t ngroups = spool_gid != (gid_t)-1 && spool_gid != gid ? 2 : 1;
	if (setgroups(ngroups, groups) == -1)
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
	setgroups((size_t)run_ngroups, run_groups);
	if (run_uid != 0)
		set_caps(KEEP_CAPS, 0);
}
