/*
 * The parent's side of the agent workers: the two agent sockets, one worker
 * process for each (spawned, watched, restarted with back-off, each on its
 * own), and the frames exchanged with them. Nothing a worker sends can stop
 * the parent: a bad frame kills that worker, which is then restarted.
 */
#ifndef CAROTATE_SUPERVISE_H
#define CAROTATE_SUPERVISE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "internal.pb-c.h"

struct carotated;
struct config;
struct supervise;

/*
 * The agent socket a worker serves. Each has its own worker and socketpair:
 * the site of a request is the site of the supervise it was read from,
 * never something the worker claims.
 */
enum supervise_site {
	SUPERVISE_AGENTS = 0, /* [agents] socket, behind nginx's main listener */
	SUPERVISE_CANARY = 1, /* [agents] canary_socket, behind the canary listener */
};

/*
 * Requests that arrived together (one read of the socketpair), already
 * checked against worker_valid_*: the callee answers each one, now or later,
 * with supervise_reply, echoing seq unchanged (supervise keeps the worker's
 * generation in its top bits, so that an answer for a worker that has since
 * been restarted is dropped). reqs is freed when the callback returns.
 */
typedef void (*supervise_request_fn)(
    struct supervise *, Carotate__Internal__AgentRequest **reqs, size_t n, void *arg);

/*
 * Creates the listening sockets [agents] socket and canary_socket (0660;
 * root:[agents] group when privileged), refusing when another process
 * answers on either. Kept for supervise_start. -1 with err filled on failure.
 */
int supervise_bind(const struct config *, int privileged, char *err, size_t errlen);
/*
 * Starts the worker of one site on its socket of supervise_bind (fatal when
 * it is not bound); fn gets this supervise, whose site says where the
 * requests came in.
 */
struct supervise *supervise_start(
    struct carotated *, enum supervise_site, supervise_request_fn, void *arg);
/* Queues an answer for the worker; dropped when its worker is gone. */
void supervise_reply(struct supervise *, const Carotate__Internal__AgentResponse *);
/*
 * Kills and reaps the worker, removes its socket file (if still ours), frees.
 * NULL: only closes and removes the sockets of supervise_bind.
 */
void supervise_stop(struct supervise *);
/* The running worker's pid, or -1 while it is being restarted. */
pid_t supervise_worker_pid(const struct supervise *);
/* The site this supervise's worker serves, as given to supervise_start. */
enum supervise_site supervise_site(const struct supervise *);
#define SUPERVISE_ERROR_LEN 256

/* What status shows of one worker. last_error points into the supervise: "" when none. */
struct supervise_health {
	int running;
	pid_t pid; /* -1 while down */
	unsigned restarts;
	const char *last_error;
	time_t last_error_at; /* 0: none */
};
void supervise_health(const struct supervise *, struct supervise_health *);
/*
 * The [agents] user exists and is neither uid nor gid 0: what a privileged
 * daemon checks at start-up and before each worker start. -1 with err filled.
 */
int supervise_check_user(const char *user, char *err, size_t errlen);
/* The binary run as the worker (default /proc/self/exe); for tests. */
void supervise_set_exec_path(const char *);

#ifdef CAROTATE_FUZZ
struct evbuffer;
/*
 * The parent's reader of worker frames on the bytes buffered in in, for an
 * agents-site worker of generation gen: every request that passes is handed to fn, as
 * supervise_read does. Returns why the worker would be killed, or NULL.
 */
const char *supervise_fuzz_batch(
    struct evbuffer *in, uint64_t gen, supervise_request_fn fn, void *arg);
#endif

#endif
