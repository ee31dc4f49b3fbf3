/*
 * Metrics for node_exporter's textfile collector: agents by state, the
 * migration ratio, the bundle served, certificate expiry times. The file is
 * replaced atomically, so the collector never reads half of it.
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

void
metrics_write(struct carotated *cd, struct ledger *l, const char *bundle_id, const char *staged_ca)
{
	const struct config *conf = cd->conf;
	struct ledger_counts c;
	time_t now = time(NULL);
	char *text = NULL, *copy, *dir, *base;
	size_t len = 0;
	FILE *f;
	int dfd;

	if (conf->metrics_textfile == NULL || l == NULL)
		return;
	ledger_count(l, now, conf->active_within, &c);
	if ((f = open_memstream(&text, &len)) == NULL)
		fatal("%s: open_memstream", __func__);
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
	fprintf(f,
	    "# HELP carotate_bundle_info The trust bundle served to agents.\n"
	    "# TYPE carotate_bundle_info gauge\ncarotate_bundle_info{id=\"%s\",staged_ca=\"%s\"} "
	    "1\n",
	    bundle_id, staged_ca);
	metrics_certs(f, conf, now);
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
