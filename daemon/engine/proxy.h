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

struct config_address;

/*
 * ok: the listener served the expected leaf (SHA-256 hex of its DER); else
 * served is what it served ("" when nothing) and why says what went wrong.
 */
typedef void (*proxy_check_done)(int ok, const char *served, const char *why, void *arg);

/*
 * Connects over TLS to addr (with SNI server_name when not empty) until the
 * certificate served is expected, or timeout_ms passes. Runs in a child:
 * the event loop never waits on a handshake. The exit status of a reload
 * proves nothing (nginx -s reload exits 0 when nginx rejects the files);
 * this does.
 */
void proxy_check(struct carotated *, const struct config_address *addr, const char *server_name,
    const char *expected, unsigned timeout_ms, proxy_check_done, void *arg);
/*
 * At shutdown, after job_kill_all: forgets the reloads and checks whose jobs
 * were killed, without calling their callbacks (their callers free their own).
 */
void proxy_abandon_all(void);
/* The address as configured: "unix:/path" or "host:port", for messages. */
const char *proxy_address_text(const struct config_address *, char *buf, size_t len);

#endif
