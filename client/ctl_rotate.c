/*
 * carotatectl rotate and restore: the swaps that put a set live, their gate, and their
 * replies, shown also when refused or rolled back.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "backupid.h"
#include "ctl.h"
#include "log.h"
#include "output.h"
#include "status.h"
#include "wire.h"

#define CTL_ROTATE_OPTIONS                                                                         \
	"  --force                   rotate even though not every active agent acknowledged\n"     \
	"                            (or verified) the staged CA, or none checked in at all;\n"    \
	"                            needs --reason\n"                                             \
	"  --reason TEXT             why, recorded in the backup's manifest and the audit log:\n"  \
	"                            1 to 256 printable ASCII characters\n"                        \
	"  --dry-run                 check the gate and show what would change; change nothing\n"  \
	"  --expect-ca SHA256        refuse unless the staged CA is this one (its sha256 as\n"     \
	"                            status shows it); --force does not override it. At a\n"       \
	"                            terminal, rotate shows the staged CA and sends it as\n"       \
	"                            the expected one itself\n"                                    \
	"\n"                                                                                       \
	"rotate backs the active set up to <ssl>/certs-YYYYMMDD-HHMMSS/, puts the staged set\n"    \
	"live, reloads the proxy and checks over TLS that it serves the new certificate. If\n"     \
	"it does not within [proxy] check_timeout, the previous set is put back and the proxy\n"   \
	"reloaded again (exit 6). With no active set yet, the staged set is simply activated.\n"   \
	"\n"                                                                                       \
	"rotate refuses too when new/ was replaced outside carotatectl: the gate counted\n"        \
	"another CA. carotated then counts the new CA from zero; agents must acknowledge it.\n"    \
	"\n"                                                                                       \
	"exit status: 0 rotated; 3 refused by the gate (the pending agents are listed),\n"         \
	"nothing is staged, new/ changed, or the staged CA is not --expect-ca; 6 the proxy\n"      \
	"did not serve the new set (rolled back); 1, 2, 4, 5 as for every command.\n"

#define CTL_RESTORE_OPTIONS                                                                        \
	"  --latest                  the newest backup (instead of BACKUP_ID)\n"                   \
	"  --dry-run                 check the backup and show what would change; change\n"        \
	"                            nothing\n"                                                    \
	"  --force                   restore even though agents no longer trust the backup's\n"    \
	"                            CA (retired, or past [bundle] retention); needs --reason\n"   \
	"  --reason TEXT             why, recorded in the audit log: 1 to 256 printable ASCII\n"   \
	"                            characters\n"                                                 \
	"\n"                                                                                       \
	"BACKUP_ID is the exact name of a backup in the SSL directory, certs-YYYYMMDD-HHMMSS\n"    \
	"or certs-YYYYMMDD-HHMMSS-N (see backups). The backup is checked first (manifest sums,\n"  \
	"key matches certificate, certificate chains to its CA); the active set is backed up\n"    \
	"too, so a restore can itself be undone. Then the proxy is reloaded and checked as by\n"   \
	"rotate, with the same roll back.\n"                                                       \
	"\n"                                                                                       \
	"A backup whose CA is not in the trust bundle agents hold now is refused (exit 3,\n"       \
	"a dry run says so too) unless --force --reason is given.\n"                               \
	"\n"                                                                                       \
	"exit status: 0 restored; 3 agents no longer trust its CA; 4 not an admin; 5 not a\n"      \
	"backup id, or the backup is not sound; 6 the proxy did not serve the restored set\n"      \
	"(rolled back); 1, 2 as for every command.\n"

#define CTL_RENEW_OPTIONS                                                                          \
	"  --server-days N           validity of the new server certificate, 1 to 36500 days\n"    \
	"                            (default 397; never past the CA's own end)\n"                 \
	"  --if-expires-within DURATION\n"                                                         \
	"                            renew only when the server certificate expires within\n"      \
	"                            DURATION (e.g. 30d); else change nothing, exit 0, and\n"      \
	"                            say when it expires\n"                                        \
	"  --if-due                  the same with the daemon's [renew] before (default 30d):\n"   \
	"                            what the packaged timer runs\n"                               \
	"  --dry-run                 make (or check) the certificate and show it; change\n"        \
	"                            nothing\n"                                                    \
	"  --cert FILE               custom sets: the new server certificate (PEM), signed by\n"   \
	"                            the active CA, leaf first\n"                                  \
	"  --key FILE                its private key (PEM, unencrypted)\n"                         \
	"  --chain FILE              intermediate certificates (PEM), optional\n"                  \
	"  --daemon-uid UID          send the key only to a daemon running as UID\n"               \
	"\n"                                                                                       \
	"renew makes a new server key and certificate under the active CA, with the names of\n"    \
	"[proxy] names, signed with the CA key carotated kept when it generated that CA. For\n"    \
	"a custom set carotated holds no CA key: give the new leaf with --cert and --key; it\n"    \
	"is checked as install checks a set, and must chain to the active CA. The set then\n"      \
	"goes live as rotate puts one live: backup (reason renew), reload, TLS check, roll\n"      \
	"back. The CA and the trust bundle do not change: agents have nothing to do.\n"            \
	"\n"                                                                                       \
	"exit status: 0 renewed (or not due); 3 nothing active, a staged set waits, or a\n"        \
	"custom set without --cert/--key; 5 the certificate is refused (another CA, a key\n"       \
	"that does not match, expired); 6 the proxy did not serve it (rolled back).\n"

/* rotate's, restore's and renew's own options; ctx is the request's call. */
struct ctl_rotate_args {
	const char *reason;
	const char *expect_ca;
	int force, dry_run, latest;
	/* renew */
	int if_due;
	const char *server_days, *within, *cert, *key, *chain, *daemon_uid;
};

