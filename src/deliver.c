/* deliver: identity switch, header block, format dispatch, errno to SMTP code. */
#include "deliver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mailbox.h"
#include "privs.h"

/* Kept for session.c and bounce.c. */
/* The count is the mbox module's: it owns mboxrd quoting (the relay asks). */
unsigned deliver_count_from_lines(int fd, off_t size)
{
	return mbox_count_from_lines(fd, size);
}

static void fill_failure(struct deliver_result *res, int err, const char *why)
{
	/* the reason names paths: it goes to the log and the queue, never to
	 * the client, whose text is status_from_errno's */
	status_from_errno(&res->st, err);
	snprintf(res->detail, sizeof res->detail, "%s", why);
}

void deliver_local(const struct config *cfg, const struct delivery *d, const struct target *t,
		   struct deliver_result *res)
{
	char prefix[2 * ADDR_MAILBOX_MAX + 64], why[160] = "";
	const struct mailbox_msg msg = {
		.fd = d->msgfd, .size = d->size, .sender = d->sender, .qid = d->qid,
		.arrived = d->arrived, .hostname = d->hostname,
	};
	struct mailbox_job job = {
		.spool = cfg->spool, .user = t->user, .msg = &msg, .prefix = prefix,
		.lock_timeout = cfg->lock_timeout, .stale_lock_time = cfg->stale_lock_time,
		.why = why, .why_len = sizeof why,
	};
	int switched = 0, err;

	/* RFC 5321 4.4: Return-Path: is added at final delivery */
	int n = snprintf(prefix, sizeof prefix, "Return-Path: <%s>\nDelivered-To: %s\n", d->sender, t->address);
	job.prefix_len = (size_t)n < sizeof prefix ? (size_t)n : sizeof prefix - 1;
	/* a mailbox belongs to its recipient, or to the account that delivers */
	job.owner = geteuid();
	job.owner_alt = t->has_ids ? t->uid : job.owner;
	if (t->has_ids && privs_can_switch()) {
		if (privs_become(t->uid, t->gid) == -1) {
			privs_restore();
			fill_failure(res, EPERM, "cannot take the recipient's identity");
			return;
		}
		switched = 1;
		job.owner = t->uid;
	}
	err = mailbox_append(cfg->format, &job);
	if (switched)
		privs_restore();
	if (err == 0) {
		status_set(&res->st, 250, "2.0.0", 0, "delivered");
		res->detail[0] = '\0';
		return;
	}
	if (!why[0] && err == ETIMEDOUT)
		snprintf(why, sizeof why, "the mailbox lock was still held after %lld s", cfg->lock_timeout);
	else if (!why[0])
		snprintf(why, sizeof why, "%s", strerror(err));
	char rcpt[2 * ADDR_MAILBOX_MAX + 3], user[2 * USER_NAME_MAX + 3], reason[2 * sizeof why + 3];
	log_msg(LOG_WARNING, "%s: delivery failed to=<%s> mailbox=%s reason=%s", d->qid,
		log_value(rcpt, sizeof rcpt, t->address), log_value(user, sizeof user, t->user),
		log_value(reason, sizeof reason, why));
	fill_failure(res, err, why);
}
