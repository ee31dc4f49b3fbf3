/*
 * The agent workers, seen from the parent. supervise_bind makes the two agent
 * sockets at start-up (as root, before any privilege is dropped); each socket
 * gets a worker of its own, with a socketpair of its own, so that which
 * socket a request came in on is known here from the socketpair it was read
 * from, never from anything a worker says (carotate-protocol(7) AGENT PROTOCOL). Each worker is
 * forked, moved to the agent user with no capabilities and no_new_privs, and re-executed from our
 * own binary so that it starts from a clean image holding none of the parent's memory. Its frames
 * are checked for size before they are buffered and for meaning after they are decoded: anything
 * wrong kills the worker, never the parent. A dead worker is restarted after a delay that doubles
 * while it keeps dying young.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "carotated.h"
#include "config.h"
#include "job.h"
#include "log.h"
#include "privs.h"
#include "sandbox.h"
#include "unixsock.h"
#include "valid.h"
#include "supervise.h"
#include "wire.h"
#include "worker.h"
#include "xmalloc.h"

#define SUPERVISE_BACKLOG    1024 /* nginx may open many upstream connections at once */
#define SUPERVISE_DELAY_MIN  1    /* s before restarting a worker */
#define SUPERVISE_DELAY_MAX  60
#define SUPERVISE_STABLE     60 /* s a worker must have run for the delay to start over */
#define SUPERVISE_READ_MAX   (256u * 1024)       /* bytes per read: bounds one batch */
#define SUPERVISE_MAX_INPUT  (1024u * 1024)      /* bytes buffered from the worker */
#define SUPERVISE_MAX_OUTPUT (64u * 1024 * 1024) /* answers queued to a worker not reading */
#define SUPERVISE_UNPACK     1024 /* unpack budget per frame, on top of twice its length */
#define SUPERVISE_GEN_SHIFT  48   /* seq = generation << 48 | the worker's seq */
#define SUPERVISE_GRACE_MS   1000 /* a stopping worker's time to exit before SIGKILL */

extern char **environ;

/* A listening socket a worker serves; made once, kept across worker restarts. */
struct supervise_socket {
	const char *what; /* for the log: "agent worker", "canary worker" */
	const char *site; /* `carotated --worker SITE` */
	int worker_fd;    /* where the worker finds it (WORKER_FD_AGENTS, WORKER_FD_CANARY) */
	char *path;
	int fd;
	dev_t dev; /* of the socket file we made, so we only ever unlink our own */
	ino_t ino;
};

struct supervise {
	struct carotated *cd;
	enum supervise_site site;
	struct supervise_socket *sock; /* supervise_sockets[site] */
	supervise_request_fn fn;
	void *arg;
	pid_t pid; /* -1: no worker */
	int pidfd;
	struct event *ev_exit;
	struct bufferevent *bev;
	struct event *ev_restart;
	unsigned delay;          /* s before the next restart */
	struct timespec started; /* CLOCK_MONOTONIC, of the last start */
	uint64_t gen;            /* 1-65535, of the worker running now */
	int doomed;              /* killed by us: what it sends is ignored */
	int kill_reason;         /* last_error holds why supervise_kill killed it */
	Carotate__Internal__AgentRequest **batch;
	size_t batch_cap;
	unsigned starts;                      /* workers forked (or tried) since supervise_start */
	char last_error[SUPERVISE_ERROR_LEN]; /* why the last worker ended or did not start */
	time_t last_error_at;
};

static struct supervise_socket supervise_sockets[] = {
	[SUPERVISE_AGENTS] = { "agent worker", "agents", WORKER_FD_AGENTS, NULL, -1, 0, 0 },
	[SUPERVISE_CANARY] = { "canary worker", "canary", WORKER_FD_CANARY, NULL, -1, 0, 0 },
};
static const char *supervise_exec = "/proc/self/exe";
/*
 * supervise_exec opened once, at the first start: the worker is exec'ed from
 * this descriptor (as /proc/self/fd/6), the binary the parent runs even when
 * a package upgrade replaced the file. Unlike an exec of /proc/self/exe, this
 * also works under valgrind, whose own binary /proc/self/exe names there.
 */
