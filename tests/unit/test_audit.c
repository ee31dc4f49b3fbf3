/*
 * The audit log's daemon side: client strings sanitized, requests described
 * without secrets, fingerprints of the sets on disk, a call recorded with
 * who, what, result, before and after, a refusal too (role, phase, busy),
 * identical refusals coalesced; records held until the ledger opens; a change
 * made by hand adopted.
 *
 * audit.c is driven here directly, as dispatch_run drives it (audit_refusal
 * with the refusal's reply, audit_call_start and audit_call_end around a
 * handler), so that this test links audit.c and the store below it, no
 * handler. That dispatch calls it for every admin entry and never for a
 * reader's is test_dispatch's (the audit hook tests there).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "audit.h"
#include "carotated.h"
#include "config.h"
#include "fixture.h"
#include "ledger.h"
#include "status.h"
#include "log.h"
#include "pki.h"
#include "xmalloc.h"

static struct fixture fx;
static char staging[320];
static struct carotated cd;

/* ---- helpers ---- */

/* The refusals dispatch_check answers with, word for word (test_dispatch checks them). */
#define DENIED(call)                                                                               \
	"permission denied: " call " needs the admin role: members of group carotate-admin "       \
	"have it (usermod -aG carotate-admin USER, then log in again)"
#define NOT_STAGED(call) call ": nothing is staged"
#define BUSY(call)       call " is in progress; try again when it has finished"

/* The newest record, which must exist. */
static struct ledger_audit
newest(void)
{
	return fixture_audit_at(cd.ledger, 0);
}

/* The record offset places below the newest. */
static struct ledger_audit
older(uint64_t offset)
{
	return fixture_audit_at(cd.ledger, offset);
}

static uint64_t
count(void)
{
	return fixture_audit_count(cd.ledger);
}

/* req refused as dispatch_run refuses it: status and message, from uid pid. */
static void
refuse(const Carotate__V1__Request *req, const char *call, uid_t uid, pid_t pid,
    Carotate__V1__Status status, const char *message)
{
	struct acl_peer peer = { .uid = uid, .pid = pid };
	Carotate__V1__Response reply = CAROTATE__V1__RESPONSE__INIT;

	reply.status = status;
	reply.message = (char *)message;
	audit_refusal(&cd, call, &peer, req, &reply);
}

static int
group_setup(void **state)
{
	log_init(1, 0, "test_audit");
	if (fixture_init(&fx, "/tmp", "audit", &cd.conf) == -1)
		return -1;
	snprintf(staging, sizeof(staging), "%s/new", fx.ssl);
	return 0;
}

static int
group_teardown(void **state)
{
	ledger_close(cd.ledger);
	config_free(cd.conf);
	return fixture_remove(&fx);
}

/* ---- pure functions ---- */

static void
test_sanitize(void **state)
{
	char buf[64], big[100001];

	audit_sanitize(buf, sizeof(buf), "decommissioned, see TICKET-12");
	assert_string_equal(buf, "decommissioned, see TICKET-12");
	audit_sanitize(buf, sizeof(buf), "a\nb\rc\td\x1b[31m\x7f");
	assert_string_equal(buf, "a\\x0ab\\x0dc\\x09d\\x1b[31m\\x7f");
	audit_sanitize(buf, sizeof(buf), "say \"hi\" \\ bye");
	assert_string_equal(buf, "say \\x22hi\\x22 \\x5c bye");
	audit_sanitize(buf, sizeof(buf), "caf\xc3\xa9");
	assert_string_equal(buf, "caf\\xc3\\xa9");
	audit_sanitize(buf, sizeof(buf), NULL);
	assert_string_equal(buf, "");

	/* Cut to the buffer with "...", never in the middle of an escape. */
	audit_sanitize(buf, 8, "abcdefgh");
	assert_string_equal(buf, "abcd...");
	audit_sanitize(buf, 8, "abcdefg");
	assert_string_equal(buf, "abcdefg");
	audit_sanitize(buf, 10, "ab\ncdefgh");
	assert_string_equal(buf, "ab\\x0a...");
	audit_sanitize(buf, 10, "abc\ndefgh");
	assert_string_equal(buf, "abc...");
	audit_sanitize(buf, 3, "abcdef");
	assert_string_equal(buf, "ab");
	audit_sanitize(buf, 1, "abcdef");
	assert_string_equal(buf, "");

	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	audit_sanitize(buf, sizeof(buf), big);
	assert_int_equal(strlen(buf), 63);
	assert_string_equal(buf + 60, "...");
}

