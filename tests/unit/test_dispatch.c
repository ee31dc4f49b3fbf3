/*
 * The dispatch table: every call x role x phase gives the answer an operator
 * expects, and no handler runs unless the role and phase allow it. The audit
 * hook: every admin entry is recorded, refused (role, phase, busy) or run,
 * with nothing but its table entry; a reader's call never is (the records
 * themselves are test_audit's).
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "audit.h"
#include "carotated.h"
#include "config.h"
#include "dispatch.h"
#include "fixture.h"
#include "ledger.h"
#include "log.h"
#include "reply.h"
#include "xmalloc.h"

static char ssl_dir[] = "/tmp/carotate-test-dispatch-XXXXXX";
static struct config conf;
static struct carotated cd;
/* The audit hook's group: a scratch state with a ledger in cd, the table's own config aside. */
static struct fixture fx;
static char staging[320];

static int
setup(void **state)
{
	if (mkdtemp(ssl_dir) == NULL)
		return -1;
	conf.ssl_dir = ssl_dir;
	conf.ssl_ca = (char *)"ca.crt";
	conf.ssl_cert = (char *)"server.crt";
	conf.ssl_key = (char *)"server.key";
	conf.state_dir = ssl_dir; /* nothing retained there: the bundle is the active CA's */
	cd.conf = &conf;
	return 0;
}

static int
teardown(void **state)
{
	return rmdir(ssl_dir);
}

/*
 * Checks one request against the daemon's table; returns the refusal's
 * status, or OK when the call would run. Only status, which changes nothing,
 * is then run for real.
 */
static Carotate__V1__Status
run(Carotate__V1__Request__CallCase call, enum acl_role role, Carotate__V1__Phase phase,
    char **message)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__StatusRequest body = CAROTATE__V1__STATUS_REQUEST__INIT;
	struct acl_peer peer = { .uid = 1234, .pid = 1 };
	struct rpc_ctx ctx = { .cd = &cd, .peer = &peer, .role = role, .phase = phase };
	Carotate__V1__Response *reply = reply_new();
	Carotate__V1__Status status;

	req.version = 1;
	req.call_case = call;
	/* Every call's body is an empty message today; any of them encodes the same way. */
	req.status = &body;
	if (dispatch_check_request(&ctx, &req, reply) != NULL &&
	    call == CAROTATE__V1__REQUEST__CALL_STATUS)
		dispatch_request(&ctx, &req, reply);
	status = reply->status;
	if (message != NULL)
		*message = strdup(reply->message);
	if (status == CAROTATE__V1__STATUS__OK && call == CAROTATE__V1__REQUEST__CALL_STATUS) {
		assert_int_equal(reply->result_case, CAROTATE__V1__RESPONSE__RESULT_STATUS_REPLY);
		assert_string_equal(reply->status_reply->ssl_dir, ssl_dir);
		assert_null(reply->status_reply->active);
	}
	reply_free(reply);
	return status;
}