static int supervise_exe_fd = -1;
_Static_assert(WORKER_FD_EXE == 6, "the worker is exec'ed as /proc/self/fd/6");

static int supervise_bind_one(
    struct supervise_socket *, const char *, const struct group *, char *, size_t);
static void supervise_unbind(struct supervise_socket *);
static void supervise_unbind_all(void);
static int supervise_ids(struct supervise *, struct sandbox_ids *);
static void supervise_spawn(struct supervise *);
static void supervise_watch(struct supervise *, pid_t, int, struct event *, int);
static void supervise_child(const struct supervise *, int, const struct sandbox_ids *, pid_t)
    __attribute__((noreturn));
static const char *supervise_child_setup(const struct supervise *, int, const struct sandbox_ids *);
static int supervise_child_fds(const struct supervise *, int);
static void supervise_child_env(char **, size_t);
static void supervise_restart(evutil_socket_t, short, void *);
static void supervise_schedule(struct supervise *);
static void supervise_exited(evutil_socket_t, short, void *);
static void supervise_log_exit(struct supervise *, pid_t, int);
static void supervise_end(struct supervise *);
static void supervise_reap(struct supervise *);
static void supervise_kill(struct supervise *, const char *);
static void supervise_read(struct bufferevent *, void *);
static const char *supervise_batch(struct supervise *, struct evbuffer *);
static void supervise_event(struct bufferevent *, short, void *);
static const char *supervise_check(const Carotate__Internal__AgentRequest *);
static void supervise_failed(struct supervise *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

int
supervise_bind(const struct config *conf, int privileged, char *err, size_t errlen)
{
	const char *paths[] = { conf->agents_socket, conf->agents_canary_socket };
	struct group *gr = NULL;
	size_t i;

	if (supervise_sockets[SUPERVISE_AGENTS].fd != -1) {
		snprintf(err, errlen, "the agent sockets are already bound");
		return -1;
	}
	if (privileged && (gr = getgrnam(conf->agents_group)) == NULL) {
		snprintf(err, errlen, "agents group %s does not exist", conf->agents_group);
		return -1;
	}
	if (strcmp(paths[0], paths[1]) == 0) {
		snprintf(err, errlen, "[agents] socket and canary_socket are both %s", paths[0]);
		return -1;
	}
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (supervise_bind_one(&supervise_sockets[i], paths[i], gr, err, errlen) == -1) {
			supervise_unbind_all();
			return -1;
		}
	}
	return 0;
}

/* As control_bind: born 0660 in a directory nobody else may write, never over a live one. */
static int
supervise_bind_one(
    struct supervise_socket *s, const char *path, const struct group *gr, char *err, size_t errlen)
{
	int fd = unixsock_listen(path, gr != NULL ? gr->gr_gid : UNIXSOCK_NO_GROUP,
	    SUPERVISE_BACKLOG, &s->dev, &s->ino, err, errlen);

	if (fd == -1)
		return -1;
	s->path = xstrdup(path);
	s->fd = fd;
	return 0;
}

static void
supervise_unbind(struct supervise_socket *s)
{
	if (s->fd == -1)
		return;
	unixsock_unlink(s->path, s->dev, s->ino);
	close(s->fd);
	s->fd = -1;
	free(s->path);
	s->path = NULL;
}

static void
supervise_unbind_all(void)
{
	size_t i;

	for (i = 0; i < sizeof(supervise_sockets) / sizeof(supervise_sockets[0]); i++)
		supervise_unbind(&supervise_sockets[i]);
}

void
supervise_set_exec_path(const char *path)
{
	supervise_exec = path;
}

