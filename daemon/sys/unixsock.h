/* Listening Unix sockets, created safely: the control socket and the agents' sockets. */
#ifndef CAROTATE_UNIXSOCK_H
#define CAROTATE_UNIXSOCK_H

#include <sys/types.h>

#include <stddef.h>

#define UNIXSOCK_NO_GROUP ((gid_t)-1)

/*
 * Listens on path: its directory must be ours and writable by nobody else
 * (created 0755 when missing); a live socket there is refused, a stale one
 * replaced; the socket is born 0660 and, when gid is not UNIXSOCK_NO_GROUP,
 * handed to that group. Returns the fd (non-blocking, close-on-exec) and the
 * file's identity in *dev and *ino, or -1 with err filled.
 */
int unixsock_listen(
    const char *path, gid_t gid, int backlog, dev_t *dev, ino_t *ino, char *err, size_t errlen);
/*
 * Grants group gid read and write on the socket at path through a POSIX ACL
 * entry (and mask), then reads the ACL back to check it. -1 with err filled,
 * naming the fix, when the file system has no ACLs or the entry did not hold.
 */
int unixsock_grant_group(const char *path, gid_t gid, char *err, size_t errlen);
/* Removes path only if it is still the socket unixsock_listen made. */
void unixsock_unlink(const char *path, dev_t dev, ino_t ino);

#endif
