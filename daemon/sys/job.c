/*
 * Child processes the daemon waits for without blocking: certificate work
 * (RSA key generation takes seconds; parsing hostile input is safer in a
 * process that can die alone) and the proxy's reload command. A process is
 * done when its pidfd says it exited, not when its output closes: a reload
 * command may leave a daemon behind that holds the pipe open.
 */
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "fault.h"
#include "job.h"
#include "log.h"
#include "privs.h"
#include "sandbox.h"
#include "xmalloc.h"

#define JOB_CHILD_FD 3 /* a function child's pipe */
#define JOB_PATH     "/usr/sbin:/usr/bin:/sbin:/bin"

struct job {
	LIST_ENTRY(job) entry;
	char *name;
	pid_t pid;
	int pidfd;
	int outfd;
	int exec;     /* output is a tail to keep, not a result that must fit */
	int confined; /* under the system call filter: SIGSYS is the filter's */
	struct event *ev_out;
	struct event *ev_exit;
	struct event *ev_timer;
	unsigned char *out;
	size_t out_len;
	size_t max_out;
	unsigned timeout_ms;
	int status; /* from waitpid */
	int timed_out;
	int overflowed;
	int finished;
	job_done_fn done;
	void *done_arg;
};

static LIST_HEAD(, job) job_running = LIST_HEAD_INITIALIZER(job_running);
static unsigned long long job_nofile; /* programs' soft descriptor limit; 0: ours */

static struct job *job_new(const char *, unsigned, size_t, job_done_fn, void *);
static int job_watch(struct job *, struct event_base *, pid_t, int);
static void job_child_setup(void);
static void job_child_nofile(void);
struct job_child;
static int job_child_fds(int);
static const char *job_child_confine(const struct sandbox_ids *, pid_t);
static void job_child_function(const struct job_child *, int, pid_t) __attribute__((noreturn));
static void job_child_exec(const struct job_child *, int) __attribute__((noreturn));
static void job_child_run(const struct job_child *, int, pid_t) __attribute__((noreturn));
static void job_read(evutil_socket_t, short, void *);
static void job_exited(evutil_socket_t, short, void *);
static void job_timeout(evutil_socket_t, short, void *);
static void job_append(struct job *, const unsigned char *, size_t);
static void job_finish(struct job *);

static struct job *
job_new(const char *name, unsigned timeout_ms, size_t max_out, job_done_fn done, void *done_arg)
{
	struct job *job = xcalloc(1, sizeof(*job));

	job->name = xstrdup(name);
	job->pid = -1;
	job->pidfd = job->outfd = -1;
	job->timeout_ms = timeout_ms;
	job->max_out = max_out;
	job->done = done;
	job->done_arg = done_arg;
	return job;
}

/* A child starts with the default signal dispositions and an empty mask. */
static void
job_child_setup(void)
{
	sigset_t none;
	int sig;

	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void
job_set_nofile(unsigned long long soft)
{
	job_nofile = soft;
}

/* A program may use select(), which breaks on descriptors above 1023: give it our start limit. */
static void
job_child_nofile(void)
{
	struct rlimit rl;

	if (job_nofile == 0 || getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur <= job_nofile)
		return;
	rl.rlim_cur = (rlim_t)job_nofile;
	setrlimit(RLIMIT_NOFILE, &rl);
}

struct event *
job_exit_event(
    struct event_base *base, pid_t pid, int *pidfd, void (*cb)(int, short, void *), void *arg)
{
	struct event *ev;

	if ((*pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) != -1)
		ev = event_new(base, *pidfd, EV_READ | EV_PERSIST, cb, arg);
	else if (errno == ENOSYS)
		ev = evsignal_new(base, SIGCHLD, cb, arg);
	else
		return NULL;
	if (ev == NULL)
		fatalx("%s: out of memory", __func__);
	event_add(ev, NULL);
	/* A SIGCHLD sent before the event was added went nowhere. */
	if (*pidfd == -1)
		event_active(ev, EV_SIGNAL, 1);
	return ev;
}

pid_t
job_wait_exit(pid_t pid, int pidfd, unsigned ms, int *status)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	unsigned waited;
	pid_t r;

	if (pidfd != -1 && poll(&pfd, 1, (int)ms) != 1)
		return 0;
	for (waited = 0;; waited += 10) {
		while (
		    (r = waitpid(pid, status, pidfd != -1 ? 0 : WNOHANG)) == -1 && errno == EINTR)
			;
		if (r == pid || r == -1 || waited >= ms)
			return r == pid ? pid : 0;
		usleep(10000);
	}
}

