/* version: the release string shown by --version and in the greeting. */
#ifndef MAILSLOT_VERSION_H
#define MAILSLOT_VERSION_H
#define MAILSLOT_VERSION "0.1.0"
#endif
