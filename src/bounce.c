/* bounce: build and queue an RFC 3464 report to the envelope sender. */
#include "bounce.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "fileio.h"
#include "users.h"

#define HEADERS_MAX ((off_t)64 * 1024)	/* original headers returned, at most */

struct out {
	int fd;
	int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || o->err)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	if (fileio_write(o->fd, buf, (size_t)n, NULL) == -1)
		o->err = errno;
}

static void rfc5322_date(time_t t, char *out, size_t outsz)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, outsz, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* The header section of the stored message, up to its first empty line. */
static void copy_headers(struct out *o, int msgfd)
{
	char buf[8192];
	off_t off = 0;
	int prev_nl = 1;

	while (off < HEADERS_MAX && !o->err) {
		ssize_t n = pread(msgfd, buf, sizeof buf, off);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && prev_nl) {
				if (fileio_write(o->fd, buf, (size_t)i, NULL) == -1)
					o->err = errno;
				return;
			}
			prev_nl = buf[i] == '\n';
		}
		if (fileio_write(o->fd, buf, (size_t)n, NULL) == -1)
			o->err = errno;
		off += n;
	}
}

static void write_report(struct out *o, const struct config *cfg, const struct envelope *orig, int msgfd,
			 const struct rcpt_result *res, const char *newid)
{
	char date[64], arrival[64], boundary[64];
	time_t now = time(NULL);

	rfc5322_date(now, date, sizeof date);
	rfc5322_date((time_t)orig->arrived, arrival, sizeof arrival);
	snprintf(boundary, sizeof boundary, "%s/%s", newid, cfg->hostname);
	put(o, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", cfg->hostname);
	put(o, "To: <%s>\n", orig->sender);
	put(o, "Subject: Undelivered Mail Returned to Sender\n");
	put(o, "Date: %s\n", date);
	put(o, "Message-ID: <%s.bounce@%s>\n", newid, cfg->hostname);
	put(o, "Auto-Submitted: auto-replied\n");	/* RFC 3834 */
	put(o, "MIME-Version: 1.0\n");
	put(o, "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"\n\n", boundary);
	put(o, "This is a MIME-encapsulated message.\n\n--%s\n", boundary);
	put(o, "Content-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n");
	put(o, "This is the mail system at host %s.\n\n", cfg->hostname);
	put(o, "Your message (queue id %s) could not be delivered to one or more\n", orig->id);
	put(o, "recipients. It is attached below.\n\n");
	for (int i = 0; i < orig->nrcpt; i++)
		if (res[i].outcome == OUT_PERM)
			put(o, "<%s>: %s\n", orig->rcpt[i].address, res[i].text);
	put(o, "\n--%s\n", boundary);
	put(o, "Content-Description: Delivery report\nContent-Type: message/delivery-status\n\n");
	put(o, "Reporting-MTA: dns; %s\nX-Mailslot-Queue-ID: %s\nArrival-Date: %s\n", cfg->hostname, orig->id, arrival);
	for (int i = 0; i < orig->nrcpt; i++) {
		if (res[i].outcome != OUT_PERM)
			continue;
		put(o, "\nFinal-Recipient: rfc822; %s\nAction: failed\nStatus: %s\n", orig->rcpt[i].address,
		    res[i].status);
		if (res[i].mta[0])
			put(o, "Remote-MTA: dns; %s\n", res[i].mta);
		put(o, "Diagnostic-Code: %s; %s\n", res[i].mta[0] ? "smtp" : "x-mailslot", res[i].text);
		put(o, "Last-Attempt-Date: %s\n", date);
	}
	put(o, "\n--%s\n", boundary);
	put(o, "Content-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n");
	copy_headers(o, msgfd);
	put(o, "\n--%s--\n", boundary);
}

/* The bounce goes to the sender: a local mailbox when the sender's domain
 * is ours, else back out through the queue. */
static int bounce_recipients(const char *sender, struct envelope *env)
{
	const char *at = strrchr(sender, '@');
	int n = 0;

	env->rcpt = calloc(16, sizeof *env->rcpt);
	if (!env->rcpt)
		return -1;
	if (at && users_local_domain(at + 1)) {
		struct target t[16];
		char local[ADDR_LOCAL_MAX + 1];
		snprintf(local, sizeof local, "%.*s", (int)(at - sender), sender);
		users_resolve(local, at + 1, t, 16, &n);
		for (int i = 0; i < n; i++) {
			snprintf(env->rcpt[i].address, sizeof env->rcpt[i].address, "%s", t[i].address);
			if (!t[i].remote)
				snprintf(env->rcpt[i].user, sizeof env->rcpt[i].user, "%s", t[i].user);
		}
		env->nrcpt = n;
	}
	if (env->nrcpt == 0) {
		snprintf(env->rcpt[0].address, sizeof env->rcpt[0].address, "%s", sender);
		env->nrcpt = 1;
	}
	return 0;
}

int bounce_queue(const struct config *cfg, const struct envelope *orig, int msgfd,
		 const struct rcpt_result *res, char *newid, size_t newid_len)
{
	struct envelope env = { .arrived = (long long)time(NULL) };
	struct out o;
	int rc = -1;

	newid[0] = '\0';
	if (!orig->sender[0])
		return 0;	/* never bounce a bounce */
	queue_new_id(env.id, sizeof env.id);
	snprintf(env.client, sizeof env.client, "bounce of %s", orig->id);
	o.fd = queue_spool_open(cfg->queue);
	o.err = 0;
	if (o.fd == -1)
		return -1;
	write_report(&o, cfg, orig, msgfd, res, env.id);
	if (o.err) {
		errno = o.err;
		goto out;
	}
	if (bounce_recipients(orig->sender, &env) == -1)
		goto out;
	if (queue_commit(cfg->queue, o.fd, &env) == 0) {
		snprintf(newid, newid_len, "%s", env.id);
		rc = 0;
	}
out:;
	int saved = errno;
	free(env.rcpt);
	close(o.fd);
	errno = saved;
	return rc;
}
