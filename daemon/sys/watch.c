/*
 * A generation number that moves whenever a watched path may have changed.
 *
 * The inotify queue is read without blocking by the caller, on the event
 * loop, each time it asks: the kernel queues an event during the system call
 * that changes the file, so a change that ended before a request was read is
 * in the queue when the request is handled, and no event needs a callback.
 *
 * What inotify cannot see is covered too: the queue overflowing, a watched
 * directory or file removed or renamed (its watch then follows the old
 * inode), and a root replaced through a renamed parent or a retargeted
 * symlink, which the identity check of each root (one stat per call) finds.
 * When a watch cannot be placed, or a directory is on a network or FUSE file
 * system (where inotify misses what other hosts change), the generation is 0
 * and the caller reads everything again, as it did before the watcher existed.
 */
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "watch.h"
#include "xmalloc.h"

/* Every change to a directory's entries, or to the directory itself. */
#define WATCH_DIR_MASK                                                                             \
	(IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |          \
	    IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
/*
 * Entries coming and going only: the state directory's ledger is written at
 * every check-in, and those writes must not wake the cache.
 */
#define WATCH_ENTRIES_MASK                                                                         \
	(IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |        \
	    IN_MOVE_SELF | IN_ONLYDIR)
/* A file's content and mode through any of its links, and its own end. */
#define WATCH_FILE_MASK                                                                            \
	(IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW)

struct watch_entry {
	char *path;
	enum watch_kind kind;
	int wd;           /* -1: not watched (missing) */
	int parent;       /* index of the entry of its directory, or -1 */
	const char *base; /* its last component, in path */
	dev_t dev;        /* roots: the directory the watch is on */
	ino_t ino;
};

struct watch {
	int fd;
	struct watch_entry *e;
	size_t n;
	uint64_t gen;
	int armed;  /* every root watched and every watch placed */
	int warned; /* the last failure to arm was logged */
};

static void watch_clear(struct watch *);
static int watch_drain(struct watch *);
static int watch_relevant(const struct watch *, const struct inotify_event *);
static int watch_roots_moved(const struct watch *);
static void watch_arm(struct watch *);
static int watch_arm_entry(struct watch *, size_t);
static uint32_t watch_mask(enum watch_kind);
static int watch_is_root(enum watch_kind);
static int watch_remote(const char *);

struct watch *
watch_new(void)
{
	struct watch *w;
	int fd;

	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		log_warn("inotify: cached answers are checked against the files at every call");
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	w->gen = 1;
	return w;
}

static void
watch_clear(struct watch *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		if (w->e[i].wd != -1)
			(void)inotify_rm_watch(w->fd, w->e[i].wd);
		free(w->e[i].path);
	}
	free(w->e);
	w->e = NULL;
	w->n = 0;
	w->armed = 0;
}

void
watch_free(struct watch *w)
{
	if (w == NULL)
		return;
	watch_clear(w);
	close(w->fd);
	free(w);
}

void
watch_set(struct watch *w, const struct watch_path *paths, size_t n)
{
	struct watch_entry *e;
	size_t i, j, dirlen;
	const char *slash;

	if (w == NULL)
		return;
	watch_clear(w);
	w->e = xcalloc(n, sizeof(*w->e));
	w->n = n;
	for (i = 0; i < n; i++) {
		e = &w->e[i];
		e->path = xstrdup(paths[i].path);
		e->kind = paths[i].kind;
		e->wd = -1;
		e->parent = -1;
		slash = strrchr(e->path, '/');
		e->base = slash != NULL ? slash + 1 : e->path;
		dirlen = slash != NULL ? (size_t)(slash - e->path) : 0;
		for (j = 0; j < i; j++)
			if (strlen(w->e[j].path) == dirlen &&
			    strncmp(w->e[j].path, e->path, dirlen) == 0)
				e->parent = (int)j;
	}
	if (++w->gen == 0)
		w->gen = 1;
}

static int
watch_is_root(enum watch_kind kind)
{
	return kind == WATCH_ROOT || kind == WATCH_ENTRIES;
}

static uint32_t
watch_mask(enum watch_kind kind)
{
	switch (kind) {
	case WATCH_ROOT:
		return WATCH_DIR_MASK;
	case WATCH_DIR:
		/* Opened with O_NOFOLLOW by the readers: a symlink there is no directory. */
		return WATCH_DIR_MASK | IN_DONT_FOLLOW;
	case WATCH_ENTRIES:
		return WATCH_ENTRIES_MASK;
	case WATCH_FILE:
		return WATCH_FILE_MASK;
	}
	return WATCH_DIR_MASK;
}

