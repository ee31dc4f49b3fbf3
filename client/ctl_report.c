/*
 * carotatectl report, exclude, include and forget: how far the agents are, and the calls
 * that change which agents count.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "log.h"
#include "output.h"
#include "valid.h"

struct ctl_report_args {
	const char *active_within;
	struct ctl_page_args page;
	int pending;
	const char *member;
};

#define CTL_REPORT_OPTIONS                                                                         \
	"  --active-within DURATION  count an agent as active if it linked or checked in\n"        \
	"                            within DURATION: digits with an optional s, m, h or d\n"      \
	"                            suffix (bare: seconds), 1s to 36500d (default: the\n"         \
	"                            [agents] active_within of carotated.conf, 7d)\n"              \
	"  --pending                 also list the pending agents (active, not acknowledged),\n"   \
	"                            most recently seen first, one page at a time\n"               \
	"  --limit N                 agents per page, 1 to 10000 (default: 100)\n"                 \
	"  --offset N                pending agents to skip, for the next page (default: 0)\n"     \
	"  --member NAME             a pool: that member's share of the counts (the agents\n"      \
	"                            that last checked in through it); the totals stay the\n"      \
	"                            pool's. Refused (exit 5) for a single proxy\n"                \
	"\n"                                                                                       \
	"Percentages are carotated's, rounded down: 999 of 1000 agents is 99 %, never 100 %.\n"    \
	"With nothing staged, report shows which bundle the active agents hold.\n"

#define CTL_EXCLUDE_OPTIONS                                                                        \
	"  --reason TEXT             why, kept with the agent (required): 1 to 256 printable\n"    \
	"                            ASCII characters\n"                                           \
	"\n"                                                                                       \
	"AGENT is an agent id: 1 to 64 of A-Z a-z 0-9 . _ -. An excluded agent stays listed\n"     \
	"but is no longer counted (a decommissioned machine); include undoes it.\n"

#define CTL_FORGET_OPTIONS                                                                         \
	"  --never-confirmed         forget every agent (not excluded) that linked but never\n"    \
	"                            presented a bundle back, instead of one AGENT\n"              \
	"  --older-than DURATION     with --never-confirmed: only those that linked longer\n"      \
	"                            ago than DURATION: digits with an optional s, m, h or d\n"    \
	"                            suffix (bare: seconds), 1s to 3650d (required)\n"             \
	"\n"                                                                                       \
	"forget deletes agents from the ledger. A link for an id that exists is refused\n"         \
	"(HTTP 409) unless it carries the agent's current token; forget a reinstalled host\n"      \
	"first so that it can link again. Audited.\n"                                              \
	"\n"                                                                                       \
	"exit status: 0 done; 5 not an agent id, no such agent, or a bad DURATION; 1 a\n"          \
	"required option missing; 4 not an admin.\n"

/* forget's own options, checked once all are parsed. */
struct ctl_report_forget_args {
	int never_confirmed;
	const char *older_than;
};

static int ctl_report_forget_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static const Carotate__V1__AgentReply *ctl_report_agent_reply(const Carotate__V1__Response *resp);
static int ctl_report_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_report_fill(
    Carotate__V1__ReportRequest *rr, const struct ctl_report_args *a, struct ctl_error *err);
