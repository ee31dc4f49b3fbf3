/*
 * Writes the seed inputs of the fuzz targets with the daemon's own encoders:
 * control frames (wire_frame_pack of carotate.v1.Request) for every call,
 * the worker's AgentRequest frames, and the HTTP requests agents send
 * (as tests/agentsim/agentsim.c words them). Usage: mkseeds CORPUS_DIR;
 * it writes CORPUS_DIR/{control,internal,http}/<name>. `make fuzz-seeds`.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzzlib.h"
#include "internal.pb-c.h"
#include "log.h"
#include "pki.h"
#include "wire.h"
#include "worker.h"
#include "xmalloc.h"

#define MAX_SEED (256 * 1024)

struct seed {
	uint8_t buf[MAX_SEED];
	size_t len;
};

static const char *seeds_dir;

static void seed_start(struct seed *, uint8_t flags);
static void seed_frame(struct seed *, const ProtobufCMessage *);
static void seed_bytes(struct seed *, const void *, size_t);
static void seed_write(const char *target, const char *name, const struct seed *);
static void seed_control(uint8_t flags, const char *name, Carotate__V1__Request *);
static void seeds_control(void);
static void seeds_internal(void);
static void seeds_http(void);

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds CORPUS_DIR\n");
		return 2;
	}
	log_init(1, 0, "mkseeds");
	seeds_dir = argv[1];
	seeds_control();
	seeds_internal();
	seeds_http();
	return 0;
}

static void
seed_start(struct seed *s, uint8_t flags)
{
	s->buf[0] = flags;
	s->len = 1;
}

static void
seed_bytes(struct seed *s, const void *p, size_t len)
{
	if (s->len + len > sizeof(s->buf))
		fuzz_fail("seed too large");
	memcpy(s->buf + s->len, p, len);
	s->len += len;
}

static void
seed_frame(struct seed *s, const ProtobufCMessage *msg)
{
	uint8_t *frame;
	size_t len;

	if ((frame = wire_frame_pack(msg, WIRE_MAX_REQUEST, &len)) == NULL)
		fuzz_fail("frame too large");
	seed_bytes(s, frame, len);
	free(frame);
}

static void
seed_write(const char *target, const char *name, const struct seed *s)
{
	char dir[512], path[600];

	snprintf(dir, sizeof(dir), "%s/%s", seeds_dir, target);
	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		fuzz_fail("mkdir %s: %s", dir, strerror(errno));
	fuzz_write_file(fuzz_path(path, sizeof(path), dir, name), s->buf, s->len);
}

/* flags: bit 0 admin, bit 1 staged (fuzz_control.c). */
static void
seed_control(uint8_t flags, const char *name, Carotate__V1__Request *req)
{
	struct seed *s = xmalloc(sizeof(*s));

	req->version = WIRE_VERSION;
	seed_start(s, flags);
	seed_frame(s, &req->base);
	seed_write("control", name, s);
	free(s);
}