struct supervise *
supervise_start(struct carotated *cd, enum supervise_site site, supervise_request_fn fn, void *arg)
{
	struct supervise *sv = xcalloc(1, sizeof(*sv));

	if ((unsigned)site >= sizeof(supervise_sockets) / sizeof(supervise_sockets[0]) ||
	    supervise_sockets[site].fd == -1)
		fatalx("%s: the agent sockets are not bound", __func__);
	sv->cd = cd;
	sv->site = site;
	sv->sock = &supervise_sockets[site];
	sv->fn = fn;
	sv->arg = arg;
	sv->pid = -1;
	sv->pidfd = -1;
	sv->delay = SUPERVISE_DELAY_MIN;
	if (supervise_exe_fd == -1 &&
	    (supervise_exe_fd = open(supervise_exec, O_RDONLY | O_CLOEXEC)) == -1)
		log_warn("agent worker: %s", supervise_exec);
	if ((sv->ev_restart = evtimer_new(cd->base, supervise_restart, sv)) == NULL)
		fatalx("%s: out of memory", __func__);
	supervise_spawn(sv);
	return sv;
}

/* NULL: only the sockets of supervise_bind (start-up failed before supervise_start). */
void
supervise_stop(struct supervise *sv)
{
	if (sv == NULL) {
		supervise_unbind_all();
		return;
	}
	if (sv->pid != -1)
		supervise_end(sv);
	event_free(sv->ev_restart);
	supervise_unbind(sv->sock);
	free(sv->batch);
	free(sv);
}

pid_t
supervise_worker_pid(const struct supervise *sv)
{
	return sv->pid;
}

enum supervise_site
supervise_site(const struct supervise *sv)
{
	return sv->site;
}

void
supervise_health(const struct supervise *sv, struct supervise_health *h)
{
	h->running = sv->pid != -1;
	h->pid = sv->pid;
	h->restarts = sv->starts > 0 ? sv->starts - 1 : 0;
	h->last_error = sv->last_error;
	h->last_error_at = sv->last_error_at;
}

/* Remembers why a worker is down, for status, where the log may not be at hand. */
static void
supervise_failed(struct supervise *sv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sv->last_error, sizeof(sv->last_error), fmt, ap);
	va_end(ap);
	sv->last_error_at = time(NULL);
}

int
supervise_check_user(const char *user, char *err, size_t errlen)
{
	struct sandbox_ids ids;

	return sandbox_ids(user, 1, &ids, err, errlen);
}

/* Read at every start, so that a reloaded configuration applies to the next worker. */
static int
supervise_ids(struct supervise *sv, struct sandbox_ids *ids)
{
	char err[SUPERVISE_ERROR_LEN];

	if (sandbox_ids(sv->cd->conf->agents_user, sv->cd->privileged, ids, err, sizeof(err)) ==
	    -1) {
		log_warnx("%s; the %s stays down", err, sv->sock->what);
		supervise_failed(sv, "%s", err);
		return -1;
	}
	return 0;
}

static void
supervise_spawn(struct supervise *sv)
{
	struct sandbox_ids ids;
	pid_t parent = getpid(), pid;
	struct event *ev_exit;
	int sp[2], pidfd;

	clock_gettime(CLOCK_MONOTONIC, &sv->started);
	sv->starts++;
	if (supervise_ids(sv, &ids) == -1) {
		supervise_schedule(sv);
		return;
	}
	privs_prepare();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) == -1) {
		log_warn("%s: socketpair", sv->sock->what);
		supervise_failed(sv, "socketpair: %s", strerror(errno));
		supervise_schedule(sv);
		return;
	}
	if ((pid = fork()) == -1) {
		log_warn("%s: fork", sv->sock->what);
		supervise_failed(sv, "fork: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		supervise_schedule(sv);
		return;
	}
	if (pid == 0)
		supervise_child(sv, sp[1], &ids, parent);
	close(sp[1]);
	if ((ev_exit = job_exit_event(sv->cd->base, pid, &pidfd, supervise_exited, sv)) == NULL) {
		log_warn("%s: pidfd_open", sv->sock->what);
		supervise_failed(sv, "pidfd_open: %s", strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sp[0]);
		supervise_schedule(sv);
		return;
	}
	supervise_watch(sv, pid, pidfd, ev_exit, sp[0]);
}

