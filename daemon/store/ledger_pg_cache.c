/*
 * The agents a pool member has seen, by id: the token hash and the bundle
 * last delivered, as of the last batch that committed them. It answers
 * check-ins while the member is cut off from the database (ledger.h); the
 * database stays the truth. The hashes are wiped when an entry goes and when
 * the cache is freed.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ledger.h"
#include "ledger_pg.h"
#include "xmalloc.h"

#define LEDGER_PG_CACHE_MIN 1024 /* buckets; doubled when entries outnumber them */

struct ledger_pg_centry {
	struct ledger_pg_centry *next;
	struct ledger_pg_cached c;
	char id[LEDGER_MAX_AGENT_ID + 1];
};

struct ledger_pg_cache {
	struct ledger_pg_centry **b;
	size_t nb, n;
};

static uint64_t ledger_pg_cache_hash(const char *);
static struct ledger_pg_centry **ledger_pg_cache_slot(const struct ledger_pg_cache *, const char *);
static void ledger_pg_cache_grow(struct ledger_pg_cache *);

/* FNV-1a: agent ids are chosen by agents, but a long chain costs lookups, nothing more. */
static uint64_t
ledger_pg_cache_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ULL;
	return h;
}

/* Where id's entry is, or would be linked. */
static struct ledger_pg_centry **
ledger_pg_cache_slot(const struct ledger_pg_cache *c, const char *id)
{
	struct ledger_pg_centry **e = &c->b[ledger_pg_cache_hash(id) % c->nb];

	while (*e != NULL && strcmp((*e)->id, id) != 0)
		e = &(*e)->next;
	return e;
}

static void
ledger_pg_cache_grow(struct ledger_pg_cache *c)
{
	struct ledger_pg_centry **old = c->b, *e, *next;
	size_t i, nold = c->nb;

	c->nb *= 2;
	c->b = xcalloc(c->nb, sizeof(*c->b));
	for (i = 0; i < nold; i++)
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			e->next = c->b[ledger_pg_cache_hash(e->id) % c->nb];
			c->b[ledger_pg_cache_hash(e->id) % c->nb] = e;
		}
	free(old);
}

struct ledger_pg_cache *
ledger_pg_cache_new(void)
{
	struct ledger_pg_cache *c = xcalloc(1, sizeof(*c));

	c->nb = LEDGER_PG_CACHE_MIN;
	c->b = xcalloc(c->nb, sizeof(*c->b));
	return c;
}

void
ledger_pg_cache_free(struct ledger_pg_cache *c)
{
	struct ledger_pg_centry *e, *next;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nb; i++)
		for (e = c->b[i]; e != NULL; e = next) {
			next = e->next;
			OPENSSL_cleanse(e, sizeof(*e));
			free(e);
		}
	free(c->b);
	free(c);
}

void
ledger_pg_cache_put(struct ledger_pg_cache *c, const char *id, const struct ledger_pg_cached *v)
{
	struct ledger_pg_centry **slot = ledger_pg_cache_slot(c, id), *e = *slot;

	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		strncpy(e->id, id, LEDGER_MAX_AGENT_ID);
		*slot = e;
		if (++c->n > c->nb)
			ledger_pg_cache_grow(c);
	}
	e->c = *v;
}

void
ledger_pg_cache_del(struct ledger_pg_cache *c, const char *id)
{
	struct ledger_pg_centry **slot = ledger_pg_cache_slot(c, id), *e = *slot;

	if (e == NULL)
		return;
	*slot = e->next;
	OPENSSL_cleanse(e, sizeof(*e));
	free(e);
	c->n--;
}

const struct ledger_pg_cached *
ledger_pg_cache_get(const struct ledger_pg_cache *c, const char *id)
{
	struct ledger_pg_centry *e = *ledger_pg_cache_slot(c, id);

	return e != NULL ? &e->c : NULL;
}
