/*
 * The agent worker. It is the only process that parses HTTP, so it runs as
 * an unprivileged user with no capabilities and holds two descriptors: the
 * socketpair to the parent and one listening agent socket. There are two
 * workers, one per socket (`--worker agents` on agent.sock, `--worker canary`
 * on agent-canary.sock), each with its own socketpair: the parent tells a
 * canary check-in by the socketpair it arrived on, so a worker has nothing
 * to say about it, and one that is taken over through agent.sock cannot
 * mark agents verified (carotate-protocol(7) AGENT PROTOCOL). A worker given both sockets refuses
 * to start. Each request is checked against carotate-protocol(7) AGENT PROTOCOL (path, method,
 * headers), forwarded to the parent as an AgentRequest, and answered when the AgentResponse with
 * its seq comes back. A request must arrive whole within WORKER_REQUEST_MS
 * of its connection opening (or of the previous answer on it), whatever the
 * pace of its bytes; at the connection cap, WORKER_SHED_MS without a whole
 * request is enough to lose the connection. The parent must answer within
 * WORKER_PARENT_MS.
 *
 * HTTP answers (method and path first, then headers, in this order):
 *   path not /carotate/v1/link or /carotate/v1/ca-bundle        404
 *   link not POST, ca-bundle not GET                            405 + Allow
 *   a query string on either path                               400
 *   X-Agent-Id, Authorization or If-None-Match given twice      400
 *   X-Agent-Id missing or not 1-64 of [A-Za-z0-9._-]            400
 *   Authorization missing, not Bearer, or a value of the wrong
 *   shape (link: 1-256 printable ASCII without space;
 *   check-in: 64 lower-case hex)                                401 + WWW-Authenticate
 *   If-None-Match other than "<64 lower-case hex>"              400
 *   link: X-Agent-Token given twice or not 64 lower-case hex    400
 *   more than WORKER_MAX_PENDING requests waiting on the parent 503
 *   the parent did not answer within WORKER_PARENT_MS           503
 *   otherwise: the parent's answer (200, 304, 400, 401, 403, 409,
 *   429 + Retry-After, 503)
 * evhttp itself answers malformed requests (400), headers over 8 KiB and
 * bodies over 4 KiB (413), and methods it does not know (400/501).
 */
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* the request's version: evhttp has no getter */
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "log.h"
#include "valid.h"
#include "wire.h"
#include "worker.h"
#include "xmalloc.h"

#define WORKER_MAX_HEADERS  8192  /* bytes of request line and headers */
#define WORKER_MAX_BODY     4096  /* bytes */
#define WORKER_IDLE_S       10    /* evhttp: a connection silent this long is closed */
#define WORKER_REQUEST_MS   10000 /* a whole request must arrive within this */
#define WORKER_PARENT_MS    10000 /* the parent must answer within this, else 503 */
#define WORKER_MAX_PENDING  8192  /* requests waiting on the parent */
#define WORKER_SLOTS        16384 /* seq -> pending; a power of two > WORKER_MAX_PENDING */
#define WORKER_MAX_CONNS    4096
#define WORKER_CONN_BUCKETS 4096 /* evhttp connection -> ours; a power of two */
#define WORKER_ACCEPT_PAUSE 1    /* s without accepting after running out of descriptors */
#define WORKER_MAX_ERROR    200  /* bytes of the parent's error text an agent sees */
#define WORKER_MAX_URL      512  /* bytes of X-Carotate-Canary ([agents] canary_url) */
#define WORKER_SHED_MS      1000 /* at the cap, a connection this long without a request goes */
#define WORKER_LOG_EVERY    10   /* s between two log lines about shed connections */
/*
 * Bytes read ahead of the request in hand: room for the largest whole request.
 * A client that pipelines requests and never reads the responses is then held
 * to this, the rest left in its socket; evhttp alone reads on without bound.
 */
#define WORKER_MAX_INPUT (2 * (WORKER_MAX_HEADERS + WORKER_MAX_BODY))

/* One listening socket; a worker serves exactly one. */
struct worker_site {
	const char *name; /* as in `carotated --worker NAME` */
	int fd;
	struct evhttp *http;
	struct evconnlistener *listener;
};

/* One HTTP connection, from evhttp's accept to its close callback. */
struct worker_conn {
	SLIST_ENTRY(worker_conn) hash;    /* by evcon */
	TAILQ_ENTRY(worker_conn) newborn; /* accepted, not yet adopted */
	TAILQ_ENTRY(worker_conn) waiting; /* armed: awaits a whole request, oldest first */
	int64_t since;                    /* ms, CLOCK_MONOTONIC: armed then */
	int armed;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* NULL until adopted */
	struct event *deadline;          /* for the request arriving now */
	struct worker_pending *pending;  /* the request the parent is deciding, or NULL */
};

/* A request forwarded to the parent, waiting for its answer. */
struct worker_pending {
	TAILQ_ENTRY(worker_pending) entry; /* oldest first: deadlines in order */
	uint64_t seq;
	Carotate__Internal__AgentCall call;
	struct evhttp_request *req; /* NULL once libevent freed it with its connection */
	struct worker_conn *conn;   /* NULL once the connection is gone */
	int64_t deadline;           /* ms, CLOCK_MONOTONIC */
};

