/* carotatectl join-token: create, list and revoke the tokens agents may link with. */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "log.h"
#include "output.h"

#define CTL_JOIN_OPTIONS                                                                           \
	"  --uses N                  create: links the token allows, 1 to 1000000 (default: 1)\n"  \
	"  --ttl DURATION            create: how long it is accepted: digits with an optional\n"   \
	"                            s, m, h or d suffix, 1s to 365d (default: 1d)\n"              \
	"  --description TEXT        create: what it is for, at most 256 printable ASCII\n"        \
	"                            characters\n"                                                 \
	"\n"                                                                                       \
	"An agent may link with a join token as its bearer instead of the linking key. create\n"   \
	"prints the token (cj1.<id>.<secret>) once, with its id and expiry; carotated keeps\n"     \
	"only its SHA-256. list shows id, description, uses left, expiry and creation, never\n"    \
	"a secret. revoke ID deletes it at once. Each new agent linked with it uses one use;\n"    \
	"an expired, revoked or used-up token gets HTTP 401. Admin only, audited (never the\n"     \
	"token).\n"                                                                                \
	"\n"                                                                                       \
	"exit status: 0 done; 5 a bad value or ID, or no such token; 1 a sub-command or\n"         \
	"option missing or misplaced; 4 not an admin.\n"

/* join-token create's options, checked once all are parsed. */
struct ctl_join_args {
	const char *uses, *ttl, *description;
};

static int ctl_join_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_join_fill_create(
    const struct ctl_join_args *a, Carotate__V1__JoinTokenCreateRequest *q, struct ctl_error *err);
static int ctl_join_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err);
static int ctl_join_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static json_t *ctl_join_token_json(const Carotate__V1__JoinToken *t);

static const struct option ctl_join_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "uses", required_argument, NULL, CTL_OPT_USES },
	{ "ttl", required_argument, NULL, CTL_OPT_TTL },
	{ "description", required_argument, NULL, CTL_OPT_DESCRIPTION },
	{ NULL, 0, NULL, 0 },
};

/* Its result is that of the sub-command's call (RESULT__NOT_SET: the request's own). */
const struct ctl_cmd ctl_join_cmd = {
	.name = "join-token",
	.args = "create [--uses N] [--ttl DURATION] [--description TEXT] | list | revoke ID",
	.summary = "create, list or revoke the join tokens agents may link with",
	.options = CTL_JOIN_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT__NOT_SET,
	.build = ctl_join_build,
	.print = ctl_join_print,
};

static int
ctl_join_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_join_args *a = ctx;

	switch (c) {
	case CTL_OPT_USES:
		return ctl_args_once(cmd, name, &a->uses, arg);
	case CTL_OPT_TTL:
		return ctl_args_once(cmd, name, &a->ttl, arg);
	case CTL_OPT_DESCRIPTION:
		return ctl_args_once(cmd, name, &a->description, arg);
	default:
		return ctl_args_usage_error(cmd, "unknown option --%s", name);
	}
}

/* create's values: usage errors first (exit 1), then wrong values (exit 5). */
static int
ctl_join_fill_create(
    const struct ctl_join_args *a, Carotate__V1__JoinTokenCreateRequest *q, struct ctl_error *err)
{
	uint64_t v;
	const unsigned char *p;

	if (a->uses != NULL) {
		if (ctl_args_count(a->uses, 1, 1000000, &v) != 0)
			return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "--uses: \"%s\" is not a number from 1 to 1000000", a->uses);
		q->uses = (uint32_t)v;
	}
	if (a->ttl != NULL) {
		if (ctl_args_duration(a->ttl, "smhd", 365 * CTL_DAY, &v) != 0 || v == 0)
			return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "--ttl: \"%s\" is not a duration from 1s to 365d", a->ttl);
		q->ttl = v;
	}
	if (a->description != NULL) {
		if (strlen(a->description) > LIMITS_MAX_REASON)
			return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "--description: at most %d characters", LIMITS_MAX_REASON);
		for (p = (const unsigned char *)a->description; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
				    "--description: byte 0x%02x is not printable ASCII", *p);
		q->description = (char *)a->description;
	}
	return 0;
}

static int
ctl_join_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_join_args a = { 0 };
	const char *sub;
	int first, create;

	first = ctl_args_parse(cmd, opts, argc, argv, ctl_join_longopts, ctl_join_option, &a);
	if (first <= 0)
		return first;
	if (first >= argc)
		return ctl_args_usage_error(cmd, "expected create, list or revoke");
	sub = argv[first++];
	create = strcmp(sub, "create") == 0;
	if (!create && (a.uses != NULL || a.ttl != NULL || a.description != NULL))
		return ctl_args_usage_error(cmd, "--uses, --ttl and --description go with create");
	if (strcmp(sub, "revoke") == 0) {
		if (argc - first != 1)
			return ctl_args_usage_error(cmd, "revoke takes one ID");
		carotate__v1__join_token_revoke_request__init(&r->call.join_revoke);
		r->req.call_case = CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_REVOKE;
		r->req.join_token_revoke = &r->call.join_revoke;
		if (strlen(argv[first]) != 16 || strspn(argv[first], "0123456789abcdef") != 16) {
			ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "invalid join token id \"%s\": 16 lower-case hex digits (see "
			    "join-token list)",
			    argv[first]);
			return CTL_BUILD_REFUSED;
		}
		r->call.join_revoke.id = argv[first];
		return 1;
	}
	if (first < argc)
		return ctl_args_usage_error(cmd, "unexpected argument: %s", argv[first]);
	if (strcmp(sub, "list") == 0) {
		carotate__v1__join_token_list_request__init(&r->call.join_list);
		r->req.call_case = CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_LIST;
		r->req.join_token_list = &r->call.join_list;
		return 1;
	}
	if (!create)
		return ctl_args_usage_error(
		    cmd, "unknown sub-command %s: create, list or revoke", sub);
	carotate__v1__join_token_create_request__init(&r->call.join_create);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_CREATE;
	r->req.join_token_create = &r->call.join_create;
	return ctl_join_fill_create(&a, &r->call.join_create, err) == -1 ? CTL_BUILD_REFUSED : 1;
}

