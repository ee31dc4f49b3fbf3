/*
 * libfailio: an LD_PRELOAD shim that fails exactly one file-system call of a
 * running process, chosen by its rank: the Nth counted call returns -1 with
 * the errno asked for (EIO, ENOSPC, ...), and no other call is touched. The
 * tests walk N = 1, 2, ... over one operation of the daemon until it runs
 * without the fault firing: every file-system call it makes has then failed
 * once. See tests/faultinj/README.md for the control protocol.
 *
 * Environment (read once, at load):
 *   CAROTATE_FAILIO        the control file (none: the shim does nothing)
 *   CAROTATE_FAILIO_LOG    where fired faults are logged (default: control file + ".log")
 *   CAROTATE_FAILIO_PATHS  colon-separated directory prefixes: only calls on files
 *                          under them count (default: every regular file and directory)
 *
 * The control file holds one line `GEN N ERRNO [CALLS [PATHS]]`, re-read whenever
 * it changes (inode, size or time): a new GEN resets the counter. N = 0 arms
 * nothing (counting only); ERRNO is a name (EIO, ENOSPC, EDQUOT, EROFS, EPERM)
 * or a number; CALLS is a comma-separated list of call names (write, fsync,
 * openat, ...) or classes: "mut" (the default: every call that changes a file
 * or a directory, and every open for writing) and "all" (mut plus opens for
 * reading); PATHS, colon-separated prefixes ("!" excludes), replaces
 * CAROTATE_FAILIO_PATHS for this generation. Each fired fault appends
 * `gen=G n=N pid=P call=C target=T errno=E`.
 *
 * Counted: calls on regular files and directories only (fstat of the
 * descriptor, or the path's kind), so sockets, pipes and ttys (logging, RPC,
 * the agent channel) never shift the count. Only the process that loaded the
 * shim first counts: it exports CAROTATE_FAILIO_OWNER=<its pid>, so forked
 * children (getpid differs) and programs they exec (they inherit the variable)
 * pass every call through untouched.
 *
 * Calls glibc makes internally (fopen's open, stdio's write, the dynamic
 * loader's opens) do not go through the symbol table and cannot be
 * interposed: they are neither counted nor failed.
 *
 * Not thread-safe: the daemon runs one thread.
 */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAILIO_MAX_PREFIXES 8
#define FAILIO_MAX_CALLS    32

/* A call's class: mut calls change the file system, ro ones only open for reading. */
enum failio_class { FAILIO_MUT, FAILIO_RO };

struct failio_ctl {
	unsigned long gen;
	long n;          /* the rank that fails; 0: none */
	int err;         /* the errno it fails with */
	int all;         /* opens for reading count too */
	int ncalls;      /* 0: every call of the class */
	char calls[FAILIO_MAX_CALLS][24];
	char paths[1024]; /* "": the environment's prefixes */
};

static int failio_on;     /* armed in this process */
static pid_t failio_owner; /* the process that counts */
static char failio_ctl_path[PATH_MAX];
static char failio_log_path[PATH_MAX];
static char failio_prefix[FAILIO_MAX_PREFIXES][PATH_MAX];
static int failio_nprefix;
static struct stat failio_ctl_st; /* of the control file when last read */
static struct failio_ctl failio_cur;
static long failio_count; /* calls counted since the generation began */

static void failio_init(void) __attribute__((constructor));
static void failio_reload(void);
static int failio_parse(const char *, struct failio_ctl *);
static int failio_errno(const char *);
static int failio_ctl_paths(const char *);
static int failio_in_prefix(const char *);
static int failio_fd_target(int, char *, size_t);
static int failio_path_target(int, const char *, int, char *, size_t);
static int failio_wants(const char *, enum failio_class);
static int failio_fire(const char *, const char *);
static int failio_fd(const char *, int);
static int failio_path(const char *, int, const char *, enum failio_class, int);
static void *failio_next(const char *);
static enum failio_class failio_open_class(int);
static mode_t failio_mode(int, va_list);
static int failio_open_fails(const char *, int, const char *, int);

static void
failio_init(void)
{
	const char *ctl = getenv("CAROTATE_FAILIO"), *log, *paths, *owner;
	char me[32], *p, *save = NULL, buf[FAILIO_MAX_PREFIXES * 256];

	if (ctl == NULL || ctl[0] == '\0')
		return;
	snprintf(me, sizeof(me), "%ld", (long)getpid());
	owner = getenv("CAROTATE_FAILIO_OWNER");
	if (owner != NULL && strcmp(owner, me) != 0)
		return; /* a program exec'ed by the owner or one of its children */
	setenv("CAROTATE_FAILIO_OWNER", me, 1);
	failio_owner = getpid();
	snprintf(failio_ctl_path, sizeof(failio_ctl_path), "%s", ctl);
	if ((log = getenv("CAROTATE_FAILIO_LOG")) != NULL && log[0] != '\0')
		snprintf(failio_log_path, sizeof(failio_log_path), "%s", log);
	else
		snprintf(failio_log_path, sizeof(failio_log_path), "%s.log", ctl);
	if ((paths = getenv("CAROTATE_FAILIO_PATHS")) != NULL) {
		snprintf(buf, sizeof(buf), "%s", paths);
		for (p = strtok_r(buf, ":", &save); p != NULL && failio_nprefix < FAILIO_MAX_PREFIXES;
		     p = strtok_r(NULL, ":", &save))
			if (realpath(p, failio_prefix[failio_nprefix]) != NULL)
				failio_nprefix++;
	}
	failio_on = 1;
}

