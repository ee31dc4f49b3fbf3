/*
 * Mutated control requests against the daemon's real connection path: a
 * listening control socket in a temporary directory, an event loop, and one
 * connection per case. Golden frames (one per call, realistic fields) are
 * made by the real encoder; every single-bit flip, every byte flip, every
 * truncation and a few bad length headers of each are sent as a reader and
 * as an admin. Each case must end in well-formed replies (an error, or the
 * answer to whatever valid call the mutation formed) and a close: never a
 * crash, a hang, or a reply the frames do not call for.
 *
 * Nothing a mutation forms may spawn a process or change the active set:
 * this program refuses fork() (the daemon's every job and reload starts with
 * one), the SSL directory holds an active set and nothing staged (rotate and
 * discard are refused by phase), and no backup exists (restore finds none).
 * The test checks the directory's files and the active set's bytes at the end.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "acl.h"
#include "agents.h"
#include "carotated.h"
#include "config.h"
#include "control.h"
#include "fixture.h"
#include "ledger.h"
#include "log.h"
#include "pki.h"
#include "wire.h"
#include "xmalloc.h"

/* Seconds one case may take before it counts as a hang (times $CAROTATE_TIME_SCALE). */
#define MUTATE_CASE_DEADLINE 20

/*
 * Every admin case appends to the ledger's audit log, synced: tens of thousands of
 * fsyncs take a minute on a disk, so a memory file system is preferred when there is one.
 */
static struct fixture fx;
static char logpath[300];
static int logfd = -1, errfd = -1; /* the daemon's log file; the test's own stderr */
static struct carotated cd;
static char active_sha[PKI_SHA256_HEX];
static char *active_bytes; /* ca.crt, server.crt and server.key, concatenated */
static size_t active_len;
static char *ssl_listing; /* the SSL directory's names and sizes */

/* The role the next connection gets, at most: root would otherwise always be admin. */
static enum acl_role role_cap = ACL_ADMIN;
static unsigned long forks_refused, ncases;

enum acl_role __real_acl_role(const struct acl *, const struct acl_peer *);
enum acl_role __wrap_acl_role(const struct acl *, const struct acl_peer *);

enum acl_role
__wrap_acl_role(const struct acl *acl, const struct acl_peer *peer)
{
	enum acl_role r = __real_acl_role(acl, peer);

	return r < role_cap ? r : role_cap;
}

/* No case may start a process: every job, check and reload of the daemon forks first. */
pid_t
fork(void)
{
	forks_refused++;
	errno = EAGAIN;
	return -1;
}

/* ---- files ---- */

/* Appends the whole file at path to *buf. */
static void
slurp(const char *path, char **buf, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char chunk[4096];
	size_t n;

	assert_non_null(fp);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		*buf = xreallocarray(*buf, *len + n + 1, 1);
		memcpy(*buf + *len, chunk, n);
		*len += n;
		(*buf)[*len] = '\0';
	}
	assert_int_equal(ferror(fp), 0);
	fclose(fp);
}

static void
read_active(char **buf, size_t *len)
{
	static const char *names[] = { "ca.crt", "server.crt", "server.key" };
	char path[400];
	size_t i;

	*buf = NULL;
	*len = 0;
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", fx.ssl, names[i]);
		slurp(path, buf, len);
	}
}

/* "name size\n" for each entry of dir, sorted: what a stray write or mkdir would change. */
static char *
list_dir(const char *dir)
{
	struct dirent **ents;
	struct stat st;
	char path[600], *out = xstrdup(""), *tmp;
	int i, n = scandir(dir, &ents, NULL, alphasort);

	assert_true(n >= 0);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		assert_int_equal(lstat(path, &st), 0);
		if (asprintf(&tmp, "%s%s %lld\n", out, ents[i]->d_name,
		        S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size) == -1)
			fail_msg("out of memory");
		free(out);
		out = tmp;
		free(ents[i]);
	}
	free(ents);
	return out;
}

/* ---- golden frames ---- */

struct golden {
	const char *name;
	uint8_t *frame;
	size_t len;
	Carotate__V1__Request__CallCase call;
	size_t opaque[4][2]; /* [from, to) of the frame: inside a bytes field's contents */
	size_t nopaque;
};

