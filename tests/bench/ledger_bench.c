/*
 * ledger_bench: the migration ledger at 10k, 100k and 1M agents, through its API.
 * Prints figures; asserts nothing.
 *
 *   ledger_bench [-s seconds] [DIR]
 *
 * For each size: links every agent in batches of 10,000 while a CA is staged
 * (link rate); then durable check-ins (synchronous=FULL, one COMMIT per batch of
 * 256) in two phases of -s seconds each (default 3):
 *  - "changing": each agent's first check-in, in a scattered order: 90% present
 *    the bundle they were sent at link (acknowledged), 10% none (sent it again);
 *    every one writes its row: the worst case;
 *  - "steady": random agents among those, presenting the current bundle again:
 *    the fleet's normal state once it migrated (no write but last_seen's, every
 *    LEDGER_SEEN_GRANULARITY seconds).
 * Then 200 ledger_count calls (p50/p99) and 50 first pages of ledger_pending
 * (100 agents) and 50 PRAGMA quick_check (carotatectl check's); then the ledger is opened
 * again by a fresh process (this program, re-executed) that reports the open time
 * (integrity_check and index load), a count, and its VmRSS/VmHWM: what a daemon
 * holding that ledger costs. Goals: count p50 <= 10 ms and RSS <= 64 MiB at 1M
 * agents; >= 20,000 check-ins/s.
 *
 * Environment: LEDGER_BENCH_MAX caps the largest size (default 1000000). The
 * ledgers live in DIR, else $TMPDIR, else /var/tmp (not tmpfs: fsync must count).
 *
 *   ledger_bench -p DSN [-n agents] [-R agents] [-c calls] [-s seconds] [DIR]
 *
 * A pool member's ledger on PostgreSQL (DSN: an empty database) against SQLite
 * (in DIR), the same code on both: links -n agents (default 100000) through the
 * API, then the changing and steady check-ins above, one process standing for
 * one member. Goal: >= 10,000 durable check-ins/s on PostgreSQL. Then the pool
 * grows to -R agents (default 1000000) by one INSERT ... SELECT of this program
 * (a bulk path the daemon does not have: linking them through the API would
 * take the time printed), 90% of them acknowledged, and -c calls (default 50)
 * of what `carotatectl report` costs the ledger (ledger_count and a first
 * pending page of 100) are timed: goal p50 <= 50 ms.
 */
#include <sys/statfs.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "ledger.h"
#include "log.h"

#define BENCH_LINK_BATCH    10000
#define BENCH_CHECKIN_BATCH 256
#define BENCH_COUNT_CALLS   200
#define BENCH_PENDING_CALLS 50
#define BENCH_WINDOW        (7 * 86400)
#define BENCH_T0            1700000000
#define BENCH_TMPFS_MAGIC   0x01021994
#define BENCH_POOL_AGENTS   100000
#define BENCH_REPORT_AGENTS 1000000
#define BENCH_REPORT_CALLS  50

#define BUNDLE "1111111111111111111111111111111111111111111111111111111111111111"
#define CA     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

struct bench_row {
	uint64_t agents;
	double link_rate;
	double checkin_rate, steady_rate;
	double checkin_cpu; /* CPU time / wall time of the changing phase */
	uint64_t checkins, steady;
	double count_p50_ms, count_p99_ms;
	double pending_p50_ms;
	double quick_p50_ms; /* ledger_quick_check */
	double open_s;
	long rss_kib, hwm_kib;
	uint64_t acknowledged, active;
	double db_mib;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
bench_id(uint64_t i, char *out, size_t len)
{
	snprintf(out, len, "agent-%07llu.example.net", (unsigned long long)i);
}

static void
bench_token(uint64_t i, uint8_t out[LEDGER_TOKEN_HASH_LEN])
{
	uint64_t s = i * 0x9e3779b97f4a7c15ULL + 1;
	int k;

	for (k = 0; k < LEDGER_TOKEN_HASH_LEN; k++)
		out[k] = (uint8_t)(rng(&s) >> 24);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

/* VmRSS and VmHWM of this process, KiB. */
static void
rss(long *rss_kib, long *hwm_kib)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	*rss_kib = *hwm_kib = -1;
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "VmRSS: %ld kB", rss_kib);
		sscanf(line, "VmHWM: %ld kB", hwm_kib);
	}
	fclose(f);
}

