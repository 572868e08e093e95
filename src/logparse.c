/* logparse: journal JSON, syslog and stderr log lines; key=value fields; dates. */
#include "logparse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400LL

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil): no time zone, no mktime(). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static long long local_seconds(int year, int mon, int day, int hour, int min, int sec)
{
	struct tm tm = { .tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day, .tm_hour = hour,
			 .tm_min = min, .tm_sec = sec, .tm_isdst = -1 };
	time_t t = mktime(&tm);

	return t == (time_t)-1 ? -1 : (long long)t;
}

void logparse_clock_init(struct logparse_clock *c, time_t now)
{
	struct tm tm;

	localtime_r(&now, &tm);
	c->now = now;
	c->year = tm.tm_year + 1900;
	c->cache_key = -1;
	c->cache_base = 0;
}

/* Exactly n digits at p, as a number; -1 otherwise. */
static int digits(const char *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

static int valid_time(int mon, int day, int hour, int min, int sec)
{
	return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour >= 0 && hour <= 23 && min >= 0 &&
	       min <= 59 && sec >= 0 && sec <= 60;
}

/* Local time of one hour, cached: a log is read in order, so the hour
 * rarely changes from one line to the next. */
static long long cached_hour(struct logparse_clock *c, int year, int mon, int day, int hour)
{
	long long key = ((long long)year * 100 + mon) * 10000 + day * 100LL + hour;

	if (key != c->cache_key) {
		c->cache_base = local_seconds(year, mon, day, hour, 0, 0);
		c->cache_key = key;
	}
	return c->cache_base;
}

static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* "Dec  1 20:50:00" or "Dec 01 20:50:00" (journalctl's short form): 15 octets. */
static const char *traditional_time(struct logparse_clock *c, const char *p, long long *usec)
{
	const char *m = NULL;

	for (const char *q = months; *q; q += 3)
		if (strncmp(p, q, 3) == 0)
			m = q;
	if (!m || p[3] != ' ')
		return NULL;
	int mon = (int)(m - months) / 3 + 1;
	int day = p[4] == ' ' ? digits(p + 5, 1) : digits(p + 4, 2);
	int hour = digits(p + 7, 2), min = digits(p + 10, 2), sec = digits(p + 13, 2);
	if (p[6] != ' ' || p[9] != ':' || p[12] != ':' || !valid_time(mon, day, hour, min, sec))
		return NULL;
	int year = c->year;
	long long base = cached_hour(c, year, mon, day, hour);
	/* a line from December read in January is last year's */
	if (base != -1 && base > (long long)c->now + DAY)
		base = cached_hour(c, --year, mon, day, hour);
	if (base == -1)
		return NULL;
	*usec = (base + min * 60LL + sec) * 1000000LL;
	return p + 15;
}

/* "2026-12-01T20:50:00", then ".fraction", then "Z", "+01:00" or "+0100". */
static const char *iso_time(struct logparse_clock *c, const char *p, long long *usec)
{
	int year = digits(p, 4), mon = digits(p + 5, 2), day = digits(p + 8, 2);
	int hour = digits(p + 11, 2), min = digits(p + 14, 2), sec = digits(p + 17, 2);
	long long frac = 0, scale = 1000000;

	if (year < 0 || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != ' ') || p[13] != ':' ||
	    p[16] != ':' || !valid_time(mon, day, hour, min, sec))
		return NULL;
	p += 19;
	if (*p == '.' || *p == ',') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	long long secs;
	if (*p == 'Z') {
		secs = days_from_civil(year, (unsigned)mon, (unsigned)day) * DAY + hour * 3600LL + min * 60LL + sec;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh = digits(p + 1, 2), om;
		if (oh < 0)
			return NULL;
		const char *q = p + 3;
		if (*q == ':')
			q++;
		if ((om = digits(q, 2)) < 0)
			return NULL;
		secs = days_from_civil(year, (unsigned)mon, (unsigned)day) * DAY + hour * 3600LL + min * 60LL + sec -
		       sign * (oh * 3600LL + om * 60LL);
		p = q + 2;
	} else {
		secs = cached_hour(c, year, mon, day, hour);
		if (secs == -1)
			return NULL;
		secs += min * 60LL + sec;
	}
	*usec = secs * 1000000LL + frac;
	return p;
}

static int tag_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.' || ch == '/';
}

