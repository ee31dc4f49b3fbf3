/*
 * carotatectl generate, install, discard and retire: the calls that change what is staged
 * or what the bundle holds, and their replies (a StageReply, a RetireReply).
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "log.h"
#include "output.h"
#include "xmalloc.h"

/* generate's arguments as given, checked once all are parsed. */
struct ctl_stage_generate_args {
	const char *key_type, *ca_days, *server_days, *name;
	char **sans;   /* LIMITS_MAX_SANS slots */
	size_t n_sans; /* how many were given, possibly more than the slots */
};

struct ctl_stage_install_args {
	const char *ca, *cert, *key, *chain, *daemon_uid;
};

/* Key types of GenerateRequest.key_type; the first is the daemon's default. */
static const char *const ctl_stage_key_types[] = { "ec-p256", "ec-p384", "rsa-2048", "rsa-3072",
	"rsa-4096" };
#define CTL_STAGE_KEY_TYPES_TEXT "ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096"

#define CTL_GENERATE_OPTIONS                                                                       \
	"  --key-type TYPE           key of the new CA and server certificate: ec-p256\n"          \
	"                            (default), ec-p384, rsa-2048, rsa-3072 or rsa-4096\n"         \
	"  --ca-days N               CA validity in days, 1 to 36500 (default: 3650)\n"            \
	"  --server-days N           server certificate validity in days, 1 to 36500\n"            \
	"                            (default: 397)\n"                                             \
	"  --name PREFIX             CA subject \"CN=PREFIX CA YYYY-MM-DD\" (default: carotate)\n" \
	"  --san SAN                 a subject alternative name of the server certificate,\n"      \
	"                            DNS:NAME or IP:ADDRESS; repeat for more (at most 64);\n"      \
	"                            the first DNS name is also its CN (default: the\n"            \
	"                            [proxy] names of carotated.conf)\n"

#define CTL_INSTALL_OPTIONS                                                                        \
	"  --ca FILE                 the CA certificate agents will trust (PEM)\n"                 \
	"  --cert FILE               the server certificate (PEM), leaf first; intermediates\n"    \
	"                            may follow\n"                                                 \
	"  --key FILE                the server certificate's private key (PEM, unencrypted)\n"    \
	"  --chain FILE              intermediate certificates (PEM), optional\n"                  \
	"  --daemon-uid UID          carotated runs as this uid: send the key to a socket\n"       \
	"                            served by exactly UID (default: root or yourself)\n"          \
	"\n"                                                                                       \
	"Each FILE is read with your own permissions and its bytes are sent to carotated;\n"       \
	"it must be a regular file of 1 to 65536 bytes (\"-\" for stdin is not supported).\n"      \
	"The key is sent only after the socket's peer (SO_PEERCRED) proved to run as root,\n"      \
	"as you, or as --daemon-uid; otherwise nothing is sent and the exit status is 2.\n"

#define CTL_RETIRE_OPTIONS                                                                         \
	"  --dry-run                 list the CAs that would be dropped; change nothing\n"         \
	"\n"                                                                                       \
	"After a rotation the old CA stays in the trust bundle for [bundle] retention\n"           \
	"(default 30 days), so a restore cannot cut agents off. retire drops every CA\n"           \
	"that is neither active nor staged now; agents receive the smaller bundle at their\n"      \
	"next check-in. Only with nothing staged (exit 3 otherwise).\n"

static void ctl_stage_install_clear(struct ctl_request *r);
static const Carotate__V1__StageReply *ctl_stage_reply(const Carotate__V1__Response *resp);
static int ctl_stage_generate_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_stage_key_type(const char *s, struct ctl_error *err);
static int ctl_stage_days(const char *opt, const char *s, uint32_t *days, struct ctl_error *err);
static int ctl_stage_sans(const struct ctl_stage_generate_args *a, struct ctl_error *err);
static int ctl_stage_fill_generate(Carotate__V1__GenerateRequest *g,
    const struct ctl_stage_generate_args *a, struct ctl_error *err);