static struct ledger *
bench_open(const char *dir)
{
	char err[1024];
	struct ledger *l = ledger_open(dir, err, sizeof(err));

	if (l == NULL) {
		fprintf(stderr, "ledger_bench: %s\n", err);
		exit(1);
	}
	return l;
}

static int
bench_link(struct ledger *l, uint64_t n, struct bench_row *row)
{
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	char id[LEDGER_MAX_AGENT_ID + 1];
	double t = now_s();
	uint64_t i;

	for (i = 0; i < n; i++) {
		if (i % BENCH_LINK_BATCH == 0 && ledger_begin(l) == -1)
			return -1;
		bench_id(i, id, sizeof(id));
		bench_token(i, h);
		if (ledger_link(l, id, h, BENCH_T0 + (time_t)(i % 3600)) != LEDGER_OK)
			return -1;
		if ((i + 1) % BENCH_LINK_BATCH == 0 || i + 1 == n)
			if (ledger_commit(l) == -1)
				return -1;
	}
	row->link_rate = (double)n / (now_s() - t);
	return 0;
}

/* The k-th agent of a scattered visiting order (the multiplier is prime to 10). */
static uint64_t
bench_nth(uint64_t k, uint64_t n)
{
	return (k * 2654435761ULL) % n;
}

/*
 * Durable check-ins for secs seconds, one COMMIT per 256, made as the daemon
 * makes a batch of them (one ledger_checkin_run): each agent's first
 * (first == 0: changing), or again among the first `first` ones (steady).
 * Returns how many.
 */
static int64_t
bench_checkins(
    struct ledger *l, uint64_t n, double secs, uint64_t first, double *rate, double *cpu_share)
{
	static char ids[BENCH_CHECKIN_BATCH][LEDGER_MAX_AGENT_ID + 1];
	static uint8_t hashes[BENCH_CHECKIN_BATCH][LEDGER_TOKEN_HASH_LEN];
	struct ledger_checkin run[BENCH_CHECKIN_BATCH];
	uint64_t s = 88172645463325252ULL, k = 0, a;
	double t = now_s(), end = t + secs, cpu = cpu_s();
	size_t i, m;

	while (now_s() < end && (first != 0 || k < n)) {
		for (m = 0; m < BENCH_CHECKIN_BATCH && (first != 0 || k < n); m++, k++) {
			a = bench_nth(first != 0 ? rng(&s) % first : k, n);
			bench_id(a, ids[m], sizeof(ids[m]));
			bench_token(a, hashes[m]);
			memset(&run[m], 0, sizeof(run[m]));
			run[m].agent_id = ids[m];
			run[m].token_hash = hashes[m];
			run[m].presented = first == 0 && rng(&s) % 10 == 0 ? NULL : BUNDLE;
		}
		if (ledger_begin(l) == -1)
			return -1;
		ledger_checkin_run(l, run, m, BENCH_T0 + 7200);
		for (i = 0; i < m; i++)
			if (run[i].result != LEDGER_OK)
				return -1;
		if (ledger_commit(l) == -1)
			return -1;
	}
	*rate = (double)k / (now_s() - t);
	if (cpu_share != NULL)
		*cpu_share = (cpu_s() - cpu) / (now_s() - t);
	return (int64_t)k;
}

static int
bench_checkin(struct ledger *l, uint64_t n, double secs, struct bench_row *row)
{
	int64_t k;

	if ((k = bench_checkins(l, n, secs, 0, &row->checkin_rate, &row->checkin_cpu)) <= 0)
		return -1;
	row->checkins = (uint64_t)k;
	if ((k = bench_checkins(l, n, secs, row->checkins, &row->steady_rate, NULL)) <= 0)
		return -1;
	row->steady = (uint64_t)k;
	return 0;
}

