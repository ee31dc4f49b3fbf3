/* State shared by the parts of the daemon's parent process. */
#ifndef CAROTATE_CAROTATED_H
#define CAROTATE_CAROTATED_H

#include <sys/types.h>

#include <stdint.h>
#include <time.h>

struct event_base;
struct config;
struct control;
struct ledger;
struct watch;
struct audit_call;
struct control_pending;
struct rpc_ctx;
struct Carotate__V1__Response;

/*
 * How a handler answers later: the control connection layer's (control_start sets it).
 * Handlers reach it through op.h, never by including control.h.
 */
struct carotated_defer {
	struct control_pending *(*defer)(struct rpc_ctx *);
	struct audit_call *(*take_audit)(struct control_pending *);
	void (*complete)(struct control_pending *, struct Carotate__V1__Response *);
};

#define CAROTATED_SHA256_HEX 65 /* 64 hex digits and a NUL, as PKI_SHA256_HEX */

/*
 * How the proxy's last reload and last TLS check went (engine/proxy.c records every one,
 * whoever asked): a pool member's state in the pool's database (engine/member.c).
 */
struct carotated_proxy_last {
	int64_t reload_at; /* seconds since the epoch; 0: none since start */
	int reload_ok;
	int64_t check_at; /* seconds since the epoch; 0: none since start */
	int check_ok;
	char error[256]; /* the last failure of either, one printable line; "" none */
};
struct member;
struct pool;

struct carotated {
	struct config *conf;
	const char *conf_path;
	struct event_base *base;
	struct control *control;
	const struct carotated_defer *defer;
	struct ledger *ledger; /* the agent ledger and the audit log: opened by main, one owner */
	/* The files status and the phase are read from (watch.h); NULL: no inotify. */
	struct watch *watch;
	/* The trust bundle served to agents (agents_refresh derives it): "" when none. */
	char bundle_id[CAROTATED_SHA256_HEX];
	char staged_ca[CAROTATED_SHA256_HEX]; /* the staged CA in it, or "" */
	struct timespec started;              /* CLOCK_MONOTONIC */
	int foreground;
	int privileged;        /* started as root: user, group and capability changes apply */
	const char *busy;      /* the state-changing call in progress, or NULL */
	int stopping;          /* SIGTERM came while busy: stop once the call has answered */
	int resuming;          /* a rotate or restore cut short by a stop is being finished */
	struct event *stop_ev; /* the bound on that wait */
	struct carotated_proxy_last proxy_last;
	struct member *member; /* a pool member's heartbeat (engine/member.h); NULL otherwise */
	struct pool *pool;     /* a pool member's shared sets (engine/pool.h); NULL otherwise */
};

#endif
