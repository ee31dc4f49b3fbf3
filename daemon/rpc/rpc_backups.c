/* list_backups and retire: what is kept beside the active set, and what the bundle still holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "backup.h"
#include "bundle.h"
#include "carotated.h"
#include "config.h"
#include "dispatch.h"
#include "reply.h"
#include "log.h"
#include "pki.h"
#include "retained.h"
#include "ssldir.h"
#include "xmalloc.h"

#define BACKUPS_DEFAULT_LIMIT 100
#define BACKUPS_MAX_LIMIT     1000

static Carotate__V1__Backup *rpc_backups_entry(struct backup_info *);
static Carotate__V1__BundleCa *rpc_backups_retired(const struct retained_ca *);
static Carotate__V1__Bundle *rpc_backups_bundle_now(const struct config *, time_t);

/* The reply takes b's certificate descriptions. */
static Carotate__V1__Backup *
rpc_backups_entry(struct backup_info *b)
{
	Carotate__V1__Backup *m = xmalloc(sizeof(*m));

	carotate__v1__backup__init(m);
	m->id = xstrdup(b->id);
	m->created = b->created;
	m->reason = xstrdup(b->reason);
	m->detail = xstrdup(b->detail);
	m->ca = b->ca;
	m->server = b->server;
	b->ca = b->server = NULL;
	m->restorable = b->restorable;
	m->problem = xstrdup(b->problem);
	return m;
}

void
rpc_backups(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__ListBackupsRequest *q = req->list_backups;
	const struct config *conf = ctx->cd->conf;
	uint32_t limit = q->limit != 0 ? q->limit : BACKUPS_DEFAULT_LIMIT;
	Carotate__V1__BackupsReply *r;
	struct backup_info *list;
	size_t i, n, total;
	char err[512];

	if (limit > BACKUPS_MAX_LIMIT) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "a page holds at most %d backups", BACKUPS_MAX_LIMIT);
		return;
	}
	if (backup_list_page(conf, q->offset > SIZE_MAX ? SIZE_MAX : (size_t)q->offset, limit,
	        &list, &n, &total, err, sizeof(err)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
		return;
	}
	r = xmalloc(sizeof(*r));
	carotate__v1__backups_reply__init(r);
	r->backups = xcalloc(n + 1, sizeof(*r->backups));
	for (i = 0; i < n; i++)
		r->backups[i] = rpc_backups_entry(&list[i]);
	r->n_backups = n;
	r->total = total;
	r->keep = conf->backups_keep;
	backup_free(list, n);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_LIST_BACKUPS_REPLY;
	reply->list_backups_reply = r;
}

static Carotate__V1__BundleCa *
rpc_backups_retired(const struct retained_ca *c)
{
	Carotate__V1__BundleCa *m = xmalloc(sizeof(*m));
	int64_t nb;

	carotate__v1__bundle_ca__init(m);
	m->sha256 = xstrdup(c->sha256);
	m->subject = pki_subject(c->cert);
	m->role = xstrdup("retained");
	if (pki_cert_times(c->cert, &nb, &m->not_after) == -1)
		m->not_after = 0;
	m->retained_until = c->retained_until;
	return m;
}

/* The bundle as derived now, and whether ca-bundle.pem holds it. */
static Carotate__V1__Bundle *
rpc_backups_bundle_now(const struct config *conf, time_t now)
{
	Carotate__V1__Bundle *d = NULL;
	struct bundle b;
	char err[256];

	if (bundle_derive(conf, now, &b, err, sizeof(err)) == 0)
		d = bundle_describe(&b, ssldir_published(conf, b.pem, b.pem_len));
	else
		log_warnx("retire: %s", err);
	bundle_clear(&b);
	return d;
}

/*
 * Steady phase only (the table says so): CAs kept for the retention window
 * leave the bundle now. Agents get the smaller bundle at their next check-in;
 * the proxy itself does not read the bundle, so nothing is reloaded.
 */
void
rpc_backups_retire(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	int dry = req->retire->dry_run, r;
	struct retained_ca *list;
	Carotate__V1__RetireReply *rr;
	time_t now = time(NULL);
	struct bundle b;
	char err[512], perr[512];
	size_t i, n;

	r = retained_retire(conf, dry, &list, &n, err, sizeof(err));
	for (i = 0; i < n && !dry; i++)
		log_info("retire: CA %s dropped from the trust bundle by uid %ld", list[i].sha256,
		    (long)(ctx->peer != NULL ? ctx->peer->uid : 0));
	if (!dry && n > 0) {
		if (bundle_publish(conf, now, &b, perr, sizeof(perr)) == -1)
			log_warnx("retire: %s", perr);
		bundle_clear(&b);
		agents_refresh(ctx->cd);
	}
	rr = xmalloc(sizeof(*rr));
	carotate__v1__retire_reply__init(rr);
	rr->dry_run = dry;
	rr->retired = xcalloc(n + 1, sizeof(*rr->retired));
	for (i = 0; i < n; i++)
		rr->retired[i] = rpc_backups_retired(&list[i]);
	rr->n_retired = n;
	rr->bundle = rpc_backups_bundle_now(conf, now);
	retained_free(list, n);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_RETIRE_REPLY;
	reply->retire_reply = rr;
	if (r == -1)
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
	else if (n == 0)
		reply_error(reply, CAROTATE__V1__STATUS__OK,
		    "nothing to retire: the trust bundle holds no CA besides the active one");
	else
		reply_error(reply, CAROTATE__V1__STATUS__OK, "%s %zu CA%s%s",
		    dry ? "would retire" : "retired", n, n == 1 ? "" : "s",
		    dry ? " (dry run: nothing changed)"
		        : "; agents receive the smaller bundle at their next check-in");
}