static int
ctl_join_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__Response *resp)
{
	int ret;

	switch (resp->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_CREATE_REPLY:
		ret = opts->json ? ctl_join_created_json(stdout, resp->join_token_create_reply)
		                 : ctl_join_created_human(stdout, resp->join_token_create_reply);
		break;
	case CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_LIST_REPLY:
		ret = opts->json ? ctl_join_list_json(stdout, resp->join_token_list_reply)
		                 : ctl_join_list_human(stdout, resp->join_token_list_reply);
		break;
	default:
		ret = opts->json ? ctl_join_revoked_json(stdout, resp->join_token_revoke_reply)
		                 : ctl_join_revoked_human(stdout, resp->join_token_revoke_reply);
	}
	return ctl_conn_finish(ret);
}

static json_t *
ctl_join_token_json(const Carotate__V1__JoinToken *t)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "id", output_jstr(t->id));
	output_jset(o, "description", output_jstr(t->description));
	output_jset(o, "uses_left", json_integer(t->uses_left));
	output_jset(o, "expires", output_jtime(t->expires));
	output_jset(o, "created", output_jtime(t->created));
	return o;
}

int
ctl_join_created_human(FILE *fp, const Carotate__V1__JoinTokenCreateReply *r)
{
	char exp[OUTPUT_RFC3339_LEN];

	if (r->join_token == NULL || output_rfc3339(r->join_token->expires, exp, sizeof(exp)) == -1)
		snprintf(exp, sizeof(exp), "?");
	output_safe(fp, r->token);
	fputs("\n", fp);
	fputs("join token ", fp);
	output_safe(fp, r->join_token != NULL ? r->join_token->id : "");
	fprintf(fp, ": %u use(s), expires %s; it is shown only once\n",
	    r->join_token != NULL ? r->join_token->uses_left : 0, exp);
	return ferror(fp) ? -1 : 0;
}

int
ctl_join_created_json(FILE *fp, const Carotate__V1__JoinTokenCreateReply *r)
{
	json_t *o = r->join_token != NULL ? ctl_join_token_json(r->join_token)
	                                  : output_jcheck(json_object());

	output_jset(o, "token", output_jstr(r->token));
	return output_dump(fp, o);
}

int
ctl_join_list_human(FILE *fp, const Carotate__V1__JoinTokenListReply *r)
{
	char exp[OUTPUT_RFC3339_LEN], created[OUTPUT_RFC3339_LEN];
	const Carotate__V1__JoinToken *t;
	size_t i;

	if (r->n_join_tokens == 0)
		fputs("no join tokens\n", fp);
	else
		fprintf(fp, "%-16s  %-9s  %-20s  %-20s  %s\n", "ID", "USES LEFT", "EXPIRES",
		    "CREATED", "DESCRIPTION");
	for (i = 0; i < r->n_join_tokens; i++) {
		t = r->join_tokens[i];
		if (output_rfc3339(t->expires, exp, sizeof(exp)) == -1)
			snprintf(exp, sizeof(exp), "?");
		if (output_rfc3339(t->created, created, sizeof(created)) == -1)
			snprintf(created, sizeof(created), "?");
		fprintf(fp, "%-16.16s  %-9u  %-20s  %-20s  ", output_s(t->id), t->uses_left, exp,
		    created);
		output_safe(fp, t->description);
		fputs(t->expires <= r->now ? "  (expired)\n"
		      : t->uses_left == 0  ? "  (used up)\n"
		                           : "\n",
		    fp);
	}
	return ferror(fp) ? -1 : 0;
}

int
ctl_join_list_json(FILE *fp, const Carotate__V1__JoinTokenListReply *r)
{
	json_t *o = output_jcheck(json_object()), *a = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < r->n_join_tokens; i++)
		if (json_array_append_new(a, ctl_join_token_json(r->join_tokens[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "join_tokens", a);
	return output_dump(fp, o);
}

int
ctl_join_revoked_human(FILE *fp, const Carotate__V1__JoinTokenRevokeReply *r)
{
	fputs("join token ", fp);
	output_safe(fp, r->id);
	fputs(" revoked\n", fp);
	return ferror(fp) ? -1 : 0;
}

int
ctl_join_revoked_json(FILE *fp, const Carotate__V1__JoinTokenRevokeReply *r)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "revoked", output_jstr(r->id));
	return output_dump(fp, o);
}
