/*
 * Unit tests for the printers of carotatectl (client/output.c and each verb's ctl_<group>.c): JSON
 * keys of carotatectl(1), the human block, time formatting, the StageReply of generate, install and
 * discard, the ReportReply of report and wait, the AgentReply of exclude and include, and wait's
 * progress lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "output.h"

#define NOW 1798254245LL /* 2026-12-26T03:04:05Z */
#define DAY 86400
#define CA_SHA                                                                                     \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:"  \
	"45:67:89"
#define CA_HEX       "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define SERVER_HEX   "1111111111111111111111111111111111111111111111111111111111111111"
#define STAGED_HEX   "2222222222222222222222222222222222222222222222222222222222222222"
#define RETAINED_HEX "3333333333333333333333333333333333333333333333333333333333333333"
#define BUNDLE_HEX   "4444444444444444444444444444444444444444444444444444444444444444"

/* A hand-built reply: every message lives in this struct, nothing is allocated. */
struct fixture {
	Carotate__V1__StatusReply reply;
	Carotate__V1__CertSet active, staged;
	Carotate__V1__CertInfo active_ca, active_server, staged_ca, staged_server;
	Carotate__V1__Bundle bundle;
	char *sans[2];
	char *problems[2];
	char *cas[3];
	Carotate__V1__BundleCa member[3];
	Carotate__V1__BundleCa *members[3];
};

/* A StageReply around the status fixture's staged set and bundle. */
struct stage_fixture {
	struct fixture f;
	Carotate__V1__StageReply reply;
	Carotate__V1__ReloadResult reload;
	char *warnings[2];
};

static FILE *capture_fp(void);
static char *capture(int);
static char *capture_json(int);
static void fixture_cert(
    Carotate__V1__CertInfo *, const char *, const char *, const char *, int64_t);
static void fixture_init(struct fixture *, int, int, int);
static void fixture_members(struct fixture *, int);
static void stage_init(struct stage_fixture *, int);
/* A ReportReply: 999 of 1000 active agents acknowledged, one pending. */
struct report_fixture {
	Carotate__V1__ReportReply reply;
	Carotate__V1__PendingAgent agent[3];
	Carotate__V1__PendingAgent *agents[3];
	Carotate__V1__BundleHolding holding[3];
	Carotate__V1__BundleHolding *holdings[3];
};

static void report_init(struct report_fixture *, int);
static void report_steady(struct report_fixture *);
static json_int_t jint(json_t *, const char *);
static json_t *jget(json_t *, const char *);
static json_t *parse(const char *);
static const char *jstr(json_t *, const char *);
static void assert_cert_keys(json_t *, const char *, const char *, const char *);

/*
 * Output captured in memory: capture_fp() opens the stream a printer writes to, capture()
 * checks what the printer returned (0: no write error), closes the stream and returns the
 * text (the caller frees it); capture_json() also wants the newline that ends an object.
 */
static char *capture_buf;
static size_t capture_len;
static FILE *capture_file;

static FILE *
capture_fp(void)
{
	capture_buf = NULL;
	capture_len = 0;
	capture_file = open_memstream(&capture_buf, &capture_len);
	assert_non_null(capture_file);
	return capture_file;
}

static char *
capture(int ret)
{
	assert_int_equal(ret, 0);
	assert_int_equal(fclose(capture_file), 0);
	capture_file = NULL;
	return capture_buf;
}

static char *
capture_json(int ret)
{
	char *buf = capture(ret);

	assert_true(capture_len > 0);
	assert_int_equal(buf[capture_len - 1], '\n');
	return buf;
}

static void
fixture_cert(Carotate__V1__CertInfo *c, const char *subject, const char *issuer, const char *sha,
    int64_t not_after)
{
	carotate__v1__cert_info__init(c);
	c->subject = (char *)subject;
	c->issuer = (char *)issuer;
	c->sha256 = (char *)sha;
	c->not_before = NOW - DAY;
	c->not_after = not_after;
	c->key_type = (char *)"ec-p256";
	c->serial = (char *)"0A:1B:2C";
}

/* A daemon two hours up; the sets and the bundle only when asked for. */
static void
fixture_init(struct fixture *f, int active, int staged, int bundle)
{
	memset(f, 0, sizeof(*f));
	carotate__v1__status_reply__init(&f->reply);
	f->reply.version = (char *)"0.1.0";
	f->reply.pid = 1234;
	f->reply.uptime_seconds = 3 * 3600 + 12 * 60;
	f->reply.ssl_dir = (char *)"/usr/local/etc/nginx/ssl";
	f->reply.now = NOW;
	f->sans[0] = (char *)"DNS:proxy.example.com";
	f->sans[1] = (char *)"IP:192.0.2.10";
	if (active) {
		carotate__v1__cert_set__init(&f->active);
		fixture_cert(&f->active_ca, "CN=Proxy CA 2026-11-26", "CN=Proxy CA 2026-11-26",
		    CA_SHA, NOW + 3650LL * DAY);
		fixture_cert(&f->active_server, "CN=proxy.example.com", "CN=Proxy CA 2026-11-26",
		    SERVER_HEX, NOW + 397LL * DAY + 3600);
		f->active_server.n_sans = 2;
		f->active_server.sans = f->sans;
		f->active.ca = &f->active_ca;
		f->active.server = &f->active_server;
		f->active.server_days_left = 397;
		f->active.key_present = 1;
		f->reply.active = &f->active;
	}
	if (staged) {
		carotate__v1__cert_set__init(&f->staged);
		fixture_cert(&f->staged_ca, "CN=Proxy CA 2026-12-26", "CN=Proxy CA 2026-12-26",
		    STAGED_HEX, NOW + 3650LL * DAY);
		f->staged.ca = &f->staged_ca;
		f->staged.server = NULL;
		f->problems[0] = (char *)"server.crt is missing";
		f->problems[1] = (char *)"server.key is missing";
		f->staged.n_problems = 2;
		f->staged.problems = f->problems;
		f->reply.staged = &f->staged;
		f->reply.phase = CAROTATE__V1__PHASE__PHASE_STAGED;
	}
	if (bundle) {
		carotate__v1__bundle__init(&f->bundle);
		f->bundle.id = (char *)BUNDLE_HEX;
		f->cas[0] = (char *)CA_SHA;
		f->cas[1] = (char *)STAGED_HEX;
		f->cas[2] = (char *)RETAINED_HEX;
		f->bundle.n_cas = 3;
		f->bundle.cas = f->cas;
		f->reply.bundle = &f->bundle;
	}
}

/* The bundle's members as a current daemon sends them; published or not. */
static void
fixture_members(struct fixture *f, int published)
{
	const char *sha[3] = { CA_SHA, STAGED_HEX, RETAINED_HEX };
	const char *subject[3] = { "CN=Proxy CA 2026-11-26", "CN=Proxy CA 2026-12-26",
		"CN=Proxy CA 2025-06-01" };
	const char *role[3] = { "active", "staged", "retained" };
	size_t i;

	for (i = 0; i < 3; i++) {
		carotate__v1__bundle_ca__init(&f->member[i]);
		f->member[i].sha256 = (char *)sha[i];
		f->member[i].subject = (char *)subject[i];
		f->member[i].role = (char *)role[i];
		f->member[i].not_after = NOW + 3650LL * DAY;
		f->members[i] = &f->member[i];
	}
	f->member[2].retained_until = NOW + 30LL * DAY;
	f->bundle.n_members = 3;
	f->bundle.members = f->members;
	f->bundle.published = published;
}

/* generate's reply: a generated set staged a minute ago, an unpublished bundle, a reload. */
static void
stage_init(struct stage_fixture *s, int reload_ok)
{
	fixture_init(&s->f, 1, 1, 1);
	fixture_members(&s->f, 0);
	s->f.staged.origin = (char *)"generated";
	s->f.staged.created = NOW - 60;
	carotate__v1__stage_reply__init(&s->reply);
	carotate__v1__reload_result__init(&s->reload);
	s->reload.ran = 1;
	s->reload.ok = reload_ok;
	s->reload.exit_status = reload_ok ? 0 : 1;
	s->reload.output = (char *)(reload_ok ? ""
	                                      : "nginx: [emerg] cannot load certificate\n"
	                                        "nginx: configuration file test failed\n");
	s->warnings[0] = (char *)"the server certificate expires in 20 days";
	s->warnings[1] = (char *)"subject has \x1b[31m in it";
	s->reply.staged = &s->f.staged;
	s->reply.bundle = &s->f.bundle;
	s->reply.reload = &s->reload;
	s->reply.n_warnings = 2;
	s->reply.warnings = s->warnings;
}

/*
 * Staged (the CA's fingerprint as colon hex, to check it is normalized), 1002 linked, 1000
 * active, 999 acknowledged: 99 %; n_pending pending agents in the page.
 */
static void
report_init(struct report_fixture *f, int n_pending)
{
	const char *ids[3] = { "agent-17", "b", "web.example-3" };
	int64_t seen[3] = { NOW - 3 * 3600, NOW - 59, 0 };
	int i;

	memset(f, 0, sizeof(*f));
	carotate__v1__report_reply__init(&f->reply);
	f->reply.now = NOW;
	f->reply.active_within = 7 * DAY;
	f->reply.staged_ca = (char *)CA_SHA;
	f->reply.bundle_id = (char *)BUNDLE_HEX;
	f->reply.gate = (char *)"acknowledged";
	f->reply.linked = 1002;
	f->reply.active = 1000;
	f->reply.acknowledged = 999;
	f->reply.verified = 10;
	f->reply.pending = 1;
	f->reply.inactive_lacking = 1;
	f->reply.excluded = 1;
	f->reply.percent = 99;
	f->reply.percent_verified = 1;
	f->reply.canary_confirmed = 1;
	for (i = 0; i < 3; i++) {
		carotate__v1__pending_agent__init(&f->agent[i]);
		f->agent[i].id = (char *)ids[i];
		f->agent[i].last_seen = seen[i];
		f->agent[i].delivered = i == 0;
		f->agents[i] = &f->agent[i];
	}
	f->reply.n_pending_agents = (size_t)n_pending;
	f->reply.pending_agents = n_pending > 0 ? f->agents : NULL;
}

