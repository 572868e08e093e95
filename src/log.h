/* log: one place that records what happened, to journald, syslog or stderr.
 *
 * Every caller passes already-formatted text; log.c makes it printable
 * (client bytes never reach a log raw) and bounds its length, and the same
 * goes for every structured field.  A value that carries client text is
 * first passed through log_value(), so that it cannot forge another
 * "key=value" field of the record.  Journald gets the message plus
 * structured fields ("KEY=value" strings) over its native datagram
 * protocol, written here so that the per-connection handler does not pay
 * for loading libsystemd (see README, performance).  Syslog uses facility
 * mail; stderr is for a person at a terminal.
 */
#ifndef MAILSLOT_LOG_H
#define MAILSLOT_LOG_H

#include <stddef.h>
#include <syslog.h>

enum log_dest { LOG_DEST_AUTO, LOG_DEST_JOURNAL, LOG_DEST_SYSLOG, LOG_DEST_STDERR };

void log_open(const char *ident, enum log_dest dest, int verbose);
/* Fields are "KEY=value" strings (KEY upper case, as journald wants), ended by NULL. */
void log_fields(int priority, const char *const *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copy at most outsz-1 bytes of untrusted text, replacing anything that is not
 * printable ASCII with '?', so that it may be logged or echoed safely. */
void log_printable(char *out, size_t outsz, const char *in, size_t inlen);
/* One value of a "key=value" log record, written into out (outsz bytes):
 * as is when it is printable ASCII without space, '=', '"', '<', '>' or
 * '\\' (the empty string too); otherwise as a double-quoted string in which
 * '"' and '\\' are escaped by '\\' and anything not printable is '?'.  A
 * value cut to fit keeps its closing quote.  Returns out, for printf.  Room
 * for the worst case: 2 * strlen(in) + 3. */
const char *log_value(char *out, size_t outsz, const char *in);
int log_verbose(void);
/* A start-up failure of the program ident, said where it will be read:
 * on standard error for a person or a service manager, but to syslog when
 * fd 2 is the client's socket (inetd), where it would reach the client
 * as a stray line.  Then 1 when fd 1 is a socket: the caller tells the
 * client there in its protocol's words, so that it comes back later. */
int log_startup_failure(const char *ident, const char *why);

#endif
