/*
 * Least privilege for the daemon's children. The agent worker and the
 * certificate jobs run as [agents] user with no capability; the jobs, which
 * parse PEM an operator sent (hostile until checked), also run under a
 * seccomp allow-list whose default is to kill the process: a parser bug
 * that gains control of a job can write to its pipe and little else.
 */
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <linux/capability.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <seccomp.h>
#include "sandbox.h"

/*
 * The certificate jobs' system calls, found with strace -f over generate
 * (every key type) and install (good and bad sets), in plain and sanitizer
 * builds: memory (malloc's brk and mmap family), randomness (getrandom: the
 * fork-safe DRBG reseeds in the child; getpid is how it notices the fork),
 * time (X.509 validity; the vDSO's fallback), futex (OpenSSL's locks), the
 * pipe (write, read, close), the exit. Nothing opens a file, a socket or a
 * process: OpenSSL's configuration and the time zone are loaded by the
 * parent (pki_init) before any job is forked.
 */
static const int sandbox_job_calls[] = {
	SCMP_SYS(read),
	SCMP_SYS(write),
	SCMP_SYS(close),
	SCMP_SYS(brk),
	SCMP_SYS(mmap),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	SCMP_SYS(mprotect),
	SCMP_SYS(madvise),
	SCMP_SYS(getrandom),
	SCMP_SYS(futex),
	SCMP_SYS(clock_gettime),
	SCMP_SYS(gettimeofday),
	SCMP_SYS(getpid),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
#ifdef __SANITIZE_ADDRESS__
	/* The sanitizers' runtime tears down its signal stack at exit. */
	SCMP_SYS(sigaltstack),
#endif
};

/* generate's RSA keys: the server's is made by a forked helper meanwhile (pki.c). */
static const int sandbox_job_fork_calls[] = {
	SCMP_SYS(pipe2),
	SCMP_SYS(clone),
	SCMP_SYS(wait4),
	SCMP_SYS(set_robust_list),
};

int
sandbox_ids(const char *user, int privileged, struct sandbox_ids *ids, char *err, size_t errlen)
{
	struct passwd *pw;

	memset(ids, 0, sizeof(*ids));
	if (!privileged)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "[agents] user %s does not exist", user);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen,
		    "[agents] user %s has uid %ld and gid %ld: the agent worker never runs as root "
		    "(uid or gid 0); name an unprivileged user, e.g. carotate-agent",
		    user, (long)pw->pw_uid, (long)pw->pw_gid);
		return -1;
	}
	ids->drop = 1;
	ids->uid = pw->pw_uid;
	ids->gid = pw->pw_gid;
	return 0;
}

int
sandbox_setuser(const struct sandbox_ids *ids)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (setgroups(0, NULL) == -1 || setresgid(ids->gid, ids->gid, ids->gid) == -1 ||
	    setresuid(ids->uid, ids->uid, ids->uid) == -1)
		return -1;
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    getgroups(0, NULL) != 0 || ru != ids->uid || eu != ids->uid || su != ids->uid ||
	    rg != ids->gid || eg != ids->gid || sg != ids->gid) {
		errno = EPERM;
		return -1;
	}
	if (setuid(0) != -1 || setgid(0) != -1) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

void
sandbox_drop_bounding(void)
{
	int cap;

	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
}

/* None, whatever securebits the parent set: cleared explicitly and read back (ambient
 * needs no check: it is never more than permitted and inheritable). */
int
sandbox_drop_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int i;

	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) == -1 || syscall(SYS_capget, &hdr, data) == -1)
		return -1;
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		if (data[i].effective != 0 || data[i].permitted != 0 || data[i].inheritable != 0) {
			errno = EPERM;
			return -1;
		}
	}
	return 0;
}

int
sandbox_filter_job(const struct sandbox_ids *ids)
{
	scmp_filter_ctx ctx;
	size_t i;
	int r;

	/* XXX valgrind (3.19) cannot run seccomp(2), nor its own calls under a filter. */
	if (RUNNING_ON_VALGRIND)
		return 1;
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	for (i = 0; i < sizeof(sandbox_job_calls) / sizeof(sandbox_job_calls[0]); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_job_calls[i], 0)) < 0)
			goto fail;
	for (i = 0; ids->may_fork && i < sizeof(sandbox_job_fork_calls) / sizeof(int); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_job_fork_calls[i], 0)) < 0)
			goto fail;
	if ((r = seccomp_load(ctx)) < 0)
		goto fail;
	seccomp_release(ctx);
	return 0;
fail:
	seccomp_release(ctx);
	errno = -r;
	return -1;
}
