/* status: the one result type of mail work, and its mappings.
 *
 * Whatever a transaction step, a delivery or a queue write does, it ends in
 * a status: OK, temporary or permanent, with the SMTP reply code and the
 * enhanced status code (RFC 3463) that describe it, a short text fit for a
 * client, and the errno behind it when there was one.  Each program turns a
 * status into its own answer exactly once: mailslot-smtpd into an SMTP
 * reply (the code, enhanced code and text as they are), the injector into
 * a sysexits(3) value (status_exit), the relay into bounce text.  The text
 * never names a file: reasons that do go to the log only.
 */
#ifndef MAILSLOT_STATUS_H
#define MAILSLOT_STATUS_H

#define STATUS_TEXT_MAX 200

enum status_kind { STATUS_OK, STATUS_TEMP, STATUS_PERM };

struct status {
	enum status_kind kind;
	int code;			/* SMTP reply code: 250, 451, 550... */
	char enhanced[8];		/* "4.3.0" */
	char text[STATUS_TEXT_MAX];	/* for the client */
	int err;			/* errno behind a failure, or 0 */
};

/* Fill st; kind follows from the code (2xx/3xx OK, 4xx temporary, 5xx permanent). */
void status_set(struct status *st, int code, const char *enhanced, int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* A temporary failure of the local system described by errno (storage
 * full, quota, lock busy, anything else). */
void status_from_errno(struct status *st, int err);
/* The sysexits(3) value a local injector exits with for st. */
int status_exit(const struct status *st);

#endif
