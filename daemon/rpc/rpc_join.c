/*
 * join-token create, list, revoke (carotate-protocol(7) AGENT PROTOCOL): secrets an agent may
 * present instead of the linking key, limited in uses and lifetime. The ledger keeps the SHA-256 of
 * each token; the token itself is in one reply only, never in a log or the audit record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "agents.h"
#include "carotated.h"
#include "dispatch.h"
#include "reply.h"
#include "ledger.h"
#include "log.h"
#include "xmalloc.h"

#define JOIN_SECRET_BYTES 32
#define JOIN_ID_BYTES     (LEDGER_JOIN_ID_LEN / 2)
#define JOIN_MAX_USES     1000000u
#define JOIN_DEFAULT_TTL  86400u
#define JOIN_MAX_TTL      (365ull * 86400)
/* "cj1.<16 hex>.<64 hex>": the shape agents.c recognizes. */
#define JOIN_TOKEN_LEN (4 + LEDGER_JOIN_ID_LEN + 1 + 2 * JOIN_SECRET_BYTES)

static void rpc_join_hex(const uint8_t *, size_t, char *);
static Carotate__V1__JoinToken *rpc_join_message(const struct ledger_join *);
static void rpc_join_listed(const struct ledger_join *, void *);
static int rpc_join_id_ok(const char *);

static void
rpc_join_hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static Carotate__V1__JoinToken *
rpc_join_message(const struct ledger_join *j)
{
	Carotate__V1__JoinToken *t = xmalloc(sizeof(*t));

	carotate__v1__join_token__init(t);
	t->id = xstrdup(j->id);
	t->description = xstrdup(j->description);
	t->uses_left = j->uses_left;
	t->expires = j->expires_at;
	t->created = j->created_at;
	return t;
}

/* 16 lower-case hex digits: anything else names no token (and is never a path or SQL). */
static int
rpc_join_id_ok(const char *s)
{
	size_t n = strlen(s);

	return n == LEDGER_JOIN_ID_LEN && strspn(s, "0123456789abcdef") == n;
}

void
rpc_join_token_create(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__JoinTokenCreateRequest *q = req->join_token_create;
	struct ledger *l = ctx->cd->ledger;
	uint8_t raw[JOIN_ID_BYTES + JOIN_SECRET_BYTES];
	char token[JOIN_TOKEN_LEN + 1];
	Carotate__V1__JoinTokenCreateReply *r;
	struct ledger_join j;
	enum ledger_result res = LEDGER_ERROR;
	unsigned int n = 0;
	time_t now = time(NULL);

	if (q->uses > JOIN_MAX_USES || q->ttl > JOIN_MAX_TTL ||
	    !reply_text_ok(q->description, 0, LEDGER_MAX_JOIN_DESC)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "a join token allows 1 to %u uses, lives 1 second to 365 days, and its "
		    "description is at most %d printable characters",
		    JOIN_MAX_USES, LEDGER_MAX_JOIN_DESC);
		return;
	}
	memset(&j, 0, sizeof(j));
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("%s: no randomness", __func__);
	rpc_join_hex(raw, JOIN_ID_BYTES, j.id);
	memcpy(token, "cj1.", 4);
	memcpy(token + 4, j.id, LEDGER_JOIN_ID_LEN);
	token[4 + LEDGER_JOIN_ID_LEN] = '.';
	rpc_join_hex(raw + JOIN_ID_BYTES, JOIN_SECRET_BYTES, token + 5 + LEDGER_JOIN_ID_LEN);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (EVP_Digest(token, JOIN_TOKEN_LEN, j.hash, &n, EVP_sha256(), NULL) != 1 ||
	    n != LEDGER_TOKEN_HASH_LEN)
		fatalx("%s: SHA-256 failed", __func__);
	j.uses_left = q->uses != 0 ? q->uses : 1;
	j.created_at = now;
	j.expires_at = now + (int64_t)(q->ttl != 0 ? q->ttl : JOIN_DEFAULT_TTL);
	snprintf(j.description, sizeof(j.description), "%s", q->description);
	if (ledger_begin(l) == 0)
		res = ledger_end(l, ledger_join_create(l, &j));
	if (res != LEDGER_OK) {
		OPENSSL_cleanse(token, sizeof(token));
		reply_ledger_error(reply, l, "update the ledger");
		return;
	}
	log_info("join token %s created by uid %ld: %u uses, expires at %lld", j.id,
	    (long)(ctx->peer != NULL ? ctx->peer->uid : 0), j.uses_left, (long long)j.expires_at);
	r = xmalloc(sizeof(*r));
	carotate__v1__join_token_create_reply__init(r);
	r->token = xstrdup(token);
	OPENSSL_cleanse(token, sizeof(token));
	r->join_token = rpc_join_message(&j);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_CREATE_REPLY;
	reply->join_token_create_reply = r;
}

static void
rpc_join_listed(const struct ledger_join *j, void *arg)
{
	Carotate__V1__JoinTokenListReply *r = arg;

	r->join_tokens =
	    xreallocarray(r->join_tokens, r->n_join_tokens + 1, sizeof(*r->join_tokens));
	r->join_tokens[r->n_join_tokens++] = rpc_join_message(j);
}

void
rpc_join_token_list(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	Carotate__V1__JoinTokenListReply *r = xmalloc(sizeof(*r));

	carotate__v1__join_token_list_reply__init(r);
	r->now = time(NULL);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_LIST_REPLY;
	reply->join_token_list_reply = r;
	if (ledger_join_list(ctx->cd->ledger, rpc_join_listed, r) == -1)
		reply_ledger_error(reply, ctx->cd->ledger, "read the ledger");
}

void
rpc_join_token_revoke(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const char *id = req->join_token_revoke->id;
	struct ledger *l = ctx->cd->ledger;
	Carotate__V1__JoinTokenRevokeReply *r;
	enum ledger_result res = LEDGER_ERROR;

	if (!rpc_join_id_ok(id)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "a join token id is %d lower-case hex digits (see join-token list)",
		    LEDGER_JOIN_ID_LEN);
		return;
	}
	if (ledger_begin(l) == 0)
		res = ledger_end(l, ledger_join_revoke(l, id));
	if (res == LEDGER_NOT_FOUND) {
		reply_error(reply, CAROTATE__V1__STATUS__NOT_FOUND, "no join token %s", id);
		return;
	}
	if (res != LEDGER_OK) {
		reply_ledger_error(reply, l, "update the ledger");
		return;
	}
	log_info(
	    "join token %s revoked by uid %ld", id, (long)(ctx->peer != NULL ? ctx->peer->uid : 0));
	r = xmalloc(sizeof(*r));
	carotate__v1__join_token_revoke_reply__init(r);
	r->id = xstrdup(id);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_REVOKE_REPLY;
	reply->join_token_revoke_reply = r;
}
