/*
 * Metrics for node_exporter's textfile collector: agents by state, the
 * migration ratio, the bundle served, certificate expiry times, the last
 * renewal's result. The file is replaced atomically, so the collector never
 * reads half of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carotated.h"
#include "certset.h"
#include "config.h"
#include "fsx.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

static void metrics_certs(FILE *, const struct config *, time_t);
static void metrics_renew(FILE *, struct ledger *);
static void metrics_agents(FILE *, const struct config *, struct ledger *, time_t, const char *);

/*
 * The last renew that swapped sets. A renew that was skipped, refused, a dry
 * run, or failed before its swap changed nothing and is not counted: the same
 * renewals the audit log gives an outcome (verified=, rolled_back=), so the
 * first write after a start reads the value back from there.
 */
static struct {
	int known;  /* a renewal was seen, or the audit log was read for one */
	int exists; /* there is a last renewal */
	time_t when;
	int ok;
} metrics_last_renew;

void
metrics_renewed(time_t when, int ok)
{
	metrics_last_renew.known = 1;
	metrics_last_renew.exists = 1;
	metrics_last_renew.when = when;
	metrics_last_renew.ok = ok != 0;
}

/*
 * After a start, the newest renew record with an outcome: one read from the
 * newest record down (it stops at the first match), once per process.
 */
static void
metrics_renew_load(struct ledger *l)
{
	static const char *const calls[] = { "renew" };
	struct ledger_audit a;
	int found, verified, rolled_back;

	found = ledger_audit_last(l, 0, calls, 1, LEDGER_AUDIT_OUTCOME_MARK, &a);
	if (found == -1) {
		log_warnx("metrics: cannot read the last renewal from the audit log");
		return; /* tried again at the next write */
	}
	metrics_last_renew.known = 1;
	if (found == 1 && ledger_audit_outcome(a.detail, &verified, &rolled_back) == 0) {
		metrics_last_renew.exists = 1;
		metrics_last_renew.when = (time_t)a.time;
		metrics_last_renew.ok = verified;
	}
}

static void
metrics_renew(FILE *f, struct ledger *l)
{
	if (!metrics_last_renew.known)
		metrics_renew_load(l);
	fprintf(f, "# HELP carotate_last_renew_timestamp_seconds When the last renewal that "
	           "swapped sets ended.\n"
	           "# TYPE carotate_last_renew_timestamp_seconds gauge\n");
	if (metrics_last_renew.exists)
		fprintf(f, "carotate_last_renew_timestamp_seconds %lld\n",
		    (long long)metrics_last_renew.when);
	fprintf(f, "# HELP carotate_last_renew_success Whether the proxy serves the last "
	           "renewal's leaf (1), or it was rolled back or failed (0).\n"
	           "# TYPE carotate_last_renew_success gauge\n");
	if (metrics_last_renew.exists)
		fprintf(f, "carotate_last_renew_success %d\n", metrics_last_renew.ok);
}

static void
metrics_set(FILE *f, const char *set, const Carotate__V1__CertSet *s)
{
	if (s == NULL)
		return;
	if (s->ca != NULL)
		fprintf(f, "carotate_certificate_not_after_seconds{set=\"%s\",cert=\"ca\"} %lld\n",
		    set, (long long)s->ca->not_after);
	if (s->server != NULL)
		fprintf(f,
		    "carotate_certificate_not_after_seconds{set=\"%s\",cert=\"server\"} %lld\n",
		    set, (long long)s->server->not_after);
}

static void
metrics_certs(FILE *f, const struct config *conf, time_t now)
{
	Carotate__V1__CertSet *active, *staged;
	X509 *ca;

	active = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	staged = certset_describe(conf, 1, now, &ca);
	X509_free(ca);
	fprintf(f, "# HELP carotate_certificate_not_after_seconds When a certificate expires.\n"
	           "# TYPE carotate_certificate_not_after_seconds gauge\n");
	metrics_set(f, "active", active);
	metrics_set(f, "staged", staged);
	fprintf(f,
	    "# HELP carotate_staged Whether a new set is staged.\n"
	    "# TYPE carotate_staged gauge\ncarotate_staged %d\n",
	    staged != NULL);
	if (active != NULL)
		protobuf_c_message_free_unpacked(&active->base, NULL);
	if (staged != NULL)
		protobuf_c_message_free_unpacked(&staged->base, NULL);
}

