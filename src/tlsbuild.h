/* tlsbuild: the plain build of a handler hands over to its TLS build.
 *
 * mailslot-smtpd and mailslot-pop3d are each built twice: without OpenSSL
 * (tls_off.c), so that a plain connection does not pay for relocating
 * libcrypto at every start, and as PROGRAM-tls with it (tls.c).  When TLS
 * is configured the plain build runs the TLS one, found beside itself
 * (/proc/self/exe plus "-tls"), with the same command line.
 */
#ifndef MAILSLOT_TLSBUILD_H
#define MAILSLOT_TLSBUILD_H

#include <stddef.h>

/* Exec PROGRAM-tls with argv; returns only on failure, with why filled
 * ("TLS is configured, and /usr/sbin/x-tls cannot be run: ..."). */
void tlsbuild_exec(char **argv, const char *progname, char *why, size_t whylen);

#endif