static int ctl_report_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err);
static int ctl_report_exclude_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_report_agent_id(const char *id, struct ctl_error *err);
static int ctl_report_build_exclude(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_report_build_include(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_report_build_forget(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_report_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static int ctl_report_print_agent(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static int ctl_report_print_forget(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static json_t *ctl_report_holding_json(const Carotate__V1__BundleHolding *h);
static void ctl_report_ago(uint64_t s, char *buf, size_t len);
static void ctl_report_counts_human(FILE *fp, const Carotate__V1__ReportReply *r);
static json_t *ctl_report_members_json(const Carotate__V1__ReportReply *r);
static void ctl_report_members_human(FILE *fp, const Carotate__V1__ReportReply *r);
static void ctl_report_pending_human(
    FILE *fp, const Carotate__V1__ReportReply *r, uint64_t offset, int64_t now);
static void ctl_report_holdings_human(FILE *fp, const Carotate__V1__ReportReply *r);
static void ctl_report_staged_human(FILE *fp, const Carotate__V1__ReportReply *r);
static void ctl_report_steady_human(FILE *fp, const Carotate__V1__ReportReply *r);

static const struct option ctl_report_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "active-within", required_argument, NULL, CTL_OPT_ACTIVE_WITHIN },
	{ "pending", no_argument, NULL, CTL_OPT_PENDING },
	{ "limit", required_argument, NULL, CTL_OPT_LIMIT },
	{ "offset", required_argument, NULL, CTL_OPT_OFFSET },
	{ "member", required_argument, NULL, CTL_OPT_MEMBER },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_report_exclude_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "reason", required_argument, NULL, CTL_OPT_REASON },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_report_forget_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "never-confirmed", no_argument, NULL, CTL_OPT_NEVER_CONFIRMED },
	{ "older-than", required_argument, NULL, CTL_OPT_OLDER_THAN },
	{ NULL, 0, NULL, 0 },
};

const struct ctl_cmd ctl_report_cmd = {
	.name = "report",
	.args = "[--active-within DURATION] [--pending] [--limit N] [--offset N] [--member NAME]",
	.summary = "how many active agents acknowledged and verified the staged CA",
	.options = CTL_REPORT_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY,
	.build = ctl_report_build,
	.print = ctl_report_print,
};

const struct ctl_cmd ctl_report_exclude_cmd = {
	.name = "exclude",
	.args = "AGENT --reason TEXT",
	.summary = "stop counting an agent (a decommissioned machine); it stays listed",
	.options = CTL_EXCLUDE_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT_EXCLUDE_REPLY,
	.build = ctl_report_build_exclude,
	.print = ctl_report_print_agent,
};

const struct ctl_cmd ctl_report_include_cmd = {
	.name = "include",
	.args = "AGENT",
	.summary = "count an excluded agent again",
	.options = "",
	.result = CAROTATE__V1__RESPONSE__RESULT_INCLUDE_REPLY,
	.build = ctl_report_build_include,
	.print = ctl_report_print_agent,
};

const struct ctl_cmd ctl_report_forget_cmd = {
	.name = "forget",
	.args = "AGENT | --never-confirmed --older-than DURATION",
	.summary = "delete agents from the ledger (a reinstalled host may then link again)",
	.options = CTL_FORGET_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT_FORGET_REPLY,
	.build = ctl_report_build_forget,
	.print = ctl_report_print_forget,
};

static int
ctl_report_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_report_args *a = ctx;

	switch (c) {
	case CTL_OPT_ACTIVE_WITHIN:
		return ctl_args_once(cmd, name, &a->active_within, arg);
	case CTL_OPT_PENDING:
		a->pending = 1;
		return 0;
	case CTL_OPT_MEMBER:
		return ctl_args_once(cmd, name, &a->member, arg);
	default:
		return ctl_args_page_option(cmd, name, c, arg, &a->page);
	}
}

/* Unset fields stay zero: the configured window, a page of 100, from the first agent. */
static int
ctl_report_fill(
    Carotate__V1__ReportRequest *rr, const struct ctl_report_args *a, struct ctl_error *err)
{
	uint64_t v;

	if (a->active_within != NULL &&
	    (ctl_args_duration(a->active_within, "smhd", CTL_MAX_SPAN, &v) != 0 || v == 0))
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--active-within %s: expected a duration from 1s to %dd (digits with an "
		    "optional s, m, h or d suffix)",
		    a->active_within, LIMITS_MAX_DAYS);
	if (a->active_within != NULL)
		rr->active_within = v;
	if (ctl_args_fill_page(&a->page, LIMITS_MAX_REPORT_PAGE, &rr->limit, &rr->offset, err) ==
	    -1)
		return -1;
	rr->pending = a->pending;
	if (a->member != NULL && a->member[0] == '\0')
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--member takes a member's name ([ledger] member of carotated.conf)");
	if (a->member != NULL)
		rr->member = (char *)a->member;
	return 0;
}