/* The expected matrix, written out by hand rather than derived from the table. */
static Carotate__V1__Status
expected(Carotate__V1__Request__CallCase call, enum acl_role role, Carotate__V1__Phase phase)
{
	int staged = phase == CAROTATE__V1__PHASE__PHASE_STAGED;

	switch (call) {
	case CAROTATE__V1__REQUEST__CALL_STATUS:
		return role >= ACL_READER ? CAROTATE__V1__STATUS__OK
		                          : CAROTATE__V1__STATUS__PERMISSION_DENIED;
	case CAROTATE__V1__REQUEST__CALL_GENERATE:
	case CAROTATE__V1__REQUEST__CALL_INSTALL:
		/* Staging needs the admin role and nothing staged yet. */
		if (role < ACL_ADMIN)
			return CAROTATE__V1__STATUS__PERMISSION_DENIED;
		return staged ? CAROTATE__V1__STATUS__FAILED_PRECONDITION
		              : CAROTATE__V1__STATUS__OK;
	case CAROTATE__V1__REQUEST__CALL_REPORT:
	case CAROTATE__V1__REQUEST__CALL_AUDIT:
		/* The audit log is for readers too: who changed what is no secret in the group. */
	case CAROTATE__V1__REQUEST__CALL_LIST_BACKUPS:
		/* Monitoring needs no more than a reader: a Nagios user in the socket group. */
	case CAROTATE__V1__REQUEST__CALL_CHECK:
		return role >= ACL_READER ? CAROTATE__V1__STATUS__OK
		                          : CAROTATE__V1__STATUS__PERMISSION_DENIED;
	case CAROTATE__V1__REQUEST__CALL_EXCLUDE:
	case CAROTATE__V1__REQUEST__CALL_INCLUDE:
	case CAROTATE__V1__REQUEST__CALL_FORGET:
		/* Join tokens are enrolment secrets: even their list is for admins. */
	case CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_CREATE:
	case CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_LIST:
	case CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_REVOKE:
		return role >= ACL_ADMIN ? CAROTATE__V1__STATUS__OK
		                         : CAROTATE__V1__STATUS__PERMISSION_DENIED;
	case CAROTATE__V1__REQUEST__CALL_RESTORE:
		/* Any phase: a restore only touches the active set. */
		return role >= ACL_ADMIN ? CAROTATE__V1__STATUS__OK
		                         : CAROTATE__V1__STATUS__PERMISSION_DENIED;
	case CAROTATE__V1__REQUEST__CALL_ROTATE:
	case CAROTATE__V1__REQUEST__CALL_DISCARD:
		if (role < ACL_ADMIN)
			return CAROTATE__V1__STATUS__PERMISSION_DENIED;
		return staged ? CAROTATE__V1__STATUS__OK
		              : CAROTATE__V1__STATUS__FAILED_PRECONDITION;
	case CAROTATE__V1__REQUEST__CALL_RENEW:
		/* Steady only, as retire: a new leaf under the active CA, never beside a staged
		 * one. */
	case CAROTATE__V1__REQUEST__CALL_RETIRE:
		/* Steady only (carotated(8) ROTATION): mid-migration the bundle must not shrink
		 * under the agents. */
		if (role < ACL_ADMIN)
			return CAROTATE__V1__STATUS__PERMISSION_DENIED;
		return staged ? CAROTATE__V1__STATUS__FAILED_PRECONDITION
		              : CAROTATE__V1__STATUS__OK;
	default:
		/* Not implemented by this daemon: refused whoever asks. */
		return CAROTATE__V1__STATUS__INVALID_ARGUMENT;
	}
}

static void
test_matrix(void **state)
{
	const ProtobufCMessageDescriptor *d = &carotate__v1__request__descriptor;
	static const enum acl_role roles[] = { ACL_NONE, ACL_READER, ACL_ADMIN };
	static const Carotate__V1__Phase phases[] = { CAROTATE__V1__PHASE__PHASE_STEADY,
		CAROTATE__V1__PHASE__PHASE_STAGED };
	unsigned i, r, p, calls = 0;

	for (i = 0; i < d->n_fields; i++) {
		Carotate__V1__Request__CallCase call = d->fields[i].id;

		if (d->fields[i].id == 1) /* version */
			continue;
		calls++;
		for (r = 0; r < 3; r++)
			for (p = 0; p < 2; p++)
				assert_int_equal(run(call, roles[r], phases[p], NULL),
				    expected(call, roles[r], phases[p]));
	}
	assert_int_equal(calls, 18); /* every call of the protocol */
}

static void
test_messages(void **state)
{
	char *msg;

	assert_int_equal(run(CAROTATE__V1__REQUEST__CALL_STATUS, ACL_NONE,
	                     CAROTATE__V1__PHASE__PHASE_STEADY, &msg),
	    CAROTATE__V1__STATUS__PERMISSION_DENIED);
	assert_non_null(strstr(msg, "status needs the reader role"));
	free(msg);
	assert_int_equal(run(CAROTATE__V1__REQUEST__CALL__NOT_SET, ACL_ADMIN,
	                     CAROTATE__V1__PHASE__PHASE_STEADY, &msg),
	    CAROTATE__V1__STATUS__INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "no call"));
	free(msg);
	/* A call this daemon does not know (a later protocol revision's). */
	assert_int_equal(run(99, ACL_ADMIN, CAROTATE__V1__PHASE__PHASE_STEADY, &msg),
	    CAROTATE__V1__STATUS__INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "not supported"));
	free(msg);
}

