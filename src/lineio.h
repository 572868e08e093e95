/* lineio: bounded, deadline-limited reading and buffered writing of SMTP lines.
 *
 * Reading never grows a buffer: a command line longer than the caller's
 * buffer is skipped up to its end and reported as LINE_TOOLONG; every line
 * must arrive whole within the timeout (a client trickling one byte a second
 * still times out).  Output is buffered and sent before the next read would
 * block, which is what RFC 2920 pipelining needs.  All octets go through a
 * connection (conn.h): plain descriptors by default, another transport
 * (TLS) once lineio_set_conn() installs it.
 *
 * The DATA reader streams the message to a file descriptor: dot-unstuffing,
 * CRLF to LF, the size cap, and the checks that stop SMTP smuggling: on a
 * network connection only <CRLF>.<CRLF> ends the data, and the reader stops
 * at the end of the first line holding a bare CR or LF (LINE_BARELF), so
 * the caller can refuse and close before anything after it is read, as
 * Postfix's smtpd_forbid_bare_newline does.  From a terminal or a file a
 * bare LF ends a line.
 */
#ifndef MAILSLOT_LINEIO_H
#define MAILSLOT_LINEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "conn.h"

#define LINEIO_INBUF 16384
/* replies gather here while pipelined commands wait: a POP3 client's
 * RETRs go out 64 KiB a write, not a few KiB (4 KiB writes made a
 * 1,000-message session 4 times slower, tests/bench/pop3.sh); pages
 * never written cost an idle session nothing */
#define LINEIO_OUTBUF 65536
#define DATA_LINE_MAX 998	/* RFC 5322 2.1.1: characters per line, without CRLF */

/* LINE_BARELF: only from the DATA reader, on a network connection. */
enum line_status { LINE_OK, LINE_TOOLONG, LINE_EOF, LINE_TIMEOUT, LINE_ERROR, LINE_BARELF };

struct lineio {
	struct conn *conn;	/* the transport; &plain unless a layer replaced it */
	struct conn plain;
	int strict;		/* network connection: CRLF is the only line end in DATA */
	int timeout_ms;
	size_t in_start, in_end;
	size_t out_len;
	int out_error;
	char in[LINEIO_INBUF];
	char out[LINEIO_OUTBUF];
};

struct data_result {
	enum line_status status;	/* LINE_OK: ended by the dot; LINE_BARELF: stopped */
	unsigned long long size;	/* message octets as sent, CRLF counted as two */
	unsigned received_headers;	/* Received: fields in the header section */
	unsigned from_lines;		/* lines mboxrd quoting has to change (>*From ) */
	int too_big, bad_line_end, long_line;
	int write_errno;		/* the spool file could not be written */
};

void lineio_init(struct lineio *io, int in_fd, int out_fd, int strict, long long timeout_s);
/* From now on read and write through c (a TLS layer over the same
 * descriptors); what is buffered stays as it is. */
void lineio_set_conn(struct lineio *io, struct conn *c);
/* One line without its CRLF or LF, NUL-terminated; at most bufsz-3 octets
 * of content (plus CRLF) are accepted. */
enum line_status lineio_getline(struct lineio *io, char *buf, size_t bufsz, size_t *len);
/* Input already buffered: replies are held back while more commands wait. */
size_t lineio_pending(const struct lineio *io);
/* Forget what was read and not yet taken: after STARTTLS, bytes the client
 * pipelined in clear must never pass for ones that came inside TLS. */
void lineio_discard_input(struct lineio *io);
/* Data from the peer waiting before we said anything (an early talker). */
int lineio_peer_spoke(struct lineio *io);
void lineio_write(struct lineio *io, const char *data, size_t len);
int lineio_flush(struct lineio *io);
/* End of session on a socket: send what is buffered, close our side, and
 * read what the peer still sends (briefly, boundedly), so that unread
 * input does not make the kernel answer with a reset that can destroy
 * the last reply. */
void lineio_finish(struct lineio *io);
/* Read a message after 354 into out_fd (LF line ends).  Stops storing, but
 * keeps reading to the end, once the message is over max_size or has a long
 * line; stops reading after a bare CR or LF in strict mode (LINE_BARELF,
 * bad_line_end set: the rest of the input is unread). */
void lineio_read_data(struct lineio *io, int out_fd, unsigned long long max_size,
		      struct data_result *res);

#endif
