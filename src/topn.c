/* topn: a bounded key counter (Space-Saving): hash table plus min-heap. */
#include "topn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: short keys, no adversary worth more (a hostile log can only
 * make the probes longer, and the table is bounded). */
static uint32_t hash_key(const char *key, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

int topn_init(struct topn *t, size_t cap)
{
	memset(t, 0, sizeof *t);
	t->cap = cap;
	t->nslots = 16;
	while (t->nslots < 2 * cap)
		t->nslots *= 2;
	t->e = calloc(cap, sizeof *t->e);
	t->slots = calloc(t->nslots, sizeof *t->slots);
	t->heap = calloc(cap, sizeof *t->heap);
	if (!t->e || !t->slots || !t->heap) {
		topn_free(t);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void topn_free(struct topn *t)
{
	for (size_t i = 0; t->e && i < t->n; i++)
		free(t->e[i].key);
	free(t->e);
	free(t->slots);
	free(t->heap);
	memset(t, 0, sizeof *t);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find_slot(const struct topn *t, const char *key, size_t len, uint32_t h)
{
	size_t mask = t->nslots - 1;

	for (size_t s = h & mask;; s = (s + 1) & mask) {
		size_t i = t->slots[s];
		if (i == 0)
			return s;
		const struct topn_entry *e = &t->e[i - 1];
		if (e->hash == h && strncmp(e->key, key, len) == 0 && e->key[len] == '\0')
			return s;
	}
}

/* Linear probing's deletion by backward shift: no tombstones, so probes
 * stay short however many keys come and go. */
static void remove_slot(struct topn *t, size_t s)
{
	size_t mask = t->nslots - 1;

	t->slots[s] = 0;
	for (size_t j = (s + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
		size_t home = t->e[t->slots[j] - 1].hash & mask;
		/* move j back into s unless its home lies cyclically in (s, j] */
		int stays = s <= j ? (home > s && home <= j) : (home > s || home <= j);
		if (!stays) {
			t->slots[s] = t->slots[j];
			t->slots[j] = 0;
			s = j;
		}
	}
}

static void heap_swap(struct topn *t, size_t a, size_t b)
{
	size_t x = t->heap[a];

	t->heap[a] = t->heap[b];
	t->heap[b] = x;
	t->e[t->heap[a]].heap = a;
	t->e[t->heap[b]].heap = b;
}

static void sift_down(struct topn *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->n && t->e[t->heap[l]].count < t->e[t->heap[m]].count)
			m = l;
		if (r < t->n && t->e[t->heap[r]].count < t->e[t->heap[m]].count)
			m = r;
		if (m == i)
			return;
		heap_swap(t, i, m);
		i = m;
	}
}

static void sift_up(struct topn *t, size_t i)
{
	while (i > 0 && t->e[t->heap[(i - 1) / 2]].count > t->e[t->heap[i]].count) {
		heap_swap(t, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

int topn_add(struct topn *t, const char *key, size_t len, unsigned long long bytes)
{
	if (len > TOPN_KEY_MAX)
		len = TOPN_KEY_MAX;
	uint32_t h = hash_key(key, len);
	size_t s = find_slot(t, key, len, h);
	if (t->slots[s]) {
		struct topn_entry *e = &t->e[t->slots[s] - 1];
		e->count++;
		e->bytes += bytes;
		sift_down(t, e->heap);
		return 0;
	}
	char *copy = malloc(len + 1);
	if (!copy)
		return -1;
	memcpy(copy, key, len);
	copy[len] = '\0';
	size_t idx;
	if (t->n < t->cap) {
		idx = t->n++;
		t->e[idx] = (struct topn_entry){ .key = copy, .count = 1, .bytes = bytes, .hash = h, .heap = t->n - 1 };
		t->heap[t->n - 1] = idx;
		t->slots[s] = idx + 1;
		sift_up(t, t->n - 1);
		return 0;
	}
	/* full: the smallest count makes room, and its count carries over */
	idx = t->heap[0];
	struct topn_entry *e = &t->e[idx];
	remove_slot(t, find_slot(t, e->key, strlen(e->key), e->hash));
	free(e->key);
	e->key = copy;
	e->hash = h;
	e->over = e->count;
	e->count++;
	e->bytes += bytes;
	t->slots[find_slot(t, copy, len, h)] = idx + 1;
	sift_down(t, 0);
	t->evicted++;
	return 0;
}

static int by_count(const void *a, const void *b, void *table)
{
	const struct topn *t = table;
	const struct topn_entry *x = &t->e[*(const size_t *)a], *y = &t->e[*(const size_t *)b];

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

size_t *topn_sorted(const struct topn *t)
{
	size_t *v = malloc((t->n ? t->n : 1) * sizeof *v);

	if (!v)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		v[i] = i;
	qsort_r(v, t->n, sizeof *v, by_count, (void *)t);
	return v;
}
