/* deliv_append: call deliver_local() as the transaction layer does, with a
 * struct delivery whose From_ line count is whatever the caller says: the
 * count is to come from the untrusted network-facing process, and an mbox
 * must be right whatever it says.  For delivery.bats.
 *
 *   deliv_append FORMAT SPOOL USER FROM_LINES < message
 *
 * Prints "<code> <enhanced> <text>"; exit 0 when delivered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"

int main(int argc, char **argv)
{
	static const char *const names[] = { "mbox", "maildir", "mh", "numbered" };
	struct config cfg = { .lock_timeout = 5 };
	struct target t = { .has_ids = 0 };
	struct deliver_result res;
	struct stat st;
	int format = -1;

	if (argc != 5)
		return fprintf(stderr, "usage: deliv_append FORMAT SPOOL USER FROM_LINES < message\n"), 64;
	for (int i = 0; i < 4; i++)
		if (strcmp(argv[1], names[i]) == 0)
			format = i;
	if (format < 0 || fstat(0, &st) == -1 || !S_ISREG(st.st_mode))
		return fprintf(stderr, "deliv_append: a known format and a regular file on stdin\n"), 64;
	cfg.format = (enum mail_format)format;
	cfg.spool = argv[2];
	snprintf(t.user, sizeof t.user, "%s", argv[3]);
	snprintf(t.address, sizeof t.address, "%s@example.org", argv[3]);
	struct delivery d = { .msgfd = 0, .size = st.st_size, .from_lines = (unsigned)strtoul(argv[4], NULL, 10),
			      .sender = "sender@remote.example", .qid = "TESTQID", .arrived = time(NULL),
			      .hostname = "mx.test" };
	deliver_local(&cfg, &d, &t, &res);
	printf("%d %s %s\n", res.st.code, res.st.enhanced, res.st.text);
	return res.st.kind == STATUS_OK ? 0 : 1;
}
