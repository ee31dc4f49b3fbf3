/* The optional Prometheus textfile (node_exporter's textfile collector). */
#ifndef CAROTATE_METRICS_H
#define CAROTATE_METRICS_H

struct carotated;
struct ledger;

/* Rewrites [metrics] textfile atomically; does nothing when it is not configured. */
void metrics_write(
    struct carotated *, struct ledger *, const char *bundle_id, const char *staged_ca);

#endif