static int handler_calls;

static void
count_handler(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	handler_calls++;
}

/* Role and phase checks come before the handler: a refused call never reaches it. */
static void
test_checks_before_handler(void **state)
{
	static const struct dispatch_entry table[] = {
		{ CAROTATE__V1__REQUEST__CALL_ROTATE, "rotate", ACL_ADMIN, DISPATCH_STAGED,
		    count_handler, DISPATCH_EXCLUSIVE },
	};
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	struct rpc_ctx ctx = { .cd = &cd };
	static const struct {
		enum acl_role role;
		Carotate__V1__Phase phase;
		Carotate__V1__Status want;
		int runs;
	} cases[] = {
		{ ACL_NONE, CAROTATE__V1__PHASE__PHASE_STAGED,
		    CAROTATE__V1__STATUS__PERMISSION_DENIED, 0 },
		{ ACL_READER, CAROTATE__V1__PHASE__PHASE_STAGED,
		    CAROTATE__V1__STATUS__PERMISSION_DENIED, 0 },
		{ ACL_ADMIN, CAROTATE__V1__PHASE__PHASE_STEADY,
		    CAROTATE__V1__STATUS__FAILED_PRECONDITION, 0 },
		{ ACL_ADMIN, CAROTATE__V1__PHASE__PHASE_STAGED, CAROTATE__V1__STATUS__OK, 1 },
	};
	size_t i;

	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Carotate__V1__Response *reply = reply_new();

		handler_calls = 0;
		ctx.role = cases[i].role;
		ctx.phase = cases[i].phase;
		dispatch_run(table, 1, &ctx, &req, reply);
		assert_int_equal(reply->status, cases[i].want);
		assert_int_equal(handler_calls, cases[i].runs);
		if (cases[i].want == CAROTATE__V1__STATUS__FAILED_PRECONDITION)
			assert_non_null(strstr(reply->message, "nothing is staged"));
		reply_free(reply);
	}
	/* The exclusive call ran and answered at once: the next one may start. */
	assert_null(cd.busy);

	/* While another state change is in progress, an exclusive call is refused unrun. */
	{
		Carotate__V1__Response *reply = reply_new();

		cd.busy = "generate";
		handler_calls = 0;
		ctx.role = ACL_ADMIN;
		ctx.phase = CAROTATE__V1__PHASE__PHASE_STAGED;
		dispatch_run(table, 1, &ctx, &req, reply);
		assert_int_equal(reply->status, CAROTATE__V1__STATUS__UNAVAILABLE);
		assert_non_null(strstr(reply->message, "generate is in progress"));
		assert_int_equal(handler_calls, 0);
		cd.busy = NULL;
		reply_free(reply);
	}
}

/*
 * The SSL directory cannot be read, so the phase is unknown: a call that
 * depends on it is refused with the reason, never with a guess ("nothing is
 * staged"); a call that does not still runs.
 */
static void
test_phase_unknown(void **state)
{
	static const struct dispatch_entry table[] = {
		{ CAROTATE__V1__REQUEST__CALL_ROTATE, "rotate", ACL_ADMIN, DISPATCH_STAGED,
		    count_handler, DISPATCH_EXCLUSIVE },
		{ CAROTATE__V1__REQUEST__CALL_RESTORE, "restore", ACL_ADMIN, DISPATCH_ANY_PHASE,
		    count_handler, DISPATCH_EXCLUSIVE },
	};
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	struct rpc_ctx ctx = { .cd = &cd, .role = ACL_ADMIN, .phase_errno = EIO };
	Carotate__V1__Response *reply = reply_new();

	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	handler_calls = 0;
	dispatch_run(table, 2, &ctx, &req, reply);
	assert_int_equal(reply->status, CAROTATE__V1__STATUS__INTERNAL);
	assert_non_null(strstr(reply->message, "cannot read the SSL directory"));
	assert_non_null(strstr(reply->message, strerror(EIO)));
	assert_int_equal(handler_calls, 0);
	reply_free(reply);

	reply = reply_new();
	req.call_case = CAROTATE__V1__REQUEST__CALL_RESTORE;
	dispatch_run(table, 2, &ctx, &req, reply);
	assert_int_equal(reply->status, CAROTATE__V1__STATUS__OK);
	assert_int_equal(handler_calls, 1);
	reply_free(reply);
}