static int ctl_rotate_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_rotate_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err);
static int ctl_rotate_sha256_ok(const char *s);
static int ctl_rotate_shown_ca(
    const struct ctl_opts *opts, const struct ctl_request *r, char sha[65], struct ctl_error *err);
static int ctl_rotate_backup_id(const char *id, struct ctl_error *err);
static int ctl_rotate_build_restore(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_rotate_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp);
static int ctl_rotate_run(
    const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r);
static int ctl_rotate_changed(const Carotate__V1__RotateReply *r);
static int ctl_rotate_build_renew(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc,
    char **argv, struct ctl_request *r, struct ctl_error *err);
static int ctl_rotate_renew_fill(const struct ctl_cmd *cmd, const struct ctl_rotate_args *a,
    struct ctl_request *r, struct ctl_error *err);
static void ctl_rotate_renew_clear(struct ctl_request *r);
static const Carotate__V1__RotateReply *ctl_rotate_reply(const Carotate__V1__Response *resp);

static const struct option ctl_rotate_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "force", no_argument, NULL, CTL_OPT_FORCE },
	{ "reason", required_argument, NULL, CTL_OPT_REASON },
	{ "dry-run", no_argument, NULL, CTL_OPT_DRY_RUN },
	{ "expect-ca", required_argument, NULL, CTL_OPT_EXPECT_CA },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_rotate_restore_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "latest", no_argument, NULL, CTL_OPT_LATEST },
	{ "dry-run", no_argument, NULL, CTL_OPT_DRY_RUN },
	{ "force", no_argument, NULL, CTL_OPT_FORCE },
	{ "reason", required_argument, NULL, CTL_OPT_REASON },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_rotate_renew_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "server-days", required_argument, NULL, CTL_OPT_SERVER_DAYS },
	{ "if-expires-within", required_argument, NULL, CTL_OPT_IF_EXPIRES_WITHIN },
	{ "if-due", no_argument, NULL, CTL_OPT_IF_DUE },
	{ "dry-run", no_argument, NULL, CTL_OPT_DRY_RUN },
	{ "cert", required_argument, NULL, CTL_OPT_CERT },
	{ "key", required_argument, NULL, CTL_OPT_KEY },
	{ "chain", required_argument, NULL, CTL_OPT_CHAIN },
	{ "daemon-uid", required_argument, NULL, CTL_OPT_DAEMON_UID },
	{ NULL, 0, NULL, 0 },
};

