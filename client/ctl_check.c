/*
 * carotatectl check: a monitoring plugin (Nagios, Icinga, Sensu). The daemon reports facts;
 * this file judges them against the thresholds and prints one line, or one JSON object. Its
 * exit codes are the plugin's, not carotatectl's: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (an
 * unreachable daemon, a refusal, a bad reply or a usage error included).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "output.h"
#include "status.h"
#include "wire.h"

#define CTL_CHECK_OPTIONS                                                                          \
	"  --warn DURATION           WARNING when the server certificate expires within\n"         \
	"                            DURATION (default: 30d)\n"                                    \
	"  --critical DURATION       CRITICAL when it expires within DURATION (default: 7d);\n"    \
	"                            at most --warn (given alone, either one moves the\n"          \
	"                            other's default out of its way)\n"                            \
	"\n"                                                                                       \
	"DURATION: digits with an optional s, m, h or d suffix (bare: seconds), up to 36500d.\n"   \
	"The CA is judged against [renew] ca_warn (WARNING, default 180d) and 30d (CRITICAL);\n"   \
	"a staged set whose acknowledged percentage has not moved for [agents] active_within,\n"   \
	"or whose canary listener is not yet confirmed, and the last rotate or restore rolled\n"   \
	"back, are WARNING; a damaged or unreadable ledger and a swap left unverified are "        \
	"CRITICAL.\n"                                                                              \
	"\n"                                                                                       \
	"Prints one line, CAROTATE <STATE> - <summary> | <perfdata>, perfdata labels\n"            \
	"server_days, ca_days and (when a set is staged) acked_pct.\n"                             \
	"Exit status (monitoring plugin conventions, NOT carotatectl's usual codes): 0 OK,\n"      \
	"1 WARNING, 2 CRITICAL, 3 UNKNOWN (daemon unreachable, permission denied, a bad reply,\n"  \
	"a usage error).\n"

static int ctl_check_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err);
static int ctl_check_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_check_run(
    const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r);
static int ctl_check_unknown(const struct ctl_opts *opts, const struct ctl_error *err);
static void ctl_check_add(struct ctl_check_result *res, enum ctl_check_state state,
    const char *name, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void ctl_check_expiry(struct ctl_check_result *res, const char *name, const char *what,
    const Carotate__V1__CertInfo *c, int64_t now, uint64_t warn, uint64_t critical,
    const char *advice);
static void ctl_check_migration(struct ctl_check_result *res, const Carotate__V1__CheckReply *r);
static void ctl_check_swap(struct ctl_check_result *res, const Carotate__V1__CheckReply *r);
static void ctl_check_summary(struct ctl_check_result *res);
static void ctl_check_perfdata(struct ctl_check_result *res);

static const struct option ctl_check_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "warn", required_argument, NULL, CTL_OPT_WARN },
	{ "critical", required_argument, NULL, CTL_OPT_CRITICAL },
	{ NULL, 0, NULL, 0 },
};

const struct ctl_cmd ctl_check_cmd = {
	.name = "check",
	.args = "[--warn DURATION] [--critical DURATION]",
	.summary = "monitoring plugin: OK, WARNING, CRITICAL or UNKNOWN, with perfdata",
	.options = CTL_CHECK_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT_CHECK_REPLY,
	.build = ctl_check_build,
	.run = ctl_check_run,
	.usage_exit = CTL_CHECK_UNKNOWN,
};

/* The options as given, checked once all are read. */
struct ctl_check_args {
	const char *warn, *critical;
};

static int
ctl_check_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_check_args *a = ctx;

	return ctl_args_once(cmd, name, c == CTL_OPT_WARN ? &a->warn : &a->critical, arg);
}