/* Usage errors (exit 1) come before wrong values (exit 5). */
static int
ctl_report_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_report_args a = { 0 };
	int first;

	carotate__v1__report_request__init(&r->call.report);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_REPORT;
	r->req.report = &r->call.report;
	first = ctl_args_parse(cmd, opts, argc, argv, ctl_report_longopts, ctl_report_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (ctl_report_fill(&r->call.report, &a, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

static int
ctl_report_exclude_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	if (c == CTL_OPT_REASON)
		return ctl_args_once(cmd, name, (const char **)ctx, arg);
	return ctl_args_usage_error(cmd, "unknown option --%s", name);
}

/* The daemon's allow-list (README: Stage 2), checked here so that a typo fails before the call. */
static int
ctl_report_agent_id(const char *id, struct ctl_error *err)
{
	size_t n = strlen(id);

	if (n > LIMITS_MAX_AGENT_ID)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "invalid agent id: %zu characters long, at most %d", n, LIMITS_MAX_AGENT_ID);
	if (valid_agent_id(id, n))
		return 0;
	return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
	    "invalid agent id \"%s\": expected 1 to %d of A-Z a-z 0-9 . _ -", id,
	    LIMITS_MAX_AGENT_ID);
}

/* Usage errors (a missing AGENT or --reason: exit 1) come before wrong values (exit 5). */
static int
ctl_report_build_exclude(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	const char *reason = NULL;
	int first;

	carotate__v1__exclude_request__init(&r->call.exclude);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_EXCLUDE;
	r->req.exclude = &r->call.exclude;
	first = ctl_args_parse(
	    cmd, opts, argc, argv, ctl_report_exclude_longopts, ctl_report_exclude_option, &reason);
	if (first <= 0)
		return first;
	if ((first = ctl_args_one_operand(cmd, argc, argv, first, "AGENT")) == -1)
		return -1;
	if (reason == NULL)
		return ctl_args_usage_error(cmd, "--reason is required");
	if (ctl_report_agent_id(argv[first], err) == -1 || ctl_args_reason(reason, err) == -1)
		return CTL_BUILD_REFUSED;
	r->call.exclude.agent = argv[first];
	r->call.exclude.reason = (char *)reason;
	return 1;
}

static int
ctl_report_build_include(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	int first;

	carotate__v1__include_request__init(&r->call.include);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_INCLUDE;
	r->req.include = &r->call.include;
	first = ctl_args_parse(cmd, opts, argc, argv, ctl_args_longopts, NULL, NULL);
	if (first <= 0)
		return first;
	if ((first = ctl_args_one_operand(cmd, argc, argv, first, "AGENT")) == -1)
		return -1;
	if (ctl_report_agent_id(argv[first], err) == -1)
		return CTL_BUILD_REFUSED;
	r->call.include.agent = argv[first];
	return 1;
}

static int
ctl_report_forget_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_report_forget_args *a = ctx;

	switch (c) {
	case CTL_OPT_NEVER_CONFIRMED:
		a->never_confirmed = 1;
		return 0;
	case CTL_OPT_OLDER_THAN:
		return ctl_args_once(cmd, name, &a->older_than, arg);
	default:
		return ctl_args_usage_error(cmd, "unknown option --%s", name);
	}
}