/* Registers a new worker's exit (ev_exit, watching pidfd) and its frames with the loop. */
static void
supervise_watch(struct supervise *sv, pid_t pid, int pidfd, struct event *ev_exit, int fd)
{
	struct event_base *base = sv->cd->base;

	sv->pid = pid;
	sv->pidfd = pidfd;
	sv->gen = sv->gen % 0xffff + 1;
	sv->doomed = 0;
	sv->kill_reason = 0;
	sv->ev_exit = ev_exit;
	sv->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (sv->bev == NULL)
		fatalx("%s: out of memory", __func__);
	/* Large reads make large batches: group commit rides on them. */
	bufferevent_set_max_single_read(sv->bev, SUPERVISE_READ_MAX);
	bufferevent_setwatermark(sv->bev, EV_READ, 0, SUPERVISE_MAX_INPUT);
	bufferevent_setcb(sv->bev, supervise_read, NULL, supervise_event, sv);
	bufferevent_enable(sv->bev, EV_READ | EV_WRITE);
	log_info("%s started (pid %ld, serving %s%s%s)", sv->sock->what, (long)pid, sv->sock->path,
	    sv->cd->privileged ? ", as " : "", sv->cd->privileged ? sv->cd->conf->agents_user : "");
}

/*
 * In the child: its channel at 3, its own listener at 4 or 5 (the other
 * stays closed) and nothing else, the agent user, no capabilities,
 * no_new_privs, then exec as `carotated --worker SITE`. Failures are logged (syslog or
 * stderr, as the parent logs) and end the child; the parent restarts it.
 */
static void
supervise_child(const struct supervise *sv, int chan, const struct sandbox_ids *ids, pid_t parent)
{
	char *argv[] = { (char *)"carotated", (char *)"--worker", (char *)sv->sock->site, NULL,
		NULL, NULL };
	char *envp[8];
	const char *step;
	sigset_t none;
	int sig, n = 3;

	/* Its descriptor could be one of 3-5 after the moves below; syslog reopens it. */
	closelog();
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (sv->cd->foreground)
		argv[n++] = (char *)"-f";
	if (log_getverbose())
		argv[n++] = (char *)"-d";
	supervise_child_env(envp, sizeof(envp) / sizeof(envp[0]));
	if ((step = supervise_child_setup(sv, chan, ids)) == NULL) {
		/* The parent died before PR_SET_PDEATHSIG was set: nobody would restart us. */
		if (getppid() != parent)
			_exit(1);
		if (supervise_exe_fd != -1)
			execve("/proc/self/fd/6", argv, envp);
		else
			execve(supervise_exec, argv, envp);
		step = supervise_exec;
	}
	log_warn("%s: %s", sv->sock->what, step);
	_exit(127);
}