/* Registers the child's exit (pidfd), output and deadline with the loop. */
static int
job_watch(struct job *job, struct event_base *base, pid_t pid, int outfd)
{
	struct timeval tv = { job->timeout_ms / 1000, (job->timeout_ms % 1000) * 1000 };

	job->pid = pid;
	job->outfd = outfd;
	if ((job->ev_exit = job_exit_event(base, pid, &job->pidfd, job_exited, job)) == NULL)
		return -1;
	evutil_make_socket_nonblocking(outfd);
	job->ev_out = event_new(base, outfd, EV_READ | EV_PERSIST, job_read, job);
	job->ev_timer = evtimer_new(base, job_timeout, job);
	if (job->ev_out == NULL || job->ev_timer == NULL)
		fatalx("%s: out of memory", __func__);
	event_add(job->ev_out, NULL);
	evtimer_add(job->ev_timer, &tv);
	LIST_INSERT_HEAD(&job_running, job, entry);
	log_debug("job %s: started pid %ld", job->name, (long)pid);
	return 0;
}

/* What a new child runs: a function, or a program. Never returns. */
struct job_child {
	const char *name;
	job_fn fn;
	void *arg;
	char *const *argv;
	const struct sandbox_ids *ids; /* a confined function child */
};

/*
 * The child's pipe moves to 3 and every other descriptor but stdio closes:
 * nothing of the daemon's (ledger, sockets, the SSL directory) stays within
 * reach of the child. Syslog's socket goes first, so that the number it
 * keeps never names another file; a later log line reopens it. The pipe's
 * new number, or -1.
 */
static int
job_child_fds(int fd)
{
	closelog();
	if (fd != JOB_CHILD_FD && dup2(fd, JOB_CHILD_FD) == -1)
		return -1;
	if (close_range(JOB_CHILD_FD + 1, ~0U, 0) == -1)
		return -1;
	return JOB_CHILD_FD;
}

/*
 * The steps that confine a child handling hostile input, in the order the
 * kernel needs: its privileges (privs_drop_job: the user change, which
 * clears the parent death signal, then no capability, not dumpable,
 * no_new_privs, which the filter needs), the parent death signal, then the
 * filter. The name of the step that failed, or NULL.
 */
static const char *
job_child_confine(const struct sandbox_ids *ids, pid_t parent)
{
	const char *step;

	if ((step = privs_drop_job(ids)) != NULL)
		return step;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1 || getppid() != parent)
		return "parent death signal";
	return sandbox_filter_job(ids) == -1 ? "system call filter" : NULL;
}

/*
 * A function child works for the daemon only: it dies with it (so that a
 * restart after a crash finds the sockets free), holds only its pipe, and
 * has no capability; a confined one more (job_child_confine).
 */
static void __attribute__((noreturn))
job_child_function(const struct job_child *c, int fd, pid_t parent)
{
	const char *step = NULL;

	prctl(PR_SET_NAME, "carotated-job", 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1 || getppid() != parent)
		_exit(127);
	if ((fd = job_child_fds(fd)) == -1)
		step = "descriptors";
	else if (c->ids != NULL)
		step = job_child_confine(c->ids, parent);
	else
		step = privs_drop_function();
	if (step != NULL) {
		log_warn("job %s: %s", c->name, step);
		_exit(127);
	}
	if (c->ids != NULL)
		fault_confined(c->name);
	_exit(c->fn(c->arg, fd));
}

/*
 * A program gets stdio and nothing else, no capability and only PATH and
 * LANG: not the ledger, the listeners or $NOTIFY_SOCKET. It runs as our uid,
 * which is all `systemctl reload` (root on systemd's private socket) and
 * `nginx -s reload` (a signal to root's master) need.
 */
