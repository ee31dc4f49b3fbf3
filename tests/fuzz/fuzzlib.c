/* Helpers for the libFuzzer targets; see fuzzlib.h. */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fuzzlib.h"

static char fuzz_dir[256];

static int fuzz_rm_one(const char *, const struct stat *, int, struct FTW *);
static void fuzz_cleanup(void);
static void fuzz_remove_stale(const char *);
void __sanitizer_set_death_callback(void (*)(void));
static int fuzz_copy_one(const char *, const struct stat *, int, struct FTW *);
static void fuzz_client_cb(evutil_socket_t, short, void *);

static const char *fuzz_copy_from, *fuzz_copy_to;

void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz invariant broken: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	fuzz_cleanup();
	abort();
}

static int
fuzz_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) == -1 && errno != ENOENT ? -1 : 0;
}

void
fuzz_rmtree(const char *path)
{
	nftw(path, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
fuzz_cleanup(void)
{
	if (fuzz_dir[0] != '\0')
		fuzz_rmtree(fuzz_dir);
}

/*
 * A run that crashed in a way no handler saw left its directory behind:
 * carotate-fuzz-<pid>-... of a process that no longer exists.
 */
static void
fuzz_remove_stale(const char *root)
{
	char path[512];
	struct dirent *de;
	long pid;
	DIR *d;

	if ((d = opendir(root)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, "carotate-fuzz-%ld-", &pid) != 1 || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		fuzz_rmtree(fuzz_path(path, sizeof(path), root, de->d_name));
	}
	closedir(d);
}

/* /dev/shm keeps the many small writes of a run off the disk. */
const char *
fuzz_tmpdir(const char *name)
{
	const char *roots[] = { "/dev/shm", getenv("TMPDIR"), "/tmp" };
	size_t i;

	if (fuzz_dir[0] != '\0')
		return fuzz_dir;
	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		if (roots[i] == NULL || access(roots[i], W_OK) == -1)
			continue;
		fuzz_remove_stale(roots[i]);
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/carotate-fuzz-%ld-%s-XXXXXX", roots[i],
		    (long)getpid(), name);
		if (mkdtemp(fuzz_dir) != NULL) {
			atexit(fuzz_cleanup);
			__sanitizer_set_death_callback(fuzz_cleanup);
			return fuzz_dir;
		}
	}
	fuzz_fail("cannot make a scratch directory: %s", strerror(errno));
}

char *
fuzz_path(char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len)
		fuzz_fail("path too long: %s/%s", dir, name);
	return buf;
}

void
fuzz_write_file(const char *path, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		fuzz_fail("open %s: %s", path, strerror(errno));
	while (len > 0) {
		if ((n = write(fd, p, len)) == -1)
			fuzz_fail("write %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) == -1)
		fuzz_fail("close %s: %s", path, strerror(errno));
}

size_t
fuzz_split(const uint8_t *data, size_t size, struct fuzz_field *f, size_t max)
{
	size_t n = 0;
	const uint8_t *sep;

	memset(f, 0, max * sizeof(*f));
	while (n < max) {
		f[n].p = data;
		if (n == max - 1 || (sep = memmem(data, size, FUZZ_SEP, FUZZ_SEP_LEN)) == NULL) {
			f[n++].len = size;
			break;
		}
		f[n].len = (size_t)(sep - data);
		size -= f[n].len + FUZZ_SEP_LEN;
		data = sep + FUZZ_SEP_LEN;
		n++;
	}
	return n;
}

void
fuzz_copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) == -1)
		fuzz_fail("copy %s: %s", from, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			fuzz_fail("write %s: %s", to, strerror(errno));
	if (n == -1 || fchmod(out, mode) == -1)
		fuzz_fail("copy %s: %s", from, strerror(errno));
	close(in);
	close(out);
}

static int
fuzz_copy_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char dst[1024], link[1024];
	ssize_t n;

	fuzz_path(dst, sizeof(dst), fuzz_copy_to, path + strlen(fuzz_copy_from));
	switch (type) {
	case FTW_D:
		if (mkdir(dst, st->st_mode & 07777) == -1 && errno != EEXIST)
			fuzz_fail("mkdir %s: %s", dst, strerror(errno));
		chmod(dst, st->st_mode & 07777);
		break;
	case FTW_F:
		fuzz_copy_file(path, dst, st->st_mode & 07777);
		break;
	case FTW_SL:
		if ((n = readlink(path, link, sizeof(link) - 1)) == -1)
			fuzz_fail("readlink %s: %s", path, strerror(errno));
		link[n] = '\0';
		if (symlink(link, dst) == -1)
			fuzz_fail("symlink %s: %s", dst, strerror(errno));
		break;
	default:
		fuzz_fail("cannot copy %s (type %d)", path, type);
	}
	return 0;
}

void
fuzz_copytree(const char *from, const char *to)
{
	fuzz_copy_from = from;
	fuzz_copy_to = to;
	if (nftw(from, fuzz_copy_one, 16, FTW_PHYS) == -1)
		fuzz_fail("copy %s: %s", from, strerror(errno));
}

void
fuzz_client_start(
    struct fuzz_client *c, struct event_base *base, int fd, const void *data, size_t len)
{
	*c = (struct fuzz_client){ .fd = fd };
	c->out = evbuffer_new();
	c->in = evbuffer_new();
	c->ev = event_new(base, fd, EV_READ | EV_WRITE | EV_PERSIST, fuzz_client_cb, c);
	if (c->out == NULL || c->in == NULL || c->ev == NULL)
		fuzz_fail("out of memory");
	evbuffer_add(c->out, data, len);
	event_add(c->ev, NULL);
}

void
fuzz_client_close(struct fuzz_client *c)
{
	event_free(c->ev);
	close(c->fd);
	evbuffer_free(c->out);
	evbuffer_free(c->in);
}

/* Sends what is left, then EOF; collects answers until the other side closes. */
static void
fuzz_client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_client *c = arg;
	int n;

	if ((what & EV_WRITE) && !c->shut) {
		if (evbuffer_get_length(c->out) > 0 && evbuffer_write(c->out, fd) == -1 &&
		    errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
			fuzz_fail("client write: %s", strerror(errno));
		if (evbuffer_get_length(c->out) == 0 || errno == EPIPE || errno == ECONNRESET) {
			shutdown(fd, SHUT_WR);
			c->shut = 1;
			event_del(c->ev);
			event_assign(c->ev, event_get_base(c->ev), fd, EV_READ | EV_PERSIST,
			    fuzz_client_cb, c);
			event_add(c->ev, NULL);
		}
	}
	if (what & EV_READ) {
		while ((n = evbuffer_read(c->in, fd, 65536)) > 0)
			;
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			c->done = 1;
			event_del(c->ev);
		}
	}
}
