/* deliv_mbread: drive the reading side of the mailbox layer (mailbox.h) as
 * the POP3 server will, for delivery.bats.
 *
 *   deliv_mbread FORMAT SPOOL USER list          "uid size lines" a line
 *   deliv_mbread FORMAT SPOOL USER read N        message N (1-based) to stdout
 *   deliv_mbread FORMAT SPOOL USER delete N...   mark, then apply
 *
 * Exit 0, or 1 with "deliv_mbread: <reason>" on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox.h"

static const char *const names[] = { "mbox", "maildir", "mh", "numbered" };

int main(int argc, char **argv)
{
	struct mailbox mb;
	char why[256];
	int format = -1, err = 0;

	if (argc < 5)
		return fprintf(stderr, "usage: deliv_mbread FORMAT SPOOL USER list|read N|delete N...\n"), 64;
	for (int i = 0; i < 4; i++)
		if (strcmp(argv[1], names[i]) == 0)
			format = i;
	if (format < 0)
		return fprintf(stderr, "deliv_mbread: unknown format %s\n", argv[1]), 64;
	if ((err = mailbox_open(&mb, (enum mail_format)format, argv[2], argv[3], geteuid(), 5, why, sizeof why))) {
		fprintf(stderr, "deliv_mbread: open: %s\n", why[0] ? why : strerror(err));
		return 1;
	}
	if (strcmp(argv[4], "list") == 0) {
		for (size_t i = 0; i < mb.count; i++)
			printf("%s %lld %lld\n", mb.entry[i].uid, (long long)mb.entry[i].size,
			       (long long)mb.entry[i].lines);
	} else if (strcmp(argv[4], "read") == 0 && argc == 6) {
		fflush(stdout);
		err = mailbox_read(&mb, strtoul(argv[5], NULL, 10) - 1, 1);
	} else if (strcmp(argv[4], "delete") == 0) {
		for (int i = 5; i < argc && !err; i++)
			err = mailbox_delete(&mb, strtoul(argv[i], NULL, 10) - 1);
		if (!err)
			err = mailbox_apply(&mb);
	} else {
		err = EINVAL;
	}
	if (err)
		fprintf(stderr, "deliv_mbread: %s: %s\n", argv[4], why[0] ? why : strerror(err));
	mailbox_close(&mb);
	return err ? 1 : 0;
}