static void __attribute__((noreturn)) job_child_exec(const struct job_child *c, int fd)
{
	char *envp[] = { (char *)"PATH=" JOB_PATH, (char *)"LANG=C", NULL };
	const char *step;
	int null;

	/* Its own process group, so that whatever it leaves behind can be killed with it. */
	setpgid(0, 0);
	job_child_nofile();
	closelog();
	if ((null = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1 || dup2(null, 0) == -1 ||
	    dup2(fd, 1) == -1 || dup2(fd, 2) == -1 || close_range(3, ~0U, 0) == -1)
		_exit(127);
	if ((step = privs_drop_exec()) != NULL) {
		dprintf(2, "cannot drop the %s of %s: %s\n", step, c->argv[0], strerror(errno));
		_exit(127);
	}
	execve(c->argv[0], c->argv, envp);
	dprintf(2, "cannot run %s: %s\n", c->argv[0], strerror(errno));
	_exit(127);
}

static void __attribute__((noreturn)) job_child_run(const struct job_child *c, int fd, pid_t parent)
{
	job_child_setup();
	if (c->argv == NULL)
		job_child_function(c, fd, parent);
	job_child_exec(c, fd);
}

/* Forks the child with a pipe for its output and hands it to the event loop. */
static struct job *
job_spawn(struct event_base *base, const char *name, const struct job_child *c, unsigned timeout_ms,
    size_t max_out, job_done_fn done, void *done_arg)
{
	struct job *job;
	int fds[2], saved;
	pid_t pid, parent;

#ifdef CAROTATE_FUZZ
	/*
	 * Fuzz targets start no process per input: every job fails to start, as
	 * it does here when fork or pipe2 fails, and the callers' paths for that run.
	 */
	errno = EAGAIN;
	return NULL;
#endif
	if (pipe2(fds, O_CLOEXEC) == -1)
		return NULL;
	privs_prepare();
	parent = getpid();
	if ((pid = fork()) == -1) {
		saved = errno;
		close(fds[0]);
		close(fds[1]);
		errno = saved;
		return NULL;
	}
	if (pid == 0) {
		close(fds[0]);
		job_child_run(c, fds[1], parent);
	}
	close(fds[1]);
	job = job_new(name, timeout_ms, max_out, done, done_arg);
	job->exec = c->argv != NULL;
	if (job_watch(job, base, pid, fds[0]) == -1) {
		saved = errno;
		kill(job->exec ? -pid : pid, SIGKILL);
		waitpid(pid, NULL, 0);
		job->finished = 1;
		job_free(job);
		errno = saved;
		return NULL;
	}
	return job;
}

struct job *
job_fork(struct event_base *base, const char *name, job_fn fn, void *arg, unsigned timeout_ms,
    size_t max_out, job_done_fn done, void *done_arg)
{
	struct job_child c = { name, fn, arg, NULL, NULL };

	return job_spawn(base, name, &c, timeout_ms, max_out, done, done_arg);
}

struct job *
job_fork_confined(struct event_base *base, const char *name, job_fn fn, void *arg,
    const struct sandbox_ids *ids, unsigned timeout_ms, size_t max_out, job_done_fn done,
    void *done_arg)
{
	struct job_child c = { name, fn, arg, NULL, ids };
	struct job *job;

	if ((job = job_spawn(base, name, &c, timeout_ms, max_out, done, done_arg)) != NULL)
		job->confined = 1;
	fault_confined_spent(name);
	return job;
}

struct job *
job_exec(struct event_base *base, char *const argv[], unsigned timeout_ms, size_t max_out,
    job_done_fn done, void *done_arg)
{
	struct job_child c = { argv[0], NULL, NULL, argv, NULL };

	return job_spawn(base, argv[0], &c, timeout_ms, max_out, done, done_arg);
}

/* Result output must fit whole; a command's output keeps only its tail. */
static void
job_append(struct job *job, const unsigned char *p, size_t n)
{
	if (!job->exec && job->out_len + n > job->max_out) {
		job->overflowed = 1;
		kill(job->pid, SIGKILL);
		return;
	}
	if (job->exec && n >= job->max_out) {
		p += n - job->max_out;
		n = job->max_out;
	}
	if (job->exec && job->out_len + n > job->max_out) {
		size_t drop = job->out_len + n - job->max_out;

		memmove(job->out, job->out + drop, job->out_len - drop);
		job->out_len -= drop;
	}
	if (n == 0)
		return;
	job->out = xreallocarray(job->out, job->out_len + n, 1);
	memcpy(job->out + job->out_len, p, n);
	job->out_len += n;
}

static void
job_read(evutil_socket_t fd, short events, void *arg)
{
	struct job *job = arg;
	unsigned char buf[16384];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		job_append(job, buf, (size_t)n);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		event_del(job->ev_out);
		close(job->outfd);
		job->outfd = -1;
	}
}