/* The steps in order; the name of the one that failed, or NULL. */
static const char *
supervise_child_setup(const struct supervise *sv, int chan, const struct sandbox_ids *ids)
{
	const char *step;

	if (supervise_child_fds(sv, chan) == -1)
		return "descriptors";
	if ((step = privs_drop_worker(ids)) != NULL)
		return step;
	/* After the user change, which would clear it: die with the parent. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1)
		return "parent death signal";
	return NULL;
}

/*
 * chan at 3, this worker's listener at its own number (4 or 5), our binary at
 * 6: each moved above 6 first, so none is overwritten; every other
 * descriptor from 3 up, the other site's listener included, is closed.
 */
static int
supervise_child_fds(const struct supervise *sv, int chan)
{
	int src[] = { chan, sv->sock->fd, supervise_exe_fd };
	int dst[] = { WORKER_FD_PARENT, sv->sock->worker_fd, WORKER_FD_EXE };
	int tmp[3], fd, keep;
	size_t i, n = supervise_exe_fd != -1 ? 3 : 2;

	for (i = 0; i < n; i++)
		if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, WORKER_FD_EXE + 1)) == -1)
			return -1;
	for (i = 0; i < n; i++)
		if (dup2(tmp[i], dst[i]) == -1)
			return -1;
	for (fd = WORKER_FD_PARENT; fd <= WORKER_FD_EXE; fd++) {
		for (keep = 0, i = 0; i < n; i++)
			keep |= dst[i] == fd;
		if (!keep)
			close(fd);
	}
	return close_range(WORKER_FD_EXE + 1, ~0U, 0);
}

/* An empty environment; sanitizer builds keep their options, for the tests. */
static void
supervise_child_env(char **envp, size_t max)
{
	size_t n = 0;
#ifdef __SANITIZE_ADDRESS__
	static const char *keep[] = { "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=" };
	char **e;
	size_t i;

	for (e = environ; *e != NULL; e++)
		for (i = 0; i < sizeof(keep) / sizeof(keep[0]) && n < max - 1; i++)
			if (strncmp(*e, keep[i], strlen(keep[i])) == 0)
				envp[n++] = *e;
#endif
	envp[n] = NULL;
}

static void
supervise_restart(evutil_socket_t fd, short events, void *arg)
{
	supervise_spawn(arg);
}

/* 1 s, doubling up to 60 s while workers die young; 1 s again after one ran 60 s. */
static void
supervise_schedule(struct supervise *sv)
{
	struct timespec now;
	struct timeval tv = { 0, 0 };

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - sv->started.tv_sec >= SUPERVISE_STABLE)
		sv->delay = SUPERVISE_DELAY_MIN;
	tv.tv_sec = sv->delay;
	log_info("restarting the %s in %u s", sv->sock->what, sv->delay);
	evtimer_add(sv->ev_restart, &tv);
	sv->delay = sv->delay * 2 > SUPERVISE_DELAY_MAX ? SUPERVISE_DELAY_MAX : sv->delay * 2;
}

static void
supervise_exited(evutil_socket_t fd, short events, void *arg)
{
	struct supervise *sv = arg;
	pid_t pid = sv->pid;
	int status = 0;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == -1 && errno == EINTR)
		;
	if (r == 0)
		return;
	if (r == -1) {
		log_warn("%s (pid %ld) exited; its status is lost", sv->sock->what, (long)pid);
		supervise_failed(sv, "pid %ld exited; its status is lost", (long)pid);
	} else
		supervise_log_exit(sv, pid, status);
	supervise_reap(sv);
	supervise_schedule(sv);
}

