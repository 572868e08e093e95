/* tally: one log record of a mailslot program becomes counts. */
#include "tally.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLASS_MAX 100	/* octets of a reason's class; the rest is detail */
/* The largest size or count one record may add: 2^40, mailslot-smtpd's
 * largest --max-size, so that no total can wrap before 2^24 records. */
#define COUNT_MAX (1ULL << 40)

int tally_init(struct tally *t, size_t cap, long long since, long long until)
{
	memset(t, 0, sizeof *t);
	t->since = since;
	t->until = until;
	t->first = t->last = -1;
	if (topn_init(&t->senders, cap) == -1 || topn_init(&t->rcpt_domains, cap) == -1 ||
	    topn_init(&t->refusals, cap) == -1 || topn_init(&t->deferrals, cap) == -1 ||
	    topn_init(&t->bounces, cap) == -1 || topn_init(&t->clients, cap) == -1 ||
	    topn_init(&t->auth_failures, cap) == -1) {
		tally_free(t);
		return -1;
	}
	return 0;
}

void tally_free(struct tally *t)
{
	topn_free(&t->senders);
	topn_free(&t->rcpt_domains);
	topn_free(&t->refusals);
	topn_free(&t->deferrals);
	topn_free(&t->bounces);
	topn_free(&t->clients);
	topn_free(&t->auth_failures);
}

void tally_malformed(struct tally *t)
{
	t->lines++;
	t->malformed++;
}

