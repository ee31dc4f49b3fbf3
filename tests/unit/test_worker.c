/*
 * The agent worker and its supervisor, as real processes on real sockets:
 * this binary is also the worker (run with --worker, as carotated is), and a
 * stand-in parent answers fixed responses. Clients are forked children that
 * speak raw HTTP, so that any byte sequence can be sent.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "carotated.h"
#include "config.h"
#include "job.h"
#include "log.h"
#include "supervise.h"
#include "valid.h"
#include "wire.h"
#include "worker.h"

#define ETAG   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define OTHER  "1111111111111111111111111111111111111111111111111111111111111111"
#define TOKEN  "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define KEY    "linking-key-for-tests"
#define BUNDLE "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
#define CHECKIN_HDRS                                                                               \
	"X-Agent-Id: agent-1\r\nAuthorization: Bearer " TOKEN "\r\nConnection: close\r\n"
#define MAX_HELD 256
#define FLOOD    1000

/* The stand-in parent: what it saw, and the answers it holds back. */
struct fake {
	unsigned batches;
	unsigned requests;
	size_t max_batch;
	int last_canary; /* the site of the supervise the last request came through */
	int last_call;
	char last_id[LIMITS_MAX_AGENT_ID + 1];
	char last_inm[WORKER_BUNDLE_ID_LEN + 1];
	char last_cred[WORKER_MAX_LINKING_KEY + 1];
	uint64_t held[MAX_HELD]; /* seqs of "slow" requests, answered by the timer */
	size_t nheld;
	struct event *timer;
};

enum client_mode {
	CLIENT_NORMAL,  /* send, read the answer until the server closes */
	CLIENT_ABANDON, /* send, then go away at once */
	CLIENT_TRICKLE, /* one byte a second; prints the ms until the server closed */
	CLIENT_FLOOD,   /* FLOOD connections at once; prints how many got 200 */
};

struct client {
	const char *path;
	const char *req;
	size_t len;
	enum client_mode mode;
};

struct reply {
	int done;
	int status;
	char raw[65536];
	size_t len;
};

static struct {
	char dir[64];
	char sock[128];
	char canary[128];
	struct config conf;
	struct carotated cd;
	struct supervise *sv; /* agent.sock's worker */
	struct supervise *cv; /* agent-canary.sock's worker */
	struct fake fake;
	pid_t pid;
	pid_t cpid;
	int root;
} t;

/* ---------------------------------------------------------------- the stand-in parent */

static void
fake_reply(struct supervise *sv, uint64_t seq, unsigned status, const char *etag, const char *token,
    const char *bundle, const char *error)
{
	Carotate__Internal__AgentResponse r = CAROTATE__INTERNAL__AGENT_RESPONSE__INIT;

	r.seq = seq;
	r.http_status = status;
	r.etag = (char *)(etag != NULL ? etag : "");
	r.token = (char *)(token != NULL ? token : "");
	r.error = (char *)(error != NULL ? error : "");
	if (bundle != NULL) {
		r.bundle.data = (uint8_t *)bundle;
		r.bundle.len = strlen(bundle);
	}
	supervise_reply(sv, &r);
}

static void
fake_release(evutil_socket_t fd, short events, void *arg)
{
	size_t i;

	for (i = 0; i < t.fake.nheld; i++)
		fake_reply(t.sv, t.fake.held[i], 200, ETAG, NULL, BUNDLE, NULL);
	t.fake.nheld = 0;
}

static void
fake_one(struct supervise *sv, const Carotate__Internal__AgentRequest *req)
{
	struct timeval slow = { 0, 300000 };
	int link = req->call == CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK;

	t.fake.last_canary = supervise_site(sv) == SUPERVISE_CANARY;
	t.fake.last_call = req->call;
	snprintf(t.fake.last_id, sizeof(t.fake.last_id), "%s", req->agent_id);
	snprintf(t.fake.last_inm, sizeof(t.fake.last_inm), "%s", req->if_none_match);
	snprintf(t.fake.last_cred, sizeof(t.fake.last_cred), "%.*s", (int)req->credential.len,
	    (const char *)req->credential.data);
	if (strcmp(req->agent_id, "never") == 0)
		return;
	if (strcmp(req->agent_id, "slow") == 0 && t.fake.nheld < MAX_HELD) {
		t.fake.held[t.fake.nheld++] = req->seq;
		evtimer_add(t.fake.timer, &slow);
	} else if (strcmp(req->agent_id, "bad-etag") == 0)
		fake_reply(sv, req->seq, 200, "not-a-bundle-id", NULL, BUNDLE, NULL);
	else if (strcmp(req->agent_id, "odd-status") == 0)
		fake_reply(sv, req->seq, 999, NULL, NULL, NULL, "odd");
	else if (strcmp(req->agent_id, "busy") == 0)
		fake_reply(sv, req->seq, 503, NULL, NULL, NULL, "ledger busy\r\nX-Evil: 1");
	else if (link && strcmp(t.fake.last_cred, KEY) != 0)
		fake_reply(sv, req->seq, 401, NULL, NULL, NULL, "bad linking key");
	else if (link)
		fake_reply(sv, req->seq, 200, ETAG, TOKEN, BUNDLE, NULL);
	else if (strcmp(t.fake.last_cred, TOKEN) != 0)
		fake_reply(sv, req->seq, 401, NULL, NULL, NULL, "bad token");
	else if (strcmp(req->if_none_match, ETAG) == 0)
		fake_reply(sv, req->seq, 304, ETAG, NULL, NULL, NULL);
	else
		fake_reply(sv, req->seq, 200, ETAG, NULL, BUNDLE, NULL);
}

