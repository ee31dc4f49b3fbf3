/*
 * The parent's side of the agent worker: the two agent sockets, the worker
 * process (spawned, watched, restarted with back-off), and the frames
 * exchanged with it. Nothing the worker sends can stop the parent: a bad
 * frame kills the worker, which is then restarted.
 */
#ifndef CAROTATE_SUPERVISE_H
#define CAROTATE_SUPERVISE_H

#include <stddef.h>
#include <sys/types.h>

#include "internal.pb-c.h"

struct carotated;
struct config;
struct supervise;

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
/* Starts the worker on the sockets of supervise_bind (fatal when there are none). */
struct supervise *supervise_start(struct carotated *, supervise_request_fn, void *arg);
/* Queues an answer for the worker; dropped when its worker is gone. */
void supervise_reply(struct supervise *, const Carotate__Internal__AgentResponse *);
/*
 * Kills and reaps the worker, removes the socket files (if still ours), frees.
 * NULL: only closes and removes the sockets of supervise_bind.
 */
void supervise_stop(struct supervise *);
/* The running worker's pid, or -1 while it is being restarted. */
pid_t supervise_worker_pid(const struct supervise *);
/* The binary run as the worker (default /proc/self/exe); for tests. */
void supervise_set_exec_path(const char *);

#ifdef CAROTATE_FUZZ
struct evbuffer;
/*
 * The parent's reader of worker frames on the bytes buffered in in, for a
 * worker of generation gen: every request that passes is handed to fn, as
 * supervise_read does. Returns why the worker would be killed, or NULL.
 */
const char *supervise_fuzz_batch(
    struct evbuffer *in, uint64_t gen, supervise_request_fn fn, void *arg);
#endif

#endif