static struct tally_prog *prog_row(struct tally *t, const char *name)
{
	for (int i = 0; i < t->nprogs; i++)
		if (strcmp(t->progs[i].name, name) == 0)
			return &t->progs[i];
	if (t->nprogs == TALLY_PROGS_MAX) {
		/* a log naming more programs than mailslot has: the last row is "other" */
		snprintf(t->progs[TALLY_PROGS_MAX - 1].name, sizeof t->progs[0].name, "%s", "other");
		return &t->progs[TALLY_PROGS_MAX - 1];
	}
	snprintf(t->progs[t->nprogs].name, sizeof t->progs[0].name, "%s", name);
	return &t->progs[t->nprogs++];
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The fields of a record's text that the counts need. */
struct record {
	char from[LOGPARSE_VALUE_MAX], to[LOGPARSE_VALUE_MAX], status[32], relay[LOGPARSE_VALUE_MAX];
	char size[32], cls[32], code[16], reason[LOGPARSE_VALUE_MAX], reply[LOGPARSE_VALUE_MAX];
	char peer[LOGPARSE_VALUE_MAX];
};

static void read_fields(const char *p, struct record *r)
{
	static const struct {
		const char *key;
		size_t off, size;
	} wanted[] = {
#define W(k, f) { k, offsetof(struct record, f), sizeof(((struct record *)0)->f) }
		W("from", from), W("to", to), W("status", status), W("relay", relay), W("size", size),
		W("class", cls), W("code", code), W("reason", reason), W("(", reply), W("peer", peer),
#undef W
	};
	char key[32], value[LOGPARSE_VALUE_MAX];

	memset(r, 0, sizeof *r);
	while (logparse_field(&p, key, sizeof key, value, sizeof value)) {
		for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
			if (strcmp(key, wanted[i].key) == 0) {
				snprintf((char *)r + wanted[i].off, wanted[i].size, "%s", value);
				break;
			}
	}
}

/* The journal's structured fields, where the record has them, are the
 * values as the program had them, before log_value() quoted them. */
static void prefer_journal(struct record *r, const struct logparse_fields *f)
{
	if (f->from_set)
		snprintf(r->from, sizeof r->from, "%s", f->from);
	if (f->rcpt[0])
		snprintf(r->to, sizeof r->to, "%s", f->rcpt);
	if (f->status[0])
		snprintf(r->status, sizeof r->status, "%s", f->status);
	if (f->size[0])
		snprintf(r->size, sizeof r->size, "%s", f->size);
	if (f->cls[0])
		snprintf(r->cls, sizeof r->cls, "%s", f->cls);
	if (f->peer[0])
		snprintf(r->peer, sizeof r->peer, "%s", f->peer);
}

/* A reason as a class of reasons: the reply code and enhanced code kept,
 * then what varies from one message to the next (addresses in <>, hosts
 * in [], numbers) made one symbol, so that "line longer than 998" and a
 * mail loop of 101 Received: fields each count as one reason. */
static size_t reason_class(const char *code, const char *text, char *out, size_t outsz)
{
	size_t n = 0;
	const char *p = text;

	if (code[0])
		n = (size_t)snprintf(out, outsz, "%s ", code);
	/* a reply's own "550 5.1.1 " stays as it is */
	size_t keep = strspn(p, "0123456789");
	if (keep == 3 && p[3] == ' ') {
		keep = 4;
		size_t dsn = strspn(p + 4, "0123456789.");
		if (dsn >= 5 && p[4 + dsn] == ' ')
			keep += dsn + 1;
		if (n + keep < outsz) {
			memcpy(out + n, p, keep);
			n += keep;
		}
		p += keep;
	}
	while (*p && n + 2 < outsz && n < CLASS_MAX) {
		if (*p == '<' || *p == '[') {
			char close = *p == '<' ? '>' : ']';
			const char *end = strchr(p, close);
			if (end) {
				out[n++] = *p;
				out[n++] = close;
				p = end + 1;
				continue;
			}
		}
		if (isdigit((unsigned char)*p)) {
			out[n++] = 'N';
			while (isdigit((unsigned char)*p))
				p++;
			continue;
		}
		out[n++] = *p++;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return n;
}

static void count_reason(struct topn *table, const char *code, const char *text)
{
	char cls[CLASS_MAX + 40];
	size_t n = reason_class(code, text[0] ? text : "(no reason given)", cls, sizeof cls);

	topn_add(table, cls, n, 0);
}

static void count_domain(struct tally *t, const char *address)
{
	const char *at = strrchr(address, '@');
	char dom[TOPN_KEY_MAX + 1];
	size_t n = 0;

	for (const char *p = at ? at + 1 : "(no domain)"; *p && n < TOPN_KEY_MAX; p++)
		dom[n++] = (char)tolower((unsigned char)*p);
	topn_add(&t->rcpt_domains, dom, n, 0);
}

/* A count as the programs write it: decimal digits only, at most max (a
 * "-1" or a 30-digit number is not one, and would wrap the totals). */
static int parse_count(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long n = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (max - (unsigned long long)(*s - '0')) / 10)
			return -1;
		n = n * 10 + (unsigned long long)(*s - '0');
	}
	*out = n;
	return 0;
}

static int count_message(struct tally *t, const struct record *r)
{
	unsigned long long size;
	const char *from = r->from[0] ? r->from : "<>";

	if (parse_count(r->size, COUNT_MAX, &size) == -1)
		return 0;
	t->received++;
	t->bytes += size;
	if (size > t->largest)
		t->largest = size;
	topn_add(&t->senders, from, strlen(from), size);
	topn_add(&t->clients, r->peer, strlen(r->peer), size);
	return 1;
}

/* "to=<address> ... status=X": smtpd (mailbox=, reason=) or relay (relay=, "(reply)"). */
static int count_recipient(struct tally *t, const struct record *r)
{
	const char *why = r->relay[0] ? r->reply : r->reason;

	if (strcmp(r->status, "delivered") == 0 || (strcmp(r->status, "sent") == 0 && strcmp(r->relay, "local") == 0))
		t->delivered++;
	else if (strcmp(r->status, "sent") == 0)
		t->relayed++;
	else if (strcmp(r->status, "queued") == 0)
		t->queued++;
	else if (strcmp(r->status, "deferred") == 0) {
		t->deferred++;
		count_reason(&t->deferrals, "", why);
	} else if (strcmp(r->status, "bounced") == 0) {
		t->bounced++;
		count_reason(&t->bounces, "", why);
	} else {
		return 0;
	}
	/* the recipients the server accepted: the relay's records are the same ones again */
	if (!r->relay[0])
		count_domain(t, r->to);
	return 1;
}