static const struct worker_route {
	const char *path;
	enum evhttp_cmd_type method;
	const char *allow;
	Carotate__Internal__AgentCall call;
} worker_routes[] = {
	{ "/carotate/v1/link", EVHTTP_REQ_POST, "POST",
	    CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK },
	{ "/carotate/v1/ca-bundle", EVHTTP_REQ_GET, "GET",
	    CAROTATE__INTERNAL__AGENT_CALL__AGENT_CHECKIN },
};

/* A request that passed the checks: what the parent needs to decide it. */
struct worker_call {
	const struct worker_route *route;
	const char *agent_id;
	const char *credential;
	const char *agent_token; /* link: X-Agent-Token (a renewal), else NULL */
	char if_none_match[WORKER_BUNDLE_ID_LEN + 1];
};

SLIST_HEAD(worker_bucket, worker_conn);

static struct worker_site worker_sites[] = {
	{ "agents", WORKER_FD_AGENTS, NULL, NULL },
	{ "canary", WORKER_FD_CANARY, NULL, NULL },
};
static struct worker_site *worker_site; /* the one this process serves */
static struct event_base *worker_base;
static struct bufferevent *worker_parent;
static struct event *worker_adopt_ev;
static struct event *worker_tick_ev;
static struct event *worker_resume_ev;
static struct event *worker_shed_ev;
static TAILQ_HEAD(, worker_conn) worker_newborn = TAILQ_HEAD_INITIALIZER(worker_newborn);
static TAILQ_HEAD(, worker_conn) worker_waiting = TAILQ_HEAD_INITIALIZER(worker_waiting);
static unsigned worker_nshed;   /* connections shed and not yet logged */
static int64_t worker_shed_log; /* ms: no line about shedding before then */
static struct worker_bucket worker_buckets[WORKER_CONN_BUCKETS];
static TAILQ_HEAD(, worker_pending) worker_queue = TAILQ_HEAD_INITIALIZER(worker_queue);
static struct worker_pending *worker_slots[WORKER_SLOTS];
static unsigned worker_npending;
static unsigned worker_nconns;
static unsigned worker_max_conns;
static uint64_t worker_seq;
static int worker_accept_paused;

static struct worker_site *worker_pick_site(const char *);
static void worker_check_self(void);
static void worker_check_closed(int);
static void worker_check_fd(int, int);
static void worker_limits(void);
static void worker_setup(int);
static void worker_setup_site(struct worker_site *);
static void worker_shutdown(void);
static int64_t worker_now(void);
static void worker_listen_update(void);
static void worker_accept_error(struct evconnlistener *, void *);
static void worker_resume(evutil_socket_t, short, void *);
static struct bufferevent *worker_bevcb(struct event_base *, void *);
static void worker_adopt(evutil_socket_t, short, void *);
static struct worker_bucket *worker_bucket_of(const struct evhttp_connection *);
static struct worker_conn *worker_conn_find(const struct evhttp_connection *);
static void worker_conn_arm(struct worker_conn *);
static void worker_conn_disarm(struct worker_conn *);
static void worker_shed(void);
static void worker_shed_due(evutil_socket_t, short, void *);
static void worker_conn_expired(evutil_socket_t, short, void *);
static void worker_conn_closed(struct evhttp_connection *, void *);
static void worker_conn_free(struct worker_conn *);
static void worker_handle(struct evhttp_request *, void *);
static int worker_version(struct evhttp_request *, const char **);
static int worker_route(struct evhttp_request *, struct worker_call *, const char **);
static int worker_headers(struct evhttp_request *, struct worker_call *, const char **);
static int worker_take(const struct evkeyval *, const char *, const char **);
static int worker_bearer(const char *, const struct worker_route *, const char **);
static int worker_etag(const char *, char *);
static void worker_refuse(struct evhttp_request *, int, const char *, const struct worker_route *);
static void worker_send(struct evhttp_request *, int, const char *, const void *, size_t);
static void worker_forward(
    struct evhttp_request *, struct worker_conn *, const struct worker_call *);
static struct worker_pending *worker_pending_new(void);
static struct worker_pending *worker_pending_take(uint64_t);
static void worker_pending_free(struct worker_pending *);
static void worker_parent_read(struct bufferevent *, void *);
static void worker_parent_event(struct bufferevent *, short, void *);
static void worker_answer(const uint8_t *, size_t);
static void worker_respond(struct worker_pending *, const Carotate__Internal__AgentResponse *);
static void worker_reply(struct evhttp_request *, Carotate__Internal__AgentCall,
    const Carotate__Internal__AgentResponse *);
static void worker_reply_error(struct evhttp_request *, unsigned, const char *);
static void worker_announce_canary(struct evkeyvalq *, const char *);
static void worker_tick(evutil_socket_t, short, void *);