static struct golden goldens[16];
static size_t ngoldens;
/*
 * Flip only every stride-th byte of opaque contents ($CAROTATE_MUTATE_STRIDE, 1: all).
 * Those bytes are copied, never parsed, by the decoder and dispatch: under valgrind a
 * sample of them keeps the run short while every other byte is still flipped.
 */
static size_t stride = 1;
static unsigned long nskipped;

static void
golden_add(const char *name, Carotate__V1__Request *req)
{
	struct golden *g = &goldens[ngoldens++];

	req->version = WIRE_VERSION;
	g->name = name;
	g->call = req->call_case;
	g->frame = wire_frame_pack(&req->base, WIRE_MAX_REQUEST, &g->len);
	assert_non_null(g->frame);
}

/* Marks the contents of a bytes field (its first and last 16 bytes excepted) as opaque. */
static void
golden_opaque(struct golden *g, const uint8_t *data, size_t len)
{
	const uint8_t *at = memmem(g->frame, g->len, data, len);

	assert_non_null(at);
	assert_true(len > 32 && g->nopaque < 4);
	g->opaque[g->nopaque][0] = (size_t)(at - g->frame) + 16;
	g->opaque[g->nopaque][1] = (size_t)(at - g->frame) + len - 16;
	g->nopaque++;
}

/* Whether the flips of byte i are left out of this run (see stride). */
static int
golden_skip(const struct golden *g, size_t i)
{
	size_t k;

	for (k = 0; k < g->nopaque; k++)
		if (i >= g->opaque[k][0] && i < g->opaque[k][1])
			return (i - g->opaque[k][0]) % stride != 0;
	return 0;
}

/*
 * One request per call, fields as carotatectl would fill them. The install
 * carries a real CA and server certificate with somebody else's key: even a
 * mutation that reached validation would be refused.
 */
