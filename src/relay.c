/* relay: main of mailslot-relay.  Runs the queue once and exits: for each
 * entry (locked, so two runs never deliver the same recipient), groups the
 * due recipients by domain, has remote.c deliver each group over one
 * connection, and records one status per recipient: done (removed), retry
 * later (growing delay), or failed for good (bounced to the sender).
 * Local recipients that failed in mailslot-smtpd are retried with the same
 * delivery code (deliver.c).
 * Exit status (sysexits): 0 the run completed, 64 usage, 71 out of memory
 * or the system refused the switch to --user, 74 the queue is missing or
 * could not be read or prepared, 75 an entry named by --delete or --bounce
 * is locked by a run (try again), 78 configuration.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "config.h"
#include "deliver.h"
#include "log.h"
#include "mx.h"
#include "privs.h"
#include "queue.h"
#include "remote.h"
#include "users.h"

#define EX_USAGE 64
#define EX_IOERR 74
#define EX_CONFIG 78
#define SWEEP_AGE (24LL * 3600)	/* crash leftovers older than this are removed */

static const struct config *cfg;

static long long backoff(unsigned attempts)
{
	long long delay = cfg->min_backoff;

	for (unsigned i = 1; i < attempts && delay < cfg->max_backoff; i++)
		delay *= 2;
	return delay < cfg->max_backoff ? delay : cfg->max_backoff;
}

static void deliver_local_rcpt(const struct envelope *env, int msgfd, off_t size, const struct env_rcpt *er,
			       struct rcpt_result *r)
{
	struct target t = { 0 };
	struct deliver_result dr;
	struct delivery d = { .msgfd = msgfd, .size = size, .sender = env->sender, .qid = env->id,
			      .arrived = (time_t)env->arrived, .hostname = cfg->hostname };

	if (!users_lookup(er->user, &t)) {
		rcpt_result_set(r, OUT_PERM, "5.1.1", NULL, "mailbox %s no longer exists", er->user);
		return;
	}
	snprintf(t.address, sizeof t.address, "%s", er->address);
	/* mboxrd needs the count of lines to quote, as the DATA reader gives it */
	d.from_lines = deliver_count_from_lines(msgfd, size);
	deliver_local(cfg, &d, &t, &dr);
	if (dr.st.kind == STATUS_OK)
		rcpt_result_set(r, OUT_SENT, "2.0.0", NULL, "delivered to mailbox %s", er->user);
	else
		rcpt_result_set(r, OUT_TEMP, dr.st.enhanced, NULL, "%s", dr.detail);
}

static void log_result(const struct envelope *env, const struct env_rcpt *er, const struct rcpt_result *r)
{
	static const char *const names[] = { "pending", "sent", "deferred", "bounced" };
	char f_id[64], f_rcpt[ADDR_MAILBOX_MAX + 32], f_status[48];
	const char *fields[] = { f_id, f_rcpt, f_status, NULL };

	snprintf(f_id, sizeof f_id, "MAILSLOT_QUEUE_ID=%s", env->id);
	snprintf(f_rcpt, sizeof f_rcpt, "MAILSLOT_RCPT=%s", er->address);
	snprintf(f_status, sizeof f_status, "MAILSLOT_STATUS=%s", names[r->outcome]);
	log_fields(r->outcome == OUT_TEMP ? LOG_NOTICE : LOG_INFO, fields, "%s: to=<%s> relay=%s status=%s (%s)",
		   env->id, er->address, r->where[0] ? r->where : er->user[0] ? "local" : "none", names[r->outcome],
		   r->text);
}

