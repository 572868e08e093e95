/* statreport: the text and JSON forms of mailslot-stat's report. */
#include "statreport.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The tables of the report, in its order: text title and column, JSON
 * name and key, and whether a row has a second sum (message sizes). */
static const struct {
	const char *title, *head, *json, *key;
	size_t off;
	int bytes;
} tables[] = {
	{ "Refused by reason", "code reason", "refused", "reason", offsetof(struct tally, refusals), 0 },
	{ "Deferred by reason", "reason", "deferred", "reason", offsetof(struct tally, deferrals), 0 },
	{ "Bounced by reason", "reason", "bounced", "reason", offsetof(struct tally, bounces), 0 },
	{ "Top senders", "sender", "senders", "sender", offsetof(struct tally, senders), 1 },
	{ "Top recipient domains", "domain", "recipient_domains", "domain", offsetof(struct tally, rcpt_domains), 0 },
	{ "Top clients (messages received)", "address", "clients", "address", offsetof(struct tally, clients), 1 },
	{ "Failed logins by address", "address", "login_failures", "address", offsetof(struct tally, auth_failures), 0 },
};

static const struct topn *table_of(const struct tally *t, size_t i)
{
	return (const struct topn *)((const char *)t + tables[i].off);
}

static void when(char *out, size_t outsz, long long usec)
{
	struct tm tm;
	time_t t = (time_t)(usec / 1000000);

	if (usec < 0) {
		snprintf(out, outsz, "-");
		return;
	}
	localtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%d %H:%M:%S", &tm);
}

/* The mean with two decimals, exactly from integers. */
static void mean(char *out, size_t outsz, unsigned long long sum, unsigned long long n)
{
	if (n == 0) {
		snprintf(out, outsz, "0");
		return;
	}
	unsigned long long whole = sum / n, hundredths = ((sum % n) * 100 + n / 2) / n;
	if (hundredths == 100) {
		whole++;
		hundredths = 0;
	}
	snprintf(out, outsz, "%llu.%02llu", whole, hundredths);
}

