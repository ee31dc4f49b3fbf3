/*
 * Least privilege for the daemon's children (carotated(8) PRIVILEGES AND ROLES): whom
 * they run as (the agents' user; privs.c makes the change) and for the
 * certificate jobs a system call allow-list, installed in the child after fork.
 */
#ifndef CAROTATE_SANDBOX_H
#define CAROTATE_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

/* Under valgrind (3.19 cannot run seccomp(2)) the jobs go without their filter. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* Whom a child runs as: drop is 0 when the daemon is not root (no user change). */
struct sandbox_ids {
	int drop;
	uid_t uid;
	gid_t gid;
	int may_fork; /* a certificate job that forks a helper (generate's second RSA key) */
};

/*
 * Resolves user (the agents' user) for a child of a daemon that is privileged
 * or not; read at every use, so that a reloaded configuration applies. 0, or
 * -1 with err filled in (no such user, or uid or gid 0).
 */
int sandbox_ids(const char *user, int privileged, struct sandbox_ids *, char *err, size_t errlen);
/*
 * Installs the certificate jobs' filter: the system calls that parsing and
 * checking PEM, generating keys with OpenSSL and writing the result to a pipe
 * make, and nothing else; any other call kills the process (SIGSYS). Needs
 * no_new_privs. With ids->may_fork, also what a fork, a pipe and the wait for
 * the helper take (the helper inherits the filter, and nothing may exec).
 * 0, 1 when not installed because valgrind runs us (it cannot
 * run seccomp(2)), or -1 (errno).
 */
int sandbox_filter_job(const struct sandbox_ids *);

#endif