/* Record the run: bounce what failed, keep what waits, drop what is done. */
static int record(struct envelope *env, int msgfd, struct rcpt_result *res, char *bounce_id, size_t bounce_len)
{
	int nitems = 0, keep = 0;
	time_t now = time(NULL);

	for (int i = 0; i < env->nrcpt; i++) {
		if (res[i].outcome == OUT_TEMP && now - env->arrived > cfg->max_lifetime)
			rcpt_result_set(&res[i], OUT_PERM, "4.4.7", res[i].mta, "gave up after %lld days: %s",
				   cfg->max_lifetime / 86400, res[i].text);
		nitems += res[i].outcome == OUT_PERM;
	}
	bounce_id[0] = '\0';
	if (nitems > 0) {
		if (!env->sender[0]) {
			log_msg(LOG_NOTICE, "%s: no bounce for %d recipient(s): the sender is <>", env->id, nitems);
		} else if (bounce_queue(cfg, env, msgfd, res, bounce_id, bounce_len) == -1) {
			/* keep the failed recipients queued: the bounce is tried again */
			log_msg(LOG_ERR, "%s: cannot queue a bounce: %s", env->id, strerror(errno));
			for (int i = 0; i < env->nrcpt; i++)
				if (res[i].outcome == OUT_PERM)
					res[i].outcome = OUT_TEMP;
		} else {
			log_msg(LOG_INFO, "%s: bounce queued as %s", env->id, bounce_id);
		}
	}
	for (int i = 0; i < env->nrcpt; i++) {
		struct env_rcpt *er = &env->rcpt[i];
		if (res[i].outcome == OUT_SENT || res[i].outcome == OUT_PERM)
			continue;
		if (res[i].outcome == OUT_TEMP) {
			er->attempts++;
			er->next_attempt = (long long)now + backoff(er->attempts);
			snprintf(er->last_error, sizeof er->last_error, "%s", res[i].text);
		}
		env->rcpt[keep++] = *er;
	}
	env->nrcpt = keep;
	if (queue_update(cfg->queue, env) == -1) {
		log_msg(LOG_ERR, "%s: cannot update the queue entry: %s (recipients may be tried again)",
			env->id, strerror(errno));
		return -1;
	}
	return 0;
}

static int same_domain(const char *a, const char *b)
{
	const char *da = strrchr(a, '@'), *db = strrchr(b, '@');
	return da && db && strcasecmp(da, db) == 0;
}

/* One queue entry.  force: ignore the next-attempt times. */
static void run_entry(const char *id, int force, char *bounce_id, size_t bounce_len)
{
	struct envelope env;
	struct stat st;
	const char *why;
	int fd = queue_lock(cfg->queue, id);

	bounce_id[0] = '\0';
	if (fd == -1) {
		if (errno == EWOULDBLOCK)
			log_msg(LOG_INFO, "%s: busy with another run", id);
		else if (errno != ENOENT)
			log_msg(LOG_ERR, "%s: cannot open: %s", id, strerror(errno));
		return;
	}
	if (queue_read_env(cfg->queue, id, &env, &why) == -1) {
		if (strcmp(why, strerror(ENOENT)) != 0)
			log_msg(LOG_ERR, "%s: bad envelope: %s", id, why);
		close(fd);
		return;
	}
	struct rcpt_result *res = calloc((size_t)env.nrcpt + 1, sizeof *res);
	int *idx = calloc((size_t)env.nrcpt + 1, sizeof *idx);
	char *due = calloc((size_t)env.nrcpt + 1, 1);
	if (!res || !idx || !due || fstat(fd, &st) == -1) {
		log_msg(LOG_ERR, "%s: out of memory", id);
		goto out;
	}
	time_t now = time(NULL);
	int ndue = 0;
	for (int i = 0; i < env.nrcpt; i++) {
		res[i].outcome = OUT_PENDING;
		due[i] = force || env.rcpt[i].next_attempt <= now;
		ndue += due[i];
	}
	if (ndue == 0)
		goto out;
	for (int i = 0; i < env.nrcpt; i++) {
		if (!due[i])
			continue;
		due[i] = 0;
		if (env.rcpt[i].user[0]) {
			deliver_local_rcpt(&env, fd, st.st_size, &env.rcpt[i], &res[i]);
			log_result(&env, &env.rcpt[i], &res[i]);
			continue;
		}
		/* this recipient and every later due one of its domain, together */
		int n = 0;
		idx[n++] = i;
		for (int j = i + 1; j < env.nrcpt; j++) {
			if (due[j] && !env.rcpt[j].user[0] && same_domain(env.rcpt[i].address, env.rcpt[j].address)) {
				idx[n++] = j;
				due[j] = 0;
			}
		}
		const char *at = strrchr(env.rcpt[i].address, '@');
		remote_deliver(cfg, &env, fd, st.st_size, at ? at + 1 : "", idx, n, res);
		for (int k = 0; k < n; k++)
			log_result(&env, &env.rcpt[idx[k]], &res[idx[k]]);
	}
	record(&env, fd, res, bounce_id, bounce_len);
out:
	free(res);
	free(idx);
	free(due);
	queue_env_free(&env);
	close(fd);
}