static void
test_result_names(void **state)
{
	assert_string_equal(status_record_name(CAROTATE__V1__STATUS__OK), "OK");
	assert_string_equal(
	    status_record_name(CAROTATE__V1__STATUS__FAILED_PRECONDITION), "FAILED_PRECONDITION");
	assert_string_equal(
	    status_record_name(CAROTATE__V1__STATUS__PERMISSION_DENIED), "PERMISSION_DENIED");
	assert_string_equal(status_record_name(99), "UNKNOWN");
}

static void
test_describe(void **state)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__GenerateRequest g = CAROTATE__V1__GENERATE_REQUEST__INIT;
	Carotate__V1__InstallRequest in = CAROTATE__V1__INSTALL_REQUEST__INIT;
	Carotate__V1__ExcludeRequest ex = CAROTATE__V1__EXCLUDE_REQUEST__INIT;
	Carotate__V1__RotateRequest ro = CAROTATE__V1__ROTATE_REQUEST__INIT;
	Carotate__V1__RestoreRequest re = CAROTATE__V1__RESTORE_REQUEST__INIT;
	Carotate__V1__RetireRequest rt = CAROTATE__V1__RETIRE_REQUEST__INIT;
	char buf[LEDGER_AUDIT_MAX_DETAIL + 1], *huge;
	char *sans[] = { (char *)"DNS:a", (char *)"DNS:b" };
	uint8_t key[] = "-----BEGIN PRIVATE KEY-----\nSECRET\n";

	req.call_case = CAROTATE__V1__REQUEST__CALL_GENERATE;
	req.generate = &g;
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "key_type=\"ec-p256\"");
	g.key_type = (char *)"rsa-4096";
	g.ca_days = 365;
	g.name = (char *)"ops\n";
	g.sans = sans;
	g.n_sans = 2;
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "key_type=\"rsa-4096\" ca_days=365 name=\"ops\\x0a\" sans=2");

	/* Never the key. */
	req.call_case = CAROTATE__V1__REQUEST__CALL_INSTALL;
	req.install = &in;
	in.key.data = key;
	in.key.len = sizeof(key) - 1;
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "");

	req.call_case = CAROTATE__V1__REQUEST__CALL_EXCLUDE;
	req.exclude = &ex;
	ex.agent = (char *)"web-01";
	ex.reason = (char *)"gone\n\"fake\" audit: uid=0";
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(
	    buf, "agent=\"web-01\" reason=\"gone\\x0a\\x22fake\\x22 audit: uid=0\"");
	/* A hostile 100 KB agent id is cut. */
	huge = malloc(100001);
	assert_non_null(huge);
	memset(huge, 'A', 100000);
	huge[100000] = '\0';
	ex.agent = huge;
	audit_describe(&req, buf, sizeof(buf));
	assert_true(strlen(buf) < 200);
	assert_non_null(strstr(buf, "...\" reason="));
	free(huge);

	req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	req.rotate = &ro;
	ro.force = 1;
	ro.reason = (char *)"CA key leaked";
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "force=yes dry_run=no reason=\"CA key leaked\"");

	req.call_case = CAROTATE__V1__REQUEST__CALL_RESTORE;
	req.restore = &re;
	re.latest = 1;
	re.dry_run = 1;
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "backup=latest dry_run=yes");
	re.latest = 0;
	re.backup = (char *)"../../etc";
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "backup=\"../../etc\" dry_run=yes");

	req.call_case = CAROTATE__V1__REQUEST__CALL_RETIRE;
	req.retire = &rt;
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "dry_run=no");

	/* A call case without its message (hand-built requests) describes nothing. */
	req.rotate = NULL;
	req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "");
	req.call_case = CAROTATE__V1__REQUEST__CALL_DISCARD;
	audit_describe(&req, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void
test_fingerprint(void **state)
{
	char fp[LEDGER_AUDIT_MAX_STATE + 1], want[LEDGER_AUDIT_MAX_STATE + 1];
	char ca[PKI_SHA256_HEX], srv[PKI_SHA256_HEX], nca[PKI_SHA256_HEX], path[400];

	audit_fingerprint(cd.conf, fp, sizeof(fp));
	assert_string_equal(fp, "active=-/- staged=-");
	fixture_write_set(fx.ssl, "audit-test", 0, ca, srv);
	audit_fingerprint(cd.conf, fp, sizeof(fp));
	snprintf(want, sizeof(want), "active=%s/%s staged=-", ca, srv);
	assert_string_equal(fp, want);

	assert_int_equal(mkdir(staging, 0700), 0);
	snprintf(path, sizeof(path), "%s/ca.crt", staging);
	fixture_write_text(path, "not a certificate\n");
	audit_fingerprint(cd.conf, fp, sizeof(fp));
	snprintf(want, sizeof(want), "active=%s/%s staged=?", ca, srv);
	assert_string_equal(fp, want);
	fixture_write_set(staging, "audit-test", 0, nca, NULL);
	audit_fingerprint(cd.conf, fp, sizeof(fp));
	snprintf(want, sizeof(want), "active=%s/%s staged=%s", ca, srv, nca);
	assert_string_equal(fp, want);

	/* Leave the active set alone, nothing staged. */
	unlink(path);
	snprintf(path, sizeof(path), "%s/server.crt", staging);
	unlink(path);
	assert_int_equal(rmdir(staging), 0);
}

/* ---- the hook, with a real ledger ---- */

/* Events before the ledger is open (crash recovery at start-up) are held, then written. */
static void
test_held_until_open(void **state)
{
	struct ledger_audit a;
	char err[512], fp[LEDGER_AUDIT_MAX_STATE + 1];

	assert_null(cd.ledger);
	audit_event(
	    &cd, "recover", CAROTATE__V1__STATUS__OK, NULL, NULL, "swap %s finished", "rotate");
	audit_event(
	    &cd, "recover", CAROTATE__V1__STATUS__INTERNAL, "active=x/y staged=-", NULL, "second");
	if ((cd.ledger = ledger_open(cd.conf->state_dir, err, sizeof(err))) == NULL)
		fail_msg("ledger_open: %s", err);
	audit_start(&cd);
	assert_int_equal(count(), 2);
	a = newest();
	assert_int_equal(a.seq, 2);
	assert_string_equal(a.detail, "second");
	assert_string_equal(a.result, "INTERNAL");
	assert_string_equal(a.before, "active=x/y staged=-");

	a = older(1);
	audit_fingerprint(cd.conf, fp, sizeof(fp));
	assert_int_equal(a.seq, 1);
	assert_string_equal(a.call, "recover");
	assert_string_equal(a.result, "OK");
	assert_string_equal(a.user, AUDIT_DAEMON_USER);
	assert_int_equal(a.uid, getuid());
	assert_int_equal(a.pid, 0);
	assert_string_equal(a.detail, "swap rotate finished");
	assert_string_equal(a.before, "-"); /* nothing was recorded before it */
	assert_string_equal(a.after, fp);
}

/* Refusals of admin calls are recorded: role, phase, another call in progress. */
static void
test_refusals_recorded(void **state)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__ExcludeRequest ex = CAROTATE__V1__EXCLUDE_REQUEST__INIT;
	Carotate__V1__DiscardRequest di = CAROTATE__V1__DISCARD_REQUEST__INIT;
	Carotate__V1__GenerateRequest g = CAROTATE__V1__GENERATE_REQUEST__INIT;
	char fp[LEDGER_AUDIT_MAX_STATE + 1], me[64];
	struct ledger_audit a;
	uint64_t n = count();

	audit_fingerprint(cd.conf, fp, sizeof(fp));
	fixture_user_name(me, sizeof(me));
	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_EXCLUDE;
	req.exclude = &ex;
	ex.agent = (char *)"web\x01";
	ex.reason = (char *)"line\nbreak";
	refuse(&req, "exclude", getuid(), 4242, CAROTATE__V1__STATUS__PERMISSION_DENIED,
	    DENIED("exclude"));
	assert_int_equal(count(), n + 1);
	a = newest();
	assert_string_equal(a.call, "exclude");
	assert_string_equal(a.result, "PERMISSION_DENIED");
	assert_int_equal(a.uid, getuid());
	assert_int_equal(a.pid, 4242);
	assert_string_equal(a.user, me);
	assert_string_equal(a.detail, "agent=\"web\\x01\" reason=\"line\\x0abreak\"; permission "
	                              "denied: exclude needs the admin role: members of group "
	                              "carotate-admin have it (usermod -aG carotate-admin USER, "
	                              "then log in again)");
	assert_string_equal(a.before, fp);
	assert_string_equal(a.after, fp);

	req.call_case = CAROTATE__V1__REQUEST__CALL_DISCARD;
	req.discard = &di;
	refuse(&req, "discard", getuid(), 4242, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
	    NOT_STAGED("discard"));
	a = newest();
	assert_string_equal(a.call, "discard");
	assert_string_equal(a.result, "FAILED_PRECONDITION");
	assert_string_equal(a.detail, "discard: nothing is staged");

	req.call_case = CAROTATE__V1__REQUEST__CALL_GENERATE;
	req.generate = &g;
	refuse(&req, "generate", getuid(), 4242, CAROTATE__V1__STATUS__UNAVAILABLE, BUSY("rotate"));
	a = newest();
	assert_string_equal(a.call, "generate");
	assert_string_equal(a.result, "UNAVAILABLE");
	assert_non_null(strstr(a.detail, "rotate is in progress"));
	assert_int_equal(count(), n + 3);
}