static void
bench_pending_cb(const char *id, int64_t last_seen, int delivered, void *arg)
{
	(*(uint64_t *)arg)++;
}

static void
bench_count(struct ledger *l, struct bench_row *row)
{
	double v[BENCH_COUNT_CALLS], t;
	struct ledger_counts c;
	uint64_t listed = 0;
	char problem[256];
	int i;

	for (i = 0; i < BENCH_COUNT_CALLS; i++) {
		t = now_s();
		ledger_count(l, BENCH_T0 + 7200, BENCH_WINDOW, &c);
		v[i] = (now_s() - t) * 1e3;
	}
	row->count_p50_ms = pct(v, BENCH_COUNT_CALLS, 0.5);
	row->count_p99_ms = pct(v, BENCH_COUNT_CALLS, 0.99);
	row->acknowledged = c.acknowledged;
	row->active = c.active;
	for (i = 0; i < BENCH_PENDING_CALLS; i++) {
		t = now_s();
		ledger_pending(l, BENCH_T0 + 7200, BENCH_WINDOW, 0, 100, bench_pending_cb, &listed);
		v[i] = (now_s() - t) * 1e3;
	}
	row->pending_p50_ms = pct(v, BENCH_PENDING_CALLS, 0.5);
	/* What `carotatectl check` costs the daemon when its cached result is stale. */
	for (i = 0; i < BENCH_PENDING_CALLS; i++) {
		t = now_s();
		if (ledger_quick_check(l, problem, sizeof(problem)) != 1)
			fprintf(stderr, "ledger_bench: quick_check: %s\n", problem);
		v[i] = (now_s() - t) * 1e3;
	}
	row->quick_p50_ms = pct(v, BENCH_PENDING_CALLS, 0.5);
}

/* The re-executed child: opens dir like a starting daemon, counts, reports. */
static int
bench_child(const char *dir)
{
	struct ledger_counts c;
	struct ledger *l;
	long r, hwm;
	double t = now_s();

	l = bench_open(dir);
	if (ledger_set_target(l, CA, BUNDLE) == -1)
		return 1;
	t = now_s() - t;
	ledger_count(l, BENCH_T0 + 7200, BENCH_WINDOW, &c);
	rss(&r, &hwm);
	printf("%.3f %ld %ld %llu\n", t, r, hwm, (unsigned long long)c.linked);
	ledger_close(l);
	return 0;
}

static int
bench_reopen(const char *dir, struct bench_row *row)
{
	char cmd[1200], buf[256];
	unsigned long long linked;
	FILE *p;
	int ok;

	snprintf(cmd, sizeof(cmd), "/proc/%ld/exe --child '%s'", (long)getpid(), dir);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	ok = fgets(buf, sizeof(buf), p) != NULL && sscanf(buf, "%lf %ld %ld %llu", &row->open_s,
	                                               &row->rss_kib, &row->hwm_kib, &linked) == 4;
	return pclose(p) == 0 && ok && linked == row->agents ? 0 : -1;
}

static double
file_mib(const char *dir, const char *suffix)
{
	char path[1100];
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s%s", dir, LEDGER_FILE, suffix);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fclose(f);
	return (double)n / (1024 * 1024);
}

static int
bench_size(const char *base, uint64_t n, double secs, struct bench_row *row)
{
	char dir[1024], cmd[1100];
	struct ledger *l;
	int rc = -1;

	memset(row, 0, sizeof(*row));
	row->agents = n;
	snprintf(dir, sizeof(dir), "%s/ledger-bench-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "ledger_bench: mkdtemp %s: %s\n", dir, strerror(errno));
		return -1;
	}
	l = bench_open(dir);
	if (ledger_set_target(l, CA, BUNDLE) == 0 && bench_link(l, n, row) == 0 &&
	    bench_checkin(l, n, secs, row) == 0) {
		bench_count(l, row);
		rc = 0;
	}
	ledger_close(l);
	row->db_mib = file_mib(dir, "") + file_mib(dir, "-wal");
	if (rc == 0 && bench_reopen(dir, row) == -1)
		rc = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "ledger_bench: could not remove %s\n", dir);
	return rc;
}