/* A reason given by supervise_kill is kept: it says more than "killed by signal 9". */
static void
supervise_log_exit(struct supervise *sv, pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		log_warnx("%s (pid %ld) killed by signal %d (%s)", sv->sock->what, (long)pid,
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		log_warnx("%s (pid %ld) exited with status %d", sv->sock->what, (long)pid,
		    WEXITSTATUS(status));
	if (sv->kill_reason)
		return;
	if (WIFSIGNALED(status))
		supervise_failed(sv, "pid %ld killed by signal %d (%s)", (long)pid,
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		supervise_failed(sv, "pid %ld exited with status %d (see the daemon's log)",
		    (long)pid, WEXITSTATUS(status));
}

/* Shutdown: closing its channel asks the worker to exit; SIGKILL if it has not soon. */
static void
supervise_end(struct supervise *sv)
{
	int status;
	pid_t r;

	/* bufferevent_free closes the socket only when the loop runs again. */
	shutdown(bufferevent_getfd(sv->bev), SHUT_RDWR);
	bufferevent_free(sv->bev);
	sv->bev = NULL;
	if ((r = job_wait_exit(sv->pid, sv->pidfd, SUPERVISE_GRACE_MS, &status)) != sv->pid) {
		kill(sv->pid, SIGKILL);
		r = waitpid(sv->pid, &status, 0);
	}
	if (r == sv->pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		supervise_log_exit(sv, sv->pid, status);
	supervise_reap(sv);
}

/* Forgets a worker that has been waited for; its socketpair closes. */
static void
supervise_reap(struct supervise *sv)
{
	event_free(sv->ev_exit);
	sv->ev_exit = NULL;
	if (sv->pidfd != -1)
		close(sv->pidfd);
	sv->pidfd = -1;
	if (sv->bev != NULL)
		bufferevent_free(sv->bev);
	sv->bev = NULL;
	sv->pid = -1;
	sv->doomed = 0;
}

/* Ends a worker that misbehaves; it is reaped (and restarted) from supervise_exited. */
static void
supervise_kill(struct supervise *sv, const char *why)
{
	if (sv->pid == -1 || sv->doomed)
		return;
	log_warnx("%s (pid %ld): %s; killing it", sv->sock->what, (long)sv->pid, why);
	supervise_failed(sv, "pid %ld %s; killed", (long)sv->pid, why);
	sv->kill_reason = 1;
	sv->doomed = 1;
	bufferevent_disable(sv->bev, EV_READ);
	/* XXX the parent must keep CAP_KILL: the worker runs as another user. */
	if (kill(sv->pid, SIGKILL) == -1)
		log_warn("cannot kill %s (pid %ld)", sv->sock->what, (long)sv->pid);
}

/* What the parent relies on, checked again: the worker parses untrusted input. */
static const char *
supervise_check(const Carotate__Internal__AgentRequest *req)
{
	if (req->seq == 0 || req->seq > WORKER_MAX_SEQ)
		return "sent a request with a seq out of range";
	if (req->call != CAROTATE__INTERNAL__AGENT_CALL__AGENT_CHECKIN &&
	    req->call != CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK)
		return "sent a request for an unknown call";
	if (!valid_agent_id(req->agent_id, strlen(req->agent_id)))
		return "sent a malformed agent id";
	if (!worker_valid_credential(req->call, req->credential.data, req->credential.len))
		return "sent a malformed credential";
	if (req->if_none_match[0] != '\0' &&
	    !worker_valid_hex64(req->if_none_match, strlen(req->if_none_match)))
		return "sent a malformed If-None-Match";
	if (req->agent_token[0] != '\0' &&
	    (req->call != CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK ||
	        !worker_valid_hex64(req->agent_token, strlen(req->agent_token))))
		return "sent a malformed X-Agent-Token";
	return NULL;
}

/*
 * Decodes every whole frame buffered and hands them over in one call, so
 * that the callee can commit them together. A bad frame discards the batch
 * and kills the worker.
 */
static void
supervise_read(struct bufferevent *bev, void *arg)
{
	struct supervise *sv = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *bad;

	if ((bad = supervise_batch(sv, in)) != NULL)
		supervise_kill(sv, bad);
	else if (sv->doomed)
		evbuffer_drain(in, evbuffer_get_length(in));
}

/* supervise_read's decoding: the whole frames of in to sv->fn, or why the worker must go. */
static const char *
supervise_batch(struct supervise *sv, struct evbuffer *in)
{
	Carotate__Internal__AgentRequest *req;
	struct wire_budget budget;
	uint8_t hdr[WIRE_HEADER_LEN];
	const char *bad = NULL;
	size_t n = 0, have, i;
	uint32_t len;

	wire_budget_init(&budget, 0);
	while (!sv->doomed && (have = evbuffer_get_length(in)) >= WIRE_HEADER_LEN) {
		evbuffer_copyout(in, hdr, sizeof(hdr));
		if ((len = wire_get_length(hdr)) > WORKER_MAX_REQUEST_FRAME) {
			bad = "sent a frame over the size limit";
			break;
		}
		if (have < WIRE_HEADER_LEN + (size_t)len)
			break;
		budget.limit += SUPERVISE_UNPACK + 2 * (size_t)len;
		req = carotate__internal__agent_request__unpack(&budget.allocator, len,
		    evbuffer_pullup(in, WIRE_HEADER_LEN + (ssize_t)len) + WIRE_HEADER_LEN);
		evbuffer_drain(in, WIRE_HEADER_LEN + len);
		if (req == NULL) {
			bad = "sent a frame that does not decode";
			break;
		}
		if (n == sv->batch_cap) {
			sv->batch_cap = sv->batch_cap == 0 ? 64 : sv->batch_cap * 2;
			sv->batch = xreallocarray(sv->batch, sv->batch_cap, sizeof(*sv->batch));
		}
		sv->batch[n++] = req;
		if ((bad = supervise_check(req)) != NULL)
			break;
		req->seq |= sv->gen << SUPERVISE_GEN_SHIFT;
	}
	if (bad == NULL && n > 0)
		sv->fn(sv, sv->batch, n, sv->arg);
	for (i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&sv->batch[i]->base, &budget.allocator);
	return bad;
}

#ifdef CAROTATE_FUZZ
const char *
supervise_fuzz_batch(struct evbuffer *in, uint64_t gen, supervise_request_fn fn, void *arg)
{
	struct supervise sv = { .fn = fn,
		.arg = arg,
		.site = SUPERVISE_AGENTS,
		.sock = &supervise_sockets[SUPERVISE_AGENTS],
		.pid = -1,
		.pidfd = -1,
		.gen = gen };
	const char *bad;

	bad = supervise_batch(&sv, in);
	free(sv.batch);
	return bad;
}
#endif

/* A worker that closes its end is of no use (and may be up to no good): it goes. */
static void
supervise_event(struct bufferevent *bev, short what, void *arg)
{
	struct supervise *sv = arg;

	log_debug("%s (pid %ld): its connection %s", sv->sock->what, (long)sv->pid,
	    what & BEV_EVENT_EOF ? "closed" : "failed");
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	if (!sv->doomed && kill(sv->pid, SIGKILL) == 0)
		sv->doomed = 1;
}

void
supervise_reply(struct supervise *sv, const Carotate__Internal__AgentResponse *resp)
{
	Carotate__Internal__AgentResponse copy = *resp;
	Carotate__Internal__AgentResponse fail = CAROTATE__INTERNAL__AGENT_RESPONSE__INIT;
	uint8_t *frame;
	size_t len;

	/* Meant for a worker that has died since: the new one never asked. */
	if (sv->pid == -1 || sv->doomed || resp->seq >> SUPERVISE_GEN_SHIFT != sv->gen) {
		log_debug("%s: dropping the answer to %llx: its worker is gone", __func__,
		    (unsigned long long)resp->seq);
		return;
	}
	copy.seq &= WORKER_MAX_SEQ;
	if ((frame = wire_frame_pack(&copy.base, WORKER_MAX_RESPONSE_FRAME, &len)) == NULL) {
		log_warnx("an answer to the %s exceeds %u bytes; sending 500 instead",
		    sv->sock->what, WORKER_MAX_RESPONSE_FRAME);
		fail.seq = copy.seq;
		fail.http_status = 500;
		fail.error = (char *)"internal error";
		frame = wire_frame_pack(&fail.base, WORKER_MAX_RESPONSE_FRAME, &len);
	}
	if (evbuffer_get_length(bufferevent_get_output(sv->bev)) + len > SUPERVISE_MAX_OUTPUT)
		supervise_kill(sv, "does not read its answers");
	else
		bufferevent_write(sv->bev, frame, len);
	/* It may hold a new agent's token. */
	xfreezero(frame, len);
}