/* "prog[pid]: " or "prog: "; the text after it, or NULL. */
static const char *syslog_tag(const char *p, char *prog, size_t progsz)
{
	const char *start = p;

	while (tag_char(*p))
		p++;
	size_t n = (size_t)(p - start);
	if (n == 0 || n >= progsz)
		return NULL;
	if (*p == '[') {
		const char *q = p + 1;
		while (*q >= '0' && *q <= '9')
			q++;
		if (q == p + 1 || *q != ']')
			return NULL;
		p = q + 1;
	}
	if (p[0] != ':' || (p[1] != ' ' && p[1] != '\0'))
		return NULL;
	memcpy(prog, start, n);
	prog[n] = '\0';
	return p[1] ? p + 2 : p + 1;
}

/* The times read fixed places: a line shorter than its time is no time
 * (len is the line's length, up to its NUL). */
#define ISO_TIME_LEN 19
#define TRADITIONAL_TIME_LEN 15

static enum logparse_result text_line(struct logparse_clock *c, const char *line, size_t len,
				      struct logparse_line *out)
{
	const char *p;

	out->usec = -1;
	if (line[0] >= '0' && line[0] <= '9') {
		if (len <= ISO_TIME_LEN || !(p = iso_time(c, line, &out->usec)) || *p != ' ')
			return LOGPARSE_MALFORMED;
	} else if (len > TRADITIONAL_TIME_LEN && (p = traditional_time(c, line, &out->usec)) != NULL) {
		if (*p != ' ')
			return LOGPARSE_MALFORMED;
	} else {
		p = line;	/* standard error: the tag comes first */
	}
	if (out->usec != -1) {
		/* " host " before the tag */
		p++;
		while (*p && *p != ' ')
			p++;
		if (*p++ != ' ')
			return LOGPARSE_MALFORMED;
	}
	if (!(out->text = syslog_tag(p, out->prog, sizeof out->prog)))
		return LOGPARSE_MALFORMED;
	return LOGPARSE_OK;
}

/* ---- journalctl -o json: one flat object a line ---- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static size_t put_utf8(char *out, size_t room, unsigned cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (n > room)
		return 0;
	memcpy(out, b, n);
	return n;
}

static int hex4(const char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int ch = (unsigned char)p[i], d;
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return -1;
		*v = *v << 4 | (unsigned)d;
	}
	return 0;
}

/* A JSON string at p (after its opening quote), decoded into out (cut to
 * outsz-1 octets; out may be NULL to skip it).  The octet after the
 * closing quote, or NULL when the string is broken. */
static const char *json_string(const char *p, char *out, size_t outsz)
{
	size_t n = 0;

	for (;;) {
		char piece[4];
		size_t plen = 1;
		unsigned char ch = (unsigned char)*p++;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return NULL;	/* the end of the line, or a raw control octet */
		piece[0] = (char)ch;
		if (ch == '\\') {
			char e = *p++;
			unsigned cp, lo;
			switch (e) {
			case '"': case '\\': case '/': piece[0] = e; break;
			case 'b': piece[0] = '\b'; break;
			case 'f': piece[0] = '\f'; break;
			case 'n': piece[0] = '\n'; break;
			case 'r': piece[0] = '\r'; break;
			case 't': piece[0] = '\t'; break;
			case 'u':
				if (hex4(p, &cp) == -1)
					return NULL;
				p += 4;
				if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, &lo) == 0 &&
				    lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				} else if (cp >= 0xd800 && cp < 0xe000) {
					cp = '?';	/* a lone surrogate */
				}
				plen = put_utf8(piece, sizeof piece, cp);
				break;
			default:
				return NULL;
			}
		}
		if (out && n + plen < outsz) {
			memcpy(out + n, piece, plen);
			n += plen;
		}
	}
	if (out && outsz)
		out[n] = '\0';
	return p;
}

/* Past any other value: a number, true, false, null, or an array (the
 * journal writes a value that is not UTF-8 as an array of octets). */
static const char *json_skip(const char *p)
{
	int depth = 0;

	for (;;) {
		if (*p == '"') {
			if (!(p = json_string(p + 1, NULL, 0)))
				return NULL;
			continue;
		}
		if (*p == '[' || *p == '{')
			depth++;
		else if ((*p == ']' || *p == '}') && depth > 0)
			depth--;
		else if (*p == '\0' || ((*p == ',' || *p == '}' || *p == ']') && depth == 0))
			return *p ? p : NULL;
		p++;
	}
}

