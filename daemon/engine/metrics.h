/* The optional Prometheus textfile (node_exporter's textfile collector). */
#ifndef CAROTATE_METRICS_H
#define CAROTATE_METRICS_H

#include <time.h>

struct carotated;
struct ledger;

/* Rewrites [metrics] textfile atomically; does nothing when it is not configured. */
void metrics_write(
    struct carotated *, struct ledger *, const char *bundle_id, const char *staged_ca);

/*
 * A renew that swapped sets ended (at time when): ok when the proxy serves the
 * new leaf, 0 when it was rolled back or left failed. Kept in memory for the
 * textfile; the next metrics_write shows it.
 */
void metrics_renewed(time_t when, int ok);

#endif
