/*
 * generate, install, discard: their argument checks (every field against an
 * allow-list before a certificate job sees it) and their reply. The job, the
 * writing of the staged set, discard and the reload are the staging engine's
 * (engine/stage.c, engine/certjob.c); it reports through rpc_stage_hooks,
 * which answer the client and let the next state change in (op_finish).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "bundle.h"
#include "carotated.h"
#include "certjob.h"
#include "certset.h"
#include "config.h"
#include "dispatch.h"
#include "op.h"
#include "pki.h"
#include "pool.h"
#include "reply.h"
#include "ssldir.h"
#include "stage.h"
#include "xmalloc.h"

#define STAGE_MAX_NAME 64

/* A generate, install or discard the engine carries out: who waits for the answer. */
struct rpc_stage_call {
	struct rpc_ctx *ctx; /* while the handler runs, for rpc_stage_begin */
	struct carotated *cd;
	struct control_pending *pending;
	struct audit_call *audit; /* taken at begin: closed before the intent note goes */
	int noted;                /* the engine wrote an intent note with it (rpc_stage_save) */
	const char *call;
	Carotate__V1__Response *reply; /* kept while a pool's members take the new staging */
};

static int rpc_stage_check_generate(struct rpc_ctx *, const Carotate__V1__GenerateRequest *,
    struct certjob *, Carotate__V1__Response *);
static int rpc_stage_default_sans(
    const struct config *, struct certjob *, Carotate__V1__Response *);
static struct rpc_stage_call *rpc_stage_call_new(struct rpc_ctx *);
static void rpc_stage_begin(void *);
static int rpc_stage_save(void *, const char *, char *, size_t);
static void rpc_stage_reply(struct carotated *, struct stage_result *, Carotate__V1__Response *);
static void rpc_stage_done(struct stage_result *, void *);
static void rpc_stage_pooled(Carotate__V1__Status, const char *, void *);
static void rpc_stage_finish(struct rpc_stage_call *);

static const struct stage_hooks rpc_stage_hooks = {
	rpc_stage_begin,
	rpc_stage_save,
	rpc_stage_done,
};

static struct rpc_stage_call *
rpc_stage_call_new(struct rpc_ctx *ctx)
{
	struct rpc_stage_call *c = xcalloc(1, sizeof(*c));

	c->ctx = ctx;
	c->cd = ctx->cd;
	return c;
}

/* The call goes on: its answer waits (op_finish in rpc_stage_done). */
static void
rpc_stage_begin(void *arg)
{
	struct rpc_stage_call *c = arg;

	c->pending = op_defer(c->ctx);
	c->audit = op_take_audit(c->cd, c->pending);
	c->ctx = NULL;
}

/*
 * The call's audit record for the intent note: before begin (discard) it is
 * still the context's, after it ours.
 */
static int
rpc_stage_save(void *arg, const char *staged, char *buf, size_t len)
{
	struct rpc_stage_call *c = arg;
	struct audit_call *ac = c->audit != NULL ? c->audit : c->ctx != NULL ? c->ctx->audit : NULL;

	c->noted = 1;
	return ac != NULL ? audit_call_note(ac, staged, buf, len) : 0;
}

/* What is now staged (or the backup a discard made) and the bundle published. */
static void
rpc_stage_reply(struct carotated *cd, struct stage_result *res, Carotate__V1__Response *reply)
{
	const struct config *conf = cd->conf;
	Carotate__V1__StageReply *sr = xmalloc(sizeof(*sr));
	time_t now = time(NULL);
	struct bundle b;
	char err[256];
	X509 *ca = NULL;

	carotate__v1__stage_reply__init(sr);
	sr->warnings = res->warnings;
	sr->n_warnings = res->n_warnings;
	sr->reload = res->reload;
	res->warnings = NULL;
	res->n_warnings = 0;
	res->reload = NULL;
	if (res->kept_as == NULL) {
		sr->staged = certset_describe(conf, 1, now, &ca);
		X509_free(ca);
	} else
		sr->kept_as = xstrdup(res->kept_as);
	if (bundle_derive(conf, now, &b, err, sizeof(err)) == 0)
		sr->bundle = bundle_describe(&b, ssldir_published(conf, b.pem, b.pem_len));
	bundle_clear(&b);
	if (strcmp(res->call, "generate") == 0) {
		reply->result_case = CAROTATE__V1__RESPONSE__RESULT_GENERATE_REPLY;
		reply->generate_reply = sr;
	} else if (strcmp(res->call, "install") == 0) {
		reply->result_case = CAROTATE__V1__RESPONSE__RESULT_INSTALL_REPLY;
		reply->install_reply = sr;
	} else {
		reply->result_case = CAROTATE__V1__RESPONSE__RESULT_DISCARD_REPLY;
		reply->discard_reply = sr;
	}
}