/* Nothing staged: 900 of 1000 active agents hold the current bundle. */
static void
report_steady(struct report_fixture *f)
{
	const char *ids[3] = { BUNDLE_HEX, SERVER_HEX, "" };
	uint64_t agents[3] = { 900, 99, 1 };
	int i;

	report_init(f, 0);
	f->reply.staged_ca = (char *)"";
	f->reply.acknowledged = f->reply.verified = f->reply.pending = 0;
	f->reply.inactive_lacking = 0;
	f->reply.percent = f->reply.percent_verified = 0;
	f->reply.current = 900;
	for (i = 0; i < 3; i++) {
		carotate__v1__bundle_holding__init(&f->holding[i]);
		f->holding[i].bundle_id = (char *)ids[i];
		f->holding[i].agents = agents[i];
		f->holding[i].current = i == 0;
		f->holdings[i] = &f->holding[i];
	}
	f->reply.n_holdings = 3;
	f->reply.holdings = f->holdings;
}

/* An integer key. */
static json_int_t
jint(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		fail_msg("key %s is not an integer", key);
	return json_integer_value(v);
}

/* A key that must be there, whatever its value. */
static json_t *
jget(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		fail_msg("key %s is missing", key);
	return v;
}

/* Exactly one JSON object: json_loads refuses anything after it. */
static json_t *
parse(const char *text)
{
	json_error_t error;
	json_t *j = json_loads(text, 0, &error);

	if (j == NULL)
		fail_msg("invalid JSON (%s at line %d): %s", error.text, error.line, text);
	assert_true(json_is_object(j));
	return j;
}

static const char *
jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		fail_msg("key %s is not a string", key);
	return json_string_value(v);
}

static void
assert_cert_keys(json_t *cert, const char *subject, const char *sha, const char *not_after)
{
	assert_true(json_is_object(cert));
	assert_string_equal(jstr(cert, "subject"), subject);
	assert_string_equal(jstr(cert, "sha256"), sha);
	assert_string_equal(jstr(cert, "not_after"), not_after);
	assert_string_equal(jstr(cert, "not_before"), "2026-12-25T03:04:05Z");
	assert_string_equal(jstr(cert, "serial"), "0a1b2c");
	assert_string_equal(jstr(cert, "key_type"), "ec-p256");
	assert_non_null(json_object_get(cert, "issuer"));
	assert_true(json_is_array(json_object_get(cert, "sans")));
}

