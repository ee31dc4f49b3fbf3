/* carotatectl audit: one page of the audit log, and its hash chain checked on request. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "log.h"
#include "status.h"
#include "output.h"

struct ctl_audit_args {
	struct ctl_page_args page;
	int verify;
};

#define CTL_AUDIT_OPTIONS                                                                          \
	"  --limit N                 records per page, 1 to 1000 (default: 50)\n"                  \
	"  --offset N                newest records to skip, for the next page (default: 0)\n"     \
	"  --verify                  also check the whole hash chain, from the first record\n"     \
	"\n"                                                                                       \
	"Every state-changing call (generate, install, discard, exclude, include, and the\n"       \
	"calls of stage 3) and every refusal of one is recorded with the caller's uid, user\n"     \
	"name and pid, the arguments, the result and the certificate sets before and after;\n"     \
	"so are changes carotated finds made by hand (\"adopt\"). Each record holds the\n"         \
	"SHA-256 of the one before it.\n"                                                          \
	"\n"                                                                                       \
	"exit status: 0 shown (and, with --verify, the chain is intact); 6 the chain is\n"         \
	"broken: a record was changed, removed or inserted (the record is named on stderr);\n"     \
	"1, 2, 4, 5 as for every command.\n"

static int ctl_audit_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_audit_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err);
static int ctl_audit_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static json_t *ctl_audit_record_json(const Carotate__V1__AuditRecord *a);
static void ctl_audit_record_human(FILE *fp, const Carotate__V1__AuditRecord *a);

static const struct option ctl_audit_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "limit", required_argument, NULL, CTL_OPT_LIMIT },
	{ "offset", required_argument, NULL, CTL_OPT_OFFSET },
	{ "verify", no_argument, NULL, CTL_OPT_VERIFY },
	{ NULL, 0, NULL, 0 },
};

const struct ctl_cmd ctl_audit_cmd = {
	.name = "audit",
	.args = "[--limit N] [--offset N] [--verify]",
	.summary =
	    "show who changed what (the audit log), newest first; --verify checks its hash chain",
	.options = CTL_AUDIT_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT_AUDIT_REPLY,
	.build = ctl_audit_build,
	.print = ctl_audit_print,
};

static int
ctl_audit_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_audit_args *a = ctx;

	if (c != CTL_OPT_VERIFY)
		return ctl_args_page_option(cmd, name, c, arg, &a->page);
	a->verify = 1;
	return 0;
}

/* Usage errors (exit 1) come before wrong values (exit 5). */
static int
ctl_audit_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_audit_args a = { 0 };
	int first;

	carotate__v1__audit_request__init(&r->call.audit);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_AUDIT;
	r->req.audit = &r->call.audit;
	first = ctl_args_parse(cmd, opts, argc, argv, ctl_audit_longopts, ctl_audit_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	/* Unset: the daemon's page of 50 from the newest record. */
	if (ctl_args_fill_page(&a.page, LIMITS_MAX_AUDIT_PAGE, &r->call.audit.limit,
	        &r->call.audit.offset, err) == -1)
		return CTL_BUILD_REFUSED;
	r->call.audit.verify = a.verify;
	return 1;
}

/*
 * The page is printed whatever the chain's state; a broken chain then fails the command
 * (exit 6, as an integrity failure), naming the first record that does not check out.
 */
static int
ctl_audit_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__Response *resp)
{
	const Carotate__V1__AuditReply *a = resp->audit_reply;
	int ret;

	if (opts->json)
		ret = ctl_audit_json(stdout, a);
	else
		ret = ctl_audit_human(stdout, a, r->call.audit.offset);
	ret = ctl_conn_finish(ret);
	if (ret != EXIT_DONE || !a->verify || a->intact)
		return ret;
	fprintf(stderr, CTL_NAME ": the audit log's hash chain is broken at record %" PRIu64 ": ",
	    a->broken_at);
	output_safe(stderr, a->problem);
	fputc('\n', stderr);
	return EXIT_INTERNAL;
}