static void
goldens_make(void)
{
	Carotate__V1__Request req;
	Carotate__V1__StatusRequest st = CAROTATE__V1__STATUS_REQUEST__INIT;
	Carotate__V1__GenerateRequest ge = CAROTATE__V1__GENERATE_REQUEST__INIT;
	Carotate__V1__InstallRequest in = CAROTATE__V1__INSTALL_REQUEST__INIT;
	Carotate__V1__ReportRequest re = CAROTATE__V1__REPORT_REQUEST__INIT;
	Carotate__V1__RotateRequest ro = CAROTATE__V1__ROTATE_REQUEST__INIT;
	Carotate__V1__RestoreRequest rs = CAROTATE__V1__RESTORE_REQUEST__INIT;
	Carotate__V1__ListBackupsRequest lb = CAROTATE__V1__LIST_BACKUPS_REQUEST__INIT;
	Carotate__V1__DiscardRequest di = CAROTATE__V1__DISCARD_REQUEST__INIT;
	Carotate__V1__RetireRequest rt = CAROTATE__V1__RETIRE_REQUEST__INIT;
	Carotate__V1__AuditRequest au = CAROTATE__V1__AUDIT_REQUEST__INIT;
	Carotate__V1__ExcludeRequest ex = CAROTATE__V1__EXCLUDE_REQUEST__INIT;
	Carotate__V1__IncludeRequest ic = CAROTATE__V1__INCLUDE_REQUEST__INIT;
	Carotate__V1__CheckRequest ck = CAROTATE__V1__CHECK_REQUEST__INIT;
	Carotate__V1__RenewRequest rn = CAROTATE__V1__RENEW_REQUEST__INIT;
	Carotate__V1__RenewRequest rc = CAROTATE__V1__RENEW_REQUEST__INIT;
	char *sans[] = { (char *)"DNS:proxy.example.net", (char *)"IP:192.0.2.10" };
	char *psans[] = { (char *)"DNS:proxy.example.net" };
	struct pki_profile p = { PKI_KEY_EC_P256, 3650, 397, "example", psans, 1, time(NULL) };
	struct pki_material m, other;
	char err[256];

	if (pki_generate(&p, &m, err, sizeof(err)) != 0 ||
	    pki_generate(&p, &other, err, sizeof(err)) != 0)
		fail_msg("pki_generate: %s", err);

#define GOLDEN(field, body, kase)                                                                  \
	do {                                                                                       \
		carotate__v1__request__init(&req);                                                 \
		req.call_case = CAROTATE__V1__REQUEST__CALL_##kase;                                \
		req.field = &(body);                                                               \
		golden_add(#field, &req);                                                          \
	} while (0)

	GOLDEN(status, st, STATUS);
	GOLDEN(check, ck, CHECK);
	/* Early, while the audit log is short: verify reads all of it every time. */
	au.limit = 10;
	au.offset = 2;
	au.verify = 1;
	GOLDEN(audit, au, AUDIT);
	ge.key_type = (char *)"ec-p384";
	ge.ca_days = 3650;
	ge.server_days = 397;
	ge.name = (char *)"example";
	ge.sans = sans;
	ge.n_sans = 2;
	GOLDEN(generate, ge, GENERATE);
	re.active_within = 86400;
	re.pending = 1;
	re.limit = 50;
	re.offset = 10;
	GOLDEN(report, re, REPORT);
	ro.force = 1;
	ro.reason = (char *)"key compromise, CHG-4711";
	ro.dry_run = 1;
	GOLDEN(rotate, ro, ROTATE);
	rs.backup = (char *)"certs-20260101-120000";
	rs.dry_run = 1;
	GOLDEN(restore, rs, RESTORE);
	lb.limit = 20;
	lb.offset = 5;
	GOLDEN(list_backups, lb, LIST_BACKUPS);
	GOLDEN(discard, di, DISCARD);
	rt.dry_run = 1;
	GOLDEN(retire, rt, RETIRE);
	ex.agent = (char *)"web-01.example";
	ex.reason = (char *)"decommissioned, TICKET-12";
	GOLDEN(exclude, ex, EXCLUDE);
	ic.agent = (char *)"web-01.example";
	GOLDEN(include, ic, INCLUDE);
	/* renew of a generated set, as a timer calls it: its flips form every other field value. */
	rn.server_days = 90;
	rn.if_expires_within = 30 * 86400;
	rn.dry_run = 1;
	GOLDEN(renew, rn, RENEW);
	/* renew of a custom set: a leaf of another CA, somebody else's key (refused as install). */
	rc.cert.data = (uint8_t *)m.cert;
	rc.cert.len = strlen(m.cert);
	rc.key.data = (uint8_t *)other.key;
	rc.key.len = strlen(other.key);
	rc.chain.data = (uint8_t *)m.ca;
	rc.chain.len = strlen(m.ca);
	rc.dry_run = 1;
	GOLDEN(renew, rc, RENEW);
	golden_opaque(&goldens[ngoldens - 1], rc.cert.data, rc.cert.len);
	golden_opaque(&goldens[ngoldens - 1], rc.key.data, rc.key.len);
	golden_opaque(&goldens[ngoldens - 1], rc.chain.data, rc.chain.len);
	/* Last, so the calls above run against a short audit log: install is most of the cases. */
	in.ca.data = (uint8_t *)m.ca;
	in.ca.len = strlen(m.ca);
	in.cert.data = (uint8_t *)m.cert;
	in.cert.len = strlen(m.cert);
	in.key.data = (uint8_t *)other.key;
	in.key.len = strlen(other.key);
	GOLDEN(install, in, INSTALL);
	golden_opaque(&goldens[ngoldens - 1], in.ca.data, in.ca.len);
	golden_opaque(&goldens[ngoldens - 1], in.cert.data, in.cert.len);
	golden_opaque(&goldens[ngoldens - 1], in.key.data, in.key.len);
#undef GOLDEN
	pki_material_clear(&m);
	pki_material_clear(&other);
}

/* ---- one exchange over a real connection ---- */

struct exchange {
	struct event_base *base;
	uint8_t *in; /* everything the daemon sent back */
	size_t len;
	int eof;
	int hung;
};

static void
exchange_read(evutil_socket_t fd, short events, void *arg)
{
	struct exchange *ex = arg;
	uint8_t buf[16384];
	ssize_t n;

	if (events & EV_TIMEOUT) {
		ex->hung = 1;
		event_base_loopbreak(ex->base);
		return;
	}
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		ex->in = xreallocarray(ex->in, ex->len + (size_t)n, 1);
		memcpy(ex->in + ex->len, buf, (size_t)n);
		ex->len += (size_t)n;
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		/* A reset after the replies is a close too. */
		ex->eof = 1;
		event_base_loopbreak(ex->base);
	}
}