static void
seeds_control(void)
{
	Carotate__V1__Request req;
	Carotate__V1__StatusRequest st = CAROTATE__V1__STATUS_REQUEST__INIT;
	Carotate__V1__GenerateRequest gen = CAROTATE__V1__GENERATE_REQUEST__INIT;
	Carotate__V1__InstallRequest ins = CAROTATE__V1__INSTALL_REQUEST__INIT;
	Carotate__V1__ReportRequest rep = CAROTATE__V1__REPORT_REQUEST__INIT;
	Carotate__V1__RotateRequest rot = CAROTATE__V1__ROTATE_REQUEST__INIT;
	Carotate__V1__RestoreRequest res = CAROTATE__V1__RESTORE_REQUEST__INIT;
	Carotate__V1__ListBackupsRequest lb = CAROTATE__V1__LIST_BACKUPS_REQUEST__INIT;
	Carotate__V1__DiscardRequest dis = CAROTATE__V1__DISCARD_REQUEST__INIT;
	Carotate__V1__RetireRequest ret = CAROTATE__V1__RETIRE_REQUEST__INIT;
	Carotate__V1__AuditRequest aud = CAROTATE__V1__AUDIT_REQUEST__INIT;
	Carotate__V1__ExcludeRequest exc = CAROTATE__V1__EXCLUDE_REQUEST__INIT;
	Carotate__V1__IncludeRequest inc = CAROTATE__V1__INCLUDE_REQUEST__INIT;
	Carotate__V1__CheckRequest chk = CAROTATE__V1__CHECK_REQUEST__INIT;
	Carotate__V1__RenewRequest ren = CAROTATE__V1__RENEW_REQUEST__INIT;
	char *sans[] = { (char *)"DNS:proxy.test", (char *)"IP:127.0.0.1" };
	struct pki_profile p = { PKI_KEY_EC_P256, 3650, 397, "seed", sans, 2, time(NULL) };
	struct pki_material m;
	struct seed *s;
	char err[256];

#define CALL(c, field, msg)                                                                        \
	do {                                                                                       \
		carotate__v1__request__init(&req);                                                 \
		req.call_case = CAROTATE__V1__REQUEST__CALL_##c;                                   \
		req.field = &msg;                                                                  \
	} while (0)
	CALL(STATUS, status, st);
	seed_control(0, "status-reader", &req);
	seed_control(3, "status-admin-staged", &req);
	CALL(GENERATE, generate, gen);
	seed_control(1, "generate-default", &req);
	gen.key_type = (char *)"rsa-3072";
	gen.ca_days = 1000;
	gen.server_days = 90;
	gen.name = (char *)"Example Corp";
	gen.n_sans = 2;
	gen.sans = sans;
	seed_control(1, "generate-full", &req);
	seed_control(0, "generate-reader", &req);
	if (pki_generate(&p, &m, err, sizeof(err)) != 0)
		fuzz_fail("pki_generate: %s", err);
	ins.ca = (ProtobufCBinaryData){ strlen(m.ca), (uint8_t *)m.ca };
	ins.cert = (ProtobufCBinaryData){ strlen(m.cert), (uint8_t *)m.cert };
	ins.key = (ProtobufCBinaryData){ strlen(m.key), (uint8_t *)m.key };
	CALL(INSTALL, install, ins);
	seed_control(1, "install", &req);
	/*
	 * renew --cert/--key [--chain]: a leaf of a CA that is not the scratch state's,
	 * so validation runs to its refusal; the mutations reach the other fields.
	 */
	ren.cert = ins.cert;
	ren.key = ins.key;
	CALL(RENEW, renew, ren);
	seed_control(1, "renew-custom", &req);
	ren.chain = ins.ca;
	seed_control(1, "renew-custom-chain", &req);
	ren.dry_run = 1;
	seed_control(1, "renew-custom-chain-dry-run", &req);
	pki_material_clear(&m);
	ren = (Carotate__V1__RenewRequest)CAROTATE__V1__RENEW_REQUEST__INIT;
	CALL(RENEW, renew, ren);
	seed_control(1, "renew", &req);
	seed_control(0, "renew-reader", &req);
	seed_control(3, "renew-staged", &req);
	ren.dry_run = 1;
	ren.server_days = 90;
	seed_control(1, "renew-dry-run", &req);
	ren.dry_run = 0;
	ren.if_expires_within = 30 * 86400;
	seed_control(1, "renew-if-expires-within", &req);
	ren.server_days = 0;
	ren.if_expires_within = UINT64_MAX;
	seed_control(1, "renew-if-expires-within-max", &req);
	CALL(CHECK, check, chk);
	seed_control(0, "check", &req);
	seed_control(3, "check-admin-staged", &req);
	CALL(REPORT, report, rep);
	seed_control(0, "report", &req);
	rep.pending = 1;
	rep.limit = 2;
	rep.offset = 1;
	rep.active_within = 86400;
	seed_control(2, "report-pending-staged", &req);
	CALL(ROTATE, rotate, rot);
	seed_control(3, "rotate", &req);
	rot.dry_run = 1;
	seed_control(3, "rotate-dry-run", &req);
	rot.dry_run = 0;
	rot.force = 1;
	rot.reason = (char *)"agents decommissioned";
	seed_control(3, "rotate-force", &req);
	CALL(RESTORE, restore, res);
	res.latest = 1;
	res.dry_run = 1;
	seed_control(1, "restore-latest-dry-run", &req);
	res.dry_run = 0;
	seed_control(1, "restore-latest", &req);
	res.latest = 0;
	res.backup = (char *)"certs-20260101-000000";
	seed_control(1, "restore-named", &req);
	CALL(LIST_BACKUPS, list_backups, lb);
	seed_control(0, "backups", &req);
	lb.limit = 1;
	lb.offset = 1;
	seed_control(0, "backups-page", &req);
	CALL(DISCARD, discard, dis);
	seed_control(3, "discard", &req);
	CALL(RETIRE, retire, ret);
	seed_control(1, "retire", &req);
	ret.dry_run = 1;
	seed_control(1, "retire-dry-run", &req);
	CALL(AUDIT, audit, aud);
	aud.verify = 1;
	aud.limit = 5;
	seed_control(0, "audit-verify", &req);
	CALL(EXCLUDE, exclude, exc);
	exc.agent = (char *)"web-1";
	exc.reason = (char *)"decommissioned";
	seed_control(1, "exclude", &req);
	CALL(INCLUDE, include, inc);
	inc.agent = (char *)"web-2";
	seed_control(1, "include", &req);

	/* Several requests on one connection, then a bad version and an oversized header. */
	s = xmalloc(sizeof(*s));
	seed_start(s, 1);
	CALL(STATUS, status, st);
	seed_frame(s, &req.base);
	CALL(EXCLUDE, exclude, exc);
	seed_frame(s, &req.base);
	CALL(AUDIT, audit, aud);
	seed_frame(s, &req.base);
	CALL(INCLUDE, include, inc);
	seed_frame(s, &req.base);
	CALL(REPORT, report, rep);
	seed_frame(s, &req.base);
	seed_write("control", "pipelined", s);
	seed_start(s, 0);
	CALL(STATUS, status, st);
	req.version = 2;
	seed_frame(s, &req.base);
	seed_write("control", "bad-version", s);
	seed_start(s, 0);
	seed_bytes(s, "\x00\x04\x00\x01", 4);
	seed_write("control", "oversized", s);
	free(s);
#undef CALL
}

