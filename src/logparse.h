/* logparse: one line of a mail log, taken apart; pure, no I/O.
 *
 * mailslot-stat reads what the mailslot programs log (log.c) in the three
 * forms an administrator has at hand: a line of `journalctl -o json` (an
 * object with __REALTIME_TIMESTAMP, SYSLOG_IDENTIFIER, MESSAGE and the
 * structured MAILSLOT_* fields), a syslog file line ("Dec  1 20:50:00 host
 * prog[pid]: text", or with an RFC 3339 time as rsyslog's high-precision
 * format and `journalctl -o short-iso` write it), and a line of standard
 * error ("prog[pid]: text", no time).  The form is told from each line, so
 * one file may mix them.  logparse_line() finds the time, the program and
 * the text; logparse_field() then walks the "key=value" fields of the text
 * as mailslot-smtpd(8)'s LOGGING section writes them (bare, or
 * double-quoted with \" and \\ escapes, an address inside <...>).
 */
#ifndef MAILSLOT_LOGPARSE_H
#define MAILSLOT_LOGPARSE_H

#include <stddef.h>
#include <time.h>

#define LOGPARSE_PROG_MAX 48
#define LOGPARSE_TEXT_MAX 4096
#define LOGPARSE_VALUE_MAX 512	/* one field; longer values are cut */

enum logparse_result { LOGPARSE_OK, LOGPARSE_MALFORMED };

/* Structured journal fields, "" when absent (always so outside JSON). */
struct logparse_fields {
	char status[24];
	char from[LOGPARSE_VALUE_MAX];
	char rcpt[LOGPARSE_VALUE_MAX];
	char size[24];
	char cls[24];
	char peer[LOGPARSE_VALUE_MAX];
	int from_set;		/* MAILSLOT_FROM is there, maybe empty (<>) */
};

struct logparse_line {
	long long usec;		/* microseconds since the epoch; -1: the line has no time */
	char prog[LOGPARSE_PROG_MAX];
	const char *text;	/* the message: into the line, or into textbuf */
	char textbuf[LOGPARSE_TEXT_MAX];
	struct logparse_fields f;
};

/* Syslog's traditional time has no year: the one that puts the line at
 * most a day after now.  The cache spares mktime() on almost every line. */
struct logparse_clock {
	time_t now;
	int year;		/* of now, local time */
	long long cache_key;	/* year, month, day, hour of the last line */
	long long cache_base;	/* seconds at the start of that hour */
};

void logparse_clock_init(struct logparse_clock *c, time_t now);
/* line is NUL-terminated and stays alive while out->text is used. */
enum logparse_result logparse_line(struct logparse_clock *c, const char *line, size_t len,
				   struct logparse_line *out);

/* The next "key=value" field at *p: 1 with key and value filled (value
 * decoded), 0 at the end.  A relay's closing "(reply text)" comes as key
 * "(" and the text inside. */
int logparse_field(const char **p, char *key, size_t keysz, char *value, size_t valsz);

/* A date on the command line: YYYY-MM-DD[( |T)HH:MM[:SS]] (local time),
 * @SECONDS, now, today, yesterday, or -N followed by s, m, h or d before
 * now.  Microseconds since the epoch, or -1. */
long long logparse_date(const char *s, time_t now);

#endif
