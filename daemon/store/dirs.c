/*
 * The two directories the store writes, checked before anything is written there: the SSL
 * directory and its new/ (ours, writable by nobody else: whoever can write there can plant
 * a CA that every agent is then sent), and the state directory (ours alone, created 0700
 * when missing). carotated(8) START-UP.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dirs.h"
#include "fsx.h"
#include "log.h"
#include "ssldir.h"

static int dirs_safe(
    const char *, const char *, const char *, const struct stat *, mode_t, char *, size_t);
static int dirs_check_ssl(const struct config *, char *, size_t);
static int dirs_parent(const char *, char *, size_t);
static int dirs_sync_parent(const char *, char *, size_t);
static void dirs_rofs(const char *, const char *, char *, size_t);
static int dirs_writable(const char *, const char *, char *, size_t);

/*
 * One rule for the directories we trust: owned by our uid (root when
 * privileged) and without the mode bits in forbidden. -1 with err naming it.
 */
static int
dirs_safe(const char *what, const char *path, const char *sub, const struct stat *st,
    mode_t forbidden, char *err, size_t errlen)
{
	if (st->st_uid == geteuid() && (st->st_mode & forbidden) == 0)
		return 0;
	snprintf(err, errlen,
	    "%s %s%s%s must be owned by uid %ld and writable by nobody else (mode %04o at most; "
	    "it is uid %ld, mode %04o)",
	    what, path, sub != NULL ? "/" : "", sub != NULL ? sub : "", (long)geteuid(),
	    (unsigned)(07777 & ~forbidden & 0777), (long)st->st_uid,
	    (unsigned)(st->st_mode & 07777));
	return -1;
}

/*
 * The SSL directory and its new/ must be ours and writable by nobody else:
 * whoever can write there can plant a CA that every agent is then sent. The
 * state directory is ours alone (created 0700).
 */