/* The engine is done: the client is answered (if still there) and the next change may start. */
static void
rpc_stage_done(struct stage_result *res, void *arg)
{
	struct rpc_stage_call *c = arg;

	c->reply = reply_new();
	c->call = res->call;
	if (res->status != CAROTATE__V1__STATUS__OK) {
		reply_error(c->reply, res->status, "%s", res->message);
		rpc_stage_finish(c);
		return;
	}
	rpc_stage_reply(c->cd, res, c->reply);
	/* In a pool, what is staged here becomes the pool's: every member stages it first. */
	if (res->status == CAROTATE__V1__STATUS__OK) {
		pool_mutation_publish(c->cd, res->call, rpc_stage_pooled, c);
		return;
	}
	rpc_stage_finish(c);
}

/* Every member took it (OK), or the pool was put back, which message says. */
static void
rpc_stage_pooled(Carotate__V1__Status status, const char *message, void *arg)
{
	struct rpc_stage_call *c = arg;

	if (status != CAROTATE__V1__STATUS__OK)
		reply_error(c->reply, status, "%s", message);
	rpc_stage_finish(c);
}

static void
rpc_stage_finish(struct rpc_stage_call *c)
{
	/* Recorded first: a stop between the two leaves the note, not an unclaimed change. */
	audit_call_end(c->audit, c->reply);
	c->audit = NULL;
	if (c->noted)
		stage_forget(c->cd, c->call);
	op_finish(c->cd, c->pending, c->reply);
	free(c);
}

int
rpc_stage_resume(struct carotated *cd)
{
	char *text = stage_pending(cd);
	int r = text != NULL ? audit_call_settle(cd, text) : 0;

	free(text);
	/* Recorded (or not ours): the note goes, and the debris of one a stop cut short. */
	stage_forget(cd, "start-up");
	return r;
}

void
rpc_stage_abandon(void)
{
	stage_abandon();
}

/* The configured proxy names as SANs; the host's name when none are configured. */
static int
rpc_stage_default_sans(const struct config *conf, struct certjob *op, Carotate__V1__Response *reply)
{
	char host[256];
	size_t i;

	if (conf->n_proxy_names > 0) {
		op->sans = xcalloc(conf->n_proxy_names, sizeof(char *));
		for (i = 0; i < conf->n_proxy_names; i++)
			xasprintf(&op->sans[i], "%s:%s",
			    config_is_ip(conf->proxy_names[i]) ? "IP" : "DNS",
			    conf->proxy_names[i]);
		op->profile.n_sans = conf->n_proxy_names;
		return 0;
	}
	if (gethostname(host, sizeof(host)) == -1 || config_dns_invalid(host) != NULL)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "no names for the server certificate: set [proxy] names or pass --san");
	op->sans = xcalloc(1, sizeof(char *));
	xasprintf(&op->sans[0], "DNS:%s", host);
	op->profile.n_sans = 1;
	return 0;
}

/* Every field is checked against an allow-list before the child sees it. */
static int
rpc_stage_check_generate(struct rpc_ctx *ctx, const Carotate__V1__GenerateRequest *g,
    struct certjob *op, Carotate__V1__Response *reply)
{
	const char *kt = g->key_type[0] != '\0' ? g->key_type : "ec-p256", *why;
	size_t i, j, len = strlen(g->name);

