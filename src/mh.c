/* mh: deliver to <spool>/<user>/N as plain MH, the way nmh's inc and
 * rcvstore do: numbered files in arrival order, each new message added to
 * the "unseen" sequence of .mh_sequences (nmh's usual Unseen-Sequence,
 * mutt's mh_seq_unseen), so that nmh, mutt and neomutt show it as new.
 * Nothing else is put in the folder.
 *
 * .mh_sequences is locked with lockf(3) for the whole delivery: nmh's
 * default datalocking is fcntl (mh-tailor(5)), the same kernel record
 * lock, and Python's mailbox.MH takes it too.  It serialises numbering
 * between simultaneous arrivals, and our rewrite of the file with every
 * reader's and writer's.  The message is written to a temporary name
 * (",mailslot.*": a comma hides a file from MH), fsynced, linked to its
 * number (it appears whole or not at all), then the sequence is updated in
 * place and fsynced; if that fails the message stays, unmarked, rather
 * than be delivered twice.  Temporaries of a killed delivery are removed
 * by a later one once 36 hours old.  The folder is used only through one
 * descriptor, opened without following a symlink and checked to be the
 * recipient's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"
#include "lock.h"
#include "mailbox.h"
#include "log.h"

#define MH_UNSEEN "unseen"
/* .mh_sequences is a few lines; one larger than this is left alone */
#define MH_SEQUENCES_MAX ((ssize_t)256 * 1024)

/* The end of the "unseen:" field in buf (after its continuation lines,
 * before the final newline), or NULL when there is none. */
static char *find_unseen(char *buf, size_t len, char **value)
{
	size_t nlen = strlen(MH_UNSEEN);

	for (size_t pos = 0; pos < len;) {
		char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;
		if (llen > nlen && memcmp(line, MH_UNSEEN, nlen) == 0 && line[nlen] == ':') {
			*value = line + nlen + 1;
			char *end = line + llen;
			/* RFC 822-style continuation: lines that start with white space */
			while (end < buf + len && end + 1 < buf + len && (end[1] == ' ' || end[1] == '\t')) {
				char *next = memchr(end + 1, '\n', (size_t)(buf + len - end - 1));
				end = next ? next : buf + len;
			}
			return end;
		}
		pos += llen + 1;
	}
	return NULL;
}

/* Add n to the unseen sequence: "a-(n-1)" or "(n-1)" at the field's end
 * becomes a range up to n, anything else gets " n".  0 or errno. */
static int mark_unseen(int seqfd, unsigned long n)
{
	static char buf[(size_t)MH_SEQUENCES_MAX + 64];
	char add[48];
	ssize_t got = pread(seqfd, buf, (size_t)MH_SEQUENCES_MAX + 1, 0);
	size_t len, out;
	char *value, *end;

	if (got < 0)
		return errno;
	if (got > MH_SEQUENCES_MAX)
		return EFBIG;
	len = (size_t)got;
	buf[len] = '\0';	/* strtoul stops here on a last line without LF */
	end = find_unseen(buf, len, &value);
	if (!end) {
		/* a new field, after a last line that may lack its newline */
		int k = snprintf(add, sizeof add, "%s" MH_UNSEEN ": %lu\n", len && buf[len - 1] != '\n' ? "\n" : "", n);
		memcpy(buf + len, add, (size_t)k);
		out = len + (size_t)k;
	} else {
		/* the last token of the field: digits, perhaps after '-' */
		char *t = end;
		while (t > value && t[-1] >= '0' && t[-1] <= '9')
			t--;
		unsigned long last = t < end ? strtoul(t, NULL, 10) : 0;
		int k;
		if (t < end && last + 1 == n && t > value && t[-1] == '-') {
			k = snprintf(add, sizeof add, "%lu", n);
			memmove(t + k, end, (size_t)(buf + len - end));
			memcpy(t, add, (size_t)k);
			out = (size_t)(t - buf) + (size_t)k + (size_t)(buf + len - end);
		} else {
			k = snprintf(add, sizeof add, t < end && last + 1 == n ? "-%lu" : " %lu", n);
			memmove(end + k, end, (size_t)(buf + len - end));
			memcpy(end, add, (size_t)k);
			out = len + (size_t)k;
		}
	}
	/* in place, under the lock: the lock is on this inode, so a new file
	 * renamed over it would not be covered by it; the text only grows */
	if (fileio_write(seqfd, buf, out, &(off_t){ 0 }) == -1 || ftruncate(seqfd, (off_t)out) == -1 ||
	    fsync(seqfd) == -1)
		return errno;
	return 0;
}

/* Append to out, clamped: outsz once it is full (the caller's error). */
static size_t put(char *out, size_t o, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o >= outsz)
		return outsz;
	va_start(ap, fmt);
	n = vsnprintf(out + o, outsz - o, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= outsz - o ? outsz : o + (size_t)n;
}

/* One sequence's value with the numbers in gone (sorted) taken out, as
 * ranges again, appended to out; returns the new length of out. */
