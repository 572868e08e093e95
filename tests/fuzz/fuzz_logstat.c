/* fuzz_logstat: mailslot-stat's reading of log lines (logparse, tally, topn).
 *
 * The input is a log: its lines (split at LF, NUL-terminated, as the line
 * reader hands them over) go through tally_line into tables small enough
 * to fill (100 keys), so the Space-Saving replacement runs too.  Checks:
 * every line lands in exactly one of the line counts; every table holds
 * no more keys than its cap, each findable once; the counts add up.
 * Then the fields round trip: each line, as a value written by log.c's
 * log_value() into "k=<v> j=v", comes back from logparse_field() as
 * log_value() made it printable (the promise mailslot-smtpd(8)'s LOGGING
 * section makes and mailslot-stat relies on).
 */
#include <stdlib.h>

#include "../../src/log.h"
#include "../../src/logparse.h"
#include "../../src/tally.h"
#include "fuzz_util.h"

#define KEYS 100

static void check_table(const struct topn *t, unsigned long long added)
{
	unsigned long long sum = 0;

	FUZZ_CHECK(t->n <= t->cap, "%zu keys in a table of %zu", t->n, t->cap);
	for (size_t i = 0; i < t->n; i++) {
		sum += t->e[i].count;
		FUZZ_CHECK(t->e[i].count > t->e[i].over, "count %llu not above its over %llu", t->e[i].count,
			   t->e[i].over);
		FUZZ_CHECK(t->heap[t->e[i].heap] == i, "heap place of entry %zu is wrong", i);
	}
	/* Space-Saving keeps the total: a new key takes the old one's count */
	FUZZ_CHECK(sum == added, "the table's counts add up to %llu, %llu were added", sum, added);
	for (size_t i = 1; i < t->n; i++)
		FUZZ_CHECK(t->e[t->heap[(i - 1) / 2]].count <= t->e[t->heap[i]].count, "heap order broken at %zu", i);
}

static void check_tally(const struct tally *t, unsigned long long lines)
{
	FUZZ_CHECK(t->lines == lines, "%llu lines read, %llu fed", t->lines, lines);
	FUZZ_CHECK(t->used + t->unknown + t->other_programs + t->outside + t->undated + t->malformed == t->lines,
		   "the line counts do not add up to %llu", t->lines);
	check_table(&t->senders, t->received);
	check_table(&t->refusals, t->refused);
	check_table(&t->bounces, t->bounced);
	check_table(&t->clients, t->received);
	unsigned long long bad = 0;
	for (int i = 0; i < t->nprogs; i++)
		bad += t->progs[i].logins_bad;
	check_table(&t->auth_failures, bad);
	FUZZ_CHECK(t->largest <= t->bytes, "largest %llu above the total %llu", t->largest, t->bytes);
}

/* log_value(line) as a field, then logparse_field: the printable value again. */
static void round_trip(const char *line, size_t len)
{
	char value[LOGPARSE_VALUE_MAX / 2 - 2], quoted[LOGPARSE_VALUE_MAX], printable[sizeof value];
	char text[2 * LOGPARSE_VALUE_MAX], key[32], got[LOGPARSE_VALUE_MAX];
	const char *p = text;

	if (len >= sizeof value)
		len = sizeof value - 1;
	memcpy(value, line, len);
	value[len] = '\0';
	log_value(quoted, sizeof quoted, value);
	log_printable(printable, sizeof printable, value, strlen(value));
	snprintf(text, sizeof text, "k=<%s> j=%s", quoted, quoted);
	FUZZ_CHECK(logparse_field(&p, key, sizeof key, got, sizeof got) == 1, "no field in '%s'", text);
	FUZZ_CHECK(strcmp(key, "k") == 0, "key '%s' in '%s'", key, text);
	FUZZ_CHECK(strcmp(got, printable) == 0, "<%s> read back as '%s'", quoted, got);
	FUZZ_CHECK(logparse_field(&p, key, sizeof key, got, sizeof got) == 1, "one field in '%s'", text);
	FUZZ_CHECK(strcmp(key, "j") == 0, "second key '%s' in '%s'", key, text);
	FUZZ_CHECK(strcmp(got, printable) == 0, "%s read back as '%s'", quoted, got);
	FUZZ_CHECK(logparse_field(&p, key, sizeof key, got, sizeof got) == 0, "a third field in '%s'", text);
}

/* Each line of copy (size octets, changed in place) into t; the line
 * count.  The line reader hands over NUL-terminated lines: an inner NUL
 * ends one early. */
static unsigned long long feed(struct tally *t, struct logparse_clock *c, char *copy, size_t size, int trip)
{
	unsigned long long lines = 0;

	for (char *line = copy; line < copy + size; lines++) {
		char *end = memchr(line, '\n', (size_t)(copy + size - line));
		if (!end)
			end = copy + size;
		*end = '\0';
		tally_line(t, c, line, strlen(line));
		if (trip)
			round_trip(line, strlen(line));
		line = end + 1;
	}
	return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tally t;
	struct logparse_clock c;
	char *copy = malloc(size + 1);

	if (!copy)
		return 0;
	logparse_clock_init(&c, 1796158400);
	memcpy(copy, data, size);
	FUZZ_CHECK(tally_init(&t, KEYS, -1, -1) == 0, "tally_init");
	check_tally(&t, feed(&t, &c, copy, size, 1));
	tally_free(&t);
	/* a period: the same lines, fewer of them counted */
	memcpy(copy, data, size);
	FUZZ_CHECK(tally_init(&t, KEYS, 1796150000LL * 1000000, 1796160000LL * 1000000) == 0, "tally_init");
	check_tally(&t, feed(&t, &c, copy, size, 0));
	tally_free(&t);
	free(copy);
	return 0;
}
