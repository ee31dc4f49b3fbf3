/*
 * The scratch directories and file helpers the unit tests of the SSL and state
 * directories share: a temporary root holding ssl/ and state/, files put and
 * read relative to a directory, and a snapshot to show that nothing changed.
 * Failures are cmocka failures, except in the set-up functions, which return -1.
 */
#ifndef CAROTATE_FIXTURE_FS_H
#define CAROTATE_FIXTURE_FS_H

#include <sys/types.h>

#include <stddef.h>

struct config;

struct fixture_fs {
	char root[64];  /* /tmp/carotate-test-<name>-XXXXXX */
	char ssl[80];   /* root/ssl */
	char state[80]; /* root/state */
};

/* Makes the root directory and names ssl/ and state/ below it (made by fixture_fs_reset). */
int fixture_fs_init(struct fixture_fs *, const char *name);
/* Empty ssl/ (0755) and state/ (0700): removes them and root/outside, then makes them again. */
int fixture_fs_reset(const struct fixture_fs *);
/* Removes the root and all below it. */
int fixture_fs_remove(const struct fixture_fs *);
/* Points conf's SSL and state directories here, with the default file names. */
void fixture_fs_conf(const struct fixture_fs *, struct config *conf);

/* Writes dir/rel afresh (any old file or link removed first), created with mode. */
void fixture_fs_put(const char *dir, const char *rel, const char *text, mode_t mode);
/* dir/rel's content ("" when missing, links not followed), in one of two rotating buffers. */
const char *fixture_fs_get(const char *dir, const char *rel);
/* Whether dir/rel exists (a link counts, not followed). */
int fixture_fs_exists(const char *dir, const char *rel);
/* The permission bits of dir/rel, which must exist. */
mode_t fixture_fs_mode(const char *dir, const char *rel);
/* How many names in dir start with prefix. */
int fixture_fs_count(const char *dir, const char *prefix);
/* Every name, type, mode and content under dir, to show that nothing changed. */
void fixture_fs_snapshot(const char *dir, char *out, size_t len);

#endif