static unsigned
time_scale(void)
{
	const char *s = getenv("CAROTATE_TIME_SCALE");
	int v = s != NULL ? atoi(s) : 1;

	return v > 0 ? (unsigned)v : 1;
}

/*
 * Connects as role, sends bytes, half-closes, and runs the daemon's loop
 * until it closes the connection. ex->in holds what it answered.
 */
static void
exchange_run(const uint8_t *bytes, size_t n, enum acl_role role, struct exchange *ex)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval deadline = { (time_t)MUTATE_CASE_DEADLINE * time_scale(), 0 };
	struct event *ev;
	int fd;

	memset(ex, 0, sizeof(*ex));
	ex->base = cd.base;
	role_cap = role;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fx.sockpath);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	/* Frames are small; the socket buffer takes a whole one. */
	if (n > 0)
		assert_int_equal(send(fd, bytes, n, MSG_NOSIGNAL), (ssize_t)n);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	ev = event_new(cd.base, fd, EV_READ | EV_PERSIST, exchange_read, ex);
	assert_non_null(ev);
	event_add(ev, &deadline);
	/* Tens of thousands of audit lines and refusals: the daemon logs to a file meanwhile. */
	dup2(logfd, STDERR_FILENO);
	event_base_dispatch(cd.base);
	dup2(errfd, STDERR_FILENO);
	event_free(ev);
	close(fd);
	ncases++;
}

/* ---- what the frames call for ---- */

static int
needs_admin(Carotate__V1__Request__CallCase c)
{
	switch (c) {
	case CAROTATE__V1__REQUEST__CALL_STATUS:
	case CAROTATE__V1__REQUEST__CALL_REPORT:
	case CAROTATE__V1__REQUEST__CALL_LIST_BACKUPS:
	case CAROTATE__V1__REQUEST__CALL_AUDIT:
	case CAROTATE__V1__REQUEST__CALL_CHECK:
		return 0;
	default:
		return 1;
	}
}

/* The next reply in ex, which must be a whole frame that decodes; NULL when there is none. */
static Carotate__V1__Response *
next_reply(const struct exchange *ex, size_t *off, struct wire_budget *budget)
{
	Carotate__V1__Response *r;
	uint32_t len;

	if (*off == ex->len)
		return NULL;
	assert_true(ex->len - *off >= WIRE_HEADER_LEN);
	len = wire_get_length(ex->in + *off);
	assert_true(len <= WIRE_MAX_REPLY);
	assert_true(ex->len - *off - WIRE_HEADER_LEN >= len);
	wire_budget_init(budget, WIRE_REPLY_BUDGET);
	r = wire_response_unpack(ex->in + *off + WIRE_HEADER_LEN, len, budget);
	assert_non_null(r);
	*off += WIRE_HEADER_LEN + len;
	/* An error says why; a success answers with its call's result. */
	assert_true(r->status <= CAROTATE__V1__STATUS__UNAVAILABLE);
	if (r->status != CAROTATE__V1__STATUS__OK)
		assert_true(r->message != NULL && r->message[0] != '\0');
	return r;
}

/* Asserts the next reply is an error with status; 1 when it was there. */
static void
expect_error(const struct exchange *ex, size_t *off, Carotate__V1__Status status, const char *what)
{
	struct wire_budget b;
	Carotate__V1__Response *r = next_reply(ex, off, &b);

	if (r == NULL)
		fail_msg("%s: no reply", what);
	if (r->status != status)
		fail_msg("%s: status %d (%s), expected %d", what, r->status, r->message, status);
	protobuf_c_message_free_unpacked(&r->base, &b.allocator);
}

/*
 * Walks the bytes sent as the daemon must: frames in order, each answered,
 * until one is bad (an error, then the close) or the bytes end.
 */