static void run_queue(char **ids, int n, int force)
{
	char bounce_id[QUEUE_ID_MAX];

	for (int i = 0; i < n; i++) {
		run_entry(ids[i], force, bounce_id, sizeof bounce_id);
		/* a bounce is sent in the same run, without waiting for the next */
		for (int depth = 0; bounce_id[0] && depth < 2; depth++) {
			char next[QUEUE_ID_MAX];
			snprintf(next, sizeof next, "%s", bounce_id);
			run_entry(next, 1, bounce_id, sizeof bounce_id);
		}
	}
}

static int list_queue(void)
{
	char **ids;
	int n, shown = 0;
	time_t now = time(NULL);

	if (queue_list_ids(cfg->queue, &ids, &n) == -1) {
		fprintf(stderr, "mailslot-relay: cannot read %s/env: %s\n", cfg->queue, strerror(errno));
		return EX_IOERR;
	}
	for (int i = 0; i < n; i++) {
		struct envelope env;
		const char *why;
		char path[4096], when[32];
		struct stat st;
		struct tm tm;
		if (queue_read_env(cfg->queue, ids[i], &env, &why) == -1)
			continue;
		snprintf(path, sizeof path, "%s/msg/%s", cfg->queue, ids[i]);
		time_t arrived = (time_t)env.arrived;
		localtime_r(&arrived, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-24s %9lld  %s  <%s>\n", env.id, stat(path, &st) == 0 ? (long long)st.st_size : -1LL,
		       when, env.sender);
		for (int r = 0; r < env.nrcpt; r++) {
			const struct env_rcpt *er = &env.rcpt[r];
			long long wait = er->next_attempt - (long long)now;
			printf("    <%s>%s%s attempts=%u next=%s%lld%s%s%s\n", er->address, er->user[0] ? " mailbox=" : "",
			       er->user, er->attempts, wait > 0 ? "+" : "", wait > 0 ? wait : 0LL, wait > 0 ? "s" : "s (now)",
			       er->last_error[0] ? " error: " : "", er->last_error);
		}
		shown++;
		queue_env_free(&env);
	}
	printf("-- %d %s in the queue\n", shown, shown == 1 ? "entry" : "entries");
	queue_free_ids(ids, n);
	return 0;
}

