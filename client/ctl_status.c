/* carotatectl status: the phase, the sets, the bundle and the workers, human or JSON. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "status.h"
#include "output.h"

static int ctl_status_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err);
static int ctl_status_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static json_t *ctl_status_workers_json(const Carotate__V1__StatusReply *r);
static json_t *ctl_status_ledger_json(const Carotate__V1__LedgerHealth *l);
static void ctl_status_ledger_human(FILE *fp, const Carotate__V1__LedgerHealth *l);
static json_t *ctl_status_fp_json(const char *fp);
static json_t *ctl_status_pool_json(const Carotate__V1__StatusReply *r);
static void ctl_status_pool_human(FILE *fp, const Carotate__V1__StatusReply *r);
static void ctl_status_member_human(FILE *fp, const Carotate__V1__PoolMember *m, uint64_t beat);
static void ctl_status_outcome_human(FILE *fp, const char *what, int64_t at, int ok);
static void ctl_status_worker_pid(FILE *fp, const char *which, uint32_t pid);
static void ctl_status_worker_health(FILE *fp, const Carotate__V1__WorkerHealth *w);
static int ctl_status_expiring(
    const Carotate__V1__StatusReply *r, int ca, int64_t now, int64_t *days, uint64_t *window);
static json_t *ctl_status_expiry_json(const Carotate__V1__StatusReply *r);
static void ctl_status_expiry_human(FILE *fp, const Carotate__V1__StatusReply *r, int64_t now);

/* The windows when the daemon sends none ([renew] before and ca_warn's defaults). */
#define CTL_STATUS_RENEW_BEFORE (30 * CTL_DAY)
#define CTL_STATUS_CA_WARN      (180 * CTL_DAY)

const struct ctl_cmd ctl_status_cmd = {
	.name = "status",
	.args = "",
	.summary = "show the phase, the active and staged certificate sets, the trust bundle",
	.options = "",
	.result = CAROTATE__V1__RESPONSE__RESULT_STATUS_REPLY,
	.build = ctl_status_build,
	.print = ctl_status_print,
};

static int
ctl_status_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	carotate__v1__status_request__init(&r->call.status);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_STATUS;
	r->req.status = &r->call.status;
	return ctl_args_no_operands(cmd, opts, argc, argv);
}

static int
ctl_status_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	int ret;

	if (opts->json)
		ret = ctl_status_json(stdout, resp->status_reply);
	else
		ret = ctl_status_human(stdout, resp->status_reply);
	return ctl_conn_finish(ret);
}

/* [{name, running, pid, restarts, last_error, last_error_at}], agents then canary. */
static json_t *
ctl_status_workers_json(const Carotate__V1__StatusReply *r)
{
	json_t *a = output_jcheck(json_array()), *o;
	size_t i;

	for (i = 0; i < r->n_workers; i++) {
		const Carotate__V1__WorkerHealth *w = r->workers[i];

		o = output_jcheck(json_object());
		output_jset(o, "name", output_jstr(w->name));
		output_jset(o, "running", json_boolean(w->running));
		output_jset(o, "pid", w->pid != 0 ? json_integer(w->pid) : json_null());
		output_jset(o, "restarts", json_integer(w->restarts));
		output_jset(o, "last_error", output_jstr_opt(w->last_error));
		output_jset(o, "last_error_at", output_jtime_opt(w->last_error_at));
		if (json_array_append_new(a, o) != 0)
			output_jcheck(NULL);
	}
	return a;
}

/* {backend, member, reachable, last_error, last_error_at}, or null from an older daemon. */
static json_t *
ctl_status_ledger_json(const Carotate__V1__LedgerHealth *l)
{
	json_t *o;

	if (l == NULL)
		return json_null();
	o = output_jcheck(json_object());
	output_jset(o, "backend", output_jstr(l->backend));
	output_jset(o, "member", output_jstr_opt(l->member));
	output_jset(o, "reachable", json_boolean(l->reachable));
	output_jset(o, "last_error", output_jstr_opt(l->last_error));
	output_jset(o, "last_error_at", output_jtime_opt(l->last_error_at));
	return o;
}

/*
 * A line for a pool member's ledger, or for one out of reach; a single proxy's SQLite ledger
 * that answers needs none.
 */
static void
ctl_status_ledger_human(FILE *fp, const Carotate__V1__LedgerHealth *l)
{
	if (l == NULL || (strcmp(output_s(l->backend), "sqlite") == 0 && l->reachable))
		return;
	output_label(fp, "ledger:");
	output_safe(fp, l->backend);
	if (output_s(l->member)[0] != '\0') {
		fputs(", member ", fp);
		output_safe(fp, l->member);
	}
	fputs(l->reachable ? ", reachable" : ", OUT OF REACH", fp);
	if (output_s(l->last_error)[0] != '\0') {
		fputs("; last error ", fp);
		output_time_human(fp, l->last_error_at);
		fputs(": ", fp);
		output_safe(fp, l->last_error);
	}
	fputc('\n', fp);
}