static int
dirs_check_ssl(const struct config *conf, char *err, size_t errlen)
{
	struct stat st;
	int dfd, r;

	if (stat(conf->ssl_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "SSL directory %s: %s", conf->ssl_dir,
		    errno != 0 && !S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
		return -1;
	}
	if (dirs_safe("SSL directory", conf->ssl_dir, NULL, &st, 022, err, errlen) == -1)
		return -1;
	if ((dfd = open(conf->ssl_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "SSL directory %s: %s", conf->ssl_dir, strerror(errno));
		return -1;
	}
	r = fstatat(dfd, SSLDIR_STAGING, &st, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	if (r == 0 && dirs_safe("staging directory", conf->ssl_dir, SSLDIR_STAGING, &st, 022, err,
	                  errlen) == -1)
		return -1;
	return 0;
}

/* dirs_check_ssl, then the state directory, created 0700 when missing. */
int
dirs_check(const struct config *conf, char *err, size_t errlen)
{
	struct stat st;

	if (dirs_check_ssl(conf, err, errlen) == -1)
		return -1;
	if (mkdir(conf->state_dir, 0700) == 0) {
		if (dirs_sync_parent(conf->state_dir, err, errlen) == -1)
			return -1;
	} else if (errno == EROFS) {
		dirs_rofs("state directory", conf->state_dir, err, errlen);
		return -1;
	} else if (errno != EEXIST) {
		snprintf(err, errlen, "cannot create state directory %s: %s", conf->state_dir,
		    strerror(errno));
		return -1;
	}
	if (lstat(conf->state_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "state directory %s is not a directory", conf->state_dir);
		return -1;
	}
	return dirs_safe("state directory", conf->state_dir, NULL, &st, 077, err, errlen);
}

/* The directory that holds path ("/" for "/x", "." for "x"): 0, or -1 when it is too long. */
static int
dirs_parent(const char *path, char *parent, size_t len)
{
	size_t n = strlen(path);
	char *slash;

	if (n >= len)
		return -1;
	memcpy(parent, path, n + 1);
	while (n > 1 && parent[n - 1] == '/')
		parent[--n] = '\0';
	if ((slash = strrchr(parent, '/')) == NULL)
		snprintf(parent, len, ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

/*
 * A state directory just created exists only in its parent's page cache: a power cut would
 * take it, with everything the daemon wrote and fsynced in it since (the ledger, the CA keys,
 * a swap journal). Its parent is fsynced before anything is written there.
 */
static int
dirs_sync_parent(const char *path, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	int fd;

	if (dirs_parent(path, parent, sizeof(parent)) == -1) {
		snprintf(err, errlen, "state directory %s: path too long", path);
		return -1;
	}
	if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsx_fsync_dir(fd) == -1) {
		snprintf(err, errlen, "state directory %s created, but %s cannot be synced: %s",
		    path, parent, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * A power cut between fsx_replace's write of ".NAME.tmp" and its rename (the pending note of
 * a swap, active.known) leaves the temporary file behind: on XFS the rename may be lost while
 * the file's creation is not (tests/integration/test_power_loss.sh). Nothing writes at
 * start-up, so every such file is garbage; the next fsx_replace would only remove its own.
 */
void
dirs_clean_state(const struct config *conf)
{
	struct dirent *de;
	DIR *dir;
	size_t n;
	int dfd, removed = 0;

	if ((dfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if ((dir = fdopendir(dup(dfd))) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		n = strlen(de->d_name);
		if (de->d_name[0] != '.' || n <= 5 || strcmp(de->d_name + n - 4, ".tmp") != 0)
			continue;
		log_info("removing %s/%s, left by a crash", conf->state_dir, de->d_name);
		if (unlinkat(dfd, de->d_name, 0) == -1)
			log_warn("cannot remove %s/%s", conf->state_dir, de->d_name);
		else
			removed++;
	}
	closedir(dir);
	if (removed > 0 && fsx_fsync_dir(dfd) == -1)
		log_warn("%s: fsync %s", __func__, conf->state_dir);
	close(dfd);
}

/*
 * The daemon holds no CAP_DAC_OVERRIDE, and systemd's ProtectSystem=strict
 * makes every path but the unit's ReadWritePaths= read-only: a directory we
 * cannot write would let start-up report ready and every rotate fail later
 * (EROFS). -1 with err naming the directory and, for EROFS, the drop-in.
 */
/* The message for a directory on a read-only file system: the drop-in that fixes it. */
static void
dirs_rofs(const char *what, const char *path, char *err, size_t errlen)
{
	snprintf(err, errlen,
	    "%s %s is on a read-only file system. Under systemd, the unit's "
	    "ProtectSystem=strict leaves only its ReadWritePaths= writable: run "
	    "`systemctl edit carotated`, add\n[Service]\nReadWritePaths=%s\nthen "
	    "`systemctl restart carotated`",
	    what, path, path);
}

static int
dirs_writable(const char *what, const char *path, char *err, size_t errlen)
{
	if (faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) == 0)
		return 0;
	if (errno == EROFS)
		dirs_rofs(what, path, err, errlen);
	else
		snprintf(err, errlen, "%s %s is not writable by uid %ld: %s", what, path,
		    (long)geteuid(), strerror(errno));
	return -1;
}

/* Every directory the daemon writes: the SSL directory, its new/ and the state directory. */
int
dirs_check_writable(const struct config *conf, char *err, size_t errlen)
{
	char sub[PATH_MAX];
	struct stat st;

	if (dirs_writable("SSL directory", conf->ssl_dir, err, errlen) == -1)
		return -1;
	snprintf(sub, sizeof(sub), "%s/%s", conf->ssl_dir, SSLDIR_STAGING);
	if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode) &&
	    dirs_writable("staging directory", sub, err, errlen) == -1)
		return -1;
	return dirs_writable("state directory", conf->state_dir, err, errlen);
}

/*
 * --check-config's part: what dirs_check and dirs_check_writable would refuse, without
 * creating anything; each problem goes to problem(path, what). The number of problems.
 */
int
dirs_check_config(
    const struct config *conf, int (*problem)(const char *, const char *), const char *path)
{
	char err[1024], parent[PATH_MAX];
	struct stat st;
	int n = 0;

	if (dirs_check_ssl(conf, err, sizeof(err)) == -1)
		n += problem(path, err);
	else if (dirs_writable("SSL directory", conf->ssl_dir, err, sizeof(err)) == -1)
		n += problem(path, err);
	if (lstat(conf->state_dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			n += problem(path, "[daemon] state_dir is not a directory");
		else if (dirs_safe("state directory", conf->state_dir, NULL, &st, 077, err,
		             sizeof(err)) == -1 ||
		         dirs_writable("state directory", conf->state_dir, err, sizeof(err)) == -1)
			n += problem(path, err);
	} else {
		if (dirs_parent(conf->state_dir, parent, sizeof(parent)) == -1)
			snprintf(parent, sizeof(parent), "%s", conf->state_dir);
		if (dirs_writable("the directory that would hold the state directory", parent, err,
		        sizeof(err)) == -1)
			n += problem(path, err);
	}
	return n;
}