/* A queue id (or NOQUEUE) and ": " at the start; the text after it. */
static const char *after_queue_id(const char *text)
{
	size_t n = 0;

	while (n < 32 && isalnum((unsigned char)text[n]))
		n++;
	if (n == 0 || n == 32 || text[n] != ':' || text[n + 1] != ' ')
		return NULL;
	return text + n + 2;
}

static int connection(struct tally *t, const struct logparse_line *l, const char *rest)
{
	struct record r;

	read_fields(rest, &r);
	prefer_journal(&r, &l->f);
	struct tally_prog *p = prog_row(t, l->prog);
	if (strcmp(r.cls, "local") == 0)
		p->conn_local++;
	else
		p->conn_network++;
	return 1;
}

static int queue_record(struct tally *t, const struct logparse_line *l, const char *rest)
{
	struct record r;

	if (starts(rest, "bounce queued as ")) {
		t->bounce_notices++;
		return 1;
	}
	int refused = starts(rest, "refused ");
	if (!refused && !starts(rest, "from=<") && !starts(rest, "to=<"))
		return 0;
	read_fields(refused ? rest + 8 : rest, &r);
	prefer_journal(&r, &l->f);
	if (refused) {
		t->refused++;
		count_reason(&t->refusals, r.code, r.reason);
		return 1;
	}
	if (rest[0] == 'f')
		return count_message(t, &r);
	return count_recipient(t, &r);
}

/* A mailbox server's record of what a session took: "retrieved=N" and
 * "deleted=N" fields, whatever else the record says (the POP3 server logs
 * them at the end of a session). */
static int mailbox_access(struct tally *t, const struct logparse_line *l)
{
	const char *p = l->text;
	char key[32], value[32];
	unsigned long long got = 0, gone = 0;
	int seen = 0;

	if (!strstr(p, "retrieved=") && !strstr(p, "deleted="))
		return 0;
	while (logparse_field(&p, key, sizeof key, value, sizeof value)) {
		int r = strcmp(key, "retrieved") == 0, d = strcmp(key, "deleted") == 0;
		unsigned long long n;
		if ((r || d) && parse_count(value, COUNT_MAX, &n) == 0) {
			*(r ? &got : &gone) += n;
			seen = 1;
		}
	}
	if (!seen)
		return 0;
	struct tally_prog *row = prog_row(t, l->prog);
	row->retrieved += got;
	row->deleted += gone;
	return 1;
}

static int event(struct tally *t, const struct logparse_line *l)
{
	const char *text = l->text, *rest;

	if (starts(text, "connect from "))
		return connection(t, l, text + 13);
	if (starts(text, "early talker, disconnect from ")) {
		t->early_talkers++;
		return 1;
	}
	if (starts(text, "disconnect from "))
		return 1;
	if (starts(text, "connection from ") && strstr(text, " refused: ")) {
		t->conn_refused++;
		return 1;
	}
	/* the POP3 server's "login:" is its good login (the mailbox opened) */
	if (starts(text, "authenticated: ") || starts(text, "login: ")) {
		prog_row(t, l->prog)->logins_good++;
		return 1;
	}
	if (starts(text, "authentication failed: ")) {
		struct record r;
		read_fields(text + 23, &r);
		prog_row(t, l->prog)->logins_bad++;
		topn_add(&t->auth_failures, r.peer, strlen(r.peer), 0);
		return 1;
	}
	if ((rest = after_queue_id(text)) && queue_record(t, l, rest))
		return 1;
	return mailbox_access(t, l);
}

