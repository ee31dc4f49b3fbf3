/*
 * Least privilege for the daemon's children. The agent worker and the
 * certificate jobs run as [agents] user with no capability (privs.c drops
 * them); the jobs, which parse PEM an operator sent (hostile until checked),
 * also run under a seccomp allow-list whose default is to kill the process:
 * a parser bug that gains control of a job can write to its pipe and little
 * else.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

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