static size_t drop_numbers(const char *value, size_t vlen, const unsigned long *gone, size_t ngone, char *out,
			   size_t o, size_t outsz)
{
	const char *p = value, *end = value + vlen;

	while (p < end) {
		char *stop;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n'))
			p++;
		if (p >= end)
			break;
		unsigned long a = strtoul(p, &stop, 10), b = a;
		if (stop == p || stop > end) {
			/* not a number: keep the word as it is */
			size_t w = strcspn(p, " \t\n");
			w = w > (size_t)(end - p) ? (size_t)(end - p) : w;
			o = put(out, o, outsz, " %.*s", (int)w, p);
			p += w;
			continue;
		}
		if (stop < end && *stop == '-')
			b = strtoul(stop + 1, &stop, 10);
		p = stop;
		for (size_t i = 0; i < ngone && a <= b; i++) {
			if (gone[i] < a || gone[i] > b)
				continue;
			if (gone[i] > a)
				o = put(out, o, outsz, gone[i] - 1 > a ? " %lu-%lu" : " %lu", a, gone[i] - 1);
			a = gone[i] + 1;
		}
		if (a <= b)
			o = put(out, o, outsz, b > a ? " %lu-%lu" : " %lu", a, b);
		if (o >= outsz)
			return outsz;
	}
	return o;
}

int mh_drop_from_sequences(int seqfd, const unsigned long *gone, size_t ngone)
{
	static char buf[(size_t)MH_SEQUENCES_MAX + 2];
	ssize_t got = pread(seqfd, buf, (size_t)MH_SEQUENCES_MAX + 1, 0);
	size_t len, outsz, o = 0;
	char *out;
	int err = 0;

	if (got < 0)
		return errno;
	if (got > MH_SEQUENCES_MAX)
		return EFBIG;
	len = (size_t)got;
	buf[len] = '\0';	/* strtoul and strcspn stop here at the latest */
	/* each number taken out can split a range in every sequence (a line) */
	size_t nlines = 1;
	for (size_t i = 0; i < len; i++)
		nlines += buf[i] == '\n';
	outsz = len + (ngone + 1) * 48 * nlines + 64;
	if (!(out = malloc(outsz)))
		return errno;
	for (size_t pos = 0; pos < len;) {
		/* a field: "name: value", continued on lines that start with white space */
		size_t fend = pos;
		do {
			char *nl = memchr(buf + fend, '\n', len - fend);
			fend = nl ? (size_t)(nl - buf) + 1 : len;
		} while (fend < len && (buf[fend] == ' ' || buf[fend] == '\t'));
		char *colon = memchr(buf + pos, ':', fend - pos);
		if (!colon) {
			o = put(out, o, outsz, "%.*s", (int)(fend - pos), buf + pos);
		} else {
			size_t start = o;
			o = put(out, o, outsz, "%.*s", (int)(colon + 1 - (buf + pos)), buf + pos);
			size_t before = o;
			o = drop_numbers(colon + 1, (size_t)(buf + fend - colon - 1), gone, ngone, out, o, outsz);
			if (o == before)
				o = start;	/* an empty sequence is no sequence (nmh drops it too) */
			else
				o = put(out, o, outsz, "\n");
		}
		if (o >= outsz) {
			err = EFBIG;
			break;
		}
		pos = fend;
	}
	/* in place, under the caller's lock on this inode */
	if (!err && (fileio_write(seqfd, out, o, &(off_t){ 0 }) == -1 || ftruncate(seqfd, (off_t)o) == -1 ||
		     fsync(seqfd) == -1))
		err = errno;
	free(out);
	return err;
}

static int place(int dirfd, const char *shown, const char *tmp, unsigned long *placed)
{
	char num[32];
	unsigned long n = 0;
	int err;

	if ((err = mailbox_highest_number(dirfd, shown, NULL, &n)))
		return err;
	for (int tries = 0; tries < 100; tries++) {
		n++;
		snprintf(num, sizeof num, "%lu", n);
		if (linkat(dirfd, tmp, dirfd, num, 0) == 0) {
			*placed = n;
			return 0;
		}
		/* EEXIST: a writer that ignores the lock took n */
		if (errno != EEXIST)
			return errno;
	}
	return EEXIST;
}

int mh_append(struct mailbox_job *job)
{
	char dir[PATH_MAX], tmp[NAME_MAX + 1];
	long long deadline = clock_ms() + job->lock_timeout * 1000;
	unsigned long n = 0;
	int err, lockfd = -1, dirfd;

	if ((dirfd = mailbox_open_folder(job, dir, sizeof dir)) < 0)
		return -dirfd;
	if ((err = mailbox_new_temp(job, dirfd, tmp, sizeof tmp, 0))) {
		close(dirfd);
		return err;
	}
	if ((err = lock_folder(dirfd, deadline, &lockfd)) == 0) {
		err = place(dirfd, dir, tmp, &n);
		if (err == 0 && fsync(dirfd) == -1)
			err = errno;
		if (err == 0) {
			/* the message is delivered: a failure here only leaves it
			 * looking read, which is better than a second copy */
			int serr = mark_unseen(lockfd, n);
			if (serr)
				log_msg(LOG_WARNING, "%s/.mh_sequences: cannot add %lu to %s: %s", dir, n,
					MH_UNSEEN, strerror(serr));
		}
		close(lockfd);
	}
	unlinkat(dirfd, tmp, 0);
	close(dirfd);
	return err;
}