/* ---- the audit hook, with a real ledger ---- */

static int
hook_setup(void **state)
{
	char err[512];

	log_init(1, 0, "test_dispatch");
	if (fixture_init(&fx, "/tmp", "dispatch", &cd.conf) == -1)
		return -1;
	snprintf(staging, sizeof(staging), "%s/new", fx.ssl);
	if ((cd.ledger = ledger_open(cd.conf->state_dir, err, sizeof(err))) == NULL) {
		print_error("ledger_open: %s\n", err);
		return -1;
	}
	return 0;
}

static int
hook_teardown(void **state)
{
	audit_flush();
	ledger_close(cd.ledger);
	cd.ledger = NULL;
	config_free(cd.conf);
	cd.conf = &conf;
	return fixture_remove(&fx);
}

static struct ledger_audit
newest(void)
{
	return fixture_audit_at(cd.ledger, 0);
}

static uint64_t
count(void)
{
	return fixture_audit_count(cd.ledger);
}

/* Runs req through the daemon's own table as role in phase, from uid getuid() pid 4242. */
static Carotate__V1__Status
call(const Carotate__V1__Request *req, enum acl_role role, Carotate__V1__Phase phase)
{
	struct acl_peer peer = { .uid = getuid(), .pid = 4242 };
	struct rpc_ctx ctx = { .cd = &cd, .peer = &peer, .role = role, .phase = phase };
	Carotate__V1__Response *reply = reply_new();
	Carotate__V1__Status st;

	dispatch_request(&ctx, req, reply);
	assert_null(ctx.audit);
	st = reply->status;
	reply_free(reply);
	return st;
}

/* Refusals of admin calls are recorded: role, phase, another call in progress. */
static void
test_hook_refusals(void **state)
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
	assert_int_equal(call(&req, ACL_READER, CAROTATE__V1__PHASE__PHASE_STEADY),
	    CAROTATE__V1__STATUS__PERMISSION_DENIED);
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
	assert_int_equal(call(&req, ACL_ADMIN, CAROTATE__V1__PHASE__PHASE_STEADY),
	    CAROTATE__V1__STATUS__FAILED_PRECONDITION);
	a = newest();
	assert_string_equal(a.call, "discard");
	assert_string_equal(a.result, "FAILED_PRECONDITION");
	assert_string_equal(a.detail, "discard: nothing is staged");

	req.call_case = CAROTATE__V1__REQUEST__CALL_GENERATE;
	req.generate = &g;
	cd.busy = "rotate";
	assert_int_equal(call(&req, ACL_ADMIN, CAROTATE__V1__PHASE__PHASE_STEADY),
	    CAROTATE__V1__STATUS__UNAVAILABLE);
	cd.busy = NULL;
	a = newest();
	assert_string_equal(a.call, "generate");
	assert_string_equal(a.result, "UNAVAILABLE");
	assert_non_null(strstr(a.detail, "rotate is in progress"));
	assert_int_equal(count(), n + 3);
}