/* A fingerprint as a member reports it: null for "-" (none) or "". */
static json_t *
ctl_status_fp_json(const char *fp)
{
	if (strcmp(output_s(fp), "-") == 0)
		return json_null();
	return output_jstr_opt(fp);
}

/*
 * [{member, heartbeat_age, stale, active_ca, active_server, staged_ca, last_reload_at,
 * last_reload_ok, last_check_at, last_check_ok, last_error}], or null: a single proxy, or a
 * pool member that could not read the members.
 */
static json_t *
ctl_status_pool_json(const Carotate__V1__StatusReply *r)
{
	json_t *a, *o;
	size_t i;

	if (!r->pool_known)
		return json_null();
	a = output_jcheck(json_array());
	for (i = 0; i < r->n_pool; i++) {
		const Carotate__V1__PoolMember *m = r->pool[i];

		o = output_jcheck(json_object());
		output_jset(o, "member", output_jstr(m->member));
		output_jset(o, "heartbeat_age", json_integer(m->heartbeat_age));
		output_jset(o, "stale", json_boolean(m->stale));
		output_jset(o, "active_ca", ctl_status_fp_json(m->active_ca));
		output_jset(o, "active_server", ctl_status_fp_json(m->active_server));
		output_jset(o, "staged_ca", ctl_status_fp_json(m->staged_ca));
		output_jset(o, "last_reload_at", output_jtime_opt(m->last_reload_at));
		output_jset(o, "last_reload_ok",
		    m->last_reload_at != 0 ? json_boolean(m->last_reload_ok) : json_null());
		output_jset(o, "last_check_at", output_jtime_opt(m->last_check_at));
		output_jset(o, "last_check_ok",
		    m->last_check_at != 0 ? json_boolean(m->last_check_ok) : json_null());
		output_jset(o, "last_error", output_jstr_opt(m->last_error));
		output_jset(
		    o, "applied_generation", json_integer((json_int_t)m->applied_generation));
		output_jset(o, "applied_ok",
		    m->applied_generation != 0 ? json_boolean(m->applied_ok) : json_null());
		output_jset(o, "apply_error", output_jstr(output_s(m->apply_error)));
		if (json_array_append_new(a, o) != 0)
			output_jcheck(NULL);
	}
	return a;
}

/* {generation, active, staged, call, member, written_at}, or null outside a pool. */
static json_t *
ctl_status_pool_state_json(const Carotate__V1__PoolState *ps)
{
	json_t *o;

	if (ps == NULL)
		return json_null();
	o = output_jcheck(json_object());
	output_jset(o, "generation", json_integer((json_int_t)ps->generation));
	output_jset(o, "active", output_jstr(output_s(ps->active)));
	output_jset(o, "staged", output_jstr(output_s(ps->staged)));
	output_jset(o, "call", output_jstr(output_s(ps->call)));
	output_jset(o, "member", output_jstr(output_s(ps->member)));
	output_jset(o, "written_at", output_jtime_opt(ps->written_at));
	return o;
}

int
ctl_status_json(FILE *fp, const Carotate__V1__StatusReply *r)
{
	json_t *o = output_jcheck(json_object());
	uint64_t up = r->uptime_seconds;

	output_jset(o, "version", output_jstr(r->version));
	output_jset(o, "pid", json_integer(r->pid));
	output_jset(
	    o, "worker_pid", r->worker_pid != 0 ? json_integer(r->worker_pid) : json_null());
	output_jset(o, "canary_worker_pid",
	    r->canary_worker_pid != 0 ? json_integer(r->canary_worker_pid) : json_null());
	output_jset(o, "workers", ctl_status_workers_json(r));
	output_jset(o, "ledger", ctl_status_ledger_json(r->ledger));
	output_jset(o, "pool", ctl_status_pool_json(r));
	output_jset(o, "pool_state", ctl_status_pool_state_json(r->pool_state));
	output_jset(o, "uptime_seconds", json_integer(up > INT64_MAX ? INT64_MAX : (json_int_t)up));
	output_jset(o, "now", output_jtime(r->now));
	output_jset(o, "phase", output_jstr(status_phase_name(r->phase)));
	output_jset(o, "ssl_dir", output_jstr(r->ssl_dir));
	output_jset(o, "active", output_set_json(r->active));
	output_jset(o, "staged", output_set_json(r->staged));
	output_jset(o, "bundle", output_bundle_json(r->bundle));
	output_jset(o, "expiring", ctl_status_expiry_json(r));
	return output_dump(fp, o);
}

