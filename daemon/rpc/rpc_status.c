/* The status call: who we are, the phase, and what the active and staged sets hold. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "bundle.h"
#include "carotated.h"
#include "certset.h"
#include "config.h"
#include "dispatch.h"
#include "reply.h"
#include "fsx.h"
#include "ledger.h"
#include "log.h"
#include "pki.h"
#include "retained.h"
#include "ssldir.h"
#include "supervise.h"
#include "xmalloc.h"

/*
 * The sets and the bundle as the last status call saw them. Building them
 * means reading and checking certificates; a reply is reused within the same
 * second (expiry and days left move with the clock) while nothing it came
 * from has changed: the watch's generation (watch.h) is the one it was built
 * at or, without a watch, every file's identity is the same.
 */
struct rpc_status_sig;
static struct {
	struct rpc_status_sig *sig; /* without a watch */
	uint64_t gen;               /* the watch's generation; 0: compare sig */
	Carotate__V1__Phase phase;
	time_t at;
	ProtobufCBinaryData active, staged, bundle; /* packed; len 0: absent */
	int valid;
} rpc_status_cache;

static void
rpc_status_pack(const ProtobufCMessage *m, ProtobufCBinaryData *out)
{
	free(out->data);
	out->data = NULL;
	out->len = 0;
	if (m == NULL)
		return;
	out->len = protobuf_c_message_get_packed_size(m);
	out->data = xmalloc(out->len + 1);
	protobuf_c_message_pack(m, out->data);
}

static ProtobufCMessage *
rpc_status_unpack(const ProtobufCMessageDescriptor *d, const ProtobufCBinaryData *in)
{
	ProtobufCMessage *m;

	if (in->data == NULL)
		return NULL;
	if ((m = protobuf_c_message_unpack(d, NULL, in->len, in->data)) == NULL)
		fatalx("%s: cannot unpack a cached status", __func__);
	return m;
}

/* Everything a cached reply depends on besides the clock. */
struct rpc_status_sig {
	int64_t phase;
	int64_t ssl[SSLDIR_SIG_LEN];
	int64_t retained[RETAINED_SIG_LEN];
};

static void
rpc_status_signature(
    const struct config *conf, Carotate__V1__Phase phase, struct rpc_status_sig *sig)
{
	memset(sig, 0, sizeof(*sig));
	sig->phase = phase;
	ssldir_signature(conf, sig->ssl);
	retained_signature(conf, sig->retained);
}

/*
 * Whether the cached sets may answer a call at generation gen, phase and
 * now. Without a watch (gen 0), sig receives the files' identities, taken
 * before anything is read: a change while the reply is built shows next time.
 */
static int
rpc_status_fresh(const struct config *conf, uint64_t gen, Carotate__V1__Phase phase, time_t now,
    struct rpc_status_sig *sig)
{
	if (gen == 0)
		rpc_status_signature(conf, phase, sig);
	if (!rpc_status_cache.valid || rpc_status_cache.at != now ||
	    rpc_status_cache.phase != phase || rpc_status_cache.gen != gen)
		return 0;
	return gen != 0 || memcmp(sig, rpc_status_cache.sig, sizeof(*sig)) == 0;
}