/* Reader calls change nothing and are not recorded; audit itself answers readers. */
static void
test_hook_reads(void **state)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__StatusRequest st = CAROTATE__V1__STATUS_REQUEST__INIT;
	Carotate__V1__AuditRequest au = CAROTATE__V1__AUDIT_REQUEST__INIT;
	struct acl_peer peer = { .uid = getuid(), .pid = 1 };
	struct rpc_ctx ctx = { .cd = &cd, .peer = &peer, .role = ACL_READER };
	Carotate__V1__Response *reply;
	uint64_t n = count();

	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	assert_int_equal(
	    call(&req, ACL_READER, CAROTATE__V1__PHASE__PHASE_STEADY), CAROTATE__V1__STATUS__OK);
	req.call_case = CAROTATE__V1__REQUEST__CALL_AUDIT;
	req.audit = &au;
	au.limit = 2;
	au.verify = 1;
	reply = reply_new();
	dispatch_request(&ctx, &req, reply);
	assert_int_equal(reply->status, CAROTATE__V1__STATUS__OK);
	assert_int_equal(reply->result_case, CAROTATE__V1__RESPONSE__RESULT_AUDIT_REPLY);
	assert_int_equal(reply->audit_reply->total, n);
	assert_int_equal(reply->audit_reply->n_records, 2);
	assert_int_equal(reply->audit_reply->records[0]->seq, n);
	assert_int_equal(reply->audit_reply->records[1]->seq, n - 1);
	assert_string_equal(
	    reply->audit_reply->records[0]->prev_hash, reply->audit_reply->records[1]->hash);
	assert_true(reply->audit_reply->verify);
	assert_true(reply->audit_reply->intact);
	assert_int_equal(reply->audit_reply->broken_at, 0);
	reply_free(reply);

	au.limit = 1001;
	reply = reply_new();
	dispatch_request(&ctx, &req, reply);
	assert_int_equal(reply->status, CAROTATE__V1__STATUS__INVALID_ARGUMENT);
	reply_free(reply);
	assert_int_equal(count(), n);
}

/* A test handler: stages a set, answers OK with a message and a rotate-like result. */
static void
stage_handler(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	Carotate__V1__RotateReply *r = xmalloc(sizeof(*r));

	assert_int_equal(mkdir(staging, 0700), 0);
	fixture_write_set(staging, "dispatch-test", 0, NULL, NULL);
	carotate__v1__rotate_reply__init(r);
	r->backup = xstrdup("certs-20260101-000000");
	r->verified = 1;
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY;
	reply->rotate_reply = r;
	reply_error(reply, CAROTATE__V1__STATUS__OK, "done by the test");
}

static void
noop_handler(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
}

/* A new admin entry is audited with nothing but its table entry; a reader entry is not. */
static void
test_hook_new_admin_entry(void **state)
{
	static const struct dispatch_entry table[] = {
		{ CAROTATE__V1__REQUEST__CALL_ROTATE, "rotate", ACL_ADMIN, DISPATCH_ANY_PHASE,
		    stage_handler, DISPATCH_EXCLUSIVE },
		{ CAROTATE__V1__REQUEST__CALL_LIST_BACKUPS, "backups", ACL_READER,
		    DISPATCH_ANY_PHASE, noop_handler, 0 },
	};
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__RotateRequest ro = CAROTATE__V1__ROTATE_REQUEST__INIT;
	Carotate__V1__ListBackupsRequest lb = CAROTATE__V1__LIST_BACKUPS_REQUEST__INIT;
	struct acl_peer peer = { .uid = 0, .pid = 77 };
	struct rpc_ctx ctx = { .cd = &cd, .peer = &peer, .role = ACL_ADMIN };
	char before[LEDGER_AUDIT_MAX_STATE + 1], after[LEDGER_AUDIT_MAX_STATE + 1];
	Carotate__V1__Response *reply = reply_new();
	struct ledger_audit a;
	uint64_t n = count();

	audit_fingerprint(cd.conf, before, sizeof(before));
	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	req.rotate = &ro;
	ro.force = 1;
	ro.reason = (char *)"drill";
	dispatch_run(table, 2, &ctx, &req, reply);
	assert_int_equal(reply->status, CAROTATE__V1__STATUS__OK);
	assert_null(ctx.audit);
	reply_free(reply);
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

	req.call_case = CAROTATE__V1__REQUEST__CALL_LIST_BACKUPS;
	req.list_backups = &lb;
	reply = reply_new();
	dispatch_run(table, 2, &ctx, &req, reply);
	reply_free(reply);
	assert_int_equal(count(), n + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_checks_before_handler),
		cmocka_unit_test(test_phase_unknown),
	};
	/* In this order: test_hook_reads reads the records test_hook_refusals wrote. */
	const struct CMUnitTest hook[] = {
		cmocka_unit_test(test_hook_refusals),
		cmocka_unit_test(test_hook_reads),
		cmocka_unit_test(test_hook_new_admin_entry),
	};
	int failed = cmocka_run_group_tests_name("dispatch", tests, setup, teardown);

	return failed +
	       cmocka_run_group_tests_name("dispatch audit hook", hook, hook_setup, hook_teardown);
}