/* byte 0: where the stream is cut in two reads (fuzz_internal.c). */
static void
seeds_internal(void)
{
	Carotate__Internal__AgentRequest r = CAROTATE__INTERNAL__AGENT_REQUEST__INIT;
	static const char token[] =
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	static const char bundle[] =
	    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
	struct seed *s = xmalloc(sizeof(*s));

	seed_start(s, 255);
	r.seq = 1;
	r.call = CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK;
	r.agent_id = (char *)"web-1";
	r.credential = (ProtobufCBinaryData){ 33, (uint8_t *)"fuzz-linking-key-0123456789abcdef" };
	seed_frame(s, &r.base);
	seed_write("internal", "link", s);
	s->buf[0] = 100;
	r.seq = 2;
	r.call = CAROTATE__INTERNAL__AGENT_CALL__AGENT_CHECKIN;
	r.credential = (ProtobufCBinaryData){ 64, (uint8_t *)token };
	r.if_none_match = (char *)bundle;
	seed_frame(s, &r.base);
	r.seq = WORKER_MAX_SEQ;
	r.if_none_match = (char *)"";
	seed_frame(s, &r.base);
	seed_write("internal", "batch", s);
	seed_start(s, 128);
	r.seq = 0;
	seed_frame(s, &r.base);
	seed_write("internal", "seq-zero", s);
	seed_start(s, 255);
	seed_bytes(s, "\x00\x00\x40\x01", 4);
	seed_write("internal", "oversized", s);
	free(s);
}

/* byte 0 (fuzz_http.c): bit 0 unused (was: the canary socket), bits 1-3 the parent's answer. */
static void
seeds_http(void)
{
	static const struct {
		const char *name;
		uint8_t flags;
		const char *text;
	} reqs[] = {
		{ "link", 0,
		    "POST /carotate/v1/link HTTP/1.1\r\nHost: proxy.test\r\n"
		    "User-Agent: carotate-agentsim/1\r\n"
		    "Authorization: Bearer fuzz-linking-key-0123456789abcdef\r\n"
		    "X-Agent-Id: web-1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" },
		{ "checkin", 0,
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: proxy.test\r\n"
		    "User-Agent: carotate-agentsim/1\r\n"
		    "Authorization: Bearer "
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"
		    "X-Agent-Id: web-1\r\n"
		    "If-None-Match: "
		    "\"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\"\r\n"
		    "Connection: close\r\n\r\n" },
		{ "checkin-canary-304", 1 | (1 << 1),
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: proxy.test\r\n"
		    "Authorization: Bearer "
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"
		    "X-Agent-Id: db.example-3\r\n\r\n" },
		{ "keepalive-two", 2 << 1,
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: p\r\n"
		    "Authorization: Bearer "
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"
		    "X-Agent-Id: a\r\n\r\n"
		    "POST /carotate/v1/link HTTP/1.1\r\nHost: p\r\n"
		    "Authorization: Bearer k\r\nX-Agent-Id: b\r\nContent-Length: 4\r\n\r\nbody" },
		{ "wrong-method", 0, "PUT /carotate/v1/link HTTP/1.1\r\nHost: p\r\n\r\n" },
		{ "query", 0, "GET /carotate/v1/ca-bundle?x=1 HTTP/1.0\r\n\r\n" },
		{ "not-found", 0, "GET / HTTP/1.0\r\n\r\n" },
		{ "dup-header", 0,
		    "POST /carotate/v1/link HTTP/1.1\r\nX-Agent-Id: a\r\nX-Agent-Id: b\r\n"
		    "Authorization: Bearer k\r\n\r\n" },
		{ "chunked", 3 << 1,
		    "POST /carotate/v1/link HTTP/1.1\r\nAuthorization: Bearer k\r\n"
		    "X-Agent-Id: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n" },
		{ "error-503", 4 << 1,
		    "POST /carotate/v1/link HTTP/1.1\r\nAuthorization: Bearer k\r\n"
		    "X-Agent-Id: a\r\n\r\n" },
	};
	struct seed *s = xmalloc(sizeof(*s));
	size_t i;

	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		seed_start(s, reqs[i].flags);
		seed_bytes(s, reqs[i].text, strlen(reqs[i].text));
		seed_write("http", reqs[i].name, s);
	}
	free(s);
}