static void
test_rfc3339_known_values(void **state)
{
	char buf[OUTPUT_RFC3339_LEN];

	assert_int_equal(output_rfc3339(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	assert_int_equal(output_rfc3339(1234567890, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2009-02-13T23:31:30Z");
	assert_int_equal(output_rfc3339(NOW, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-12-26T03:04:05Z");
	assert_int_equal(output_rfc3339(951782400, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2000-02-29T00:00:00Z");
	assert_int_equal(output_rfc3339(-1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1969-12-31T23:59:59Z");
	assert_int_equal(output_rfc3339(253402300799LL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "9999-12-31T23:59:59Z");
}

static void
test_rfc3339_out_of_range(void **state)
{
	char buf[OUTPUT_RFC3339_LEN], small[10];

	assert_int_equal(output_rfc3339(253402300800LL, buf, sizeof(buf)), -1);
	assert_int_equal(output_rfc3339(-62167219201LL, buf, sizeof(buf)), -1);
	assert_int_equal(output_rfc3339(INT64_MAX, buf, sizeof(buf)), -1);
	assert_int_equal(output_rfc3339(INT64_MIN, buf, sizeof(buf)), -1);
	assert_int_equal(output_rfc3339(0, small, sizeof(small)), -1);
}

static void
test_duration(void **state)
{
	char buf[32];

	output_duration(0, buf, sizeof(buf));
	assert_string_equal(buf, "0s");
	output_duration(59, buf, sizeof(buf));
	assert_string_equal(buf, "59s");
	output_duration(60 + 5, buf, sizeof(buf));
	assert_string_equal(buf, "1m 5s");
	output_duration(3 * 3600 + 12 * 60 + 59, buf, sizeof(buf));
	assert_string_equal(buf, "3h 12m");
	output_duration(2 * DAY + 3 * 3600 + 1, buf, sizeof(buf));
	assert_string_equal(buf, "2d 3h");
	output_duration(UINT64_MAX, buf, sizeof(buf));
	assert_non_null(strchr(buf, 'd'));
}

static void
test_json_full(void **state)
{
	struct fixture f;
	json_t *j, *active, *staged, *bundle, *cas;
	char *text;

	fixture_init(&f, 1, 1, 1);
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	j = parse(text);
	assert_string_equal(jstr(j, "phase"), "staged");
	assert_string_equal(jstr(j, "version"), "0.1.0");
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), 1234);
	assert_int_equal(json_integer_value(json_object_get(j, "uptime_seconds")), 11520);
	assert_string_equal(jstr(j, "ssl_dir"), "/usr/local/etc/nginx/ssl");
	assert_string_equal(jstr(j, "now"), "2026-12-26T03:04:05Z");

	active = json_object_get(j, "active");
	assert_cert_keys(json_object_get(active, "ca"), "CN=Proxy CA 2026-11-26", CA_HEX,
	    "2036-12-23T03:04:05Z");
	assert_cert_keys(json_object_get(active, "server"), "CN=proxy.example.com", SERVER_HEX,
	    "2028-01-27T04:04:05Z");
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(json_object_get(active, "server"), "sans"), 1)),
	    "IP:192.0.2.10");
	assert_int_equal(json_integer_value(json_object_get(active, "server_days_left")), 397);
	assert_true(json_is_true(json_object_get(active, "key_present")));
	assert_int_equal(json_array_size(json_object_get(active, "problems")), 0);

	staged = json_object_get(j, "staged");
	assert_cert_keys(json_object_get(staged, "ca"), "CN=Proxy CA 2026-12-26", STAGED_HEX,
	    "2036-12-23T03:04:05Z");
	assert_true(json_is_null(json_object_get(staged, "server")));
	assert_true(json_is_false(json_object_get(staged, "key_present")));
	assert_int_equal(json_array_size(json_object_get(staged, "problems")), 2);

	bundle = json_object_get(j, "bundle");
	assert_string_equal(jstr(bundle, "id"), BUNDLE_HEX);
	cas = json_object_get(bundle, "cas");
	assert_int_equal(json_array_size(cas), 3);
	assert_string_equal(json_string_value(json_array_get(cas, 0)), CA_HEX);
	assert_string_equal(json_string_value(json_array_get(cas, 2)), RETAINED_HEX);
	json_decref(j);
	free(text);
}

/* No active set, nothing staged, no bundle: the keys stay, as JSON null. */
static void
test_json_absent(void **state)
{
	struct fixture f;
	json_t *j;
	char *text;

	fixture_init(&f, 0, 0, 0);
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	j = parse(text);
	assert_string_equal(jstr(j, "phase"), "steady");
	assert_true(json_is_null(json_object_get(j, "active")));
	assert_true(json_is_null(json_object_get(j, "staged")));
	assert_true(json_is_null(json_object_get(j, "bundle")));
	json_decref(j);
	free(text);
}

/* Two-space indent, keys in the order automation reads them, one trailing newline. */
static void
test_json_layout(void **state)
{
	struct fixture f;
	char *text;

	fixture_init(&f, 0, 0, 0);
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	assert_non_null(strstr(text, "{\n  \"version\": \"0.1.0\",\n  \"pid\": 1234,"));
	assert_true(strstr(text, "\"phase\"") < strstr(text, "\"active\""));
	assert_true(strstr(text, "\"active\"") < strstr(text, "\"staged\""));
	assert_true(strstr(text, "\"staged\"") < strstr(text, "\"bundle\""));
	assert_null(strstr(text, "}\n\n"));
	free(text);
}

/* A quote, a control byte and invalid UTF-8 in a subject: still valid JSON. */
static void
test_json_escaping(void **state)
{
	struct fixture f;
	json_t *j, *active;
	char *text;

	fixture_init(&f, 1, 0, 0);
	f.active_ca.subject = (char *)"CN=evil\" \x01\x1b[2J\\";
	f.active_server.subject = (char *)"CN=bad \xff\xfe utf8";
	f.active_server.issuer = (char *)"CN=caf\xc3\xa9";
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	j = parse(text);
	active = json_object_get(j, "active");
	assert_string_equal(
	    jstr(json_object_get(active, "ca"), "subject"), "CN=evil\" \x01\x1b[2J\\");
	assert_string_equal(jstr(json_object_get(active, "server"), "subject"), "CN=bad ?? utf8");
	assert_string_equal(jstr(json_object_get(active, "server"), "issuer"), "CN=caf\xc3\xa9");
	assert_null(strchr(text, '\x01'));
	assert_null(strchr(text, '\x1b'));
	json_decref(j);
	free(text);
}

static void
test_error_json(void **state)
{
	char *buf = capture_json(
	    output_error_json(capture_fp(), "unavailable", "too many \"connections\""));
	json_t *j, *e;

	j = parse(buf);
	e = json_object_get(j, "error");
	assert_true(json_is_object(e));
	assert_string_equal(jstr(e, "status"), "unavailable");
	assert_string_equal(jstr(e, "message"), "too many \"connections\"");
	json_decref(j);
	free(buf);
}

static void
test_human_full(void **state)
{
	struct fixture f;
	char *text;

	fixture_init(&f, 1, 1, 1);
	text = capture(ctl_status_human(capture_fp(), &f.reply));
	assert_non_null(strstr(text, "carotated 0.1.0 (pid 1234), up 3h 12m\n"));
	assert_non_null(strstr(text, "phase:       staged\n"));
	assert_non_null(strstr(text, "ssl dir:     /usr/local/etc/nginx/ssl\n"));
	assert_non_null(strstr(text, "active set:\n  CA:        CN=Proxy CA 2026-11-26\n"));
	assert_non_null(strstr(text, "  server:    CN=proxy.example.com\n"));
	assert_non_null(strstr(text, "SANs DNS:proxy.example.com, IP:192.0.2.10\n"));
	assert_non_null(strstr(text, "sha256 " CA_HEX "\n"));
	assert_non_null(strstr(text, "expires 2028-01-27T04:04:05Z (397 days left)\n"));
	assert_non_null(strstr(text, "expires 2036-12-23T03:04:05Z (3650 days left)\n"));
	assert_non_null(strstr(text, "ec-p256 key, serial 0a1b2c\n"));
	assert_non_null(strstr(text, "  key:       present\n"));
	assert_non_null(strstr(text, "staged set:\n"));
	assert_non_null(strstr(text, "  server:    missing\n"));
	assert_non_null(strstr(text, "  key:       MISSING\n"));
	assert_non_null(strstr(text, "  problems:  server.crt is missing\n"
	                             "             server.key is missing\n"));
	assert_non_null(strstr(text, "bundle:      " BUNDLE_HEX " (3 CAs)\n"));
	assert_non_null(strstr(text, CA_HEX " active\n"));
	assert_non_null(strstr(text, STAGED_HEX " staged\n"));
	assert_non_null(strstr(text, RETAINED_HEX " retained\n"));
	assert_null(strstr(text, "issued by"));
	free(text);
}

static void
test_human_absent(void **state)
{
	struct fixture f;
	char *text;

	fixture_init(&f, 0, 0, 0);
	text = capture(ctl_status_human(capture_fp(), &f.reply));
	assert_non_null(strstr(text, "phase:       steady\n"));
	assert_non_null(
	    strstr(text, "active set:  none (no active set in /usr/local/etc/nginx/ssl)\n"));
	assert_non_null(strstr(text, "staged set:  none\n"));
	assert_non_null(strstr(text, "bundle:      none\n"));
	free(text);
}

static void
test_human_expired(void **state)
{
	struct fixture f;
	char *text;

	fixture_init(&f, 1, 0, 1);
	f.active_server.not_after = NOW - 3 * DAY - 60;
	f.active.server_days_left = -3;
	f.active_ca.not_after = NOW - 1;
	f.bundle.n_cas = 1;
	text = capture(ctl_status_human(capture_fp(), &f.reply));
	assert_non_null(strstr(text, "expired 2026-12-23T03:03:05Z (EXPIRED 3 days ago)\n"));
	assert_non_null(strstr(text, "(EXPIRED less than a day ago)\n"));
	assert_non_null(strstr(text, " (1 CA)\n"));
	free(text);
}

/* Subjects and problems come from operators' files: they must not reach the terminal raw. */
static void
test_human_escapes_controls(void **state)
{
	struct fixture f;
	char *text;

	fixture_init(&f, 1, 0, 0);
	f.active_ca.subject = (char *)"CN=a\x1b[2Jb\\,c";
	f.active_server.issuer = (char *)"CN=other \xc2\x9b issuer";
	text = capture(ctl_status_human(capture_fp(), &f.reply));
	assert_null(strchr(text, '\x1b'));
	assert_non_null(strstr(text, "CN=a\\x1b[2Jb\\,c\n"));
	assert_non_null(strstr(text, "issued by CN=other \\xc2\\x9b issuer\n"));
	free(text);
}

/* origin and created of each set; members and published of the bundle; null when unknown. */
static void
test_json_status_origin_members(void **state)
{
	struct fixture f;
	json_t *j, *active, *staged, *bundle, *members, *m;
	char *text;

	fixture_init(&f, 1, 1, 1);
	fixture_members(&f, 1);
	f.active.origin = (char *)"custom";
	f.active.created = NOW - 2 * DAY;
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	j = parse(text);
	active = json_object_get(j, "active");
	staged = json_object_get(j, "staged");
	assert_string_equal(jstr(active, "origin"), "custom");
	assert_string_equal(jstr(active, "created"), "2026-12-24T03:04:05Z");
	assert_true(json_is_null(json_object_get(staged, "origin")));
	assert_true(json_is_null(json_object_get(staged, "created")));
	bundle = json_object_get(j, "bundle");
	assert_string_equal(jstr(bundle, "id"), BUNDLE_HEX);
	assert_int_equal(json_array_size(json_object_get(bundle, "cas")), 3);
	assert_true(json_is_true(json_object_get(bundle, "published")));
	members = json_object_get(bundle, "members");
	assert_int_equal(json_array_size(members), 3);
	m = json_array_get(members, 0);
	assert_string_equal(jstr(m, "sha256"), CA_HEX);
	assert_string_equal(jstr(m, "subject"), "CN=Proxy CA 2026-11-26");
	assert_string_equal(jstr(m, "role"), "active");
	assert_string_equal(jstr(m, "not_after"), "2036-12-23T03:04:05Z");
	assert_true(json_is_null(json_object_get(m, "retained_until")));
	m = json_array_get(members, 2);
	assert_string_equal(jstr(m, "role"), "retained");
	assert_string_equal(jstr(m, "retained_until"), "2027-01-25T03:04:05Z");
	json_decref(j);
	free(text);
}

/* A bundle with no members (an older daemon) still has the keys: an empty list, false. */
static void
test_json_bundle_without_members(void **state)
{
	struct fixture f;
	json_t *j, *bundle;
	char *text;

	fixture_init(&f, 1, 0, 1);
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	j = parse(text);
	bundle = json_object_get(j, "bundle");
	assert_true(json_is_array(json_object_get(bundle, "members")));
	assert_int_equal(json_array_size(json_object_get(bundle, "members")), 0);
	assert_true(json_is_false(json_object_get(bundle, "published")));
	json_decref(j);
	free(text);
}

/* Both agent workers' pids; one being restarted shows as null / "restarting". */
static void
test_status_worker_pids(void **state)
{
	struct fixture f;
	json_t *j;
	char *text;

	fixture_init(&f, 1, 0, 0);
	f.reply.worker_pid = 2001;
	f.reply.canary_worker_pid = 2002;
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	j = parse(text);
	assert_int_equal(json_integer_value(json_object_get(j, "worker_pid")), 2001);
	assert_int_equal(json_integer_value(json_object_get(j, "canary_worker_pid")), 2002);
	json_decref(j);
	free(text);
	text = capture(ctl_status_human(capture_fp(), &f.reply));
	assert_non_null(strstr(text, "carotated 0.1.0 (pid 1234), up 3h 12m\n"
	                             "workers:     agent pid 2001, canary pid 2002\n"));
	free(text);

	f.reply.canary_worker_pid = 0;
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	j = parse(text);
	assert_int_equal(json_integer_value(json_object_get(j, "worker_pid")), 2001);
	assert_true(json_is_null(json_object_get(j, "canary_worker_pid")));
	json_decref(j);
	free(text);
	text = capture(ctl_status_human(capture_fp(), &f.reply));
	assert_non_null(strstr(text, "workers:     agent pid 2001, canary restarting\n"));
	free(text);
}

static void
test_human_status_origin_members(void **state)
{
	struct fixture f;
	char *text;

	fixture_init(&f, 1, 1, 1);
	fixture_members(&f, 1);
	f.active.origin = (char *)"custom";
	f.active.created = NOW - 2 * DAY;
	text = capture(ctl_status_human(capture_fp(), &f.reply));
	assert_non_null(strstr(text, "  key:       present\n"
	                             "  origin:    custom\n"
	                             "  created:   2026-12-24T03:04:05Z\n"));
	assert_non_null(strstr(text, "bundle:      " BUNDLE_HEX " (3 CAs)\n"
	                             "  active:    CN=Proxy CA 2026-11-26\n"
	                             "             sha256 " CA_HEX "\n"
	                             "  staged:    CN=Proxy CA 2026-12-26\n"
	                             "             sha256 " STAGED_HEX "\n"
	                             "  retained:  CN=Proxy CA 2025-06-01\n"
	                             "             sha256 " RETAINED_HEX "\n"
	                             "             retained until 2027-01-25T03:04:05Z\n"));
	assert_null(strstr(text, "not yet published"));
	/* The staged set has neither: one origin line and one created line in all. */
	assert_null(strstr(strstr(text, "origin:") + 1, "origin:"));
	assert_null(strstr(strstr(text, "created:") + 1, "created:"));
	free(text);
}

static void
test_human_bundle_unpublished(void **state)
{
	struct fixture f;
	char *text;

	fixture_init(&f, 1, 1, 1);
	fixture_members(&f, 0);
	f.member[1].role = (char *)"st\x1b[2Jaged";
	f.member[0].subject = (char *)"CN=a\x1b[2Jb";
	text = capture(ctl_status_human(capture_fp(), &f.reply));
	assert_non_null(strstr(text, " (3 CAs)\n"
	                             "             (not yet published to ca-bundle.pem)\n"
	                             "  active:    CN=a\\x1b[2Jb\n"));
	assert_non_null(strstr(text, "  unknown:   CN=Proxy CA 2026-12-26\n"));
	assert_null(strchr(text, '\x1b'));
	free(text);
}

static void
test_json_stage_generate(void **state)
{
	struct stage_fixture s;
	json_t *j, *staged, *bundle, *reload, *warnings;
	char *text;

	stage_init(&s, 0);
	text = capture(ctl_stage_json(capture_fp(), &s.reply));
	j = parse(text);
	staged = json_object_get(j, "staged");
	assert_cert_keys(json_object_get(staged, "ca"), "CN=Proxy CA 2026-12-26", STAGED_HEX,
	    "2036-12-23T03:04:05Z");
	assert_string_equal(jstr(staged, "origin"), "generated");
	assert_string_equal(jstr(staged, "created"), "2026-12-26T03:03:05Z");
	bundle = json_object_get(j, "bundle");
	assert_string_equal(jstr(bundle, "id"), BUNDLE_HEX);
	assert_int_equal(json_array_size(json_object_get(bundle, "cas")), 3);
	assert_int_equal(json_array_size(json_object_get(bundle, "members")), 3);
	assert_true(json_is_false(json_object_get(bundle, "published")));
	reload = json_object_get(j, "reload");
	assert_true(json_is_true(json_object_get(reload, "ran")));
	assert_true(json_is_false(json_object_get(reload, "ok")));
	assert_int_equal(json_integer_value(json_object_get(reload, "exit_status")), 1);
	assert_non_null(strstr(jstr(reload, "output"), "configuration file test failed"));
	warnings = json_object_get(j, "warnings");
	assert_int_equal(json_array_size(warnings), 2);
	assert_string_equal(json_string_value(json_array_get(warnings, 0)),
	    "the server certificate expires in 20 days");
	assert_true(json_is_null(json_object_get(j, "kept_as")));
	assert_true(strstr(text, "\"staged\"") < strstr(text, "\"bundle\""));
	assert_true(strstr(text, "\"reload\"") < strstr(text, "\"warnings\""));
	assert_null(strchr(text, '\x1b'));
	json_decref(j);
	free(text);
}

/* The staged set exactly as status prints it; warnings are not on stdout. */
static void
test_human_stage_generate(void **state)
{
	struct stage_fixture s;
	char *text;

	stage_init(&s, 0);
	text = capture(ctl_stage_human(capture_fp(), &s.reply, NOW));
	assert_true(strncmp(text,
	                "staged: new set (generated)\nstaged set:\n"
	                "  CA:        CN=Proxy CA 2026-12-26\n",
	                strlen("staged: new set (generated)\nstaged set:\n"
	                       "  CA:        CN=Proxy CA 2026-12-26\n")) == 0);
	assert_non_null(strstr(text, "  problems:  server.crt is missing\n"));
	assert_non_null(strstr(text, "  origin:    generated\n"
	                             "  created:   2026-12-26T03:03:05Z\n"));
	assert_non_null(strstr(text, "(not yet published to ca-bundle.pem)\n"));
	assert_non_null(strstr(text, "  staged:    CN=Proxy CA 2026-12-26\n"));
	assert_non_null(strstr(text,
	    "reload:      proxy reload FAILED (exit 1): nginx: [emerg] cannot load certificate\n"
	    "             nginx: configuration file test failed\n"));
	assert_null(strstr(text, "warning"));
	assert_null(strstr(text, "\n\n"));
	free(text);
}

static void
test_human_stage_reload_variants(void **state)
{
	struct stage_fixture s;
	char *text;

	stage_init(&s, 1);
	s.f.staged.origin = (char *)"";
	text = capture(ctl_stage_human(capture_fp(), &s.reply, NOW));
	assert_true(strncmp(text, "staged: new set\n", 16) == 0);
	assert_non_null(strstr(text, "reload:      proxy reloaded\n"));
	free(text);

	s.reload.ran = 0;
	s.reload.exit_status = -1;
	s.reload.output = (char *)"no reload command configured";
	text = capture(ctl_stage_human(capture_fp(), &s.reply, NOW));
	assert_non_null(
	    strstr(text, "reload:      proxy reload not run: no reload command configured\n"));
	free(text);

	s.reload.ran = 1;
	s.reload.ok = 0;
	s.reload.output = (char *)"";
	text = capture(ctl_stage_human(capture_fp(), &s.reply, NOW));
	assert_non_null(strstr(text, "reload:      proxy reload FAILED (killed)\n"));
	free(text);

	s.reply.reload = NULL;
	s.reply.staged = NULL;
	text = capture(ctl_stage_human(capture_fp(), &s.reply, NOW));
	assert_non_null(strstr(text, "staged set:  not reported by carotated\n"));
	assert_non_null(strstr(text, "reload:      not reported by carotated\n"));
	free(text);
}

/* Each warning escaped on its own line; the failed reload last; nothing when all went well. */
static void
test_stage_warnings(void **state)
{
	struct stage_fixture s;
	char *text;

	stage_init(&s, 0);
	text = capture(ctl_stage_warnings(capture_fp(), "carotatectl", &s.reply));
	assert_string_equal(text,
	    "carotatectl: warning: the server certificate expires in 20 days\n"
	    "carotatectl: warning: subject has \\x1b[31m in it\n"
	    "carotatectl: warning: the proxy reload failed: agents still receive the new bundle, "
	    "but the canary listener serves the old certificate until the proxy reloads, so no "
	    "agent can prove (verified) that it trusts the new CA\n");
	free(text);

	stage_init(&s, 1);
	s.reply.n_warnings = 0;
	text = capture(ctl_stage_warnings(capture_fp(), "carotatectl", &s.reply));
	assert_string_equal(text, "");
	free(text);

	/* Not run is not failed: the reload line says why, no alarm. */
	s.reload.ran = 0;
	s.reload.ok = 0;
	text = capture(ctl_stage_warnings(capture_fp(), "carotatectl", &s.reply));
	assert_string_equal(text, "");
	free(text);
}

static void
test_json_stage_discard(void **state)
{
	struct stage_fixture s;
	json_t *j, *reload;
	char *text;

	stage_init(&s, 1);
	s.reply.staged = NULL;
	s.reply.n_warnings = 0;
	s.reply.kept_as = (char *)"discarded-20261226-030405";
	s.f.bundle.published = 1;
	text = capture(ctl_stage_json(capture_fp(), &s.reply));
	j = parse(text);
	assert_true(json_is_null(json_object_get(j, "staged")));
	assert_string_equal(jstr(j, "kept_as"), "discarded-20261226-030405");
	assert_true(json_is_true(json_object_get(json_object_get(j, "bundle"), "published")));
	reload = json_object_get(j, "reload");
	assert_true(json_is_true(json_object_get(reload, "ok")));
	assert_int_equal(json_integer_value(json_object_get(reload, "exit_status")), 0);
	assert_string_equal(jstr(reload, "output"), "");
	assert_int_equal(json_array_size(json_object_get(j, "warnings")), 0);
	json_decref(j);

	/* Absent bundle and reload: the keys stay, as null. */
	s.reply.bundle = NULL;
	s.reply.reload = NULL;
	free(text);
	text = capture(ctl_stage_json(capture_fp(), &s.reply));
	j = parse(text);
	assert_true(json_is_null(json_object_get(j, "bundle")));
	assert_true(json_is_null(json_object_get(j, "reload")));
	json_decref(j);
	free(text);
}

static void
test_human_stage_discard(void **state)
{
	struct stage_fixture s;
	char *text;

	stage_init(&s, 1);
	s.reply.staged = NULL;
	s.reply.kept_as = (char *)"discarded-20261226-030405";
	s.f.bundle.published = 1;
	text = capture(ctl_stage_discard_human(capture_fp(), &s.reply));
	assert_true(strncmp(text,
	                "discarded the staged set; kept as discarded-20261226-030405\n"
	                "bundle:      " BUNDLE_HEX " (3 CAs)\n",
	                strlen("discarded the staged set; kept as discarded-20261226-030405\n"
	                       "bundle:      " BUNDLE_HEX " (3 CAs)\n")) == 0);
	assert_non_null(strstr(text, "reload:      proxy reloaded\n"));
	assert_null(strstr(text, "staged set:"));
	free(text);

	s.reply.kept_as = (char *)"";
	text = capture(ctl_stage_discard_human(capture_fp(), &s.reply));
	assert_true(strncmp(text, "discarded the staged set\n", 25) == 0);
	free(text);
}

/* Every carotatectl(1) key, the daemon's percent as given, pending_agents only when asked. */
static void
test_report_json_staged(void **state)
{
	struct report_fixture f;
	json_t *j, *agents, *a;
	char *text;

	report_init(&f, 3);
	text = capture_json(ctl_report_json(capture_fp(), &f.reply, 1));
	j = parse(text);
	assert_int_equal(jint(j, "linked"), 1002);
	assert_int_equal(jint(j, "active"), 1000);
	assert_int_equal(jint(j, "acknowledged"), 999);
	assert_int_equal(jint(j, "verified"), 10);
	assert_int_equal(jint(j, "pending"), 1);
	assert_int_equal(jint(j, "inactive_lacking"), 1);
	assert_int_equal(jint(j, "excluded"), 1);
	assert_int_equal(jint(j, "percent"), 99);
	assert_int_equal(jint(j, "percent_verified"), 1);
	assert_string_equal(jstr(j, "staged_ca"), CA_HEX);
	assert_string_equal(jstr(j, "bundle_id"), BUNDLE_HEX);
	assert_string_equal(jstr(j, "gate"), "acknowledged");
	assert_int_equal(jint(j, "active_within"), 7 * DAY);
	assert_string_equal(jstr(j, "now"), "2026-12-26T03:04:05Z");
	assert_null(json_object_get(j, "holdings"));
	assert_null(json_object_get(j, "current"));
	agents = jget(j, "pending_agents");
	assert_int_equal(json_array_size(agents), 3);
	a = json_array_get(agents, 0);
	assert_string_equal(jstr(a, "id"), "agent-17");
	assert_string_equal(jstr(a, "last_seen"), "2026-12-26T00:04:05Z");
	assert_true(json_is_true(jget(a, "delivered")));
	a = json_array_get(agents, 2);
	assert_true(json_is_null(jget(a, "last_seen")));
	assert_true(json_is_false(jget(a, "delivered")));
	assert_true(strstr(text, "\"linked\"") < strstr(text, "\"percent\""));
	json_decref(j);
	free(text);

	/* Without --pending the key is absent, whatever the reply holds. */
	text = capture_json(ctl_report_json(capture_fp(), &f.reply, 0));
	j = parse(text);
	assert_null(json_object_get(j, "pending_agents"));
	json_decref(j);
	free(text);

	/* --pending with an empty page: an empty list, not a missing key. */
	f.reply.n_pending_agents = 0;
	text = capture_json(ctl_report_json(capture_fp(), &f.reply, 1));
	j = parse(text);
	assert_int_equal(json_array_size(jget(j, "pending_agents")), 0);
	json_decref(j);
	free(text);
}

/* Nothing staged: staged_ca null, the holdings and current; an unknown bundle is null. */
static void
test_report_json_steady(void **state)
{
	struct report_fixture f;
	json_t *j, *h;
	char *text;

	report_steady(&f);
	text = capture_json(ctl_report_json(capture_fp(), &f.reply, 0));
	j = parse(text);
	assert_true(json_is_null(jget(j, "staged_ca")));
	assert_int_equal(jint(j, "percent"), 0);
	assert_int_equal(jint(j, "current"), 900);
	h = jget(j, "holdings");
	assert_int_equal(json_array_size(h), 3);
	assert_string_equal(jstr(json_array_get(h, 0), "bundle_id"), BUNDLE_HEX);
	assert_int_equal(jint(json_array_get(h, 0), "agents"), 900);
	assert_true(json_is_true(jget(json_array_get(h, 0), "current")));
	assert_true(json_is_false(jget(json_array_get(h, 1), "current")));
	assert_true(json_is_null(jget(json_array_get(h, 2), "bundle_id")));
	assert_null(json_object_get(j, "pending_agents"));
	json_decref(j);
	free(text);

	/* No bundle, no gate, no clock: null rather than "" or 1970. */
	f.reply.bundle_id = (char *)"";
	f.reply.gate = (char *)"";
	f.reply.now = 0;
	text = capture_json(ctl_report_json(capture_fp(), &f.reply, 0));
	j = parse(text);
	assert_true(json_is_null(jget(j, "bundle_id")));
	assert_true(json_is_null(jget(j, "gate")));
	assert_true(json_is_null(jget(j, "now")));
	json_decref(j);
	free(text);
}

/*
 * 999 of 1000 is 99 %: the percent printed is the reply's, never recomputed from the counts
 * (nor rounded up), in both outputs. 100 % appears only when the reply says 100.
 */
static void
test_report_percent_as_given(void **state)
{
	struct report_fixture f;
	json_t *j;
	char *text;

	report_init(&f, 0);
	text = capture(ctl_report_human(capture_fp(), &f.reply, 0, 0));
	assert_non_null(strstr(text, "999 of 1000 active agents acknowledged (99 %)"));
	assert_null(strstr(text, "100 %"));
	free(text);

	/* Counts that would round to 100, percent 99: 99 it stays. */
	f.reply.acknowledged = 1000;
	f.reply.pending = 0;
	text = capture(ctl_report_human(capture_fp(), &f.reply, 0, 0));
	assert_non_null(strstr(text, "1000 of 1000 active agents acknowledged (99 %)"));
	assert_null(strstr(text, "100 %"));
	free(text);
	text = capture_json(ctl_report_json(capture_fp(), &f.reply, 0));
	j = parse(text);
	assert_int_equal(jint(j, "percent"), 99);
	json_decref(j);
	free(text);

	f.reply.percent = 100;
	text = capture(ctl_report_human(capture_fp(), &f.reply, 0, 0));
	assert_non_null(strstr(text, "(100 %)"));
	free(text);
}

static void
test_report_human_staged(void **state)
{
	struct report_fixture f;
	char *text;

	report_init(&f, 1);
	text = capture(ctl_report_human(capture_fp(), &f.reply, 1, 0));
	assert_string_equal(text,
	    "migration to CA abcdef0123456789\xe2\x80\xa6 (staged): 999 of 1000 active agents "
	    "acknowledged (99 %), 10 verified (1 %)\n"
	    "  linked 1002   active 1000   acknowledged 999   verified 10   pending 1   "
	    "inactive lacking the new CA 1   excluded 1   never confirmed 0\n"
	    "  active window: 7d   gate: acknowledged\n"
	    "pending agents (1 shown from offset 0):\n"
	    "  agent-17    last seen 2026-12-26T00:04:05Z (3h ago)     bundle delivered: yes\n");
	free(text);

	/* Without --pending: the three lines only. */
	text = capture(ctl_report_human(capture_fp(), &f.reply, 0, 0));
	assert_null(strstr(text, "pending agents"));
	free(text);
}

/* Ids aligned to the longest; the next page named; an empty page past the end. */
/* Until the canary listener is seen serving the staged certificate, the report says so. */
static void
test_report_human_canary_unconfirmed(void **state)
{
	struct report_fixture f;
	char *text;

	report_init(&f, 1);
	f.reply.canary_confirmed = 0;
	text = capture(ctl_report_human(capture_fp(), &f.reply, 0, 0));
	assert_non_null(strstr(text, "canary check-ins do not count as verified yet"));
	free(text);
	report_init(&f, 1);
	text = capture(ctl_report_human(capture_fp(), &f.reply, 0, 0));
	assert_null(strstr(text, "do not count as verified"));
	free(text);
}

static void
test_report_human_pending_pages(void **state)
{
	struct report_fixture f;
	char *text;

	report_init(&f, 3);
	f.reply.pending = 25;
	text = capture(ctl_report_human(capture_fp(), &f.reply, 1, 10));
	assert_non_null(strstr(text, "pending agents (3 shown from offset 10):\n"
	                             "  agent-17         last seen 2026-12-26T00:04:05Z (3h ago)"
	                             "     bundle delivered: yes\n"
	                             "  b                last seen 2026-12-26T03:03:06Z (59s ago)"
	                             "    bundle delivered: no\n"
	                             "  web.example-3    last seen unknown"));
	assert_non_null(strstr(text, "  (12 more; --offset 13 shows the next page)\n"));
	free(text);

	f.reply.n_pending_agents = 0;
	text = capture(ctl_report_human(capture_fp(), &f.reply, 1, 30));
	assert_non_null(strstr(text, "pending agents: none from offset 30 (25 pending)\n"));
	free(text);
	text = capture(ctl_report_human(capture_fp(), &f.reply, 1, 0));
	assert_non_null(strstr(text, "pending agents: none\n"));
	free(text);
}

static void
test_report_human_steady(void **state)
{
	struct report_fixture f;
	char *text;

	report_steady(&f);
	f.reply.active_within = 90 * 60;
	text = capture(ctl_report_human(capture_fp(), &f.reply, 1, 0));
	assert_string_equal(text, "nothing staged; bundle 4444444444444444\xe2\x80\xa6: 900 of "
	                          "1000 active agents hold it\n"
	                          "  linked 1002   active 1000   excluded 1   never confirmed 0\n"
	                          "  active window: 90m\n"
	                          "bundles held by active agents:\n"
	                          "  4444444444444444\xe2\x80\xa6  900 agents (current)\n"
	                          "  1111111111111111\xe2\x80\xa6  99 agents\n"
	                          "  none confirmed     1 agent\n"
	                          "pending agents: none (nothing is staged)\n");
	assert_null(strstr(text, "%"));
	free(text);
}

/* Ids and the gate come from the daemon: escaped, like every string it sends. */
static void
test_report_human_escapes(void **state)
{
	struct report_fixture f;
	char *text;

	report_init(&f, 1);
	f.agent[0].id = (char *)"evil\x1b[2J";
	f.reply.gate = (char *)"ack\x07";
	text = capture(ctl_report_human(capture_fp(), &f.reply, 1, 0));
	assert_null(strchr(text, '\x1b'));
	assert_null(strchr(text, '\x07'));
	assert_non_null(strstr(text, "  evil\\x1b[2J"));
	assert_non_null(strstr(text, "gate: ack\\x07\n"));
	free(text);
}

static void
test_agent_reply(void **state)
{
	Carotate__V1__AgentReply r = CAROTATE__V1__AGENT_REPLY__INIT;
	json_t *j;
	char *text;

	r.agent = (char *)"agent-17";
	r.excluded = 1;
	r.reason = (char *)"decommissioned";
	r.last_seen = NOW;
	text = capture(ctl_report_agent_human(capture_fp(), &r));
	assert_string_equal(text,
	    "excluded agent-17 (reason: decommissioned); it is listed but no longer counted\n");
	free(text);
	text = capture(ctl_report_agent_json(capture_fp(), &r));
	j = parse(text);
	assert_string_equal(jstr(j, "agent"), "agent-17");
	assert_true(json_is_true(jget(j, "excluded")));
	assert_string_equal(jstr(j, "reason"), "decommissioned");
	assert_string_equal(jstr(j, "last_seen"), "2026-12-26T03:04:05Z");
	json_decref(j);
	free(text);

	r.excluded = 0;
	r.reason = (char *)"";
	r.last_seen = 0;
	text = capture(ctl_report_agent_human(capture_fp(), &r));
	assert_string_equal(text, "included agent-17 again\n");
	free(text);
	text = capture(ctl_report_agent_json(capture_fp(), &r));
	j = parse(text);
	assert_true(json_is_false(jget(j, "excluded")));
	assert_true(json_is_null(jget(j, "reason")));
	assert_true(json_is_null(jget(j, "last_seen")));
	json_decref(j);
	free(text);

	r.excluded = 1;
	r.reason = (char *)"gone\x1b[2J";
	text = capture(ctl_report_agent_human(capture_fp(), &r));
	assert_string_equal(
	    text, "excluded agent-17 (reason: gone\\x1b[2J); it is listed but no longer counted\n");
	free(text);
}

/* The bar fills from the daemon's percent: 99 % is never a full bar. */
static void
test_progress(void **state)
{
	char *text;

	text = capture(ctl_wait_bar(capture_fp(), 0, 57, 570, 1000, "acknowledged"));
	assert_string_equal(text, "57 % (570/1000 acknowledged)\n");
	free(text);
	text = capture(ctl_wait_bar(capture_fp(), 1, 57, 570, 1000, "acknowledged"));
	assert_string_equal(
	    text, "\r[#################.............] 57 % (570/1000 acknowledged)\x1b[K");
	free(text);
	text = capture(ctl_wait_bar(capture_fp(), 1, 99, 999, 1000, "verified"));
	assert_string_equal(
	    text, "\r[#############################.] 99 % (999/1000 verified)\x1b[K");
	free(text);
	text = capture(ctl_wait_bar(capture_fp(), 1, 100, 1000, 1000, "acknowledged"));
	assert_non_null(strstr(text, "[##############################] 100 %"));
	free(text);
	text = capture(ctl_wait_bar(capture_fp(), 1, 0, 0, 0, "acknowledged"));
	assert_non_null(strstr(text, "[..............................] 0 % (0/0"));
	free(text);
	/* A bogus percent is printed as sent, the bar only full. */
	text = capture(ctl_wait_bar(capture_fp(), 1, 250, 5, 2, "acknowledged"));
	assert_non_null(strstr(text, "[##############################] 250 % (5/2"));
	free(text);
}

static void
test_wait_reached(void **state)
{
	char *buf = capture(ctl_wait_reached(capture_fp(), 99, 999, 1000, "acknowledged", 95));

	assert_string_equal(
	    buf, "99 % of active agents acknowledged (999/1000), threshold 95 % reached\n");
	free(buf);
}

static void
test_span(void **state)
{
	char buf[32];

	output_span(7 * DAY, buf, sizeof(buf));
	assert_string_equal(buf, "7d");
	output_span(3600, buf, sizeof(buf));
	assert_string_equal(buf, "1h");
	output_span(90 * 60, buf, sizeof(buf));
	assert_string_equal(buf, "90m");
	output_span(45, buf, sizeof(buf));
	assert_string_equal(buf, "45s");
	output_span(0, buf, sizeof(buf));
	assert_string_equal(buf, "0s");
	output_span(2 * DAY + 1, buf, sizeof(buf));
	assert_string_equal(buf, "172801s");
}

/* ---- backups and retire ---- */

/* Three backups: restorable with a reason given, made by hand, discarded without a server. */
struct backups_fixture {
	Carotate__V1__BackupsReply reply;
	Carotate__V1__Backup b[3];
	Carotate__V1__Backup *bs[3];
	Carotate__V1__CertInfo ca[3], server[3];
};

static void
backups_init(struct backups_fixture *f)
{
	static const char *const ids[] = { "certs-20261226-030405", "certs-20261225-000000-2",
		"discarded-20261224-000000" };
	static const char *const reasons[] = { "rotate", "manual", "discard" };
	int i;

	memset(f, 0, sizeof(*f));
	carotate__v1__backups_reply__init(&f->reply);
	for (i = 0; i < 3; i++) {
		carotate__v1__backup__init(&f->b[i]);
		f->b[i].id = (char *)ids[i];
		f->b[i].created = NOW - i * DAY;
		f->b[i].reason = (char *)reasons[i];
		fixture_cert(&f->ca[i], "CN=Test CA", "CN=Test CA", CA_SHA, NOW + 3650 * DAY);
		fixture_cert(&f->server[i], "CN=proxy", "CN=Test CA", SERVER_HEX, NOW + 90 * DAY);
		f->b[i].ca = &f->ca[i];
		f->b[i].server = &f->server[i];
		f->bs[i] = &f->b[i];
	}
	f->b[0].detail = (char *)"forced: maintenance";
	f->b[0].restorable = 1;
	f->b[1].restorable = 1;
	f->b[2].problem = (char *)"a discarded staged set; stage it again with install";
	f->b[2].server = NULL;
	f->reply.backups = f->bs;
	f->reply.n_backups = 3;
	f->reply.total = 5;
	f->reply.keep = 10;
}

static char *
print_backups(int json, const Carotate__V1__BackupsReply *r, uint64_t offset)
{
	return capture(
	    json ? ctl_backups_json(capture_fp(), r) : ctl_backups_human(capture_fp(), r, offset));
}

static void
test_backups_json(void **state)
{
	struct backups_fixture f;
	json_error_t jerr;
	json_t *o, *a, *b;
	char *out;

	backups_init(&f);
	out = print_backups(1, &f.reply, 0);
	o = json_loads(out, 0, &jerr);
	assert_non_null(o);
	assert_int_equal(jint(o, "total"), 5);
	assert_int_equal(jint(o, "keep"), 10);
	a = jget(o, "backups");
	assert_int_equal(json_array_size(a), 3);
	b = json_array_get(a, 0);
	/* carotatectl(1): id, created, reason, ca_sha256, server_not_after. */
	assert_string_equal(json_string_value(jget(b, "id")), "certs-20261226-030405");
	assert_string_equal(json_string_value(jget(b, "created")), "2026-12-26T03:04:05Z");
	assert_string_equal(json_string_value(jget(b, "reason")), "rotate");
	assert_string_equal(json_string_value(jget(b, "ca_sha256")), CA_HEX);
	assert_string_equal(json_string_value(jget(b, "server_not_after")), "2027-03-26T03:04:05Z");
	assert_string_equal(json_string_value(jget(b, "detail")), "forced: maintenance");
	assert_string_equal(json_string_value(jget(b, "ca_subject")), "CN=Test CA");
	assert_string_equal(json_string_value(jget(b, "server_sha256")), SERVER_HEX);
	assert_true(json_is_true(jget(b, "restorable")));
	assert_true(json_is_null(jget(b, "problem")));
	b = json_array_get(a, 1);
	assert_string_equal(json_string_value(jget(b, "reason")), "manual");
	assert_true(json_is_null(jget(b, "detail")));
	b = json_array_get(a, 2);
	assert_string_equal(json_string_value(jget(b, "reason")), "discard");
	assert_true(json_is_false(jget(b, "restorable")));
	assert_non_null(strstr(json_string_value(jget(b, "problem")), "discarded"));
	assert_true(json_is_null(jget(b, "server_not_after")));
	assert_true(json_is_null(jget(b, "server_sha256")));
	json_decref(o);
	free(out);

	/* A reason the client does not know is not passed through as if it were one. */
	f.b[0].reason = (char *)"\x1b[2Jrotate";
	f.reply.n_backups = 0;
	out = print_backups(1, &f.reply, 0);
	o = json_loads(out, 0, &jerr);
	assert_int_equal(json_array_size(jget(o, "backups")), 0);
	json_decref(o);
	free(out);
	f.reply.n_backups = 1;
	out = print_backups(1, &f.reply, 0);
	assert_non_null(strstr(out, "\"reason\": \"unknown\""));
	free(out);
}

static void
test_backups_human(void **state)
{
	struct backups_fixture f;
	char *out;

	backups_init(&f);
	out = print_backups(0, &f.reply, 0);
	assert_non_null(strstr(out, "ID"));
	assert_non_null(strstr(out, "RESTORABLE"));
	assert_non_null(
	    strstr(out, "certs-20261226-030405      2026-12-26T03:04:05Z  rotate   "
	                "CN=Test CA  abcdef0123456789\xe2\x80\xa6  2027-03-26T03:04:05Z  yes\n"));
	assert_non_null(strstr(out, "reason given: forced: maintenance\n"));
	assert_non_null(strstr(out, "manual "));
	assert_non_null(
	    strstr(out, "discard  CN=Test CA  abcdef0123456789\xe2\x80\xa6  -        "));
	assert_non_null(strstr(out, "no: a discarded staged set; stage it again with install\n"));
	assert_non_null(strstr(out, "5 backups (3 shown from offset 0)"));
	assert_non_null(strstr(out, "keeps the newest 10"));
	assert_non_null(strstr(out, "(2 more; --offset 3 shows the next page)"));
	free(out);

	/* Text from the daemon cannot drive the terminal. */
	f.b[2].problem = (char *)"bad\x1b[2J\nline";
	f.ca[1].subject = (char *)"CN=evil\x07";
	out = print_backups(0, &f.reply, 0);
	assert_null(strchr(out, '\x1b'));
	assert_null(strchr(out, '\x07'));
	assert_non_null(strstr(out, "bad\\x1b[2J\\x0aline"));
	free(out);

	f.reply.n_backups = 0;
	f.reply.total = 0;
	out = print_backups(0, &f.reply, 0);
	assert_string_equal(out, "no backups; keep 10\n");
	free(out);
	f.reply.total = 5;
	out = print_backups(0, &f.reply, 7);
	assert_string_equal(out, "no backups from offset 7 (5 in all); keep 10\n");
	free(out);
}

static char *
print_retire(int json, const Carotate__V1__RetireReply *r, const char *message)
{
	return capture(json ? ctl_stage_retire_json(capture_fp(), r, message)
	                    : ctl_stage_retire_human(capture_fp(), r, message));
}

static void
test_retire(void **state)
{
	Carotate__V1__RetireReply r = CAROTATE__V1__RETIRE_REPLY__INIT;
	Carotate__V1__BundleCa ca = CAROTATE__V1__BUNDLE_CA__INIT, *cas[1] = { &ca };
	struct fixture f;
	json_error_t jerr;
	json_t *o, *a;
	char *out;

	fixture_init(&f, 1, 0, 1);
	ca.sha256 = (char *)RETAINED_HEX;
	ca.subject = (char *)"CN=Old CA";
	ca.role = (char *)"retained";
	ca.not_after = NOW + 100 * DAY;
	ca.retained_until = NOW + 29 * DAY;
	r.dry_run = 1;
	r.retired = cas;
	r.n_retired = 1;
	r.bundle = &f.bundle;
	out = print_retire(1, &r, "would retire 1 CA (dry run: nothing changed)");
	o = json_loads(out, 0, &jerr);
	assert_non_null(o);
	assert_true(json_is_true(jget(o, "dry_run")));
	a = jget(o, "retired");
	assert_int_equal(json_array_size(a), 1);
	assert_string_equal(json_string_value(jget(json_array_get(a, 0), "sha256")), RETAINED_HEX);
	assert_string_equal(json_string_value(jget(json_array_get(a, 0), "subject")), "CN=Old CA");
	assert_string_equal(json_string_value(jget(json_array_get(a, 0), "retained_until")),
	    "2027-01-24T03:04:05Z");
	assert_string_equal(json_string_value(jget(jget(o, "bundle"), "id")), BUNDLE_HEX);
	assert_non_null(strstr(json_string_value(jget(o, "message")), "dry run"));
	json_decref(o);
	free(out);

	out = print_retire(0, &r, "would retire 1 CA (dry run: nothing changed)");
	assert_int_equal(strncmp(out, "would retire 1 CA (dry run: nothing changed)\n", 45), 0);
	assert_non_null(strstr(out, "CN=Old CA"));
	assert_non_null(strstr(out, "retained until 2027-01-24T03:04:05Z"));
	assert_non_null(strstr(out, "bundle:"));
	free(out);

	r.dry_run = 0;
	r.n_retired = 0;
	out = print_retire(0, &r, "");
	assert_int_equal(strncmp(out, "retired 0 CAs\n", 14), 0);
	free(out);
	out = print_retire(1, &r, "");
	o = json_loads(out, 0, &jerr);
	assert_int_equal(json_array_size(jget(o, "retired")), 0);
	assert_true(json_is_null(jget(o, "message")));
	json_decref(o);
	free(out);
}

static char *
print_audit(const Carotate__V1__AuditReply *r, int json, uint64_t offset)
{
	return capture(
	    json ? ctl_audit_json(capture_fp(), r) : ctl_audit_human(capture_fp(), r, offset));
}

/* Two audit records, newest first, of a log of five; a page from offset 1. */
static void
test_audit_output(void **state)
{
	Carotate__V1__AuditRecord a = CAROTATE__V1__AUDIT_RECORD__INIT;
	Carotate__V1__AuditRecord b = CAROTATE__V1__AUDIT_RECORD__INIT;
	Carotate__V1__AuditRecord *recs[] = { &a, &b };
	Carotate__V1__AuditReply r = CAROTATE__V1__AUDIT_REPLY__INIT;
	json_t *j, *rec;
	char *text;

	a.seq = 4;
	a.time = NOW;
	a.uid = 999;
	a.user = (char *)"ops";
	a.pid = 4242;
	a.call = (char *)"exclude";
	a.result = (char *)"PERMISSION_DENIED";
	a.detail = (char *)"agent=\"a1\"; permission denied\x1b[2J";
	a.before = a.after = (char *)"active=aa/bb staged=-";
	a.prev_hash = (char *)"11";
	a.hash = (char *)"22";
	b.seq = 3;
	b.time = NOW - 60;
	b.user = (char *)"root";
	b.pid = 17;
	b.call = (char *)"generate";
	b.result = (char *)"OK";
	b.detail = (char *)"";
	b.before = (char *)"active=aa/bb staged=-";
	b.after = (char *)"active=aa/bb staged=cc";
	b.prev_hash = (char *)"00";
	b.hash = (char *)"11";
	r.records = recs;
	r.n_records = 2;
	r.total = 5;

	text = print_audit(&r, 0, 1);
	assert_string_equal(text,
	    "audit log: 5 records, newest first (2 shown from offset 1)\n"
	    "#4 2026-12-26T03:04:05Z ops(999) pid 4242 exclude PERMISSION_DENIED agent=\"a1\"; "
	    "permission denied\\x1b[2J\n"
	    "    unchanged: active=aa/bb staged=-\n"
	    "#3 2026-12-26T03:03:05Z root(0) pid 17 generate OK\n"
	    "    before: active=aa/bb staged=-\n"
	    "    after:  active=aa/bb staged=cc\n"
	    "(2 older; --offset 3 shows the next page)\n");
	free(text);
	text = print_audit(&r, 1, 1);
	j = parse(text);
	assert_int_equal(jint(j, "total"), 5);
	assert_true(json_is_null(jget(j, "intact")));
	assert_true(json_is_null(jget(j, "broken_at")));
	assert_true(json_is_null(jget(j, "problem")));
	assert_int_equal(json_array_size(jget(j, "records")), 2);
	rec = json_array_get(jget(j, "records"), 0);
	assert_int_equal(jint(rec, "seq"), 4);
	assert_string_equal(jstr(rec, "time"), "2026-12-26T03:04:05Z");
	assert_int_equal(jint(rec, "uid"), 999);
	assert_string_equal(jstr(rec, "user"), "ops");
	assert_int_equal(jint(rec, "pid"), 4242);
	assert_string_equal(jstr(rec, "call"), "exclude");
	assert_string_equal(jstr(rec, "result"), "PERMISSION_DENIED");
	assert_string_equal(jstr(rec, "detail"), "agent=\"a1\"; permission denied\x1b[2J");
	assert_string_equal(jstr(rec, "before"), "active=aa/bb staged=-");
	assert_string_equal(jstr(rec, "after"), "active=aa/bb staged=-");
	assert_string_equal(jstr(rec, "prev_hash"), "11");
	assert_string_equal(jstr(rec, "hash"), "22");
	json_decref(j);
	free(text);

	/* Verified: intact, then broken. */
	r.verify = 1;
	r.intact = 1;
	r.problem = (char *)"";
	text = print_audit(&r, 0, 0);
	assert_non_null(strstr(text, "hash chain: intact (5 records checked)\n"));
	free(text);
	text = print_audit(&r, 1, 0);
	j = parse(text);
	assert_true(json_is_true(jget(j, "intact")));
	assert_int_equal(jint(j, "broken_at"), 0);
	assert_true(json_is_null(jget(j, "problem")));
	json_decref(j);
	free(text);
	r.intact = 0;
	r.broken_at = 2;
	r.problem = (char *)"record 2 was changed: its hash does not match its contents";
	text = print_audit(&r, 0, 0);
	assert_non_null(strstr(text, "hash chain: BROKEN at record 2: record 2 was changed"));
	free(text);
	text = print_audit(&r, 1, 0);
	j = parse(text);
	assert_true(json_is_false(jget(j, "intact")));
	assert_int_equal(jint(j, "broken_at"), 2);
	assert_string_equal(
	    jstr(j, "problem"), "record 2 was changed: its hash does not match its contents");
	json_decref(j);
	free(text);

	/* An empty log. */
	r.n_records = 0;
	r.total = 0;
	r.verify = 0;
	text = print_audit(&r, 0, 0);
	assert_string_equal(text, "audit log: empty\n");
	free(text);
}

/* Every byte of the output is printable ASCII, or part of printable UTF-8 the case allows. */
static void
assert_safe(const char *in, const char *want)
{
	char *out = capture((output_safe(capture_fp(), in), 0));

	assert_string_equal(out, want);
	free(out);
}

/*
 * A custom set's subjects and SANs are chosen by whoever made the certificate. Before, only
 * C1 controls in their UTF-8 form were escaped: a SAN carrying the raw byte 0x9b (CSI on a
 * terminal that reads 8-bit controls) reached the terminal as it was, and so did a U+202E
 * that shows "moc.elgoog" as "google.com". Valid non-ASCII text ("é", "東", an emoji) is
 * printed as it is: subjects are written in the operator's language.
 */
static void
test_safe_escapes(void **state)
{
	/* Controls: C0, DEL, C1 raw and in UTF-8. */
	assert_safe("a\x1b[2Jb\x7f", "a\\x1b[2Jb\\x7f");
	assert_safe("san\x9b"
	            "31mx",
	    "san\\x9b31mx");
	assert_safe("c1 \xc2\x9b \xc2\x85 \xc2\x80", "c1 \\xc2\\x9b \\xc2\\x85 \\xc2\\x80");
	/* Invalid UTF-8: stray continuation bytes, bytes no sequence starts with, truncation. */
	assert_safe("\x80\xbf", "\\x80\\xbf");
	assert_safe("\xff\xfe\xf5\xf8", "\\xff\\xfe\\xf5\\xf8");
	assert_safe("cut \xc3", "cut \\xc3");
	assert_safe("cut \xe2\x80", "cut \\xe2\\x80");
	assert_safe("cut \xe2\x80x", "cut \\xe2\\x80x");
	assert_safe("cut \xf0\x9f\x94", "cut \\xf0\\x9f\\x94");
	/* Overlong encodings, one of them of CSI, surrogates, beyond U+10FFFF. */
	assert_safe("\xc0\xaf", "\\xc0\\xaf");
	assert_safe("\xc1\x9b", "\\xc1\\x9b");
	assert_safe("\xe0\x80\xaf", "\\xe0\\x80\\xaf");
	assert_safe("\xe0\x82\x9b", "\\xe0\\x82\\x9b");
	assert_safe("\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf");
	assert_safe("\xed\xa0\x80", "\\xed\\xa0\\x80");
	assert_safe("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
	/* Bidi overrides, isolates and marks; the line and paragraph separators. */
	assert_safe("CN=\xe2\x80\xae"
	            "moc.elgoog",
	    "CN=\\xe2\\x80\\xaemoc.elgoog");
	assert_safe("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad",
	    "\\xe2\\x80\\xaa\\xe2\\x80\\xab\\xe2\\x80\\xac\\xe2\\x80\\xad");
	assert_safe("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9",
	    "\\xe2\\x81\\xa6\\xe2\\x81\\xa7\\xe2\\x81\\xa8\\xe2\\x81\\xa9");
	assert_safe("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", "\\xe2\\x80\\x8e\\xe2\\x80\\x8f\\xd8\\x9c");
	assert_safe("\xe2\x80\xa8\xe2\x80\xa9", "\\xe2\\x80\\xa8\\xe2\\x80\\xa9");
	/* Printable UTF-8 is kept, also right next to an escaped byte. */
	assert_safe("CN=caf\xc3\xa9 \xe6\x9d\xb1 \xf0\x9f\x94\x91 \xe2\x80\xa6",
	    "CN=caf\xc3\xa9 \xe6\x9d\xb1 \xf0\x9f\x94\x91 \xe2\x80\xa6");
	assert_safe("\xe9\xc3\xa9\x9b", "\\xe9\xc3\xa9\\x9b");
	assert_safe(NULL, "");
	assert_safe("", "");
}

/* A C1 control, a bidi override and "é" in a subject: JSON carries them as \uXXXX, in ASCII. */
static void
test_json_ensure_ascii(void **state)
{
	struct fixture f;
	json_t *j, *active;
	char *text;
	const unsigned char *p;

	fixture_init(&f, 1, 0, 0);
	f.active_ca.subject = (char *)"CN=a\xc2\x9b"
	                              "b\xe2\x80\xae"
	                              "c caf\xc3\xa9";
	f.active_server.subject = (char *)"CN=raw\x9b";
	text = capture_json(ctl_status_json(capture_fp(), &f.reply));
	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if (*p >= 0x80)
			fail_msg(
			    "byte 0x%02x at offset %td of the JSON", *p, (const char *)p - text);
	assert_non_null(strstr(text, "CN=a\\u009Bb\\u202Ec caf\\u00E9"));
	j = parse(text);
	active = json_object_get(j, "active");
	assert_string_equal(jstr(json_object_get(active, "ca"), "subject"), "CN=a\xc2\x9b"
	                                                                    "b\xe2\x80\xae"
	                                                                    "c caf\xc3\xa9");
	assert_string_equal(jstr(json_object_get(active, "server"), "subject"), "CN=raw?");
	json_decref(j);
	free(text);
}

/* The revoked token's id is the daemon's text too. */
static void
test_join_revoked(void **state)
{
	Carotate__V1__JoinTokenRevokeReply r = CAROTATE__V1__JOIN_TOKEN_REVOKE_REPLY__INIT;
	char *buf;
	json_t *j;

	r.id = (char *)"jt-1\x1b[2J\x9b";
	buf = capture(ctl_join_revoked_human(capture_fp(), &r));
	assert_string_equal(buf, "join token jt-1\\x1b[2J\\x9b revoked\n");
	free(buf);
	r.id = (char *)"jt-\"1\x1b";
	buf = capture_json(ctl_join_revoked_json(capture_fp(), &r));
	assert_null(strchr(buf, '\x1b'));
	j = parse(buf);
	assert_string_equal(jstr(j, "revoked"), "jt-\"1\x1b");
	json_decref(j);
	free(buf);
}

/*
 * rotate/restore replies: a refused rotate printed "active now:" followed by the
 * staged CA, and its JSON "after" was the staged set, although nothing changed. One meaning
 * per label: "active now:"/"after" only once the set changed (the reply carries a reload);
 * a refusal or a dry run says "would become active:"/"would_become_active".
 */
static char *
print_swap(int json, const Carotate__V1__RotateReply *r, const char *status)
{
	return capture(
	    json ? ctl_rotate_json(capture_fp(), r, status, status != NULL ? "refused" : NULL)
	         : ctl_rotate_human(capture_fp(), r, NOW));
}

/* A rotate refused below the gate: before is the active set, after the staged one. */
static void
swap_refused(struct fixture *f, Carotate__V1__RotateReply *r)
{
	fixture_init(f, 1, 1, 0);
	carotate__v1__rotate_reply__init(r);
	r->before = &f->active;
	r->after = &f->staged;
	r->gate = (char *)"acknowledged";
	r->active = 2;
	r->confirmed = 1;
}

static void
test_swap_refused(void **state)
{
	struct fixture f;
	Carotate__V1__RotateReply r;
	json_t *j;
	char *text;

	swap_refused(&f, &r);
	text = print_swap(0, &r, NULL);
	assert_null(strstr(text, "active now:"));
	assert_null(strstr(text, "active before:"));
	assert_non_null(strstr(text, "\nactive:"));
	assert_non_null(strstr(text, "would become active:"));
	/* The staged CA is named only as what would become active. */
	assert_true(strstr(text, "CN=Proxy CA 2026-12-26") > strstr(text, "would become active:"));
	free(text);
	text = print_swap(1, &r, "FAILED_PRECONDITION");
	j = parse(text);
	assert_null(json_object_get(j, "after"));
	assert_string_equal(
	    jstr(json_object_get(json_object_get(j, "would_become_active"), "ca"), "sha256"),
	    STAGED_HEX);
	assert_non_null(json_object_get(json_object_get(j, "before"), "ca"));
	json_decref(j);
	free(text);
	/* A dry run reads the same. */
	r.dry_run = 1;
	text = print_swap(1, &r, NULL);
	j = parse(text);
	assert_null(json_object_get(j, "after"));
	assert_non_null(json_object_get(j, "would_become_active"));
	json_decref(j);
	free(text);
}

/* A rotate that happened: "active before:" then "active now:", JSON before and after. */
static void
test_swap_done(void **state)
{
	struct fixture f;
	Carotate__V1__RotateReply r;
	Carotate__V1__ReloadResult reload;
	json_t *j;
	char *text;

	swap_refused(&f, &r);
	carotate__v1__reload_result__init(&reload);
	reload.ran = reload.ok = 1;
	r.reload = &reload;
	r.verified = 1;
	r.backup = (char *)"certs-20261226-030405";
	text = print_swap(0, &r, NULL);
	assert_non_null(strstr(text, "active before:"));
	assert_non_null(strstr(text, "active now:"));
	assert_null(strstr(text, "would become"));
	free(text);
	text = print_swap(1, &r, NULL);
	j = parse(text);
	assert_non_null(json_object_get(json_object_get(j, "after"), "ca"));
	assert_null(json_object_get(j, "would_become_active"));
	json_decref(j);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339_known_values),
		cmocka_unit_test(test_rfc3339_out_of_range),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_json_full),
		cmocka_unit_test(test_json_absent),
		cmocka_unit_test(test_json_layout),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_error_json),
		cmocka_unit_test(test_human_full),
		cmocka_unit_test(test_human_absent),
		cmocka_unit_test(test_human_expired),
		cmocka_unit_test(test_human_escapes_controls),
		cmocka_unit_test(test_json_status_origin_members),
		cmocka_unit_test(test_json_bundle_without_members),
		cmocka_unit_test(test_human_status_origin_members),
		cmocka_unit_test(test_status_worker_pids),
		cmocka_unit_test(test_human_bundle_unpublished),
		cmocka_unit_test(test_json_stage_generate),
		cmocka_unit_test(test_human_stage_generate),
		cmocka_unit_test(test_human_stage_reload_variants),
		cmocka_unit_test(test_stage_warnings),
		cmocka_unit_test(test_json_stage_discard),
		cmocka_unit_test(test_human_stage_discard),
		cmocka_unit_test(test_report_json_staged),
		cmocka_unit_test(test_report_json_steady),
		cmocka_unit_test(test_report_percent_as_given),
		cmocka_unit_test(test_report_human_staged),
		cmocka_unit_test(test_report_human_pending_pages),
		cmocka_unit_test(test_report_human_canary_unconfirmed),
		cmocka_unit_test(test_report_human_steady),
		cmocka_unit_test(test_report_human_escapes),
		cmocka_unit_test(test_agent_reply),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_wait_reached),
		cmocka_unit_test(test_span),
		cmocka_unit_test(test_audit_output),
		cmocka_unit_test(test_backups_json),
		cmocka_unit_test(test_backups_human),
		cmocka_unit_test(test_retire),
		cmocka_unit_test(test_swap_refused),
		cmocka_unit_test(test_swap_done),
		cmocka_unit_test(test_safe_escapes),
		cmocka_unit_test(test_json_ensure_ascii),
		cmocka_unit_test(test_join_revoked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
