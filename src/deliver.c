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
	res->status = DELIVER_TEMP;
	snprintf(res->detail, sizeof res->detail, "%s", why);
	switch (err) {
	case ETIMEDOUT:
		res->code = 451;
		res->enhanced = "4.2.0";
		snprintf(res->text, sizeof res->text, "Mailbox busy (locked), try again later");
		break;
	case ENOSPC:
		res->code = 452;
		res->enhanced = "4.3.1";
		snprintf(res->text, sizeof res->text, "Insufficient system storage");
		break;
	case EDQUOT:
		res->code = 452;
		res->enhanced = "4.2.2";
		snprintf(res->text, sizeof res->text, "Mailbox full");
		break;
	default:
		res->code = 451;
		res->enhanced = "4.3.0";
		/* the reason names paths: it goes to the log and the queue, not the client */
		snprintf(res->text, sizeof res->text, "Local delivery failed, try again later");
		break;
	}
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
		.lock_timeout = cfg->lock_timeout, .why = why, .why_len = sizeof why,
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
		res->status = DELIVER_OK;
		res->code = 250;
		res->enhanced = "2.0.0";
		snprintf(res->text, sizeof res->text, "delivered");
		return;
	}
	if (!why[0] && err == ETIMEDOUT)
		snprintf(why, sizeof why, "the mailbox lock was still held after %lld s", cfg->lock_timeout);
	else if (!why[0])
		snprintf(why, sizeof why, "%s", strerror(err));
	log_msg(LOG_WARNING, "%s: delivery to %s (%s) failed: %s", d->qid, t->address, t->user, why);
	fill_failure(res, err, why);
}
