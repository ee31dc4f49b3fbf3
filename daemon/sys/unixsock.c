/*
 * The one way this daemon creates a listening socket. The directory is the
 * first gate (ours, writable by nobody else), the socket exists with mode
 * 0660 from its first instant, and only our own file is ever removed.
 */
#include <sys/acl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <acl/libacl.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "unixsock.h"
#include "xmalloc.h"

static int unixsock_check_dir(const char *, char *, size_t);
static int unixsock_probe(const char *, char *, size_t);
static int unixsock_acl_add(acl_t *, gid_t);
static int unixsock_acl_has(const char *, gid_t);

static int
unixsock_check_dir(const char *path, char *err, size_t errlen)
{
	char *copy = xstrdup(path);
	const char *dir = dirname(copy);
	struct stat st;
	int r = -1;

	if (lstat(dir, &st) == -1 && errno == ENOENT && mkdir(dir, 0755) == -1 && errno != EEXIST)
		snprintf(
		    err, errlen, "cannot create socket directory %s: %s", dir, strerror(errno));
	else if (lstat(dir, &st) == -1)
		snprintf(err, errlen, "socket directory %s: %s", dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		snprintf(err, errlen, "socket directory %s is not a directory", dir);
	else if (st.st_uid != geteuid() || (st.st_mode & 022) != 0)
		snprintf(err, errlen,
		    "socket directory %s must be owned by uid %ld and writable by nobody else "
		    "(it is owned by uid %ld, mode %04o)",
		    dir, (long)geteuid(), (long)st.st_uid, (unsigned)(st.st_mode & 07777));
	else
		r = 0;
	free(copy);
	return r;
}

#define UNIXSOCK_PROBE_TRIES    5
#define UNIXSOCK_PROBE_PAUSE_NS 50000000L /* 5 x 50 ms */

/* 0 when path is free (absent, or a stale socket now removed); -1 otherwise. */
static int
unixsock_probe(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timespec pause = { 0, UNIXSOCK_PROBE_PAUSE_NS };
	struct stat st;
	int fd, r = 0, tries;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; not touching it", path);
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	/*
	 * The agent worker of a daemon that was just killed dies by its parent
	 * death signal a moment later: give a listener that long to go away.
	 */
	for (tries = 0; tries < UNIXSOCK_PROBE_TRIES; tries++) {
		/* Non-blocking: a listener whose backlog is full answers EAGAIN, never a hang. */
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -1;
		}
		r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
		if (r == -1 && errno == EAGAIN)
			r = 0; /* someone listens */
		close(fd);
		if (r == -1)
			break;
		nanosleep(&pause, NULL);
	}
	if (r == 0) {
		snprintf(err, errlen,
		    "another carotated is already running (something listens on %s)", path);
		return -1;
	}
	if (errno != ECONNREFUSED) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	log_info("removing stale socket %s", path);
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
unixsock_listen(
    const char *path, gid_t gid, int backlog, dev_t *dev, ino_t *ino, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long", path);
		return -1;
	}
	if (unixsock_check_dir(path, err, errlen) == -1 || unixsock_probe(path, err, errlen) == -1)
		return -1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Born 0660: there is no instant at which others may connect. */
	old = umask(0117);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r == -1) {
		snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((gid != UNIXSOCK_NO_GROUP && chown(path, 0, gid) == -1) || chmod(path, 0660) == -1 ||
	    listen(fd, backlog) == -1 || lstat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return fd;
}

void
unixsock_unlink(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
		unlink(path);
}

/* Adds (or widens) the entry of group gid in *acl to rw, and recomputes the mask. */
static int
unixsock_acl_add(acl_t *acl, gid_t gid)
{
	acl_entry_t entry;
	acl_permset_t perms;
	acl_tag_t tag;
	gid_t *q;
	int found = 0, r;

	for (r = acl_get_entry(*acl, ACL_FIRST_ENTRY, &entry); r == 1 && !found;
	     r = acl_get_entry(*acl, ACL_NEXT_ENTRY, &entry)) {
		if (acl_get_tag_type(entry, &tag) == -1)
			return -1;
		if (tag != ACL_GROUP || (q = acl_get_qualifier(entry)) == NULL)
			continue;
		found = *q == gid;
		acl_free(q);
	}
	if (r == -1)
		return -1;
	if (!found &&
	    (acl_create_entry(acl, &entry) == -1 || acl_set_tag_type(entry, ACL_GROUP) == -1 ||
	        acl_set_qualifier(entry, &gid) == -1))
		return -1;
	if (acl_get_permset(entry, &perms) == -1 || acl_clear_perms(perms) == -1 ||
	    acl_add_perm(perms, ACL_READ) == -1 || acl_add_perm(perms, ACL_WRITE) == -1 ||
	    acl_set_permset(entry, perms) == -1)
		return -1;
	return acl_calc_mask(acl);
}

/* 1 when the file's ACL lets group gid read and write (its entry and the mask); else 0. */
static int
unixsock_acl_has(const char *path, gid_t gid)
{
	acl_t acl;
	acl_entry_t entry;
	acl_permset_t perms;
	acl_tag_t tag;
	gid_t *q;
	int r, group = 0, mask = 0, rw;

	if ((acl = acl_get_file(path, ACL_TYPE_ACCESS)) == NULL)
		return 0;
	for (r = acl_get_entry(acl, ACL_FIRST_ENTRY, &entry); r == 1;
	     r = acl_get_entry(acl, ACL_NEXT_ENTRY, &entry)) {
		if (acl_get_tag_type(entry, &tag) == -1 || acl_get_permset(entry, &perms) == -1)
			break;
		rw = acl_get_perm(perms, ACL_READ) == 1 && acl_get_perm(perms, ACL_WRITE) == 1;
		if (tag == ACL_MASK)
			mask = rw;
		else if (tag == ACL_GROUP && (q = acl_get_qualifier(entry)) != NULL) {
			group |= *q == gid && rw;
			acl_free(q);
		}
	}
	acl_free(acl);
	return group && mask;
}

int
unixsock_grant_group(const char *path, gid_t gid, char *err, size_t errlen)
{
	acl_t acl;
	int r;

	if ((acl = acl_get_file(path, ACL_TYPE_ACCESS)) == NULL) {
		snprintf(err, errlen, "%s: reading its ACL: %s", path, strerror(errno));
		return -1;
	}
	if ((r = unixsock_acl_add(&acl, gid)) == 0)
		r = acl_set_file(path, ACL_TYPE_ACCESS, acl);
	acl_free(acl);
	if (r == -1 && (errno == ENOTSUP || errno == EOPNOTSUPP)) {
		snprintf(err, errlen,
		    "%s: the file system does not support POSIX ACLs, so members of the admin "
		    "group (gid %ld) who are not in the socket group could not connect; put the "
		    "socket on a file system with ACLs (tmpfs, ext4, xfs)",
		    path, (long)gid);
		return -1;
	}
	if (r == -1) {
		snprintf(err, errlen, "%s: setting its ACL: %s", path, strerror(errno));
		return -1;
	}
	/* Read back: a file system may take an ACL and keep less of it. */
	if (!unixsock_acl_has(path, gid)) {
		snprintf(err, errlen,
		    "%s: its ACL does not grant gid %ld read and write after "
		    "setting it",
		    path, (long)gid);
		return -1;
	}
	return 0;
}