int
worker_valid_hex64(const char *s, size_t len)
{
	size_t i;

	if (len != 64)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int
worker_valid_credential(Carotate__Internal__AgentCall call, const uint8_t *p, size_t len)
{
	size_t i;

	if (call == CAROTATE__INTERNAL__AGENT_CALL__AGENT_CHECKIN)
		return worker_valid_hex64((const char *)p, len);
	if (call != CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK || len == 0 ||
	    len > WORKER_MAX_LINKING_KEY)
		return 0;
	for (i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return 0;
	return 1;
}

int
worker_main(int argc, char **argv)
{
	struct worker_site *other;
	int ch, debug = 0, foreground = 0;

	/* argv[1] is "--worker", argv[2] the site: getopt sees the site as the program name. */
	if (argc < 3 || (worker_site = worker_pick_site(argv[2])) == NULL) {
		fprintf(stderr, "usage: carotated --worker agents|canary [-df] (started by "
		                "carotated)\n");
		return 1;
	}
	optind = 1;
	while ((ch = getopt(argc - 2, argv + 2, "df")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			foreground = 1;
			break;
		default:
			fprintf(stderr, "usage: carotated --worker agents|canary [-df] (started by "
			                "carotated)\n");
			return 1;
		}
	}
	close(WORKER_FD_EXE);
	log_init(foreground, debug, "carotated-worker");
	prctl(PR_SET_NAME, "carotated-agent", 0, 0, 0);
	worker_check_self();
	worker_check_fd(WORKER_FD_PARENT, 0);
	worker_check_fd(worker_site->fd, 1);
	other = &worker_sites[worker_site == &worker_sites[0] ? 1 : 0];
	worker_check_closed(other->fd);
	worker_limits();
	signal(SIGPIPE, SIG_IGN);
	worker_setup(WORKER_FD_PARENT);
	log_info("agent worker for the %s socket started (pid %ld, uid %ld, gid %ld, at most %u "
	         "connections)",
	    worker_site->name, (long)getpid(), (long)getuid(), (long)getgid(), worker_max_conns);
	event_base_dispatch(worker_base);
	worker_shutdown();
	return 0;
}

static struct worker_site *
worker_pick_site(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(worker_sites) / sizeof(worker_sites[0]); i++)
		if (strcmp(worker_sites[i].name, name) == 0)
			return &worker_sites[i];
	return NULL;
}

/*
 * The other site's descriptor must not be a socket: one process serving both
 * sockets is what let a worker speak for the canary listener. (Anything else
 * there is not ours to judge: valgrind, tracing an exec, opens the binary at
 * the lowest free descriptor.)
 */
static void
worker_check_closed(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 ? S_ISSOCK(st.st_mode) : errno != EBADF)
		fatalx("descriptor %d is open: an agent worker serves the %s socket alone", fd,
		    worker_site->name);
}

/*
 * The parent dropped us to the agent user before exec; refuse to serve if
 * anything of that is missing, whoever started us.
 */
static void
worker_check_self(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	uid_t r, e, s;
	int i;

	if (getresuid(&r, &e, &s) == -1 || r == 0 || e == 0 || s == 0)
		fatalx("the agent worker must not run as root");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		fatalx("the agent worker must run with no_new_privs");
	/* All set until the kernel says otherwise: a word it left alone must not pass. */
	memset(data, 0xff, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == -1)
		fatal("capget");
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective != 0 || data[i].permitted != 0 || data[i].inheritable != 0)
			fatalx("the agent worker must run without capabilities");
	/* Other processes of the agent user may not read our memory. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("PR_SET_DUMPABLE");
}

/* fd must be an AF_UNIX stream socket: listening or not, as expected. */
static void
worker_check_fd(int fd, int listening)
{
	int type = 0, domain = 0, acc = -1;
	socklen_t len = sizeof(int);
	struct stat st;

	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == -1 || type != SOCK_STREAM ||
	    domain != AF_UNIX || acc != listening)
		fatalx(
		    "descriptor %d is not a%s AF_UNIX stream socket; the agent worker is started "
		    "by carotated",
		    fd, listening ? " listening" : "");
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 || evutil_make_socket_nonblocking(fd) == -1)
		fatal("descriptor %d", fd);
}

/* As many connections as the descriptor limit allows, up to WORKER_MAX_CONNS. */
static void
worker_limits(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("getrlimit");
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn(
		    "cannot raise the descriptor limit to %llu", (unsigned long long)rl.rlim_max);
	getrlimit(RLIMIT_NOFILE, &rl);
	worker_max_conns = WORKER_MAX_CONNS;
	/* A few descriptors stay for the listeners, the parent and libevent. */
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < WORKER_MAX_CONNS + 32)
		worker_max_conns = rl.rlim_cur > 64 ? (unsigned)rl.rlim_cur - 32 : 32;
}

