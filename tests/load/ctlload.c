/*
 * ctlload: load and hostile clients on carotated's control socket, from one
 * process and one epoll loop. Prints figures as key=value lines; asserts
 * nothing itself (tests/integration/test_load_hostile.sh and tests/bench/run
 * read the lines).
 *
 *   ctlload -s SOCKET [-t SECONDS] [--min SECONDS] [--readers N] [--calls N] [--interval MS]
 *           [--idle N] [--drip N] [--drip-interval MS] [--noread N]
 *           [--pile N] [--pile-at MS] [-e KEY=VALUE]... [-p [NAME=]PID]...
 *
 * Kinds of clients, all at once:
 *  readers  one call in flight each, round-robin status, report, backups, audit;
 *           every reply is checked against -e (wrong answers are counted);
 *           with --calls, each makes that many and the run ends when all are done
 *           (but not before --min seconds)
 *  idle     connect and say nothing; reconnect when the daemon closes them
 *  drip     send a status request one byte every --drip-interval ms
 *  noread   pipeline status requests and never read a reply
 *  pile     connect all at once at --pile-at ms (retrying while the backlog is
 *           full), send one status request, read its answer, then stay idle
 * -e keys: phase (steady|staged), active_ca, active_server, staged_ca ("-":
 * none), bundle_id, linked, active, acknowledged, backups (total), backup0
 * (the newest id), audit (total), audit0 (the newest record's hash).
 * -p: processes whose CPU time and VmRSS are reported over the run.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carotate.pb-c.h"
#include "load.h"
#include "wire.h"

#define CTL_TICK_MS       5    /* timers are looked at this often */
#define CTL_NOREAD_FRAMES 4096 /* frames a never-reading client queues per write burst */

enum ctl_kind { CTL_READER, CTL_IDLE, CTL_DRIP, CTL_NOREAD, CTL_PILE, CTL_NKINDS };
enum ctl_call { CTL_STATUS, CTL_REPORT, CTL_BACKUPS, CTL_AUDIT, CTL_NCALLS };

static const char *ctl_kind_names[CTL_NKINDS] = { "readers", "idle", "drip", "noread", "pile" };
static const char *ctl_call_names[CTL_NCALLS] = { "status", "report", "backups", "audit" };

struct ctl_conn {
	enum ctl_kind kind;
	int fd;          /* -1: not connected */
	int64_t opened;  /* us */
	int64_t due;     /* us: the next timed action; 0: none */
	int64_t sent_at; /* us: the request in flight started */
	int64_t first_try;
	enum ctl_call call;
	size_t woff; /* bytes of the current frame written */
	uint8_t *rbuf;
	size_t rlen, rcap;
	long calls;
	int finished; /* no more connections */
	int answered; /* pile: its one call is answered */
	int refused;  /* the daemon answered UNAVAILABLE: reconnect later */
};

struct ctl_stats {
	struct load_conns conn; /* its lat: call latency (readers, pile) */
	long calls, ok, wrong, errors, refused;
	long timeout_replies, completed, closed_no_reply;
};

struct ctl_expect {
	const char *phase, *active_ca, *active_server, *staged_ca, *bundle_id;
	const char *backup0, *audit0;
	long long linked, active, acknowledged, backups, audit;
};

static const char *ctl_path;
static int ctl_epfd;
static int64_t ctl_start, ctl_end, ctl_min_end, ctl_pile_at;
static long ctl_max_calls, ctl_interval_us, ctl_drip_us = 2000000;
static struct ctl_stats ctl_stats[CTL_NKINDS];
static struct ctl_expect ctl_expect = {
	.linked = -1, .active = -1, .acknowledged = -1, .backups = -1, .audit = -1
};
static uint8_t *ctl_frames[CTL_NCALLS];
static size_t ctl_frame_len[CTL_NCALLS];
static uint8_t *ctl_burst; /* CTL_NOREAD_FRAMES status frames back to back */
static size_t ctl_burst_len;
static struct load_procs ctl_procs;