static void
expect_replies(const uint8_t *bytes, size_t n, enum acl_role role, const struct exchange *ex)
{
	size_t off = 0, in = 0;
	uint32_t len;

	if (ex->hung)
		fail_msg("no close within %d s", MUTATE_CASE_DEADLINE);
	assert_true(ex->eof);
	while (n - off >= WIRE_HEADER_LEN) {
		struct wire_budget b;
		Carotate__V1__Request *req;
		Carotate__V1__Response *r;

		len = wire_get_length(bytes + off);
		if (len > WIRE_MAX_REQUEST) {
			expect_error(ex, &in, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "oversized");
			break;
		}
		if (n - off - WIRE_HEADER_LEN < len)
			break; /* cut short: the close answers it */
		wire_budget_init(&b, wire_request_budget(len));
		req = wire_request_unpack(bytes + off + WIRE_HEADER_LEN, len, &b);
		if (req == NULL || req->version != WIRE_VERSION ||
		    !wire_request_canonical(req, len)) {
			if (req != NULL)
				protobuf_c_message_free_unpacked(&req->base, &b.allocator);
			expect_error(
			    ex, &in, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "undecodable");
			break;
		}
		if (req->call_case == CAROTATE__V1__REQUEST__CALL__NOT_SET)
			expect_error(ex, &in, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "no call");
		else if (role < ACL_ADMIN && needs_admin(req->call_case))
			expect_error(ex, &in, CAROTATE__V1__STATUS__PERMISSION_DENIED, "reader");
		else {
			struct wire_budget rb;

			if ((r = next_reply(ex, &in, &rb)) == NULL)
				fail_msg("call %d: no reply", req->call_case);
			if (r->status == CAROTATE__V1__STATUS__OK &&
			    (int)r->result_case != (int)req->call_case)
				fail_msg("call %d answered with result %d", req->call_case,
				    r->result_case);
			protobuf_c_message_free_unpacked(&r->base, &rb.allocator);
		}
		protobuf_c_message_free_unpacked(&req->base, &b.allocator);
		off += WIRE_HEADER_LEN + len;
	}
	if (in != ex->len)
		fail_msg("%zu bytes of unexpected replies", ex->len - in);
}

static void
run_case(const uint8_t *bytes, size_t n, enum acl_role role)
{
	struct exchange ex;

	exchange_run(bytes, n, role, &ex);
	expect_replies(bytes, n, role, &ex);
	free(ex.in);
}

/* The golden status as role: the daemon still answers, and describes the same active set. */
static void
check_status(enum acl_role role)
{
	struct exchange ex;
	struct wire_budget b;
	Carotate__V1__Response *r;
	size_t off = 0;

	exchange_run(goldens[0].frame, goldens[0].len, role, &ex);
	assert_true(ex.eof && !ex.hung);
	r = next_reply(&ex, &off, &b);
	assert_non_null(r);
	assert_int_equal(off, ex.len);
	assert_int_equal(r->status, CAROTATE__V1__STATUS__OK);
	assert_int_equal(r->result_case, CAROTATE__V1__RESPONSE__RESULT_STATUS_REPLY);
	assert_string_equal(r->status_reply->ssl_dir, fx.ssl);
	assert_int_equal(r->status_reply->phase, CAROTATE__V1__PHASE__PHASE_STEADY);
	assert_non_null(r->status_reply->active);
	assert_non_null(r->status_reply->active->server);
	assert_string_equal(r->status_reply->active->server->sha256, active_sha);
	assert_int_equal(r->status_reply->active->n_problems, 0);
	protobuf_c_message_free_unpacked(&r->base, &b.allocator);
	free(ex.in);
}