/* Where a journal field goes in out, or NULL for one we do not use. */
static char *json_target(struct logparse_line *out, const char *key, size_t *sz, char *stamp, size_t stampsz)
{
	static const struct {
		const char *name;
		size_t off, size;
	} fields[] = {
		{ "MAILSLOT_STATUS", offsetof(struct logparse_fields, status), sizeof(((struct logparse_fields *)0)->status) },
		{ "MAILSLOT_FROM", offsetof(struct logparse_fields, from), sizeof(((struct logparse_fields *)0)->from) },
		{ "MAILSLOT_RCPT", offsetof(struct logparse_fields, rcpt), sizeof(((struct logparse_fields *)0)->rcpt) },
		{ "MAILSLOT_SIZE", offsetof(struct logparse_fields, size), sizeof(((struct logparse_fields *)0)->size) },
		{ "MAILSLOT_CLASS", offsetof(struct logparse_fields, cls), sizeof(((struct logparse_fields *)0)->cls) },
		{ "MAILSLOT_PEER", offsetof(struct logparse_fields, peer), sizeof(((struct logparse_fields *)0)->peer) },
	};

	if (strcmp(key, "MESSAGE") == 0) {
		*sz = sizeof out->textbuf;
		return out->textbuf;
	}
	if (strcmp(key, "SYSLOG_IDENTIFIER") == 0) {
		*sz = sizeof out->prog;
		return out->prog;
	}
	if (strcmp(key, "__REALTIME_TIMESTAMP") == 0) {
		*sz = stampsz;
		return stamp;
	}
	if (strncmp(key, "MAILSLOT_", 9) != 0)
		return NULL;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (strcmp(key, fields[i].name) == 0) {
			if (i == 1)
				out->f.from_set = 1;
			*sz = fields[i].size;
			return (char *)&out->f + fields[i].off;
		}
	return NULL;
}

static enum logparse_result json_line(const char *p, struct logparse_line *out)
{
	char key[64], stamp[32] = "";
	int have_message = 0;

	out->textbuf[0] = '\0';
	out->usec = -1;
	p = skip_ws(p + 1);
	while (*p != '}') {
		size_t sz = 0;
		if (*p != '"' || !(p = json_string(p + 1, key, sizeof key)))
			return LOGPARSE_MALFORMED;
		p = skip_ws(p);
		if (*p++ != ':')
			return LOGPARSE_MALFORMED;
		p = skip_ws(p);
		char *target = json_target(out, key, &sz, stamp, sizeof stamp);
		if (*p == '"') {
			have_message |= target == out->textbuf;
			p = json_string(p + 1, target, sz);
		} else {
			p = json_skip(p);
		}
		if (!p)
			return LOGPARSE_MALFORMED;
		p = skip_ws(p);
		if (*p == ',')
			p = skip_ws(p + 1);
		else if (*p != '}')
			return LOGPARSE_MALFORMED;
	}
	if (stamp[0]) {
		char *end;
		errno = 0;
		out->usec = strtoll(stamp, &end, 10);
		if (errno || *end || out->usec < 0)
			return LOGPARSE_MALFORMED;
	}
	/* a MESSAGE that is not text (an array of octets) leaves the text empty */
	if (!have_message)
		out->textbuf[0] = '\0';
	out->text = out->textbuf;
	return LOGPARSE_OK;
}

enum logparse_result logparse_line(struct logparse_clock *c, const char *line, size_t len,
				   struct logparse_line *out)
{
	len = strnlen(line, len);	/* a NUL inside ends the line */
	out->prog[0] = '\0';
	out->text = "";
	memset(&out->f, 0, sizeof out->f);
	if (line[0] == '{')
		return json_line(line, out);
	return text_line(c, line, len, out);
}

/* ---- key=value fields ---- */

/* A double-quoted value at p (on its opening quote), as log_value()
 * writes it; the octet after the closing quote, or NULL. */
static const char *quoted(const char *p, char *out, size_t outsz)
{
	size_t n = 0;

	for (p++; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1])
			p++;
		if (n + 1 < outsz)
			out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