static void ctl_usage(void) __attribute__((noreturn));
static void ctl_frames_build(void);
static void ctl_expect_set(const char *);
static void ctl_open(struct ctl_conn *, int64_t);
static void ctl_drop(struct ctl_conn *, int64_t, int by_daemon);
static void ctl_send(struct ctl_conn *, int64_t);
static void ctl_readable(struct ctl_conn *, int64_t);
static int ctl_frame(struct ctl_conn *, const uint8_t *, size_t, int64_t);
static void ctl_reply(struct ctl_conn *, const Carotate__V1__Response *, int64_t);
static void ctl_noread_fill(struct ctl_conn *, int64_t);
static void ctl_timer(struct ctl_conn *, int64_t);
static int ctl_check(const Carotate__V1__Response *, enum ctl_call);
static int ctl_check_status(const Carotate__V1__StatusReply *);
static int ctl_check_report(const Carotate__V1__ReportReply *);
static int ctl_check_backups(const Carotate__V1__BackupsReply *);
static int ctl_check_audit(const Carotate__V1__AuditReply *);
static int ctl_str(const char *what, const char *want, const char *got);
static int ctl_num(const char *what, long long want, unsigned long long got);
static void ctl_report(void);

static void
ctl_usage(void)
{
	fprintf(stderr,
	    "usage: ctlload -s SOCKET [-t SECONDS] [--min SECONDS] [--readers N] [--calls N]\n"
	    "               [--interval MS]\n"
	    "               [--idle N] [--drip N] [--drip-interval MS] [--noread N]\n"
	    "               [--pile N] [--pile-at MS] [-e KEY=VALUE]... [-p [NAME=]PID]...\n");
	exit(2);
}

static void
ctl_frames_build(void)
{
	Carotate__V1__StatusRequest st = CAROTATE__V1__STATUS_REQUEST__INIT;
	Carotate__V1__ReportRequest rep = CAROTATE__V1__REPORT_REQUEST__INIT;
	Carotate__V1__ListBackupsRequest lb = CAROTATE__V1__LIST_BACKUPS_REQUEST__INIT;
	Carotate__V1__AuditRequest au = CAROTATE__V1__AUDIT_REQUEST__INIT;
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	size_t i;

	req.version = WIRE_VERSION;
	for (i = 0; i < CTL_NCALLS; i++) {
		req.call_case = i == CTL_STATUS    ? CAROTATE__V1__REQUEST__CALL_STATUS
		                : i == CTL_REPORT  ? CAROTATE__V1__REQUEST__CALL_REPORT
		                : i == CTL_BACKUPS ? CAROTATE__V1__REQUEST__CALL_LIST_BACKUPS
		                                   : CAROTATE__V1__REQUEST__CALL_AUDIT;
		req.status = &st;
		req.report = &rep;
		req.list_backups = &lb;
		req.audit = &au;
		ctl_frames[i] = wire_frame_pack(&req.base, WIRE_MAX_REQUEST, &ctl_frame_len[i]);
		if (ctl_frames[i] == NULL)
			exit(2);
	}
	ctl_burst_len = ctl_frame_len[CTL_STATUS] * CTL_NOREAD_FRAMES;
	if ((ctl_burst = malloc(ctl_burst_len)) == NULL)
		exit(2);
	for (i = 0; i < CTL_NOREAD_FRAMES; i++)
		memcpy(ctl_burst + i * ctl_frame_len[CTL_STATUS], ctl_frames[CTL_STATUS],
		    ctl_frame_len[CTL_STATUS]);
}

static void
ctl_expect_set(const char *kv)
{
	struct ctl_expect *e = &ctl_expect;
	const char *v = strchr(kv, '=');
	size_t klen;

	if (v == NULL)
		ctl_usage();
	klen = (size_t)(v++ - kv);
#define CTL_KEY(k) (klen == strlen(k) && strncmp(kv, k, klen) == 0)
	if (CTL_KEY("phase"))
		e->phase = v;
	else if (CTL_KEY("active_ca"))
		e->active_ca = v;
	else if (CTL_KEY("active_server"))
		e->active_server = v;
	else if (CTL_KEY("staged_ca"))
		e->staged_ca = v;
	else if (CTL_KEY("bundle_id"))
		e->bundle_id = v;
	else if (CTL_KEY("backup0"))
		e->backup0 = v;
	else if (CTL_KEY("audit0"))
		e->audit0 = v;
	else if (CTL_KEY("linked"))
		e->linked = atoll(v);
	else if (CTL_KEY("active"))
		e->active = atoll(v);
	else if (CTL_KEY("acknowledged"))
		e->acknowledged = atoll(v);
	else if (CTL_KEY("backups"))
		e->backups = atoll(v);
	else if (CTL_KEY("audit"))
		e->audit = atoll(v);
	else {
		fprintf(stderr, "ctlload: unknown -e key in %s\n", kv);
		exit(2);
	}
#undef CTL_KEY
}

