/* sandbox: capabilities, no_new_privs, Landlock and seccomp for the session process. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* Landlock, declared here so that the build does not depend on how new
 * the installed kernel headers are; the numbers are the kernel's ABI. */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif
#define LL_CREATE_RULESET_VERSION 1u
#define LL_NET_BIND_TCP 1ull
#define LL_NET_CONNECT_TCP 2ull
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET 1ull
#define LL_SCOPE_SIGNAL 2ull

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;	/* ABI 4 */
	uint64_t scoped;		/* ABI 6 */
};

/* The allow-list names system calls by number, so it is written for the
 * architectures it was checked on; elsewhere the filter cannot be built
 * and sandbox_enter fails (ENOSYS) rather than run unfiltered. */
#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#endif

static int drop_capabilities(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &hdr, data) == -1)
		return -1;
	/* the ambient set is already empty once permitted is, but say so */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L) == -1 && errno != EINVAL)
		return -1;
	return 0;
}

/* Every right this kernel's Landlock knows, handled, and no rule: nothing
 * is allowed by path.  Returns the ABI applied, 0 when there is none. */
static int landlock_empty(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	struct ll_ruleset_attr attr = { 0 };
	size_t attr_size = sizeof attr.handled_access_fs;

	if (abi < 1)
		return 0;	/* ENOSYS or EOPNOTSUPP: no Landlock here */
	/* file-system rights: 13 in ABI 1, REFER (2), TRUNCATE (3), IOCTL_DEV (5) */
	int fs_bits = abi >= 5 ? 16 : abi >= 3 ? 15 : abi >= 2 ? 14 : 13;
	attr.handled_access_fs = (1ull << fs_bits) - 1;
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr_size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		attr_size = sizeof attr;
	}
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0u);
	if (fd == -1)
		return -1;
	int rc = (int)syscall(SYS_landlock_restrict_self, fd, 0u);
	close(fd);
	return rc == -1 ? -1 : (int)abi;
}

#define LOW_ARG(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t))
#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
/* allowed only when argument i (its low 32 bits) has none of the bits in mask;
 * the accumulator then holds the argument, so both branches return */
#define ALLOW_WITHOUT(nr, i, mask) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_ARG(i)), \
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (mask), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define ALLOW_WITH(nr, i, mask) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_ARG(i)), \
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (mask), 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

#ifdef SANDBOX_ARCH
static const struct sock_filter session_filter[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __x86_64__
	/* the x32 ABI shares the architecture value: refuse it outright */
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
	/* the client, the spool file, the monitor, the log */
	ALLOW(__NR_read),
	ALLOW(__NR_write),
	ALLOW(__NR_readv),
	ALLOW(__NR_writev),
	ALLOW(__NR_pread64),
	ALLOW(__NR_pwrite64),
	ALLOW(__NR_lseek),
	ALLOW(__NR_ftruncate),
	ALLOW(__NR_fsync),
	ALLOW(__NR_fdatasync),
	ALLOW(__NR_close),
	ALLOW(__NR_fcntl),
#ifdef __NR_fstat
	ALLOW(__NR_fstat),
#endif
	/* fstat() is fstatat(fd, "", AT_EMPTY_PATH): never a path */
	ALLOW_WITH(__NR_newfstatat, 3, AT_EMPTY_PATH),
#ifdef __NR_poll
	ALLOW(__NR_poll),
#endif
	ALLOW(__NR_ppoll),
	ALLOW(__NR_recvfrom),
	ALLOW(__NR_recvmsg),
	ALLOW(__NR_sendto),
	ALLOW(__NR_sendmsg),
	ALLOW(__NR_shutdown),
	ALLOW(__NR_getsockopt),
	ALLOW(__NR_setsockopt),
	/* time and waiting */
	ALLOW(__NR_clock_gettime),
	ALLOW(__NR_gettimeofday),
#ifdef __NR_time
	ALLOW(__NR_time),
#endif
	ALLOW(__NR_nanosleep),
	ALLOW(__NR_clock_nanosleep),
	ALLOW(__NR_restart_syscall),
	/* memory, never executable */
	ALLOW(__NR_brk),
	ALLOW_WITHOUT(__NR_mmap, 2, PROT_EXEC),
	ALLOW_WITHOUT(__NR_mprotect, 2, PROT_EXEC),
	ALLOW(__NR_munmap),
	ALLOW(__NR_mremap),
	ALLOW(__NR_madvise),
	/* the process itself: log lines carry the pid; abort() signals itself
	 * (Landlock's signal scope keeps that inside the process) */
	ALLOW(__NR_getpid),
	ALLOW(__NR_gettid),
	ALLOW(__NR_getrandom),
	ALLOW(__NR_rt_sigaction),
	ALLOW(__NR_rt_sigprocmask),
	ALLOW(__NR_rt_sigreturn),
	ALLOW(__NR_sigaltstack),
	ALLOW(__NR_tgkill),
	ALLOW(__NR_exit),
	ALLOW(__NR_exit_group),
	/* the log: libc's syslog() and libsystemd open their datagram socket
	 * when they first need it and reconnect after a failure.  Only a Unix
	 * datagram socket can be made, so connect() reaches nothing an
	 * unconnected log socket could not already send to. */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 7),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_ARG(0)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 3),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LOW_ARG(1)),
	BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_DGRAM, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	ALLOW(__NR_connect),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};

static int seccomp_allow_list(void)
{
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof session_filter / sizeof session_filter[0]),
		.filter = (struct sock_filter *)session_filter,
	};

	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0L, 0L);
}
#else
static int seccomp_allow_list(void)
{
	errno = ENOSYS;
	return -1;
}
#endif

int sandbox_enter(const char **step, int *landlock_abi)
{
	*landlock_abi = 0;
	*step = "dropping capabilities";
	if (drop_capabilities() == -1)
		return -1;
	*step = "clearing the dumpable flag";
	if (prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L) == -1)
		return -1;
	*step = "setting no_new_privs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) == -1)
		return -1;
	*step = "applying Landlock";
	if ((*landlock_abi = landlock_empty()) == -1)
		return -1;
	*step = "installing the seccomp filter";
	return seccomp_allow_list();
}