const struct ctl_cmd ctl_rotate_renew_cmd = {
	.name = "renew",
	.args = "[--server-days N] [--if-expires-within DURATION | --if-due] [--dry-run] [--cert "
	        "FILE --key "
	        "FILE [--chain FILE]]",
	.summary = "a new server certificate under the active CA, put live as rotate does",
	.options = CTL_RENEW_OPTIONS,
	.timeout = CTL_SWAP_TIMEOUT,
	.result = CAROTATE__V1__RESPONSE__RESULT_RENEW_REPLY,
	.build = ctl_rotate_build_renew,
	.print = ctl_rotate_print,
	.run = ctl_rotate_run,
	.clear = ctl_rotate_renew_clear,
};

const struct ctl_cmd ctl_rotate_cmd = {
	.name = "rotate",
	.args = "[--force --reason TEXT] [--dry-run] [--expect-ca SHA256]",
	.summary = "put the staged set live once every active agent acknowledged its CA",
	.options = CTL_ROTATE_OPTIONS,
	.timeout = CTL_SWAP_TIMEOUT,
	.result = CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY,
	.build = ctl_rotate_build,
	.print = ctl_rotate_print,
	.run = ctl_rotate_run,
};

const struct ctl_cmd ctl_rotate_restore_cmd = {
	.name = "restore",
	.args = "BACKUP_ID | --latest [--dry-run] [--force --reason TEXT]",
	.summary = "put a backup back as the active set (the current one is backed up first)",
	.options = CTL_RESTORE_OPTIONS,
	.timeout = CTL_SWAP_TIMEOUT,
	.result = CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY,
	.build = ctl_rotate_build_restore,
	.print = ctl_rotate_print,
	.run = ctl_rotate_run,
};

static int
ctl_rotate_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_rotate_args *a = ctx;

	switch (c) {
	case CTL_OPT_REASON:
		return ctl_args_once(cmd, name, &a->reason, arg);
	case CTL_OPT_FORCE:
		a->force = 1;
		return 0;
	case CTL_OPT_DRY_RUN:
		a->dry_run = 1;
		return 0;
	case CTL_OPT_LATEST:
		a->latest = 1;
		return 0;
	case CTL_OPT_EXPECT_CA:
		return ctl_args_once(cmd, name, &a->expect_ca, arg);
	case CTL_OPT_SERVER_DAYS:
		return ctl_args_once(cmd, name, &a->server_days, arg);
	case CTL_OPT_IF_EXPIRES_WITHIN:
		return ctl_args_once(cmd, name, &a->within, arg);
	case CTL_OPT_IF_DUE:
		a->if_due = 1;
		return 0;
	case CTL_OPT_CERT:
		return ctl_args_once(cmd, name, &a->cert, arg);
	case CTL_OPT_KEY:
		return ctl_args_once(cmd, name, &a->key, arg);
	case CTL_OPT_CHAIN:
		return ctl_args_once(cmd, name, &a->chain, arg);
	case CTL_OPT_DAEMON_UID:
		return ctl_args_once(cmd, name, &a->daemon_uid, arg);
	}
	return ctl_args_usage_error(cmd, "unknown option --%s", name);
}

static int
ctl_rotate_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_rotate_args a = { 0 };
	int first;

	carotate__v1__rotate_request__init(&r->call.rotate);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	r->req.rotate = &r->call.rotate;
	first = ctl_args_parse(cmd, opts, argc, argv, ctl_rotate_longopts, ctl_rotate_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (a.force && a.reason == NULL)
		return ctl_args_usage_error(
		    cmd, "--force needs --reason: say why the gate is overridden");
	if (a.reason != NULL && ctl_args_reason(a.reason, err) == -1)
		return CTL_BUILD_REFUSED;
	if (a.expect_ca != NULL && !ctl_rotate_sha256_ok(a.expect_ca)) {
		ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--expect-ca %s: expected the CA's SHA-256, 64 lower-case hex digits "
		    "(see " CTL_NAME " status)",
		    a.expect_ca);
		return CTL_BUILD_REFUSED;
	}
	r->call.rotate.expect_ca = (char *)(a.expect_ca != NULL ? a.expect_ca : "");
	r->call.rotate.force = a.force;
	r->call.rotate.dry_run = a.dry_run;
	r->call.rotate.reason = (char *)(a.reason != NULL ? a.reason : "");
	return 1;
}

