/*
 * generate, install, discard: stage 1 of a rotation. Certificate work runs in
 * a short-lived child (job.c): RSA key generation takes seconds and must not
 * stall other clients, and the bytes of a custom set are hostile until
 * checked, so they are parsed in a process that can crash alone. The parent
 * only writes what the child returns, re-encoded by OpenSSL, and then
 * publishes the bundle and reloads the proxy before it answers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "bundle.h"
#include "cakeys.h"
#include "carotated.h"
#include "certset.h"
#include "config.h"
#include "op.h"
#include "dispatch.h"
#include "reply.h"
#include "fault.h"
#include "internal.pb-c.h"
#include "job.h"
#include "log.h"
#include "pki.h"
#include "proxy.h"
#include "sandbox.h"
#include "ssldir.h"
#include "xmalloc.h"

#define STAGE_GENERATE_TIMEOUT 300000     /* ms: RSA-4096 on a slow machine */
#define STAGE_INSTALL_TIMEOUT  30000      /* ms */
#define STAGE_MAX_MATERIAL     (1u << 20) /* bytes a job may return */
#define STAGE_MAX_NAME         64

/*
 * How a generate, install or discard ended, for the one that started it. The
 * pointers hold until done returns; the owner takes warnings and reload.
 */
struct stage_result {
	const char *call;
	Carotate__V1__Status status; /* OK: the set is staged (or discarded), the proxy told */
	const char *message;         /* why not, when status is not OK */
	char **warnings;             /* about the set, and a bundle that could not be published */
	size_t n_warnings;
	Carotate__V1__ReloadResult *reload;
	const char *kept_as; /* discard: the backup the staged set became */
};

/* The owner of a staging (rpc/rpc_stage.c): how the call is deferred and answered. */
struct stage_hooks {
	/* The call goes on (a job runs, or a reload): the owner's answer waits. */
	void (*begin)(void *arg);
	/* The end, or a stop (status UNAVAILABLE): the owner answers. */
	void (*done)(struct stage_result *, void *arg);
};

/* The input of one certificate job: a profile to generate, or the operator's files to check. */
struct certjob {
	const struct config *conf; /* [proxy] names: the SANs an installed set must cover */
	int install;
	/* generate */
	struct pki_profile profile;
	char **sans;
	char *name;
	/* install */
	uint8_t *ca, *cert, *key, *chain;
	size_t ca_len, cert_len, key_len, chain_len;
	X509 *active_ca; /* the new CA must differ from it */
};

static int rpc_stage_child_generate(void *, int);
static int rpc_stage_child_install(void *, int);
static int rpc_stage_child_send(int, const struct pki_material *, const char *);
static void rpc_stage_child_free(struct certjob *);

/* The key is wiped: it is the operator's server key. */
static void
rpc_stage_child_free(struct certjob *in)
{
	size_t i;

	if (in == NULL)
		return;
	for (i = 0; in->sans != NULL && i < in->profile.n_sans; i++)
		free(in->sans[i]);
	free(in->sans);
	free(in->name);
	free(in->ca);
	free(in->cert);
	if (in->key != NULL)
		explicit_bzero(in->key, in->key_len);
	free(in->key);
	free(in->chain);
	X509_free(in->active_ca);
	free(in);
}

/* Serializes the child's result for the parent: one Material message, then exit. */
static int
rpc_stage_child_send(int fd, const struct pki_material *m, const char *error)
{
	Carotate__Internal__Material msg = CAROTATE__INTERNAL__MATERIAL__INIT;
	uint8_t *buf;
	size_t len, off = 0;
	ssize_t n;

	if (error != NULL)
		msg.error = (char *)error;
	else {
		msg.ca.data = (uint8_t *)m->ca;
		msg.ca.len = strlen(m->ca);
		if (m->ca_key != NULL) {
			msg.ca_key.data = (uint8_t *)m->ca_key;
			msg.ca_key.len = strlen(m->ca_key);
		}
		msg.cert.data = (uint8_t *)m->cert;
		msg.cert.len = strlen(m->cert);
		msg.key.data = (uint8_t *)m->key;
		msg.key.len = strlen(m->key);
		msg.warnings = m->warnings;
		msg.n_warnings = m->n_warnings;
	}
	len = carotate__internal__material__get_packed_size(&msg);
	buf = xmalloc(len + 1);
	carotate__internal__material__pack(&msg, buf);
	while (off < len && (n = write(fd, buf + off, len - off)) > 0)
		off += (size_t)n;
	explicit_bzero(buf, len);
	free(buf);
	return off == len ? 0 : 1;
}

