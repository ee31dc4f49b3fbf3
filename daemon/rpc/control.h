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