/* Connects c now (or schedules a retry) and starts what its kind does. */
static void
ctl_open(struct ctl_conn *c, int64_t now)
{
	struct ctl_stats *s = &ctl_stats[c->kind];

	if (c->first_try == 0)
		c->first_try = now;
	if ((c->fd = load_conns_open(&s->conn, ctl_path, now, &c->due)) == -1)
		return;
	c->opened = now;
	c->woff = 0;
	c->rlen = 0;
	c->refused = 0;
	switch (c->kind) {
	case CTL_READER:
	case CTL_PILE:
		load_watch(ctl_epfd, c->fd, EPOLLIN | EPOLLRDHUP, c);
		ctl_send(c, now);
		break;
	case CTL_IDLE:
		load_watch(ctl_epfd, c->fd, EPOLLIN | EPOLLRDHUP, c);
		break;
	case CTL_DRIP:
		load_watch(ctl_epfd, c->fd, EPOLLIN | EPOLLRDHUP, c);
		c->due = now; /* the first byte goes at once */
		break;
	case CTL_NOREAD:
		/* Hang-ups are always reported; no EPOLLIN: its replies are never read. */
		load_watch(ctl_epfd, c->fd, EPOLLOUT, c);
		ctl_noread_fill(c, now);
		break;
	case CTL_NKINDS:
		break;
	}
}

/* Closes c; by_daemon: the daemon closed it first. Reconnects unless its part is over. */
static void
ctl_drop(struct ctl_conn *c, int64_t now, int by_daemon)
{
	struct ctl_stats *s = &ctl_stats[c->kind];

	if (c->fd == -1)
		return;
	load_conns_close(&s->conn, &c->fd, now - c->opened, by_daemon);
	if (c->kind == CTL_PILE) {
		if (!c->answered)
			s->closed_no_reply++;
		c->finished = 1;
		return;
	}
	if (c->kind == CTL_READER && ctl_max_calls > 0 && c->calls >= ctl_max_calls)
		c->finished = 1;
	else
		c->due = now + (by_daemon && !c->refused ? 0 : LOAD_ERROR_US);
}

/* Readers and the pile: the next request, written whole (it is a few bytes). */
static void
ctl_send(struct ctl_conn *c, int64_t now)
{
	ssize_t n;

	c->sent_at = now;
	n = write(c->fd, ctl_frames[c->call], ctl_frame_len[c->call]);
	if (n == -1 && errno == EPIPE) {
		/* Refused at once: the refusal waits unread. */
		ctl_readable(c, now);
		if (c->refused)
			return;
	}
	if (n != (ssize_t)ctl_frame_len[c->call]) {
		ctl_stats[c->kind].errors++;
		ctl_drop(c, now, 0);
	}
}

static void
ctl_noread_fill(struct ctl_conn *c, int64_t now)
{
	ssize_t n;

	do {
		n = write(c->fd, ctl_burst + c->woff, ctl_burst_len - c->woff);
		if (n > 0)
			c->woff = (c->woff + (size_t)n) % ctl_burst_len;
	} while (n > 0);
	if (n == -1 && errno != EAGAIN)
		ctl_drop(c, now, 1); /* EPIPE: the daemon closed it */
}

static void
ctl_readable(struct ctl_conn *c, int64_t now)
{
	uint32_t len;
	ssize_t n;

	for (;;) {
		if (c->rcap - c->rlen < 65536) {
			c->rcap = c->rcap ? c->rcap * 2 : 131072;
			if ((c->rbuf = realloc(c->rbuf, c->rcap)) == NULL)
				exit(2);
		}
		n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			ctl_drop(c, now, 1);
			return;
		}
		if (n == -1)
			return;
		c->rlen += (size_t)n;
		while (c->rlen >= WIRE_HEADER_LEN &&
		       c->rlen >= WIRE_HEADER_LEN + (len = wire_get_length(c->rbuf))) {
			if (ctl_frame(c, c->rbuf + WIRE_HEADER_LEN, len, now) == -1)
				return;
			c->rlen -= WIRE_HEADER_LEN + len;
			memmove(c->rbuf, c->rbuf + WIRE_HEADER_LEN + len, c->rlen);
		}
	}
}