static int ctl_stage_build_generate(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_stage_install_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_stage_read_install(Carotate__V1__InstallRequest *in,
    const struct ctl_stage_install_args *a, struct ctl_error *err);
static int ctl_stage_build_install(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_stage_build_discard(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_stage_retire_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_stage_build_retire(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_stage_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static int ctl_stage_print_retire(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static json_t *ctl_stage_retired_json(const Carotate__V1__BundleCa *m);

static const struct option ctl_stage_generate_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "key-type", required_argument, NULL, CTL_OPT_KEY_TYPE },
	{ "ca-days", required_argument, NULL, CTL_OPT_CA_DAYS },
	{ "server-days", required_argument, NULL, CTL_OPT_SERVER_DAYS },
	{ "name", required_argument, NULL, CTL_OPT_NAME },
	{ "san", required_argument, NULL, CTL_OPT_SAN },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_stage_install_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "ca", required_argument, NULL, CTL_OPT_CA },
	{ "cert", required_argument, NULL, CTL_OPT_CERT },
	{ "key", required_argument, NULL, CTL_OPT_KEY },
	{ "chain", required_argument, NULL, CTL_OPT_CHAIN },
	{ "daemon-uid", required_argument, NULL, CTL_OPT_DAEMON_UID },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_stage_retire_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "dry-run", no_argument, NULL, CTL_OPT_DRY_RUN },
	{ NULL, 0, NULL, 0 },
};

const struct ctl_cmd ctl_stage_generate_cmd = {
	.name = "generate",
	.args = "[--key-type TYPE] [--ca-days N] [--server-days N] [--name PREFIX] [--san SAN]...",
	.summary = "stage a new self-signed CA and a server certificate it signs",
	.options = CTL_GENERATE_OPTIONS,
	.timeout = CTL_GENERATE_TIMEOUT,
	.result = CAROTATE__V1__RESPONSE__RESULT_GENERATE_REPLY,
	.build = ctl_stage_build_generate,
	.print = ctl_stage_print,
};

const struct ctl_cmd ctl_stage_install_cmd = {
	.name = "install",
	.args = "--ca FILE --cert FILE --key FILE [--chain FILE] [--daemon-uid UID]",
	.summary = "stage a CA, server certificate and key from your own PKI",
	.options = CTL_INSTALL_OPTIONS,
	.timeout = CTL_STAGE_TIMEOUT,
	.result = CAROTATE__V1__RESPONSE__RESULT_INSTALL_REPLY,
	.build = ctl_stage_build_install,
	.print = ctl_stage_print,
	.clear = ctl_stage_install_clear,
};

const struct ctl_cmd ctl_stage_discard_cmd = {
	.name = "discard",
	.args = "",
	.summary = "remove the staged set (kept as a discarded-YYYYMMDD-HHMMSS backup)",
	.options = "",
	.timeout = CTL_STAGE_TIMEOUT,
	.result = CAROTATE__V1__RESPONSE__RESULT_DISCARD_REPLY,
	.build = ctl_stage_build_discard,
	.print = ctl_stage_print,
};

const struct ctl_cmd ctl_stage_retire_cmd = {
	.name = "retire",
	.args = "[--dry-run]",
	.summary = "drop CAs that are neither active nor staged from the trust bundle now",
	.options = CTL_RETIRE_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT_RETIRE_REPLY,
	.build = ctl_stage_build_retire,
	.print = ctl_stage_print_retire,
};

/* --san may repeat: the first LIMITS_MAX_SANS are kept, the rest only counted (and refused). */
static int
ctl_stage_generate_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_stage_generate_args *a = ctx;

	switch (c) {
	case CTL_OPT_KEY_TYPE:
		return ctl_args_once(cmd, name, &a->key_type, arg);
	case CTL_OPT_CA_DAYS:
		return ctl_args_once(cmd, name, &a->ca_days, arg);
	case CTL_OPT_SERVER_DAYS:
		return ctl_args_once(cmd, name, &a->server_days, arg);
	case CTL_OPT_NAME:
		return ctl_args_once(cmd, name, &a->name, arg);
	case CTL_OPT_SAN:
		if (a->n_sans < LIMITS_MAX_SANS)
			a->sans[a->n_sans] = (char *)arg;
		a->n_sans++;
		return 0;
	default:
		return ctl_args_usage_error(cmd, "unknown option --%s", name);
	}
}