/* --delete and --bounce act on one entry under its lock. */
static int admin_entry(const char *id, int bounce)
{
	struct envelope env;
	const char *why;
	char bounce_id[QUEUE_ID_MAX] = "";
	int fd = queue_lock(cfg->queue, id);

	if (fd == -1) {
		fprintf(stderr, "mailslot-relay: %s: %s\n", id,
			errno == EWOULDBLOCK ? "busy with a queue run, try again" : strerror(errno));
		return errno == ENOENT ? EX_USAGE : 75;
	}
	if (queue_read_env(cfg->queue, id, &env, &why) == -1) {
		fprintf(stderr, "mailslot-relay: %s: %s\n", id, why);
		close(fd);
		return EX_IOERR;
	}
	if (bounce) {
		struct rcpt_result *res = calloc((size_t)env.nrcpt + 1, sizeof *res);
		if (!res) {
			close(fd);
			return 71;
		}
		for (int i = 0; i < env.nrcpt; i++)
			rcpt_result_set(&res[i], OUT_PERM, "5.0.0", NULL, "returned to the sender by the postmaster");
		record(&env, fd, res, bounce_id, sizeof bounce_id);
		free(res);
		log_msg(LOG_NOTICE, "%s: bounced by the administrator", id);
	} else {
		queue_remove(cfg->queue, id);
		log_msg(LOG_NOTICE, "%s: deleted by the administrator", id);
	}
	queue_env_free(&env);
	close(fd);
	if (bounce && bounce_id[0]) {
		char next[QUEUE_ID_MAX];
		snprintf(next, sizeof next, "%s", bounce_id);
		run_entry(next, 1, bounce_id, sizeof bounce_id);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct config config;
	char err[512];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = config_load(&config, argc, argv, PROG_RELAY, "mailslot-relay");
	if (rc == CONFIG_DONE)
		return 0;
	if (rc) {
		fprintf(stderr, "mailslot-relay: %s\n", config_error);
		return rc;
	}
	cfg = &config;
	for (int i = 0; i < cfg->nargs; i++) {
		if (!queue_id_ok(cfg->args[i])) {
			fprintf(stderr, "mailslot-relay: '%s' is not a queue id\n", cfg->args[i]);
			return EX_USAGE;
		}
	}
	if ((cfg->delete_id && !queue_id_ok(cfg->delete_id)) || (cfg->bounce_id && !queue_id_ok(cfg->bounce_id))) {
		fprintf(stderr, "mailslot-relay: not a queue id\n");
		return EX_USAGE;
	}
	if (users_init(cfg, err, sizeof err) == -1) {
		fprintf(stderr, "mailslot-relay: %s\n", err);
		return EX_CONFIG;
	}
	log_open("mailslot-relay", cfg->log, cfg->verbose);
	if ((rc = privs_drop(cfg, err, sizeof err)) != 0) {
		fprintf(stderr, "mailslot-relay: %s\n", err);
		return rc == PRIVS_BAD_USER ? EX_CONFIG : 71;
	}
	/* a queue that is not there is a configuration mistake to say now, not
	 * an empty queue: mailslot-smtpd would answer every message 451 */
	int qerr = queue_dir_usable(cfg->queue, 0);
	if (qerr) {
		fprintf(stderr, "mailslot-relay: cannot use the queue %s: %s\n", cfg->queue, strerror(qerr));
		return EX_IOERR;
	}
	if (cfg->list)
		return list_queue();
	/* a run writes: tmp/, msg/ and env/ are made when missing */
	if (queue_prepare(cfg->queue) == -1) {
		fprintf(stderr, "mailslot-relay: cannot prepare the queue %s: %s\n", cfg->queue,
			strerror(errno));
		return EX_IOERR;
	}
	if (mx_init(cfg->dns_server, err, sizeof err) == -1) {
		fprintf(stderr, "mailslot-relay: %s\n", err);
		return EX_CONFIG;
	}
	char smarthost[MX_NAME_MAX];
	unsigned smartport;
	if (cfg->smarthost && mx_hostport(cfg->smarthost, 25, smarthost, sizeof smarthost, &smartport) == -1) {
		fprintf(stderr, "mailslot-relay: --smarthost '%s': bad host or port\n", cfg->smarthost);
		return EX_CONFIG;
	}
	if (remote_setup(cfg, err, sizeof err) == -1) {
		fprintf(stderr, "mailslot-relay: %s\n", err);
		return EX_CONFIG;
	}
	if (cfg->delete_id)
		return admin_entry(cfg->delete_id, 0);
	if (cfg->bounce_id)
		return admin_entry(cfg->bounce_id, 1);
	if (cfg->nargs > 0) {
		run_queue(cfg->args, cfg->nargs, 1);
		return 0;
	}
	char **ids;
	int n;
	if (queue_list_ids(cfg->queue, &ids, &n) == -1) {
		fprintf(stderr, "mailslot-relay: cannot read %s/env: %s\n", cfg->queue, strerror(errno));
		return EX_IOERR;
	}
	run_queue(ids, n, cfg->flush);
	queue_free_ids(ids, n);
	queue_sweep(cfg->queue, SWEEP_AGE);
	return 0;
}
