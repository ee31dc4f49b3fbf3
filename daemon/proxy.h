/* The proxy: its reload command (and, later, the TLS check of what it serves). */
#ifndef CAROTATE_PROXY_H
#define CAROTATE_PROXY_H

#include "carotate.pb-c.h"

struct carotated;

/* Gets the outcome (heap; the callee owns it). May run before proxy_reload returns. */
typedef void (*proxy_reload_done)(Carotate__V1__ReloadResult *, void *arg);

/*
 * Runs the configured reload command (argv, no shell) off the event loop,
 * killing it after [proxy] reload_timeout; logs its exit status and output.
 */
void proxy_reload(struct carotated *, proxy_reload_done, void *arg);

#endif
