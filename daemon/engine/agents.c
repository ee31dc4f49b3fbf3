/*
 * The agent protocol as the parent sees it. The worker has parsed the HTTP
 * and checked every field; supervise.c checks the shapes again (the worker is
 * the exposed process and is not trusted). Each batch of requests is answered
 * inside one ledger transaction: nothing an agent is told, and nothing the
 * report counts, exists before it is on disk.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "agents.h"
#include "bundle.h"
#include "carotated.h"
#include "certset.h"
#include "config.h"
#include "fsx.h"
#include "internal.pb-c.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "supervise.h"
#include "worker.h"
#include "xmalloc.h"

#define AGENTS_MAX_LINKING_KEY 256 /* bytes */
#define AGENTS_TOKEN_BYTES     32  /* 256 bits of randomness */
/* A join token: "cj1." then its 16-hex id, ".", and 64 hex of secret. */
#define AGENTS_JOIN_PREFIX "cj1."
#define AGENTS_JOIN_LEN    (4 + LEDGER_JOIN_ID_LEN + 1 + 2 * AGENTS_TOKEN_BYTES)

struct agents {
	struct supervise *sup[2]; /* by enum supervise_site: one worker per agent socket */
	struct event *metrics_timer;
	int metrics_pending;
	uint8_t *linking_key; /* secret: wiped when replaced */
	size_t linking_key_len;
	char *bundle_pem; /* its id and staged CA are the context's (cd->bundle_id, staged_ca) */
	size_t bundle_len;
	/* The staged CA whose certificate the canary listener was seen serving ("" none). */
	char canary_ok[PKI_SHA256_HEX];
	unsigned canary_gen; /* answers of superseded checks are ignored */
	/* Links: a token bucket of [agents] link_rate per second, as deep as one second's worth. */
	double link_tokens;
	int64_t link_refill_ms; /* CLOCK_MONOTONIC of the last refill; 0: full */
};

static struct agents agents;

_Static_assert(CAROTATED_SHA256_HEX == PKI_SHA256_HEX, "the context holds pki fingerprints");

static int agents_read_linking_key(const struct config *);
static void agents_load_bundle(struct carotated *);
static void agents_batch(struct supervise *, Carotate__Internal__AgentRequest **, size_t, void *);
static void agents_link(struct carotated *, const Carotate__Internal__AgentRequest *,
    Carotate__Internal__AgentResponse *, char *token, time_t);
static int agents_link_allowed(const struct config *, Carotate__Internal__AgentResponse *);
static int agents_link_bearer(struct ledger *, const Carotate__Internal__AgentRequest *,
    char *join_id, uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t);
static enum ledger_result agents_link_new(struct carotated *,
    const Carotate__Internal__AgentRequest *, Carotate__Internal__AgentResponse *, const uint8_t *,
    const char *, const uint8_t *, time_t);
static void agents_checkins(struct carotated *, Carotate__Internal__AgentRequest **, size_t,
    int canary, Carotate__Internal__AgentResponse *, time_t);
static void agents_hash(const uint8_t *, size_t, uint8_t[LEDGER_TOKEN_HASH_LEN]);
static void agents_answer(Carotate__Internal__AgentResponse *, uint32_t, const char *);
static void agents_announce_canary(const struct config *, int, Carotate__Internal__AgentResponse *);
static void agents_metrics_fire(evutil_socket_t, short, void *);
static void agents_canary_checked(int, const char *, const char *, void *);
struct agents_canary_check;
static void agents_canary_forget(struct agents_canary_check *);
/* Checks in flight: a shutdown frees those whose answer never came. */
static struct agents_canary_check *agents_canary_checks;

/*
 * The linking key file must be readable by us alone: agents that know it can
 * enrol. A missing or unsafe file disables linking (logged), not the daemon.
 */