/*
 * What a reader of the log is given (the audit call's page): newest first,
 * each record linked to the one before it, the chain intact; reading it
 * writes nothing.
 */
static void
test_chain_read(void **state)
{
	char problem[512];
	struct ledger_audit r0, r1;
	uint64_t n = count(), at;

	r0 = newest();
	r1 = older(1);
	assert_int_equal(r0.seq, n);
	assert_int_equal(r1.seq, n - 1);
	assert_string_equal(r0.prev_hash, r1.hash);
	assert_int_equal(ledger_audit_verify(cd.ledger, &at, problem, sizeof(problem)), 1);
	assert_int_equal(at, 0);
	assert_int_equal(count(), n);
}

/* A handler's stand-in: stages a set, answers OK with a message and a rotate-like result. */
static void
stage_set(Carotate__V1__Response *reply, Carotate__V1__RotateReply *r)
{
	char ca[PKI_SHA256_HEX];

	assert_int_equal(mkdir(staging, 0700), 0);
	fixture_write_set(staging, "audit-test", 0, ca, NULL);
	r->backup = (char *)"certs-20260101-000000";
	r->verified = 1;
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY;
	reply->rotate_reply = r;
	reply->status = CAROTATE__V1__STATUS__OK;
	reply->message = (char *)"done by the test";
}