/* One whole reply frame; -1 when c was closed meanwhile. */
static int
ctl_frame(struct ctl_conn *c, const uint8_t *body, size_t len, int64_t now)
{
	Carotate__V1__Response *resp;
	struct wire_budget budget;

	wire_budget_init(&budget, WIRE_REPLY_BUDGET);
	if (len > WIRE_MAX_REPLY || (resp = wire_response_unpack(body, len, &budget)) == NULL) {
		ctl_stats[c->kind].errors++;
		load_wrong(
		    "%s: a reply of %zu bytes that does not decode", ctl_kind_names[c->kind], len);
		ctl_drop(c, now, 0);
		return -1;
	}
	ctl_reply(c, resp, now);
	protobuf_c_message_free_unpacked(&resp->base, &budget.allocator);
	return c->fd == -1 ? -1 : 0;
}

static void
ctl_reply(struct ctl_conn *c, const Carotate__V1__Response *r, int64_t now)
{
	struct ctl_stats *s = &ctl_stats[c->kind];

	if (r->status == CAROTATE__V1__STATUS__UNAVAILABLE) {
		/* "too many connections": a clear refusal, which closes the connection. */
		s->refused++;
		c->answered = 1;
		c->refused = 1;
		return;
	}
	switch (c->kind) {
	case CTL_READER:
	case CTL_PILE:
		s->calls++;
		load_lat_add(&s->conn.lat, now - (c->kind == CTL_PILE ? c->first_try : c->sent_at));
		if (ctl_check(r, c->call) == 0)
			s->ok++;
		else
			s->wrong++;
		c->answered = 1;
		if (c->kind == CTL_PILE)
			return; /* stays connected, idle, until the daemon closes it */
		c->calls++;
		c->call = (c->call + 1) % CTL_NCALLS;
		if (ctl_max_calls > 0 && c->calls >= ctl_max_calls) {
			c->finished = 1;
			ctl_drop(c, now, 0);
		} else if (ctl_interval_us > 0)
			c->due = now + ctl_interval_us;
		else
			ctl_send(c, now);
		return;
	case CTL_DRIP:
		if (r->status == CAROTATE__V1__STATUS__INVALID_ARGUMENT &&
		    strstr(r->message, "not complete within") != NULL)
			s->timeout_replies++;
		else if (r->status == CAROTATE__V1__STATUS__OK)
			s->completed++;
		else
			load_wrong("drip: status %d: %s", r->status, r->message);
		return;
	default:
		load_wrong("%s: an unexpected reply, status %d: %s", ctl_kind_names[c->kind],
		    r->status, r->message);
		return;
	}
}

/* The timed action of c: connect, a paced call, the next byte of a drip. */
static void
ctl_timer(struct ctl_conn *c, int64_t now)
{
	size_t len = ctl_frame_len[CTL_STATUS];

	c->due = 0;
	if (c->fd == -1) {
		ctl_open(c, now);
		return;
	}
	if (c->kind == CTL_READER) {
		ctl_send(c, now);
		return;
	}
	if (c->kind != CTL_DRIP)
		return;
	if (write(c->fd, ctl_frames[CTL_STATUS] + c->woff, 1) != 1) {
		/* Closed by the daemon: its last reply may wait unread. */
		ctl_readable(c, now);
		ctl_drop(c, now, 1);
		return;
	}
	c->woff = (c->woff + 1) % len;
	c->due = now + ctl_drip_us;
}

static int
ctl_str(const char *what, const char *want, const char *got)
{
	if (want == NULL || strcmp(want, got != NULL ? got : "-") == 0)
		return 0;
	load_wrong("%s: want %s, got %s", what, want, got != NULL ? got : "(absent)");
	return -1;
}

static int
ctl_num(const char *what, long long want, unsigned long long got)
{
	if (want < 0 || (unsigned long long)want == got)
		return 0;
	load_wrong("%s: want %lld, got %llu", what, want, got);
	return -1;
}

/* 0 when r is the right answer to call for the state given with -e. */
static int
ctl_check(const Carotate__V1__Response *r, enum ctl_call call)
{
	static const Carotate__V1__Response__ResultCase want[CTL_NCALLS] = {
		CAROTATE__V1__RESPONSE__RESULT_STATUS_REPLY,
		CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY,
		CAROTATE__V1__RESPONSE__RESULT_LIST_BACKUPS_REPLY,
		CAROTATE__V1__RESPONSE__RESULT_AUDIT_REPLY,
	};

	if (r->status != CAROTATE__V1__STATUS__OK || r->result_case != want[call]) {
		load_wrong("%s: status %d (%s), result %d", ctl_call_names[call], r->status,
		    r->message, r->result_case);
		return -1;
	}
	switch (call) {
	case CTL_STATUS:
		return ctl_check_status(r->status_reply);
	case CTL_REPORT:
		return ctl_check_report(r->report_reply);
	case CTL_BACKUPS:
		return ctl_check_backups(r->list_backups_reply);
	default:
		return ctl_check_audit(r->audit_reply);
	}
}

