/*
 * Authorization: the role of a control connection is decided once, at accept,
 * from the credentials the kernel recorded at connect() time.
 */
#include <sys/socket.h>

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "log.h"
#include "xmalloc.h"

/* More supplementary groups than Linux allows (NGROUPS_MAX is 65536). */
#define ACL_MAX_GROUPS 65536

static int acl_lookup_group(const char *, gid_t *);
static int acl_in_group(const struct acl_peer *, gid_t);

/* 0 and *gid set when the group exists; -1 (logged) otherwise. */
static int
acl_lookup_group(const char *name, gid_t *gid)
{
	struct group *gr;

	errno = 0;
	if ((gr = getgrnam(name)) == NULL) {
		if (errno != 0)
			log_warn("group %s", name);
		else
			log_warnx("group %s does not exist: it grants no access", name);
		return -1;
	}
	*gid = gr->gr_gid;
	return 0;
}

void
acl_init(struct acl *acl, uid_t self, const char *admin_group, const char *reader_group)
{
	memset(acl, 0, sizeof(*acl));
	acl->self = self;
	acl->have_admin = acl_lookup_group(admin_group, &acl->admin_gid) == 0;
	acl->have_reader = acl_lookup_group(reader_group, &acl->reader_gid) == 0;
}

static int
acl_in_group(const struct acl_peer *peer, gid_t gid)
{
	size_t i;

	if (peer->gid == gid)
		return 1;
	for (i = 0; i < peer->ngroups; i++)
		if (peer->groups[i] == gid)
			return 1;
	return 0;
}

/* root, the daemon's own user and the admin group administer; the socket group reads. */
enum acl_role
acl_role(const struct acl *acl, const struct acl_peer *peer)
{
	if (peer->uid == 0 || peer->uid == acl->self)
		return ACL_ADMIN;
	if (acl->have_admin && acl_in_group(peer, acl->admin_gid))
		return ACL_ADMIN;
	if (acl->have_reader && acl_in_group(peer, acl->reader_gid))
		return ACL_READER;
	return ACL_NONE;
}

const char *
acl_role_name(enum acl_role role)
{
	switch (role) {
	case ACL_ADMIN:
		return "admin";
	case ACL_READER:
		return "reader";
	case ACL_NONE:
		break;
	}
	return "none";
}

int
acl_peer_read(int fd, struct acl_peer *peer)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t *groups = NULL;

	memset(peer, 0, sizeof(*peer));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return -1;
	peer->pid = cred.pid;
	peer->uid = cred.uid;
	peer->gid = cred.gid;

	/* The kernel answers ERANGE with the size it needs. */
	len = 16 * sizeof(gid_t);
	for (;;) {
		groups = xreallocarray(groups, len / sizeof(gid_t) + 1, sizeof(gid_t));
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
			break;
		if (errno != ERANGE || len / sizeof(gid_t) > ACL_MAX_GROUPS) {
			free(groups);
			return -1;
		}
	}
	peer->groups = groups;
	peer->ngroups = len / sizeof(gid_t);
	return 0;
}

void
acl_peer_clear(struct acl_peer *peer)
{
	free(peer->groups);
	memset(peer, 0, sizeof(*peer));
}
