/*
 * A pool member's heartbeat: its state (the sets it serves, its last reload and TLS check)
 * written to the pool's database at start, every [ledger] heartbeat, and after every call
 * that changes state, so that every member's status shows every other and a rotate can
 * tell a member that stopped answering. A single proxy has none.
 */
#ifndef CAROTATE_MEMBER_H
#define CAROTATE_MEMBER_H

struct carotated;

/* Starts the heartbeat of a pool member (the first beat now); nothing for a single proxy. */
void member_start(struct carotated *);
/* Writes this member's state now (a failure is logged once per outage, never fatal). */
void member_beat(struct carotated *);
void member_stop(struct carotated *);

#endif
