/*
 * Control connections. Each one gets its role once, at accept, from the
 * kernel's record of the peer. Frames are length-checked before their body
 * is buffered, decoded with a memory budget, and answered in order. A client
 * that sends garbage, dawdles, or never reads loses its connection; the
 * daemon carries on.
 */
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "acl.h"
#include "audit.h"
#include "carotated.h"
#include "config.h"
#include "control.h"
#include "dispatch.h"
#include "reply.h"
#include "log.h"
#include "unixsock.h"
#include "ssldir.h"
#include "watch.h"
#include "wire.h"
#include "xmalloc.h"

#define CONTROL_BACKLOG      128
#define CONTROL_ACCEPT_PAUSE 1    /* seconds to wait after accept ran out of descriptors */
#define CONTROL_LINGER       1000 /* ms a closing connection may take to read its last reply */
#define CONTROL_BATCH        4    /* frames of one client handled before the others get a turn */
#define CONTROL_OUTPUT_PAUSE (64 * 1024) /* unread reply bytes that pause a client's requests */
#define CONTROL_FD_RESERVE   32 /* top descriptors never held by a connection (at most limit/4) */
#define CONTROL_LOG_EVERY    10 /* s between two log lines about refused connections */

enum control_timer {
	CONTROL_TIMER_IDLE,    /* no request in flight */
	CONTROL_TIMER_REQUEST, /* a frame started arriving: it must end by the deadline */
	CONTROL_TIMER_LINGER,  /* an error reply is flushing; the connection then closes */
	CONTROL_TIMER_STALL,   /* replies are queued and unread: read them by the deadline */
};

struct control_conn {
	TAILQ_ENTRY(control_conn) entry;
	struct control *ctl;
	struct bufferevent *bev;
	struct event *timer;
	struct event *again; /* control_read once more, from the loop */
	enum control_timer timer_kind;
	struct acl_peer peer;
	enum acl_role role;
	int closing;
	int stalled; /* not handling requests until the client reads its replies */
	struct control_pending *pending; /* a deferred request awaits its reply */
};

struct control_pending {
	struct control_conn *conn; /* NULL once the client has gone */
	struct audit_call *audit;  /* the call's audit record, closed with the reply */
};

struct control {
	struct carotated *cd;
	struct evconnlistener *listener;
	struct event *resume;
	struct event *refused_ev; /* ends a quiet spell of the log about refusals */
	struct acl acl;
	TAILQ_HEAD(, control_conn) conns;
	unsigned nconns;
	unsigned nothers; /* of them, connections below the admin role */
	int fd_ceiling;   /* a connection on this descriptor or above is refused */
	unsigned refused; /* connections refused and not yet logged */
	char *path;
	dev_t dev; /* of the socket file we made, so we only ever unlink our own */
	ino_t ino;
	/* The phase as last read, good while the watch's generation is phase_gen (0: never). */
	Carotate__V1__Phase phase;
	uint64_t phase_gen;
};

/* The identity of the socket file control_bind made. */
static dev_t control_dev;
static ino_t control_ino;

static int control_grant_admins(const struct config *, gid_t, char *, size_t);
static void control_accept(
    struct evconnlistener *, evutil_socket_t, struct sockaddr *, int, void *);
static void control_accept_error(struct evconnlistener *, void *);
static void control_resume(evutil_socket_t, short, void *);
static struct control_pending *control_defer(struct rpc_ctx *);
static struct audit_call *control_pending_take_audit(struct control_pending *);
static void control_complete(struct control_pending *, Carotate__V1__Response *);

/* How handlers answer later (op.h reaches these through the context). */
static const struct carotated_defer control_defer_ops = {
	.defer = control_defer,
	.take_audit = control_pending_take_audit,
	.complete = control_complete,
};
static void control_fd_ceiling(struct control *);
static void control_refuse(int, Carotate__V1__Status, const char *);
static int control_over_quota(
    const struct control *, const struct acl_peer *, enum acl_role, char *, size_t);