/* The real function of the next object in the lookup order (libc, or a sanitizer's). */
static void *
failio_next(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL) {
		static const char msg[] = "libfailio: a symbol is missing\n";

		if (syscall(SYS_write, 2, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to say */
		}
		abort();
	}
	return f;
}

static int
failio_errno(const char *s)
{
	static const struct {
		const char *name;
		int err;
	} names[] = { { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
		{ "EROFS", EROFS }, { "EPERM", EPERM }, { "EACCES", EACCES } };
	size_t i;
	char *end;
	long v;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].err;
	v = strtol(s, &end, 10);
	return *end == '\0' && v > 0 && v < 4096 ? (int)v : -1;
}

/* `GEN N ERRNO [CALLS]`; -1 leaves *c alone. */
static int
failio_parse(const char *text, struct failio_ctl *c)
{
	char errs[32], calls[512] = "mut", *p, *save = NULL;
	struct failio_ctl n;
	int k;

	memset(&n, 0, sizeof(n));
	k = sscanf(text, "%lu %ld %31s %511s %1023s", &n.gen, &n.n, errs, calls, n.paths);
	if (k < 3 || n.n < 0 || (n.err = failio_errno(errs)) == -1)
		return -1;
	for (p = strtok_r(calls, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
		if (strcmp(p, "all") == 0)
			n.all = 1;
		else if (strcmp(p, "mut") != 0 && n.ncalls < FAILIO_MAX_CALLS)
			snprintf(n.calls[n.ncalls++], sizeof(n.calls[0]), "%s", p);
	}
	*c = n;
	return 0;
}

/* Re-reads the control file when it changed; a new generation resets the count. */
static void
failio_reload(void)
{
	struct stat st;
	char buf[1024];
	ssize_t len;
	struct failio_ctl c;
	int fd;

	if (stat(failio_ctl_path, &st) == -1) {
		memset(&failio_ctl_st, 0, sizeof(failio_ctl_st));
		failio_cur.n = 0;
		return;
	}
	if (st.st_ino == failio_ctl_st.st_ino && st.st_size == failio_ctl_st.st_size &&
	    st.st_mtim.tv_sec == failio_ctl_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == failio_ctl_st.st_mtim.tv_nsec &&
	    st.st_ctim.tv_nsec == failio_ctl_st.st_ctim.tv_nsec)
		return;
	failio_ctl_st = st;
	if ((fd = (int)syscall(SYS_openat, AT_FDCWD, failio_ctl_path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	len = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	if (len <= 0)
		return;
	buf[len] = '\0';
	if (failio_parse(buf, &c) == -1)
		return;
	if (c.gen != failio_cur.gen)
		failio_count = 0;
	failio_cur = c;
}

/*
 * The control file's PATHS, when given, decide: colon-separated prefixes, "!"
 * before one excludes what starts with it (ledger.db also takes ledger.db-wal).
 */
static int
failio_ctl_paths(const char *path)
{
	char buf[sizeof(failio_cur.paths)], *p, *save = NULL;
	int in = 0;
	size_t len;

	snprintf(buf, sizeof(buf), "%s", failio_cur.paths);
	for (p = strtok_r(buf, ":", &save); p != NULL; p = strtok_r(NULL, ":", &save)) {
		len = strlen(p + (p[0] == '!'));
		if (p[0] == '!' && strncmp(path, p + 1, len) == 0)
			return 0;
		if (p[0] != '!' && strncmp(path, p, len) == 0 &&
		    (path[len] == '/' || path[len] == '\0'))
			in = 1;
	}
	return in;
}

static int
failio_in_prefix(const char *path)
{
	size_t len;
	int i;

	if (failio_cur.paths[0] != '\0')
		return failio_ctl_paths(path);
	if (failio_nprefix == 0)
		return 1;
	for (i = 0; i < failio_nprefix; i++) {
		len = strlen(failio_prefix[i]);
		if (strncmp(path, failio_prefix[i], len) == 0 &&
		    (path[len] == '/' || path[len] == '\0'))
			return 1;
	}
	return 0;
}

/* 1 with the path of fd in target when fd is a regular file or directory. */
static int
failio_fd_target(int fd, char *target, size_t len)
{
	char link[64];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) == -1 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, target, len - 1)) <= 0)
		return 0;
	target[n] = '\0';
	return 1;
}

