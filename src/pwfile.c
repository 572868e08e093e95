/* pwfile: reading and splitting the lines of a name:HASH file. */
#include "pwfile.h"

#include <errno.h>
#include <string.h>

static int is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (is_control((unsigned char)s[i]))
			return 1;
	return 0;
}

static int is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

/* Split l->text (len octets, no NUL among them) into its fields. */
static enum pwfile_status split(struct pwfile_line *l)
{
	size_t end = l->len - (l->text[l->len - 1] == '\n');
	const char *colon = memchr(l->text, ':', end);

	if (l->text[0] == '#' || is_blank(l->text, end))
		return PWFILE_OTHER;
	if (!colon)
		return PWFILE_MALFORMED;
	l->name = l->text;
	l->namelen = (size_t)(colon - l->text);
	l->hash = colon + 1;
	const char *next = memchr(l->hash, ':', end - l->namelen - 1);
	l->hashlen = next ? (size_t)(next - l->hash) : end - l->namelen - 1;
	l->rest = l->hash + l->hashlen;
	l->restlen = end - l->namelen - 1 - l->hashlen;
	/* a CR left by an editor, or a tab, would make a hash that never
	 * matches and a login that fails for no visible reason */
	if (l->namelen == 0 || l->namelen > PWFILE_NAME_MAX || has_control(l->name, l->namelen) ||
	    has_control(l->hash, l->hashlen))
		return PWFILE_MALFORMED;
	return PWFILE_ENTRY;
}

enum pwfile_status pwfile_next(FILE *f, struct pwfile_line *l)
{
	size_t n = 0;
	int c;

	while ((c = getc(f)) != EOF) {
		if (n == PWFILE_LINE_MAX) {
			l->number++;
			return PWFILE_TOOLONG;
		}
		l->text[n++] = (char)c;
		if (c == '\n')
			break;
	}
	if (c == EOF && ferror(f))
		return PWFILE_ERROR;
	if (n == 0)
		return PWFILE_EOF;
	l->number++;
	l->len = n;
	l->text[n] = '\0';
	/* a NUL would end the name or the hash early for every C reader */
	if (memchr(l->text, '\0', n))
		return PWFILE_MALFORMED;
	return split(l);
}

int pwfile_is(const struct pwfile_line *l, const char *name)
{
	return strlen(name) == l->namelen && memcmp(l->name, name, l->namelen) == 0;
}

int pwfile_name_ok(const char *name)
{
	size_t len = strnlen(name, PWFILE_NAME_MAX + 1);

	if (len == 0 || len > PWFILE_NAME_MAX || name[0] == '#')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] == ':' || name[i] == ' ' || is_control((unsigned char)name[i]))
			return 0;
	return 1;
}

void pwfile_why(const struct pwfile_line *l, enum pwfile_status s, const char *file, char *why,
		size_t whylen)
{
	int saved = errno;

	if (!why || whylen == 0)
		return;
	if (s == PWFILE_TOOLONG)
		snprintf(why, whylen, "%s:%lu: line longer than %d octets", file, l->number, PWFILE_LINE_MAX);
	else if (s == PWFILE_MALFORMED)
		snprintf(why, whylen, "%s:%lu: not a name:HASH line (a NUL, a control character, "
			 "no colon, or a name empty or over %d octets)", file, l->number, PWFILE_NAME_MAX);
	else
		snprintf(why, whylen, "cannot read %s: %s", file, strerror(saved));
	errno = saved;
}
