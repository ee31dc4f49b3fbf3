/*
 * The agent worker (carotated(8) AGENT WORKER): an unprivileged process, re-executed
 * from the daemon's own binary as `carotated --worker SITE`, that serves the
 * agents' HTTP endpoints on one agent socket (there is one worker per
 * socket) and forwards the requests that pass its checks to
 * the parent over a socketpair. It never sees the ledger or the SSL
 * directory. The shapes of agent ids, credentials and bundle ids are
 * defined here, and the parent checks them again (the worker parses
 * untrusted input: the parent trusts nothing it says).
 */
#ifndef CAROTATE_WORKER_H
#define CAROTATE_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "internal.pb-c.h"

/* Descriptors the worker is started with: 3, and 4 or 5 (never both). */
#define WORKER_FD_PARENT 3 /* AF_UNIX stream socketpair to the parent */
#define WORKER_FD_AGENTS 4 /* listening: agent.sock, `--worker agents` only */
#define WORKER_FD_CANARY 5 /* listening: agent-canary.sock, `--worker canary` only */
/* Our own binary, open only for the exec (see supervise.c); the worker closes it first. */
#define WORKER_FD_EXE 6

#define WORKER_MAX_LINKING_KEY 256 /* 1-256 of printable ASCII, no space */
#define WORKER_TOKEN_LEN       64  /* lower-case hex: 256 bits */
#define WORKER_BUNDLE_ID_LEN   64  /* lower-case hex: SHA-256 */

/* Frame bodies on the socketpair (after the 4-byte length). */
#define WORKER_MAX_REQUEST_FRAME  (16u * 1024)              /* AgentRequest */
#define WORKER_MAX_RESPONSE_FRAME (1024u * 1024)            /* AgentResponse (holds the bundle) */
#define WORKER_MAX_SEQ            ((UINT64_C(1) << 48) - 1) /* the parent keeps the top bits */

/*
 * `carotated --worker agents|canary [-d] [-f]`: serves the one socket named,
 * and refuses to start when the other one's descriptor is open too. Returns
 * only on a usage error or at a clean exit.
 */
int worker_main(int argc, char **argv);

/* 1 when s is exactly 64 lower-case hex digits (a token or a bundle id). */
int worker_valid_hex64(const char *s, size_t len);
/* 1 when a bearer value has the shape its call takes (linking key or token). */
int worker_valid_credential(Carotate__Internal__AgentCall, const uint8_t *, size_t);

#ifdef CAROTATE_FUZZ
struct event_base;
/*
 * The worker's event loop without its process checks: parent is its end of
 * the socketpair, listener the agent socket it serves (non-blocking).
 */
struct event_base *worker_fuzz_start(int parent, int listener);
/* Requests waiting on the parent; connections open. */
unsigned worker_fuzz_pending(void);
unsigned worker_fuzz_conns(void);
#endif

#endif