/* parent: our end of the socketpair; the listening descriptor is worker_site's. */
static void
worker_setup(int parent)
{
	struct timeval tick = { 1, 0 };

	if ((worker_base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	worker_adopt_ev = event_new(worker_base, -1, 0, worker_adopt, NULL);
	worker_tick_ev = event_new(worker_base, -1, EV_PERSIST, worker_tick, NULL);
	worker_resume_ev = evtimer_new(worker_base, worker_resume, NULL);
	worker_shed_ev = evtimer_new(worker_base, worker_shed_due, NULL);
	worker_parent = bufferevent_socket_new(worker_base, parent, BEV_OPT_CLOSE_ON_FREE);
	if (worker_adopt_ev == NULL || worker_tick_ev == NULL || worker_resume_ev == NULL ||
	    worker_shed_ev == NULL || worker_parent == NULL)
		fatalx("%s: out of memory", __func__);
	event_add(worker_tick_ev, &tick);
	/* Never more than one whole answer buffered; whole frames are always drained. */
	bufferevent_setwatermark(
	    worker_parent, EV_READ, 0, WIRE_HEADER_LEN + WORKER_MAX_RESPONSE_FRAME);
	bufferevent_setcb(worker_parent, worker_parent_read, NULL, worker_parent_event, NULL);
	bufferevent_enable(worker_parent, EV_READ | EV_WRITE);
	worker_setup_site(worker_site);
}

static void
worker_setup_site(struct worker_site *site)
{
	struct timeval idle = { WORKER_IDLE_S, 0 };

	/* Backlog 0: the parent listens already (with its backlog); -1 would re-listen at 128. */
	site->listener = evconnlistener_new(
	    worker_base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, site->fd);
	if (site->listener == NULL || (site->http = evhttp_new(worker_base)) == NULL)
		fatalx("%s: cannot serve the %s socket", __func__, site->name);
	evhttp_set_max_headers_size(site->http, WORKER_MAX_HEADERS);
	evhttp_set_max_body_size(site->http, WORKER_MAX_BODY);
	evhttp_set_timeout_tv(site->http, &idle);
	/* Every method evhttp knows reaches us, so that ours can answer 405 with Allow. */
	evhttp_set_allowed_methods(site->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                           EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                           EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(site->http, "text/plain; charset=utf-8");
	evhttp_set_bevcb(site->http, worker_bevcb, site);
	evhttp_set_gencb(site->http, worker_handle, site);
	if (evhttp_bind_listener(site->http, site->listener) == NULL)
		fatalx("%s: cannot serve the %s socket", __func__, site->name);
	/* After evhttp_bind_listener, which sets only the accept callback. */
	evconnlistener_set_error_cb(site->listener, worker_accept_error);
}

/* Frees everything, so that a leak checker sees only real leaks. */
static void
worker_shutdown(void)
{
	struct worker_pending *p;
	struct worker_conn *conn;

	/*
	 * Frees the listener, then closes every connection: their close
	 * callbacks forget the requests they held.
	 */
	worker_site->listener = NULL;
	evhttp_free(worker_site->http);
	while ((p = TAILQ_FIRST(&worker_queue)) != NULL) {
		if (p->req != NULL)
			evhttp_request_free(p->req);
		worker_pending_free(p);
	}
	while ((conn = TAILQ_FIRST(&worker_newborn)) != NULL) {
		TAILQ_REMOVE(&worker_newborn, conn, newborn);
		bufferevent_decref(conn->bev);
		worker_conn_free(conn);
	}
	bufferevent_free(worker_parent);
	event_free(worker_adopt_ev);
	event_free(worker_tick_ev);
	event_free(worker_resume_ev);
	event_free(worker_shed_ev);
	event_base_free(worker_base);
	log_info("agent worker stopped");
}

#ifdef CAROTATE_FUZZ
struct event_base *
worker_fuzz_start(int parent, int listener)
{
	worker_site = &worker_sites[0];
	worker_site->fd = listener;
	worker_max_conns = WORKER_MAX_CONNS;
	worker_setup(parent);
	return worker_base;
}

unsigned
worker_fuzz_pending(void)
{
	return worker_npending;
}

unsigned
worker_fuzz_conns(void)
{
	return worker_nconns;
}
#endif

static int64_t
worker_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Accept while under the connection cap and not paused after EMFILE. */
static void
worker_listen_update(void)
{
	int on = !worker_accept_paused && worker_nconns < worker_max_conns;

	if (worker_site->listener == NULL)
		return; /* shutting down */
	if (on)
		evconnlistener_enable(worker_site->listener);
	else
		evconnlistener_disable(worker_site->listener);
}

/* Out of descriptors: stop accepting for a while instead of spinning on the listener. */
static void
worker_accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval tv = { WORKER_ACCEPT_PAUSE, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		log_warnx("accept: %s", strerror(err));
		return;
	}
	log_warnx("accept: %s; pausing for %d s", strerror(err), WORKER_ACCEPT_PAUSE);
	worker_accept_paused = 1;
	worker_listen_update();
	evtimer_add(worker_resume_ev, &tv);
}

static void
worker_resume(evutil_socket_t fd, short events, void *arg)
{
	worker_accept_paused = 0;
	worker_listen_update();
}

/*
 * evhttp asks for each new connection's bufferevent before it makes the
 * connection: the one hook we get at accept. The connection itself is
 * adopted once evhttp has finished setting it up (worker_adopt).
 */
static struct bufferevent *
worker_bevcb(struct event_base *base, void *arg)
{
	struct worker_conn *conn = xcalloc(1, sizeof(*conn));

	/* No BEV_OPT_CLOSE_ON_FREE: evhttp closes the socket itself, as with its own. */
	conn->bev = bufferevent_socket_new(base, -1, 0);
	conn->deadline = evtimer_new(base, worker_conn_expired, conn);
	if (conn->bev == NULL || conn->deadline == NULL)
		fatalx("%s: out of memory", __func__);
	bufferevent_setwatermark(conn->bev, EV_READ, 0, WORKER_MAX_INPUT);
	/* Held until adopted: evhttp frees it at once if the accept fails. */
	bufferevent_incref(conn->bev);
	TAILQ_INSERT_TAIL(&worker_newborn, conn, newborn);
	event_active(worker_adopt_ev, 0, 0);
	if (++worker_nconns >= worker_max_conns)
		worker_listen_update();
	return conn->bev;
}

/*
 * Learns the evhttp connection of each new bufferevent, to watch its close
 * and start its request deadline. XXX evhttp 2.1 gives no accept hook that
 * names the connection: we rely on it passing the connection as its
 * bufferevent's callback argument (true of every 2.x), and check that the
 * connection owns that bufferevent.
 */
static void
worker_adopt(evutil_socket_t fd, short events, void *arg)
{
	struct worker_conn *conn;
	bufferevent_data_cb readcb;
	void *cbarg;

	while ((conn = TAILQ_FIRST(&worker_newborn)) != NULL) {
		TAILQ_REMOVE(&worker_newborn, conn, newborn);
		bufferevent_getcb(conn->bev, &readcb, NULL, NULL, &cbarg);
		if (readcb == NULL) {
			/* evhttp freed it: the accept failed. */
			bufferevent_decref(conn->bev);
			worker_conn_free(conn);
			continue;
		}
		if (cbarg == NULL || evhttp_connection_get_bufferevent(cbarg) != conn->bev)
			fatalx("%s: this libevent's evhttp is not the one the worker was written "
			       "for",
			    __func__);
		conn->evcon = cbarg;
		evhttp_connection_set_closecb(conn->evcon, worker_conn_closed, conn);
		SLIST_INSERT_HEAD(worker_bucket_of(conn->evcon), conn, hash);
		worker_conn_arm(conn);
		bufferevent_decref(conn->bev);
	}
	worker_shed();
}

static struct worker_bucket *
worker_bucket_of(const struct evhttp_connection *evcon)
{
	uint64_t h = (uint64_t)(uintptr_t)evcon;

	h ^= h >> 29;
	h *= UINT64_C(0x9e3779b97f4a7c15);
	return &worker_buckets[(h >> 40) & (WORKER_CONN_BUCKETS - 1)];
}

static struct worker_conn *
worker_conn_find(const struct evhttp_connection *evcon)
{
	struct worker_conn *conn;

	SLIST_FOREACH(conn, worker_bucket_of(evcon), hash)
	if (conn->evcon == evcon)
		return conn;
	return NULL;
}

/* The next request on conn must arrive whole within WORKER_REQUEST_MS from now. */
static void
worker_conn_arm(struct worker_conn *conn)
{
	struct timeval tv = { WORKER_REQUEST_MS / 1000, (WORKER_REQUEST_MS % 1000) * 1000 };

	worker_conn_disarm(conn);
	evtimer_add(conn->deadline, &tv);
	conn->since = worker_now();
	conn->armed = 1;
	TAILQ_INSERT_TAIL(&worker_waiting, conn, waiting);
}

/* A request arrived, or the connection goes. */
static void
worker_conn_disarm(struct worker_conn *conn)
{
	if (!conn->armed)
		return;
	evtimer_del(conn->deadline);
	TAILQ_REMOVE(&worker_waiting, conn, waiting);
	conn->armed = 0;
}

/*
 * At the connection cap, a connection that has waited WORKER_SHED_MS for a
 * whole request makes room for those queued in the backlog. nginx sends its
 * request at once, so such a connection is idle or a slowloris client, and
 * check-ins must not wait behind it for the whole WORKER_REQUEST_MS.
 */
static void
worker_shed(void)
{
	struct worker_conn *conn;
	int64_t now = worker_now();

	while (worker_nconns >= worker_max_conns && (conn = TAILQ_FIRST(&worker_waiting)) != NULL &&
	       now - conn->since >= WORKER_SHED_MS) {
		worker_nshed++;
		/* Calls worker_conn_closed, which frees conn. */
		evhttp_connection_free(conn->evcon);
	}
	/* Still full: look again when the oldest of them is due. */
	if (worker_nconns >= worker_max_conns && (conn = TAILQ_FIRST(&worker_waiting)) != NULL) {
		int64_t ms = conn->since + WORKER_SHED_MS - now;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		evtimer_add(worker_shed_ev, &tv);
	}
	if (worker_nshed > 0 && now >= worker_shed_log) {
		log_warnx("at the cap of %u connections: closed %u that sent no whole request "
		          "within %d ms",
		    worker_max_conns, worker_nshed, WORKER_SHED_MS);
		worker_nshed = 0;
		worker_shed_log = now + WORKER_LOG_EVERY * 1000;
	}
}

/* A client that trickles its request (slowloris) loses its connection here. */
static void
worker_conn_expired(evutil_socket_t fd, short events, void *arg)
{
	struct worker_conn *conn = arg;

	log_debug("agent connection: no whole request within %d ms; closed", WORKER_REQUEST_MS);
	/* Calls worker_conn_closed, which frees conn. */
	evhttp_connection_free(conn->evcon);
}

/*
 * evhttp is about to free the connection. A request of it that waits on the
 * parent is freed with it unless evhttp already detached it (then it lives
 * until answered, and the answer frees it).
 */
static void
worker_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct worker_conn *conn = arg;
	struct worker_pending *p;

	if ((p = conn->pending) != NULL) {
		p->conn = NULL;
		if (evhttp_request_get_connection(p->req) != NULL)
			p->req = NULL;
	}
	SLIST_REMOVE(worker_bucket_of(evcon), conn, worker_conn, hash);
	worker_conn_free(conn);
}

static void
worker_conn_free(struct worker_conn *conn)
{
	worker_conn_disarm(conn);
	event_free(conn->deadline);
	free(conn);
	if (worker_nconns-- == worker_max_conns)
		worker_listen_update();
}

static void
worker_handle(struct evhttp_request *req, void *arg)
{
	const struct worker_site *site = arg;
	struct worker_conn *conn;
	struct worker_call call;
	const char *why = NULL;
	int code;

	if ((conn = worker_conn_find(evhttp_request_get_connection(req))) == NULL)
		fatalx("%s: a request on a connection that was never adopted", __func__);
	/* It has arrived; from now on the parent's deadline applies. */
	worker_conn_disarm(conn);
	memset(&call, 0, sizeof(call));
	if ((code = worker_version(req, &why)) == 0 && (code = worker_route(req, &call, &why)) == 0)
		code = worker_headers(req, &call, &why);
	if (code != 0) {
		log_debug("%s: %d: %s", site->name, code, why);
		worker_conn_arm(conn);
		worker_refuse(req, code, why, call.route);
		return;
	}
	worker_forward(req, conn, &call);
}

/*
 * evhttp takes any "HTTP/%d.%d" whose major is at most 1, and keeps the minor in a char:
 * "HTTP/-1.1", "HTTP/0.5" and "HTTP/1.300" all get through, and its answer would name
 * them ("HTTP/1.257" reads as 1.1: harmless, it is answered as 1.1). nginx speaks 1.0 or
 * 1.1 to an upstream; anything else is answered 505, in HTTP/1.1, and the connection
 * closed (evhttp honours the reply's "Connection: close"). evhttp's own refusals (413,
 * 400) still name the version it parsed.
 */
static int
worker_version(struct evhttp_request *req, const char **why)
{
	if (req->major == 1 && (req->minor == 0 || req->minor == 1))
		return 0;
	req->major = 1;
	req->minor = 1;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	*why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
	return 505;
}

/* The route by exact path (a query string is refused, not ignored), then the method. */
static int
worker_route(struct evhttp_request *req, struct worker_call *call, const char **why)
{
	const char *uri = evhttp_request_get_uri(req);
	const struct worker_route *r;
	size_t i, n;

	for (i = 0; i < sizeof(worker_routes) / sizeof(worker_routes[0]); i++) {
		r = &worker_routes[i];
		n = strlen(r->path);
		if (strncmp(uri, r->path, n) != 0 || (uri[n] != '\0' && uri[n] != '?'))
			continue;
		call->route = r;
		if (evhttp_request_get_command(req) != r->method) {
			*why = "method not allowed";
			return 405;
		}
		if (uri[n] == '?') {
			*why = "query strings are not accepted";
			return 400;
		}
		return 0;
	}
	*why = "not found";
	return 404;
}

/* Takes the value of header name from kv; -1 when it was given before. */
static int
worker_take(const struct evkeyval *kv, const char *name, const char **value)
{
	if (strcasecmp(kv->key, name) != 0)
		return 0;
	if (*value != NULL)
		return -1;
	*value = kv->value;
	return 0;
}

static int
worker_headers(struct evhttp_request *req, struct worker_call *call, const char **why)
{
	const struct evkeyval *kv;
	const char *auth = NULL, *inm = NULL, *tok = NULL;
	int code;

	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	{
		if (worker_take(kv, "X-Agent-Id", &call->agent_id) == -1 ||
		    worker_take(kv, "Authorization", &auth) == -1 ||
		    worker_take(kv, "If-None-Match", &inm) == -1 ||
		    worker_take(kv, "X-Agent-Token", &tok) == -1) {
			*why = "a header is given more than once";
			return 400;
		}
	}
	if (call->agent_id == NULL || !valid_agent_id(call->agent_id, strlen(call->agent_id))) {
		*why = "X-Agent-Id must be 1-64 of A-Z a-z 0-9 . _ -";
		return 400;
	}
	if ((code = worker_bearer(auth, call->route, &call->credential)) != 0) {
		*why = "a valid Authorization: Bearer credential is required";
		return code;
	}
	if (inm != NULL && worker_etag(inm, call->if_none_match) == -1) {
		*why = "If-None-Match must be one bundle id in double quotes";
		return 400;
	}
	/* A renewal's proof: the agent's current token, the shape check-ins take. */
	if (tok != NULL && call->route->call == CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK) {
		if (!worker_valid_hex64(tok, strlen(tok))) {
			*why = "X-Agent-Token must be 64 lower-case hex digits";
			return 400;
		}
		call->agent_token = tok;
	}
	return 0;
}

/*
 * "Bearer <value>" (the scheme in any case). A value of the wrong shape is
 * 401 like a wrong one, so that nobody learns which it was.
 */
static int
worker_bearer(const char *auth, const struct worker_route *route, const char **value)
{
	const char *v;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return 401;
	v = auth + 7 + strspn(auth + 7, " ");
	if (!worker_valid_credential(route->call, (const uint8_t *)v, strlen(v)))
		return 401;
	*value = v;
	return 0;
}

/* `"<64 lower-case hex>"` -> the id; weak tags, lists and * are refused. */
static int
worker_etag(const char *s, char *id)
{
	size_t len = strlen(s);

	if (len != WORKER_BUNDLE_ID_LEN + 2 || s[0] != '"' || s[len - 1] != '"' ||
	    !worker_valid_hex64(s + 1, WORKER_BUNDLE_ID_LEN))
		return -1;
	memcpy(id, s + 1, WORKER_BUNDLE_ID_LEN);
	id[WORKER_BUNDLE_ID_LEN] = '\0';
	return 0;
}

static void
worker_refuse(
    struct evhttp_request *req, int code, const char *why, const struct worker_route *route)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char body[256];

	if (code == 405)
		evhttp_add_header(out, "Allow", route->allow);
	if (code == 401)
		evhttp_add_header(out, "WWW-Authenticate", "Bearer realm=\"carotate\"");
	snprintf(body, sizeof(body), "%s\n", why);
	worker_send(req, code, "text/plain; charset=utf-8", body, strlen(body));
}