	if (pki_key_kind_parse(kt, &op->profile.key) == -1)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "unknown key type \"%.32s\" (ec-p256, ec-p384, rsa-2048, rsa-3072, "
		    "rsa-4096)",
		    kt);
	op->profile.ca_days = g->ca_days != 0 ? g->ca_days : PKI_DEFAULT_CA_DAYS;
	op->profile.server_days = g->server_days != 0 ? g->server_days : PKI_DEFAULT_SERVER_DAYS;
	if (op->profile.ca_days > PKI_MAX_DAYS || op->profile.server_days > PKI_MAX_DAYS)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "validity over %d days", PKI_MAX_DAYS);
	if (op->profile.server_days > op->profile.ca_days)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "the server certificate (%u days) would outlive its CA (%u days)",
		    op->profile.server_days, op->profile.ca_days);
	if (len > STAGE_MAX_NAME || strspn(g->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	                                            "qrstuvwxyz0123456789 ._-") != len)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "the name may hold up to %d letters, digits, spaces, '.', '_' and '-'",
		    STAGE_MAX_NAME);
	op->name = xstrdup(len > 0 ? g->name : PKI_DEFAULT_NAME);
	op->profile.name = op->name;
	if (g->n_sans == 0)
		return rpc_stage_default_sans(ctx->cd->conf, op, reply);
	if (g->n_sans > PKI_MAX_SANS)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "more than %d SANs", PKI_MAX_SANS);
	op->sans = xcalloc(g->n_sans, sizeof(char *));
	for (i = 0; i < g->n_sans; i++) {
		const char *s = g->sans[i];

		why = strncmp(s, "DNS:", 4) == 0 ? config_dns_invalid(s + 4)
		      : strncmp(s, "IP:", 3) == 0
		          ? (config_is_ip(s + 3) ? NULL : "not an IP address")
		          : "must start with DNS: or IP:";
		for (j = 0; why == NULL && j < i; j++)
			if (strcasecmp(op->sans[j], s) == 0)
				why = "given twice";
		if (why != NULL)
			return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "SAN \"%.80s\": %s", s, why);
		op->sans[i] = xstrdup(s);
		op->profile.n_sans = i + 1;
	}
	return 0;
}

void
rpc_stage_generate(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	struct certjob *op = xcalloc(1, sizeof(*op));
	struct rpc_stage_call *c;
	char err[512];

	if (rpc_stage_check_generate(ctx, req->generate, op, reply) == -1) {
		certjob_free(op);
		return;
	}
	c = rpc_stage_call_new(ctx);
	if (stage_start(ctx->cd, "generate", op, &rpc_stage_hooks, c, err, sizeof(err)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
		free(c);
	}
}

void
rpc_stage_install(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__InstallRequest *in = req->install;
	const ProtobufCBinaryData *fields[] = { &in->ca, &in->cert, &in->key, &in->chain };
	static const char *names[] = { "ca", "cert", "key", "chain" };
	struct rpc_stage_call *c;
	struct certjob *op;
	STACK_OF(X509) * certs;
	uint8_t *pem;
	size_t i, len;
	char why[128], err[512];

	for (i = 0; i < 4; i++)
		if (fields[i]->len > PKI_MAX_INPUT) {
			reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "%s: file too large (%zu bytes, limit %d)", names[i], fields[i]->len,
			    PKI_MAX_INPUT);
			return;
		}
	op = xcalloc(1, sizeof(*op));
	op->install = 1;
	op->ca = xmemdupz(in->ca.data, in->ca.len);
	op->ca_len = in->ca.len;
	op->cert = xmemdupz(in->cert.data, in->cert.len);
	op->cert_len = in->cert.len;
	op->key = xmemdupz(in->key.data, in->key.len);
	op->key_len = in->key.len;
	op->chain = xmemdupz(in->chain.data, in->chain.len);
	op->chain_len = in->chain.len;
	/* The new CA must differ from the active one: the child compares them. */
	if (ssldir_read_ca(ctx->cd->conf, 0, &pem, &len) == 0) {
		if ((certs = pki_certs_from_pem(pem, len, why, sizeof(why))) != NULL) {
			op->active_ca = sk_X509_shift(certs);
			sk_X509_pop_free(certs, X509_free);
		}
		free(pem);
	}
	c = rpc_stage_call_new(ctx);
	if (stage_start(ctx->cd, "install", op, &rpc_stage_hooks, c, err, sizeof(err)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
		free(c);
	}
}

void
rpc_stage_discard(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	struct rpc_stage_call *c = rpc_stage_call_new(ctx);
	char err[512];

	if (stage_discard(ctx->cd, &rpc_stage_hooks, c, err, sizeof(err)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
		free(c);
	}
}