static int
ctl_check_status(const Carotate__V1__StatusReply *s)
{
	const struct ctl_expect *e = &ctl_expect;
	const char *phase = s->phase == CAROTATE__V1__PHASE__PHASE_STAGED ? "staged" : "steady";
	const char *aca = s->active && s->active->ca ? s->active->ca->sha256 : NULL;
	const char *asrv = s->active && s->active->server ? s->active->server->sha256 : NULL;
	const char *sca = s->staged && s->staged->ca ? s->staged->ca->sha256 : NULL;

	return ctl_str("status.phase", e->phase, phase) |
	       ctl_str("status.active.ca", e->active_ca, aca) |
	       ctl_str("status.active.server", e->active_server, asrv) |
	       ctl_str("status.staged.ca", e->staged_ca, sca) |
	       ctl_str("status.bundle.id", e->bundle_id, s->bundle ? s->bundle->id : NULL) |
	       (s->active != NULL && s->active->n_problems > 0
	               ? (load_wrong(
	                      "status: the active set has problems: %s", s->active->problems[0]),
	                     -1)
	               : 0);
}

static int
ctl_check_report(const Carotate__V1__ReportReply *r)
{
	const struct ctl_expect *e = &ctl_expect;
	const char *sca = r->staged_ca[0] != '\0' ? r->staged_ca : NULL;

	return ctl_str("report.staged_ca", e->staged_ca, sca) |
	       ctl_str("report.bundle_id", e->bundle_id, r->bundle_id) |
	       ctl_num("report.linked", e->linked, r->linked) |
	       ctl_num("report.active", e->active, r->active) |
	       ctl_num("report.acknowledged", e->acknowledged, r->acknowledged);
}

static int
ctl_check_backups(const Carotate__V1__BackupsReply *b)
{
	const struct ctl_expect *e = &ctl_expect;

	return ctl_num("backups.total", e->backups, b->total) |
	       ctl_num("backups.listed", e->backups, b->n_backups) |
	       ctl_str("backups.0.id", e->backup0, b->n_backups > 0 ? b->backups[0]->id : NULL);
}

static int
ctl_check_audit(const Carotate__V1__AuditReply *a)
{
	const struct ctl_expect *e = &ctl_expect;

	return ctl_num("audit.total", e->audit, a->total) |
	       ctl_str("audit.0.hash", e->audit0, a->n_records > 0 ? a->records[0]->hash : NULL);
}

static void
ctl_report(void)
{
	double secs = (double)(load_now_us() - ctl_start) / 1e6;
	struct ctl_stats *s;
	int k;

	for (k = 0; k < CTL_NKINDS; k++) {
		s = &ctl_stats[k];
		if (s->conn.conns == 0)
			continue;
		load_conns_print_head("ctlload", ctl_kind_names[k], secs, &s->conn);
		printf(" calls=%ld ok=%ld wrong=%ld errors=%ld refused=%ld timeout_replies=%ld "
		       "completed=%ld closed_no_reply=%ld calls_per_s=%.0f",
		    s->calls, s->ok, s->wrong, s->errors, s->refused, s->timeout_replies,
		    s->completed, s->closed_no_reply, secs > 0 ? (double)s->calls / secs : 0);
		load_conns_print_tail(&s->conn);
	}
	load_procs_print("ctlload", &ctl_procs);
	load_wrong_print("ctlload");
}