/* Every answer of ours: no cache may keep it (it names agents, and may hold a token). */
static void
worker_send(struct evhttp_request *req, int code, const char *type, const void *body, size_t len)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *buf;

	evhttp_add_header(out, "Cache-Control", "no-store");
	if (type != NULL)
		evhttp_add_header(out, "Content-Type", type);
	if ((buf = evbuffer_new()) == NULL)
		fatalx("%s: out of memory", __func__);
	if (len > 0 && evbuffer_add(buf, body, len) == -1)
		fatalx("%s: out of memory", __func__);
	evhttp_send_reply(req, code, NULL, buf);
	evbuffer_free(buf);
}

static void
worker_forward(struct evhttp_request *req, struct worker_conn *conn, const struct worker_call *call)
{
	Carotate__Internal__AgentRequest msg = CAROTATE__INTERNAL__AGENT_REQUEST__INIT;
	struct worker_pending *p;
	uint8_t *frame;
	size_t len;

	if (worker_npending >= WORKER_MAX_PENDING) {
		log_warnx("%d requests wait on the daemon; refusing more", WORKER_MAX_PENDING);
		worker_conn_arm(conn);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		worker_send(req, 503, "text/plain; charset=utf-8", "busy\n", 5);
		return;
	}
	p = worker_pending_new();
	msg.seq = p->seq;
	msg.call = call->route->call;
	msg.agent_id = (char *)call->agent_id;
	msg.credential.data = (uint8_t *)call->credential;
	msg.credential.len = strlen(call->credential);
	msg.if_none_match = (char *)call->if_none_match;
	msg.agent_token = (char *)(call->agent_token != NULL ? call->agent_token : "");
	/* Its fields were checked for length: it always fits. */
	if ((frame = wire_frame_pack(&msg.base, WORKER_MAX_REQUEST_FRAME, &len)) == NULL)
		fatalx("%s: request over %u bytes", __func__, WORKER_MAX_REQUEST_FRAME);
	bufferevent_write(worker_parent, frame, len);
	xfreezero(frame, len);
	p->call = call->route->call;
	p->req = req;
	p->conn = conn;
	conn->pending = p;
}

