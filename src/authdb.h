/* authdb: whether a password is right for a user, from a file of name:HASH lines. */
#ifndef MAILSLOT_AUTHDB_H
#define MAILSLOT_AUTHDB_H

#include <stddef.h>

enum authdb_result { AUTHDB_OK = 0, AUTHDB_BAD = 1, AUTHDB_ERROR = -1 };

enum authdb_result authdb_check(const char *file, const char *user, const char *password, char *why, size_t whylen);
/* The same over an open descriptor (read from its start; name for messages). */
enum authdb_result authdb_check_fd(int fd, const char *name, const char *user, const char *password, char *why,
				   size_t whylen);

#endif