static int
ctl_report_build_forget(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_report_forget_args a = { 0 };
	uint64_t secs;
	int first;

	carotate__v1__forget_request__init(&r->call.forget);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_FORGET;
	r->req.forget = &r->call.forget;
	first = ctl_args_parse(
	    cmd, opts, argc, argv, ctl_report_forget_longopts, ctl_report_forget_option, &a);
	if (first <= 0)
		return first;
	if (!a.never_confirmed) {
		if (a.older_than != NULL)
			return ctl_args_usage_error(
			    cmd, "--older-than goes with --never-confirmed");
		if ((first = ctl_args_one_operand(cmd, argc, argv, first, "AGENT")) == -1)
			return -1;
		if (ctl_report_agent_id(argv[first], err) == -1)
			return CTL_BUILD_REFUSED;
		r->call.forget.agent = argv[first];
		return 1;
	}
	if (first < argc)
		return ctl_args_usage_error(cmd, "--never-confirmed takes no AGENT");
	if (a.older_than == NULL)
		return ctl_args_usage_error(cmd, "--never-confirmed needs --older-than DURATION");
	if (ctl_args_duration(a.older_than, "smhd", 3650 * CTL_DAY, &secs) != 0 || secs == 0) {
		ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--older-than: \"%s\" is not a duration from 1s to 3650d", a.older_than);
		return CTL_BUILD_REFUSED;
	}
	r->call.forget.never_confirmed = 1;
	r->call.forget.older_than = secs;
	return 1;
}

/* The page asked for says whether pending agents are listed and from where. */
static int
ctl_report_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	const Carotate__V1__ReportRequest *rr = &r->call.report;
	int ret;

	if (opts->json)
		ret = ctl_report_json(stdout, resp->report_reply, rr->pending);
	else
		ret = ctl_report_human(stdout, resp->report_reply, rr->pending, rr->offset);
	return ctl_conn_finish(ret);
}

static const Carotate__V1__AgentReply *
ctl_report_agent_reply(const Carotate__V1__Response *resp)
{
	switch (resp->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_EXCLUDE_REPLY:
		return resp->exclude_reply;
	case CAROTATE__V1__RESPONSE__RESULT_INCLUDE_REPLY:
		return resp->include_reply;
	default:
		return NULL;
	}
}

static int
ctl_report_print_agent(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	int ret;

	if (opts->json)
		ret = ctl_report_agent_json(stdout, ctl_report_agent_reply(resp));
	else
		ret = ctl_report_agent_human(stdout, ctl_report_agent_reply(resp));
	return ctl_conn_finish(ret);
}

static int
ctl_report_print_forget(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	return ctl_conn_finish(opts->json ? ctl_report_forget_json(stdout, resp->forget_reply)
	                                  : ctl_report_forget_human(stdout, resp->forget_reply));
}

static json_t *
ctl_report_holding_json(const Carotate__V1__BundleHolding *h)
{
	json_t *o = output_jcheck(json_object());
	char *hex = output_hex(h->bundle_id);

	output_jset(o, "bundle_id", output_jstr_opt(hex));
	output_jset(o, "agents", output_jcount(h->agents));
	output_jset(o, "current", json_boolean(h->current));
	free(hex);
	return o;
}

/*
 * The carotatectl(1) keys first; holdings and current only with nothing staged, pending_agents
 * only when asked for. percent is copied, never derived from the counts.
 */