/*
 * The active set's server certificate (ca 0) or CA, when it expires within its window
 * ([renew] before, [renew] ca_warn) and has not expired yet: 1 with the whole days left and
 * the window, else 0.
 */
static int
ctl_status_expiring(
    const Carotate__V1__StatusReply *r, int ca, int64_t now, int64_t *days, uint64_t *window)
{
	const Carotate__V1__CertInfo *c;
	int64_t left;

	if (r->active == NULL || (c = ca ? r->active->ca : r->active->server) == NULL)
		return 0;
	if (ca)
		*window = r->ca_warn != 0 ? r->ca_warn : CTL_STATUS_CA_WARN;
	else
		*window = r->renew_before != 0 ? r->renew_before : CTL_STATUS_RENEW_BEFORE;
	left = c->not_after - now;
	if (left <= 0 || (uint64_t)left > *window)
		return 0;
	*days = left / (int64_t)CTL_DAY;
	return 1;
}

/* [{certificate: "server"|"ca", days_left, window_days}] inside their windows. */
static json_t *
ctl_status_expiry_json(const Carotate__V1__StatusReply *r)
{
	json_t *a = output_jcheck(json_array()), *o;
	uint64_t window;
	int64_t days;
	int ca;

	for (ca = 0; ca <= 1; ca++) {
		if (!ctl_status_expiring(r, ca, r->now, &days, &window))
			continue;
		o = output_jcheck(json_object());
		output_jset(o, "certificate", output_jstr(ca ? "ca" : "server"));
		output_jset(o, "days_left", json_integer(days));
		output_jset(o, "window_days", output_jcount(window / CTL_DAY));
		if (json_array_append_new(a, o) != 0)
			output_jcheck(NULL);
	}
	return a;
}

/* "warning: ... expires in N days" for what is inside its window. */
static void
ctl_status_expiry_human(FILE *fp, const Carotate__V1__StatusReply *r, int64_t now)
{
	static const char *const what[] = { "server certificate", "CA" };
	static const char *const hint[] = { "replace it before then", "plan a CA rotation" };
	char span[64];
	uint64_t window;
	int64_t days;
	int ca;

	for (ca = 0; ca <= 1; ca++) {
		if (!ctl_status_expiring(r, ca, now, &days, &window))
			continue;
		output_span(window, span, sizeof(span));
		output_label(fp, "warning:");
		fprintf(fp, "%s expires in %" PRId64 " day%s (within %s): %s\n", what[ca], days,
		    days == 1 ? "" : "s", span, hint[ca]);
	}
}

/* ", reload ok 2026-..." / ", reload FAILED 2026-...", nothing when there was none. */
static void
ctl_status_outcome_human(FILE *fp, const char *what, int64_t at, int ok)
{
	if (at == 0)
		return;
	fprintf(fp, ", %s %s ", what, ok ? "ok" : "FAILED");
	output_time_human(fp, at);
}

/*
 * One member on a line: "m1: heartbeat 2s ago; serves CA abc...,
 * server def...; staged none; reload ok ..., TLS check ok ...".
 */
static void
ctl_status_member_human(FILE *fp, const Carotate__V1__PoolMember *m, uint64_t beat)
{
	char age[64], limit[64];

	output_duration(m->heartbeat_age > 0 ? (uint64_t)m->heartbeat_age : 0, age, sizeof(age));
	output_label(fp, "");
	output_safe(fp, m->member);
	if (m->stale) {
		output_duration(beat * 3, limit, sizeof(limit));
		fprintf(fp, ": STALE, heartbeat %s ago (more than %s: rotate refuses)", age, limit);
	} else
		fprintf(fp, ": heartbeat %s ago", age);
	fputs("; serves CA ", fp);
	output_abbrev(fp, m->active_ca, 0);
	fputs(", server ", fp);
	output_abbrev(fp, m->active_server, 0);
	fputs("; staged ", fp);
	if (strcmp(output_s(m->staged_ca), "-") == 0)
		fputs("none", fp);
	else
		output_abbrev(fp, m->staged_ca, 0);
	ctl_status_outcome_human(fp, "reload", m->last_reload_at, m->last_reload_ok);
	ctl_status_outcome_human(fp, "TLS check", m->last_check_at, m->last_check_ok);
	if (output_s(m->last_error)[0] != '\0') {
		fputs("; last error: ", fp);
		output_safe(fp, m->last_error);
	}
	if (m->applied_generation != 0) {
		fprintf(fp, "; pool generation %" PRIu64 " %s", m->applied_generation,
		    m->applied_ok ? "applied" : "FAILED");
		if (!m->applied_ok && output_s(m->apply_error)[0] != '\0') {
			fputs(": ", fp);
			output_safe(fp, m->apply_error);
		}
	}
	fputc('\n', fp);
}