static void
bench_print(const struct bench_row *r, size_t n)
{
	size_t i;

	printf("\n%9s %8s %19s %18s %8s %8s %8s %6s %6s %6s %6s\n", "", "links/s", "changing ci/s",
	    "steady ci/s", "count", "count", "pending", "open", "RSS", "HWM", "db");
	printf("%9s %8s %19s %18s %8s %8s %8s %6s %6s %6s %6s\n", "agents", "", "(n, cpu)", "(n)",
	    "p50 ms", "p99 ms", "p50 ms", "s", "MiB", "MiB", "MiB");
	for (i = 0; i < n; i++)
		printf("%9llu %8.0f %7.0f (%6llu %3.0f%%) %8.0f (%7llu) %8.3f %8.3f %8.3f %6.2f "
		       "%6.1f %6.1f %6.1f\n",
		    (unsigned long long)r[i].agents, r[i].link_rate, r[i].checkin_rate,
		    (unsigned long long)r[i].checkins, r[i].checkin_cpu * 100, r[i].steady_rate,
		    (unsigned long long)r[i].steady, r[i].count_p50_ms, r[i].count_p99_ms,
		    r[i].pending_p50_ms, r[i].open_s, r[i].rss_kib / 1024.0, r[i].hwm_kib / 1024.0,
		    r[i].db_mib);
	printf("\nPRAGMA quick_check (carotatectl check, cached 300 s), p50:");
	for (i = 0; i < n; i++)
		printf(" %.1f ms at %llu agents%s", r[i].quick_p50_ms,
		    (unsigned long long)r[i].agents, i + 1 < n ? "," : "");
	printf("\n(acknowledged/active after the check-ins:");
	for (i = 0; i < n; i++)
		printf(" %llu/%llu", (unsigned long long)r[i].acknowledged,
		    (unsigned long long)r[i].active);
	printf(")\n");
	if (n == 0)
		return;
	i = n - 1;
	printf("goal: count p50 <= 10 ms at %llu agents: %s (%.3f ms)\n",
	    (unsigned long long)r[i].agents, r[i].count_p50_ms <= 10 ? "met" : "NOT met",
	    r[i].count_p50_ms);
	printf("goal: RSS <= 64 MiB at %llu agents (a fresh process that opened the ledger): %s "
	       "(%.1f MiB, peak %.1f MiB)\n",
	    (unsigned long long)r[i].agents, r[i].rss_kib <= 64 * 1024 ? "met" : "NOT met",
	    r[i].rss_kib / 1024.0, r[i].hwm_kib / 1024.0);
	printf("goal: >= 20,000 durable check-ins/s at %llu agents, every one changing state: %s "
	       "(%.0f/s; steady: %.0f/s)\n",
	    (unsigned long long)r[i].agents, r[i].checkin_rate >= 20000 ? "met" : "NOT met",
	    r[i].checkin_rate, r[i].steady_rate);
}

static struct ledger *
bench_open_pg(const char *dsn)
{
	char err[1024];
	struct ledger *l = ledger_open_pg(dsn, "bench", err, sizeof(err));

	if (l == NULL) {
		fprintf(stderr, "ledger_bench: %s\n", err);
		exit(1);
	}
	return l;
}

/* Links n agents through the API, then the changing and steady check-ins. */
static int
bench_engine(struct ledger *l, uint64_t n, double secs, struct bench_row *row)
{
	memset(row, 0, sizeof(*row));
	row->agents = n;
	if (ledger_set_target(l, CA, BUNDLE) == -1 || bench_link(l, n, row) == -1)
		return -1;
	return bench_checkin(l, n, secs, row);
}

/*
 * Agents from..to-1 straight into the pool's tables, in one statement: linked
 * with the bundle, seen within the last two hours, 9 in 10 acknowledged in the
 * open staging. Their token hashes are not bench_token's: nothing checks them
 * in. Then VACUUM ANALYZE, as autovacuum would do after such a load.
 */
