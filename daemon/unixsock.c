/*
 * The one way this daemon creates a listening socket. The directory is the
 * first gate (ours, writable by nobody else), the socket exists with mode
 * 0660 from its first instant, and only our own file is ever removed.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

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