/* A pool's members, one line each; nothing for a single proxy. */
static void
ctl_status_pool_human(FILE *fp, const Carotate__V1__StatusReply *r)
{
	size_t i, stale = 0;

	if (r->ledger == NULL || strcmp(output_s(r->ledger->backend), "postgresql") != 0)
		return;
	output_label(fp, "pool:");
	if (!r->pool_known) {
		fputs("members unknown (the pool's database is out of reach)\n", fp);
		return;
	}
	for (i = 0; i < r->n_pool; i++)
		stale += r->pool[i]->stale != 0;
	fprintf(fp, "%zu member%s", r->n_pool, r->n_pool == 1 ? "" : "s");
	if (stale > 0)
		fprintf(fp, ", %zu STALE", stale);
	if (r->pool_state != NULL && r->pool_state->generation != 0) {
		fprintf(fp, "; shared sets at generation %" PRIu64 " (", r->pool_state->generation);
		output_safe(fp, r->pool_state->call);
		fputs(" on ", fp);
		output_safe(fp, r->pool_state->member);
		fputc(')', fp);
	}
	fputc('\n', fp);
	for (i = 0; i < r->n_pool; i++)
		ctl_status_member_human(fp, r->pool[i], r->heartbeat);
}

/* "agent pid N", or "agent restarting" while the daemon restarts it. */
static void
ctl_status_worker_pid(FILE *fp, const char *which, uint32_t pid)
{
	if (pid != 0)
		fprintf(fp, "%s pid %" PRIu32, which, pid);
	else
		fprintf(fp, "%s restarting", which);
}

/*
 * A worker that restarted or failed gets a line of its own under "workers:":
 * "agents: down, 5 restarts; last error 2026-...: why". Silent when healthy.
 */
static void
ctl_status_worker_health(FILE *fp, const Carotate__V1__WorkerHealth *w)
{
	if (w->running && w->restarts == 0 && output_s(w->last_error)[0] == '\0')
		return;
	output_label(fp, "");
	output_safe(fp, w->name);
	fprintf(fp, ": %s, %" PRIu32 " restart%s", w->running ? "running" : "down", w->restarts,
	    w->restarts == 1 ? "" : "s");
	if (output_s(w->last_error)[0] != '\0') {
		fputs("; last error ", fp);
		output_time_human(fp, w->last_error_at);
		fputs(": ", fp);
		output_safe(fp, w->last_error);
	}
	fputc('\n', fp);
}

/* The daemon's clock decides what has expired; ours only if it sent none. */
int
ctl_status_human(FILE *fp, const Carotate__V1__StatusReply *r)
{
	int64_t now = r->now != 0 ? r->now : (int64_t)time(NULL);
	char up[64];
	size_t i;

	output_duration(r->uptime_seconds, up, sizeof(up));
	fputs("carotated ", fp);
	output_safe(fp, r->version);
	fprintf(fp, " (pid %" PRIu32 "), up %s\n", r->pid, up);
	output_label(fp, "workers:");
	ctl_status_worker_pid(fp, "agent", r->worker_pid);
	ctl_status_worker_pid(fp, ", canary", r->canary_worker_pid);
	fputc('\n', fp);
	for (i = 0; i < r->n_workers; i++)
		ctl_status_worker_health(fp, r->workers[i]);
	ctl_status_ledger_human(fp, r->ledger);
	ctl_status_pool_human(fp, r);
	output_label(fp, "phase:");
	fprintf(fp, "%s\n", status_phase_name(r->phase));
	output_label(fp, "ssl dir:");
	output_safe(fp, r->ssl_dir);
	fputc('\n', fp);
	if (r->active != NULL)
		output_set_human(fp, "active set:", r->active, now);
	else {
		output_label(fp, "active set:");
		fputs("none (no active set in ", fp);
		output_safe(fp, r->ssl_dir);
		fputs(")\n", fp);
	}
	if (r->staged != NULL)
		output_set_human(fp, "staged set:", r->staged, now);
	else {
		output_label(fp, "staged set:");
		fputs("none\n", fp);
	}
	output_bundle_human(fp, r->bundle, r->active, r->staged);
	ctl_status_expiry_human(fp, r, now);
	return ferror(fp) ? -1 : 0;
}