/* Opens every client at its time, runs the loop until the end, reports. */
static void
ctl_run(struct ctl_conn *conns, size_t n)
{
	struct epoll_event ev[256];
	int64_t now, next_tick = 0, next_sample = 0;
	size_t i;
	int k, nev, busy;

	for (;;) {
		now = load_now_us();
		if (now >= ctl_end)
			break;
		if (now >= next_tick) {
			busy = 0;
			for (i = 0; i < n; i++) {
				/* With --calls, the run is over when the readers are done. */
				if (ctl_max_calls > 0 && ctl_stats[CTL_READER].conn.conns > 0)
					busy |= conns[i].kind == CTL_READER && !conns[i].finished;
				else
					busy |= !conns[i].finished;
				if (conns[i].due != 0 && conns[i].due <= now)
					ctl_timer(&conns[i], now);
			}
			if (!busy && now >= ctl_min_end)
				break;
			next_tick = now + CTL_TICK_MS * 1000;
		}
		if (now >= next_sample) {
			load_procs_sample(&ctl_procs);
			next_sample = now + 100000;
		}
		nev = epoll_wait(ctl_epfd, ev, 256, CTL_TICK_MS);
		now = load_now_us();
		for (k = 0; k < nev; k++) {
			struct ctl_conn *c = ev[k].data.ptr;

			if (c->fd == -1)
				continue;
			if (c->kind == CTL_NOREAD) {
				if (ev[k].events & (EPOLLHUP | EPOLLERR))
					ctl_drop(c, now, 1);
				else
					ctl_noread_fill(c, now);
			} else
				ctl_readable(c, now);
		}
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "readers", required_argument, NULL, 'R' },
		{ "calls", required_argument, NULL, 'C' },
		{ "interval", required_argument, NULL, 'I' },
		{ "idle", required_argument, NULL, 'L' },
		{ "drip", required_argument, NULL, 'D' },
		{ "drip-interval", required_argument, NULL, 'E' },
		{ "noread", required_argument, NULL, 'N' },
		{ "pile", required_argument, NULL, 'P' },
		{ "pile-at", required_argument, NULL, 'A' },
		{ "min", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	long want[CTL_NKINDS] = { 0 }, secs = 20, min_secs = 0, pile_at_ms = 0;
	struct ctl_conn *conns;
	size_t n = 0, i;
	int ch, k;

	while ((ch = getopt_long(argc, argv, "s:t:e:p:", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl_path = optarg;
			break;
		case 't':
			secs = atol(optarg);
			break;
		case 'e':
			ctl_expect_set(optarg);
			break;
		case 'p':
			if (load_procs_add(&ctl_procs, optarg) == -1)
				ctl_usage();
			break;
		case 'R':
			want[CTL_READER] = atol(optarg);
			break;
		case 'C':
			ctl_max_calls = atol(optarg);
			break;
		case 'I':
			ctl_interval_us = atol(optarg) * 1000;
			break;
		case 'L':
			want[CTL_IDLE] = atol(optarg);
			break;
		case 'D':
			want[CTL_DRIP] = atol(optarg);
			break;
		case 'E':
			ctl_drip_us = atol(optarg) * 1000;
			break;
		case 'N':
			want[CTL_NOREAD] = atol(optarg);
			break;
		case 'P':
			want[CTL_PILE] = atol(optarg);
			break;
		case 'A':
			pile_at_ms = atol(optarg);
			break;
		case 'M':
			min_secs = atol(optarg);
			break;
		default:
			ctl_usage();
		}
	}
	if (ctl_path == NULL || optind != argc || secs <= 0 || ctl_drip_us <= 0)
		ctl_usage();
	for (k = 0; k < CTL_NKINDS; k++) {
		if (want[k] < 0 || want[k] > 100000)
			ctl_usage();
		n += (size_t)want[k];
	}
	if (n == 0)
		ctl_usage();
	signal(SIGPIPE, SIG_IGN);
	load_rlimit(n);
	ctl_frames_build();
	if ((ctl_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (conns = calloc(n, sizeof(*conns))) == NULL) {
		perror("ctlload");
		return 2;
	}
	ctl_start = load_now_us();
	ctl_end = ctl_start + (int64_t)secs * 1000000;
	ctl_min_end = ctl_start + (int64_t)min_secs * 1000000;
	ctl_pile_at = ctl_start + (int64_t)pile_at_ms * 1000;
	load_procs_start(&ctl_procs);
	for (k = 0, i = 0; k < CTL_NKINDS; k++) {
		long j;

		ctl_stats[k].conn.conns = want[k];
		for (j = 0; j < want[k]; j++, i++) {
			conns[i].kind = (enum ctl_kind)k;
			conns[i].fd = -1;
			conns[i].call = (enum ctl_call)(j % CTL_NCALLS);
			/* The pile comes all at once, later; everyone else now. */
			conns[i].due = k == CTL_PILE ? ctl_pile_at : ctl_start;
		}
	}
	ctl_run(conns, n);
	load_procs_end(&ctl_procs);
	ctl_report();
	for (i = 0; i < n; i++) {
		if (conns[i].fd != -1)
			close(conns[i].fd);
		free(conns[i].rbuf);
	}
	for (k = 0; k < CTL_NKINDS; k++)
		load_conns_free(&ctl_stats[k].conn);
	for (k = 0; k < CTL_NCALLS; k++)
		free(ctl_frames[k]);
	free(ctl_burst);
	free(conns);
	close(ctl_epfd);
	return 0;
}