/* A seq whose slot is free: at most WORKER_MAX_PENDING of WORKER_SLOTS are taken. */
static struct worker_pending *
worker_pending_new(void)
{
	struct worker_pending *p = xcalloc(1, sizeof(*p));

	do {
		if (++worker_seq > WORKER_MAX_SEQ)
			worker_seq = 1;
	} while (worker_slots[worker_seq & (WORKER_SLOTS - 1)] != NULL);
	p->seq = worker_seq;
	p->deadline = worker_now() + WORKER_PARENT_MS;
	worker_slots[p->seq & (WORKER_SLOTS - 1)] = p;
	TAILQ_INSERT_TAIL(&worker_queue, p, entry);
	worker_npending++;
	return p;
}

static struct worker_pending *
worker_pending_take(uint64_t seq)
{
	struct worker_pending *p = worker_slots[seq & (WORKER_SLOTS - 1)];

	return p != NULL && p->seq == seq ? p : NULL;
}

static void
worker_pending_free(struct worker_pending *p)
{
	if (p->conn != NULL)
		p->conn->pending = NULL;
	worker_slots[p->seq & (WORKER_SLOTS - 1)] = NULL;
	TAILQ_REMOVE(&worker_queue, p, entry);
	worker_npending--;
	free(p);
}

/* Handles every whole answer buffered. The parent is trusted: a bad frame ends us. */
static void
worker_parent_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[WIRE_HEADER_LEN];
	size_t have;
	uint32_t len;

	while ((have = evbuffer_get_length(in)) >= WIRE_HEADER_LEN) {
		evbuffer_copyout(in, hdr, sizeof(hdr));
		if ((len = wire_get_length(hdr)) > WORKER_MAX_RESPONSE_FRAME)
			fatalx("the daemon sent a frame of %u bytes (limit %u)", len,
			    WORKER_MAX_RESPONSE_FRAME);
		if (have < WIRE_HEADER_LEN + (size_t)len)
			break;
		worker_answer(
		    evbuffer_pullup(in, WIRE_HEADER_LEN + (ssize_t)len) + WIRE_HEADER_LEN, len);
		evbuffer_drain(in, WIRE_HEADER_LEN + len);
	}
}

