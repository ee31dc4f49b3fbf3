/* carotatectl backups: the backups of the SSL directory, newest first, one page. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "log.h"
#include "output.h"

#define CTL_BACKUPS_OPTIONS                                                                        \
	"  --limit N                 backups per page, 1 to 1000 (default: 100)\n"                 \
	"  --offset N                backups to skip, for the next page (default: 0)\n"            \
	"\n"                                                                                       \
	"Lists, newest first, the certs-YYYYMMDD-HHMMSS backups of the SSL directory (made\n"      \
	"by rotate, by restore, or by hand) and the discarded-YYYYMMDD-HHMMSS staged sets,\n"      \
	"and whether restore would accept each. Retention: carotated keeps the newest\n"           \
	"[backups] keep (default 10) of the backups it made and removes older ones after\n"        \
	"each rotate or restore; never the newest, never one made by hand.\n"

static int ctl_backups_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_backups_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static const char *ctl_backups_reason(const char *reason);
static json_t *ctl_backups_one_json(const Carotate__V1__Backup *b);
static void ctl_backups_row(FILE *fp, const Carotate__V1__Backup *b, int idw, int subjw);

static const struct option ctl_backups_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "limit", required_argument, NULL, CTL_OPT_LIMIT },
	{ "offset", required_argument, NULL, CTL_OPT_OFFSET },
	{ NULL, 0, NULL, 0 },
};

const struct ctl_cmd ctl_backups_cmd = {
	.name = "backups",
	.args = "[--limit N] [--offset N]",
	.summary = "list the backups (newest first) and whether each can be restored",
	.options = CTL_BACKUPS_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT_LIST_BACKUPS_REPLY,
	.build = ctl_backups_build,
	.print = ctl_backups_print,
};

/* Usage errors (exit 1) come before wrong values (exit 5). */
static int
ctl_backups_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_page_args a = { 0 };
	int first;

	carotate__v1__list_backups_request__init(&r->call.list_backups);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_LIST_BACKUPS;
	r->req.list_backups = &r->call.list_backups;
	first =
	    ctl_args_parse(cmd, opts, argc, argv, ctl_backups_longopts, ctl_args_page_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (ctl_args_fill_page(&a, LIMITS_MAX_BACKUPS_PAGE, &r->call.list_backups.limit,
	        &r->call.list_backups.offset, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

/* The page asked for says where the listing starts. */
static int
ctl_backups_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	int ret;

	if (opts->json)
		ret = ctl_backups_json(stdout, resp->list_backups_reply);
	else
		ret = ctl_backups_human(
		    stdout, resp->list_backups_reply, r->call.list_backups.offset);
	return ctl_conn_finish(ret);
}

/* The daemon's words ("rotate", "restore", "rollback", "renew", "pool", "discard", "manual");
 * anything else reads "unknown". */
static const char *
ctl_backups_reason(const char *reason)
{
	static const char *const known[] = { "rotate", "restore", "rollback", "renew", "pool",
		"discard", "manual" };
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(output_s(reason), known[i]) == 0)
			return known[i];
	return "unknown";
}

/* carotatectl(1)'s keys (id, created, reason, ca_sha256, server_not_after) and the rest. */
static json_t *
ctl_backups_one_json(const Carotate__V1__Backup *b)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "id", output_jstr(b->id));
	output_jset(o, "created", output_jtime_opt(b->created));
	output_jset(o, "reason", output_jstr(ctl_backups_reason(b->reason)));
	output_jset(o, "detail", output_jstr_opt(b->detail));
	output_jset(o, "ca_subject", b->ca != NULL ? output_jstr(b->ca->subject) : json_null());
	output_jset(o, "ca_sha256", b->ca != NULL ? output_jhex(b->ca->sha256) : json_null());
	output_jset(
	    o, "ca_not_after", b->ca != NULL ? output_jtime(b->ca->not_after) : json_null());
	output_jset(
	    o, "server_subject", b->server != NULL ? output_jstr(b->server->subject) : json_null());
	output_jset(
	    o, "server_sha256", b->server != NULL ? output_jhex(b->server->sha256) : json_null());
	output_jset(o, "server_not_after",
	    b->server != NULL ? output_jtime(b->server->not_after) : json_null());
	output_jset(o, "restorable", json_boolean(b->restorable));
	output_jset(o, "problem", output_jstr_opt(b->problem));
	return o;
}

