/* passwd: main of mailslot-passwd, which sets or removes a user's password
 * in a name:HASH file (the --passwd file of mailslot-smtpd).
 *
 * The password comes from the terminal, typed twice without echo, or as
 * one line of standard input when that is not a terminal; it becomes a
 * yescrypt hash at libxcrypt's default cost, and every copy of it this
 * program makes is wiped once hashed.  It is never an argument (argv is
 * readable by every user through /proc).  The file is changed by pwedit.
 * Each failure is one line "mailslot-passwd: reason" on stderr and a
 * sysexits(3) status: 64 usage, 65 bad input, 66/67 nothing to remove,
 * 71 no hash could be made, 73/74/75 as pwedit.h says.
 */
#include <crypt.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "authdb.h"
#include "log.h"
#include "pwedit.h"
#include "pwfile.h"
#include "version.h"

#define PROGNAME "mailslot-passwd"
#define READ_TOOLONG 1

/* A password and room for the one octet that shows it is too long. */
struct secret {
	char text[AUTHDB_PASSWORD_MAX + 2];
	size_t len;
};

static struct termios saved_tty;
static volatile sig_atomic_t tty_quiet;

__attribute__((format(printf, 2, 3)))
static int complain(int status, const char *fmt, ...)
{
	char text[2 * PATH_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	fprintf(stderr, PROGNAME ": %s\n", text);
	return status;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: " PROGNAME " [-d] FILE USER\n"
		"Set USER's password in FILE (name:HASH lines), or remove USER.\n"
		"The password is read twice from the terminal, or as one line of\n"
		"standard input when that is not a terminal.\n"
		"  -d, --delete    remove USER instead\n"
		"  -h, --help      show this help\n"
		"  -V, --version   show the version\n");
}

static void restore_tty(void)
{
	if (tty_quiet)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_quiet = 0;
}

/* Interrupted at the prompt: echo back on before dying of the signal. */
static void on_signal(int sig)
{
	restore_tty();
	signal(sig, SIG_DFL);
	(void)raise(sig);	/* failing, the read goes on with echo back on */
}

/* One line of fd into s, without its newline: 0, READ_TOOLONG, or -1.
 * A byte at a time, so that nothing past the line is read into a buffer
 * that would then hold a copy of the password. */
static int read_line(int fd, struct secret *s)
{
	s->len = 0;
	for (;;) {
		if (s->len == sizeof s->text - 1)
			return READ_TOOLONG;
		ssize_t n = read(fd, s->text + s->len, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0 || s->text[s->len] == '\n')
			break;
		s->len++;
	}
	s->text[s->len] = '\0';
	return 0;
}

/* 0 when s holds a password that can be set, else a status (told). */
static int check_read(int rc, const struct secret *s)
{
	if (rc == -1)
		return complain(74, "cannot read the password: %s", strerror(errno));
	if (rc == READ_TOOLONG)
		return complain(65, "password longer than %d octets", AUTHDB_PASSWORD_MAX);
	if (s->len == 0)
		return complain(65, "empty password refused");
	/* crypt would take the octets before a NUL for the whole password */
	if (memchr(s->text, '\0', s->len))
		return complain(65, "password with a NUL octet refused");
	return 0;
}

/* Prompt on stderr, read without echo (the newline still shows). */
static int ask(const char *prompt, struct secret *s)
{
	struct termios quiet = saved_tty;

	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	tty_quiet = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == -1) {
		tty_quiet = 0;
		return complain(74, "cannot turn off the terminal's echo: %s", strerror(errno));
	}
	/* only now: what is typed after the prompt must not be echoed */
	fputs(prompt, stderr);
	int rc = read_line(STDIN_FILENO, s), saved = errno;
	restore_tty();
	errno = saved;
	return check_read(rc, s);
}

static int from_terminal(struct secret *pw)
{
	struct secret again;
	static const int sigs[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP };

	if (tcgetattr(STDIN_FILENO, &saved_tty) == -1)
		return complain(74, "cannot read the terminal's settings: %s", strerror(errno));
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		signal(sigs[i], on_signal);
	int rc = ask("New password: ", pw);
	if (rc == 0)
		rc = ask("Retype new password: ", &again);
	if (rc == 0 && (again.len != pw->len || memcmp(again.text, pw->text, pw->len) != 0))
		rc = complain(65, "the passwords do not match");
	explicit_bzero(&again, sizeof again);
	return rc;
}

/* The password into pw: 0, or a status (told). */
static int get_password(struct secret *pw)
{
	if (isatty(STDIN_FILENO))
		return from_terminal(pw);
	return check_read(read_line(STDIN_FILENO, pw), pw);
}

/* A yescrypt hash of password at libxcrypt's default cost: 0 or 71. */
static int make_hash(const char *password, char *hash, size_t hashsz)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	/* 32 KiB of state, zeroed as crypt_rn wants it */
	struct crypt_data *cd = calloc(1, sizeof *cd);
	int rc = 0;

	if (!cd)
		return complain(71, "cannot hash the password: out of memory");
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof salt)) {
		rc = complain(71, "cannot make a salt: %s", strerror(errno));
	} else {
		const char *out = crypt_rn(password, salt, cd, (int)sizeof *cd);
		if (!out || out[0] == '*')
			rc = complain(71, "cannot hash the password: %s", strerror(errno));
		else
			snprintf(hash, hashsz, "%s", out);
	}
	/* cd->input holds a copy of the password */
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return rc;
}

/* The new hash for the file: 0 or a status (told). */
static int new_hash(char *hash, size_t hashsz)
{
	struct secret pw;
	int rc = get_password(&pw);

	if (rc == 0)
		rc = make_hash(pw.text, hash, hashsz);
	explicit_bzero(&pw, sizeof pw);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "delete", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int delete_user = 0, opt;

	opterr = 0;
	/* '+': options before FILE only, so that USER may start with '-' */
	while ((opt = getopt_long(argc, argv, "+dhV", longopts, NULL)) != -1) {
		if (opt == 'd') {
			delete_user = 1;
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == 'V') {
			printf("%s %s\n", PROGNAME, MAILSLOT_VERSION);
			return 0;
		} else if (optopt) {
			return complain(64, "unknown option '-%c' (see --help)", optopt);
		} else {
			return complain(64, "unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return complain(64, "expected FILE and USER (see --help)");
	const char *file = argv[optind], *user = argv[optind + 1];
	if (!pwfile_name_ok(user)) {
		char shown[80];
		log_printable(shown, sizeof shown, user, strlen(user));
		return complain(65, "bad user name '%s': 1 to %d octets, no colon, space or control "
				"character, no '#' first", shown, PWFILE_NAME_MAX);
	}
	char hash[CRYPT_OUTPUT_SIZE], why[2 * PATH_MAX + 128];
	int rc = delete_user ? 0 : new_hash(hash, sizeof hash);
	if (rc == 0 && (rc = pwedit_apply(file, user, delete_user ? NULL : hash, why, sizeof why)))
		complain(rc, "%s", why);
	return rc;
}