/* The parent went away (it restarts us if it is still there): stop. */
static void
worker_parent_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_ERROR)
		log_warn("the connection to the daemon failed; exiting");
	else
		log_info("the daemon closed its connection; exiting");
	event_base_loopbreak(worker_base);
}

static void
worker_answer(const uint8_t *body, size_t len)
{
	Carotate__Internal__AgentResponse *resp;
	struct worker_pending *p;
	struct wire_budget budget;

	wire_budget_init(&budget, 64 * 1024 + 2 * len);
	if ((resp = carotate__internal__agent_response__unpack(&budget.allocator, len, body)) ==
	    NULL)
		fatalx("the daemon sent an answer that does not decode");
	if ((p = worker_pending_take(resp->seq)) == NULL)
		/* It timed out (503 sent) while the parent worked on it. */
		log_debug("%s: answer for seq %llu, which no longer waits", __func__,
		    (unsigned long long)resp->seq);
	else
		worker_respond(p, resp);
	protobuf_c_message_free_unpacked(&resp->base, &budget.allocator);
}

/* Answers p's client, if it is still there, and forgets p. */
static void
worker_respond(struct worker_pending *p, const Carotate__Internal__AgentResponse *resp)
{
	struct evhttp_request *req = p->req;
	struct worker_conn *conn = p->conn;
	Carotate__Internal__AgentCall call = p->call;

	worker_pending_free(p);
	if (req == NULL)
		return;
	if (conn != NULL)
		worker_conn_arm(conn);
	/* A request detached from its closed connection is freed by evhttp_send_reply. */
	worker_reply(req, call, resp);
}