static json_t *
ctl_audit_record_json(const Carotate__V1__AuditRecord *a)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "seq", output_jcount(a->seq));
	output_jset(o, "time", output_jtime(a->time));
	output_jset(o, "uid", json_integer(a->uid));
	output_jset(o, "user", output_jstr(a->user));
	output_jset(o, "pid", json_integer(a->pid));
	output_jset(o, "call", output_jstr(a->call));
	output_jset(o, "result", output_jstr(a->result));
	output_jset(o, "detail", output_jstr(a->detail));
	output_jset(o, "before", output_jstr(a->before));
	output_jset(o, "after", output_jstr(a->after));
	output_jset(o, "prev_hash", output_jstr(a->prev_hash));
	output_jset(o, "hash", output_jstr(a->hash));
	/* A daemon that predates counting sends 0: each record was one call. */
	output_jset(o, "count", output_jcount(a->count != 0 ? a->count : 1));
	return o;
}

int
ctl_audit_json(FILE *fp, const Carotate__V1__AuditReply *r)
{
	json_t *o = output_jcheck(json_object()), *recs = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < r->n_records; i++)
		if (json_array_append_new(recs, ctl_audit_record_json(r->records[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "records", recs);
	output_jset(o, "total", output_jcount(r->total));
	output_jset(o, "intact", r->verify ? json_boolean(r->intact) : json_null());
	output_jset(o, "broken_at", r->verify ? output_jcount(r->broken_at) : json_null());
	output_jset(o, "problem", r->verify && !r->intact ? output_jstr(r->problem) : json_null());
	return output_dump(fp, o);
}

/* One record: seq, time, who, call, result and detail on a line; the sets indented below. */
static void
ctl_audit_record_human(FILE *fp, const Carotate__V1__AuditRecord *a)
{
	char when[OUTPUT_RFC3339_LEN];

	if (output_rfc3339(a->time, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "%s", "unknown time");
	fprintf(fp, "#%" PRIu64 " %s ", a->seq, when);
	output_safe(fp, a->user);
	fprintf(fp, "(%" PRIu32 ") pid %" PRIu32 " ", a->uid, a->pid);
	output_safe(fp, a->call);
	fputc(' ', fp);
	output_safe(fp, a->result);
	if (a->count > 1)
		fprintf(fp, " x%" PRIu64, a->count);
	if (output_s(a->detail)[0] != '\0') {
		fputc(' ', fp);
		output_safe(fp, a->detail);
	}
	fputc('\n', fp);
	if (strcmp(output_s(a->before), output_s(a->after)) == 0) {
		fputs("    unchanged: ", fp);
		output_safe(fp, a->after);
		fputc('\n', fp);
		return;
	}
	fputs("    before: ", fp);
	output_safe(fp, a->before);
	fputs("\n    after:  ", fp);
	output_safe(fp, a->after);
	fputc('\n', fp);
}

int
ctl_audit_human(FILE *fp, const Carotate__V1__AuditReply *r, uint64_t offset)
{
	size_t i;

	if (r->n_records == 0)
		fprintf(
		    fp, "audit log: %s\n", r->total == 0 ? "empty" : "no records from this offset");
	else
		fprintf(fp,
		    "audit log: %" PRIu64 " record%s, newest first (%zu shown from offset %" PRIu64
		    ")\n",
		    r->total, r->total == 1 ? "" : "s", r->n_records, offset);
	for (i = 0; i < r->n_records; i++)
		ctl_audit_record_human(fp, r->records[i]);
	if (r->total > offset && r->total - offset > r->n_records)
		fprintf(fp, "(%" PRIu64 " older; --offset %" PRIu64 " shows the next page)\n",
		    r->total - offset - r->n_records, offset + r->n_records);
	if (r->verify && r->intact)
		fprintf(fp, "hash chain: intact (%" PRIu64 " record%s checked)\n", r->total,
		    r->total == 1 ? "" : "s");
	else if (r->verify) {
		fprintf(fp, "hash chain: BROKEN at record %" PRIu64 ": ", r->broken_at);
		output_safe(fp, r->problem);
		fputc('\n', fp);
	}
	return ferror(fp) ? -1 : 0;
}