int
ctl_report_json(FILE *fp, const Carotate__V1__ReportReply *r, int pending)
{
	json_t *o = output_jcheck(json_object()), *a;
	int staged = output_s(r->staged_ca)[0] != '\0';
	char *hex;
	size_t i;

	output_jset(o, "now", output_jtime_opt(r->now));
	output_jset(o, "active_within", output_jcount(r->active_within));
	hex = output_hex(r->staged_ca);
	output_jset(o, "staged_ca", output_jstr_opt(hex));
	free(hex);
	hex = output_hex(r->bundle_id);
	output_jset(o, "bundle_id", output_jstr_opt(hex));
	free(hex);
	output_jset(o, "gate", output_jstr_opt(r->gate));
	output_jset(o, "linked", output_jcount(r->linked));
	output_jset(o, "active", output_jcount(r->active));
	output_jset(o, "acknowledged", output_jcount(r->acknowledged));
	output_jset(o, "verified", output_jcount(r->verified));
	output_jset(o, "pending", output_jcount(r->pending));
	output_jset(o, "inactive_lacking", output_jcount(r->inactive_lacking));
	output_jset(o, "excluded", output_jcount(r->excluded));
	output_jset(o, "never_confirmed", output_jcount(r->never_confirmed));
	output_jset(o, "percent", json_integer(r->percent));
	output_jset(o, "percent_verified", json_integer(r->percent_verified));
	output_jset(o, "canary_confirmed", json_boolean(r->canary_confirmed));
	output_jset(o, "canary_check_unset", json_boolean(r->canary_check_unset));
	output_jset(o, "members", ctl_report_members_json(r));
	if (!staged) {
		output_jset(o, "current", output_jcount(r->current));
		a = output_jcheck(json_array());
		for (i = 0; i < r->n_holdings; i++)
			if (json_array_append_new(a, ctl_report_holding_json(r->holdings[i])) != 0)
				fatalx("out of memory building JSON");
		output_jset(o, "holdings", a);
	}
	if (pending) {
		a = output_jcheck(json_array());
		for (i = 0; i < r->n_pending_agents; i++)
			if (json_array_append_new(a, output_pending_json(r->pending_agents[i])) !=
			    0)
				fatalx("out of memory building JSON");
		output_jset(o, "pending_agents", a);
	}
	return output_dump(fp, o);
}

int
ctl_report_agent_json(FILE *fp, const Carotate__V1__AgentReply *r)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "agent", output_jstr(r->agent));
	output_jset(o, "excluded", json_boolean(r->excluded));
	output_jset(o, "reason", output_jstr_opt(r->reason));
	output_jset(o, "last_seen", output_jtime_opt(r->last_seen));
	return output_dump(fp, o);
}

/* How long ago, in its largest unit: "45s", "12m", "3h", "2d". */
static void
ctl_report_ago(uint64_t s, char *buf, size_t len)
{
	if (s == 0)
		snprintf(buf, len, "just now");
	else if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s ago", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m ago", s / 60);
	else if (s < OUTPUT_DAY)
		snprintf(buf, len, "%" PRIu64 "h ago", s / 3600);
	else
		snprintf(buf, len, "%" PRIu64 "d ago", s / OUTPUT_DAY);
}

/* A pool's split: [{member, active, acknowledged, verified, pending}], null for a single proxy. */
static json_t *
ctl_report_members_json(const Carotate__V1__ReportReply *r)
{
	json_t *a, *o;
	size_t i;

	if (r->n_members == 0)
		return json_null();
	a = output_jcheck(json_array());
	for (i = 0; i < r->n_members; i++) {
		const Carotate__V1__MemberCounts *m = r->members[i];

		o = output_jcheck(json_object());
		output_jset(o, "member", output_jstr(m->member));
		output_jset(o, "active", output_jcount(m->active));
		output_jset(o, "acknowledged", output_jcount(m->acknowledged));
		output_jset(o, "verified", output_jcount(m->verified));
		output_jset(o, "pending", output_jcount(m->pending));
		if (json_array_append_new(a, o) != 0)
			output_jcheck(NULL);
	}
	return a;
}

/* "  member a: active 2   acknowledged 1   verified 0   pending 1", one line each. */
static void
ctl_report_members_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	size_t i;

	for (i = 0; i < r->n_members; i++) {
		const Carotate__V1__MemberCounts *m = r->members[i];

		if (output_s(m->member)[0] != '\0') {
			fputs("  member ", fp);
			output_safe(fp, m->member);
		} else
			fputs("  no member recorded", fp);
		fprintf(fp,
		    ": active %" PRIu64 "   acknowledged %" PRIu64 "   verified %" PRIu64
		    "   pending %" PRIu64 "\n",
		    m->active, m->acknowledged, m->verified, m->pending);
	}
}

