/* The control socket: accept, peer credentials, frames, limits, timeouts. */
#ifndef CAROTATE_CONTROL_H
#define CAROTATE_CONTROL_H

#include <stddef.h>

#include "carotate.pb-c.h"

struct carotated;
struct config;
struct control;

/*
 * Creates the listening socket of conf->socket: checks its directory, refuses
 * when a live daemon answers there, replaces a stale socket, sets mode 0660
 * and (privileged) the socket group. Returns the fd or -1 with err filled.
 */
int control_bind(const struct config *, int privileged, char *err, size_t errlen);
/* Starts accepting on fd with cd->base. */
struct control *control_start(struct carotated *, int fd);
/* The configuration changed (SIGHUP): re-resolve groups and limits. */
void control_reconfigure(struct control *);
struct rpc_ctx;
struct control_pending;

/*
 * For a handler that answers later: the connection reads no further request
 * until control_complete. The client may go away meanwhile; the work goes on.
 */
struct control_pending *control_defer(struct rpc_ctx *);
struct audit_call;
/*
 * Takes the deferred call's audit record from pending: the caller closes it
 * (audit_call_end) and control_complete records nothing.
 */
struct audit_call *control_pending_take_audit(struct control_pending *);
/*
 * Closes the call's audit record with reply, then sends reply (and frees it)
 * if the client is still connected; frees pending.
 */
void control_complete(struct control_pending *, Carotate__V1__Response *reply);

/* Closes every connection and the listener, and removes the socket file. */
void control_free(struct control *);

#ifdef CAROTATE_FUZZ
#include "acl.h"
/* Serves fd (one end of a socketpair) as a client of role, as if accepted. */
void control_fuzz_attach(struct control *, int fd, enum acl_role role);
/* Connections open now. */
unsigned control_fuzz_conns(const struct control *);
#endif

#endif