/* A CA fingerprint as status shows it: 64 lower-case hex digits. */
static int
ctl_rotate_sha256_ok(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/*
 * An operator typing rotate at a terminal is shown the staged CA that will go
 * live, and that CA is sent as expect_ca: carotated refuses if new/ holds
 * another one by the time it swaps. Scripts (no terminal, or --json) and an
 * explicit --expect-ca are left alone. 0 with sha filled ("" nothing staged
 * or not interactive), -1 when status could not be asked (err filled).
 */
static int
ctl_rotate_shown_ca(
    const struct ctl_opts *opts, const struct ctl_request *r, char sha[65], struct ctl_error *err)
{
	struct ctl_request sr = { .req = CAROTATE__V1__REQUEST__INIT };
	const Carotate__V1__CertSet *staged;
	struct wire_budget budget;
	Carotate__V1__Response *resp;

	sha[0] = '\0';
	if (r->req.call_case != CAROTATE__V1__REQUEST__CALL_ROTATE || opts->json ||
	    r->call.rotate.dry_run || r->call.rotate.expect_ca[0] != '\0' ||
	    !isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
		return 0;
	sr.req.version = r->req.version;
	carotate__v1__status_request__init(&sr.call.status);
	sr.req.call_case = CAROTATE__V1__REQUEST__CALL_STATUS;
	sr.req.status = &sr.call.status;
	if ((resp = ctl_conn_call(&ctl_status_cmd, opts, &sr, &budget, err)) == NULL)
		return -1;
	staged = resp->status_reply->staged;
	if (staged != NULL && staged->ca != NULL && ctl_rotate_sha256_ok(staged->ca->sha256)) {
		snprintf(sha, 65, "%s", staged->ca->sha256);
		fputs(CTL_NAME ": rotating to the staged CA ", stderr);
		output_safe(stderr, staged->ca->subject);
		fprintf(stderr, "\n" CTL_NAME ":   sha256 %s (sent as --expect-ca)\n", sha);
	}
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	return 0;
}

/* The shape of a backup id, so that a typo fails here; the daemon checks it again. */
static int
ctl_rotate_backup_id(const char *id, struct ctl_error *err)
{
	if (backupid_valid(id))
		return 0;
	return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
	    "not a backup id: expected certs-YYYYMMDD-HHMMSS or certs-YYYYMMDD-HHMMSS-N "
	    "(see " CTL_NAME " backups)");
}

static int
ctl_rotate_build_restore(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_rotate_args a = { 0 };
	int first;

	carotate__v1__restore_request__init(&r->call.restore);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_RESTORE;
	r->req.restore = &r->call.restore;
	first = ctl_args_parse(
	    cmd, opts, argc, argv, ctl_rotate_restore_longopts, ctl_rotate_option, &a);
	if (first <= 0)
		return first;
	if (a.latest && first < argc)
		return ctl_args_usage_error(cmd, "BACKUP_ID and --latest exclude each other");
	if (!a.latest && (first = ctl_args_one_operand(cmd, argc, argv, first, "BACKUP_ID")) == -1)
		return -1;
	if (!a.latest && ctl_rotate_backup_id(argv[first], err) == -1)
		return CTL_BUILD_REFUSED;
	if (a.force && a.reason == NULL)
		return ctl_args_usage_error(
		    cmd, "--force needs --reason: say why agents may be cut off");
	if (a.reason != NULL && ctl_args_reason(a.reason, err) == -1)
		return CTL_BUILD_REFUSED;
	r->call.restore.force = a.force;
	r->call.restore.reason = (char *)(a.reason != NULL ? a.reason : "");
	r->call.restore.latest = a.latest;
	r->call.restore.dry_run = a.dry_run;
	r->call.restore.backup = a.latest ? (char *)"" : argv[first];
	return 1;
}

static int
ctl_rotate_print(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	const Carotate__V1__RotateReply *s = ctl_rotate_reply(resp);
	int ret;

	if (s->skipped && !opts->json) {
		/* Not due: the daemon's sentence says until when; a timer's log keeps it. */
		output_safe(stdout, resp->message);
		fputc('\n', stdout);
		return ctl_conn_finish(ferror(stdout) ? -1 : 0);
	}
	if (opts->json)
		ret = ctl_rotate_json(stdout, s, NULL, NULL);
	else
		ret = ctl_rotate_human(stdout, s, (int64_t)time(NULL));
	return ctl_conn_finish(ret);
}

/*
 * A refused or rolled-back rotate still carries its reply: the gate's figures and the
 * pending agents, or what the proxy served. They are shown with the error (stdout), the
 * exit code is the status's.
 */
static int
ctl_rotate_run(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r)
{
	const Carotate__V1__RotateReply *s;
	struct wire_budget budget;
	struct ctl_error err;
	Carotate__V1__Response *resp;
	struct ctl_request shown;
	char sha[65];
	int code;

	if (ctl_rotate_shown_ca(opts, r, sha, &err) == -1)
		return ctl_conn_fail(opts, &err);
	if (sha[0] != '\0') {
		shown = *r;
		shown.call.rotate.expect_ca = sha;
		shown.req.rotate = &shown.call.rotate;
		r = &shown;
	}
	if ((resp = ctl_conn_exchange(opts, r, &budget, &err)) == NULL)
		return ctl_conn_fail(opts, &err);
	s = ctl_rotate_reply(resp);
	if (resp->status == CAROTATE__V1__STATUS__OK && s != NULL &&
	    resp->result_case == cmd->result)
		code = ctl_rotate_print(cmd, opts, r, resp);
	else if (resp->status == CAROTATE__V1__STATUS__OK) {
		ctl_conn_error(&err, CAROTATE__V1__STATUS__INTERNAL,
		    "reply from carotated to %s carries no %s result", cmd->name, cmd->name);
		code = ctl_conn_fail(opts, &err);
	} else {
		ctl_conn_error(&err, resp->status, "%s",
		    resp->message[0] != '\0' ? resp->message : status_message(resp->status));
		if (s == NULL)
			code = ctl_conn_fail(opts, &err);
		else {
			fputs(CTL_NAME ": ", stderr);
			output_safe(stderr, err.message);
			fputc('\n', stderr);
			if (opts->json)
				ctl_rotate_json(stdout, s, status_name(resp->status), err.message);
			else
				ctl_rotate_human(stdout, s, (int64_t)time(NULL));
			fflush(stdout);
			code = status_exit_code(resp->status);
		}
	}
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	return code;
}

/*
 * Whether the set on disk changed: the daemon attaches the reload's result only once the
 * swap went through (rpc_rotate.c), so a refusal, a dry run or a swap undone at once has
 * none. Then after is the set that would have gone live, and nothing else.
 */
static int
ctl_rotate_changed(const Carotate__V1__RotateReply *r)
{
	return !r->dry_run && r->reload != NULL;
}

/*
 * rotate and restore, whether they succeeded or not: a refused rotate carries the gate's
 * figures and the first pending agents, a rolled-back one what was served. error is NULL on
 * success, else {status, message} as output_error_json writes it.
 */
int
ctl_rotate_json(
    FILE *fp, const Carotate__V1__RotateReply *r, const char *status, const char *message)
{
	json_t *o = output_jcheck(json_object()), *e, *list;
	size_t i;

	output_jset(o, "dry_run", json_boolean(r->dry_run));
	output_jset(o, "before", output_set_json(r->before));
	/* One meaning per key: "after" is what is live after a change, never a proposal. */
	output_jset(
	    o, ctl_rotate_changed(r) ? "after" : "would_become_active", output_set_json(r->after));
	output_jset(o, "backup", output_jstr_opt(r->backup));
	output_jset(o, "restored", output_jstr_opt(r->restored));
	output_jset(o, "reload", output_reload_json(r->reload));
	output_jset(o, "verified", json_boolean(r->verified));
	output_jset(o, "served", output_jstr_opt(r->served));
	output_jset(o, "rolled_back", json_boolean(r->rolled_back));
	output_jset(o, "bundle", output_bundle_json(r->bundle));
	if (output_s(r->gate)[0] != '\0') {
		output_jset(o, "gate", output_jstr(r->gate));
		output_jset(o, "active", output_jcount(r->active));
		output_jset(o, "confirmed", output_jcount(r->confirmed));
		output_jset(o, "forced", json_boolean(r->forced));
		list = output_jcheck(json_array());
		for (i = 0; i < r->n_pending_agents; i++)
			if (json_array_append_new(
			        list, output_pending_json(r->pending_agents[i])) != 0)
				fatalx("out of memory building JSON");
		output_jset(o, "pending_agents", list);
	}
	output_jset(o, "pruned", output_jstrings(r->pruned, r->n_pruned, 0));
	output_jset(o, "rotate_ms", output_jcount(r->rotate_ms));
	output_jset(o, "skipped", json_boolean(r->skipped));
	if (status != NULL) {
		e = output_jcheck(json_object());
		output_jset(e, "status", output_jstr(status));
		output_jset(e, "message", output_jstr(message));
		output_jset(o, "error", e);
	}
	return output_dump(fp, o);
}

int
ctl_rotate_human(FILE *fp, const Carotate__V1__RotateReply *r, int64_t now)
{
	const char *what = output_s(r->restored)[0] != '\0' ? "restore"
	                   : r->gate[0] == '\0'             ? "renew"
	                                                    : "rotate";
	int changed = ctl_rotate_changed(r);
	size_t i;

	if (r->dry_run)
		fprintf(fp, "dry run: nothing was changed\n");
	if (output_s(r->gate)[0] != '\0') {
		output_label(fp, "gate:");
		fprintf(fp, "%" PRIu64 " of %" PRIu64 " active agents %s the staged CA%s\n",
		    r->confirmed, r->active, output_s(r->gate),
		    r->before == NULL ? " (no active set before: a first activation cuts no agent "
		                        "off, so the gate does not apply)"
		    : r->forced       ? " (FORCED)"
		                      : "");
	}
	for (i = 0; i < r->n_pending_agents; i++) {
		output_label(fp, i == 0 ? "pending:" : "");
		output_safe(fp, r->pending_agents[i]->id);
		fputc('\n', fp);
	}
	if (output_s(r->restored)[0] != '\0') {
		/* restore --latest: which backup "latest" was is the first thing to know. */
		output_label(fp, "restored:");
		output_safe(fp, r->restored);
		fputc('\n', fp);
	}
	/* "active now:" only ever names what is live after a change, never a proposal. */
	if (r->before != NULL)
		output_set_human(fp, changed ? "active before:" : "active:", r->before, now);
	else {
		output_label(fp, changed ? "active before:" : "active:");
		fputs("none\n", fp);
	}
	if (r->after != NULL)
		output_set_human(
		    fp, changed ? "active now:" : "would become active:", r->after, now);
	if (output_s(r->backup)[0] != '\0') {
		output_label(fp, "backup:");
		output_safe(fp, r->backup);
		fputs(r->rolled_back ? " (put back)\n" : " (the previous set)\n", fp);
	}
	if (r->reload != NULL)
		output_reload_human(fp, r->reload);
	if (!r->dry_run && (r->reload != NULL || r->verified)) {
		output_label(fp, "check:");
		if (r->verified)
			fprintf(fp,
			    "the proxy serves the %s certificate (%s took %" PRIu64 " ms)\n",
			    strcmp(what, "restore") == 0 ? "restored" : "new", what, r->rotate_ms);
		else if (r->rolled_back)
			fputs("the proxy did not serve the new certificate: ROLLED BACK\n", fp);
		else
			fputs("the proxy did not serve the new certificate\n", fp);
	}
	for (i = 0; i < r->n_pruned; i++) {
		output_label(fp, i == 0 ? "pruned:" : "");
		output_safe(fp, r->pruned[i]);
		fputc('\n', fp);
	}
	if (r->bundle != NULL && !r->dry_run)
		output_bundle_human(fp, r->bundle, NULL, NULL);
	return ferror(fp) ? -1 : 0;
}

/* The swap's reply of rotate, restore or renew; NULL when the response carries none. */
static const Carotate__V1__RotateReply *
ctl_rotate_reply(const Carotate__V1__Response *resp)
{
	switch (resp->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY:
		return resp->restore_reply;
	case CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY:
		return resp->rotate_reply;
	case CAROTATE__V1__RESPONSE__RESULT_RENEW_REPLY:
		return resp->renew_reply;
	default:
		return NULL;
	}
}

/* Usage errors (exit 1) come before unreadable files (exit 5). */
static int
ctl_rotate_renew_fill(const struct ctl_cmd *cmd, const struct ctl_rotate_args *a,
    struct ctl_request *r, struct ctl_error *err)
{
	Carotate__V1__RenewRequest *q = &r->call.renew;
	uint64_t v;

	if ((a->cert != NULL) != (a->key != NULL))
		return ctl_args_usage_error(cmd, "--cert and --key go together");
	if (a->chain != NULL && a->cert == NULL)
		return ctl_args_usage_error(cmd, "--chain needs --cert and --key");
	if (a->server_days != NULL && a->cert != NULL)
		return ctl_args_usage_error(cmd,
		    "--server-days makes a certificate; --cert brings one with its own validity");
	if (a->server_days != NULL) {
		if (ctl_args_count(a->server_days, 1, LIMITS_MAX_DAYS, &v) == -1)
			return ctl_args_usage_error(cmd, "invalid --server-days: %s (1 to %d)",
			    a->server_days, LIMITS_MAX_DAYS);
		q->server_days = (uint32_t)v;
	}
	if (a->within != NULL &&
	    ctl_args_duration(a->within, "smhd", CTL_MAX_SPAN, &q->if_expires_within) == -1)
		return ctl_args_usage_error(cmd,
		    "invalid --if-expires-within: %s (a duration such as 30d, at most %d days)",
		    a->within, LIMITS_MAX_DAYS);
	if (a->within != NULL && a->if_due)
		return ctl_args_usage_error(
		    cmd, "--if-due and --if-expires-within exclude each other");
	q->if_due = a->if_due;
	q->dry_run = a->dry_run;
	if (a->cert == NULL)
		return 1;
	r->secret = 1;
	if (a->daemon_uid != NULL && ctl_args_uid(a->daemon_uid, &r->daemon_uid) == -1)
		return ctl_args_usage_error(
		    cmd, "invalid --daemon-uid: %s (a numeric uid)", a->daemon_uid);
	r->daemon_uid_set = a->daemon_uid != NULL;
	if (ctl_args_read_file("cert", a->cert, &q->cert, err) == -1 ||
	    ctl_args_read_file("key", a->key, &q->key, err) == -1 ||
	    (a->chain != NULL && ctl_args_read_file("chain", a->chain, &q->chain, err) == -1))
		return CTL_BUILD_REFUSED;
	return 1;
}

static int
ctl_rotate_build_renew(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_rotate_args a = { 0 };
	int first;

	carotate__v1__renew_request__init(&r->call.renew);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_RENEW;
	r->req.renew = &r->call.renew;
	first =
	    ctl_args_parse(cmd, opts, argc, argv, ctl_rotate_renew_longopts, ctl_rotate_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	return ctl_rotate_renew_fill(cmd, &a, r, err);
}

/* The key is a secret; the certificates are wiped by the same rule. */
static void
ctl_rotate_renew_clear(struct ctl_request *r)
{
	if (r->req.call_case != CAROTATE__V1__REQUEST__CALL_RENEW)
		return;
	ctl_args_wipe(&r->call.renew.cert);
	ctl_args_wipe(&r->call.renew.key);
	ctl_args_wipe(&r->call.renew.chain);
}
