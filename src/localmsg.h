/* localmsg: a message as a program writes it to sendmail, read from a
 * descriptor and passed on as the dot-stuffed text of an inject request.
 *
 * Input is not SMTP: a bare LF ends a line (CRLF is taken too, and
 * becomes LF), and without -i a line holding only "." ends the message,
 * as in sendmail.  Nothing is ever held whole: the header is kept in a
 * fixed buffer (LOCALMSG_HEADER_MAX, more is an error), the body is
 * streamed through a fixed one.  A line longer than RFC 5322's 998
 * characters is broken (Postfix does the same), a header line as a
 * folded continuation, so that the header stays a header.
 *
 * The header ends at its empty line, or at the first line that is not a
 * field (an empty line is put there: the message had no header).  A
 * leading mbox "From " line is dropped.  Bcc: is always removed (Postfix's
 * cleanup does the same); with extract (-t) the addresses of To:, Cc: and
 * Bcc: are collected for the envelope.
 */
#ifndef MAILSLOT_LOCALMSG_H
#define MAILSLOT_LOCALMSG_H

#include <stddef.h>

#include "fileio.h"

#define LOCALMSG_HEADER_MAX (256 * 1024)
#define LOCALMSG_INBUF 65536

enum localmsg_status { LOCALMSG_OK, LOCALMSG_TOOBIG, LOCALMSG_READ_ERROR };

struct localmsg {
	int fd;
	int ignore_dots;	/* -i: a lone "." is text */
	int extract;		/* -t: collect the header's recipients */
	int ended;		/* the lone dot was read, or the end of input */
	int read_errno;
	size_t start, end;	/* unread input in in[] */
	size_t hlen;		/* header octets, ending with its empty line */
	size_t rlen;		/* recipient list: NUL-ended addresses */
	int nrcpt;
	char in[LOCALMSG_INBUF];
	char header[LOCALMSG_HEADER_MAX];
	char rcpts[LOCALMSG_HEADER_MAX];
};

void localmsg_init(struct localmsg *m, int fd, int ignore_dots, int extract);
/* Read the header into m->header (and m->rcpts with extract). */
enum localmsg_status localmsg_read_header(struct localmsg *m);
/* Write the header, then the rest of the input, dot-stuffed, then the
 * final ".".  Reading stops at a read error (LOCALMSG_READ_ERROR: the
 * final dot is not written, so the request is abandoned). */
enum localmsg_status localmsg_copy(struct localmsg *m, struct fileio_buf *out);

#endif