static int
bench_fill(const char *dsn, uint64_t from, uint64_t to)
{
	char q[2048], a[32], b[32];
	const char *params[2] = { a, b };
	PGconn *c = PQconnectdb(dsn);
	PGresult *r;
	int ok;

	snprintf(a, sizeof(a), "%llu", (unsigned long long)from);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)to - 1);
	snprintf(q, sizeof(q),
	    "INSERT INTO agents (agent_id, token_hash, linked_at, first_seen, last_seen, "
	    "linked_by, delivered_bundle, held_bundle, staging, staged_delivered_at, "
	    "acknowledged_at) SELECT format('agent-%%s.example.net', lpad(i::text, 7, '0')), "
	    "sha256(int8send(i)), %d + i %% 3600, %d + i %% 3600, %d + i %% 7200, 'bench', b.id, "
	    "CASE WHEN i %% 10 <> 0 THEN b.id END, s.id, %d, "
	    "CASE WHEN i %% 10 <> 0 THEN %d END "
	    "FROM generate_series($1::bigint, $2::bigint) i, "
	    "(SELECT id FROM bundles WHERE bundle_id = '%s') b, "
	    "(SELECT id FROM stagings WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1) s",
	    BENCH_T0, BENCH_T0, BENCH_T0, BENCH_T0 + 3600, BENCH_T0 + 3600, BUNDLE);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "ledger_bench: fill: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	r = PQexecParams(c, q, 2, NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK &&
	     strtoull(PQcmdTuples(r), NULL, 10) == to - from;
	if (!ok)
		fprintf(stderr, "ledger_bench: fill: %s", PQresultErrorMessage(r));
	PQclear(r);
	if (ok) {
		r = PQexec(c, "VACUUM ANALYZE agents");
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			fprintf(stderr, "ledger_bench: vacuum: %s", PQresultErrorMessage(r));
		PQclear(r);
	}
	PQfinish(c);
	return ok ? 0 : -1;
}

/*
 * The floor under any engine that waits for each statement: the median of 2,000
 * `SELECT 1` round trips on a connection of its own, in microseconds (-1 on failure).
 */
static double
bench_round_trip(const char *dsn)
{
	enum { N = 2000 };
	static double v[N];
	PGconn *c = PQconnectdb(dsn);
	PGresult *r;
	double t;
	int i, ok = PQstatus(c) == CONNECTION_OK;

	for (i = 0; ok && i < N; i++) {
		t = now_s();
		r = PQexec(c, "SELECT 1");
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		v[i] = (now_s() - t) * 1e6;
	}
	PQfinish(c);
	return ok ? pct(v, N, 0.5) : -1;
}

/*
 * What `report` asks of the ledger: the counts and the first pending page, calls times;
 * p50 and p99 of the two together, p50 of each alone (ms).
 */
struct bench_report {
	double p50, p99, count_p50, pending_p50;
	struct ledger_counts c;
};

static int
bench_report(struct ledger *l, int calls, struct bench_report *out)
{
	double *v = calloc((size_t)calls * 3, sizeof(*v)), *vc = v + calls, *vp = vc + calls, t, m;
	uint64_t listed = 0;
	int i, rc = 0;

	if (v == NULL)
		return -1;
	for (i = 0; i < calls && rc == 0; i++) {
		t = now_s();
		if (ledger_count(l, BENCH_T0 + 7200, BENCH_WINDOW, &out->c) == -1)
			rc = -1;
		m = now_s();
		if (rc == 0 && ledger_pending(l, BENCH_T0 + 7200, BENCH_WINDOW, 0, 100,
		                   bench_pending_cb, &listed) == -1)
			rc = -1;
		v[i] = (now_s() - t) * 1e3;
		vc[i] = (m - t) * 1e3;
		vp[i] = v[i] - vc[i];
	}
	if (rc == 0) {
		out->p50 = pct(v, (size_t)calls, 0.5);
		out->p99 = pct(v, (size_t)calls, 0.99);
		out->count_p50 = pct(vc, (size_t)calls, 0.5);
		out->pending_p50 = pct(vp, (size_t)calls, 0.5);
	}
	free(v);
	return rc;
}