static int
ctl_stage_key_type(const char *s, struct ctl_error *err)
{
	size_t i;

	for (i = 0; i < sizeof(ctl_stage_key_types) / sizeof(ctl_stage_key_types[0]); i++)
		if (strcmp(s, ctl_stage_key_types[i]) == 0)
			return 0;
	return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
	    "--key-type %s: unknown key type (expected " CTL_STAGE_KEY_TYPES_TEXT ")", s);
}

/* Days: plain decimal digits, 1 to LIMITS_MAX_DAYS; no sign, blank or unit. */
static int
ctl_stage_days(const char *opt, const char *s, uint32_t *days, struct ctl_error *err)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = *s >= '0' && *s <= '9' ? strtoul(s, &end, 10) : 0;
	if (v == 0 || errno != 0 || *end != '\0' || v > LIMITS_MAX_DAYS)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--%s %s: expected a whole number of days from 1 to %d", opt, s,
		    LIMITS_MAX_DAYS);
	*days = (uint32_t)v;
	return 0;
}

/* Syntax only: the daemon checks that the name or address itself is valid. */
static int
ctl_stage_sans(const struct ctl_stage_generate_args *a, struct ctl_error *err)
{
	const char *s;
	size_t i;

	if (a->n_sans > LIMITS_MAX_SANS)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--san: %zu given, at most %d allowed", a->n_sans, LIMITS_MAX_SANS);
	for (i = 0; i < a->n_sans; i++) {
		s = a->sans[i];
		if ((strncmp(s, "DNS:", 4) == 0 && s[4] != '\0') ||
		    (strncmp(s, "IP:", 3) == 0 && s[3] != '\0'))
			continue;
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--san %s: expected DNS:NAME or IP:ADDRESS", s);
	}
	return 0;
}