static void copy_cut(char *out, size_t outsz, const char *from, size_t len)
{
	if (len >= outsz)
		len = outsz - 1;
	memcpy(out, from, len);
	out[len] = '\0';
}

/* <address>: quoted inside the brackets when log_value() had to; the
 * relay writes its addresses as they are, so a quote that does not close
 * just before '>' is part of the address. */
static const char *bracketed(const char *p, char *out, size_t outsz)
{
	const char *end;

	if (p[1] == '"') {
		end = quoted(p + 1, out, outsz);
		if (end && *end == '>')
			return end + 1;
	}
	/* the first "> " or ">" at the end: an address holds no space outside quotes */
	for (end = p + 1; *end; end++)
		if (*end == '>' && (end[1] == ' ' || end[1] == '\0'))
			break;
	copy_cut(out, outsz, p + 1, (size_t)(end - p - 1));
	return *end ? end + 1 : end;
}

int logparse_field(const char **pp, char *key, size_t keysz, char *value, size_t valsz)
{
	const char *p = *pp;

	while (*p == ' ')
		p++;
	if (!*p)
		return 0;
	if (*p == '(') {
		const char *end = strrchr(p, ')');
		size_t n = end ? (size_t)(end - p - 1) : strlen(p + 1);
		copy_cut(key, keysz, "(", 1);
		copy_cut(value, valsz, p + 1, n);
		*pp = p + strlen(p);
		return 1;
	}
	if (*p == '"') {
		/* a quoted word without a key (connect from "address"): it may hold '=' */
		const char *end = quoted(p, value, valsz);
		key[0] = '\0';
		*pp = end ? end : p + strlen(p);
		return 1;
	}
	size_t klen = strcspn(p, "= ");
	copy_cut(key, keysz, p, klen);
	p += klen;
	if (*p != '=') {
		value[0] = '\0';	/* a word without a value */
		*pp = p;
		return 1;
	}
	p++;
	if (*p == '<') {
		p = bracketed(p, value, valsz);
	} else if (*p == '"') {
		const char *end = quoted(p, value, valsz);
		p = end ? end : p + strlen(p);
	} else {
		size_t vlen = strcspn(p, " ");
		copy_cut(value, valsz, p, vlen);
		p += vlen;
	}
	*pp = p;
	return 1;
}

/* ---- dates on the command line ---- */

long long logparse_date(const char *s, time_t now)
{
	struct tm tm;
	char *end;

	if (strcmp(s, "now") == 0)
		return (long long)now * 1000000;
	if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0) {
		localtime_r(&now, &tm);
		long long t = local_seconds(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday - (s[0] == 'y'), 0, 0, 0);
		return t == -1 ? -1 : t * 1000000;
	}
	if (s[0] == '@' || s[0] == '-') {
		errno = 0;
		long long n = strtoll(s + 1, &end, 10);
		if (errno || end == s + 1 || n < 0 || n > 100000LL * 366 * DAY)
			return -1;
		if (s[0] == '@')
			return *end ? -1 : n * 1000000;
		static const char units[] = "smhd";
		static const long long secs[] = { 1, 60, 3600, DAY };
		const char *u = *end ? strchr(units, *end) : NULL;
		if (!u || end[1])
			return -1;
		return ((long long)now - n * secs[u - units]) * 1000000;
	}
	size_t len = strlen(s);
	if (len != 10 && len != 16 && len != 19)
		return -1;	/* the fields below are read at fixed places */
	int year = digits(s, 4), mon = digits(s + 5, 2), day = digits(s + 8, 2), hour = 0, min = 0, sec = 0;
	if (year < 1970 || s[4] != '-' || s[7] != '-')
		return -1;
	if (s[10] == ' ' || s[10] == 'T') {
		hour = digits(s + 11, 2);
		min = digits(s + 14, 2);
		if (s[13] != ':')
			return -1;
		if (s[16] == ':') {
			sec = digits(s + 17, 2);
			if (s[19])
				return -1;
		} else if (s[16]) {
			return -1;
		}
	} else if (s[10]) {
		return -1;
	}
	if (!valid_time(mon, day, hour, min, sec) || day > 31)
		return -1;
	long long t = local_seconds(year, mon, day, hour, min, sec);
	return t == -1 ? -1 : t * 1000000;
}