/*
 * 1 with the absolute path of dirfd/name in target when it is (or, for a
 * creating call, would be made in a directory that is) on the file system.
 */
static int
failio_path_target(int dirfd, const char *name, int creating, char *target, size_t len)
{
	char dir[PATH_MAX];
	struct stat st;

	if (name == NULL)
		return 0;
	if (name[0] == '/')
		snprintf(target, len, "%s", name);
	else {
		if (dirfd == AT_FDCWD) {
			if (getcwd(dir, sizeof(dir)) == NULL)
				return 0;
		} else if (!failio_fd_target(dirfd, dir, sizeof(dir)))
			return 0;
		snprintf(target, len, "%s/%s", dir, name);
	}
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode);
	return creating || errno == ENOENT;
}

static int
failio_wants(const char *call, enum failio_class cls)
{
	int i;

	if (cls == FAILIO_RO && !failio_cur.all)
		return 0;
	if (failio_cur.ncalls == 0)
		return 1;
	for (i = 0; i < failio_cur.ncalls; i++)
		if (strcmp(failio_cur.calls[i], call) == 0)
			return 1;
	return 0;
}

/* Counts a call; 1 (errno set, the log appended) when it is the one that fails. */
static int
failio_fire(const char *call, const char *target)
{
	char line[PATH_MAX + 200];
	int fd, n, saved = errno;

	if (++failio_count != failio_cur.n || failio_cur.n == 0) {
		errno = saved;
		return 0;
	}
	n = snprintf(line, sizeof(line), "gen=%lu n=%ld pid=%ld call=%s target=%s errno=%d\n",
	    failio_cur.gen, failio_cur.n, (long)getpid(), call, target, failio_cur.err);
	fd = (int)syscall(SYS_openat, AT_FDCWD, failio_log_path,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd != -1) {
		if (syscall(SYS_write, fd, line, (size_t)n) < 0) {
			/* the test sees the missing line */
		}
		syscall(SYS_close, fd);
	}
	errno = failio_cur.err;
	return 1;
}

/* A call on a descriptor: 1 when it must fail now. */
static int
failio_fd(const char *call, int fd)
{
	char target[PATH_MAX];
	int saved = errno;

	if (!failio_on || getpid() != failio_owner)
		return 0;
	failio_reload();
	if (!failio_wants(call, FAILIO_MUT) || !failio_fd_target(fd, target, sizeof(target)) ||
	    !failio_in_prefix(target)) {
		errno = saved;
		return 0;
	}
	errno = saved;
	return failio_fire(call, target);
}

/* A call on a path (dirfd/name): 1 when it must fail now. */
static int
failio_path(const char *call, int dirfd, const char *name, enum failio_class cls, int creating)
{
	char target[PATH_MAX + 256];
	int saved = errno;

	if (!failio_on || getpid() != failio_owner)
		return 0;
	failio_reload();
	if (!failio_wants(call, cls) ||
	    !failio_path_target(dirfd, name, creating, target, sizeof(target)) ||
	    !failio_in_prefix(target)) {
		errno = saved;
		return 0;
	}
	errno = saved;
	return failio_fire(call, target);
}

/* Opens for writing (or creating) change the file system; the others only with "all". */
static enum failio_class
failio_open_class(int flags)
{
	return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0 ? FAILIO_MUT : FAILIO_RO;
}

static mode_t
failio_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

/* The four opens: a mode only when the flags say one was passed. */
static int
failio_open_fails(const char *call, int dirfd, const char *path, int flags)
{
	return failio_path(call, dirfd, path, failio_open_class(flags), (flags & O_CREAT) != 0);
}

