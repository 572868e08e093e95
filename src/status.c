/* status: building results, and errno and status mapped to codes once. */
#include "status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#define EX_OK 0
#define EX_DATAERR 65
#define EX_NOUSER 67
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_CANTCREAT 73
#define EX_TEMPFAIL 75
#define EX_NOPERM 77

void status_set(struct status *st, int code, const char *enhanced, int err, const char *fmt, ...)
{
	va_list ap;

	st->kind = code < 400 ? STATUS_OK : code < 500 ? STATUS_TEMP : STATUS_PERM;
	st->code = code;
	snprintf(st->enhanced, sizeof st->enhanced, "%s", enhanced ? enhanced : "");
	st->err = err;
	va_start(ap, fmt);
	vsnprintf(st->text, sizeof st->text, fmt, ap);
	va_end(ap);
}

void status_from_errno(struct status *st, int err)
{
	switch (err) {
	case ETIMEDOUT:
		status_set(st, 451, "4.2.0", err, "Mailbox busy (locked), try again later");
		break;
	case ENOSPC:
		status_set(st, 452, "4.3.1", err, "Insufficient system storage");
		break;
	case EDQUOT:
		status_set(st, 452, "4.2.2", err, "Mailbox full");
		break;
	case ENOMEM:
		status_set(st, 451, "4.3.0", err, "Out of memory");
		break;
	default:
		status_set(st, 451, "4.3.0", err, "Local delivery failed, try again later");
		break;
	}
}

int status_exit(const struct status *st)
{
	if (st->kind == STATUS_OK)
		return EX_OK;
	if (st->kind == STATUS_TEMP)
		return st->err == ENOSPC || st->err == EDQUOT ? EX_CANTCREAT : EX_TEMPFAIL;
	/* permanent: the enhanced code's subject (RFC 3463 3.x) says whose fault */
	if (st->enhanced[0] && st->enhanced[2] == '1')
		return EX_NOUSER;
	if (st->enhanced[0] && st->enhanced[2] == '7')
		return EX_NOPERM;
	if (st->enhanced[0] && (st->enhanced[2] == '5' || st->enhanced[2] == '6'))
		return EX_DATAERR;
	return st->code == 554 ? EX_UNAVAILABLE : EX_SOFTWARE;
}
