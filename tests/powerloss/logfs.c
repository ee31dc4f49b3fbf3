/*
 * logfs: a FUSE file system that records every write and flush of one disk image, for the
 * power-loss test (tests/integration/test_power_loss.sh). A loop device over MOUNT/disk.img
 * carries ext4 or XFS; the log it leaves lets tests/powerloss/replay rebuild the disk as a power
 * cut would have left it at any point.
 *
 *   logfs BACKING LOG MOUNTPOINT [FUSE_OPTION...]
 *
 * MOUNTPOINT holds two files:
 *   disk.img  BACKING itself: reads and writes go to it; every write is also logged, and every
 *             fsync (or flush) of it logs a FLUSH. Opened with direct_io, so each write the loop
 *             device issues reaches us as it was issued, not merged in our page cache.
 *   mark      writing text to it logs a MARK with that text (a trailing newline dropped): the
 *             test's bookmarks ("rotate answered") between the writes.
 *
 * The log (LOG, created anew): the 8 bytes "CRPLOG1\n", then records, each a 16-byte header,
 * all fields little-endian,
 *   u32 type (1 WRITE, 2 FLUSH, 3 MARK)  u32 length  u64 offset
 * followed by `length` bytes: the data written at `offset` (WRITE), the text (MARK), nothing
 * (FLUSH, offset 0). Records are in the order the operations reached us: the file system runs
 * single-threaded, so that order is also the order they were applied to BACKING.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "logfmt.h"

#define LOGFS_DISK "/disk.img"
#define LOGFS_MARK "/mark"

static int logfs_backing = -1; /* BACKING, read-write */
static int logfs_log = -1;     /* LOG, append only */

static int logfs_append(uint32_t, uint64_t, const void *, size_t);
static int logfs_getattr(const char *, struct stat *, struct fuse_file_info *);
static int logfs_readdir(
    const char *, void *, fuse_fill_dir_t, off_t, struct fuse_file_info *, enum fuse_readdir_flags);
static int logfs_open(const char *, struct fuse_file_info *);
static int logfs_read(const char *, char *, size_t, off_t, struct fuse_file_info *);
static int logfs_write(const char *, const char *, size_t, off_t, struct fuse_file_info *);
static int logfs_fsync(const char *, int, struct fuse_file_info *);
static int logfs_flush(const char *, struct fuse_file_info *);
static int logfs_truncate(const char *, off_t, struct fuse_file_info *);

static const struct fuse_operations logfs_ops = {
	.getattr = logfs_getattr,
	.readdir = logfs_readdir,
	.open = logfs_open,
	.read = logfs_read,
	.write = logfs_write,
	.fsync = logfs_fsync,
	.flush = logfs_flush,
	.truncate = logfs_truncate,
};

/* One record, header then payload. A failed log write is fatal: a log with a hole would let
 * the replay build disks that never existed. */
static int
logfs_append(uint32_t type, uint64_t offset, const void *data, size_t len)
{
	unsigned char hdr[LOGFMT_HDR_LEN];

	logfmt_put_header(hdr, type, (uint32_t)len, offset);
	if (io_write_all(logfs_log, hdr, sizeof(hdr)) == -1 ||
	    io_write_all(logfs_log, data, len) == -1) {
		perror("logfs: log");
		exit(1);
	}
	return 0;
}

static int
logfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct stat bst;

	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (strcmp(path, LOGFS_DISK) == 0) {
		if (fstat(logfs_backing, &bst) == -1)
			return -errno;
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = bst.st_size;
	} else if (strcmp(path, LOGFS_MARK) == 0) {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
	} else
		return -ENOENT;
	return 0;
}

static int
logfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
    struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, LOGFS_DISK + 1, NULL, 0, 0);
	fill(buf, LOGFS_MARK + 1, NULL, 0, 0);
	return 0;
}

/* direct_io: no page cache between the loop device and the log. */
static int
logfs_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, LOGFS_DISK) != 0 && strcmp(path, LOGFS_MARK) != 0)
		return -ENOENT;
	fi->direct_io = 1;
	return 0;
}

static int
logfs_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	if (strcmp(path, LOGFS_MARK) == 0)
		return 0;
	if ((n = pread(logfs_backing, buf, len, off)) == -1)
		return -errno;
	return (int)n;
}

static int
logfs_write(const char *path, const char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	size_t tlen = len;

	if (strcmp(path, LOGFS_MARK) == 0) {
		while (tlen > 0 && buf[tlen - 1] == '\n')
			tlen--;
		logfs_append(LOGFMT_MARK, 0, buf, tlen);
		return (int)len;
	}
	if (io_pwrite_all(logfs_backing, buf, len, off) == -1)
		return -errno;
	logfs_append(LOGFMT_WRITE, (uint64_t)off, buf, len);
	return (int)len;
}

/* The loop device turns a REQ_PREFLUSH (and a FUA write) into an fsync of disk.img: the point
 * where every write logged before it is durable. BACKING itself need not be synced: the log,
 * not BACKING, is what the test replays. */
static int
logfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	if (strcmp(path, LOGFS_DISK) == 0)
		logfs_append(LOGFMT_FLUSH, 0, NULL, 0);
	return 0;
}

static int
logfs_flush(const char *path, struct fuse_file_info *fi)
{
	return logfs_fsync(path, 0, fi);
}

/* `echo text >mark` truncates mark first; the disk keeps its size. */
static int
logfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct stat st;

	if (strcmp(path, LOGFS_MARK) == 0)
		return 0;
	if (strcmp(path, LOGFS_DISK) != 0)
		return -ENOENT;
	if (fstat(logfs_backing, &st) == -1)
		return -errno;
	return st.st_size == size ? 0 : -EPERM;
}

int
main(int argc, char **argv)
{
	static char single[] = "-s";
	char *fargv[64];
	int fargc = 0, i;

	if (argc < 4 || argc > 40) {
		fprintf(stderr, "usage: logfs BACKING LOG MOUNTPOINT [FUSE_OPTION...]\n");
		return 2;
	}
	if ((logfs_backing = open(argv[1], O_RDWR | O_CLOEXEC)) == -1) {
		perror(argv[1]);
		return 1;
	}
	logfs_log = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (logfs_log == -1 || io_write_all(logfs_log, LOGFMT_MAGIC, LOGFMT_MAGIC_LEN) == -1) {
		perror(argv[2]);
		return 1;
	}
	/* -s: one thread, so the log's order is the order of the writes. */
	fargv[fargc++] = argv[0];
	fargv[fargc++] = single;
	for (i = 4; i < argc; i++)
		fargv[fargc++] = argv[i];
	fargv[fargc++] = argv[3];
	fargv[fargc] = NULL;
	return fuse_main(fargc, fargv, &logfs_ops, NULL);
}