/*
 * An admin call, opened before its handler and closed with its reply (as
 * dispatch_run does for every admin entry): who, what it asked, what the
 * reply says happened, and the sets before and after.
 */
static void
test_call_recorded(void **state)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__RotateRequest ro = CAROTATE__V1__ROTATE_REQUEST__INIT;
	Carotate__V1__RotateReply rr = CAROTATE__V1__ROTATE_REPLY__INIT;
	Carotate__V1__Response reply = CAROTATE__V1__RESPONSE__INIT;
	struct acl_peer peer = { .uid = 0, .pid = 77 };
	char before[LEDGER_AUDIT_MAX_STATE + 1], after[LEDGER_AUDIT_MAX_STATE + 1];
	struct audit_call *ac;
	struct ledger_audit a;
	uint64_t n = count();

	audit_fingerprint(cd.conf, before, sizeof(before));
	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	req.rotate = &ro;
	ro.force = 1;
	ro.reason = (char *)"drill";
	ac = audit_call_start(&cd, "rotate", &peer, &req);
	assert_int_equal(count(), n); /* nothing is written before the reply */
	stage_set(&reply, &rr);
	audit_call_end(ac, &reply);
	audit_fingerprint(cd.conf, after, sizeof(after));
	assert_string_not_equal(before, after);
	assert_int_equal(count(), n + 1);
	a = newest();
	assert_string_equal(a.call, "rotate");
	assert_string_equal(a.result, "OK");
	assert_int_equal(a.uid, 0);
	assert_int_equal(a.pid, 77);
	assert_string_equal(a.detail, "force=yes dry_run=no reason=\"drill\" "
	                              "backup_made=\"certs-20260101-000000\" verified=yes "
	                              "rolled_back=no; done by the test");
	assert_string_equal(a.before, before);
	assert_string_equal(a.after, after);
}

/*
 * A pool member's records name it first in the detail, where the hash covers it, and the
 * outcome the detail carries still reads; a single proxy's records name no member.
 */