int
ctl_backups_json(FILE *fp, const Carotate__V1__BackupsReply *r)
{
	json_t *o = output_jcheck(json_object()), *a = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < r->n_backups; i++)
		if (json_array_append_new(a, ctl_backups_one_json(r->backups[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "backups", a);
	output_jset(o, "total", output_jcount(r->total));
	output_jset(o, "keep", json_integer(r->keep));
	return output_dump(fp, o);
}

/* One row: id, created, reason, CA subject, CA fingerprint, server expiry, restorable. */
static void
ctl_backups_row(FILE *fp, const Carotate__V1__Backup *b, int idw, int subjw)
{
	char when[OUTPUT_RFC3339_LEN];
	const char *reason = ctl_backups_reason(b->reason);

	fputs("  ", fp);
	output_pad(fp, b->id, idw);
	if (b->created == 0 || output_rfc3339(b->created, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "unknown");
	fprintf(fp, "  %-20s  %-7s  ", when, reason);
	output_pad(fp, b->ca != NULL ? b->ca->subject : "-", subjw);
	fputs("  ", fp);
	if (b->ca != NULL)
		output_abbrev(fp, b->ca->sha256, OUTPUT_ABBREV + 1);
	else
		fprintf(fp, "%-*s", OUTPUT_ABBREV + 1, "-");
	if (b->server == NULL || output_rfc3339(b->server->not_after, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "-");
	fprintf(fp, "  %-20s  ", when);
	if (b->restorable)
		fputs("yes\n", fp);
	else {
		fputs("no: ", fp);
		output_safe(fp, output_s(b->problem)[0] != '\0' ? b->problem : "(no reason given)");
		fputc('\n', fp);
	}
	if (output_s(b->detail)[0] != '\0' && strcmp(b->detail, reason) != 0) {
		fprintf(fp, "  %*s  reason given: ", idw, "");
		output_safe(fp, b->detail);
		fputc('\n', fp);
	}
}

int
ctl_backups_human(FILE *fp, const Carotate__V1__BackupsReply *r, uint64_t offset)
{
	int idw = 2, subjw = 10, w;
	size_t i;

	if (r->n_backups == 0) {
		fputs("no backups", fp);
		if (offset > 0)
			fprintf(
			    fp, " from offset %" PRIu64 " (%" PRIu64 " in all)", offset, r->total);
		fprintf(fp, "; keep %" PRIu32 "\n", r->keep);
		return ferror(fp) ? -1 : 0;
	}
	for (i = 0; i < r->n_backups; i++) {
		if ((w = output_width(r->backups[i]->id)) > idw)
			idw = w;
		if (r->backups[i]->ca != NULL &&
		    (w = output_width(r->backups[i]->ca->subject)) > subjw)
			subjw = w;
	}
	fputs("  ", fp);
	output_pad(fp, "ID", idw);
	fprintf(fp, "  %-20s  %-7s  ", "CREATED", "REASON");
	output_pad(fp, "CA SUBJECT", subjw);
	fprintf(fp, "  %-*s  %-20s  %s\n", OUTPUT_ABBREV + 1, "CA SHA256", "SERVER EXPIRES",
	    "RESTORABLE");
	for (i = 0; i < r->n_backups; i++)
		ctl_backups_row(fp, r->backups[i], idw, subjw);
	fprintf(fp, "%" PRIu64 " backup%s", r->total, r->total == 1 ? "" : "s");
	if (offset > 0 || r->total > r->n_backups)
		fprintf(fp, " (%zu shown from offset %" PRIu64 ")", r->n_backups, offset);
	fprintf(fp,
	    "; carotated keeps the newest %" PRIu32
	    " of its own and removes older ones (never one made by hand)\n",
	    r->keep);
	if (r->total > offset && r->total - offset > r->n_backups)
		fprintf(fp, "  (%" PRIu64 " more; --offset %" PRIu64 " shows the next page)\n",
		    r->total - offset - r->n_backups, offset + r->n_backups);
	return ferror(fp) ? -1 : 0;
}