static void age(char *out, size_t outsz, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		snprintf(out, outsz, "%lldd %lldh", secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		snprintf(out, outsz, "%lldh %lldm", secs / 3600, secs % 3600 / 60);
	else
		snprintf(out, outsz, "%lldm %llds", secs / 60, secs % 60);
}

/* ---- text ---- */

static void text_table(FILE *out, const char *title, const char *head, const struct topn *table, size_t top,
		       int with_bytes)
{
	size_t *order = topn_sorted(table), n = table->n;

	if (!order || n == 0 || top == 0) {
		free(order);
		return;
	}
	fprintf(out, "\n%s%s\n", title, table->evicted ? " (table full: counts may be high, see \"over\")" : "");
	fprintf(out, "  %10s%s  %s\n", "count", with_bytes ? "       bytes" : "", head);
	for (size_t i = 0; i < n && i < top; i++) {
		const struct topn_entry *e = &table->e[order[i]];
		fprintf(out, "  %10llu", e->count);
		if (with_bytes)
			fprintf(out, " %11llu", e->bytes);
		fprintf(out, "  %s", e->key);
		if (e->over)
			fprintf(out, " (over %llu)", e->over);
		fputc('\n', out);
	}
	free(order);
}

static int by_start(const void *a, const void *b, void *tally)
{
	const struct tally *t = tally;
	long long x = t->days[*(const size_t *)a].start, y = t->days[*(const size_t *)b].start;

	return (x > y) - (x < y);
}

/* The days that saw traffic, oldest first: their indexes into t->days,
 * in v (TALLY_DAYS_MAX of them at most). */
static size_t days_used(const struct tally *t, size_t *v)
{
	size_t n = 0;

	for (size_t i = 0; i < TALLY_DAYS_MAX; i++)
		if (t->days[i].start)
			v[n++] = i;
	qsort_r(v, n, sizeof v[0], by_start, (void *)t);
	return n;
}

static void day_label(char *out, size_t outsz, long long start)
{
	time_t day = (time_t)start;
	struct tm tm;

	localtime_r(&day, &tm);
	strftime(out, outsz, "%Y-%m-%d", &tm);
}

static void text_traffic_row(FILE *out, const char *label, const struct tally_traffic *n)
{
	fprintf(out, "  %-12s %10llu %10llu %10llu %10llu %10llu %10llu\n", label, n->received, n->delivered,
		n->relayed, n->deferred, n->bounced, n->refused);
}

static void text_traffic(FILE *out, const struct tally *t)
{
	static size_t v[TALLY_DAYS_MAX];
	static const char head[] = "  %-12s %10s %10s %10s %10s %10s %10s\n";
	size_t n = days_used(t, v);
	char label[32];

	if (n == 0)
		return;
	fprintf(out, "\nTraffic by day%s\n", t->days_dropped ? " (the oldest days left out)" : "");
	fprintf(out, head, "day", "received", "delivered", "relayed", "deferred", "bounced", "refused");
	for (size_t i = 0; i < n; i++) {
		const struct tally_day *d = &t->days[v[i]];
		day_label(label, sizeof label, d->start);
		text_traffic_row(out, label, &d->n);
	}
	fprintf(out, "\nTraffic by hour of the day\n");
	fprintf(out, head, "hour", "received", "delivered", "relayed", "deferred", "bounced", "refused");
	for (int h = 0; h < 24; h++) {
		snprintf(label, sizeof label, "%02d:00", h);
		text_traffic_row(out, label, &t->hours[h]);
	}
}

static void text_queue(FILE *out, const struct statreport *r)
{
	const struct queue_summary *q = r->q;

	if (!q->dir)
		return;
	fprintf(out, "\nQueue now (%s)\n", q->dir);
	if (q->error[0]) {
		fprintf(out, "  not read: %s\n", q->error);
		return;
	}
	fprintf(out, "  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n", "entries", q->entries, "recipients",
		q->rcpts, "recipients tried", q->waiting, "bytes", q->bytes);
	if (q->oldest >= 0) {
		char oldest[32], ago[32];
		when(oldest, sizeof oldest, q->oldest * 1000000);
		age(ago, sizeof ago, (long long)r->now - q->oldest);
		fprintf(out, "  %-22s %s (%s ago)\n", "oldest", oldest, ago);
	}
}

void statreport_text(FILE *out, const struct statreport *r)
{
	const struct tally *t = r->t;
	char a[32], b[32], m[40];

	when(a, sizeof a, t->since);
	when(b, sizeof b, t->until);
	fprintf(out, "mailslot-stat: period %s to %s\n", t->since < 0 ? "start" : a, t->until < 0 ? "end" : b);
	when(a, sizeof a, t->first);
	when(b, sizeof b, t->last);
	if (t->first >= 0)
		fprintf(out, "records from %s to %s\n", a, b);
	else
		fprintf(out, "records without times (standard error)\n");
	fprintf(out, "lines: %llu read, %llu counted, %llu other mailslot records, %llu of other programs, "
		     "%llu outside the period, %llu undated, %llu malformed\n",
		t->lines, t->used, t->unknown, t->other_programs, t->outside, t->undated, t->malformed);

	fprintf(out, "\nConnections\n");
	for (int i = 0; i < t->nprogs; i++) {
		const struct tally_prog *p = &t->progs[i];
		if (p->conn_local + p->conn_network)
			fprintf(out, "  %-22s %llu (local %llu, network %llu)\n", p->name, p->conn_local + p->conn_network,
				p->conn_local, p->conn_network);
	}
	fprintf(out, "  %-22s %llu\n  %-22s %llu\n", "early talkers", t->early_talkers, "refused at the limit",
		t->conn_refused);

	mean(m, sizeof m, t->bytes, t->received);
	fprintf(out, "\nMessages\n  %-22s %llu\n  %-22s %llu\n  %-22s %s\n  %-22s %llu\n  %-22s %llu\n",
		"received", t->received, "bytes received", t->bytes, "mean size", m, "largest", t->largest, "refusals",
		t->refused);

	fprintf(out, "\nRecipients\n");
	fprintf(out, "  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n  %-22s %llu\n",
		"delivered locally", t->delivered, "queued to relay", t->queued, "relayed", t->relayed, "deferred",
		t->deferred, "bounced", t->bounced, "bounce notices", t->bounce_notices);

	fprintf(out, "\nLogins\n  %-20s %10s %10s\n", "program", "good", "bad");
	for (int i = 0; i < t->nprogs; i++) {
		const struct tally_prog *p = &t->progs[i];
		if (p->logins_good + p->logins_bad)
			fprintf(out, "  %-20s %10llu %10llu\n", p->name, p->logins_good, p->logins_bad);
	}

	for (int i = 0, shown = 0; i < t->nprogs; i++) {
		const struct tally_prog *p = &t->progs[i];
		if (p->retrieved + p->deleted == 0)
			continue;
		if (!shown++)
			fprintf(out, "\nMailbox access\n  %-20s %10s %10s\n", "program", "retrieved", "deleted");
		fprintf(out, "  %-20s %10llu %10llu\n", p->name, p->retrieved, p->deleted);
	}

	text_traffic(out, t);
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
		text_table(out, tables[i].title, tables[i].head, table_of(t, i), r->top, tables[i].bytes);
	text_queue(out, r);
}

/* ---- JSON ---- */

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else if (*p >= 0x80)
			fputc('?', out);	/* a syslog line's raw octets need not be UTF-8 */
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_time(FILE *out, const char *name, long long usec, int comma)
{
	fprintf(out, "\"%s\": ", name);
	if (usec < 0)
		fputs("null", out);
	else
		fprintf(out, "%lld", usec / 1000000);
	fputs(comma ? ", " : "", out);
}

static void json_table(FILE *out, const char *name, const char *keyname, const struct topn *table, size_t top,
		       int with_bytes)
{
	size_t *order = topn_sorted(table);

	fprintf(out, ",\n  \"%s\": {\"distinct\": %zu, \"full\": %s, \"rows\": [", name, table->n,
		table->evicted ? "true" : "false");
	for (size_t i = 0; order && i < table->n && i < top; i++) {
		const struct topn_entry *e = &table->e[order[i]];
		fprintf(out, "%s{\"%s\": ", i ? ", " : "", keyname);
		json_str(out, e->key);
		fprintf(out, ", \"count\": %llu", e->count);
		if (with_bytes)
			fprintf(out, ", \"bytes\": %llu", e->bytes);
		fprintf(out, ", \"over\": %llu}", e->over);
	}
	fputs("]}", out);
	free(order);
}

static void json_traffic(FILE *out, const struct tally_traffic *n)
{
	fprintf(out, "\"received\": %llu, \"delivered\": %llu, \"relayed\": %llu, \"deferred\": %llu, "
		     "\"bounced\": %llu, \"refused\": %llu}",
		n->received, n->delivered, n->relayed, n->deferred, n->bounced, n->refused);
}

static void json_days(FILE *out, const struct tally *t)
{
	static size_t v[TALLY_DAYS_MAX];
	size_t n = days_used(t, v);
	char label[32];

	fprintf(out, ",\n  \"days_left_out\": %llu,\n  \"days\": [", t->days_dropped);
	for (size_t i = 0; i < n; i++) {
		const struct tally_day *d = &t->days[v[i]];
		day_label(label, sizeof label, d->start);
		fprintf(out, "%s{\"day\": \"%s\", ", i ? ", " : "", label);
		json_traffic(out, &d->n);
	}
	fputs("],\n  \"hours\": [", out);
	for (int h = 0; h < 24; h++) {
		fprintf(out, "%s{\"hour\": %d, ", h ? ", " : "", h);
		json_traffic(out, &t->hours[h]);
	}
	fputc(']', out);
}

static void json_queue(FILE *out, const struct queue_summary *q)
{
	fputs(",\n  \"queue\": ", out);
	if (!q->dir) {
		fputs("null", out);
		return;
	}
	fputs("{\"dir\": ", out);
	json_str(out, q->dir);
	if (q->error[0]) {
		fputs(", \"error\": ", out);
		json_str(out, q->error);
		fputc('}', out);
		return;
	}
	fprintf(out, ", \"entries\": %llu, \"recipients\": %llu, \"recipients_tried\": %llu, \"bytes\": %llu, ",
		q->entries, q->rcpts, q->waiting, q->bytes);
	json_time(out, "oldest", q->oldest < 0 ? -1 : q->oldest * 1000000, 0);
	fputc('}', out);
}

void statreport_json(FILE *out, const struct statreport *r)
{
	const struct tally *t = r->t;
	char m[40];

	fputs("{\n  \"period\": {", out);
	json_time(out, "since", t->since, 1);
	json_time(out, "until", t->until, 1);
	json_time(out, "first", t->first, 1);
	json_time(out, "last", t->last, 0);
	fprintf(out, "},\n  \"lines\": {\"read\": %llu, \"counted\": %llu, \"other_records\": %llu, "
		     "\"other_programs\": %llu, \"outside\": %llu, \"undated\": %llu, \"malformed\": %llu},\n",
		t->lines, t->used, t->unknown, t->other_programs, t->outside, t->undated, t->malformed);
	fputs("  \"programs\": {", out);
	for (int i = 0; i < t->nprogs; i++) {
		const struct tally_prog *p = &t->progs[i];
		fprintf(out, "%s", i ? ", " : "");
		json_str(out, p->name);
		fprintf(out, ": {\"connections\": {\"local\": %llu, \"network\": %llu}, "
			     "\"logins\": {\"good\": %llu, \"bad\": %llu}, \"retrieved\": %llu, \"deleted\": %llu}",
			p->conn_local, p->conn_network, p->logins_good, p->logins_bad, p->retrieved, p->deleted);
	}
	mean(m, sizeof m, t->bytes, t->received);
	fprintf(out, "},\n  \"connections\": {\"early_talkers\": %llu, \"refused_at_limit\": %llu},\n",
		t->early_talkers, t->conn_refused);
	fprintf(out, "  \"messages\": {\"received\": %llu, \"bytes\": %llu, \"mean_size\": %s, \"largest\": %llu, "
		     "\"refused\": %llu},\n",
		t->received, t->bytes, m, t->largest, t->refused);
	fprintf(out, "  \"recipients\": {\"delivered\": %llu, \"queued\": %llu, \"relayed\": %llu, \"deferred\": %llu, "
		     "\"bounced\": %llu, \"bounce_notices\": %llu}",
		t->delivered, t->queued, t->relayed, t->deferred, t->bounced, t->bounce_notices);
	json_days(out, t);
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
		json_table(out, tables[i].json, tables[i].key, table_of(t, i), r->top, tables[i].bytes);
	json_queue(out, r->q);
	fputs("\n}\n", out);
}