static void
bench_pool_row(const char *engine, const struct bench_row *r)
{
	printf("%-11s %8llu %8.0f %7.0f (%6llu %3.0f%%) %8.0f (%7llu)\n", engine,
	    (unsigned long long)r->agents, r->link_rate, r->checkin_rate,
	    (unsigned long long)r->checkins, r->checkin_cpu * 100, r->steady_rate,
	    (unsigned long long)r->steady);
}

/* Check-ins on both engines, the same code; then report at `big` agents on PostgreSQL. */
static int
bench_pool(const char *base, const char *dsn, uint64_t n, uint64_t big, int calls, double secs)
{
	struct bench_row lite, pg;
	struct bench_report rep;
	char dir[1024], cmd[1100];
	struct ledger *l;
	double t, rt;
	int rc;

	snprintf(dir, sizeof(dir), "%s/ledger-bench-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "ledger_bench: mkdtemp %s: %s\n", dir, strerror(errno));
		return -1;
	}
	fprintf(stderr, "ledger_bench: SQLite, %llu agents...\n", (unsigned long long)n);
	l = bench_open(dir);
	rc = bench_engine(l, n, secs, &lite);
	ledger_close(l);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "ledger_bench: could not remove %s\n", dir);
	if (rc == -1)
		return -1;
	fprintf(stderr, "ledger_bench: PostgreSQL, %llu agents...\n", (unsigned long long)n);
	l = bench_open_pg(dsn);
	if (bench_engine(l, n, secs, &pg) == -1) {
		ledger_close(l);
		return -1;
	}
	printf("\n%-11s %8s %8s %19s %18s\n", "one member", "agents", "links/s", "changing ci/s",
	    "steady ci/s");
	printf("%-11s %8s %8s %19s %18s\n", "", "", "", "(n, cpu)", "(n)");
	bench_pool_row("SQLite", &lite);
	bench_pool_row("PostgreSQL", &pg);
	printf("PostgreSQL / SQLite: changing %.2fx, steady %.2fx, links %.2fx\n",
	    pg.checkin_rate / lite.checkin_rate, pg.steady_rate / lite.steady_rate,
	    pg.link_rate / lite.link_rate);
	rt = bench_round_trip(dsn);
	printf("one round trip to the server (SELECT 1, median of 2,000): %.0f us, so at most "
	       "%.0f statements/s one after another\n",
	    rt, rt > 0 ? 1e6 / rt : 0);
	printf("goal: >= 10,000 durable check-ins/s per member on PostgreSQL, batches of %d: "
	       "changing %s (%.0f/s), steady %s (%.0f/s)\n",
	    BENCH_CHECKIN_BATCH, pg.checkin_rate >= 10000 ? "met" : "NOT met", pg.checkin_rate,
	    pg.steady_rate >= 10000 ? "met" : "NOT met", pg.steady_rate);
	if (big > n) {
		fprintf(stderr, "ledger_bench: PostgreSQL, filling to %llu agents...\n",
		    (unsigned long long)big);
		t = now_s();
		if (bench_fill(dsn, n, big) == -1) {
			ledger_close(l);
			return -1;
		}
		printf(
		    "\nfilled to %llu agents in %.1f s (one INSERT ... SELECT and VACUUM ANALYZE, "
		    "bench only); through the API at %.0f links/s it would take %.0f s\n",
		    (unsigned long long)big, now_s() - t, pg.link_rate,
		    (double)(big - n) / pg.link_rate);
	}
	rc = bench_report(l, calls, &rep);
	ledger_close(l);
	if (rc == -1) {
		fprintf(stderr, "ledger_bench: report calls failed\n");
		return -1;
	}
	printf("report (ledger_count + first pending page of 100) at %llu agents on PostgreSQL, "
	       "%d calls: p50 %.1f ms, p99 %.1f ms; p50 of the count alone %.1f ms, of the page "
	       "%.1f ms (linked %llu, active %llu, acknowledged %llu)\n",
	    (unsigned long long)rep.c.linked, calls, rep.p50, rep.p99, rep.count_p50,
	    rep.pending_p50, (unsigned long long)rep.c.linked, (unsigned long long)rep.c.active,
	    (unsigned long long)rep.c.acknowledged);
	printf("goal: report p50 <= 50 ms at %llu agents on PostgreSQL: %s (%.1f ms)\n",
	    (unsigned long long)rep.c.linked, rep.p50 <= 50 ? "met" : "NOT met", rep.p50);
	return 0;
}