static int
rpc_stage_child_generate(void *arg, int fd)
{
	struct certjob *in = arg;
	struct pki_material m = { 0 };
	char err[512];
	int r;

	in->profile.sans = in->sans;
	in->profile.now = time(NULL);
	if (pki_generate(&in->profile, &m, err, sizeof(err)) == -1)
		return rpc_stage_child_send(fd, NULL, err);
	r = rpc_stage_child_send(fd, &m, NULL);
	pki_material_clear(&m);
	return r;
}

static int
rpc_stage_child_install(void *arg, int fd)
{
	struct certjob *in = arg;
	const struct config *conf = in->conf;
	struct pki_custom custom = { in->ca, in->cert, in->key, in->chain, in->ca_len, in->cert_len,
		in->key_len, in->chain_len };
	struct pki_policy policy = { conf->proxy_names, conf->n_proxy_names, in->active_ca,
		time(NULL) };
	struct pki_material m = { 0 };
	char err[512];
	int r;

	if (pki_validate_custom(&custom, &policy, &m, err, sizeof(err)) == -1)
		return rpc_stage_child_send(fd, NULL, err);
	r = rpc_stage_child_send(fd, &m, NULL);
	pki_material_clear(&m);
	return r;
}

/* One generate or install (or discard) from its start to its result. */
struct rpc_stage_op {
	struct carotated *cd;
	const struct stage_hooks *hooks;
	void *arg; /* the hooks' */
	const char *call;
	struct certjob *in; /* generate, install */
	/* the outcome */
	char **warnings;
	size_t n_warnings;
	char *kept_as;
	char *publish_err; /* the set is staged (or discarded), the bundle not published */
};

/* The generate, install or discard between its start and its result (exclusive: one). */
static struct rpc_stage_op *rpc_stage_running;

static void rpc_stage_op_job_done(struct job *, void *);
static int rpc_stage_op_write(
    struct rpc_stage_op *, const Carotate__Internal__Material *, char *, size_t);