static void
test_member_named(void **state)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__ExcludeRequest ex = CAROTATE__V1__EXCLUDE_REQUEST__INIT;
	Carotate__V1__Response reply = CAROTATE__V1__RESPONSE__INIT;
	struct acl_peer peer = { .uid = 0, .pid = 78 };
	struct config *conf = (struct config *)cd.conf;
	struct ledger_audit a;
	int verified, rolled_back;
	char long_text[LEDGER_AUDIT_MAX_DETAIL + 100];
	char *saved_member;

	(void)state;
	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_EXCLUDE;
	req.exclude = &ex;
	ex.agent = (char *)"web-01";
	ex.reason = (char *)"gone";
	reply.status = CAROTATE__V1__STATUS__NOT_FOUND;
	reply.message = (char *)"no such agent";
	audit_call_end(audit_call_start(&cd, "exclude", &peer, &req), &reply);
	a = newest();
	assert_string_equal(a.detail, "agent=\"web-01\" reason=\"gone\"; no such agent");

	saved_member = conf->ledger_member;
	conf->ledger_backend = CONFIG_LEDGER_POSTGRESQL;
	conf->ledger_member = (char *)"proxy-b";
	audit_call_end(audit_call_start(&cd, "exclude", &peer, &req), &reply);
	a = newest();
	assert_string_equal(
	    a.detail, "member=proxy-b agent=\"web-01\" reason=\"gone\"; no such agent");
	/* A detail that is a message alone gets its separator. */
	audit_event(
	    &cd, "recover", CAROTATE__V1__STATUS__OK, NULL, NULL, "the journal rolled forward");
	a = newest();
	assert_string_equal(a.detail, "member=proxy-b; the journal rolled forward");
	assert_int_equal(ledger_audit_outcome(a.detail, &verified, &rolled_back), -1);
	/* A detail already full loses its end, never the member. */
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	audit_event(&cd, "recover", CAROTATE__V1__STATUS__OK, NULL, NULL, "%s", long_text);
	a = newest();
	assert_int_equal(strncmp(a.detail, "member=proxy-b; xxx", 19), 0);
	assert_int_equal(strlen(a.detail), LEDGER_AUDIT_MAX_DETAIL);
	conf->ledger_backend = CONFIG_LEDGER_SQLITE;
	conf->ledger_member = saved_member;
}

/* Sets changed by hand since the newest record: recorded once as "adopt". */
static void
test_adopt(void **state)
{
	char fp[LEDGER_AUDIT_MAX_STATE + 1], ca[PKI_SHA256_HEX], srv[PKI_SHA256_HEX];
	struct ledger_audit last = newest(), a;
	uint64_t n = count();

	audit_adopt(&cd);
	assert_int_equal(count(), n); /* nothing changed */
	fixture_write_set(fx.ssl, "audit-test", 0, ca, srv);
	audit_adopt(&cd);
	assert_int_equal(count(), n + 1);
	a = newest();
	audit_fingerprint(cd.conf, fp, sizeof(fp));
	assert_string_equal(a.call, "adopt");
	assert_string_equal(a.user, AUDIT_DAEMON_USER);
	assert_string_equal(a.before, last.after);
	assert_string_equal(a.after, fp);
	assert_non_null(strstr(a.detail, "the active set changed outside carotated"));
	audit_adopt(&cd);
	assert_int_equal(count(), n + 1);

	/* An event's before is, by default, what the log last knew. */
	audit_event(&cd, "recover", CAROTATE__V1__STATUS__OK, NULL, "after", "x");
	a = newest();
	assert_string_equal(a.before, fp);
	assert_string_equal(a.after, "after");
}

/* A reader's exclude or discard from uid, pid 77, refused for its role. */
static void
refused_as(const Carotate__V1__Request *req, uid_t uid)
{
	const char *call =
	    req->call_case == CAROTATE__V1__REQUEST__CALL_EXCLUDE ? "exclude" : "discard";

	refuse(req, call, uid, 77, CAROTATE__V1__STATUS__PERMISSION_DENIED,
	    req->call_case == CAROTATE__V1__REQUEST__CALL_EXCLUDE ? DENIED("exclude")
	                                                          : DENIED("discard"));
}

/* The refusals the records of uid and call since record after stand for. */
static uint64_t
refusals_since(uint64_t after, uid_t uid, const char *call)
{
	struct ledger_audit r;
	uint64_t total = 0, seq;

	for (seq = count(); seq > after; seq--) {
		r = older(count() - seq);
		if (r.uid == uid && strcmp(r.call, call) == 0)
			total += audit_count(r.detail);
	}
	return total;
}