int
main(int argc, char **argv)
{
	static const uint64_t sizes[] = { 10000, 100000, 1000000 };
	struct bench_row rows[3];
	const char *base, *max_env = getenv("LEDGER_BENCH_MAX");
	uint64_t max = max_env != NULL ? strtoull(max_env, NULL, 10) : 1000000;
	const char *dsn = NULL;
	uint64_t pool_n = BENCH_POOL_AGENTS, big = BENCH_REPORT_AGENTS;
	int calls = BENCH_REPORT_CALLS;
	double secs = 3;
	struct statfs sf;
	size_t i, n = 0;
	int c;

	log_init(1, 0, "ledger_bench");
	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return bench_child(argv[2]);
	while ((c = getopt(argc, argv, "s:p:n:R:c:")) != -1) {
		switch (c) {
		case 's':
			secs = atof(optarg);
			break;
		case 'p':
			dsn = optarg;
			break;
		case 'n':
			pool_n = strtoull(optarg, NULL, 10);
			break;
		case 'R':
			big = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			calls = atoi(optarg);
			break;
		default:
			secs = 0;
		}
		if (secs <= 0 || pool_n == 0 || calls <= 0) {
			fprintf(stderr, "usage: ledger_bench [-s seconds] [DIR]\n"
			                "       ledger_bench -p DSN [-n agents] [-R agents] "
			                "[-c calls] [-s seconds] [DIR]\n");
			return 1;
		}
	}
	base = optind < argc              ? argv[optind]
	       : getenv("TMPDIR") != NULL ? getenv("TMPDIR")
	                                  : "/var/tmp";
	if (statfs(base, &sf) == 0 && sf.f_type == BENCH_TMPFS_MAGIC)
		printf(
		    "NOTE: %s is tmpfs: fsync is free there, check-in rates are not durable ones\n",
		    base);
	if (dsn != NULL) {
		printf("ledger_bench: SQLite %s and PostgreSQL (libpq %d), %ld cores; check-ins "
		       "for %.0f s per engine and phase, COMMIT (fsync) per %d\n",
		    sqlite3_libversion(), PQlibVersion(), sysconf(_SC_NPROCESSORS_ONLN), secs,
		    BENCH_CHECKIN_BATCH);
		return bench_pool(base, dsn, pool_n, big, calls, secs) == 0 ? 0 : 1;
	}
	printf("ledger_bench: SQLite %s, ledgers in %s, %ld cores; check-ins for %.0f s per size, "
	       "COMMIT (fsync) per %d\n",
	    sqlite3_libversion(), base, sysconf(_SC_NPROCESSORS_ONLN), secs, BENCH_CHECKIN_BATCH);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (sizes[i] > max && n > 0)
			break;
		fprintf(stderr, "ledger_bench: %llu agents...\n",
		    (unsigned long long)(sizes[i] > max ? max : sizes[i]));
		if (bench_size(base, sizes[i] > max ? max : sizes[i], secs, &rows[n]) == -1) {
			fprintf(stderr, "ledger_bench: the run at %llu agents failed\n",
			    (unsigned long long)sizes[i]);
			return 1;
		}
		n++;
		if (sizes[i] >= max)
			break;
	}
	bench_print(rows, n);
	return 0;
}