/* Fills the sets and the bundle, from the cache when fresh; sig as rpc_status_fresh left it. */
static void
rpc_status_sets(const struct config *conf, Carotate__V1__StatusReply *st, time_t now, uint64_t gen,
    int fresh, struct rpc_status_sig *sig)
{
	struct bundle bundle;
	char err[256];
	X509 *ca;

	if (fresh) {
		st->active = (Carotate__V1__CertSet *)rpc_status_unpack(
		    &carotate__v1__cert_set__descriptor, &rpc_status_cache.active);
		st->staged = (Carotate__V1__CertSet *)rpc_status_unpack(
		    &carotate__v1__cert_set__descriptor, &rpc_status_cache.staged);
		st->bundle = (Carotate__V1__Bundle *)rpc_status_unpack(
		    &carotate__v1__bundle__descriptor, &rpc_status_cache.bundle);
		return;
	}
	st->active = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	if (st->phase == CAROTATE__V1__PHASE__PHASE_STAGED) {
		st->staged = certset_describe(conf, 1, now, &ca);
		X509_free(ca);
	}
	if (bundle_derive(conf, now, &bundle, err, sizeof(err)) == 0)
		st->bundle =
		    bundle_describe(&bundle, ssldir_published(conf, bundle.pem, bundle.pem_len));
	else
		log_warnx("status: %s", err);
	bundle_clear(&bundle);
	rpc_status_pack(st->active ? &st->active->base : NULL, &rpc_status_cache.active);
	rpc_status_pack(st->staged ? &st->staged->base : NULL, &rpc_status_cache.staged);
	rpc_status_pack(st->bundle ? &st->bundle->base : NULL, &rpc_status_cache.bundle);
	if (rpc_status_cache.sig == NULL)
		rpc_status_cache.sig = xmalloc(sizeof(*sig));
	memcpy(rpc_status_cache.sig, sig, sizeof(*sig));
	rpc_status_cache.gen = gen;
	rpc_status_cache.phase = st->phase;
	rpc_status_cache.at = now;
	rpc_status_cache.valid = 1;
}

/* A worker's pid for the reply: 0 while it is down. */
static uint32_t
rpc_status_pid(pid_t pid)
{
	return pid > 0 ? (uint32_t)pid : 0;
}

/* Where the ledger lives and whether it answers: a pool member cut off from its database shows
 * here. */
static void
rpc_status_ledger(struct carotated *cd, Carotate__V1__StatusReply *st)
{
	const struct config *conf = cd->conf;
	struct ledger_health h;
	Carotate__V1__LedgerHealth *lh;

	if (cd->ledger == NULL)
		return; /* not open yet: status says nothing of it */
	ledger_health(cd->ledger, &h);
	lh = xmalloc(sizeof(*lh));
	carotate__v1__ledger_health__init(lh);
	lh->backend = xstrdup(ledger_backend_name(cd->ledger));
	lh->member =
	    xstrdup(conf->ledger_backend == CONFIG_LEDGER_POSTGRESQL && conf->ledger_member != NULL
	                ? conf->ledger_member
	                : "");
	lh->reachable = h.reachable;
	lh->last_error = xstrdup(h.last_error);
	lh->last_error_at = h.last_error_at;
	st->ledger = lh;
}

static void
rpc_status_member_cb(const struct ledger_member *m, void *arg)
{
	Carotate__V1__StatusReply *st = arg;
	uint64_t beat = st->heartbeat;
	Carotate__V1__PoolMember *p = xmalloc(sizeof(*p));

	carotate__v1__pool_member__init(p);
	p->member = xstrdup(m->name);
	p->heartbeat_age = m->heartbeat_age;
	p->stale = m->heartbeat_age > config_stale_after(beat);
	p->active_ca = xstrdup(m->active_ca);
	p->active_server = xstrdup(m->active_server);
	p->staged_ca = xstrdup(m->staged_ca);
	p->last_reload_at = m->last_reload_at;
	p->last_reload_ok = m->last_reload_ok;
	p->last_check_at = m->last_check_at;
	p->last_check_ok = m->last_check_ok;
	p->last_error = xstrdup(m->last_error);
	p->started_at = m->started_at;
	p->applied_generation = m->applied_generation;
	p->applied_ok = m->applied_ok;
	p->apply_error = xstrdup(m->apply_error);
	st->pool = xreallocarray(st->pool, st->n_pool + 1, sizeof(*st->pool));
	st->pool[st->n_pool++] = p;
}

/* The pool's shared sets as the database holds them now. */
static void
rpc_status_pool_state(struct carotated *cd, Carotate__V1__StatusReply *st)
{
	struct ledger_pool_state ps;
	Carotate__V1__PoolState *p;

	if (ledger_pool_state_get(cd->ledger, &ps) == -1)
		return;
	p = xmalloc(sizeof(*p));
	carotate__v1__pool_state__init(p);
	p->generation = ps.generation;
	p->active = xstrdup(ps.active);
	p->staged = xstrdup(ps.staged);
	p->call = xstrdup(ps.call);
	p->member = xstrdup(ps.member);
	p->written_at = ps.written_at;
	st->pool_state = p;
}