/*
 * The agents by state and the migration ratio; left out when the ledger cannot count (a pool
 * member cut off from its database), since zeros would read as a fleet that vanished, and
 * carotate_ledger_counted says which.
 */
static void
metrics_agents(
    FILE *f, const struct config *conf, struct ledger *l, time_t now, const char *staged_ca)
{
	struct ledger_counts c;
	int counted = ledger_count(l, now, conf->active_within, &c) == 0;

	fprintf(f,
	    "# HELP carotate_ledger_counted Whether the ledger could count the agents (0: the "
	    "agent gauges are left out).\n# TYPE carotate_ledger_counted gauge\n"
	    "carotate_ledger_counted %d\n",
	    counted);
	if (!counted)
		return;
	fprintf(f,
	    "# HELP carotate_agents Agents in the ledger by state (active window %llus).\n"
	    "# TYPE carotate_agents gauge\n",
	    (unsigned long long)conf->active_within);
	fprintf(f, "carotate_agents{state=\"linked\"} %llu\n", (unsigned long long)c.linked);
	fprintf(f, "carotate_agents{state=\"active\"} %llu\n", (unsigned long long)c.active);
	fprintf(f, "carotate_agents{state=\"acknowledged\"} %llu\n",
	    (unsigned long long)c.acknowledged);
	fprintf(f, "carotate_agents{state=\"verified\"} %llu\n", (unsigned long long)c.verified);
	fprintf(f, "carotate_agents{state=\"pending\"} %llu\n", (unsigned long long)c.pending);
	fprintf(f, "carotate_agents{state=\"inactive_lacking\"} %llu\n",
	    (unsigned long long)c.inactive_lacking);
	fprintf(f, "carotate_agents{state=\"excluded\"} %llu\n", (unsigned long long)c.excluded);
	fprintf(f,
	    "# HELP carotate_migration_ratio Active agents that acknowledged the staged CA "
	    "(0 to 1; 0 when nothing is staged).\n# TYPE carotate_migration_ratio gauge\n"
	    "carotate_migration_ratio %.6f\n",
	    staged_ca[0] != '\0' && c.active > 0 ? (double)c.acknowledged / (double)c.active : 0.0);
}

void
metrics_write(struct carotated *cd, struct ledger *l, const char *bundle_id, const char *staged_ca)
{
	const struct config *conf = cd->conf;
	time_t now = time(NULL);
	char *text = NULL, *copy, *dir, *base;
	size_t len = 0;
	FILE *f;
	int dfd;

	if (conf->metrics_textfile == NULL || l == NULL)
		return;
	if ((f = open_memstream(&text, &len)) == NULL)
		fatal("%s: open_memstream", __func__);
	metrics_agents(f, conf, l, now, staged_ca);
	fprintf(f,
	    "# HELP carotate_bundle_info The trust bundle served to agents.\n"
	    "# TYPE carotate_bundle_info gauge\ncarotate_bundle_info{id=\"%s\",staged_ca=\"%s\"} "
	    "1\n",
	    bundle_id, staged_ca);
	metrics_certs(f, conf, now);
	metrics_renew(f, l);
	fclose(f);

	copy = xstrdup(conf->metrics_textfile);
	dir = dirname(copy);
	base = xstrdup(conf->metrics_textfile + strlen(conf->metrics_textfile) -
	               strlen(strrchr(conf->metrics_textfile, '/') + 1));
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsx_replace(dfd, base, text, len, 0644) == -1)
		log_warn("metrics: cannot write %s", conf->metrics_textfile);
	if (dfd != -1)
		close(dfd);
	free(base);
	free(copy);
	free(text);
}