/*
 * Repro: a reader looping on an admin call wrote one synced record (and one
 * syslog line) per refusal: 1,000 refusals, 1,000 records. Now identical
 * refusals (uid, call, status) within [daemon] audit_coalesce share two
 * records, the first at once and one "count=N" record when the interval
 * ends; the counts add up to the refusals exactly.
 */
static void
test_refusals_coalesced(void **state)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__ExcludeRequest ex = CAROTATE__V1__EXCLUDE_REQUEST__INIT;
	Carotate__V1__Request dreq = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__DiscardRequest di = CAROTATE__V1__DISCARD_REQUEST__INIT;
	uint64_t n = count(), seq;
	struct ledger_audit a;
	int i;

	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_EXCLUDE;
	req.exclude = &ex;
	ex.agent = (char *)"a1";
	ex.reason = (char *)"r";
	cd.conf->audit_coalesce = 60;
	for (i = 0; i < 1000; i++)
		refused_as(&req, 5001);
	assert_int_equal(count(), n + 1);
	a = newest();
	assert_int_equal(audit_count(a.detail), 1);
	/* Another uid, and another status of the same uid and call, are their own. */
	refused_as(&req, 5002);
	dreq.version = 1;
	dreq.call_case = CAROTATE__V1__REQUEST__CALL_DISCARD;
	dreq.discard = &di;
	refused_as(&dreq, 5001);
	refuse(&dreq, "discard", 5001, 77, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
	    NOT_STAGED("discard"));
	refused_as(&dreq, 5001);
	assert_int_equal(count(), n + 4);
	/* Shutdown writes what was counted: one record for the 999, one for the discard. */
	audit_flush();
	assert_int_equal(count(), n + 6);
	a = older(1); /* the intervals are closed in the order they opened */
	assert_int_equal(a.uid, 5001);
	assert_int_equal(a.pid, 77);
	assert_string_equal(a.result, "PERMISSION_DENIED");
	assert_int_equal(audit_count(a.detail), 999);
	assert_non_null(strstr(a.detail, "count=999 refusals since record "));
	assert_non_null(strstr(a.detail, "exclude needs the admin role"));
	assert_int_equal(refusals_since(n, 5001, "exclude"), 1000);
	assert_int_equal(refusals_since(n, 5002, "exclude"), 1);
	assert_int_equal(refusals_since(n, 5001, "discard"), 3);
	audit_flush();
	assert_int_equal(count(), n + 6);

	/* The interval's end: a refusal after it closes the count and opens anew. */
	cd.conf->audit_coalesce = 1;
	seq = count();
	for (i = 0; i < 4; i++)
		refused_as(&req, 5001);
	assert_int_equal(count(), seq + 1);
	usleep(1100 * 1000);
	refused_as(&req, 5001);
	assert_int_equal(count(), seq + 3); /* "count=3", then the new interval's first */
	assert_int_equal(refusals_since(seq, 5001, "exclude"), 5);
	audit_flush();
	assert_int_equal(count(), seq + 3);

	/* With an event loop, the timer writes the count when the interval ends. */
	assert_non_null(cd.base = event_base_new());
	seq = count();
	for (i = 0; i < 3; i++)
		refused_as(&req, 5001);
	assert_int_equal(count(), seq + 1);
	event_base_dispatch(cd.base); /* returns once the timer has run: no event left */
	assert_int_equal(count(), seq + 2);
	assert_int_equal(audit_count(newest().detail), 2);
	event_base_free(cd.base);
	cd.base = NULL;
	cd.conf->audit_coalesce = 60;
}

/* Only the daemon's own summary reads as a count: another detail counts one call. */
static void
test_count_parse(void **state)
{
	assert_int_equal(audit_count("count=12 refusals since record 3, the last: x"), 12);
	assert_int_equal(audit_count("count=12"), 1);
	assert_int_equal(audit_count("count=0 refusals since record 3"), 1);
	assert_int_equal(audit_count("count=-1 refusals since record 3"), 1);
	assert_int_equal(audit_count("count=99999999999999999999999 refusals since record 3"), 1);
	assert_int_equal(audit_count("agent=\"count=5 refusals since record 1\""), 1);
	assert_int_equal(audit_count(""), 1);
}

static void
test_chain_intact(void **state)
{
	char problem[512];
	uint64_t at;

	assert_int_equal(ledger_audit_verify(cd.ledger, &at, problem, sizeof(problem)), 1);
	assert_int_equal(count(), 8 + 11 + 4) /* 11: test_refusals_coalesced, 4: test_member_named */;
}

