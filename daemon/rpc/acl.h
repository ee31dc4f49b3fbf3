/* Peer credentials -> role. */
#ifndef CAROTATE_ACL_H
#define CAROTATE_ACL_H

#include <stddef.h>
#include <sys/types.h>

enum acl_role {
	ACL_NONE = 0,   /* may not talk to the daemon */
	ACL_READER = 1, /* status, report, backups, audit */
	ACL_ADMIN = 2,  /* everything */
};

struct acl {
	uid_t self; /* the daemon's euid: its own user may do what the daemon does */
	gid_t admin_gid;
	gid_t reader_gid;
	int have_admin; /* admin_gid names an existing group */
	int have_reader;
};

/* Peer credentials as the kernel reported them at connect() time. */
struct acl_peer {
	pid_t pid; /* for the log only */
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups */
	size_t ngroups;
};

/* Resolves the group names; a missing group is logged and grants nothing. */
void acl_init(struct acl *, uid_t self, const char *admin_group, const char *reader_group);
enum acl_role acl_role(const struct acl *, const struct acl_peer *);
const char *acl_role_name(enum acl_role);
/* Reads SO_PEERCRED and SO_PEERGROUPS of a connected unix socket; -1 on error. */
int acl_peer_read(int fd, struct acl_peer *);
void acl_peer_clear(struct acl_peer *);

#endif
