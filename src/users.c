/* users: local domains, users file or passwd, aliases. */
#include "users.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USERS_LINE_MAX 4096

struct alias {
	char *name;
	char **targets;
	int ntargets;
};

static const struct config *cfg;
static char **users;		/* NULL when the system accounts are the users */
static int nusers;
static struct alias *aliases;
static int naliases;

static void lower(char *out, size_t outsz, const char *in)
{
	size_t i = 0;

	for (; in[i] && i + 1 < outsz; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[i] = '\0';
}

/* The name becomes a file name in the spool: no '/', no leading dot. */
int users_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > USER_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

static int load_users(const char *path, char *err, size_t errlen)
{
	char line[USERS_LINE_MAX];
	int lineno = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		snprintf(err, errlen, "cannot open users file %s: %s", path, strerror(errno));
		return -1;
	}
	users = NULL;
	nusers = 0;
	if (!file_is_regular(f)) {
		snprintf(err, errlen, "users file %s is not a regular file", path);
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *name = config_trim(line);
		if (!*name || *name == '#')
			continue;
		char low[USER_NAME_MAX + 2];
		lower(low, sizeof low, name);
		if (!users_name_ok(low)) {
			snprintf(err, errlen, "%s:%d: bad user name '%.64s'", path, lineno, name);
			fclose(f);
			return -1;
		}
		char **grown = realloc(users, (size_t)(nusers + 1) * sizeof *users);
		if (!grown || !(grown[nusers] = strdup(low))) {
			snprintf(err, errlen, "out of memory reading %s", path);
			free(grown);
			fclose(f);
			return -1;
		}
		users = grown;
		nusers++;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read users file %s: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int add_target(struct alias *a, const char *t)
{
	char **grown = realloc(a->targets, (size_t)(a->ntargets + 1) * sizeof *a->targets);

	if (!grown)
		return -1;
	a->targets = grown;
	if (!(a->targets[a->ntargets] = strdup(t)))
		return -1;
	a->ntargets++;
	return 0;
}

/* One logical entry "name: t1, t2" (continuation lines already joined). */
static int parse_alias(char *entry, const char *path, int lineno, char *err, size_t errlen)
{
	char *colon = strchr(entry, ':');

	if (!colon) {
		snprintf(err, errlen, "%s:%d: expected 'name: target, ...'", path, lineno);
		return -1;
	}
	*colon = '\0';
	char name[ADDR_LOCAL_MAX + 2];
	lower(name, sizeof name, config_trim(entry));
	if (!*name || strlen(name) > ADDR_LOCAL_MAX || strchr(name, ' ')) {
		snprintf(err, errlen, "%s:%d: bad alias name", path, lineno);
		return -1;
	}
	struct alias *grown = realloc(aliases, (size_t)(naliases + 1) * sizeof *aliases);
	if (!grown)
		goto nomem;
	aliases = grown;
	struct alias *a = &aliases[naliases++];
	*a = (struct alias){ .name = strdup(name) };
	if (!a->name)
		goto nomem;
	for (char *save = NULL, *t = strtok_r(colon + 1, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = config_trim(t);
		if (!*t)
			continue;
		if (*t == '|' || *t == '/' || strncmp(t, ":include:", 9) == 0) {
			snprintf(err, errlen, "%s:%d: '%.64s': only user names and addresses are supported",
				 path, lineno, t);
			return -1;
		}
		struct mailaddr m;
		const char *why;
		if (addr_parse_mailbox(t, strlen(t), &m, &why) != ADDR_OK) {
			snprintf(err, errlen, "%s:%d: '%.64s': %s", path, lineno, t, why);
			return -1;
		}
		if (add_target(a, t) == -1)
			goto nomem;
	}
	if (a->ntargets == 0) {
		snprintf(err, errlen, "%s:%d: alias '%s' has no target", path, lineno, name);
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory reading %s", path);
	return -1;
}

static int load_aliases(const char *path, char *err, size_t errlen)
{
	char line[USERS_LINE_MAX], entry[USERS_LINE_MAX];
	int lineno = 0, entry_line = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		snprintf(err, errlen, "cannot open aliases file %s: %s", path, strerror(errno));
		return -1;
	}
	entry[0] = '\0';
	if (!file_is_regular(f)) {
		snprintf(err, errlen, "aliases file %s is not a regular file", path);
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			fclose(f);
			return -1;
		}
		if (line[0] == '#')
			continue;
		/* aliases(5): a line starting with white space continues the entry */
		if ((line[0] == ' ' || line[0] == '\t') && entry[0]) {
			size_t used = strlen(entry);
			int n = snprintf(entry + used, sizeof entry - used, ",%s", line);
			if (n < 0 || (size_t)n >= sizeof entry - used) {
				snprintf(err, errlen, "%s:%d: entry too long", path, lineno);
				fclose(f);
				return -1;
			}
			continue;
		}
		if (entry[0] && parse_alias(entry, path, entry_line, err, errlen) == -1) {
			fclose(f);
			return -1;
		}
		entry[0] = '\0';
		char *s = config_trim(line);
		if (*s) {
			snprintf(entry, sizeof entry, "%s", s);
			entry_line = lineno;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read aliases file %s: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	if (entry[0] && parse_alias(entry, path, entry_line, err, errlen) == -1)
		return -1;
	return 0;
}

int users_init(const struct config *c, char *err, size_t errlen)
{
	cfg = c;
	if (c->users_file && load_users(c->users_file, err, errlen) == -1)
		return -1;
	if (c->aliases_file && load_aliases(c->aliases_file, err, errlen) == -1)
		return -1;
	return 0;
}

int users_local_domain(const char *domain)
{
	for (int i = 0; i < cfg->ndomains; i++)
		if (strcasecmp(domain, cfg->domains[i]) == 0)
			return 1;
	return 0;
}

static const struct alias *find_alias(const char *name)
{
	for (int i = 0; i < naliases; i++)
		if (strcmp(aliases[i].name, name) == 0)
			return &aliases[i];
	return NULL;
}

/* The next line of a colon-separated account file (passwd(5), group(5))
 * split into exactly nfields fields; lines of another shape, and lines
 * longer than the buffer, are skipped.  The last line needs no newline.
 * 0 at the end of the file. */
static int next_entry(FILE *f, char *line, size_t linesz, char **field, int nfields)
{
	while (fgets(line, (int)linesz, f)) {
		char *nl = strchr(line, '\n');
		if (nl) {
			*nl = '\0';
		} else {
			int c = getc(f);
			if (c != EOF) {	/* longer than the buffer */
				while (c != EOF && c != '\n')
					c = getc(f);
				continue;
			}
		}
		int n = 0;
		for (char *p = line; n < nfields; n++) {
			field[n] = p;
			p = strchr(p, ':');
			if (!p)
				break;
			*p++ = '\0';
		}
		if (n == nfields - 1 && field[0][0])
			return 1;
	}
	return 0;
}

static int parse_id(const char *s, unsigned *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > 0xfffffffeUL)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* /etc/passwd read directly: getpwnam() would load the NSS modules named in
 * nsswitch.conf (libnss_systemd and its libraries), about a millisecond of
 * start-up per connection, and fgetpwent() makes an lseek per line.  In a
 * dynamic build (STATIC=0), accounts only NSS knows (LDAP...) still resolve
 * through getpwnam(); a static build cannot load NSS modules and knows the
 * files only. */
/* The account named name, or with uid when name is NULL. */
static struct passwd *find_pw(const char *name, uid_t uid)
{
	static char line[USERS_LINE_MAX];
	static struct passwd pw;
	char *field[7];
	unsigned id, gid;
	FILE *f = fopen("/etc/passwd", "re");
	int found = 0;

	if (f) {
		while (!found && next_entry(f, line, sizeof line, field, 7))
			found = parse_id(field[2], &id) == 0 && parse_id(field[3], &gid) == 0 &&
				(name ? strcmp(field[0], name) == 0 : id == uid);
		fclose(f);
	}
	if (found) {
		pw = (struct passwd){ .pw_name = field[0], .pw_passwd = field[1], .pw_uid = id, .pw_gid = gid,
				      .pw_gecos = field[4], .pw_dir = field[5], .pw_shell = field[6] };
		return &pw;
	}
#ifdef MAILSLOT_STATIC
	return NULL;
#else
	return name ? getpwnam(name) : getpwuid(uid);
#endif
}

struct passwd *users_getpw(const char *name)
{
	return find_pw(name, 0);
}

struct passwd *users_getpwuid(uid_t uid)
{
	return find_pw(NULL, uid);
}

int users_groups(const char *name, gid_t primary, gid_t *out, int max)
{
	char line[USERS_LINE_MAX], *field[4];
	FILE *f = fopen("/etc/group", "re");
	int n = 0;

	out[n++] = primary;
	if (!f)
		return n;
	while (n < max && next_entry(f, line, sizeof line, field, 4)) {
		unsigned gid;
		if (parse_id(field[2], &gid) == -1 || gid == primary)
			continue;
		for (char *m = strtok(field[3], ","); m; m = strtok(NULL, ","))
			if (strcmp(m, name) == 0) {
				out[n++] = gid;
				break;
			}
	}
	fclose(f);
	return n;
}

/* A mailbox user: from the users file, or a system account. */
int users_lookup(const char *name, struct target *t)
{
	if (!users_name_ok(name))
		return 0;
	if (users) {
		for (int i = 0; i < nusers; i++)
			if (strcmp(users[i], name) == 0)
				goto found;
		return 0;
	}
	struct passwd *pw = users_getpw(name);
	if (!pw)
		return 0;
	t->has_ids = 1;
	t->uid = pw->pw_uid;
	t->gid = pw->pw_gid;
found:
	snprintf(t->user, sizeof t->user, "%s", name);
	return 1;
}

static int already(const struct target *out, int n, const struct target *t)
{
	for (int i = 0; i < n; i++)
		if (out[i].remote == t->remote &&
		    (t->remote ? strcasecmp(out[i].address, t->address) == 0
			       : strcmp(out[i].user, t->user) == 0))
			return 1;
	return 0;
}

enum users_result users_add_target(struct target *out, int max, int *n, const struct target *t)
{
	if (already(out, *n, t))
		return USERS_FOUND;
	if (*n >= max)
		return USERS_TOO_MANY;
	out[(*n)++] = *t;
	return USERS_FOUND;
}

static enum users_result resolve(const char *local, const char *domain, struct target *out,
				 int max, int *n, int depth);

/* USERS_FOUND when at least one target resolved (a duplicate counts: the
 * recipient is valid, it just gets one copy). */
static enum users_result expand_alias(const struct alias *a, const char *domain, struct target *out,
				      int max, int *n, int depth)
{
	int resolved = 0;

	for (int i = 0; i < a->ntargets; i++) {
		const char *t = a->targets[i];
		const char *at = strrchr(t, '@');
		enum users_result r;
		if (!at) {
			/* "bob: bob" names the user bob itself, not the alias again */
			struct target u = { 0 };
			char low[USER_NAME_MAX + 2];
			lower(low, sizeof low, t);
			if (strcmp(low, a->name) == 0 || !find_alias(low)) {
				if (!users_lookup(low, &u))
					continue;	/* a dangling alias target is skipped */
				snprintf(u.address, sizeof u.address, "%s@%s", low, domain);
				r = users_add_target(out, max, n, &u);
			} else {
				r = resolve(low, domain, out, max, n, depth + 1);
			}
		} else if (users_local_domain(at + 1)) {
			char lp[ADDR_LOCAL_MAX + 1];
			snprintf(lp, sizeof lp, "%.*s", (int)(at - t), t);
			r = resolve(lp, at + 1, out, max, n, depth + 1);
		} else {
			struct target fwd = { .remote = 1 };
			snprintf(fwd.address, sizeof fwd.address, "%s", t);
			r = users_add_target(out, max, n, &fwd);
		}
		if (r == USERS_TOO_MANY)
			return r;
		resolved += r == USERS_FOUND;
	}
	return resolved ? USERS_FOUND : USERS_UNKNOWN;
}

static enum users_result resolve(const char *local, const char *domain, struct target *out,
				 int max, int *n, int depth)
{
	char name[ADDR_LOCAL_MAX + 1];
	struct target t = { 0 };

	if (depth > USERS_ALIAS_DEPTH)
		return USERS_UNKNOWN;
	lower(name, sizeof name, local);
	const struct alias *a = find_alias(name);
	if (a) {
		enum users_result r = expand_alias(a, domain, out, max, n, depth);
		if (r != USERS_UNKNOWN)
			return r;
	}
	if (users_lookup(name, &t)) {
		snprintf(t.address, sizeof t.address, "%s@%s", name, domain);
		return users_add_target(out, max, n, &t);
	}
	if (strcmp(name, "postmaster") == 0) {
		/* RFC 5321 4.5.1: postmaster must always be accepted; as on most
		 * systems it reaches root (its alias or account), else a
		 * mailbox of its own */
		enum users_result r = resolve("root", domain, out, max, n, depth + 1);
		if (r != USERS_UNKNOWN)
			return r;
		t = (struct target){ 0 };
		snprintf(t.user, sizeof t.user, "postmaster");
		snprintf(t.address, sizeof t.address, "postmaster@%s", domain);
		return users_add_target(out, max, n, &t);
	}
	return USERS_UNKNOWN;
}

enum users_result users_resolve(const char *local, const char *domain, struct target *out, int max, int *n)
{
	return resolve(local, domain, out, max, n, 0);
}