static struct tally_traffic traffic_now(const struct tally *t)
{
	return (struct tally_traffic){ t->received, t->delivered, t->relayed, t->deferred, t->bounced, t->refused };
}

static void traffic_add(struct tally_traffic *to, const struct tally_traffic *before, const struct tally_traffic *after)
{
	to->received += after->received - before->received;
	to->delivered += after->delivered - before->delivered;
	to->relayed += after->relayed - before->relayed;
	to->deferred += after->deferred - before->deferred;
	to->bounced += after->bounced - before->bounced;
	to->refused += after->refused - before->refused;
}

static unsigned long long traffic_sum(const struct tally_traffic *n)
{
	return n->received + n->delivered + n->relayed + n->deferred + n->bounced + n->refused;
}

/* The local day holding secs, from a cache: localtime_r() and mktime()
 * once a day of log, not once a line. */
static int find_day(struct tally *t, long long secs)
{
	struct tm tm;
	time_t when = (time_t)secs;

	if (secs >= t->day_start && secs < t->day_end)
		return 0;
	if (!localtime_r(&when, &tm))
		return -1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	long long start = (long long)mktime(&tm);
	tm.tm_mday++;
	tm.tm_isdst = -1;
	long long end = (long long)mktime(&tm);
	if (start == -1 || end == -1 || start > secs || end <= secs)
		return -1;
	t->day_start = start;
	t->day_end = end;
	return 0;
}

/* What the record just counted also goes to its day and hour; a time
 * before 1970 or past what the C library can name is left out of them. */
static void count_traffic(struct tally *t, long long usec, const struct tally_traffic *before)
{
	struct tally_traffic after = traffic_now(t), lost = { 0 };
	long long secs = usec / 1000000;

	if (memcmp(before, &after, sizeof after) == 0)
		return;
	if (secs < 0 || find_day(t, secs) == -1 || t->day_start <= 0) {
		traffic_add(&lost, before, &after);
		t->days_dropped += traffic_sum(&lost);
		return;
	}
	long long hour = (secs - t->day_start) / 3600;	/* a day of 25 hours ends in the 24th */
	traffic_add(&t->hours[hour > 23 ? 23 : hour], before, &after);
	struct tally_day *d = &t->days[(t->day_start / 3600 + 12) / 24 % TALLY_DAYS_MAX];
	if (d->start > t->day_start) {
		traffic_add(&lost, before, &after);
		t->days_dropped += traffic_sum(&lost);	/* older than the days kept */
		return;
	}
	if (d->start != t->day_start) {
		t->days_dropped += traffic_sum(&d->n);
		memset(d, 0, sizeof *d);
		d->start = t->day_start;
	}
	traffic_add(&d->n, before, &after);
}

void tally_line(struct tally *t, struct logparse_clock *c, const char *line, size_t len)
{
	static struct logparse_line l;	/* 5 KiB: not on the stack for every line */

	t->lines++;
	if (logparse_line(c, line, len, &l) != LOGPARSE_OK) {
		t->malformed++;
		return;
	}
	if (strncmp(l.prog, "mailslot", 8) != 0) {
		t->other_programs++;
		return;
	}
	if (l.usec == -1 && (t->since != -1 || t->until != -1)) {
		t->undated++;	/* standard error has no times: no period can hold them */
		return;
	}
	if (l.usec != -1 && ((t->since != -1 && l.usec < t->since) || (t->until != -1 && l.usec >= t->until))) {
		t->outside++;
		return;
	}
	struct tally_traffic before = traffic_now(t);
	if (!event(t, &l)) {
		t->unknown++;
		return;
	}
	t->used++;
	if (l.usec != -1) {
		count_traffic(t, l.usec, &before);
		if (t->first == -1 || l.usec < t->first)
			t->first = l.usec;
		if (l.usec > t->last)
			t->last = l.usec;
	}
}
