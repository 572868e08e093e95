/* topn: counting keys in bounded memory, for the top of a long stream.
 *
 * A table holds at most cap distinct keys (each cut to TOPN_KEY_MAX
 * octets).  While it has room every count is exact.  Once it is full a new
 * key takes the place of the key with the smallest count and starts from
 * that count plus one: the Space-Saving algorithm (Metwally, Agrawal and
 * El Abbadi, 2005), which keeps every key whose true count exceeds
 * total/cap, with a count that is too high by at most its "over".  So the
 * memory of mailslot-stat stays flat whatever the log holds, and the
 * report says when a table was full (topn->evicted) and its counts may be
 * high.  A min-heap finds the smallest count, an open-addressing hash
 * table finds a key.
 */
#ifndef MAILSLOT_TOPN_H
#define MAILSLOT_TOPN_H

#include <stddef.h>
#include <stdint.h>

#define TOPN_KEY_MAX 255

struct topn_entry {
	char *key;
	unsigned long long count;
	unsigned long long bytes;	/* a second sum the caller may keep (message sizes) */
	unsigned long long over;	/* at most this much of count belongs to keys it replaced */
	uint32_t hash;
	size_t heap;			/* its place in the heap */
};

struct topn {
	size_t cap, n;
	size_t nslots;			/* a power of two, at least 2 * cap */
	struct topn_entry *e;
	size_t *slots;			/* entry index + 1; 0: empty */
	size_t *heap;			/* entry indexes, smallest count first */
	unsigned long long evicted;	/* keys that were replaced */
};

/* 0, or -1 (ENOMEM). */
int topn_init(struct topn *t, size_t cap);
void topn_free(struct topn *t);
/* Count key (len octets, cut to TOPN_KEY_MAX) once, adding bytes to its sum;
 * -1 only when there is no memory for the key. */
int topn_add(struct topn *t, const char *key, size_t len, unsigned long long bytes);
/* The indexes into t->e of the entries sorted by count (highest first),
 * then key; t->n of them, the caller's to free.  NULL: no memory. */
size_t *topn_sorted(const struct topn *t);

#endif
