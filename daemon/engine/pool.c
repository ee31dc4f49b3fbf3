/*
 * A pool's certificate sets (pool.h). Two roles, one mechanism:
 *
 * - Every member converges to the pool's state: when the generation in the
 *   database is newer than the one it applied, it brings its SSL directory to
 *   the pool's active and staged sets (the staged set going live through
 *   swap_rotate_ca when it is the one, else the pool's sealed set through
 *   swap_adopt; the staged set discarded or written whole), publishes the
 *   bundle, reloads the proxy, checks over TLS, and records the result in its
 *   row of the members table. A set that goes live and fails its check is put
 *   back on this member at once (the previous set, from the backup the swap
 *   made), and the failure recorded.
 *
 * - The member that ran a call (the leader) holds the pool's mutation lock,
 *   publishes its new sets as the next generation in one transaction, and
 *   waits until every member that was live records it. When one fails or
 *   does not answer in time, the leader publishes the state from before the
 *   call as one more generation, applies it itself like any member, waits for
 *   the others again, and answers naming the member that failed.
 *
 * Whatever is cut short (a member killed, the database gone) is finished the
 * same way: the journal makes every swap whole or undone, and a member that
 * starts, or finds the database again, converges to the pool's state.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "agents.h"
#include "backup.h"
#include "bundle.h"
#include "cakeys.h"
#include "carotated.h"
#include "certset.h"
#include "clock.h"
#include "config.h"
#include "digest.h"
#include "fault.h"
#include "ledger.h"
#include "log.h"
#include "member.h"
#include "pki.h"
#include "pool.h"
#include "poolfiles.h"
#include "poolsets.h"
#include "proxy.h"
#include "retained.h"
#include "seal.h"
#include "ssldir.h"
#include "statenote.h"
#include "swap.h"
#include "xmalloc.h"

#define POOL_WAIT_TICK_MS 100
#define POOL_RETRY_MS     5000 /* a member whose proxy did not answer tries again after this */
#define POOL_MAX_WAIT     32   /* members a leader waits for */
#define POOL_STATE_MAGIC  "carotate pool state 1"
#define POOL_FLOOR_NOTE   "pool.generation" /* in the state directory: the last one applied */

struct pool;

/* One application of a pool state to this member's SSL directory and proxy. */
struct pool_apply {
	struct pool *p;
	struct ledger_pool_state st;
	int active_changed;            /* the live set changed: a failed check puts it back */
	int changed;                   /* something on disk changed: the proxy is reloaded */
	int rolling_back;              /* the previous set is going back after a failed check */
	int current;                   /* the disk held the pool's sets already: the proxy lagged */
	char backup[SWAP_ID_MAX];      /* where the set live before went */
	char previous[PKI_SHA256_HEX]; /* its leaf */
	char expected[PKI_SHA256_HEX]; /* the leaf the proxy must serve now; "" none */
	char failure[768];
	char disk_error[768]; /* a part of the state that could not be applied; "" none */
	void *token;          /* the owner's (hooks->begin) */
	/* the leader's own apply of a roll back: it goes on from here */
	void (*then)(struct pool *, int ok, const char *why);
};

/* A mutation led by this member, from its publication to its answer. */
struct pool_lead {
	char call[16];
	pool_done_cb done;
	void *arg;
	uint64_t generation; /* the one waited for */
	char names[POOL_MAX_WAIT][LEDGER_MAX_MEMBER + 1];
	size_t n;
	long long deadline; /* ms, monotonic */
	int rolling_back;
	char failure[1024];
	struct event *ev;
};

struct pool {
	struct carotated *cd;
	const struct pool_hooks *hooks;
	uint8_t key[SEAL_KEY_LEN];
	struct event *tick, *sock_ev;
	int sock_fd;
	uint64_t seen;      /* the generation applied last, or tried and failed */
	uint64_t floor;     /* the newest generation applied, as POOL_FLOOR_NOTE keeps it */
	long long retry_at; /* ms, monotonic: a soft failure is tried again from then */
	int locked;         /* this member holds the mutation lock */
	int down;           /* the database did not answer the last poll: said once */
	struct ledger_pool_state before; /* what this member served when its mutation began */
	struct pool_apply *apply;
	struct pool_lead *lead;
};

static void pool_live_cb(const struct ledger_member *, void *);
static void pool_wait_cb(const struct ledger_member *, void *);
static void pool_leaves(const struct config *, char active[PKI_SHA256_HEX],
    char staged[PKI_SHA256_HEX], char *ca_staged);
static int pool_disk(struct pool_apply *, char *, size_t);
static void pool_publish(const struct config *, int);
static int pool_take_set(struct pool *, const char *, int, char *, size_t);
static void pool_apply_start(
    struct pool *, const struct ledger_pool_state *, void (*)(struct pool *, int, const char *));