/*
 * A pool's members as the database holds them (this one included): read at each call, a
 * heartbeat's age changes by the second. A single proxy has none (pool_known stays false).
 */
static void
rpc_status_pool(struct carotated *cd, Carotate__V1__StatusReply *st)
{
	if (cd->ledger == NULL || cd->conf->ledger_backend != CONFIG_LEDGER_POSTGRESQL)
		return;
	st->heartbeat = cd->conf->ledger_heartbeat;
	if (ledger_member_list(cd->ledger, rpc_status_member_cb, st) == 0) {
		st->pool_known = 1;
		rpc_status_pool_state(cd, st);
		return;
	}
	/* Out of reach: the ledger logged it once; status says so at every call (pool null). */
	while (st->n_pool > 0)
		carotate__v1__pool_member__free_unpacked(st->pool[--st->n_pool], NULL);
}

/* The workers' health, agents then canary: a worker that keeps failing shows here. */
static void
rpc_status_workers(struct carotated *cd, Carotate__V1__StatusReply *st)
{
	static const char *names[] = { "agents", "canary" };
	struct supervise_health h;
	Carotate__V1__WorkerHealth *w;
	size_t i;

	st->workers = xcalloc(2, sizeof(*st->workers));
	for (i = 0; i < 2; i++) {
		if (agents_worker_health(cd, (int)i, &h) == -1)
			continue;
		w = xmalloc(sizeof(*w));
		carotate__v1__worker_health__init(w);
		w->name = xstrdup(names[i]);
		w->running = h.running;
		w->pid = rpc_status_pid(h.pid);
		w->restarts = h.restarts;
		w->last_error = xstrdup(h.last_error);
		w->last_error_at = (int64_t)h.last_error_at;
		st->workers[st->n_workers++] = w;
	}
}

void
rpc_status(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	Carotate__V1__StatusReply *st;
	struct rpc_status_sig sig;
	time_t now = time(NULL);
	struct timespec mono;
	int dfd, fresh;

	memset(&sig, 0, sizeof(sig));
	/* A fresh cache vouches for the directory too: its removal or a chmod is a change. */
	if (!(fresh = rpc_status_fresh(conf, ctx->watch_gen, ctx->phase, now, &sig))) {
		if ((dfd = ssldir_open(conf, 0)) == -1) {
			reply_error(reply, CAROTATE__V1__STATUS__INTERNAL,
			    "cannot open the SSL directory %s: %s", conf->ssl_dir, strerror(errno));
			return;
		}
		close(dfd);
	}
	st = xmalloc(sizeof(*st));
	carotate__v1__status_reply__init(st);
	st->version = xstrdup(CAROTATE_VERSION);
	st->pid = (uint32_t)getpid();
	clock_gettime(CLOCK_MONOTONIC, &mono);
	st->uptime_seconds = (uint64_t)(mono.tv_sec - ctx->cd->started.tv_sec);
	st->phase = ctx->phase;
	st->ssl_dir = xstrdup(conf->ssl_dir);
	st->renew_before = conf->renew_before; /* the windows of its expiry warnings */
	st->ca_warn = conf->ca_warn;
	st->now = (int64_t)now;
	st->worker_pid = rpc_status_pid(agents_worker_pid(ctx->cd, 0));
	st->canary_worker_pid = rpc_status_pid(agents_worker_pid(ctx->cd, 1));
	rpc_status_workers(ctx->cd, st);
	rpc_status_ledger(ctx->cd, st);
	rpc_status_pool(ctx->cd, st);
	rpc_status_sets(conf, st, now, ctx->watch_gen, fresh, &sig);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_STATUS_REPLY;
	reply->status_reply = st;
}