static unsigned control_uid_conns(const struct control *, uid_t);
static void control_log_refusal(struct control *, const char *);
static void control_log_refused(evutil_socket_t, short, void *);
static void control_read(struct bufferevent *, void *);
static void control_read_later(struct control_conn *);
static void control_again(evutil_socket_t, short, void *);
static void control_write(struct bufferevent *, void *);
static void control_event(struct bufferevent *, short, void *);
static void control_timeout(evutil_socket_t, short, void *);
static void control_arm(struct control_conn *, enum control_timer);
static void control_handle(struct control_conn *, const uint8_t *, size_t);
static void control_phase(struct control *, struct rpc_ctx *);
static void control_send(struct control_conn *, Carotate__V1__Response *);
static void control_write_frame(struct control_conn *, const uint8_t *, size_t);
static void control_fail(struct control_conn *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void control_close(struct control_conn *);
static void control_flush_now(struct control_conn *);
static struct control_conn *control_conn_new(
    struct control *, int, const struct acl_peer *, enum acl_role);
static void control_stall(struct control_conn *);

int
control_bind(const struct config *conf, int privileged, char *err, size_t errlen)
{
	struct group *gr = NULL;
	gid_t gid;
	int fd;

	if (privileged && (gr = getgrnam(conf->socket_group)) == NULL) {
		snprintf(err, errlen, "socket group %s does not exist", conf->socket_group);
		return -1;
	}
	gid = gr != NULL ? gr->gr_gid : UNIXSOCK_NO_GROUP;
	fd = unixsock_listen(
	    conf->socket, gid, CONTROL_BACKLOG, &control_dev, &control_ino, err, errlen);
	if (fd != -1 && privileged && control_grant_admins(conf, gid, err, errlen) == -1) {
		unixsock_unlink(conf->socket, control_dev, control_ino);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The socket is root:socket_group 0660, so a member of admin_group alone
 * could not open it: an ACL entry grants that group rw too. A missing admin
 * group grants nothing (acl_init logs it), so it gets no entry either.
 */
static int
control_grant_admins(const struct config *conf, gid_t socket_gid, char *err, size_t errlen)
{
	struct group *gr;

	if ((gr = getgrnam(conf->admin_group)) == NULL || gr->gr_gid == socket_gid)
		return 0;
	return unixsock_grant_group(conf->socket, gr->gr_gid, err, errlen);
}

struct control *
control_start(struct carotated *cd, int fd)
{
	struct control *ctl = xcalloc(1, sizeof(*ctl));

	ctl->cd = cd;
	cd->defer = &control_defer_ops;
	TAILQ_INIT(&ctl->conns);
	ctl->path = xstrdup(cd->conf->socket);
	ctl->dev = control_dev;
	ctl->ino = control_ino;
	control_reconfigure(ctl);
	control_fd_ceiling(ctl);
	ctl->listener = evconnlistener_new(
	    cd->base, control_accept, ctl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ctl->listener == NULL)
		fatalx("%s: cannot listen on %s", __func__, ctl->path);
	evconnlistener_set_error_cb(ctl->listener, control_accept_error);
	if ((ctl->resume = evtimer_new(cd->base, control_resume, ctl)) == NULL ||
	    (ctl->refused_ev = evtimer_new(cd->base, control_log_refused, ctl)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	log_info("listening on %s", ctl->path);
	return ctl;
}

void
control_reconfigure(struct control *ctl)
{
	const struct config *conf = ctl->cd->conf;

	acl_init(&ctl->acl, geteuid(), conf->admin_group, conf->socket_group);
}

/*
 * A reply written at shutdown (a call interrupted by it) goes out as far as
 * the socket takes it at once: freeing the bufferevent would drop it, and its
 * output may only be drained from its own write callback (evbuffer_write
 * refuses), so the bytes are copied out.
 */
static void
control_flush_now(struct control_conn *conn)
{
	struct evbuffer *out = bufferevent_get_output(conn->bev);
	size_t len = evbuffer_get_length(out);
	unsigned char *p;

	if (len == 0 || (p = evbuffer_pullup(out, (ev_ssize_t)len)) == NULL)
		return;
	(void)send(bufferevent_getfd(conn->bev), p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void
control_free(struct control *ctl)
{
	struct control_conn *conn;

	if (ctl == NULL)
		return;
	while ((conn = TAILQ_FIRST(&ctl->conns)) != NULL) {
		control_flush_now(conn);
		control_close(conn);
	}
	evconnlistener_free(ctl->listener);
	event_free(ctl->resume);
	event_free(ctl->refused_ev);
	unixsock_unlink(ctl->path, ctl->dev, ctl->ino);
	free(ctl->path);
	free(ctl);
}

/*
 * The top descriptors of the limit are never a connection's, so that the
 * daemon's own work (certificate files, the SSL directory, jobs, the proxy
 * check), which takes the lowest free descriptor, always finds one. Without
 * this, clients holding every descriptor turn each status call into "Too
 * many open files".
 */
static void
control_fd_ceiling(struct control *ctl)
{
	struct rlimit rl;
	rlim_t reserve;
	int lowest, room;

	ctl->fd_ceiling = INT_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > INT_MAX)
		return;
	reserve = rl.rlim_cur / 4 < CONTROL_FD_RESERVE ? rl.rlim_cur / 4 : CONTROL_FD_RESERVE;
	ctl->fd_ceiling = (int)(rl.rlim_cur - reserve);
	/* The lowest free descriptor now: what connections can have lies between the two. */
	if ((lowest = fcntl(0, F_DUPFD_CLOEXEC, 0)) == -1)
		return;
	close(lowest);
	room = ctl->fd_ceiling > lowest ? ctl->fd_ceiling - lowest : 0;
	if (ctl->cd->conf->max_clients > (unsigned)room)
		log_warnx("control: the descriptor limit (%llu) allows about %d connections, fewer "
		          "than max_clients (%u)",
		    (unsigned long long)rl.rlim_cur, room, ctl->cd->conf->max_clients);
}

/*
 * One line per CONTROL_LOG_EVERY s at most, the others counted: clients
 * retrying in a loop must not flood the log.
 */
static void
control_log_refusal(struct control *ctl, const char *why)
{
	struct timeval tv = { CONTROL_LOG_EVERY, 0 };

	if (evtimer_pending(ctl->refused_ev, NULL)) {
		ctl->refused++;
		return;
	}
	log_warnx("control: refusing connections: %s", why);
	evtimer_add(ctl->refused_ev, &tv);
}

static void
control_log_refused(evutil_socket_t fd, short events, void *arg)
{
	struct control *ctl = arg;
	struct timeval tv = { CONTROL_LOG_EVERY, 0 };

	if (ctl->refused == 0)
		return;
	log_warnx("control: %u more connections refused in the last %d s", ctl->refused,
	    CONTROL_LOG_EVERY);
	ctl->refused = 0;
	evtimer_add(ctl->refused_ev, &tv);
}

/*
 * Answers a connection we will not serve with one frame, without allocating
 * any state for it, and closes it. Best effort: a full socket buffer loses it.
 */
static void
control_refuse(int fd, Carotate__V1__Status status, const char *msg)
{
	Carotate__V1__Response reply = CAROTATE__V1__RESPONSE__INIT;
	uint8_t *frame;
	size_t len;

	reply.status = status;
	reply.message = (char *)msg;
	frame = wire_frame_pack(&reply.base, WIRE_MAX_REPLY, &len);
	if (frame != NULL && send(fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		log_debug("%s: %s", __func__, strerror(errno));
	free(frame);
	close(fd);
}

static void
control_accept(
    struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct control *ctl = arg;
	const struct config *conf = ctl->cd->conf;
	struct acl_peer peer;
	enum acl_role role;
	char msg[256];

	if (ctl->nconns >= conf->max_clients || fd >= ctl->fd_ceiling) {
		if (ctl->nconns >= conf->max_clients)
			snprintf(msg, sizeof(msg), "too many connections (limit %u); try again",
			    conf->max_clients);
		else
			snprintf(msg, sizeof(msg),
			    "too many connections (%u open, all the descriptor limit allows); "
			    "try again",
			    ctl->nconns);
		control_log_refusal(ctl, msg);
		control_refuse(fd, CAROTATE__V1__STATUS__UNAVAILABLE, msg);
		return;
	}
	if (acl_peer_read(fd, &peer) == -1) {
		log_warn("control: peer credentials");
		close(fd);
		return;
	}
	if ((role = acl_role(&ctl->acl, &peer)) == ACL_NONE) {
		snprintf(msg, sizeof(msg), "permission denied: uid %ld is not in group %s or %s",
		    (long)peer.uid, conf->socket_group, conf->admin_group);
		control_log_refusal(ctl, msg);
		control_refuse(fd, CAROTATE__V1__STATUS__PERMISSION_DENIED, msg);
		acl_peer_clear(&peer);
		return;
	}
	if (control_over_quota(ctl, &peer, role, msg, sizeof(msg))) {
		control_log_refusal(ctl, msg);
		control_refuse(fd, CAROTATE__V1__STATUS__UNAVAILABLE, msg);
		acl_peer_clear(&peer);
		return;
	}
	control_conn_new(ctl, fd, &peer, role);
}

/*
 * Readers must not starve admins: below the admin role, a connection may not
 * take one of the last admin_reserved slots, nor be more than
 * max_clients_per_uid of its uid's. Admins are held to max_clients alone.
 * 1 (msg says why) when peer must be refused.
 */
static int
control_over_quota(const struct control *ctl, const struct acl_peer *peer, enum acl_role role,
    char *msg, size_t len)
{
	const struct config *conf = ctl->cd->conf;
	unsigned others = conf->max_clients - conf->admin_reserved;

	if (role >= ACL_ADMIN)
		return 0;
	if (ctl->nothers >= others) {
		snprintf(msg, len,
		    "too many connections: the %u slots open to readers are taken (the other %u "
		    "are kept for admins); try again",
		    others, conf->admin_reserved);
		return 1;
	}
	if (control_uid_conns(ctl, peer->uid) >= conf->max_clients_per_uid) {
		snprintf(msg, len,
		    "too many connections from uid %ld (limit %u per user); close one and try "
		    "again",
		    (long)peer->uid, conf->max_clients_per_uid);
		return 1;
	}
	return 0;
}

/* Connections of uid now: a walk, as accepts are rare next to requests (max_clients <= 65536). */
static unsigned
control_uid_conns(const struct control *ctl, uid_t uid)
{
	const struct control_conn *conn;
	unsigned n = 0;

	TAILQ_FOREACH(conn, &ctl->conns, entry)
	if (conn->peer.uid == uid)
		n++;
	return n;
}

/* Serves fd as a connection of peer (taken over) with role. */
static struct control_conn *
control_conn_new(struct control *ctl, int fd, const struct acl_peer *peer, enum acl_role role)
{
	struct control_conn *conn;

	conn = xcalloc(1, sizeof(*conn));
	conn->ctl = ctl;
	conn->peer = *peer;
	conn->role = role;
	conn->bev = bufferevent_socket_new(ctl->cd->base, fd, BEV_OPT_CLOSE_ON_FREE);
	conn->timer = evtimer_new(ctl->cd->base, control_timeout, conn);
	conn->again = evtimer_new(ctl->cd->base, control_again, conn);
	if (conn->bev == NULL || conn->timer == NULL || conn->again == NULL)
		fatalx("%s: out of memory", __func__);
	TAILQ_INSERT_TAIL(&ctl->conns, conn, entry);
	ctl->nconns++;
	if (role < ACL_ADMIN)
		ctl->nothers++;
	/* Never buffer more than one whole request: the header, then at most the cap. */
	bufferevent_setwatermark(conn->bev, EV_READ, 0, WIRE_HEADER_LEN + WIRE_MAX_REQUEST);
	bufferevent_setcb(conn->bev, control_read, control_write, control_event, conn);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
	control_arm(conn, CONTROL_TIMER_IDLE);
	log_debug("control: uid %ld pid %ld connected as %s", (long)peer->uid, (long)peer->pid,
	    acl_role_name(role));
	return conn;
}

#ifdef CAROTATE_FUZZ
void
control_fuzz_attach(struct control *ctl, int fd, enum acl_role role)
{
	struct acl_peer peer = { .pid = getpid(), .uid = getuid(), .gid = getgid() };

	control_conn_new(ctl, fd, &peer, role);
}

unsigned
control_fuzz_conns(const struct control *ctl)
{
	return ctl->nconns;
}
#endif

/* Out of descriptors: stop accepting for a while instead of spinning on the listener. */
static void
control_accept_error(struct evconnlistener *l, void *arg)
{
	struct control *ctl = arg;
	struct timeval tv = { CONTROL_ACCEPT_PAUSE, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		log_warnx(
		    "control: accept: %s; pausing for %d s", strerror(err), CONTROL_ACCEPT_PAUSE);
		evconnlistener_disable(l);
		evtimer_add(ctl->resume, &tv);
	} else
		log_warnx("control: accept: %s", strerror(err));
}

static void
control_resume(evutil_socket_t fd, short events, void *arg)
{
	struct control *ctl = arg;

	evconnlistener_enable(ctl->listener);
}

static void
control_arm(struct control_conn *conn, enum control_timer kind)
{
	const struct config *conf = conn->ctl->cd->conf;
	unsigned ms = kind == CONTROL_TIMER_IDLE     ? conf->idle_timeout
	              : kind == CONTROL_TIMER_LINGER ? CONTROL_LINGER
	                                             : conf->request_timeout;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	conn->timer_kind = kind;
	evtimer_add(conn->timer, &tv);
}

static void
control_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct control_conn *conn = arg;

	switch (conn->timer_kind) {
	case CONTROL_TIMER_REQUEST:
		log_warnx("control: uid %ld pid %ld: request not complete within %u ms",
		    (long)conn->peer.uid, (long)conn->peer.pid,
		    conn->ctl->cd->conf->request_timeout);
		control_fail(conn, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "request not complete within %u ms", conn->ctl->cd->conf->request_timeout);
		break;
	case CONTROL_TIMER_IDLE:
		log_debug("control: uid %ld pid %ld: idle, closing", (long)conn->peer.uid,
		    (long)conn->peer.pid);
		control_close(conn);
		break;
	case CONTROL_TIMER_LINGER:
		control_close(conn);
		break;
	case CONTROL_TIMER_STALL:
		log_warnx("control: uid %ld pid %ld does not read its replies; dropped",
		    (long)conn->peer.uid, (long)conn->peer.pid);
		control_close(conn);
		break;
	}
}

/*
 * Handles the whole frames buffered, a few at a time so that one busy client
 * cannot starve the others, and none while the client leaves its replies
 * unread. Then sets the timer for what is left.
 */
static void
control_read(struct bufferevent *bev, void *arg)
{
	struct control_conn *conn = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[WIRE_HEADER_LEN];
	size_t have;
	uint32_t len;
	int had_partial = conn->timer_kind == CONTROL_TIMER_REQUEST, handled = 0;

	while (!conn->closing && conn->pending == NULL && !conn->stalled &&
	       (have = evbuffer_get_length(in)) >= WIRE_HEADER_LEN) {
		evbuffer_copyout(in, hdr, sizeof(hdr));
		if ((len = wire_get_length(hdr)) > WIRE_MAX_REQUEST) {
			control_fail(conn, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "request of %u bytes exceeds the limit of %u bytes", len,
			    WIRE_MAX_REQUEST);
			return;
		}
		if (have < WIRE_HEADER_LEN + (size_t)len)
			break;
		if (evbuffer_get_length(bufferevent_get_output(bev)) > CONTROL_OUTPUT_PAUSE) {
			control_stall(conn);
			return;
		}
		if (handled == CONTROL_BATCH) {
			/* Let the others in; carry on from the loop. */
			control_read_later(conn);
			return;
		}
		control_handle(conn,
		    evbuffer_pullup(in, WIRE_HEADER_LEN + (ssize_t)len) + WIRE_HEADER_LEN, len);
		evbuffer_drain(in, WIRE_HEADER_LEN + len);
		handled++;
		had_partial = 0;
		if (conn->closing || conn->pending != NULL)
			return;
		if (evbuffer_get_length(bufferevent_get_output(bev)) >
		    conn->ctl->cd->conf->max_output) {
			log_warnx("control: uid %ld pid %ld does not read its replies; dropped",
			    (long)conn->peer.uid, (long)conn->peer.pid);
			control_close(conn);
			return;
		}
	}
	if (conn->closing || conn->pending != NULL || conn->stalled)
		return;
	/* The deadline runs from a frame's first byte; more bytes do not extend it. */
	if (evbuffer_get_length(in) == 0)
		control_arm(conn, CONTROL_TIMER_IDLE);
	else if (!had_partial)
		control_arm(conn, CONTROL_TIMER_REQUEST);
}

/*
 * A zero timeout, not bufferevent_trigger's deferred callback: that holds a
 * reference to the bufferevent until the loop runs it, and at shutdown the
 * loop runs no more, so the connection would never be freed.
 */
static void
control_read_later(struct control_conn *conn)
{
	const struct timeval now = { 0, 0 };

	evtimer_add(conn->again, &now);
}

static void
control_again(evutil_socket_t fd, short events, void *arg)
{
	struct control_conn *conn = arg;

	control_read(conn->bev, conn);
}

/* Replies pile up unread: stop reading until they drain, or drop the client at the deadline. */
static void
control_stall(struct control_conn *conn)
{
	conn->stalled = 1;
	bufferevent_disable(conn->bev, EV_READ);
	control_arm(conn, CONTROL_TIMER_STALL);
}

static void
control_write(struct bufferevent *bev, void *arg)
{
	struct control_conn *conn = arg;

	if (conn->closing) {
		control_close(conn);
		return;
	}
	if (conn->stalled) {
		conn->stalled = 0;
		conn->timer_kind = CONTROL_TIMER_IDLE;
		bufferevent_enable(bev, EV_READ);
		control_read(bev, conn);
	}
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	struct control_conn *conn = arg;

	/* A client may half-close after its last request: flush the replies first. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0 && !conn->closing) {
		conn->closing = 1;
		bufferevent_disable(bev, EV_READ);
		control_arm(conn, CONTROL_TIMER_LINGER);
		return;
	}
	control_close(conn);
}

/* Decodes one request body of len bytes (already within the cap), dispatches, answers. */
static void
control_handle(struct control_conn *conn, const uint8_t *body, size_t len)
{
	struct wire_budget budget;
	Carotate__V1__Request *req;
	Carotate__V1__Response *reply;
	struct rpc_ctx ctx = {
		.cd = conn->ctl->cd, .peer = &conn->peer, .role = conn->role, .conn = conn
	};

	wire_budget_init(&budget, wire_request_budget(len));
	if ((req = wire_request_unpack(body, len, &budget)) == NULL) {
		control_fail(conn, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "%s",
		    budget.exhausted ? "request needs too much memory to decode"
		                     : "request does not decode as carotate.v1.Request");
		return;
	}
	if (req->version != WIRE_VERSION) {
		control_fail(conn, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "protocol version %u is not supported (carotated speaks %u)", req->version,
		    WIRE_VERSION);
		protobuf_c_message_free_unpacked(&req->base, &budget.allocator);
		return;
	}
	if (!wire_request_canonical(req, len)) {
		control_fail(conn, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "request is not canonically encoded (a string holding a NUL byte, say)");
		protobuf_c_message_free_unpacked(&req->base, &budget.allocator);
		return;
	}
	reply = reply_new();
	control_phase(conn->ctl, &ctx);
	dispatch_request(&ctx, req, reply);
	protobuf_c_message_free_unpacked(&req->base, &budget.allocator);
	if (!ctx.deferred)
		control_send(conn, reply);
	reply_free(reply);
}

/*
 * The phase every call is checked against: read from the SSL directory
 * unless nothing there has changed since the last read (watch.h). The
 * watch's generation goes with the request, for handlers that cache too.
 */
static void
control_phase(struct control *ctl, struct rpc_ctx *ctx)
{
	const struct config *conf = ctl->cd->conf;

	ctx->watch_gen = watch_generation(ctl->cd->watch);
	if (ctx->watch_gen != 0 && ctx->watch_gen == ctl->phase_gen) {
		ctx->phase = ctl->phase;
		return;
	}
	ctl->phase_gen = 0;
	if (ssldir_phase(conf, &ctx->phase) == -1) {
		ctx->phase_errno = errno != 0 ? errno : EIO;
		log_warn("%s: cannot read %s", __func__, conf->ssl_dir);
		ctx->phase = CAROTATE__V1__PHASE__PHASE_STEADY;
		return;
	}
	ctl->phase = ctx->phase;
	ctl->phase_gen = ctx->watch_gen;
}

static struct control_pending *
control_defer(struct rpc_ctx *ctx)
{
	struct control_conn *conn = ctx->conn;
	struct control_pending *p = xcalloc(1, sizeof(*p));

	p->conn = conn;
	p->audit = ctx->audit;
	ctx->audit = NULL;
	conn->pending = p;
	ctx->deferred = 1;
	/* Work in progress is not idleness; the request has fully arrived. */
	evtimer_del(conn->timer);
	bufferevent_disable(conn->bev, EV_READ);
	return p;
}

static struct audit_call *
control_pending_take_audit(struct control_pending *p)
{
	struct audit_call *ac = p->audit;

	p->audit = NULL;
	return ac;
}

static void
control_complete(struct control_pending *p, Carotate__V1__Response *reply)
{
	struct control_conn *conn = p->conn;

	/* Recorded even when the client has gone: the work was done all the same. */
	audit_call_end(p->audit, reply);
	free(p);
	if (conn == NULL) {
		reply_free(reply);
		return;
	}
	conn->pending = NULL;
	control_send(conn, reply);
	reply_free(reply);
	bufferevent_enable(conn->bev, EV_READ);
	/*
	 * Requests that arrived meanwhile are buffered: answer them from the loop.
	 * Never from here: a handler may complete at once (its job could not be
	 * started), inside control_read, before that frame is drained; reading
	 * now would handle it a second time, then drain a frame never handled.
	 */
	control_read_later(conn);
}

static void
control_send(struct control_conn *conn, Carotate__V1__Response *reply)
{
	Carotate__V1__Response err = CAROTATE__V1__RESPONSE__INIT;
	uint8_t *frame;
	size_t len;

	if ((frame = wire_frame_pack(&reply->base, WIRE_MAX_REPLY, &len)) == NULL) {
		log_warnx("%s: reply over %u bytes", __func__, WIRE_MAX_REPLY);
		err.status = CAROTATE__V1__STATUS__INTERNAL;
		err.message = (char *)"reply exceeds the protocol's size limit";
		frame = wire_frame_pack(&err.base, WIRE_MAX_REPLY, &len);
	}
	control_write_frame(conn, frame, len);
	free(frame);
}

/*
 * Queues a reply frame. With nothing queued before it, it goes to the socket
 * at once, as far as the socket takes it: through the bufferevent, each
 * reply would cost two epoll_ctl calls and a loop turn. What the socket does
 * not take, and every reply of a closing connection (which closes when its
 * output drains, in control_write), goes through the bufferevent; a write
 * error is left to it too, so that it is reported the one way.
 */
static void
control_write_frame(struct control_conn *conn, const uint8_t *frame, size_t len)
{
	ssize_t n = 0;

	if (!conn->closing && evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0 &&
	    (n = send(bufferevent_getfd(conn->bev), frame, len, MSG_DONTWAIT | MSG_NOSIGNAL)) == -1)
		n = 0;
	if ((size_t)n < len)
		bufferevent_write(conn->bev, frame + n, len - (size_t)n);
}

/* Sends one error reply, stops reading, and closes once it is flushed (or soon anyway). */
static void
control_fail(struct control_conn *conn, Carotate__V1__Status status, const char *fmt, ...)
{
	Carotate__V1__Response *reply = reply_new();
	va_list ap;

	va_start(ap, fmt);
	reply_verror(reply, status, 512, fmt, ap);
	va_end(ap);
	log_debug("control: uid %ld pid %ld: %s", (long)conn->peer.uid, (long)conn->peer.pid,
	    reply->message);
	conn->closing = 1;
	control_send(conn, reply);
	reply_free(reply);
	bufferevent_disable(conn->bev, EV_READ);
	control_arm(conn, CONTROL_TIMER_LINGER);
}

static void
control_close(struct control_conn *conn)
{
	struct control *ctl = conn->ctl;

	if (conn->pending != NULL)
		conn->pending->conn = NULL;
	TAILQ_REMOVE(&ctl->conns, conn, entry);
	ctl->nconns--;
	if (conn->role < ACL_ADMIN)
		ctl->nothers--;
	event_free(conn->timer);
	event_free(conn->again);
	bufferevent_free(conn->bev);
	acl_peer_clear(&conn->peer);
	free(conn);
}