static void
worker_reply(struct evhttp_request *req, Carotate__Internal__AgentCall call,
    const Carotate__Internal__AgentResponse *r)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char etag[WORKER_BUNDLE_ID_LEN + 3];
	int link = call == CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK;

	if ((r->http_status == 200 || r->http_status == 304) &&
	    (!worker_valid_hex64(r->etag, strlen(r->etag)) ||
	        (link && r->http_status == 200 &&
	            !worker_valid_hex64(r->token, strlen(r->token))))) {
		log_warnx("the daemon answered %u with a malformed ETag or token", r->http_status);
		worker_reply_error(req, 500, "internal error");
		return;
	}
	if (r->http_status != 200 && r->http_status != 304) {
		if (r->http_status == 429 && r->retry_after > 0 && r->retry_after <= 3600) {
			snprintf(etag, sizeof(etag), "%u", r->retry_after);
			evhttp_add_header(out, "Retry-After", etag);
		}
		worker_reply_error(req, r->http_status, r->error);
		return;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", r->etag);
	evhttp_add_header(out, "ETag", etag);
	worker_announce_canary(out, r->canary_url);
	if (r->http_status == 304) {
		worker_send(req, 304, NULL, NULL, 0);
		return;
	}
	if (link)
		evhttp_add_header(out, "X-Agent-Token", r->token);
	worker_send(req, 200, "application/x-pem-file", r->bundle.data, r->bundle.len);
}

/*
 * X-Carotate-Canary: the URL config.c accepted, checked again for its shape
 * (a header value the parent got wrong is dropped, never sent half-valid).
 */
static void
worker_announce_canary(struct evkeyvalq *out, const char *url)
{
	size_t len = strlen(url), i;

	if (len == 0)
		return;
	for (i = 0; i < len; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			break;
	if (len > WORKER_MAX_URL || i < len || strncmp(url, "https://", 8) != 0) {
		log_warnx("the daemon sent a malformed canary URL; not announced");
		return;
	}
	evhttp_add_header(out, "X-Carotate-Canary", url);
}

/* The parent's error text, printable and short; statuses outside 4xx/5xx become 500. */
static void
worker_reply_error(struct evhttp_request *req, unsigned status, const char *error)
{
	char body[WORKER_MAX_ERROR + 2];
	size_t i;

	if (status < 400 || status > 599) {
		log_warnx("the daemon answered with HTTP status %u", status);
		status = 500;
		error = "internal error";
	}
	for (i = 0; error[i] != '\0' && i < WORKER_MAX_ERROR; i++)
		body[i] = error[i] >= 0x20 && error[i] < 0x7f ? error[i] : '?';
	body[i++] = '\n';
	if (status == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer realm=\"carotate\"");
	worker_send(req, (int)status, "text/plain; charset=utf-8", body, i);
}

static void
worker_shed_due(evutil_socket_t fd, short events, void *arg)
{
	worker_shed();
}

/*
 * Requests the parent has not answered in time get 503 (oldest first: in
 * deadline order); at the cap, connections without a request are shed.
 */
static void
worker_tick(evutil_socket_t fd, short events, void *arg)
{
	Carotate__Internal__AgentResponse busy = CAROTATE__INTERNAL__AGENT_RESPONSE__INIT;
	struct worker_pending *p;
	int64_t now = worker_now();

	busy.http_status = 503;
	busy.error = (char *)"the daemon did not answer in time; try again";
	while ((p = TAILQ_FIRST(&worker_queue)) != NULL && p->deadline <= now) {
		log_warnx("the daemon did not answer seq %llu within %d ms",
		    (unsigned long long)p->seq, WORKER_PARENT_MS);
		worker_respond(p, &busy);
	}
	worker_shed();
}