int
open(const char *path, int flags, ...)
{
	static int (*real)(const char *, int, ...);
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = failio_mode(flags, ap);
	va_end(ap);
	if (failio_open_fails("open", AT_FDCWD, path, flags))
		return -1;
	if (real == NULL)
		real = failio_next("open");
	return real(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	static int (*real)(const char *, int, ...);
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = failio_mode(flags, ap);
	va_end(ap);
	if (failio_open_fails("open64", AT_FDCWD, path, flags))
		return -1;
	if (real == NULL)
		real = failio_next("open64");
	return real(path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	static int (*real)(int, const char *, int, ...);
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = failio_mode(flags, ap);
	va_end(ap);
	if (failio_open_fails("openat", dirfd, path, flags))
		return -1;
	if (real == NULL)
		real = failio_next("openat");
	return real(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	static int (*real)(int, const char *, int, ...);
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = failio_mode(flags, ap);
	va_end(ap);
	if (failio_open_fails("openat64", dirfd, path, flags))
		return -1;
	if (real == NULL)
		real = failio_next("openat64");
	return real(dirfd, path, flags, mode);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	static ssize_t (*real)(int, const void *, size_t);

	if (failio_fd("write", fd))
		return -1;
	if (real == NULL)
		real = failio_next("write");
	return real(fd, buf, len);
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	static ssize_t (*real)(int, const struct iovec *, int);

	if (failio_fd("writev", fd))
		return -1;
	if (real == NULL)
		real = failio_next("writev");
	return real(fd, iov, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);

	if (failio_fd("pwrite", fd))
		return -1;
	if (real == NULL)
		real = failio_next("pwrite");
	return real(fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off64_t);

	if (failio_fd("pwrite64", fd))
		return -1;
	if (real == NULL)
		real = failio_next("pwrite64");
	return real(fd, buf, len, off);
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (failio_fd("fsync", fd))
		return -1;
	if (real == NULL)
		real = failio_next("fsync");
	return real(fd);
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (failio_fd("fdatasync", fd))
		return -1;
	if (real == NULL)
		real = failio_next("fdatasync");
	return real(fd);
}

int
ftruncate(int fd, off_t len)
{
	static int (*real)(int, off_t);

	if (failio_fd("ftruncate", fd))
		return -1;
	if (real == NULL)
		real = failio_next("ftruncate");
	return real(fd, len);
}

int
ftruncate64(int fd, off64_t len)
{
	static int (*real)(int, off64_t);

	if (failio_fd("ftruncate64", fd))
		return -1;
	if (real == NULL)
		real = failio_next("ftruncate64");
	return real(fd, len);
}

int
fchmod(int fd, mode_t mode)
{
	static int (*real)(int, mode_t);

	if (failio_fd("fchmod", fd))
		return -1;
	if (real == NULL)
		real = failio_next("fchmod");
	return real(fd, mode);
}

int
fchown(int fd, uid_t uid, gid_t gid)
{
	static int (*real)(int, uid_t, gid_t);

	if (failio_fd("fchown", fd))
		return -1;
	if (real == NULL)
		real = failio_next("fchown");
	return real(fd, uid, gid);
}

int
rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);

	if (failio_path("rename", AT_FDCWD, from, FAILIO_MUT, 0))
		return -1;
	if (real == NULL)
		real = failio_next("rename");
	return real(from, to);
}

int
renameat(int fd1, const char *from, int fd2, const char *to)
{
	static int (*real)(int, const char *, int, const char *);

	if (failio_path("renameat", fd1, from, FAILIO_MUT, 0))
		return -1;
	if (real == NULL)
		real = failio_next("renameat");
	return real(fd1, from, fd2, to);
}

int
renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags)
{
	static int (*real)(int, const char *, int, const char *, unsigned int);

	if (failio_path("renameat2", fd1, from, FAILIO_MUT, 0))
		return -1;
	if (real == NULL)
		real = failio_next("renameat2");
	return real(fd1, from, fd2, to, flags);
}

int
link(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);

	if (failio_path("link", AT_FDCWD, to, FAILIO_MUT, 1))
		return -1;
	if (real == NULL)
		real = failio_next("link");
	return real(from, to);
}

int
linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	static int (*real)(int, const char *, int, const char *, int);

	if (failio_path("linkat", fd2, to, FAILIO_MUT, 1))
		return -1;
	if (real == NULL)
		real = failio_next("linkat");
	return real(fd1, from, fd2, to, flags);
}

int
unlink(const char *path)
{
	static int (*real)(const char *);

	if (failio_path("unlink", AT_FDCWD, path, FAILIO_MUT, 0))
		return -1;
	if (real == NULL)
		real = failio_next("unlink");
	return real(path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	static int (*real)(int, const char *, int);

	if (failio_path("unlinkat", dirfd, path, FAILIO_MUT, 0))
		return -1;
	if (real == NULL)
		real = failio_next("unlinkat");
	return real(dirfd, path, flags);
}

int
rmdir(const char *path)
{
	static int (*real)(const char *);

	if (failio_path("rmdir", AT_FDCWD, path, FAILIO_MUT, 0))
		return -1;
	if (real == NULL)
		real = failio_next("rmdir");
	return real(path);
}

int
mkdir(const char *path, mode_t mode)
{
	static int (*real)(const char *, mode_t);

	if (failio_path("mkdir", AT_FDCWD, path, FAILIO_MUT, 1))
		return -1;
	if (real == NULL)
		real = failio_next("mkdir");
	return real(path, mode);
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	static int (*real)(int, const char *, mode_t);

	if (failio_path("mkdirat", dirfd, path, FAILIO_MUT, 1))
		return -1;
	if (real == NULL)
		real = failio_next("mkdirat");
	return real(dirfd, path, mode);
}
