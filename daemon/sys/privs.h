/*
 * Every privilege change of the daemon and of its children, one function by
 * purpose: the parent's once it has started, the agent worker's, the
 * certificate jobs', the other function jobs' and the programs' (the reload
 * command) before exec. User and groups, the capability sets, the bounding
 * and ambient sets, no_new_privs: nowhere else.
 */
#ifndef CAROTATE_PRIVS_H
#define CAROTATE_PRIVS_H

#include <stddef.h>

struct sandbox_ids;

/*
 * The parent: sets no_new_privs, empties the bounding and ambient sets but
 * for the kept capabilities (privs.c says which and why), makes them the only
 * permitted and effective ones, reads the result back and compares. Run as
 * root, before any thread exists; 0, or -1 with err filled in.
 */
int privs_drop_parent(char *err, size_t errlen);
/* The sets after privs_drop_parent, for messages (cap_to_text(3)). */
const char *privs_kept(void);

/*
 * In the parent, before it forks a child that calls one of the functions
 * below: allocates, once, the sets they set and read back, so that they
 * make system calls only between fork and exec (no malloc). Out of memory is
 * fatal, as for xmalloc.
 */
void privs_prepare(void);

/*
 * The functions below run in a child, after fork. Each returns NULL, or the
 * name of the step that failed ("user change", "capabilities"...) with errno
 * set; the child then ends. The bounding set is emptied where we hold
 * CAP_SETPCAP, and left as it is otherwise: no_new_privs covers it.
 */

/*
 * The agent worker, before it re-executes itself: the bounding set, ids'
 * user (when ids->drop: no supplementary group, then gid, then uid, read
 * back, no way back to root), no capability in any set, no_new_privs.
 */
const char *privs_drop_worker(const struct sandbox_ids *ids);
/*
 * A certificate job, which parses hostile input: as privs_drop_worker, and
 * not dumpable (no core, no ptrace by the agents' user, whose worker it
 * would otherwise share).
 */
const char *privs_drop_job(const struct sandbox_ids *ids);
/*
 * Any other function child (the TLS check): no capability in its
 * permitted, effective, inheritable or ambient set; our user, groups,
 * bounding set and no_new_privs.
 */
const char *privs_drop_function(void);
/*
 * A program (the reload command), just before exec: the bounding set, no
 * capability in any set; our user and groups, which `systemctl reload`
 * (root on systemd's private socket) and `nginx -s reload` (a signal to
 * root's master) need, and our no_new_privs.
 */
const char *privs_drop_exec(void);

#endif