static void pool_apply_reloaded(Carotate__V1__ReloadResult *, void *);
static void pool_apply_checked(int, const char *, const char *, void *);
static void pool_apply_end(struct pool_apply *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void pool_poll(struct pool *);
static void pool_state_text(const struct ledger_pool_state *, uint64_t, char *, size_t);
static void pool_state_slot(const char *, char *, size_t);
static int pool_state_seal(
    struct pool *, const struct ledger_pool_state *, uint64_t, char *, size_t);
static int pool_state_trusted(struct pool *, const struct ledger_pool_state *, char *, size_t);
static uint64_t pool_floor_read(struct pool *);
static void pool_floor_raise(struct pool *, uint64_t);
static int pool_state_write(struct pool *, struct ledger_pool_state *, uint64_t);
static void pool_tick(evutil_socket_t, short, void *);
static void pool_socket(evutil_socket_t, short, void *);
static void pool_watch_socket(struct pool *);
static void pool_lead_wait(struct pool *);
static void pool_lead_tick(evutil_socket_t, short, void *);
static void pool_lead_fail(struct pool *, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void pool_lead_rolled(struct pool *, int, const char *);
static void pool_lead_end(struct pool *, Carotate__V1__Status, const char *);
static Carotate__V1__Status pool_outage(struct carotated *);

/* The leaves of this member's active and staged sets ("" none or unreadable). */
static void
pool_leaves(const struct config *conf, char active[PKI_SHA256_HEX], char staged[PKI_SHA256_HEX],
    char *ca_staged)
{
	char ca[PKI_SHA256_HEX];

	certset_fingerprints(conf, 0, ca, active);
	certset_fingerprints(conf, 1, ca_staged != NULL ? ca_staged : ca, staged);
	if (active[0] == '-' || active[0] == '?')
		active[0] = '\0';
	if (staged[0] == '-' || staged[0] == '?')
		staged[0] = '\0';
}

/*
 * The pool's state as its sealed record says it: the row in the database is
 * believed only when a record sealed under the pool key says the same. Whoever
 * can write the database without the key cannot make a member take a set (an
 * old one, say) that no member published.
 */
static void
pool_state_text(const struct ledger_pool_state *st, uint64_t generation, char *buf, size_t len)
{
	snprintf(buf, len, "%s\n%llu\n%s\n%s\n%s\n%s\n", POOL_STATE_MAGIC,
	    (unsigned long long)generation, st->active, st->staged, st->call, st->member);
}

/* The record's slot: its generation and content named, so that no two records share one. */
static void
pool_state_slot(const char *text, char *slot, size_t len)
{
	char sum[DIGEST_SHA256_HEX];

	if (digest_sha256_hex(text, strlen(text), sum) == -1)
		fatalx("%s: SHA-256 failed", __func__);
	snprintf(slot, len, "pool/state/%.32s", sum);
}

/* Seals st as generation into the pool's blobs. 0, or -1 with err. */
static int
pool_state_seal(struct pool *p, const struct ledger_pool_state *st, uint64_t generation, char *err,
    size_t errlen)
{
	char text[512], slot[64], why[128];
	uint8_t blob[512 + SEAL_OVERHEAD];
	size_t n = sizeof(blob);

	pool_state_text(st, generation, text, sizeof(text));
	pool_state_slot(text, slot, sizeof(slot));
	if (seal_encrypt(p->key, slot, strlen(slot), (const uint8_t *)text, strlen(text), blob, &n,
	        why, sizeof(why)) == -1) {
		snprintf(err, errlen, "cannot seal the pool's state: %s", why);
		return -1;
	}
	if (ledger_blob_put_new(p->cd->ledger, slot, blob, n) == -1) {
		snprintf(err, errlen, "cannot store the pool's sealed state in its database");
		return -1;
	}
	return 0;
}

/*
 * 0 when st is a state a member holding the pool key published, and not older
 * than one this member applied already; -1 with err otherwise.
 */
static int
pool_state_trusted(struct pool *p, const struct ledger_pool_state *st, char *err, size_t errlen)
{
	char text[512], slot[64], why[128];
	uint8_t blob[1024], plain[1024];
	size_t blen = 0, plen = sizeof(plain);
	uint64_t floor = p->floor;
	int r;

	if (st->generation < floor) {
		snprintf(err, errlen,
		    "the pool's state went back to generation %llu, but this member applied "
		    "generation %llu already: refused (the database was written by hand, or "
		    "restored from an old copy)",
		    (unsigned long long)st->generation, (unsigned long long)floor);
		return -1;
	}
	pool_state_text(st, st->generation, text, sizeof(text));
	pool_state_slot(text, slot, sizeof(slot));
	r = ledger_blob_get(p->cd->ledger, slot, blob, sizeof(blob), &blen);
	if (r == 1)
		r = seal_decrypt(p->key, slot, strlen(slot), blob, blen, plain, &plen, why,
		        sizeof(why)) == 0 &&
		    plen == strlen(text) && memcmp(plain, text, plen) == 0;
	if (r != 1) {
		snprintf(err, errlen,
		    "the pool's state (generation %llu, %s on member %s) %s: refused; "
		    "only a member holding the pool key publishes a state",
		    (unsigned long long)st->generation, st->call, st->member,
		    r == -1 ? "cannot be checked: its sealed record cannot be read"
		            : "has no sealed record that opens under this member's pool key");
		return -1;
	}
	return 0;
}

/* The newest generation this member applied, read once from its state directory (0: none). */
static uint64_t
pool_floor_read(struct pool *p)
{
	char *text = NULL, err[256];
	unsigned long long g = 0;

	if (statenote_read(p->cd->conf, POOL_FLOOR_NOTE, &text, err, sizeof(err)) == -1)
		log_warnx("pool: %s", err);
	if (text != NULL && sscanf(text, "%llu", &g) != 1)
		g = 0;
	free(text);
	return (uint64_t)g;
}

static void
pool_floor_raise(struct pool *p, uint64_t generation)
{
	char text[32], err[256];

	if (generation <= p->floor)
		return;
	p->floor = generation;
	snprintf(text, sizeof(text), "%llu\n", (unsigned long long)generation);
	if (statenote_write(p->cd->conf, POOL_FLOOR_NOTE, text, err, sizeof(err)) == -1)
		log_warnx("pool: %s", err);
}

/* Seals st as generation expect + 1 and publishes it. As ledger_pool_state_put; err when -1. */
static int
pool_state_write(struct pool *p, struct ledger_pool_state *st, uint64_t expect)
{
	char err[512];

	snprintf(st->member, sizeof(st->member), "%s", p->cd->conf->ledger_member);
	if (pool_state_seal(p, st, expect + 1, err, sizeof(err)) == -1) {
		log_warnx("pool: %s", err);
		return -1;
	}
	return ledger_pool_state_put(p->cd->ledger, st, expect);
}

void
pool_init(struct carotated *cd, const struct pool_hooks *hooks)
{
	struct pool *p;
	struct pool_apply a;
	char why[512];
	void *token;
	int r;

	if (cd->conf->ledger_backend != CONFIG_LEDGER_POSTGRESQL || cd->pool != NULL)
		return;
	p = xcalloc(1, sizeof(*p));
	p->cd = cd;
	p->hooks = hooks;
	p->sock_fd = -1;
	if (poolfiles_read_key(cd->conf->ledger_pool_key, p->key, why, sizeof(why)) == -1)
		fatalx("[ledger] pool_key %s", why);
	p->floor = pool_floor_read(p);
	cd->pool = p;
	/* A rotate cut short is finished first, as itself; the poll converges after it. */
	if (cd->resuming)
		return;
	/* Before the proxy starts: the disk as the pool has it; reload and check come later. */
	memset(&a, 0, sizeof(a));
	a.p = p;
	if (ledger_pool_state_get(cd->ledger, &a.st) == -1) {
		log_warnx("pool: cannot read the pool's state at start-up: this member serves "
		          "what it has until the database answers");
		return;
	}
	if (a.st.generation == 0)
		return;
	if (pool_state_trusted(p, &a.st, why, sizeof(why)) == -1) {
		log_warnx("pool: at start-up: %s", why);
		return;
	}
	token = hooks->begin(cd);
	r = pool_disk(&a, why, sizeof(why));
	if (r == -1)
		log_warnx("pool: generation %llu: %s", (unsigned long long)a.st.generation, why);
	else if (a.changed)
		log_info("pool: this member took the pool's generation %llu at start-up",
		    (unsigned long long)a.st.generation);
	if (r == -1 || a.changed)
		hooks->end(cd, token, &a.st, r == 0,
		    r == 0 ? "taken at start-up, before the proxy is reloaded and checked" : why);
	else
		hooks->end(cd, token, NULL, 1, "");
}

void
pool_run(struct carotated *cd)
{
	struct pool *p = cd->pool;
	struct timeval tv = { POOL_POLL_MS / 1000, (POOL_POLL_MS % 1000) * 1000 };

	if (p == NULL)
		return;
	if ((p->tick = event_new(cd->base, -1, EV_PERSIST, pool_tick, p)) == NULL ||
	    event_add(p->tick, &tv) == -1)
		fatalx("cannot start the pool's poll");
	/* The first poll is the first tick's: from the event loop, with privileges dropped. */
	pool_watch_socket(p);
}

void
pool_stop(struct carotated *cd)
{
	struct pool *p = cd->pool;

	if (p == NULL)
		return;
	if (p->tick != NULL)
		event_free(p->tick);
	if (p->sock_ev != NULL)
		event_free(p->sock_ev);
	if (p->lead != NULL) {
		if (p->lead->ev != NULL)
			event_free(p->lead->ev);
		free(p->lead);
	}
	/* An apply in flight: its reload or check was abandoned; the next start converges. */
	free(p->apply);
	OPENSSL_cleanse(p->key, sizeof(p->key));
	free(p);
	cd->pool = NULL;
}

/* The socket the notifications come on; it changes with each reconnection. */
static void
pool_watch_socket(struct pool *p)
{
	int fd = ledger_pool_socket(p->cd->ledger);

	if (fd == p->sock_fd)
		return;
	if (p->sock_ev != NULL) {
		event_free(p->sock_ev);
		p->sock_ev = NULL;
	}
	p->sock_fd = fd;
	if (fd == -1)
		return;
	if ((p->sock_ev = event_new(p->cd->base, fd, EV_READ | EV_PERSIST, pool_socket, p)) ==
	        NULL ||
	    event_add(p->sock_ev, NULL) == -1)
		log_warnx(
		    "pool: cannot watch for notifications; polling every %d ms", POOL_POLL_MS);
}

static void
pool_socket(evutil_socket_t fd, short events, void *arg)
{
	struct pool *p = arg;

	if (ledger_in_batch(p->cd->ledger))
		return;
	if (ledger_pool_notified(p->cd->ledger) != 0)
		pool_poll(p);
}

static void
pool_tick(evutil_socket_t fd, short events, void *arg)
{
	struct pool *p = arg;

	if (!ledger_in_batch(p->cd->ledger))
		(void)ledger_pool_notified(p->cd->ledger);
	pool_poll(p);
	pool_watch_socket(p);
}

/* A newer generation than the one applied is applied now, unless a call runs here. */
static void
pool_poll(struct pool *p)
{
	struct carotated *cd = p->cd;
	struct ledger_pool_state st;
	char err[768];

	if (p->apply != NULL || p->lead != NULL || p->locked || cd->busy != NULL || cd->resuming ||
	    ledger_in_batch(cd->ledger))
		return;
	if (ledger_pool_state_get(cd->ledger, &st) == -1) {
		if (!p->down)
			log_warnx("pool: cannot read the pool's state; this member keeps what it "
			          "serves until the database answers");
		p->down = 1;
		return;
	}
	if (p->down)
		log_info("pool: the pool's state can be read again (generation %llu)",
		    (unsigned long long)st.generation);
	p->down = 0;
	if (st.generation == 0 || st.generation <= p->seen || clock_ms() < p->retry_at)
		return;
	if (pool_state_trusted(p, &st, err, sizeof(err)) == -1) {
		log_warnx("pool: %s", err);
		if (ledger_member_applied(cd->ledger, st.generation, 0, err) == -1)
			log_warnx("pool: cannot record the refusal in the pool's database");
		p->seen = st.generation;
		return;
	}
	pool_apply_start(p, &st, NULL);
}

/*
 * The pool's set leaf made this member's: staged (new/) or, when not, the
 * active set through swap_adopt. 0, or -1 with err (nothing changed).
 */
static int
pool_take_set(struct pool *p, const char *leaf, int staged, char *err, size_t errlen)
{
	const struct config *conf = p->cd->conf;
	struct pool_apply *a = p->apply;
	struct poolset set;
	struct ssldir_files f;
	char keyname[CAKEYS_NAME_MAX], why[512], reason[160];
	int r;

	if (poolsets_get(p->cd->ledger, p->key, leaf, &set, why, sizeof(why)) == -1) {
		snprintf(err, errlen,
		    "the pool's set %.16s... cannot be used: %s; it was not applied", leaf, why);
		return -1;
	}
	f = (struct ssldir_files){ (const char *)set.ca, (const char *)set.cert,
		(const char *)set.key, set.ca_len, set.cert_len, set.key_len,
		set.origin[0] != '\0' ? set.origin : "custom",
		set.created > 0 ? (time_t)set.created : time(NULL) };
	/* A generated CA's key first: renew on this member signs with it. */
	r = set.ca_key == NULL ? 0 : cakeys_held(conf, set.ca_sha, why, sizeof(why));
	if (r == 0 && set.ca_key != NULL)
		r = cakeys_save(conf, set.ca, set.ca_len, set.ca_key, set.ca_key_len, keyname, why,
		    sizeof(why));
	else if (r == 1)
		r = 0;
	if (r == 0 && staged)
		r = ssldir_stage(conf, &f, why, sizeof(why));
	else if (r == 0) {
		snprintf(reason, sizeof(reason), "pool generation %llu (%s on member %s)",
		    (unsigned long long)a->st.generation, a->st.call, a->st.member);
		fault_point("pool-apply-before-swap");
		r = swap_adopt(conf, &f, time(NULL), reason, set.ca_sha, NULL, a->backup,
		    sizeof(a->backup), why, sizeof(why));
	}
	poolsets_clear(&set);
	if (r != 0) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	return 0;
}

/*
 * The sets on disk changed: the bundle follows (and, when the live set changed, the CA it
 * replaced is kept in it for the retention window, as a rotate does). Failures are logged:
 * the proxy is reloaded and checked whatever they were.
 */
static void
pool_publish(const struct config *conf, int active_changed)
{
	char before[RETAINED_NOTE_LEN], after[RETAINED_NOTE_LEN], why[512];
	struct bundle b;
	time_t now = time(NULL);

	if (active_changed &&
	    retained_note_active(conf, now, before, after, why, sizeof(why)) == -1)
		log_warnx("pool: %s", why);
	if (bundle_publish(conf, now, &b, why, sizeof(why)) == -1)
		log_warnx("pool: %s", why);
	bundle_clear(&b);
}

/*
 * The SSL directory brought to a->st: the live set first (the staged set going
 * live when it is the pool's active one), then the staged set. a->changed and
 * a->active_changed say what moved. 0, or -1 with err.
 */
static int
pool_disk(struct pool_apply *a, char *err, size_t errlen)
{
	const struct config *conf = a->p->cd->conf;
	struct pool *p = a->p;
	char active[PKI_SHA256_HEX], staged[PKI_SHA256_HEX], ca[PKI_SHA256_HEX], kept[64], why[512];
	struct pool_apply *saved = p->apply;
	int r = 0;

	p->apply = a;
	pool_leaves(conf, active, staged, ca);
	snprintf(a->previous, sizeof(a->previous), "%s", active);
	snprintf(a->expected, sizeof(a->expected), "%s", a->st.active);
	if (a->st.active[0] != '\0' && strcmp(active, a->st.active) != 0) {
		if (staged[0] != '\0' && strcmp(staged, a->st.active) == 0) {
			fault_point("pool-apply-before-swap");
			r = swap_rotate_ca(conf, time(NULL), "pool", ca, NULL, a->backup,
			    sizeof(a->backup), why, sizeof(why));
			if (r != 0)
				snprintf(err, errlen, "%s", why);
		} else
			r = pool_take_set(p, a->st.active, 0, err, errlen);
		if (r != 0)
			goto out;
		a->active_changed = a->changed = 1;
		fault_point("pool-apply-after-swap");
		pool_leaves(conf, active, staged, NULL);
	}
	if (strcmp(staged, a->st.staged) != 0) {
		if (staged[0] != '\0' &&
		    backup_discard(conf, time(NULL), kept, sizeof(kept), why, sizeof(why)) == -1) {
			snprintf(err, errlen, "cannot set the staged set aside: %s", why);
			r = -1;
			goto out;
		}
		a->changed = 1;
		if (a->st.staged[0] != '\0' &&
		    (r = pool_take_set(p, a->st.staged, 1, err, errlen)) != 0)
			goto out;
	}
out:
	if (a->changed)
		pool_publish(conf, a->active_changed);
	p->apply = saved;
	return r == 0 ? 0 : -1;
}

/* Applies st here; then (the leader's roll back) calls then, else records the result. */
static void
pool_apply_start(struct pool *p, const struct ledger_pool_state *st,
    void (*then)(struct pool *, int, const char *))
{
	struct carotated *cd = p->cd;
	struct pool_apply *a = xcalloc(1, sizeof(*a));
	char err[768];

	a->p = p;
	a->st = *st;
	a->then = then;
	p->apply = a;
	if (cd->busy == NULL)
		cd->busy = "pool-apply";
	a->token = p->hooks->begin(cd);
	if (pool_disk(a, err, sizeof(err)) == -1) {
		if (!a->changed) {
			pool_apply_end(a, 0, "%s", err);
			return;
		}
		/* Part of it moved (the live set, say): the proxy must serve what is on disk. */
		snprintf(a->disk_error, sizeof(a->disk_error), "%s", err);
	}
	agents_refresh(cd);
	if (!a->changed) {
		a->current = 1;
		/* Nothing moved: the proxy is asked first, and reloaded only if it lags. */
		if (a->expected[0] == '\0') {
			pool_apply_end(a, 1, "nothing to change");
			return;
		}
		proxy_check(cd, &cd->conf->proxy_address, cd->conf->proxy_server_name, a->expected,
		    cd->conf->check_timeout / 4 + 1, pool_apply_checked, a);
		return;
	}
	proxy_reload(cd, pool_apply_reloaded, a);
}

static void
pool_apply_reloaded(Carotate__V1__ReloadResult *result, void *arg)
{
	struct pool_apply *a = arg;
	struct carotated *cd = a->p->cd;

	fault_point("pool-apply-after-reload");
	if (result != NULL)
		protobuf_c_message_free_unpacked(&result->base, NULL);
	if (a->expected[0] == '\0') {
		pool_apply_end(a, 1, "the proxy was reloaded");
		return;
	}
	/* Reloaded: a failed check now is final (changed set). */
	a->changed = 1;
	proxy_check(cd, &cd->conf->proxy_address, cd->conf->proxy_server_name, a->expected,
	    cd->conf->check_timeout, pool_apply_checked, a);
}

static void
pool_apply_checked(int ok, const char *served, const char *why, void *arg)
{
	struct pool_apply *a = arg;
	struct pool *p = a->p;
	const struct config *conf = p->cd->conf;
	char addr[300], err[512], kept[SWAP_ID_MAX];

	proxy_address_text(&conf->proxy_address, addr, sizeof(addr));
	if (ok) {
		if (a->rolling_back)
			pool_apply_end(a, 0, "%s; the previous set was put back and %s serves it",
			    a->failure, addr);
		else
			pool_apply_end(a, 1, "%s serves %.16s...", addr, a->expected);
		return;
	}
	if (a->changed == 0) {
		/* The files were right already: the proxy lags; reload it once. */
		proxy_reload(p->cd, pool_apply_reloaded, a);
		return;
	}
	if (a->rolling_back) {
		pool_apply_end(a, 0,
		    "%s; the previous set was put back, but %s does not serve it "
		    "either (%s): check the proxy now",
		    a->failure, addr, why);
		return;
	}
	snprintf(a->failure, sizeof(a->failure),
	    "%s did not serve the pool's certificate %.16s... within %u s (%s)", addr, a->expected,
	    conf->check_timeout / 1000, why);
	if (!a->active_changed || a->backup[0] == '\0' || a->previous[0] == '\0') {
		pool_apply_end(a, 0, "%s", a->failure);
		return;
	}
	/* This member goes back to what it served: the leader decides for the pool. */
	a->rolling_back = 1;
	snprintf(a->expected, sizeof(a->expected), "%s", a->previous);
	if (swap_restore_as(
	        conf, a->backup, time(NULL), 1, NULL, kept, sizeof(kept), err, sizeof(err)) == -1) {
		pool_apply_end(
		    a, 0, "%s; putting %s back failed too (%s)", a->failure, a->backup, err);
		return;
	}
	pool_publish(conf, 0);
	agents_refresh(p->cd);
	proxy_reload(p->cd, pool_apply_reloaded, a);
}

/* The apply's end: recorded in this member's row and in the audit trail. */
static void
pool_apply_end(struct pool_apply *a, int ok, const char *fmt, ...)
{
	struct pool *p = a->p;
	struct carotated *cd = p->cd;
	char msg[1024];
	va_list ap;
	int soft;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (a->disk_error[0] != '\0') {
		/* The proxy serves what went live, but the state is not whole here. */
		char whole[sizeof(msg) + sizeof(a->disk_error) + 16];

		snprintf(whole, sizeof(whole), "%s (then: %s)", a->disk_error, msg);
		memcpy(msg, whole, sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = '\0';
		ok = 0;
	}
	/* A proxy that lagged with the right files on disk: tried again, not recorded as done. */
	soft = !ok && a->current && a->then == NULL;
	if (ok)
		log_info("pool: generation %llu (%s on member %s) applied: %s",
		    (unsigned long long)a->st.generation, a->st.call, a->st.member, msg);
	else
		log_warnx("pool: generation %llu (%s on member %s) failed here: %s",
		    (unsigned long long)a->st.generation, a->st.call, a->st.member, msg);
	if (ledger_member_applied(cd->ledger, a->st.generation, ok, ok ? "" : msg) == -1)
		log_warnx("pool: cannot record the result of generation %llu in the pool's "
		          "database",
		    (unsigned long long)a->st.generation);
	p->hooks->end(cd, a->token, &a->st, ok, msg);
	/* The canary may serve another staged certificate now: check-ins prove only once it does.
	 */
	if (a->changed)
		agents_check_canary(cd);
	p->apply = NULL;
	if (soft)
		p->retry_at = clock_ms() + POOL_RETRY_MS;
	else
		p->seen = a->st.generation;
	if (ok)
		pool_floor_raise(p, a->st.generation);
	if (cd->busy != NULL && strcmp(cd->busy, "pool-apply") == 0) {
		cd->busy = NULL;
		member_beat(cd);
	}
	if (a->then != NULL)
		a->then(p, ok, msg);
	free(a);
}

int
pool_mutation_begin(
    struct carotated *cd, const char *call, Carotate__V1__Status *status, char *msg, size_t msglen)
{
	struct pool *p = cd->pool;
	struct ledger_pool_state st;
	char active[PKI_SHA256_HEX], staged[PKI_SHA256_HEX], err[512];
	int r;

	if (p == NULL)
		return 0;
	if ((r = ledger_pool_lock(cd->ledger)) != 1) {
		*status = CAROTATE__V1__STATUS__UNAVAILABLE;
		snprintf(msg, msglen,
		    r == 0 ? "%s: another member of the pool is changing its sets now; try again "
		             "when it has finished (carotatectl status shows the pool)"
		           : "%s: cannot take the pool's mutation lock: the pool's database does "
		             "not answer",
		    call);
		return -1;
	}
	p->locked = 1;
	if (ledger_pool_state_get(cd->ledger, &st) == -1) {
		pool_mutation_end(cd);
		*status = CAROTATE__V1__STATUS__UNAVAILABLE;
		snprintf(msg, msglen,
		    "%s: cannot read the pool's state: the pool's database does not answer", call);
		return -1;
	}
	pool_leaves(cd->conf, active, staged, NULL);
	/* A row no key holder wrote is not the pool's: this call's sets replace it. */
	if (st.generation > 0 && pool_state_trusted(p, &st, err, sizeof(err)) == -1)
		log_warnx("pool: %s: %s; this call's sets will replace it", call, err);
	else if (st.generation > 0 &&
	         (strcmp(active, st.active) != 0 || strcmp(staged, st.staged) != 0)) {
		pool_mutation_end(cd);
		*status = CAROTATE__V1__STATUS__UNAVAILABLE;
		snprintf(msg, msglen,
		    "%s: this member does not serve the pool's sets yet (generation %llu, from %s "
		    "on member %s): it applies them now; try again, or make the change on another "
		    "member (carotatectl status shows each member's last result)",
		    call, (unsigned long long)st.generation, st.call, st.member);
		p->seen = 0;
		return -1;
	}
	/* What this member serves goes into the pool first: the call can be undone anywhere. */
	if (poolsets_put(cd->conf, cd->ledger, p->key, 0, active, err, sizeof(err)) == -1 ||
	    poolsets_put(cd->conf, cd->ledger, p->key, 1, staged, err, sizeof(err)) == -1) {
		pool_mutation_end(cd);
		/* Unsound sets are this member's to fix; an outage is the database's. */
		*status = pool_outage(cd) == CAROTATE__V1__STATUS__UNAVAILABLE
		              ? CAROTATE__V1__STATUS__UNAVAILABLE
		              : CAROTATE__V1__STATUS__FAILED_PRECONDITION;
		snprintf(
		    msg, msglen, "%s: cannot seal this member's sets into the pool: %s", call, err);
		return -1;
	}
	p->before = st;
	snprintf(p->before.active, sizeof(p->before.active), "%s", active);
	snprintf(p->before.staged, sizeof(p->before.staged), "%s", staged);
	return 0;
}

void
pool_mutation_end(struct carotated *cd)
{
	struct pool *p = cd->pool;

	if (p == NULL || !p->locked)
		return;
	ledger_pool_unlock(cd->ledger);
	p->locked = 0;
}

/* A failure the database's outage explains is UNAVAILABLE (exit 2: try again), else INTERNAL. */
static Carotate__V1__Status
pool_outage(struct carotated *cd)
{
	struct ledger_health h;

	ledger_health(cd->ledger, &h);
	return h.reachable ? CAROTATE__V1__STATUS__INTERNAL : CAROTATE__V1__STATUS__UNAVAILABLE;
}

void
pool_mutation_publish(struct carotated *cd, const char *call, pool_done_cb done, void *arg)
{
	struct pool *p = cd->pool;
	struct pool_lead *l;
	struct ledger_pool_state st;
	char err[512];
	int r;

	if (p == NULL || !p->locked) {
		done(CAROTATE__V1__STATUS__OK, "", arg);
		return;
	}
	l = xcalloc(1, sizeof(*l));
	snprintf(l->call, sizeof(l->call), "%s", call);
	l->done = done;
	l->arg = arg;
	p->lead = l;
	memset(&st, 0, sizeof(st));
	snprintf(st.call, sizeof(st.call), "%s", call);
	if (poolsets_put(cd->conf, cd->ledger, p->key, 0, st.active, err, sizeof(err)) == -1 ||
	    poolsets_put(cd->conf, cd->ledger, p->key, 1, st.staged, err, sizeof(err)) == -1) {
		/* The pool's state stays: this member goes back to it (pool_poll). */
		p->seen = 0;
		snprintf(l->failure, sizeof(l->failure),
		    "%s: done on this member, but its sets cannot be sealed into the pool (%s); "
		    "this member goes back to the pool's sets (generation %llu)",
		    call, err, (unsigned long long)p->before.generation);
		pool_lead_end(p, pool_outage(cd), l->failure);
		return;
	}
	fault_point("pool-before-publish");
	if ((r = pool_state_write(p, &st, p->before.generation)) != 1) {
		p->seen = 0;
		snprintf(l->failure, sizeof(l->failure),
		    "%s: done on this member, but %s; this member goes back to the pool's sets "
		    "(generation %llu) as soon as the database answers",
		    call,
		    r == 0 ? "the pool's state changed meanwhile"
		           : "the pool's database did not take the new state",
		    (unsigned long long)p->before.generation);
		pool_lead_end(
		    p, r == 0 ? CAROTATE__V1__STATUS__INTERNAL : pool_outage(cd), l->failure);
		return;
	}
	p->seen = st.generation;
	pool_floor_raise(p, st.generation);
	if (ledger_member_applied(cd->ledger, st.generation, 1, "") == -1)
		log_warnx("pool: cannot record this member's result of generation %llu",
		    (unsigned long long)st.generation);
	log_info("pool: generation %llu published (%s); waiting for the other members",
	    (unsigned long long)st.generation, call);
	l->generation = st.generation;
	pool_lead_wait(p);
}

static void
pool_live_cb(const struct ledger_member *m, void *arg)
{
	struct pool *p = arg;
	struct pool_lead *l = p->lead;

	if (strcmp(m->name, p->cd->conf->ledger_member) == 0 ||
	    m->heartbeat_age > config_stale_after(p->cd->conf->ledger_heartbeat) ||
	    l->n >= POOL_MAX_WAIT)
		return;
	snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", m->name);
}

/* Who must answer (the members live now), and the bound on the wait. */
static void
pool_lead_wait(struct pool *p)
{
	struct pool_lead *l = p->lead;
	const struct config *conf = p->cd->conf;
	struct timeval tv = { 0, POOL_WAIT_TICK_MS * 1000 };

	l->n = 0;
	if (ledger_member_list(p->cd->ledger, pool_live_cb, p) == -1) {
		pool_lead_fail(p, "", "the pool's members cannot be read");
		return;
	}
	l->deadline = clock_ms() + conf->reload_timeout + 2LL * conf->check_timeout + 5000;
	if (l->ev == NULL &&
	    (l->ev = event_new(p->cd->base, -1, EV_PERSIST, pool_lead_tick, p)) == NULL)
		fatalx("cannot wait for the pool's members");
	if (event_add(l->ev, &tv) == -1)
		fatalx("cannot wait for the pool's members");
	pool_lead_tick(-1, 0, p);
}

struct pool_wait {
	struct pool *p;
	size_t pending;
	char failed[LEDGER_MAX_MEMBER + 1];
	char why[LEDGER_MAX_MEMBER_ERROR + 64];
};

static void
pool_wait_cb(const struct ledger_member *m, void *arg)
{
	struct pool_wait *w = arg;
	struct pool_lead *l = w->p->lead;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->names[i], m->name) == 0)
			break;
	if (i == l->n || w->failed[0] != '\0')
		return;
	if (m->applied_generation >= l->generation && m->applied_ok)
		return;
	if (m->applied_generation == l->generation) {
		snprintf(w->failed, sizeof(w->failed), "%s", m->name);
		snprintf(w->why, sizeof(w->why), "%s", m->apply_error);
		return;
	}
	/*
	 * Twice the stale age: a member busy with its part (a statement waiting on a lock, its
	 * connection coming back after a blip) may miss a beat; one that is gone misses them all.
	 */
	if (m->heartbeat_age > 2 * config_stale_after(w->p->cd->conf->ledger_heartbeat)) {
		snprintf(w->failed, sizeof(w->failed), "%s", m->name);
		snprintf(w->why, sizeof(w->why), "its heartbeat stopped (%llds ago)",
		    (long long)m->heartbeat_age);
		return;
	}
	w->pending++;
}

static void
pool_lead_tick(evutil_socket_t fd, short events, void *arg)
{
	struct pool *p = arg;
	struct pool_lead *l = p->lead;
	struct pool_wait w = { p, 0, "", "" };

	if (l == NULL || p->apply != NULL || ledger_in_batch(p->cd->ledger))
		return;
	if (ledger_member_list(p->cd->ledger, pool_wait_cb, &w) == -1) {
		if (clock_ms() > l->deadline)
			pool_lead_fail(p, "", "the pool's database stopped answering");
		return;
	}
	if (w.failed[0] != '\0') {
		pool_lead_fail(p, w.failed, "%s", w.why);
		return;
	}
	if (w.pending == 0) {
		event_del(l->ev);
		pool_lead_end(p,
		    l->rolling_back ? CAROTATE__V1__STATUS__INTERNAL : CAROTATE__V1__STATUS__OK,
		    l->failure);
		return;
	}
	if (clock_ms() <= l->deadline)
		return;
	pool_lead_fail(p, "", "%zu member%s did not apply generation %llu in time", w.pending,
	    w.pending == 1 ? "" : "s", (unsigned long long)l->generation);
}

/*
 * A member failed (or the wait ended): the pool goes back to the state from
 * before the call, as one more generation this member applies first.
 */
static void
pool_lead_fail(struct pool *p, const char *member, const char *fmt, ...)
{
	struct pool_lead *l = p->lead;
	struct ledger_pool_state st;
	char why[768];
	va_list ap;
	size_t n;
	int r;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	event_del(l->ev);
	if (l->rolling_back) {
		n = strlen(l->failure);
		snprintf(l->failure + n, sizeof(l->failure) - n,
		    "; the roll back is not confirmed everywhere: %s%s%s%s",
		    member[0] ? "member " : "", member, member[0] ? ": " : "", why);
		pool_lead_end(p, CAROTATE__V1__STATUS__INTERNAL, l->failure);
		return;
	}
	snprintf(l->failure, sizeof(l->failure), "%s: %s%s%s%s", l->call,
	    member[0] ? "member " : "", member, member[0] ? " failed: " : "", why);
	log_warnx("pool: %s; putting the pool back", l->failure);
	l->rolling_back = 1;
	st = p->before;
	snprintf(st.call, sizeof(st.call), "rollback");
	if ((r = pool_state_write(p, &st, l->generation)) != 1) {
		n = strlen(l->failure);
		snprintf(l->failure + n, sizeof(l->failure) - n,
		    "; the pool could not be put back (its database %s): every member converges "
		    "to generation %llu when it answers",
		    r == 0 ? "changed meanwhile" : "did not answer",
		    (unsigned long long)l->generation);
		p->seen = 0;
		pool_lead_end(p, CAROTATE__V1__STATUS__INTERNAL, l->failure);
		return;
	}
	l->generation = st.generation;
	pool_apply_start(p, &st, pool_lead_rolled);
}

/* This member applied the roll back: the others are waited for. */
static void
pool_lead_rolled(struct pool *p, int ok, const char *why)
{
	struct pool_lead *l = p->lead;
	size_t n = strlen(l->failure);

	if (!ok) {
		snprintf(l->failure + n, sizeof(l->failure) - n,
		    "; this member could not take the previous sets back: %s", why);
		pool_lead_end(p, CAROTATE__V1__STATUS__INTERNAL, l->failure);
		return;
	}
	snprintf(l->failure + n, sizeof(l->failure) - n,
	    "; the pool was put back (generation %llu): every member serves the previous sets "
	    "again",
	    (unsigned long long)l->generation);
	pool_lead_wait(p);
}

static void
pool_lead_end(struct pool *p, Carotate__V1__Status status, const char *message)
{
	struct pool_lead *l = p->lead;
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", message[0] != '\0' ? message : l->failure);
	p->lead = NULL;
	if (l->ev != NULL)
		event_free(l->ev);
	l->done(status, msg, l->arg);
	free(l);
}
