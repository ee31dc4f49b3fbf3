/* The parent's side of the agent protocol: linking key, tokens, ledger, bundle served. */
#ifndef CAROTATE_AGENTS_H
#define CAROTATE_AGENTS_H

#include <stddef.h>
#include <sys/types.h>

struct carotated;
struct ledger;
struct supervise_health;

/*
 * Opens the ledger (a corrupt one is fatal: no false numbers), reads the
 * linking key, and loads the bundle agents are served. -1 with err filled.
 */
int agents_init(struct carotated *, char *err, size_t errlen);
/* Starts serving: a worker per agent socket is spawned and its requests answered. */
void agents_start(struct carotated *);
/* The pid of the worker serving agent.sock (canary 0) or agent-canary.sock; -1 when down. */
pid_t agents_worker_pid(struct carotated *, int canary);
/* That worker's health (running, restarts, last error); -1 before agents_start. */
int agents_worker_health(struct carotated *, int canary, struct supervise_health *);
/*
 * The SSL directory changed (staging, discard, rotation, SIGHUP): reload the
 * served bundle, the tracked CA and the linking key.
 */
void agents_refresh(struct carotated *);
/* The metrics textfile is out of date; it is rewritten soon (at most once a second). */
void agents_metrics_dirty(struct carotated *);
void agents_stop(struct carotated *);
/*
 * Checks over TLS that the canary listener serves the staged server
 * certificate (after a reload); until it does, canary check-ins do not count
 * as verified.
 */
void agents_check_canary(struct carotated *);
int agents_canary_confirmed(struct carotated *);

#endif