/* Whether one event may change what the paths hold. */
static int
watch_relevant(const struct watch *w, const struct inotify_event *ev)
{
	size_t i, k;
	int relevant = 0;

	if (ev->mask & IN_Q_OVERFLOW)
		return 1;
	for (i = 0; i < w->n && !relevant; i++) {
		if (w->e[i].wd == -1 || w->e[i].wd != ev->wd)
			continue;
		if (w->e[i].kind != WATCH_ENTRIES || ev->len == 0 || ev->name[0] == '\0') {
			relevant = 1;
			break;
		}
		/* Only the entries other paths name. */
		for (k = 0; k < w->n; k++)
			if (w->e[k].parent == (int)i && strcmp(w->e[k].base, ev->name) == 0)
				relevant = 1;
	}
	/* A watch we no longer hold (replaced by a newer one) says nothing. */
	return relevant;
}

/* Reads every queued event: 1 when one of them matters (or the queue cannot be read). */
static int
watch_drain(struct watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t r;
	size_t off;
	int changed = 0;

	for (;;) {
		if ((r = read(w->fd, buf, sizeof(buf))) == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				changed = 1;
			return changed;
		}
		if (r == 0)
			return 1;
		for (off = 0; off + sizeof(*ev) <= (size_t)r; off += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(buf + off);
			if (!changed && watch_relevant(w, ev))
				changed = 1;
		}
	}
}

/* A root that is no longer the directory its watch is on (or is gone). */
static int
watch_roots_moved(const struct watch *w)
{
	struct stat st;
	size_t i;

	for (i = 0; i < w->n; i++)
		if (watch_is_root(w->e[i].kind) &&
		    (stat(w->e[i].path, &st) == -1 || st.st_dev != w->e[i].dev ||
		        st.st_ino != w->e[i].ino))
			return 1;
	return 0;
}

/*
 * Network and user-space file systems: inotify there sees the changes made
 * through this kernel only, not those of another host or of the server.
 */
static int
watch_remote(const char *path)
{
	static const unsigned long remote[] = {
		0x6969,     /* NFS */
		0x517b,     /* SMB */
		0xff534d42, /* CIFS */
		0xfe534d42, /* SMB2 */
		0x65735546, /* FUSE */
		0x01021997, /* 9P */
		0x00c36400, /* Ceph */
		0x5346414f, /* AFS */
		0x6b414653, /* kAFS */
		0x73757245, /* Coda */
		0x01161970, /* GFS2 */
		0x7461636f, /* OCFS2 */
	};
	struct statfs sfs;
	size_t i;

	if (statfs(path, &sfs) == -1)
		return 0; /* gone meanwhile: its directory's watch says so */
	for (i = 0; i < sizeof(remote) / sizeof(remote[0]); i++)
		if ((unsigned long)sfs.f_type == remote[i])
			return 1;
	return 0;
}

/* Places or moves one watch: -1 when the path can no longer be vouched for. */
static int
watch_arm_entry(struct watch *w, size_t i)
{
	struct watch_entry *e = &w->e[i];
	struct stat st;
	size_t j;
	int wd, old = e->wd, shared = 0;

	/* The identity first: a root swapped after it is caught at the next call. */
	if (watch_is_root(e->kind)) {
		if (stat(e->path, &st) == -1)
			return -1;
		e->dev = st.st_dev;
		e->ino = st.st_ino;
	}
	wd = inotify_add_watch(w->fd, e->path, watch_mask(e->kind));
	if (wd == -1 && (watch_is_root(e->kind) || (errno != ENOENT && errno != ENOTDIR)))
		return -1;
	if (wd != -1 && e->kind != WATCH_FILE && watch_remote(e->path)) {
		(void)inotify_rm_watch(w->fd, wd);
		if (old != wd && old != -1)
			(void)inotify_rm_watch(w->fd, old);
		e->wd = -1;
		errno = EREMOTE;
		return -1;
	}
	e->wd = wd;
	if (old != -1 && old != wd) {
		for (j = 0; j < w->n; j++)
			if (w->e[j].wd == old)
				shared = 1;
		if (!shared)
			(void)inotify_rm_watch(w->fd, old);
	}
	return 0;
}

/*
 * Watches every path as it is now: a directory or file created or replaced
 * since gets its watch before the caller reads it, so nothing written after
 * this is missed. A missing non-root is covered by its directory's watch.
 */
static void
watch_arm(struct watch *w)
{
	size_t i;
	int ok = 1;

	for (i = 0; i < w->n; i++)
		if (watch_arm_entry(w, i) == -1) {
			if (ok && !w->warned)
				log_warn("inotify: %s: checking against the files at every call",
				    w->e[i].path);
			ok = 0;
		}
	w->armed = ok;
	w->warned = !ok;
}

uint64_t
watch_generation(struct watch *w)
{
	if (w == NULL || w->n == 0)
		return 0;
	if (watch_drain(w) || !w->armed || watch_roots_moved(w)) {
		if (++w->gen == 0)
			w->gen = 1;
		watch_arm(w);
	}
	return w->armed ? w->gen : 0;
}
