/* The SSL and state directories checked at start-up and by --check-config (dirs.c). */
#ifndef CAROTATE_DIRS_H
#define CAROTATE_DIRS_H

#include <stddef.h>

struct config;

/*
 * The SSL directory and its new/ are ours and writable by nobody else; the state directory
 * exists (created 0700) and is ours alone. 0, or -1 with err naming the directory.
 */
int dirs_check(const struct config *, char *err, size_t errlen);
/*
 * Every directory the daemon writes is writable by us now (a read-only file system: err
 * names the systemd drop-in that fixes it). 0, or -1 with err.
 */
int dirs_check_writable(const struct config *, char *err, size_t errlen);
/*
 * At start-up, before recovery: removes the ".NAME.tmp" files an fsx_replace cut
 * short left in the state directory. Not while another process may be writing there.
 */
void dirs_clean_state(const struct config *);
/* --check-config: the same checks, creating nothing; each problem to problem(path, what). */
int dirs_check_config(
    const struct config *, int (*problem)(const char *, const char *), const char *path);

#endif