static void rpc_stage_op_reload(struct rpc_stage_op *);
static void rpc_stage_op_reloaded(Carotate__V1__ReloadResult *, void *);
static void rpc_stage_op_fail(struct rpc_stage_op *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void rpc_stage_op_finish(struct rpc_stage_op *, struct stage_result *);
static void rpc_stage_op_free(struct rpc_stage_op *);

static void
rpc_stage_op_free(struct rpc_stage_op *op)
{
	size_t i;

	rpc_stage_child_free(op->in);
	for (i = 0; i < op->n_warnings; i++)
		free(op->warnings[i]);
	free(op->warnings);
	free(op->kept_as);
	free(op->publish_err);
	free(op);
}

/*
 * Starts the certificate job of call ("generate" or "install") on in, which it
 * takes. The job runs confined (job_fork_confined): as [agents] user when we
 * are root, with no capability and only its pipe, under the system call
 * filter. It holds no more than its result: a generated CA key goes back to us
 * through the pipe, and we write it to the state directory. 0 when the call
 * goes on (hooks->begin now, hooks->done later), -1 with err.
 */
static int
rpc_stage_op_start(struct carotated *cd, const char *call, struct certjob *in,
    const struct stage_hooks *hooks, void *arg, char *err, size_t errlen)
{
	struct rpc_stage_op *op = xcalloc(1, sizeof(*op));
	struct sandbox_ids ids;
	char why[256];

	op->cd = cd;
	op->hooks = hooks;
	op->arg = arg;
	op->call = call;
	op->in = in;
	in->conf = cd->conf;
	if (sandbox_ids(cd->conf->agents_user, cd->privileged, &ids, why, sizeof(why)) == -1) {
		log_warnx("%s: %s: certificate jobs run as that user", op->call, why);
		snprintf(err, errlen,
		    "cannot start the %s job: %s (certificate jobs run as [agents] user)", op->call,
		    why);
		rpc_stage_op_free(op);
		return -1;
	}
	ids.may_fork = !in->install;
	if (job_fork_confined(cd->base, op->call,
	        in->install ? rpc_stage_child_install : rpc_stage_child_generate, in, &ids,
	        in->install ? STAGE_INSTALL_TIMEOUT : STAGE_GENERATE_TIMEOUT, STAGE_MAX_MATERIAL,
	        rpc_stage_op_job_done, op) == NULL) {
		snprintf(err, errlen, "cannot start the %s job: %s", op->call, strerror(errno));
		rpc_stage_op_free(op);
		return -1;
	}
	hooks->begin(arg);
	rpc_stage_running = op;
	return 0;
}

/* Writes the child's result: the CA key (generated sets), the staged set, the bundle. */
static int
rpc_stage_op_write(
    struct rpc_stage_op *op, const Carotate__Internal__Material *m, char *err, size_t errlen)
{
	const struct config *conf = op->cd->conf;
	struct ssldir_files f = { (const char *)m->ca.data, (const char *)m->cert.data,
		(const char *)m->key.data, m->ca.len, m->cert.len, m->key.len,
		op->in->install ? "custom" : "generated", time(NULL) };
	char keyname[CAKEYS_NAME_MAX];
	struct bundle b;
	int r;

	if (!op->in->install && cakeys_save(conf, m->ca.data, m->ca.len, m->ca_key.data,
	                            m->ca_key.len, keyname, err, errlen) == -1)
		return -1;
	fault_point("stage-after-ca-key");
	if (ssldir_stage(conf, &f, err, errlen) == -1) {
		if (!op->in->install)
			cakeys_drop(conf, keyname);
		return -1;
	}
	r = bundle_publish(conf, f.created, &b, err, errlen);
	bundle_clear(&b);
	if (r == -1) {
		log_warnx("%s: %s", op->call, err);
		op->publish_err = xstrdup(err);
	}
	agents_refresh(op->cd);
	return 0;
}

static void
rpc_stage_op_job_done(struct job *job, void *arg)
{
	struct rpc_stage_op *op = arg;
	Carotate__Internal__Material *m = NULL;
	const unsigned char *out;
	char why[64], err[512];
	size_t len, i;

	out = job_output(job, &len);
	if (job_filtered(job)) {
		/* A parser bug, or input built to exploit one: the job died alone. */
		log_warnx("%s: certificate job %s: it made a system call outside its allow-list",
		    op->call, job_describe(job, why, sizeof(why)));
		rpc_stage_op_fail(op, CAROTATE__V1__STATUS__INTERNAL,
		    "the certificate job was killed by its syscall filter (signal %d); nothing was "
		    "staged",
		    job_signal(job));
	} else if (job_exit_status(job) != 0 ||
	           (m = carotate__internal__material__unpack(NULL, len, out)) == NULL) {
		log_warnx("%s: certificate job %s", op->call, job_describe(job, why, sizeof(why)));
		rpc_stage_op_fail(op, CAROTATE__V1__STATUS__INTERNAL,
		    "the certificate job failed (%s)", job_describe(job, why, sizeof(why)));
	} else if (m->error[0] != '\0') {
		log_info("%s refused: %s", op->call, m->error);
		rpc_stage_op_fail(op, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "%s", m->error);
	} else if (rpc_stage_op_write(op, m, err, sizeof(err)) == -1) {
		log_warnx("%s: %s", op->call, err);
		rpc_stage_op_fail(op, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
	} else {
		op->warnings = xcalloc(m->n_warnings + 1, sizeof(char *));
		for (i = 0; i < m->n_warnings; i++)
			op->warnings[i] = xstrdup(m->warnings[i]);
		op->n_warnings = m->n_warnings;
		log_info("%s: a new %s set is staged in %s/%s", op->call,
		    op->in->install ? "custom" : "generated", op->cd->conf->ssl_dir,
		    SSLDIR_STAGING);
		rpc_stage_op_reload(op);
	}
	if (m != NULL) {
		if (m->key.data != NULL)
			explicit_bzero(m->key.data, m->key.len);
		if (m->ca_key.data != NULL)
			explicit_bzero(m->ca_key.data, m->ca_key.len);
		carotate__internal__material__free_unpacked(m, NULL);
	}
	job_free(job);
}

static void
rpc_stage_op_reload(struct rpc_stage_op *op)
{
	rpc_stage_running = op;
	proxy_reload(op->cd, rpc_stage_op_reloaded, op);
}

/* The proxy has been told: the call's owner answers with what is now staged and published. */
static void
rpc_stage_op_reloaded(Carotate__V1__ReloadResult *result, void *arg)
{
	struct rpc_stage_op *op = arg;
	struct stage_result res = { 0 };

	if (op->publish_err != NULL) {
		/* The call's change stands; what agents are offered lags until the next publish. */
		op->warnings = xreallocarray(op->warnings, op->n_warnings + 1, sizeof(char *));
		xasprintf(&op->warnings[op->n_warnings++],
		    "the trust bundle or the canary pair could not be published: %s; agents are "
		    "offered the previous bundle until carotated publishes again (at its next "
		    "start "
		    "or the next change of sets)",
		    op->publish_err);
	}
	agents_check_canary(op->cd);
	res.status = CAROTATE__V1__STATUS__OK;
	res.warnings = op->warnings;
	res.n_warnings = op->n_warnings;
	res.reload = result;
	res.kept_as = op->kept_as;
	op->warnings = NULL;
	op->n_warnings = 0;
	rpc_stage_op_finish(op, &res);
}

static void
rpc_stage_op_fail(struct rpc_stage_op *op, Carotate__V1__Status status, const char *fmt, ...)
{
	struct stage_result res = { 0 };
	char msg[1024];
	va_list ap;

	/* 1024: the job's error is the child's text, as long as its message allows. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	res.status = status;
	res.message = msg;
	rpc_stage_op_finish(op, &res);
}

/* The owner answers (hooks->done) and the next state change may start. */
static void
rpc_stage_op_finish(struct rpc_stage_op *op, struct stage_result *res)
{
	if (rpc_stage_running == op)
		rpc_stage_running = NULL;
	res->call = op->call;
	op->hooks->done(res, op->arg);
	rpc_stage_op_free(op);
}

/*
 * Shutdown killed the job or abandoned the reload of the call in progress
 * (job_kill_all, proxy_abandon_all): no answer will come, so the owner answers
 * now; the audit log records the call as interrupted.
 */
static void
rpc_stage_op_abandon(void)
{
	if (rpc_stage_running == NULL)
		return;
	rpc_stage_op_fail(rpc_stage_running, CAROTATE__V1__STATUS__UNAVAILABLE,
	    "%s: interrupted: carotated is shutting down", rpc_stage_running->call);
}

/*
 * discard: the staged set goes to a discarded-... backup, the bundle and the
 * proxy follow. 0 when the call goes on (hooks->begin now, hooks->done
 * later), -1 with err (nothing changed).
 */
static int
rpc_stage_op_discard(
    struct carotated *cd, const struct stage_hooks *hooks, void *arg, char *err, size_t errlen)
{
	const struct config *conf = cd->conf;
	char staged[PKI_SHA256_HEX], active[PKI_SHA256_HEX], keyname[CAKEYS_NAME_MAX];
	struct rpc_stage_op *op;
	struct bundle b;
	char kept[64];
	time_t now = time(NULL);

	/* Read before new/ goes: the key of the CA it held is dropped with it. */
	if (bundle_set_ca_sha(conf, 1, staged, err, errlen) == -1 ||
	    bundle_set_ca_sha(conf, 0, active, err, errlen) == -1) {
		log_warnx("discard: %s; its CA key (if any) stays", err);
		staged[0] = '\0';
	}
	if (ssldir_discard(conf, now, kept, sizeof(kept), err, errlen) == -1)
		return -1;
	log_info("discard: the staged set is kept as %s/%s", conf->ssl_dir, kept);
	/*
	 * A generated CA's private key signs nothing once its set is discarded:
	 * it goes (the discarded copy keeps only certificates and the server key).
	 * Never the active CA's, should the two be one.
	 */
	if (staged[0] != '\0' && strcmp(staged, active) != 0) {
		snprintf(keyname, sizeof(keyname), "%s.key", staged);
		cakeys_drop(conf, keyname);
	}
	op = xcalloc(1, sizeof(*op));
	if (bundle_publish(conf, now, &b, err, errlen) == -1) {
		log_warnx("discard: %s", err);
		op->publish_err = xstrdup(err);
	}
	bundle_clear(&b);
	agents_refresh(cd);
	op->cd = cd;
	op->hooks = hooks;
	op->arg = arg;
	op->call = "discard";
	op->kept_as = xstrdup(kept);
	hooks->begin(arg);
	rpc_stage_op_reload(op);
	return 0;
}

/* The handlers: argument checks and the reply. */

/* A generate, install or discard the engine carries out: who waits for the answer. */
struct rpc_stage_call {
	struct rpc_ctx *ctx; /* while the handler runs, for rpc_stage_begin */
	struct carotated *cd;
	struct control_pending *pending;
};

static int rpc_stage_check_generate(struct rpc_ctx *, const Carotate__V1__GenerateRequest *,
    struct certjob *, Carotate__V1__Response *);
static int rpc_stage_default_sans(
    const struct config *, struct certjob *, Carotate__V1__Response *);
static uint8_t *rpc_stage_copy(const ProtobufCBinaryData *, size_t *);
static struct rpc_stage_call *rpc_stage_call_new(struct rpc_ctx *);
static void rpc_stage_begin(void *);
static void rpc_stage_done(struct stage_result *, void *);

static const struct stage_hooks rpc_stage_hooks = {
	rpc_stage_begin,
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
	c->ctx = NULL;
}

/* The answer: what is now staged (or the backup a discard made) and the bundle published. */
static void
rpc_stage_done(struct stage_result *res, void *arg)
{
	struct rpc_stage_call *c = arg;
	const struct config *conf = c->cd->conf;
	Carotate__V1__Response *reply = reply_new();
	Carotate__V1__StageReply *sr;
	time_t now = time(NULL);
	struct bundle b;
	char err[256];
	X509 *ca = NULL;

	if (res->status != CAROTATE__V1__STATUS__OK) {
		reply_error(reply, res->status, "%s", res->message);
		op_finish(c->cd, c->pending, reply);
		free(c);
		return;
	}
	sr = xmalloc(sizeof(*sr));
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
	op_finish(c->cd, c->pending, reply);
	free(c);
}

void
rpc_stage_abandon(void)
{
	rpc_stage_op_abandon();
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
		rpc_stage_child_free(op);
		return;
	}
	c = rpc_stage_call_new(ctx);
	if (rpc_stage_op_start(ctx->cd, "generate", op, &rpc_stage_hooks, c, err, sizeof(err)) ==
	    -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
		free(c);
	}
}

static uint8_t *
rpc_stage_copy(const ProtobufCBinaryData *b, size_t *len)
{
	uint8_t *p = xmalloc(b->len + 1);

	if (b->len > 0)
		memcpy(p, b->data, b->len);
	p[b->len] = '\0';
	*len = b->len;
	return p;
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
	op->ca = rpc_stage_copy(&in->ca, &op->ca_len);
	op->cert = rpc_stage_copy(&in->cert, &op->cert_len);
	op->key = rpc_stage_copy(&in->key, &op->key_len);
	op->chain = rpc_stage_copy(&in->chain, &op->chain_len);
	/* The new CA must differ from the active one: the child compares them. */
	if (ssldir_read_ca(ctx->cd->conf, 0, &pem, &len) == 0) {
		if ((certs = pki_certs_from_pem(pem, len, why, sizeof(why))) != NULL) {
			op->active_ca = sk_X509_shift(certs);
			sk_X509_pop_free(certs, X509_free);
		}
		free(pem);
	}
	c = rpc_stage_call_new(ctx);
	if (rpc_stage_op_start(ctx->cd, "install", op, &rpc_stage_hooks, c, err, sizeof(err)) ==
	    -1) {
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

	if (rpc_stage_op_discard(ctx->cd, &rpc_stage_hooks, c, err, sizeof(err)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
		free(c);
	}
}