/* Every wrong option is a usage error: exit 3 (UNKNOWN), the plugin convention. */
static int
ctl_check_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_check_args a = { 0 };
	int first;

	carotate__v1__check_request__init(&r->call.check);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_CHECK;
	r->req.check = &r->call.check;
	r->check_warn = CTL_CHECK_WARN_DEFAULT;
	r->check_critical = CTL_CHECK_CRITICAL_DEFAULT;
	first = ctl_args_parse(cmd, opts, argc, argv, ctl_check_longopts, ctl_check_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (a.warn != NULL && ctl_args_duration(a.warn, "smhd", CTL_MAX_SPAN, &r->check_warn) != 0)
		return ctl_args_usage_error(cmd, "--warn: not a duration up to 36500d: %s", a.warn);
	if (a.critical != NULL &&
	    ctl_args_duration(a.critical, "smhd", CTL_MAX_SPAN, &r->check_critical) != 0)
		return ctl_args_usage_error(
		    cmd, "--critical: not a duration up to 36500d: %s", a.critical);
	/* One threshold given alone moves the other's default out of its way. */
	if (a.critical == NULL && r->check_critical > r->check_warn)
		r->check_critical = r->check_warn;
	if (a.warn == NULL && r->check_warn < r->check_critical)
		r->check_warn = r->check_critical;
	if (r->check_warn < r->check_critical)
		return ctl_args_usage_error(cmd, "--warn must be at least --critical");
	return 1;
}

/* Any failure to get the facts is UNKNOWN, on stdout as a plugin line (and stderr). */
static int
ctl_check_unknown(const struct ctl_opts *opts, const struct ctl_error *err)
{
	struct ctl_check_result res;

	memset(&res, 0, sizeof(res));
	ctl_check_add(
	    &res, CTL_CHECK_UNKNOWN, "daemon", "%s: %s", status_name(err->status), err->message);
	ctl_check_summary(&res);
	fputs(CTL_NAME ": check: ", stderr);
	output_safe(stderr, err->message);
	fputc('\n', stderr);
	if (opts->json)
		ctl_check_json(stdout, &res);
	else
		ctl_check_human(stdout, &res);
	fflush(stdout);
	return CTL_CHECK_UNKNOWN;
}

static int
ctl_check_run(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r)
{
	struct ctl_check_result res;
	struct wire_budget budget;
	struct ctl_error err;
	Carotate__V1__Response *resp;
	int ret;

	if ((resp = ctl_conn_call(cmd, opts, r, &budget, &err)) == NULL)
		return ctl_check_unknown(opts, &err);
	ctl_check_judge(resp->check_reply, r->check_warn, r->check_critical, &res);
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	ret = opts->json ? ctl_check_json(stdout, &res) : ctl_check_human(stdout, &res);
	if (ctl_conn_finish(ret) != EXIT_DONE)
		return CTL_CHECK_UNKNOWN;
	return (int)res.state;
}

const char *
ctl_check_state_name(enum ctl_check_state s)
{
	switch (s) {
	case CTL_CHECK_OK:
		return "OK";
	case CTL_CHECK_WARNING:
		return "WARNING";
	case CTL_CHECK_CRITICAL:
		return "CRITICAL";
	default:
		return "UNKNOWN";
	}
}

