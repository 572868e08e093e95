/* sandbox: what the network-facing session applies to itself, for good.
 *
 * In order: every capability dropped (permitted, effective, inheritable,
 * ambient), not dumpable, no_new_privs, then Landlock with an empty
 * ruleset (no path can be opened, created, removed or executed; no TCP
 * bind or connect; no signals or abstract sockets outside the process,
 * as far as the running kernel's Landlock ABI goes; a kernel without
 * Landlock skips this step), then a seccomp filter that allows only the
 * system calls a session makes on descriptors it already holds: reading
 * and writing them, polling, the socketpair to the monitor, time, memory
 * (never executable), a Unix datagram socket for the log, exit.  Any
 * other call kills the process (SIGSYS), which the monitor sees and logs.
 *
 * Every step but Landlock is required: sandbox_enter returns -1 (errno
 * set, *step naming what failed) and the caller must not go on.
 */
#ifndef MAILSLOT_SANDBOX_H
#define MAILSLOT_SANDBOX_H

/* 0, or -1 with errno and *step set.  *landlock_abi tells what Landlock
 * version was applied (0: none). */
int sandbox_enter(const char **step, int *landlock_abi);

#endif