/* Removes a set's directory and the files in it, if it is there. */
static void
rm_set(const char *dir)
{
	char path[640];
	struct dirent *e;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			assert_int_equal(unlink(path), 0);
		}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
}

/* A note as stage_note writes it: the engine's first line, then the open record's. */
static struct audit_call *
noted(pid_t pid, const char *staged, char *note, size_t len)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__GenerateRequest g = CAROTATE__V1__GENERATE_REQUEST__INIT;
	struct acl_peer peer = { .uid = 1000, .pid = pid };
	struct audit_call *ac;

	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_GENERATE;
	req.generate = &g;
	ac = audit_call_start(&cd, "generate", &peer, &req);
	snprintf(note, len, "carotate-stage-pending 1\n");
	assert_int_equal(audit_call_note(ac, staged, note, len), 0);
	return ac;
}

/*
 * A generate killed after it staged its set and before its record was
 * committed (issue 19): the next start records it from its note as the
 * caller's, OK, and audit_adopt then finds nothing changed outside carotated.
 * Sets as the call found them: interrupted, nothing changed. Sets that match
 * neither, or a call whose record is already the newest: nothing.
 */
static void
test_call_settled(void **state)
{
	char note[8192], scratch[320], ca[PKI_SHA256_HEX], fp[LEDGER_AUDIT_MAX_STATE + 1];
	struct audit_call *ac;
	struct ledger_audit a;
	uint64_t n;

	snprintf(scratch, sizeof(scratch), "%s/scratch", fx.ssl);
	rm_set(staging);
	assert_int_equal(mkdir(scratch, 0700), 0);
	fixture_write_set(scratch, "settled", 0, ca, NULL);
	audit_adopt(&cd);
	n = count();

	/* Noted with nothing staged; the set staged; then the stop. */
	ac = noted(4242, ca, note, sizeof(note));
	audit_call_free(ac);
	assert_non_null(strstr(note, "\naudit.expect active="));
	assert_int_equal(rename(scratch, staging), 0);
	assert_int_equal(audit_call_settle(&cd, note), 1);
	assert_int_equal(count(), n + 1);
	a = newest();
	audit_fingerprint(cd.conf, fp, sizeof(fp));
	assert_string_equal(a.call, "generate");
	assert_string_equal(a.result, "OK");
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.pid, 4242);
	assert_string_equal(a.after, fp);
	assert_non_null(strstr(a.detail, "the reply was cut short"));
	audit_adopt(&cd);
	assert_int_equal(count(), n + 1); /* explained: no adopt */
	/* Recorded already (a stop between the record and the note's removal): once. */
	assert_int_equal(audit_call_settle(&cd, note), 0);
	assert_int_equal(count(), n + 1);

	/* Noted to leave nothing staged (as a discard), stopped before: interrupted, the caller's.
	 */
	ac = noted(4243, "-", note, sizeof(note));
	audit_call_free(ac);
	assert_int_equal(audit_call_settle(&cd, note), 1);
	a = newest();
	assert_string_equal(a.result, "UNAVAILABLE");
	assert_int_equal(a.pid, 4243);
	assert_non_null(strstr(a.detail, "nothing changed"));

	/* Neither as found nor as meant: audit_adopt's to judge. */
	ac = noted(4244, ca, note, sizeof(note));
	audit_call_free(ac);
	rm_set(staging);
	assert_int_equal(audit_call_settle(&cd, note), 0);
	assert_int_equal(count(), n + 2);
	audit_adopt(&cd);
	a = newest();
	assert_string_equal(a.call, "adopt");
	/* Not a note at all. */
	assert_int_equal(audit_call_settle(&cd, "garbage\n"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_result_names),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_fingerprint),
		/* In this order: the ledger opens in the first, the others add to its log. */
		cmocka_unit_test(test_held_until_open),
		cmocka_unit_test(test_refusals_recorded),
		cmocka_unit_test(test_chain_read),
		cmocka_unit_test(test_call_recorded),
		cmocka_unit_test(test_member_named),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_refusals_coalesced),
		cmocka_unit_test(test_count_parse),
		cmocka_unit_test(test_chain_intact),
		cmocka_unit_test(test_call_settled),
	};

	return cmocka_run_group_tests_name("audit", tests, group_setup, group_teardown);
}