static void
fake_batch(struct supervise *sv, Carotate__Internal__AgentRequest **reqs, size_t n, void *arg)
{
	size_t i;

	t.fake.batches++;
	t.fake.requests += n;
	if (n > t.fake.max_batch)
		t.fake.max_batch = n;
	for (i = 0; i < n; i++)
		fake_one(sv, reqs[i]);
}

/* ---------------------------------------------------------------- clients (forked children) */

static int
client_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		return -1;
	return fd;
}

/* Reads until the server closes (or 20 s pass); copies what came to out. */
static int
client_read_all(int fd, int out)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[16384];
	ssize_t n;

	while (poll(&pfd, 1, 20000) == 1 && (n = read(fd, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return 1;
	return 0;
}

static long long
client_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
client_trickle(int fd, const struct client *c, int out)
{
	long long start = client_ms();
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[4096];
	size_t i;

	for (i = 0; i < c->len; i++) {
		if (send(fd, c->req + i, 1, MSG_NOSIGNAL) != 1)
			break;
		/* The server closing (EOF) ends the wait; one second otherwise. */
		if (poll(&pfd, 1, 1000) == 1 && read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
	dprintf(out, "%lld", client_ms() - start);
	return 0;
}

/* FLOOD connections, a check-in on each, all open at once; prints the number of 200s. */
static int
client_flood(const struct client *c, int out)
{
	static struct pollfd pfd[FLOOD];
	static char head[FLOOD][16];
	static size_t got[FLOOD];
	struct rlimit rl = { FLOOD + 64, FLOOD + 64 };
	int i, open = 0, ok = 0;
	ssize_t n;
	char buf[4096];

	setrlimit(RLIMIT_NOFILE, &rl);
	for (i = 0; i < FLOOD; i++) {
		if ((pfd[i].fd = client_connect(c->path)) == -1)
			return 1;
		pfd[i].events = POLLIN;
		open++;
	}
	for (i = 0; i < FLOOD; i++)
		if (write(pfd[i].fd, c->req, c->len) != (ssize_t)c->len)
			return 1;
	while (open > 0 && poll(pfd, FLOOD, 20000) > 0) {
		for (i = 0; i < FLOOD; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			if ((n = read(pfd[i].fd, buf, sizeof(buf))) > 0) {
				if (got[i] < sizeof(head[i]) - 1) {
					size_t k = (size_t)n < sizeof(head[i]) - 1 - got[i]
					               ? (size_t)n
					               : sizeof(head[i]) - 1 - got[i];
					memcpy(head[i] + got[i], buf, k);
					got[i] += k;
				}
				continue;
			}
			ok += strncmp(head[i], "HTTP/1.1 200 ", 13) == 0;
			close(pfd[i].fd);
			pfd[i].fd = -1;
			open--;
		}
	}
	dprintf(out, "%d", ok);
	return 0;
}

static int
client_run(void *arg, int out)
{
	const struct client *c = arg;
	int fd;

	if (c->mode == CLIENT_FLOOD)
		return client_flood(c, out);
	if ((fd = client_connect(c->path)) == -1)
		return 1;
	if (c->mode == CLIENT_TRICKLE)
		return client_trickle(fd, c, out);
	if (write(fd, c->req, c->len) != (ssize_t)c->len)
		return 1;
	if (c->mode == CLIENT_ABANDON)
		return 0;
	return client_read_all(fd, out);
}

static void
client_done(struct job *job, void *arg)
{
	struct reply *r = arg;
	const unsigned char *p = job_output(job, &r->len);

	if (r->len > sizeof(r->raw) - 1)
		r->len = sizeof(r->raw) - 1;
	if (r->len > 0)
		memcpy(r->raw, p, r->len);
	r->raw[r->len] = '\0';
	if (strncmp(r->raw, "HTTP/1.", 7) == 0 && r->len > 12)
		r->status = atoi(r->raw + 9);
	r->done = 1;
	job_free(job);
}

/* Sends raw (len bytes) on path from a child; runs the loop until it is done. */
static void
http_raw(const char *path, const char *raw, size_t len, enum client_mode mode, struct reply *r)
{
	struct client c = { path, raw, len, mode };

	memset(r, 0, sizeof(*r));
	assert_non_null(job_fork(
	    t.cd.base, "client", client_run, &c, 60000, sizeof(r->raw) - 1, client_done, r));
	while (!r->done)
		event_base_loop(t.cd.base, EVLOOP_ONCE);
}

static int
http(const char *req, struct reply *r)
{
	http_raw(t.sock, req, strlen(req), CLIENT_NORMAL, r);
	return r->status;
}

/* The value of header name in r ("" when absent). */
static const char *
header(const struct reply *r, const char *name)
{
	static char value[512];
	const char *p = strstr(r->raw, "\r\n"), *end = strstr(r->raw, "\r\n\r\n");
	size_t n = strlen(name), k;

	value[0] = '\0';
	while (p != NULL && end != NULL && p < end) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1 + strspn(p + n + 1, " ");
			k = strcspn(p, "\r");
			snprintf(value, sizeof(value), "%.*s", (int)k, p);
			break;
		}
		p = strstr(p, "\r\n");
	}
	return value;
}

static const char *
body(const struct reply *r)
{
	const char *p = strstr(r->raw, "\r\n\r\n");

	return p != NULL ? p + 4 : "";
}

/* Runs the loop for ms milliseconds. */
static void
spin(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(t.cd.base, &tv);
	event_base_dispatch(t.cd.base);
}

/* Waits up to ms for a worker of sv other than old to run; its pid. */
static pid_t
wait_new_worker_of(struct supervise *sv, pid_t old, int ms)
{
	pid_t pid;

	for (; ms > 0; ms -= 50) {
		pid = supervise_worker_pid(sv);
		if (pid != -1 && pid != old)
			return pid;
		spin(50);
	}
	return -1;
}

static pid_t
wait_new_worker(pid_t old, int ms)
{
	return wait_new_worker_of(t.sv, old, ms);
}

/* ---------------------------------------------------------------- fixture */

static int
setup(void **state)
{
	struct passwd *pw;
	struct group *gr;
	struct reply r;
	char err[512];

	memset(&t, 0, sizeof(t));
	t.root = geteuid() == 0;
	snprintf(t.dir, sizeof(t.dir), "/tmp/carotate-wk.XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	chmod(t.dir, 0755);
	snprintf(t.sock, sizeof(t.sock), "%s/agent.sock", t.dir);
	snprintf(t.canary, sizeof(t.canary), "%s/agent-canary.sock", t.dir);
	t.conf.agents_socket = t.sock;
	t.conf.agents_canary_socket = t.canary;
	pw = getpwuid(getuid());
	gr = getgrgid(getgid());
	t.conf.agents_user = t.root ? (char *)"nobody" : pw->pw_name;
	t.conf.agents_group = t.root ? (char *)"nogroup" : gr->gr_name;
	t.cd.conf = &t.conf;
	t.cd.privileged = t.root;
	t.cd.foreground = 1;
	assert_non_null(t.cd.base = event_base_new());
	assert_non_null(t.fake.timer = evtimer_new(t.cd.base, fake_release, NULL));
	if (supervise_bind(&t.conf, t.cd.privileged, err, sizeof(err)) == -1)
		fail_msg("supervise_bind: %s", err);
	t.sv = supervise_start(&t.cd, SUPERVISE_AGENTS, fake_batch, NULL);
	t.cv = supervise_start(&t.cd, SUPERVISE_CANARY, fake_batch, NULL);
	t.pid = supervise_worker_pid(t.sv);
	t.cpid = supervise_worker_pid(t.cv);
	assert_true(t.pid > 0);
	assert_true(t.cpid > 0 && t.cpid != t.pid);
	/* A worker serves once it answers (its socket queues connections before that). */
	assert_int_equal(http("GET /probe HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 404);
	http_raw(
	    t.canary, "GET /probe HTTP/1.1\r\nConnection: close\r\n\r\n", 43, CLIENT_NORMAL, &r);
	assert_int_equal(r.status, 404);
	return 0;
}

/*
 * Stops the worker and checks, from the parent's log, that it exited by
 * itself with status 0: under sanitizers, no leak or bad free at shutdown.
 */
static int
teardown(void **state)
{
	char path[] = "/tmp/carotate-wk-log.XXXXXX", log[8192];
	int fd, saved;
	ssize_t n;

	assert_true((fd = mkstemp(path)) != -1);
	saved = dup(2);
	dup2(fd, 2);
	supervise_stop(t.sv);
	supervise_stop(t.cv);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, log, sizeof(log) - 1, 0);
	log[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	fputs(log, stderr);
	if (strstr(log, "exited with status") != NULL || strstr(log, "killed by signal") != NULL)
		fail_msg("the worker did not stop cleanly:\n%s", log);
	event_free(t.fake.timer);
	event_base_free(t.cd.base);
	assert_int_equal(access(t.sock, F_OK), -1);
	assert_int_equal(access(t.canary, F_OK), -1);
	rmdir(t.dir);
	return 0;
}

static void
assert_same_worker(void)
{
	assert_int_equal(supervise_worker_pid(t.sv), t.pid);
	assert_int_equal(supervise_worker_pid(t.cv), t.cpid);
}

/* ---------------------------------------------------------------- tests */

static void
test_checkin_and_link(void **state)
{
	struct reply r;

	assert_int_equal(
	    http("GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n", &r), 200);
	assert_string_equal(header(&r, "ETag"), "\"" ETAG "\"");
	assert_string_equal(header(&r, "Cache-Control"), "no-store");
	assert_string_equal(header(&r, "Content-Type"), "application/x-pem-file");
	assert_string_equal(header(&r, "X-Agent-Token"), "");
	assert_string_equal(body(&r), BUNDLE);
	assert_int_equal(t.fake.last_canary, 0);
	assert_string_equal(t.fake.last_id, "agent-1");
	assert_string_equal(t.fake.last_inm, "");

	assert_int_equal(http("GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
	                      "If-None-Match: \"" ETAG "\"\r\n\r\n",
	                     &r),
	    304);
	assert_string_equal(header(&r, "ETag"), "\"" ETAG "\"");
	assert_string_equal(body(&r), "");
	assert_string_equal(t.fake.last_inm, ETAG);

	assert_int_equal(http("GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
	                      "If-None-Match: \"" OTHER "\"\r\n\r\n",
	                     &r),
	    200);

	assert_int_equal(http("POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: new.agent_2\r\n"
	                      "Authorization: Bearer " KEY "\r\nContent-Length: 0\r\n"
	                      "Connection: close\r\n\r\n",
	                     &r),
	    200);
	assert_string_equal(header(&r, "X-Agent-Token"), TOKEN);
	assert_string_equal(header(&r, "ETag"), "\"" ETAG "\"");
	assert_string_equal(body(&r), BUNDLE);
	assert_int_equal(t.fake.last_call, CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK);
	assert_string_equal(t.fake.last_cred, KEY);

	/* Header names in any case, the scheme too; HTTP/1.0; a small link body is ignored. */
	assert_int_equal(http("GET /carotate/v1/ca-bundle HTTP/1.0\r\nx-agent-id: a\r\n"
	                      "authorization: bearer " TOKEN "\r\n\r\n",
	                     &r),
	    200);
	assert_int_equal(http("POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: b\r\n"
	                      "Authorization: Bearer " KEY "\r\nContent-Length: 5\r\n"
	                      "Connection: close\r\n\r\nhello",
	                     &r),
	    200);
	assert_same_worker();
}

/*
 * A request through agent-canary.sock reaches the parent from the canary
 * worker's socketpair, one through agent.sock from the other worker's: the
 * parent learns the site from where it read, not from the request.
 */
static void
test_canary_socket(void **state)
{
	struct reply r;
	const char *req = "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n";

	http_raw(t.canary, req, strlen(req), CLIENT_NORMAL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(t.fake.last_canary, 1);
	assert_int_equal(http(req, &r), 200);
	assert_int_equal(t.fake.last_canary, 0);
	assert_same_worker();
}

/* The inode of the listening socket bound at path, from /proc/net/unix ("socket:[ino]"). */
static void
listener_inode(const char *path, char *out, size_t len)
{
	char line[512], p[256];
	unsigned long flags, ino;
	FILE *f;

	out[0] = '\0';
	assert_non_null(f = fopen("/proc/net/unix", "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %255s", &flags, &ino, p) == 3 &&
		    (flags & 0x10000) != 0 && strcmp(p, path) == 0)
			snprintf(out, len, "socket:[%lu]", ino);
	fclose(f);
	assert_true(out[0] != '\0');
}

/* 1 when pid holds the socket named target (as readlink shows it) on any descriptor. */
static int
holds(pid_t pid, const char *target)
{
	char path[64], link[256];
	ssize_t k;
	int fd;

	for (fd = 0; fd < 64; fd++) {
		snprintf(path, sizeof(path), "/proc/%ld/fd/%d", (long)pid, fd);
		if ((k = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[k] = '\0';
		if (strcmp(link, target) == 0)
			return 1;
	}
	return 0;
}

/*
 * Each worker holds its own listener only: the main worker never holds the
 * canary socket, the canary worker never agent.sock, and each is told its
 * site on its command line.
 */
static void
test_one_socket_each(void **state)
{
	char agents[64], canary[64], cmd[256], path[64];
	FILE *f;
	size_t n;

	listener_inode(t.sock, agents, sizeof(agents));
	listener_inode(t.canary, canary, sizeof(canary));
	assert_true(holds(t.pid, agents));
	assert_false(holds(t.pid, canary));
	assert_true(holds(t.cpid, canary));
	assert_false(holds(t.cpid, agents));
	/* argv: carotated NUL --worker NUL canary NUL ... */
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)t.cpid);
	assert_non_null(f = fopen(path, "r"));
	n = fread(cmd, 1, sizeof(cmd) - 1, f);
	fclose(f);
	cmd[n] = '\0';
	assert_true(n > strlen(cmd) + 1);
	assert_string_equal(cmd + strlen(cmd) + 1, "--worker");
	assert_string_equal(cmd + strlen(cmd) + 1 + strlen("--worker") + 1, "canary");
}

/* Runs this binary as `--worker args` with the descriptors given; its exit status, stderr in err.
 */
static int
run_worker(const char *const *args, int with_agents, int with_canary, char *err, size_t errlen)
{
	int pair[2], out[2], lsn[2], status;
	char *argv[8];
	ssize_t n;
	size_t i;
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	for (i = 0; i < 2; i++) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		assert_true((lsn[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1);
		/* Only the family: the kernel picks an abstract address (autobind). */
		assert_int_equal(bind(lsn[i], (struct sockaddr *)&sun, sizeof(sa_family_t)), 0);
		assert_int_equal(listen(lsn[i], 1), 0);
	}
	argv[0] = (char *)"carotated";
	argv[1] = (char *)"--worker";
	for (i = 0; args[i] != NULL && i < 5; i++)
		argv[i + 2] = (char *)args[i];
	argv[i + 2] = NULL;
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		/* As carotated would start it: the agent user, no capabilities, no_new_privs. */
		if (dup2(out[1], 2) == -1 || dup2(pair[1], WORKER_FD_PARENT) == -1 ||
		    close_range(WORKER_FD_PARENT + 1, ~0U, CLOSE_RANGE_CLOEXEC) == -1 ||
		    (with_agents && dup2(lsn[0], WORKER_FD_AGENTS) == -1) ||
		    (with_canary && dup2(lsn[1], WORKER_FD_CANARY) == -1))
			_exit(90);
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) == -1 || setresgid(65534, 65534, 65534) == -1 ||
		        setresuid(65534, 65534, 65534) == -1))
			_exit(91);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
			_exit(92);
		execv("/proc/self/exe", argv);
		_exit(93);
	}
	close(out[1]);
	close(pair[1]);
	n = read(out[0], err, errlen - 1);
	err[n > 0 ? n : 0] = '\0';
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(out[0]);
	close(pair[0]);
	close(lsn[0]);
	close(lsn[1]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * `--worker` serves one named site with that site's descriptor alone: a
 * worker handed both agent sockets, or the other site's, refuses to start
 * (so that no single worker can again speak for both listeners).
 */
static void
test_worker_one_site_only(void **state)
{
	static const char *const agents[] = { "agents", "-f", NULL };
	static const char *const canary[] = { "canary", "-f", NULL };
	static const char *const none[] = { "-f", NULL };
	static const char *const bogus[] = { "both", "-f", NULL };
	char err[4096];

	assert_int_not_equal(run_worker(agents, 1, 1, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "descriptor 5 is open: an agent worker serves the agents "
	                            "socket alone"));
	assert_int_not_equal(run_worker(canary, 1, 1, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "descriptor 4 is open: an agent worker serves the canary "
	                            "socket alone"));
	/* The other site's socket only: its own descriptor is not a listener. */
	assert_int_not_equal(run_worker(agents, 0, 1, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "descriptor 4 is not a listening AF_UNIX stream socket"));
	assert_int_equal(run_worker(none, 1, 0, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "usage: carotated --worker agents|canary"));
	assert_int_equal(run_worker(bogus, 1, 0, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "usage: carotated --worker agents|canary"));
}

/* One worker killed: the other one keeps its pid and keeps serving; the killed one comes back. */
static void
test_canary_worker_killed(void **state)
{
	const char *req = "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n";
	struct reply r;
	pid_t pid;

	kill(t.cpid, SIGKILL);
	/* Before the canary worker is back: agent.sock answers, from the same worker. */
	assert_int_equal(http(req, &r), 200);
	assert_int_equal(supervise_worker_pid(t.sv), t.pid);
	assert_true((pid = wait_new_worker_of(t.cv, t.cpid, 3000)) > 0);
	http_raw(t.canary, req, strlen(req), CLIENT_NORMAL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(t.fake.last_canary, 1);
	assert_int_equal(supervise_worker_pid(t.sv), t.pid);
	assert_int_equal(supervise_worker_pid(t.cv), pid);
}

static void
test_parent_errors(void **state)
{
	struct reply r;

	assert_int_equal(http("GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a\r\n"
	                      "Authorization: Bearer " OTHER "\r\nConnection: close\r\n\r\n",
	                     &r),
	    401);
	assert_string_equal(header(&r, "WWW-Authenticate"), "Bearer realm=\"carotate\"");
	assert_string_equal(body(&r), "bad token\n");
	assert_int_equal(http("POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: a\r\n"
	                      "Authorization: Bearer wrong-key\r\nConnection: close\r\n\r\n",
	                     &r),
	    401);
	/* The parent's text reaches the agent printable, never as a header. */
	assert_int_equal(http("GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: busy\r\n"
	                      "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n",
	                     &r),
	    503);
	assert_string_equal(body(&r), "ledger busy??X-Evil: 1\n");
	assert_string_equal(header(&r, "X-Evil"), "");
	/* Answers the worker cannot pass on become 500. */
	assert_int_equal(http("GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: bad-etag\r\n"
	                      "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n",
	                     &r),
	    500);
	assert_int_equal(http("GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: odd-status\r\n"
	                      "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n",
	                     &r),
	    500);
	assert_same_worker();
}

/* What the worker refuses by itself, before the parent hears of it. */
static void
test_refusals(void **state)
{
	static const struct {
		int status;
		const char *req;
	} cases[] = {
		{ 404, "GET / HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 404, "GET /carotate/v1/ca-bundle/ HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 404, "GET /carotate/v1/ca-bundlex HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 404, "GET /carotate/v1/%63a-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 404, "GET /CAROTATE/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 405, "POST /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 405, "HEAD /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 405, "PUT /carotate/v1/link HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 405, "GET /carotate/v1/link HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 405, "DELETE /carotate/v1/link HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle?x=1 HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle? HTTP/1.1\r\n" CHECKIN_HDRS "\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\nAuthorization: Bearer " TOKEN
		       "\r\nConnection: close\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id:\r\nAuthorization: "
		       "Bearer " TOKEN "\r\nConnection: close\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a b\r\nAuthorization: "
		       "Bearer " TOKEN "\r\nConnection: close\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a/b\r\nAuthorization: "
		       "Bearer " TOKEN "\r\nConnection: close\r\n\r\n" },
		{ 400,
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: \xc3\xa4\r\nAuthorization: "
		    "Bearer " TOKEN "\r\nConnection: close\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: "
		       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
		       "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
		       "X-Agent-Id: b\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
		       "x-agent-id: agent-1\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
		       "Authorization: Bearer " TOKEN "\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
		       "If-None-Match: \"" ETAG "\"\r\nIf-None-Match: \"" ETAG "\"\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
		       "If-None-Match: W/\"" ETAG "\"\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
		       "If-None-Match: *\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "If-None-Match: " ETAG
		       "\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
		       "If-None-Match: \"" ETAG "\", \"" OTHER "\"\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "If-None-Match: "
		       "\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\""
		       "\r\n\r\n" },
		{ 400, "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS
		       "If-None-Match: \"\"\r\n\r\n" },
		{ 401, "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a\r\nConnection: "
		       "close\r\n\r\n" },
		{ 401,
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: Basic "
		    "YTpi\r\nConnection: close\r\n\r\n" },
		{ 401, "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: "
		       "Bearer\r\n"
		       "Connection: close\r\n\r\n" },
		{ 401,
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: Bearer "
		    "FEDCBA9876543210fedcba9876543210fedcba9876543210fedcba9876543210\r\n"
		    "Connection: close\r\n\r\n" },
		{ 401,
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: Bearer "
		    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba987654321\r\n"
		    "Connection: close\r\n\r\n" },
		{ 401, "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: "
		       "Bearer " KEY "\r\nConnection: close\r\n\r\n" },
		{ 401, "POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: Bearer "
		       "a b\r\n"
		       "Connection: close\r\n\r\n" },
		{ 401, "POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: Bearer "
		       "k\x7f\r\nConnection: close\r\n\r\n" },
	};
	struct reply r;
	size_t i;
	unsigned before = t.fake.requests;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http(cases[i].req, &r);
		if (r.status != cases[i].status)
			fail_msg("case %zu: expected %d, got %d for:\n%s", i, cases[i].status,
			    r.status, cases[i].req);
		assert_string_equal(header(&r, "Cache-Control"), "no-store");
		if (r.status == 401)
			assert_string_equal(
			    header(&r, "WWW-Authenticate"), "Bearer realm=\"carotate\"");
	}
	assert_int_equal(t.fake.requests, before);
	http("GET /carotate/v1/link HTTP/1.1\r\nConnection: close\r\n\r\n", &r);
	assert_string_equal(header(&r, "Allow"), "POST");
	http("POST /carotate/v1/ca-bundle HTTP/1.1\r\nConnection: close\r\n\r\n", &r);
	assert_string_equal(header(&r, "Allow"), "GET");
	assert_same_worker();
}

/*
 * Versions evhttp lets through but nginx never sends: 505, in HTTP/1.1, and the worker
 * closes the connection itself (the requests ask to keep it open; the client reads to EOF).
 * The parent never hears of them. HTTP/1.0 and 1.1 pass, as in the tests above.
 */
static void
test_versions(void **state)
{
	static const char *versions[] = { "HTTP/0.9", "HTTP/0.5", "HTTP/1.2", "HTTP/1.9",
		"HTTP/-1.1", "HTTP/1.300", "HTTP/1.-1", "HTTP/-0.0" };
	char req[512];
	struct reply r;
	size_t i;
	unsigned before = t.fake.requests;

	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		snprintf(req, sizeof(req),
		    "GET /carotate/v1/ca-bundle %s\r\nX-Agent-Id: agent-1\r\n"
		    "Authorization: Bearer " TOKEN "\r\nConnection: keep-alive\r\n\r\n",
		    versions[i]);
		http(req, &r);
		if (strncmp(r.raw, "HTTP/1.1 505 ", 13) != 0)
			fail_msg("%s: expected HTTP/1.1 505, got: %.60s", versions[i], r.raw);
		assert_string_equal(header(&r, "Connection"), "close");
		assert_string_equal(body(&r), "only HTTP/1.0 and HTTP/1.1 are spoken here\n");
	}
	assert_int_equal(t.fake.requests, before);
	assert_int_equal(
	    http("GET /carotate/v1/ca-bundle HTTP/1.0\r\n" CHECKIN_HDRS "\r\n", &r), 200);
	assert_int_equal(strncmp(r.raw, "HTTP/1.0 200 ", 13), 0);
	assert_int_equal(t.fake.requests, before + 1);
	assert_same_worker();
}

/* A linking key of 256 bytes passes, 257 does not. */
static void
test_key_length(void **state)
{
	char key[300], req[600];
	struct reply r;

	memset(key, 'k', sizeof(key));
	key[256] = '\0';
	snprintf(req, sizeof(req),
	    "POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: Bearer %s\r\n"
	    "Connection: close\r\n\r\n",
	    key);
	assert_int_equal(http(req, &r), 401); /* the fake's answer: not its key */
	assert_int_equal(strlen(t.fake.last_cred), 256);
	key[256] = 'k';
	key[257] = '\0';
	snprintf(req, sizeof(req),
	    "POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: b\r\nAuthorization: Bearer %s\r\n"
	    "Connection: close\r\n\r\n",
	    key);
	assert_int_equal(http(req, &r), 401);
	assert_string_equal(t.fake.last_id, "a"); /* never forwarded */
}

/* What evhttp refuses: sizes, syntax, unknown methods. Never a crash. */
static void
test_malformed_http(void **state)
{
	static char big[12000];
	static const char *junk[] = {
		"\r\n\r\n",
		"GET\r\n\r\n",
		"GET /carotate/v1/ca-bundle HTTP/9.9\r\n\r\n",
		"GET /carotate/v1/ca-bundle HTTP/1.1\r\nno colon here\r\n\r\n",
		"FROB /carotate/v1/ca-bundle HTTP/1.1\r\n\r\n",
		"GET /carotate/v1/ca-bundle HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST /carotate/v1/link HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"POST /carotate/v1/link HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"\x00\x01\x02\xff\r\n\r\n",
	};
	struct reply r;
	size_t i;
	int n;

	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		http_raw(t.sock, junk[i], i == 8 ? 8 : strlen(junk[i]), CLIENT_NORMAL, &r);
		if (r.status != 0 && (r.status < 400 || r.status > 599))
			fail_msg("junk %zu: got %d", i, r.status);
	}
	/* A body over 4 KiB. */
	n = snprintf(big, sizeof(big),
	    "POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: a\r\nAuthorization: Bearer " KEY
	    "\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n");
	memset(big + n, 'x', 5000);
	http_raw(t.sock, big, (size_t)n + 5000, CLIENT_NORMAL, &r);
	assert_int_equal(r.status, 413);
	/* Headers over 8 KiB. */
	n = snprintf(big, sizeof(big), "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Pad: ");
	memset(big + n, 'p', 9000);
	memcpy(big + n + 9000, "\r\n\r\n", 4);
	http_raw(t.sock, big, (size_t)n + 9004, CLIENT_NORMAL, &r);
	assert_in_range(r.status, 400, 499);
	assert_same_worker();
	assert_int_equal(
	    http("GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n", &r), 200);
}

/* Clients that leave before the parent answers: their answers are dropped safely. */
static void
test_client_goes_away(void **state)
{
	const char *req = "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: slow\r\n"
	                  "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n";
	struct reply r;
	int i;

	for (i = 0; i < 50; i++)
		http_raw(t.sock, req, strlen(req), CLIENT_ABANDON, &r);
	assert_true(t.fake.nheld > 0);
	spin(600);
	assert_int_equal(t.fake.nheld, 0);
	/* And one that stays, on a keep-alive connection. */
	assert_int_equal(http(req, &r), 200);
	assert_same_worker();
}

/* Requests still waiting on the parent when the worker stops are dropped (see teardown). */
static void
test_pending_at_stop(void **state)
{
	const char *never = "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: never\r\n"
	                    "Authorization: Bearer " TOKEN "\r\n\r\n";
	struct reply r;
	unsigned before = t.fake.requests;

	http_raw(t.sock, never, strlen(never), CLIENT_ABANDON, &r);
	http_raw(t.canary, never, strlen(never), CLIENT_ABANDON, &r);
	while (t.fake.requests < before + 2)
		event_base_loop(t.cd.base, EVLOOP_ONCE);
}

/* An answer meant for a worker that has died since is not given to the next one. */
static void
test_answer_after_restart(void **state)
{
	const char *req = "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: slow\r\n"
	                  "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n";
	struct reply r;
	pid_t pid;

	http_raw(t.sock, req, strlen(req), CLIENT_ABANDON, &r);
	while (t.fake.nheld == 0)
		event_base_loop(t.cd.base, EVLOOP_ONCE);
	evtimer_del(t.fake.timer);
	kill(t.pid, SIGKILL);
	assert_true((pid = wait_new_worker(t.pid, 3000)) > 0);
	fake_release(-1, 0, NULL); /* to the new worker: dropped by supervise */
	assert_int_equal(
	    http("GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n", &r), 200);
	assert_int_equal(supervise_worker_pid(t.sv), pid);
}

/* A request the parent never answers gets 503 after the worker's deadline. */
static void
test_parent_silent(void **state)
{
	struct reply r;
	time_t start = time(NULL);

	assert_int_equal(http("GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: never\r\n"
	                      "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n",
	                     &r),
	    503);
	assert_in_range(time(NULL) - start, 9, 13);
	assert_same_worker();
}

/* One byte a second never completes a request: the connection closes at the deadline. */
static void
test_slowloris(void **state)
{
	const char *req = "GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: agent-1\r\n"
	                  "Authorization: Bearer " TOKEN "\r\nX-Padding: aaaaaaaaaaaa\r\n\r\n";
	struct reply r;

	http_raw(t.sock, req, strlen(req), CLIENT_TRICKLE, &r);
	assert_in_range(atoi(r.raw), 9000, 13000);
	assert_same_worker();
}

static void
test_flood(void **state)
{
	const char *req = "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n";
	struct reply r;

	http_raw(t.sock, req, strlen(req), CLIENT_FLOOD, &r);
	assert_int_equal(atoi(r.raw), FLOOD);
	/* Requests that arrive together reach the parent together (group commit). */
	assert_true(t.fake.max_batch > 1);
	assert_same_worker();
}

/* Above stdio, the worker holds sockets and libevent's own descriptors: no file of ours. */
static void
assert_fds_clean(pid_t pid)
{
	char path[64], target[256];
	ssize_t n;
	int fd;

	for (fd = 3; fd < 64; fd++) {
		snprintf(path, sizeof(path), "/proc/%ld/fd/%d", (long)pid, fd);
		if ((n = readlink(path, target, sizeof(target) - 1)) == -1)
			continue;
		target[n] = '\0';
		if (strncmp(target, "socket:", 7) != 0 && strncmp(target, "anon_inode:", 11) != 0 &&
		    strncmp(target, "pipe:", 5) != 0)
			fail_msg("the worker holds %s on fd %d", target, fd);
	}
}

/* A worker's identity as the kernel reports it. */
static void
assert_worker_identity(pid_t pid)
{
	char path[64], line[256], want[128];
	FILE *f;
	int seen = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "Cap", 3) == 0 && strncmp(line, "CapBnd", 6) != 0) {
			assert_string_equal(strchr(line, '\t') + 1, "0000000000000000");
			seen++;
		} else if (strcmp(line, "NoNewPrivs:\t1") == 0)
			seen++;
		else if (t.root && strncmp(line, "Uid:", 4) == 0) {
			snprintf(
			    want, sizeof(want), "Uid:\t%d\t%d\t%d\t%d", 65534, 65534, 65534, 65534);
			assert_string_equal(line, want);
			seen++;
		} else if (t.root && strncmp(line, "Gid:", 4) == 0) {
			snprintf(
			    want, sizeof(want), "Gid:\t%d\t%d\t%d\t%d", 65534, 65534, 65534, 65534);
			assert_string_equal(line, want);
			seen++;
		} else if (t.root && strncmp(line, "Groups:", 7) == 0) {
			assert_string_equal(line + strspn(line + 7, "\t ") + 7, "");
			seen++;
		} else if (t.root && strncmp(line, "CapBnd:", 7) == 0) {
			assert_string_equal(line, "CapBnd:\t0000000000000000");
			seen++;
		}
	}
	fclose(f);
	/* CapInh CapPrm CapEff CapAmb, NoNewPrivs, and as root Uid Gid Groups CapBnd. */
	assert_int_equal(seen, t.root ? 9 : 5);
	assert_fds_clean(pid);
}

