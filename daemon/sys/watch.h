/*
 * Has anything a cached answer was built from changed? inotify on a few
 * directories and files, read without blocking whenever a caller asks, so
 * that a change made before a request is always seen by it.
 */
#ifndef CAROTATE_WATCH_H
#define CAROTATE_WATCH_H

#include <stddef.h>
#include <stdint.h>

/* What a watched path is. */
enum watch_kind {
	WATCH_ROOT,    /* a directory that must exist; every entry of it matters */
	WATCH_DIR,     /* a directory whose every entry matters (may be missing) */
	WATCH_ENTRIES, /* a root of which only the entries named by other paths matter */
	WATCH_FILE,    /* a file (may be missing): its content, wherever it is written from */
};

struct watch_path {
	const char *path; /* absolute */
	enum watch_kind kind;
};

struct watch;

/* A watcher with no paths; NULL (logged) when inotify is not available. */
struct watch *watch_new(void);
void watch_free(struct watch *);

/*
 * Watches paths (copied) instead of what was watched before. A path's parent
 * directory must come before it: the creation of a missing file or directory
 * is seen there. Starts a new generation.
 */
void watch_set(struct watch *, const struct watch_path *paths, size_t n);

/*
 * The generation: it changes whenever something watched may have changed
 * since the last call. A caller takes it before reading what it caches and
 * keeps the two together; the cache is good while the generation is the
 * same. 0 when nothing can be vouched for (no watcher, a root missing, a
 * watch refused): the caller reads everything again.
 */
uint64_t watch_generation(struct watch *);

#endif