static void
ctl_report_counts_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	char window[32];

	fprintf(fp,
	    "  linked %" PRIu64 "   active %" PRIu64 "   acknowledged %" PRIu64
	    "   verified %" PRIu64 "   pending %" PRIu64 "   inactive lacking the new CA %" PRIu64
	    "   excluded %" PRIu64 "   never confirmed %" PRIu64 "\n",
	    r->linked, r->active, r->acknowledged, r->verified, r->pending, r->inactive_lacking,
	    r->excluded, r->never_confirmed);
	output_span(r->active_within, window, sizeof(window));
	fprintf(fp, "  active window: %s", window);
	if (output_s(r->gate)[0] != '\0') {
		fputs("   gate: ", fp);
		output_safe(fp, r->gate);
	}
	fputc('\n', fp);
}

/* One page of pending agents; ids padded to the longest of the page (ids are <= 64 bytes). */
static void
ctl_report_pending_human(FILE *fp, const Carotate__V1__ReportReply *r, uint64_t offset, int64_t now)
{
	const Carotate__V1__PendingAgent *a;
	char when[OUTPUT_RFC3339_LEN], ago[32], ago_paren[36];
	size_t i, w = 0;

	if (r->n_pending_agents == 0) {
		fprintf(fp, "pending agents: none");
		if (offset > 0)
			fprintf(fp, " from offset %" PRIu64 " (%" PRIu64 " pending)", offset,
			    r->pending);
		fputc('\n', fp);
		return;
	}
	for (i = 0; i < r->n_pending_agents; i++)
		if (strlen(output_s(r->pending_agents[i]->id)) > w)
			w = strlen(output_s(r->pending_agents[i]->id));
	fprintf(fp, "pending agents (%zu shown from offset %" PRIu64 "):\n", r->n_pending_agents,
	    offset);
	for (i = 0; i < r->n_pending_agents; i++) {
		a = r->pending_agents[i];
		fputs("  ", fp);
		output_safe(fp, a->id);
		fprintf(fp, "%*s    last seen ", (int)(w - strlen(output_s(a->id))), "");
		if (a->last_seen == 0 || output_rfc3339(a->last_seen, when, sizeof(when)) != 0)
			fprintf(fp, "%-31s", "unknown");
		else {
			ctl_report_ago(
			    a->last_seen < now ? (uint64_t)now - (uint64_t)a->last_seen : 0, ago,
			    sizeof(ago));
			snprintf(ago_paren, sizeof(ago_paren), "(%s)", ago);
			fprintf(fp, "%s %-10s", when, ago_paren);
		}
		fprintf(fp, "   bundle delivered: %s\n", a->delivered ? "yes" : "no");
	}
	if (r->pending > offset && r->pending - offset > r->n_pending_agents)
		fprintf(fp, "  (%" PRIu64 " more; --offset %" PRIu64 " shows the next page)\n",
		    r->pending - offset - r->n_pending_agents, offset + r->n_pending_agents);
}

static void
ctl_report_holdings_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	const Carotate__V1__BundleHolding *h;
	size_t i;

	if (r->n_holdings == 0)
		return;
	fputs("bundles held by active agents:\n", fp);
	for (i = 0; i < r->n_holdings; i++) {
		h = r->holdings[i];
		fputs("  ", fp);
		if (output_s(h->bundle_id)[0] != '\0')
			output_abbrev(fp, h->bundle_id, OUTPUT_ABBREV + 1);
		else
			fprintf(fp, "%-*s", OUTPUT_ABBREV + 1, "none confirmed");
		fprintf(fp, "  %" PRIu64 " agent%s%s\n", h->agents, h->agents == 1 ? "" : "s",
		    h->current ? " (current)" : "");
	}
}