static void
job_exited(evutil_socket_t fd, short events, void *arg)
{
	struct job *job = arg;

	if (waitpid(job->pid, &job->status, WNOHANG) != job->pid)
		return;
	/* Whatever the child wrote before it exited is in the pipe now. */
	if (job->outfd != -1)
		job_read(job->outfd, EV_READ, job);
	job_finish(job);
}

static void
job_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct job *job = arg;

	log_warnx("job %s: pid %ld still running after %u ms; killing it", job->name,
	    (long)job->pid, job->timeout_ms);
	job->timed_out = 1;
	kill(job->exec ? -job->pid : job->pid, SIGKILL);
}

static void
job_finish(struct job *job)
{
	char why[64];

	job->finished = 1;
	LIST_REMOVE(job, entry);
	event_del(job->ev_exit);
	event_del(job->ev_timer);
	if (job->ev_out != NULL)
		event_del(job->ev_out);
	/* A command's leftover children die with its process group. */
	if (job->exec)
		kill(-job->pid, SIGKILL);
	log_debug(
	    "job %s: pid %ld %s", job->name, (long)job->pid, job_describe(job, why, sizeof(why)));
	job->done(job, job->done_arg);
}

const char *
job_name(const struct job *job)
{
	return job->name;
}

const unsigned char *
job_output(const struct job *job, size_t *len)
{
	*len = job->out_len;
	return job->out;
}

int
job_exit_status(const struct job *job)
{
	if (job->timed_out || job->overflowed || !WIFEXITED(job->status))
		return -1;
	return WEXITSTATUS(job->status);
}

int
job_signal(const struct job *job)
{
	return WIFSIGNALED(job->status) ? WTERMSIG(job->status) : 0;
}

int
job_filtered(const struct job *job)
{
	return job->confined && job_signal(job) == SIGSYS;
}

int
job_timed_out(const struct job *job)
{
	return job->timed_out;
}

int
job_overflowed(const struct job *job)
{
	return job->overflowed;
}

const char *
job_describe(const struct job *job, char *buf, size_t len)
{
	if (job->timed_out)
		snprintf(buf, len, "timed out after %u s", (job->timeout_ms + 999) / 1000);
	else if (job->overflowed)
		snprintf(buf, len, "killed: output over %zu bytes", job->max_out);
	else if (job_filtered(job))
		snprintf(buf, len, "killed by its syscall filter (signal %d)", SIGSYS);
	else if (WIFSIGNALED(job->status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(job->status));
	else
		snprintf(buf, len, "exited %d", WEXITSTATUS(job->status));
	return buf;
}

void
job_free(struct job *job)
{
	if (job == NULL)
		return;
	if (!job->finished)
		fatalx("%s: job %s is still running", __func__, job->name);
	if (job->ev_out != NULL)
		event_free(job->ev_out);
	if (job->ev_exit != NULL)
		event_free(job->ev_exit);
	if (job->ev_timer != NULL)
		event_free(job->ev_timer);
	if (job->outfd != -1)
		close(job->outfd);
	if (job->pidfd != -1)
		close(job->pidfd);
	if (job->out != NULL)
		explicit_bzero(job->out, job->out_len);
	free(job->out);
	free(job->name);
	free(job);
}

void
job_kill_all(void)
{
	struct job *job;

	while ((job = LIST_FIRST(&job_running)) != NULL) {
		kill(job->exec ? -job->pid : job->pid, SIGKILL);
		waitpid(job->pid, &job->status, 0);
		LIST_REMOVE(job, entry);
		job->finished = 1;
		job_free(job);
	}
}
