/* Short-lived child processes, watched from the event loop: never block it. */
#ifndef CAROTATE_JOB_H
#define CAROTATE_JOB_H

#include <stddef.h>
#include <sys/types.h>

struct event_base;
struct job;
struct sandbox_ids;

typedef void (*job_done_fn)(struct job *, void *arg);
/* Runs in the child; writes its result to fd; returns the child's exit status. */
typedef int (*job_fn)(void *arg, int fd);

/*
 * Forks a child running fn(arg, fd). Its output (at most max_out bytes, else
 * it is killed) is collected; done runs once it has exited or was killed at
 * timeout_ms. NULL (errno set) when it could not be started.
 */
struct job *job_fork(struct event_base *, const char *name, job_fn, void *arg, unsigned timeout_ms,
    size_t max_out, job_done_fn, void *done_arg);
/*
 * job_fork for a child that handles hostile input: it runs as ids (when
 * ids->drop), with no capability, no_new_privs, no descriptor but stdio and
 * its pipe, not dumpable, under sandbox_filter_job. A call outside the filter
 * kills it with SIGSYS (job_filtered). A child whose confinement fails exits
 * 127 before fn runs.
 */
struct job *job_fork_confined(struct event_base *, const char *name, job_fn, void *arg,
    const struct sandbox_ids *ids, unsigned timeout_ms, size_t max_out, job_done_fn,
    void *done_arg);
/*
 * Runs argv (no shell) in its own process group with stdin on /dev/null and
 * stdout and stderr collected (the last max_out bytes kept), no other
 * descriptor, no capability (still as our uid: root may signal root's
 * processes without one) and only PATH and LANG in its environment.
 */
struct job *job_exec(struct event_base *, char *const argv[], unsigned timeout_ms, size_t max_out,
    job_done_fn, void *done_arg);

/* The soft descriptor limit of the programs job_exec runs (the daemon raised its own). */
void job_set_nofile(unsigned long long soft);

const char *job_name(const struct job *);
/* What the child wrote (not NUL-terminated; may be NULL when empty). */
const unsigned char *job_output(const struct job *, size_t *len);
/* Exit status, or -1 when killed by a signal or at the time limit. */
int job_exit_status(const struct job *);
int job_signal(const struct job *); /* the signal that ended it, or 0 */
/* A confined job killed by its system call filter (SIGSYS). */
int job_filtered(const struct job *);
int job_timed_out(const struct job *);
int job_overflowed(const struct job *); /* job_fork: the output exceeded max_out */
/*
 * "exited 0", "exited 3", "killed by signal 11", "killed by its syscall
 * filter (signal 31)", "timed out after 30 s".
 */
const char *job_describe(const struct job *, char *buf, size_t len);
/* Frees a finished job (call from or after the done callback). */
void job_free(struct job *);
/* Kills every running job and waits for them (shutdown). */
void job_kill_all(void);

/*
 * Watches for the exit of child pid: an event on its pidfd (*pidfd), added to
 * base. Where the kernel has no pidfd_open (before Linux 5.3; valgrind 3.19
 * does not know it either) *pidfd is -1 and the event fires on every SIGCHLD,
 * and once at once in case the child has already gone: cb must then call
 * waitpid(pid, WNOHANG) and take 0 as "not yet". NULL (errno set) on failure.
 */
struct event *job_exit_event(
    struct event_base *, pid_t pid, int *pidfd, void (*cb)(int, short, void *), void *arg);
/* Waits up to ms for child pid to exit and reaps it: pid (and *status), or 0 if still running. */
pid_t job_wait_exit(pid_t pid, int pidfd, unsigned ms, int *status);

#endif