/* A finding that is not OK; the worst one decides the state. */
static void
ctl_check_add(struct ctl_check_result *res, enum ctl_check_state state, const char *name,
    const char *fmt, ...)
{
	struct ctl_check_finding *f;
	va_list ap;

	if (state > res->state)
		res->state = state;
	if (res->n_findings >= CTL_CHECK_MAX_FINDINGS)
		return;
	f = &res->findings[res->n_findings++];
	f->state = state;
	f->name = name;
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

/* A certificate's days left against its thresholds; absent is CRITICAL. */
static void
ctl_check_expiry(struct ctl_check_result *res, const char *name, const char *what,
    const Carotate__V1__CertInfo *c, int64_t now, uint64_t warn, uint64_t critical,
    const char *advice)
{
	char when[OUTPUT_RFC3339_LEN] = "?";
	int64_t left;
	double days;

	if (c == NULL) {
		ctl_check_add(res, CTL_CHECK_CRITICAL, name, "no active %s", what);
		return;
	}
	left = c->not_after - now;
	days = (double)left / CTL_DAY;
	output_rfc3339(c->not_after, when, sizeof(when));
	if (left <= 0)
		ctl_check_add(res, CTL_CHECK_CRITICAL, name, "%s expired %s", what, when);
	else if ((uint64_t)left <= critical)
		ctl_check_add(res, CTL_CHECK_CRITICAL, name, "%s expires in %.1f days (%s)%s", what,
		    days, when, advice);
	else if ((uint64_t)left <= warn)
		ctl_check_add(res, CTL_CHECK_WARNING, name, "%s expires in %.1f days (%s)%s", what,
		    days, when, advice);
}

/* A staged set whose percentage stopped moving, or whose canary is not confirmed. */
static void
ctl_check_migration(struct ctl_check_result *res, const Carotate__V1__CheckReply *r)
{
	char span[64], window[64];
	int64_t still;

	if (!r->staged)
		return;
	still = r->percent_since != 0 && r->now > r->percent_since ? r->now - r->percent_since : 0;
	if (r->percent < 100 && r->active_within != 0 && (uint64_t)still >= r->active_within) {
		output_duration((uint64_t)still, span, sizeof(span));
		output_span(r->active_within, window, sizeof(window));
		ctl_check_add(res, CTL_CHECK_WARNING, "migration",
		    "staged migration stuck at %" PRIu32 " %% acknowledged (%" PRIu64 " of %" PRIu64
		    " active agents) for %s, [agents] active_within %s",
		    r->percent, r->acknowledged, r->active, span, window);
	}
	if (!r->canary_confirmed && !r->canary_check_unset)
		ctl_check_add(res, CTL_CHECK_WARNING, "canary",
		    "canary listener not confirmed serving the staged certificate");
}

/*
 * The last rotate, restore or renew: rolled back is WARNING (the proxy serves the previous,
 * checked set, but the change did not happen); neither verified nor rolled back is CRITICAL
 * (nobody saw what the proxy serves).
 */
static void
ctl_check_swap(struct ctl_check_result *res, const Carotate__V1__CheckReply *r)
{
	const Carotate__V1__CheckSwap *s = r->last_swap;
	char when[OUTPUT_RFC3339_LEN] = "?";

	if (s == NULL)
		return;
	output_rfc3339(s->time, when, sizeof(when));
	if (s->rolled_back)
		ctl_check_add(res, CTL_CHECK_WARNING, "last_swap",
		    "last %s (%s, audit record %" PRIu64 ") was rolled back", output_s(s->call),
		    when, s->seq);
	else if (!s->verified)
		ctl_check_add(res, CTL_CHECK_CRITICAL, "last_swap",
		    "last %s (%s, audit record %" PRIu64 ") was not verified: %s",
		    output_s(s->call), when, s->seq, output_s(s->result));
}

/* The findings joined, or what is fine when there are none. */
static void
ctl_check_summary(struct ctl_check_result *res)
{
	size_t i, n = 0;
	int w;

	res->summary[0] = '\0';
	for (i = 0; i < res->n_findings; i++) {
		w = snprintf(res->summary + n, sizeof(res->summary) - n, "%s%s", i > 0 ? "; " : "",
		    res->findings[i].text);
		if (w < 0 || (size_t)w >= sizeof(res->summary) - n)
			break;
		n += (size_t)w;
	}
	if (res->n_findings > 0)
		return;
	snprintf(res->summary, sizeof(res->summary),
	    "server certificate expires in %.1f days, CA in %.1f days%s", res->server_days,
	    res->ca_days, res->staged ? ", migration moving" : ", nothing staged");
}

/* label=value[UOM];warn;crit;min;max, thresholds in the value's unit. */
static void
ctl_check_perfdata(struct ctl_check_result *res)
{
	size_t n = 0;
	int w;

	res->perfdata[0] = '\0';
	if (res->has_server) {
		w = snprintf(res->perfdata, sizeof(res->perfdata), "server_days=%.1f;%.1f;%.1f",
		    res->server_days, (double)res->warn / CTL_DAY, (double)res->critical / CTL_DAY);
		n = w > 0 ? (size_t)w : 0;
	}
	if (res->has_ca && n < sizeof(res->perfdata)) {
		w = snprintf(res->perfdata + n, sizeof(res->perfdata) - n,
		    "%sca_days=%.1f;%.1f;%.1f", n > 0 ? " " : "", res->ca_days,
		    (double)res->ca_warn / CTL_DAY, (double)res->ca_critical / CTL_DAY);
		n += w > 0 ? (size_t)w : 0;
	}
	if (res->staged && n < sizeof(res->perfdata))
		snprintf(res->perfdata + n, sizeof(res->perfdata) - n,
		    "%sacked_pct=%" PRIu32 "%%;;;0;100", n > 0 ? " " : "", res->acked_pct);
}

void
ctl_check_judge(const Carotate__V1__CheckReply *r, uint64_t warn, uint64_t critical,
    struct ctl_check_result *res)
{
	size_t i;

	memset(res, 0, sizeof(*res));
	res->warn = warn;
	res->critical = critical;
	res->ca_warn = r->ca_warn != 0 ? r->ca_warn : 180 * CTL_DAY;
	res->ca_critical = CTL_CHECK_CA_CRITICAL;
	res->has_server = r->server != NULL;
	res->has_ca = r->ca != NULL;
	res->server_days = r->server ? (double)(r->server->not_after - r->now) / CTL_DAY : 0;
	res->ca_days = r->ca ? (double)(r->ca->not_after - r->now) / CTL_DAY : 0;
	res->staged = r->staged;
	res->acked_pct = r->percent;
	ctl_check_expiry(
	    res, "server_certificate", "server certificate", r->server, r->now, warn, critical, "");
	ctl_check_expiry(
	    res, "ca", "CA", r->ca, r->now, res->ca_warn, res->ca_critical, ": plan a CA rotation");
	/* Expiry is judged above; any other problem of the active set is CRITICAL. */
	for (i = 0; i < r->n_problems; i++)
		if (strstr(output_s(r->problems[i]), "expired") == NULL)
			ctl_check_add(res, CTL_CHECK_CRITICAL, "active_set", "active set: %s",
			    output_s(r->problems[i]));
	ctl_check_migration(res, r);
	/* The daemon's problem says what is wrong first: "damaged: ..." or "unreadable: ...". */
	if (!r->ledger_ok)
		ctl_check_add(res, CTL_CHECK_CRITICAL, "ledger", "ledger %s",
		    output_s(r->ledger_problem)[0] != '\0' ? r->ledger_problem
		                                           : "damaged: quick_check failed");
	ctl_check_swap(res, r);
	ctl_check_summary(res);
	ctl_check_perfdata(res);
}

/* Plugin output is one line: the summary's text is escaped as every reply's text is. */
int
ctl_check_human(FILE *fp, const struct ctl_check_result *res)
{
	fprintf(fp, "CAROTATE %s - ", ctl_check_state_name(res->state));
	output_safe(fp, res->summary);
	if (res->perfdata[0] != '\0')
		fprintf(fp, " | %s", res->perfdata);
	fputc('\n', fp);
	return ferror(fp) ? -1 : 0;
}

/* A number of days, or null when there is no such certificate. */
static json_t *
ctl_check_jdays(int has, double days)
{
	return has ? output_jcheck(json_real(days)) : json_null();
}

/*
 * {state, exit_code, summary, findings: [{state, check, message}], perfdata: {server_days,
 * ca_days, acked_pct}, thresholds: {warn, critical, ca_warn, ca_critical} (seconds)}.
 */
int
ctl_check_json(FILE *fp, const struct ctl_check_result *res)
{
	json_t *o = output_jcheck(json_object()), *a = output_jcheck(json_array()), *f, *p, *t;
	size_t i;

	output_jset(o, "state", output_jstr(ctl_check_state_name(res->state)));
	output_jset(o, "exit_code", json_integer(res->state));
	output_jset(o, "summary", output_jstr(res->summary));
	for (i = 0; i < res->n_findings; i++) {
		f = output_jcheck(json_object());
		output_jset(f, "state", output_jstr(ctl_check_state_name(res->findings[i].state)));
		output_jset(f, "check", output_jstr(res->findings[i].name));
		output_jset(f, "message", output_jstr(res->findings[i].text));
		if (json_array_append_new(a, f) != 0)
			output_jcheck(NULL);
	}
	output_jset(o, "findings", a);
	p = output_jcheck(json_object());
	output_jset(p, "server_days", ctl_check_jdays(res->has_server, res->server_days));
	output_jset(p, "ca_days", ctl_check_jdays(res->has_ca, res->ca_days));
	output_jset(p, "acked_pct", res->staged ? json_integer(res->acked_pct) : json_null());
	output_jset(o, "perfdata", p);
	t = output_jcheck(json_object());
	output_jset(t, "warn", output_jcount(res->warn));
	output_jset(t, "critical", output_jcount(res->critical));
	output_jset(t, "ca_warn", output_jcount(res->ca_warn));
	output_jset(t, "ca_critical", output_jcount(res->ca_critical));
	output_jset(o, "thresholds", t);
	return output_dump(fp, o);
}
