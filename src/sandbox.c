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

#ifdef SANDBOX_ARCH
/* System calls allowed whatever their arguments.  Each costs one
 * instruction: installing a filter costs time in proportion to its
 * length, and that time is paid by every connection. */
static const unsigned plain_calls[] = {
	/* the client, the spool file, the monitor, the log */
	__NR_read, __NR_write, __NR_readv, __NR_writev, __NR_pread64, __NR_pwrite64,
	__NR_lseek, __NR_ftruncate, __NR_fsync, __NR_fdatasync, __NR_close, __NR_fcntl,
#ifdef __NR_fstat
	__NR_fstat,
#endif
#ifdef __NR_poll
	__NR_poll,
#endif
	__NR_ppoll, __NR_recvfrom, __NR_recvmsg, __NR_sendto, __NR_sendmsg, __NR_shutdown,
	__NR_getsockopt, __NR_setsockopt,
	/* time and waiting */
	__NR_clock_gettime, __NR_gettimeofday,
#ifdef __NR_time
	__NR_time,
#endif
	__NR_nanosleep, __NR_clock_nanosleep, __NR_restart_syscall,
	/* --max-session-time, set once the client is known */
#ifdef __NR_alarm
	__NR_alarm,
#endif
	__NR_setitimer,
	/* memory (mmap and mprotect below: never executable) */
	__NR_brk, __NR_munmap, __NR_mremap, __NR_madvise,
	/* the process itself: log lines carry the pid; abort() signals itself
	 * (Landlock's signal scope keeps that inside the process) */
	__NR_getpid, __NR_gettid, __NR_getrandom, __NR_rt_sigaction, __NR_rt_sigprocmask,
	__NR_rt_sigreturn, __NR_sigaltstack, __NR_tgkill, __NR_exit, __NR_exit_group,
	/* the log's socket (socket() itself below): libc's syslog() and
	 * libsystemd connect when they first log and after a failure */
	__NR_connect,
};

#define FILTER_MAX 96
#define LOW_ARG(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t))
/* jump targets resolved once the filter is complete (offsets are < 256) */
enum { TO_NEXT = 0, TO_KILL = 0x100, TO_ALLOW = 0x101 };

struct filter {
	struct sock_filter insn[FILTER_MAX];
	unsigned jt[FILTER_MAX], jf[FILTER_MAX];
	size_t len;
};

static void emit(struct filter *f, uint16_t code, uint32_t k, unsigned jt, unsigned jf)
{
	if (f->len == FILTER_MAX)
		return;		/* build_filter sees the overflow */
	f->insn[f->len] = (struct sock_filter){ code, 0, 0, k };
	f->jt[f->len] = jt;
	f->jf[f->len] = jf;
	f->len++;
}

/* nr allowed only when argument i (its low 32 bits) has none (or, with
 * required, some) of the bits in mask.  The accumulator then holds the
 * argument, so both branches end in a verdict. */
static void emit_flag_check(struct filter *f, unsigned nr, unsigned i, uint32_t mask, int required)
{
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, nr, TO_NEXT, 2);
	emit(f, BPF_LD | BPF_W | BPF_ABS, LOW_ARG(i), 0, 0);
	emit(f, BPF_JMP | BPF_JSET | BPF_K, mask, required ? TO_ALLOW : TO_KILL,
	     required ? TO_KILL : TO_ALLOW);
}

static int build_filter(struct filter *f)
{
	f->len = 0;
	emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, TO_NEXT, TO_KILL);
	emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
#ifdef __x86_64__
	/* the x32 ABI shares the architecture value: refuse it outright */
	emit(f, BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, TO_KILL, TO_NEXT);
#endif
	for (size_t i = 0; i < sizeof plain_calls / sizeof plain_calls[0]; i++)
		emit(f, BPF_JMP | BPF_JEQ | BPF_K, plain_calls[i], TO_ALLOW, TO_NEXT);
	/* fstat() is fstatat(fd, "", AT_EMPTY_PATH): never a path */
	emit_flag_check(f, __NR_newfstatat, 3, AT_EMPTY_PATH, 1);
	emit_flag_check(f, __NR_mmap, 2, PROT_EXEC, 0);
	emit_flag_check(f, __NR_mprotect, 2, PROT_EXEC, 0);
	/* the log: only a Unix datagram socket can be made, so connect()
	 * reaches nothing an unconnected log socket could not send to */
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, TO_NEXT, TO_KILL);
	emit(f, BPF_LD | BPF_W | BPF_ABS, LOW_ARG(0), 0, 0);
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, TO_NEXT, TO_KILL);
	emit(f, BPF_LD | BPF_W | BPF_ABS, LOW_ARG(1), 0, 0);
	emit(f, BPF_ALU | BPF_AND | BPF_K, 0xf, 0, 0);
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, SOCK_DGRAM, TO_ALLOW, TO_KILL);
	size_t kill = f->len, allow = f->len + 1;
	emit(f, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS, 0, 0);
	emit(f, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
	if (f->len != allow + 1 || allow > 255) {
		errno = E2BIG;	/* a table grown past what the jumps reach */
		return -1;
	}
	for (size_t i = 0; i < f->len; i++) {
		unsigned *target[2] = { &f->jt[i], &f->jf[i] };
		uint8_t *offset[2] = { &f->insn[i].jt, &f->insn[i].jf };
		for (int b = 0; b < 2; b++)
			*offset[b] = (uint8_t)(*target[b] == TO_KILL ? kill - i - 1
					       : *target[b] == TO_ALLOW ? allow - i - 1
					       : *target[b]);
	}
	return 0;
}

static int seccomp_allow_list(void)
{
	static struct filter f;

	if (build_filter(&f) == -1)
		return -1;
	struct sock_fprog prog = { .len = (unsigned short)f.len, .filter = f.insn };
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