/* Every mutation of one golden frame, as role. */
static void
mutate_golden(const struct golden *g, enum acl_role role)
{
	uint8_t *m = xmalloc(g->len);
	uint32_t lens[] = { 0, UINT32_MAX, WIRE_MAX_REQUEST, WIRE_MAX_REQUEST + 1,
		(uint32_t)(g->len - WIRE_HEADER_LEN - 1),
		(uint32_t)(g->len - WIRE_HEADER_LEN + 1) };
	size_t i, bit;

	for (i = 0; i < g->len; i++) {
		run_case(g->frame, i, role); /* cut after i bytes */
		if (golden_skip(g, i)) {
			nskipped += 9;
			continue;
		}
		for (bit = 0; bit < 8; bit++) {
			memcpy(m, g->frame, g->len);
			m[i] ^= (uint8_t)(1u << bit);
			run_case(m, g->len, role);
		}
		memcpy(m, g->frame, g->len);
		m[i] ^= 0xff;
		run_case(m, g->len, role);
	}
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memcpy(m, g->frame, g->len);
		wire_put_length(m, lens[i]);
		run_case(m, g->len, role);
	}
	free(m);
	check_status(role);
}

/* ---- setup ---- */

static int
group_setup(void **state)
{
	char err[512];
	int fd;

	log_init(1, 0, "test_mutate");
	if (fixture_init(
	        &fx, access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", "mutate", &cd.conf) == -1)
		return -1;
	snprintf(logpath, sizeof(logpath), "%s/daemon.log", fx.base);
	if ((logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) == -1 ||
	    (errfd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) == -1)
		return -1;
	fixture_write_set(fx.ssl, "mutate-test", 1, NULL, active_sha);
	read_active(&active_bytes, &active_len);
	ssl_listing = list_dir(fx.ssl);
	if ((cd.base = event_base_new()) == NULL)
		return -1;
	if ((cd.ledger = ledger_open(cd.conf->state_dir, err, sizeof(err))) == NULL ||
	    agents_init(&cd, err, sizeof(err)) == -1) {
		print_error("ledger_open, agents_init: %s\n", err);
		return -1;
	}
	if ((fd = control_bind(cd.conf, 0, err, sizeof(err))) == -1) {
		print_error("control_bind: %s\n", err);
		return -1;
	}
	cd.control = control_start(&cd, fd);
	goldens_make();
	if (getenv("CAROTATE_MUTATE_STRIDE") != NULL &&
	    (stride = strtoul(getenv("CAROTATE_MUTATE_STRIDE"), NULL, 10)) == 0)
		stride = 1;
	return 0;
}

static int
group_teardown(void **state)
{
	size_t i;

	control_free(cd.control);
	agents_stop(&cd);
	ledger_close(cd.ledger);
	event_base_free(cd.base);
	config_free(cd.conf);
	for (i = 0; i < ngoldens; i++)
		free(goldens[i].frame);
	free(active_bytes);
	free(ssl_listing);
	close(logfd);
	close(errfd);
	return fixture_remove(&fx);
}

/* ---- tests ---- */

/* The golden frames themselves, for both roles: the oracle agrees with the daemon. */
static void
test_goldens(void **state)
{
	size_t i;

	assert_int_equal(ngoldens, 15);
	for (i = 0; i < ngoldens; i++) {
		run_case(goldens[i].frame, goldens[i].len, ACL_READER);
		run_case(goldens[i].frame, goldens[i].len, ACL_ADMIN);
	}
	check_status(ACL_READER);
}

/* Every mutation of every golden frame, as a reader and as an admin. */
static void
test_mutations(void **state)
{
	size_t i;

	for (i = 0; i < ngoldens; i++) {
		mutate_golden(&goldens[i], ACL_READER);
		mutate_golden(&goldens[i], ACL_ADMIN);
	}
}

/* Nothing spawned, nothing staged, the active set byte for byte as it was. */
static void
test_ssl_dir_unchanged(void **state)
{
	char *now_bytes, *now_listing;
	size_t now_len;

	read_active(&now_bytes, &now_len);
	assert_int_equal(now_len, active_len);
	assert_memory_equal(now_bytes, active_bytes, active_len);
	now_listing = list_dir(fx.ssl);
	assert_string_equal(now_listing, ssl_listing);
	free(now_bytes);
	free(now_listing);
	assert_null(cd.busy);
	check_status(ACL_ADMIN);
	printf("mutate: %lu cases over %zu golden frames x 2 roles; %lu process starts refused",
	    ncases, ngoldens, forks_refused);
	if (nskipped > 0)
		printf("; %lu flips inside certificate and key contents left out (stride %zu)",
		    nskipped, stride);
	printf("\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_goldens),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_ssl_dir_unchanged),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