/* Both workers: the agent user, no capabilities, no_new_privs, no file of ours. */
static void
test_worker_privileges(void **state)
{
	assert_worker_identity(t.pid);
	assert_worker_identity(t.cpid);
}

/* Killed: the parent notices, restarts it within about a second, and it answers. */
static void
test_worker_killed(void **state)
{
	const char *req = "GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n";
	struct reply r;
	pid_t pid;

	kill(t.pid, SIGKILL);
	/* The canary worker does not go with it. */
	http_raw(t.canary, req, strlen(req), CLIENT_NORMAL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(supervise_worker_pid(t.cv), t.cpid);
	assert_true((pid = wait_new_worker(t.pid, 3000)) > 0);
	assert_int_equal(http(req, &r), 200);
	assert_int_equal(supervise_worker_pid(t.sv), pid);
	assert_int_equal(supervise_worker_pid(t.cv), t.cpid);
}

/* Sends bytes into the parent as if from the worker: a copy of the worker's fd 3. */
static int
inject(pid_t pid, const void *p, size_t len)
{
	int pidfd, fd;

	if ((pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1)
		return -1;
	fd = (int)syscall(438 /* pidfd_getfd */, pidfd, WORKER_FD_PARENT, 0);
	close(pidfd);
	if (fd == -1)
		return -1;
	if (write(fd, p, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void
garbage_case(const void *p, size_t len)
{
	struct reply r;
	pid_t old = supervise_worker_pid(t.sv), pid;

	if (inject(old, p, len) == -1)
		skip();
	assert_true((pid = wait_new_worker(old, 8000)) > 0);
	assert_int_equal(
	    http("GET /carotate/v1/ca-bundle HTTP/1.1\r\n" CHECKIN_HDRS "\r\n", &r), 200);
}

/* A worker that sends garbage is killed and replaced; the parent carries on. */
static void
test_worker_garbage(void **state)
{
	Carotate__Internal__AgentRequest bad = CAROTATE__INTERNAL__AGENT_REQUEST__INIT;
	uint8_t *frame;
	size_t len;

	/* Over the size limit. */
	garbage_case("\x7f\xff\xff\xff", 4);
	/* Does not decode. */
	garbage_case("\x00\x00\x00\x04\xff\xff\xff\xff", 8);
	/* Decodes, but says what the worker never forwards. */
	bad.seq = 1;
	bad.agent_id = (char *)"../../etc/passwd";
	bad.credential.data = (uint8_t *)TOKEN;
	bad.credential.len = 64;
	frame = wire_frame_pack(&bad.base, WORKER_MAX_REQUEST_FRAME, &len);
	garbage_case(frame, len);
	free(frame);
	assert_int_equal(t.fake.requests, 3); /* the check-ins after each restart */
}

/* A path that is not a socket, or a socket someone serves, is never taken over. */
static void
test_bind_refusals(void **state)
{
	struct config conf;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[32], err[512], file[80], live[80], other[80];
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/carotate-wk.XXXXXX");
	assert_non_null(mkdtemp(dir));
	memset(&conf, 0, sizeof(conf));
	snprintf(file, sizeof(file), "%s/file", dir);
	snprintf(live, sizeof(live), "%s/live.sock", dir);
	snprintf(other, sizeof(other), "%s/other.sock", dir);
	assert_int_equal(close(open(file, O_CREAT | O_WRONLY, 0600)), 0);
	conf.agents_socket = other;
	conf.agents_canary_socket = file;
	assert_int_equal(supervise_bind(&conf, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a socket"));
	/* The first socket, made before the second failed, is gone again. */
	assert_int_equal(access(other, F_OK), -1);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", live);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 1), 0);
	conf.agents_socket = live;
	conf.agents_canary_socket = other;
	assert_int_equal(supervise_bind(&conf, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already running"));
	close(fd);

	/* Now stale: replaced. */
	assert_int_equal(supervise_bind(&conf, 0, err, sizeof(err)), 0);
	assert_int_equal(supervise_bind(&conf, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already"));
	supervise_stop(NULL);

	conf.agents_socket = conf.agents_canary_socket = file;
	assert_int_equal(supervise_bind(&conf, 0, err, sizeof(err)), -1);
	chmod(dir, 0777);
	snprintf(other, sizeof(other), "%s/again.sock", dir);
	conf.agents_socket = other;
	conf.agents_canary_socket = live;
	assert_int_equal(supervise_bind(&conf, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "writable by nobody else"));
	unlink(file);
	unlink(live);
	rmdir(dir);
}

int
main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checkin_and_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_canary_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_socket_each, setup, teardown),
		cmocka_unit_test(test_worker_one_site_only),
		cmocka_unit_test_setup_teardown(test_canary_worker_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_http, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_goes_away, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_after_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_at_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_privileges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_garbage, setup, teardown),
		cmocka_unit_test(test_bind_refusals),
		cmocka_unit_test_setup_teardown(test_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_silent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slowloris, setup, teardown),
	};

	/* This binary is also the worker that supervise runs (/proc/self/exe). */
	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argc, argv);
	log_init(1, getenv("TEST_WORKER_DEBUG") != NULL, "test_worker");
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
