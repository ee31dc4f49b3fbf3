/* Crash-safe file mechanics, always relative to a directory handle, never through a symlink. */
#ifndef CAROTATE_FSX_H
#define CAROTATE_FSX_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

/*
 * Reads a regular file name inside dirfd, at most cap bytes. 0 on success
 * (*data malloc'd and NUL-terminated, *len its length), -1 with errno
 * (EFBIG when larger than cap, EINVAL when not a regular file, ELOOP for a symlink).
 */
int fsx_read(int dirfd, const char *name, size_t cap, uint8_t **data, size_t *len);
/* Creates name (which must not exist) with mode, writes data, fsyncs it. */
int fsx_create(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* Replaces name atomically: a temporary file, fsync, rename, then fsync of the directory. */
int fsx_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/*
 * Removes NAME and the temporary file an interrupted fsx_replace of it left
 * (neither there is no error), then fsyncs the directory: 0, or -1 (errno).
 */
int fsx_remove(int dirfd, const char *name);
/* 1 when name in dirfd holds exactly data; 0 otherwise (missing included). */
int fsx_same(int dirfd, const char *name, const void *data, size_t len);
int fsx_fsync_dir(int dirfd);
/* Removes directory name in dirfd and the regular files in it; refuses anything deeper. */
int fsx_remove_dir(int dirfd, const char *name);
/* Opens directory name in dirfd (not a symlink); -1 with errno. */
int fsx_open_dir(int dirfd, const char *name);

#endif