/* The percentages are the daemon's: 999 of 1000 is 99 %, and stays 99 here. */
static void
ctl_report_staged_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	fputs("migration to CA ", fp);
	output_abbrev(fp, r->staged_ca, 0);
	fprintf(fp,
	    " (staged): %" PRIu64 " of %" PRIu64 " active agents acknowledged (%" PRIu32
	    " %%), %" PRIu64 " verified (%" PRIu32 " %%)\n",
	    r->acknowledged, r->active, r->percent, r->verified, r->percent_verified);
	if (r->canary_check_unset)
		fputs("  ([proxy] canary_address is not set, so the canary listener is never "
		      "checked: canary check-ins do not count as verified)\n",
		    fp);
	else if (!r->canary_confirmed)
		fputs("  (the canary listener has not been seen serving the staged certificate: "
		      "canary check-ins do not count as verified yet)\n",
		    fp);
	ctl_report_counts_human(fp, r);
}

static void
ctl_report_steady_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	char window[32];

	if (output_s(r->bundle_id)[0] != '\0') {
		fputs("nothing staged; bundle ", fp);
		output_abbrev(fp, r->bundle_id, 0);
		fprintf(fp, ": %" PRIu64 " of %" PRIu64 " active agents hold it\n", r->current,
		    r->active);
	} else
		fprintf(fp, "nothing staged; no bundle served (%" PRIu64 " active agents)\n",
		    r->active);
	output_span(r->active_within, window, sizeof(window));
	fprintf(fp,
	    "  linked %" PRIu64 "   active %" PRIu64 "   excluded %" PRIu64
	    "   never confirmed %" PRIu64 "\n  active window: %s\n",
	    r->linked, r->active, r->excluded, r->never_confirmed, window);
	ctl_report_holdings_human(fp, r);
}

int
ctl_report_human(FILE *fp, const Carotate__V1__ReportReply *r, int pending, uint64_t offset)
{
	int64_t now = r->now != 0 ? r->now : (int64_t)time(NULL);

	if (output_s(r->staged_ca)[0] != '\0')
		ctl_report_staged_human(fp, r);
	else
		ctl_report_steady_human(fp, r);
	ctl_report_members_human(fp, r);
	if (pending && output_s(r->staged_ca)[0] == '\0' && r->n_pending_agents == 0)
		fputs("pending agents: none (nothing is staged)\n", fp);
	else if (pending)
		ctl_report_pending_human(fp, r, offset, now);
	return ferror(fp) ? -1 : 0;
}

int
ctl_report_agent_human(FILE *fp, const Carotate__V1__AgentReply *r)
{
	if (!r->excluded) {
		fputs("included ", fp);
		output_safe(fp, r->agent);
		fputs(" again\n", fp);
		return ferror(fp) ? -1 : 0;
	}
	fputs("excluded ", fp);
	output_safe(fp, r->agent);
	if (output_s(r->reason)[0] != '\0') {
		fputs(" (reason: ", fp);
		output_safe(fp, r->reason);
		fputc(')', fp);
	}
	fputs("; it is listed but no longer counted\n", fp);
	return ferror(fp) ? -1 : 0;
}

int
ctl_report_forget_human(FILE *fp, const Carotate__V1__ForgetReply *r)
{
	if (output_s(r->agent)[0] != '\0') {
		fputs("forgot agent ", fp);
		output_safe(fp, r->agent);
		fputs("; it may link again\n", fp);
	} else
		fprintf(fp, "forgot %" PRIu64 " agent(s) that never confirmed a bundle\n",
		    r->forgotten);
	return ferror(fp) ? -1 : 0;
}

int
ctl_report_forget_json(FILE *fp, const Carotate__V1__ForgetReply *r)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "forgotten", output_jcount(r->forgotten));
	output_jset(o, "agent", output_jstr_opt(r->agent));
	return output_dump(fp, o);
}