/* Unset fields stay zero or empty: the daemon's defaults apply. */
static int
ctl_stage_fill_generate(Carotate__V1__GenerateRequest *g, const struct ctl_stage_generate_args *a,
    struct ctl_error *err)
{
	if (a->key_type != NULL && ctl_stage_key_type(a->key_type, err) == -1)
		return -1;
	if (a->ca_days != NULL && ctl_stage_days("ca-days", a->ca_days, &g->ca_days, err) == -1)
		return -1;
	if (a->server_days != NULL &&
	    ctl_stage_days("server-days", a->server_days, &g->server_days, err) == -1)
		return -1;
	if (a->name != NULL && a->name[0] == '\0')
		return ctl_conn_error(
		    err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--name: empty prefix");
	if (ctl_stage_sans(a, err) == -1)
		return -1;
	if (a->key_type != NULL)
		g->key_type = (char *)a->key_type;
	if (a->name != NULL)
		g->name = (char *)a->name;
	g->n_sans = a->n_sans;
	g->sans = a->n_sans > 0 ? a->sans : NULL;
	return 0;
}

/* Usage errors (exit 1) come before wrong values (exit 5), whatever their order on the line. */
static int
ctl_stage_build_generate(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_stage_generate_args a = { .sans = r->sans };
	int first;

	carotate__v1__generate_request__init(&r->call.generate);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_GENERATE;
	r->req.generate = &r->call.generate;
	first = ctl_args_parse(
	    cmd, opts, argc, argv, ctl_stage_generate_longopts, ctl_stage_generate_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (ctl_stage_fill_generate(&r->call.generate, &a, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

static int
ctl_stage_install_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_stage_install_args *a = ctx;

	switch (c) {
	case CTL_OPT_CA:
		return ctl_args_once(cmd, name, &a->ca, arg);
	case CTL_OPT_CERT:
		return ctl_args_once(cmd, name, &a->cert, arg);
	case CTL_OPT_KEY:
		return ctl_args_once(cmd, name, &a->key, arg);
	case CTL_OPT_CHAIN:
		return ctl_args_once(cmd, name, &a->chain, arg);
	case CTL_OPT_DAEMON_UID:
		return ctl_args_once(cmd, name, &a->daemon_uid, arg);
	default:
		return ctl_args_usage_error(cmd, "unknown option --%s", name);
	}
}

static int
ctl_stage_read_install(
    Carotate__V1__InstallRequest *in, const struct ctl_stage_install_args *a, struct ctl_error *err)
{
	if (ctl_args_read_file("ca", a->ca, &in->ca, err) == -1 ||
	    ctl_args_read_file("cert", a->cert, &in->cert, err) == -1 ||
	    ctl_args_read_file("key", a->key, &in->key, err) == -1)
		return -1;
	if (a->chain != NULL && ctl_args_read_file("chain", a->chain, &in->chain, err) == -1)
		return -1;
	return 0;
}

/* Usage errors (exit 1) come before unreadable files (exit 5). */
static int
ctl_stage_build_install(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_stage_install_args a = { 0 };
	int first;

	carotate__v1__install_request__init(&r->call.install);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_INSTALL;
	r->req.install = &r->call.install;
	first = ctl_args_parse(
	    cmd, opts, argc, argv, ctl_stage_install_longopts, ctl_stage_install_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (a.ca == NULL || a.cert == NULL || a.key == NULL)
		return ctl_args_usage_error(cmd,
		    "--ca, --cert and --key are required (missing --%s)",
		    a.ca == NULL     ? "ca"
		    : a.cert == NULL ? "cert"
		                     : "key");
	r->secret = 1;
	if (a.daemon_uid != NULL && ctl_args_uid(a.daemon_uid, &r->daemon_uid) == -1)
		return ctl_args_usage_error(
		    cmd, "invalid --daemon-uid: %s (a numeric uid)", a.daemon_uid);
	r->daemon_uid_set = a.daemon_uid != NULL;
	if (ctl_stage_read_install(&r->call.install, &a, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

/* The key is a secret; the certificates are not, but one rule for all four is simpler. */
static void
ctl_stage_install_clear(struct ctl_request *r)
{
	if (r->req.call_case != CAROTATE__V1__REQUEST__CALL_INSTALL)
		return;
	ctl_args_wipe(&r->call.install.ca);
	ctl_args_wipe(&r->call.install.cert);
	ctl_args_wipe(&r->call.install.key);
	ctl_args_wipe(&r->call.install.chain);
}

static int
ctl_stage_build_discard(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	carotate__v1__discard_request__init(&r->call.discard);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_DISCARD;
	r->req.discard = &r->call.discard;
	return ctl_args_no_operands(cmd, opts, argc, argv);
}

static int
ctl_stage_retire_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	if (c != CTL_OPT_DRY_RUN)
		return ctl_args_usage_error(cmd, "unknown option --%s", name);
	*(protobuf_c_boolean *)ctx = 1;
	return 0;
}

static int
ctl_stage_build_retire(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	int first;

	carotate__v1__retire_request__init(&r->call.retire);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_RETIRE;
	r->req.retire = &r->call.retire;
	first = ctl_args_parse(cmd, opts, argc, argv, ctl_stage_retire_longopts,
	    ctl_stage_retire_option, &r->call.retire.dry_run);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	return 1;
}

static const Carotate__V1__StageReply *
ctl_stage_reply(const Carotate__V1__Response *resp)
{
	switch (resp->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_GENERATE_REPLY:
		return resp->generate_reply;
	case CAROTATE__V1__RESPONSE__RESULT_INSTALL_REPLY:
		return resp->install_reply;
	case CAROTATE__V1__RESPONSE__RESULT_DISCARD_REPLY:
		return resp->discard_reply;
	default:
		return NULL;
	}
}

/*
 * generate, install, discard. A failed proxy reload still exits 0: the set is staged (or
 * discarded) on disk, and what is left to do is reload the proxy, which the warning says.
 */
static int
ctl_stage_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__Response *resp)
{
	const Carotate__V1__StageReply *s = ctl_stage_reply(resp);
	int ret;

	if (opts->json)
		ret = ctl_stage_json(stdout, s);
	else if (resp->result_case == CAROTATE__V1__RESPONSE__RESULT_DISCARD_REPLY)
		ret = ctl_stage_discard_human(stdout, s);
	else
		ret = ctl_stage_human(stdout, s, (int64_t)time(NULL));
	ret = ctl_conn_finish(ret);
	ctl_stage_warnings(stderr, CTL_NAME, s);
	return ret;
}

static int
ctl_stage_print_retire(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	int ret;

	if (opts->json)
		ret = ctl_stage_retire_json(stdout, resp->retire_reply, resp->message);
	else
		ret = ctl_stage_retire_human(stdout, resp->retire_reply, resp->message);
	return ctl_conn_finish(ret);
}

/* generate, install and discard: one object, whichever of the three answered. */
int
ctl_stage_json(FILE *fp, const Carotate__V1__StageReply *r)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "staged", output_set_json(r->staged));
	output_jset(o, "bundle", output_bundle_json(r->bundle));
	output_jset(o, "reload", output_reload_json(r->reload));
	output_jset(o, "warnings", output_jstrings(r->warnings, r->n_warnings, 0));
	output_jset(o, "kept_as", output_jstr_opt(r->kept_as));
	return output_dump(fp, o);
}

/* generate and install: what is staged now, the bundle agents receive, the reload. */
int
ctl_stage_human(FILE *fp, const Carotate__V1__StageReply *r, int64_t now)
{
	const char *origin = r->staged != NULL ? output_s(r->staged->origin) : "";

	fputs("staged: new set", fp);
	if (origin[0] != '\0') {
		fputs(" (", fp);
		output_safe(fp, origin);
		fputc(')', fp);
	}
	fputc('\n', fp);
	if (r->staged != NULL)
		output_set_human(fp, "staged set:", r->staged, now);
	else {
		output_label(fp, "staged set:");
		fputs("not reported by carotated\n", fp);
	}
	output_bundle_human(fp, r->bundle, NULL, r->staged);
	output_reload_human(fp, r->reload);
	return ferror(fp) ? -1 : 0;
}

int
ctl_stage_discard_human(FILE *fp, const Carotate__V1__StageReply *r)
{
	fputs("discarded the staged set", fp);
	if (output_s(r->kept_as)[0] != '\0') {
		fputs("; kept as ", fp);
		output_safe(fp, r->kept_as);
	}
	fputc('\n', fp);
	output_bundle_human(fp, r->bundle, NULL, NULL);
	output_reload_human(fp, r->reload);
	return ferror(fp) ? -1 : 0;
}

/*
 * Meant for stderr in both output modes, so that an operator piping JSON still sees them;
 * a failed reload comes last, as the one that needs action.
 */
int
ctl_stage_warnings(FILE *fp, const char *prog, const Carotate__V1__StageReply *r)
{
	size_t i;

	for (i = 0; i < r->n_warnings; i++) {
		fprintf(fp, "%s: warning: ", prog);
		output_safe(fp, r->warnings[i]);
		fputc('\n', fp);
	}
	if (r->reload != NULL && r->reload->ran && !r->reload->ok)
		fprintf(fp,
		    "%s: warning: the proxy reload failed: agents still receive the new bundle, "
		    "but the canary listener serves the old certificate until the proxy reloads, "
		    "so no agent can prove (verified) that it trusts the new CA\n",
		    prog);
	return ferror(fp) ? -1 : 0;
}

static json_t *
ctl_stage_retired_json(const Carotate__V1__BundleCa *m)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "sha256", output_jhex(m->sha256));
	output_jset(o, "subject", output_jstr(m->subject));
	output_jset(o, "not_after", output_jtime_opt(m->not_after));
	output_jset(o, "retained_until", output_jtime_opt(m->retained_until));
	return o;
}

int
ctl_stage_retire_json(FILE *fp, const Carotate__V1__RetireReply *r, const char *message)
{
	json_t *o = output_jcheck(json_object()), *a = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < r->n_retired; i++)
		if (json_array_append_new(a, ctl_stage_retired_json(r->retired[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "dry_run", json_boolean(r->dry_run));
	output_jset(o, "retired", a);
	output_jset(o, "bundle", output_bundle_json(r->bundle));
	output_jset(o, "message", output_jstr_opt(message));
	return output_dump(fp, o);
}

int
ctl_stage_retire_human(FILE *fp, const Carotate__V1__RetireReply *r, const char *message)
{
	size_t i;

	if (output_s(message)[0] != '\0')
		output_safe(fp, message);
	else
		fprintf(fp, "%s %zu CA%s", r->dry_run ? "would retire" : "retired", r->n_retired,
		    r->n_retired == 1 ? "" : "s");
	fputc('\n', fp);
	for (i = 0; i < r->n_retired; i++)
		output_member_human(fp, r->retired[i]);
	output_bundle_human(fp, r->bundle, NULL, NULL);
	return ferror(fp) ? -1 : 0;
}