static int
agents_read_linking_key(const struct config *conf)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0, start = 0, end;
	int fd;

	if (agents.linking_key != NULL)
		xfreezero(agents.linking_key, agents.linking_key_len);
	agents.linking_key = NULL;
	agents.linking_key_len = 0;
	/* Left empty on purpose: only join tokens link (said once at start, in agents_init). */
	if (conf->linking_key == NULL)
		return 0;
	if ((fd = open(conf->linking_key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) == -1 ||
	    fstat(fd, &st) == -1) {
		log_warn("linking key %s: agents cannot link", conf->linking_key);
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
	    (st.st_uid != 0 && st.st_uid != geteuid())) {
		log_warnx("linking key %s must be a regular file of root (or ours) with mode 0600 "
		          "(it is uid %ld, mode %04o): agents cannot link",
		    conf->linking_key, (long)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (fsx_read(AT_FDCWD, conf->linking_key, AGENTS_MAX_LINKING_KEY + 2, &buf, &len) == -1) {
		log_warn("linking key %s: agents cannot link", conf->linking_key);
		return -1;
	}
	/* One line; surrounding white space ignored. */
	end = len;
	while (start < end && isspace(buf[start]))
		start++;
	while (end > start && isspace(buf[end - 1]))
		end--;
	/* A key no agent could send (inner spaces, control bytes) would only fail later. */
	if (!worker_valid_credential(
	        CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK, buf + start, end - start)) {
		log_warnx("linking key %s must be 1 to %d printable characters without spaces: "
		          "agents cannot link",
		    conf->linking_key, AGENTS_MAX_LINKING_KEY);
		xfreezero(buf, len);
		return -1;
	}
	agents.linking_key_len = end - start;
	agents.linking_key = xmalloc(agents.linking_key_len);
	memcpy(agents.linking_key, buf + start, agents.linking_key_len);
	xfreezero(buf, len);
	return 0;
}

/* The bundle agents are served, derived from disk like everything else. */
static void
agents_load_bundle(struct carotated *cd)
{
	const struct config *conf = cd->conf;
	struct bundle b;
	char err[256];
	size_t i;

	free(agents.bundle_pem);
	agents.bundle_pem = NULL;
	agents.bundle_len = 0;
	cd->bundle_id[0] = cd->staged_ca[0] = '\0';
	if (bundle_derive(conf, time(NULL), &b, err, sizeof(err)) == -1) {
		log_warnx("agents: %s", err);
		return;
	}
	if (b.n > 0) {
		snprintf(cd->bundle_id, sizeof(cd->bundle_id), "%s", b.id);
		agents.bundle_pem = xstrdup(b.pem);
		agents.bundle_len = b.pem_len;
	}
	for (i = 0; i < b.n; i++)
		if (b.cas[i].role == BUNDLE_STAGED)
			snprintf(cd->staged_ca, sizeof(cd->staged_ca), "%s", b.cas[i].sha256);
	bundle_clear(&b);
}

int
agents_init(struct carotated *cd, char *err, size_t errlen)
{
	if (cd->ledger == NULL) {
		snprintf(err, errlen, "no ledger");
		return -1;
	}
	agents_read_linking_key(cd->conf);
	if (cd->conf->linking_key == NULL)
		log_info("[agents] linking_key is empty: only join tokens link agents");
	agents_load_bundle(cd);
	if (ledger_set_target(cd->ledger, cd->staged_ca[0] ? cd->staged_ca : NULL,
	        cd->bundle_id[0] ? cd->bundle_id : NULL) == -1) {
		snprintf(err, errlen, "cannot load the ledger's state");
		return -1;
	}
	return 0;
}

void
agents_start(struct carotated *cd)
{
	agents.sup[SUPERVISE_AGENTS] = supervise_start(cd, SUPERVISE_AGENTS, agents_batch, cd);
	agents.sup[SUPERVISE_CANARY] = supervise_start(cd, SUPERVISE_CANARY, agents_batch, cd);
	agents.metrics_timer = evtimer_new(cd->base, agents_metrics_fire, cd);
	if (agents.metrics_timer == NULL)
		fatalx("%s: evtimer_new", __func__);
	agents_metrics_dirty(cd);
	agents_check_canary(cd);
}

void
agents_refresh(struct carotated *cd)
{
	agents_read_linking_key(cd->conf);
	agents_load_bundle(cd);
	if (ledger_set_target(cd->ledger, cd->staged_ca[0] ? cd->staged_ca : NULL,
	        cd->bundle_id[0] ? cd->bundle_id : NULL) == -1)
		log_warnx("agents: cannot reload the ledger's state for the new target");
	agents_metrics_dirty(cd);
}

pid_t
agents_worker_pid(struct carotated *cd, int canary)
{
	struct supervise *sv = agents.sup[canary ? SUPERVISE_CANARY : SUPERVISE_AGENTS];

	return sv != NULL ? supervise_worker_pid(sv) : -1;
}

int
agents_worker_health(struct carotated *cd, int canary, struct supervise_health *h)
{
	struct supervise *sv = agents.sup[canary ? SUPERVISE_CANARY : SUPERVISE_AGENTS];

	if (sv == NULL)
		return -1;
	supervise_health(sv, h);
	return 0;
}

void
agents_stop(struct carotated *cd)
{
	size_t i;

	for (i = 0; i < sizeof(agents.sup) / sizeof(agents.sup[0]); i++) {
		if (agents.sup[i] != NULL)
			supervise_stop(agents.sup[i]);
		agents.sup[i] = NULL;
	}
	if (agents.metrics_timer != NULL)
		event_free(agents.metrics_timer);
	agents.metrics_timer = NULL;
	if (agents.linking_key != NULL)
		xfreezero(agents.linking_key, agents.linking_key_len);
	agents.linking_key = NULL;
	free(agents.bundle_pem);
	agents.bundle_pem = NULL;
	/* Their jobs were killed (job_kill_all): no answer will come. */
	while (agents_canary_checks != NULL)
		agents_canary_forget(agents_canary_checks);
}

static void
agents_hash(const uint8_t *p, size_t len, uint8_t out[LEDGER_TOKEN_HASH_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 || n != LEDGER_TOKEN_HASH_LEN)
		fatalx("%s: SHA-256 failed", __func__);
}

static void
agents_answer(Carotate__Internal__AgentResponse *resp, uint32_t status, const char *error)
{
	resp->http_status = status;
	resp->error = (char *)(error != NULL ? error : "");
}

/*
 * Where agents prove the staged CA ([agents] canary_url, read at each batch so
 * that SIGHUP changes it): on the main socket's 200 and 304 only. An agent
 * already on the canary needs no pointer to it.
 */
static void
agents_announce_canary(
    const struct config *conf, int canary, Carotate__Internal__AgentResponse *resp)
{
	if (canary || conf->agents_canary_url == NULL ||
	    (resp->http_status != 200 && resp->http_status != 304))
		return;
	resp->canary_url = conf->agents_canary_url;
}

/* Milliseconds of CLOCK_MONOTONIC: the bucket must not jump with the wall clock. */
static int64_t
agents_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The link rate, decided here (the worker is not trusted to count): a token
 * bucket refilled at link_rate per second, at most link_rate deep. Every link
 * attempt takes a token, a bad bearer included (no guessing at full speed).
 * 0 with 429 and Retry-After in resp when the bucket is empty.
 */
static int
agents_link_allowed(const struct config *conf, Carotate__Internal__AgentResponse *resp)
{
	double rate = conf->link_rate;
	int64_t now = agents_now_ms();

	if (agents.link_refill_ms == 0 || now < agents.link_refill_ms)
		agents.link_tokens = rate;
	else
		agents.link_tokens += (double)(now - agents.link_refill_ms) * rate / 1000.0;
	if (agents.link_tokens > rate)
		agents.link_tokens = rate;
	agents.link_refill_ms = now;
	if (agents.link_tokens >= 1.0) {
		agents.link_tokens -= 1.0;
		return 1;
	}
	/* Whole seconds until a token is back, at least 1. */
	resp->retry_after = (uint32_t)((1.0 - agents.link_tokens) / rate) + 1;
	agents_answer(resp, 429, "too many links; retry later");
	return 0;
}

/*
 * The bearer of a link: the linking key (constant time), or a join token
 * "cj1.<id>.<secret>" that the ledger accepts now (its hash compared there).
 * 1 linking key, 2 join token (join_id and join_hash filled), 0 neither.
 */
static int
agents_link_bearer(struct ledger *l, const Carotate__Internal__AgentRequest *r, char *join_id,
    uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now)
{
	const char *p = (const char *)r->credential.data;
	size_t len = r->credential.len, i;

	if (agents.linking_key != NULL && len == agents.linking_key_len &&
	    CRYPTO_memcmp(p, agents.linking_key, len) == 0)
		return 1;
	if (len != AGENTS_JOIN_LEN || memcmp(p, AGENTS_JOIN_PREFIX, 4) != 0 ||
	    p[4 + LEDGER_JOIN_ID_LEN] != '.')
		return 0;
	for (i = 4; i < len; i++)
		if (i != 4 + LEDGER_JOIN_ID_LEN &&
		    !((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	memcpy(join_id, p + 4, LEDGER_JOIN_ID_LEN);
	join_id[LEDGER_JOIN_ID_LEN] = '\0';
	agents_hash(r->credential.data, len, join_hash);
	return ledger_join_check(l, join_id, join_hash, now) == LEDGER_OK ? 2 : 0;
}

/* A new agent: refused at max_agents; a join token loses a use with the link. */
static enum ledger_result
agents_link_new(struct carotated *cd, const Carotate__Internal__AgentRequest *r,
    Carotate__Internal__AgentResponse *resp, const uint8_t *hash, const char *join_id,
    const uint8_t *join_hash, time_t now)
{
	const struct config *conf = cd->conf;
	struct ledger_agent a;
	enum ledger_result res;

	if ((res = ledger_get(cd->ledger, r->agent_id, &a)) == LEDGER_OK)
		return LEDGER_EXISTS;
	if (res != LEDGER_UNKNOWN_AGENT)
		return res;
	if (ledger_total(cd->ledger) >= conf->max_agents) {
		log_warnx(
		    "agent %s: link refused: the ledger holds [agents] max_agents (%u) agents",
		    r->agent_id, conf->max_agents);
		agents_answer(resp, 403, "the ledger is full ([agents] max_agents)");
		return LEDGER_OK;
	}
	if (join_id != NULL)
		return ledger_link_join(cd->ledger, r->agent_id, hash, join_id, join_hash, now);
	return ledger_link(cd->ledger, r->agent_id, hash, now);
}

/*
 * A link (carotate-protocol(7) AGENT PROTOCOL): a new agent id gets a token; an existing one only
 * with its current token in X-Agent-Token (renewal: the old token stops working), else 409 and
 * nothing changes. Only the new token's hash is stored. token: 65 bytes, filled here.
 */
static void
agents_link(struct carotated *cd, const Carotate__Internal__AgentRequest *r,
    Carotate__Internal__AgentResponse *resp, char *token, time_t now)
{
	const struct config *conf = cd->conf;
	uint8_t raw[AGENTS_TOKEN_BYTES], hash[LEDGER_TOKEN_HASH_LEN], old[LEDGER_TOKEN_HASH_LEN];
	uint8_t join_hash[LEDGER_TOKEN_HASH_LEN];
	char join_id[LEDGER_JOIN_ID_LEN + 1];
	enum ledger_result res;
	int bearer;
	size_t i;

	if (!agents_link_allowed(conf, resp))
		return;
	if ((bearer = agents_link_bearer(cd->ledger, r, join_id, join_hash, now)) == 0) {
		log_info("agent %s: link refused: bad linking key or join token", r->agent_id);
		agents_answer(resp, 401, "bad linking key or join token");
		return;
	}
	if (agents.bundle_pem == NULL) {
		agents_answer(resp, 503, "no trust bundle to serve yet");
		return;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("%s: no randomness", __func__);
	for (i = 0; i < sizeof(raw); i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	agents_hash((const uint8_t *)token, 2 * AGENTS_TOKEN_BYTES, hash);
	if (r->agent_token[0] != '\0') {
		/* Renewal: the agent's token authenticates it; a join token loses no use. */
		agents_hash((const uint8_t *)r->agent_token, strlen(r->agent_token), old);
		res = ledger_renew(cd->ledger, r->agent_id, old, hash, now);
	} else
		res = agents_link_new(
		    cd, r, resp, hash, bearer == 2 ? join_id : NULL, join_hash, now);
	if (resp->http_status != 0)
		return;
	switch (res) {
	case LEDGER_OK:
		break;
	case LEDGER_EXISTS:
		log_info("agent %s: link refused: the id is taken (renew with X-Agent-Token, or "
		         "carotatectl forget it)",
		    r->agent_id);
		agents_answer(resp, 409, "agent id already linked; send X-Agent-Token to renew");
		return;
	case LEDGER_UNKNOWN_AGENT:
	case LEDGER_BAD_TOKEN:
	case LEDGER_NOT_FOUND:
		agents_answer(resp, 401, "unknown agent, bad token or join token");
		return;
	default:
		agents_answer(resp, 503, "ledger unavailable");
		return;
	}
	resp->token = token;
	resp->etag = cd->bundle_id;
	resp->bundle.data = (uint8_t *)agents.bundle_pem;
	resp->bundle.len = agents.bundle_len;
	agents_answer(resp, 200, NULL);
}

/*
 * A run of check-ins (reqs, n of them) in the ledger as one call, which a pool
 * member decides in one statement; canary: they came from the canary worker's
 * socketpair (agents_batch decides). A canary check-in proves trust in the
 * staged CA only if the canary serves its certificate.
 */
static void
agents_checkins(struct carotated *cd, Carotate__Internal__AgentRequest **reqs, size_t n, int canary,
    Carotate__Internal__AgentResponse *resp, time_t now)
{
	struct ledger_checkin *run = xcalloc(n, sizeof(*run));
	uint8_t(*hash)[LEDGER_TOKEN_HASH_LEN] = xcalloc(n, sizeof(*hash));
	int proves =
	    canary && cd->staged_ca[0] != '\0' && strcmp(agents.canary_ok, cd->staged_ca) == 0;
	size_t i;

	if (agents.bundle_pem == NULL) {
		for (i = 0; i < n; i++)
			agents_answer(&resp[i], 503, "no trust bundle to serve yet");
		goto out;
	}
	for (i = 0; i < n; i++) {
		agents_hash(reqs[i]->credential.data, reqs[i]->credential.len, hash[i]);
		run[i].agent_id = reqs[i]->agent_id;
		run[i].token_hash = hash[i];
		run[i].presented =
		    reqs[i]->if_none_match[0] != '\0' ? reqs[i]->if_none_match : NULL;
		run[i].canary = proves;
	}
	ledger_checkin_run(cd->ledger, run, n, now);
	for (i = 0; i < n; i++) {
		switch (run[i].result) {
		case LEDGER_OK:
			break;
		case LEDGER_UNKNOWN_AGENT:
		case LEDGER_BAD_TOKEN:
			agents_answer(&resp[i], 401, "unknown agent or bad token");
			continue;
		default:
			agents_answer(&resp[i], 503, "ledger unavailable");
			continue;
		}
		resp[i].etag = cd->bundle_id;
		if (run[i].send_bundle) {
			resp[i].bundle.data = (uint8_t *)agents.bundle_pem;
			resp[i].bundle.len = agents.bundle_len;
			agents_answer(&resp[i], 200, NULL);
		} else
			agents_answer(&resp[i], 304, NULL);
	}
out:
	explicit_bzero(hash, n * sizeof(*hash));
	free(hash);
	free(run);
}

/*
 * One batch: every request the worker had sent when we read, in one
 * transaction. Answers go out only after the commit; if it fails, every
 * answer that depended on it becomes 503 and the agents simply retry.
 * Whether the batch came through the canary listener is known from the
 * worker it was read from: each agent socket has its own worker and
 * socketpair, so the main worker, whatever it sends, cannot speak for the
 * canary (carotate-protocol(7) AGENT PROTOCOL).
 */
static void
agents_batch(struct supervise *sup, Carotate__Internal__AgentRequest **reqs, size_t n, void *arg)
{
	struct carotated *cd = arg;
	int canary = supervise_site(sup) == SUPERVISE_CANARY;
	Carotate__Internal__AgentResponse *resp = xcalloc(n, sizeof(*resp));
	char(*tokens)[2 * AGENTS_TOKEN_BYTES + 1] = xcalloc(n, sizeof(*tokens));
	time_t now = time(NULL);
	int began, committed = 0;
	size_t i, j;

	began = ledger_begin(cd->ledger) == 0;
	for (i = 0; i < n; i++) {
		carotate__internal__agent_response__init(&resp[i]);
		resp[i].seq = reqs[i]->seq;
	}
	/* In order: each link alone, each run of check-ins between them as one. */
	for (i = 0; i < n; i = j) {
		j = i + 1;
		if (!began)
			agents_answer(&resp[i], 503, "ledger unavailable");
		else if (reqs[i]->call == CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK)
			agents_link(cd, reqs[i], &resp[i], tokens[i], now);
		else {
			while (j < n && reqs[j]->call != CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK)
				j++;
			agents_checkins(cd, reqs + i, j - i, canary, resp + i, now);
		}
	}
	if (began && ledger_commit(cd->ledger) == 0)
		committed = 1;
	else if (began) {
		ledger_rollback(cd->ledger);
		log_warnx("agents: a batch of %zu requests could not be committed", n);
	}
	for (i = 0; i < n; i++) {
		if (!committed && resp[i].http_status != 401 && resp[i].http_status != 429)
			agents_answer(&resp[i], 503, "ledger unavailable");
		agents_announce_canary(cd->conf, canary, &resp[i]);
		supervise_reply(sup, &resp[i]);
	}
	if (committed)
		agents_metrics_dirty(cd);
	explicit_bzero(tokens, n * sizeof(*tokens));
	free(tokens);
	free(resp);
}

void
agents_metrics_dirty(struct carotated *cd)
{
	struct timeval tv = { 1, 0 };

	if (cd->conf->metrics_textfile == NULL || agents.metrics_timer == NULL ||
	    agents.metrics_pending)
		return;
	agents.metrics_pending = 1;
	evtimer_add(agents.metrics_timer, &tv);
}

static void
agents_metrics_fire(evutil_socket_t fd, short events, void *arg)
{
	struct carotated *cd = arg;

	agents.metrics_pending = 0;
	metrics_write(cd, cd->ledger, cd->bundle_id, cd->staged_ca);
}

int
agents_canary_confirmed(struct carotated *cd)
{
	return cd->staged_ca[0] != '\0' && strcmp(agents.canary_ok, cd->staged_ca) == 0;
}

struct agents_canary_check {
	struct agents_canary_check *next; /* in agents_canary_checks, until answered */
	struct carotated *cd;
	unsigned gen;
	char ca[PKI_SHA256_HEX];
	char leaf[PKI_SHA256_HEX];
};

static void
agents_canary_forget(struct agents_canary_check *c)
{
	struct agents_canary_check **p;

	for (p = &agents_canary_checks; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	free(c);
}

static void
agents_canary_checked(int ok, const char *served, const char *why, void *arg)
{
	struct agents_canary_check *c = arg;
	char addr[300];

	proxy_address_text(&c->cd->conf->canary_address, addr, sizeof(addr));
	if (c->gen != agents.canary_gen) {
		agents_canary_forget(c);
		return;
	}
	if (ok) {
		snprintf(agents.canary_ok, sizeof(agents.canary_ok), "%s", c->ca);
		log_info("canary listener %s serves the staged certificate: canary check-ins now "
		         "count as verified",
		    addr);
	} else
		log_warnx("canary listener %s does not serve the staged certificate (%s%s%s): "
		          "canary check-ins do not count as verified",
		    addr, why, served[0] != '\0' ? "; it serves " : "", served);
	agents_canary_forget(c);
}

void
agents_check_canary(struct carotated *cd)
{
	const struct config *conf = cd->conf;
	struct agents_canary_check *c;
	Carotate__V1__CertSet *set;
	X509 *ca;

	agents.canary_ok[0] = '\0';
	agents.canary_gen++;
	if (cd->staged_ca[0] == '\0')
		return;
	if (conf->canary_address.host == NULL && conf->canary_address.path == NULL) {
		log_warnx("[proxy] canary_address is not set: canary check-ins cannot be confirmed "
		          "and will not count as verified");
		return;
	}
	set = certset_describe(conf, 1, time(NULL), &ca);
	X509_free(ca);
	if (set == NULL || set->server == NULL) {
		if (set != NULL)
			protobuf_c_message_free_unpacked(&set->base, NULL);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->cd = cd;
	c->gen = agents.canary_gen;
	snprintf(c->ca, sizeof(c->ca), "%s", cd->staged_ca);
	snprintf(c->leaf, sizeof(c->leaf), "%s", set->server->sha256);
	protobuf_c_message_free_unpacked(&set->base, NULL);
	c->next = agents_canary_checks;
	agents_canary_checks = c;
	proxy_check(cd, &conf->canary_address, conf->proxy_server_name, c->leaf,
	    conf->check_timeout, agents_canary_checked, c);
}
