/* A pool member's secret files (poolfiles.h): the DSN file and the pool key. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "poolfiles.h"

#define POOLFILES_KEY_HEX (2 * POOLFILES_KEY_LEN)

static int poolfiles_fail(char *, size_t, const char *, const char *, ...)
    __attribute__((format(printf, 4, 5)));
static int poolfiles_slurp(const char *, char *, size_t, size_t *, char *, size_t);
static int poolfiles_check_fd(int, const char *, size_t, char *, size_t);
static int poolfiles_read_all(int, const char *, char *, size_t, size_t *, char *, size_t);
static int poolfiles_one_line(const char *, char *, size_t, char *, size_t);
static int poolfiles_check_dsn(const char *, const char *, char *, size_t);
static int poolfiles_check_hosts(const char *, PQconninfoOption *, char *, size_t);
static const char *poolfiles_option(PQconninfoOption *, const char *);
static void poolfiles_wipe_options(PQconninfoOption *);
static int poolfiles_hex(char);

int
poolfiles_read_dsn(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
	size_t n;

	if (len < POOLFILES_MAX_DSN + 1)
		return poolfiles_fail(err, errlen, path, "internal error: DSN buffer too small");
	if (poolfiles_slurp(path, buf, POOLFILES_MAX_DSN, &n, err, errlen) == -1 ||
	    poolfiles_one_line(path, buf, n, err, errlen) == -1 ||
	    poolfiles_check_dsn(path, buf, err, errlen) == -1) {
		explicit_bzero(buf, len);
		return -1;
	}
	return 0;
}

int
poolfiles_read_key(const char *path, uint8_t key[POOLFILES_KEY_LEN], char *err, size_t errlen)
{
	char hex[POOLFILES_KEY_HEX + 2];
	size_t n, i;
	int hi, lo, rc = -1;

	if (poolfiles_slurp(path, hex, sizeof(hex) - 1, &n, err, errlen) == -1)
		goto out;
	if (n == POOLFILES_KEY_HEX + 1 && hex[POOLFILES_KEY_HEX] == '\n')
		n--;
	if (n != POOLFILES_KEY_HEX) {
		poolfiles_fail(err, errlen, path,
		    "not a pool key: expected 64 hexadecimal digits and at most a newline "
		    "(make one with: openssl rand -hex 32)");
		goto out;
	}
	for (i = 0; i < POOLFILES_KEY_LEN; i++) {
		if ((hi = poolfiles_hex(hex[2 * i])) < 0 ||
		    (lo = poolfiles_hex(hex[2 * i + 1])) < 0) {
			poolfiles_fail(err, errlen, path,
			    "not a pool key: a character that is not a hexadecimal digit");
			goto out;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	rc = 0;
out:
	explicit_bzero(hex, sizeof(hex));
	if (rc == -1)
		explicit_bzero(key, POOLFILES_KEY_LEN);
	return rc;
}

static int
poolfiles_fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", path, msg);
	return -1;
}

/*
 * Reads at most max bytes of path into buf (max + 1 bytes) after checking what the file is.
 * O_NONBLOCK: a FIFO put there cannot hang the start; it is then refused as not regular.
 */
static int
poolfiles_slurp(const char *path, char *buf, size_t max, size_t *n, char *err, size_t errlen)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1 && errno == ELOOP)
		return poolfiles_fail(
		    err, errlen, path, "is a symbolic link; name the file itself");
	if (fd == -1)
		return poolfiles_fail(err, errlen, path, "cannot open: %s", strerror(errno));
	rc = poolfiles_check_fd(fd, path, max, err, errlen);
	if (rc == 0)
		rc = poolfiles_read_all(fd, path, buf, max, n, err, errlen);
	close(fd);
	return rc;
}

/* Only root may have written a secret the daemon trusts, and only root may read it. */
static int
poolfiles_check_fd(int fd, const char *path, size_t max, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return poolfiles_fail(err, errlen, path, "cannot stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return poolfiles_fail(err, errlen, path, "not a regular file");
	if (st.st_uid != 0)
		return poolfiles_fail(err, errlen, path,
		    "owned by uid %lu, not root (chown root: %s)", (unsigned long)st.st_uid, path);
	if ((st.st_mode & 07177) != 0)
		return poolfiles_fail(err, errlen, path,
		    "mode %04o; it must be 0600 or stricter (chmod 0600 %s)",
		    (unsigned)(st.st_mode & 07777), path);
	if ((uint64_t)st.st_size > max)
		return poolfiles_fail(err, errlen, path, "too large (%lld bytes, at most %zu)",
		    (long long)st.st_size, max);
	return 0;
}

/* The whole file, and one byte more when it grew since fstat: then it is too large. */
static int
poolfiles_read_all(
    int fd, const char *path, char *buf, size_t max, size_t *n, char *err, size_t errlen)
{
	ssize_t r;

	*n = 0;
	while (*n <= max) {
		r = read(fd, buf + *n, max + 1 - *n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return poolfiles_fail(
			    err, errlen, path, "cannot read: %s", strerror(errno));
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	if (*n > max)
		return poolfiles_fail(err, errlen, path, "too large (more than %zu bytes)", max);
	buf[*n] = '\0';
	return 0;
}

/* One line: a final newline is dropped; any other line break or a NUL is refused. */
static int
poolfiles_one_line(const char *path, char *buf, size_t n, char *err, size_t errlen)
{
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n == 0)
		return poolfiles_fail(err, errlen, path, "empty: it must hold a connection string");
	if (strlen(buf) != n)
		return poolfiles_fail(err, errlen, path, "holds a NUL byte");
	if (strpbrk(buf, "\r\n") != NULL)
		return poolfiles_fail(err, errlen, path, "more than one line");
	return 0;
}

/*
 * libpq's own parser decides what the string means; its message may quote the string (and
 * a password in it), so only our words reach the operator.
 */
static int
poolfiles_check_dsn(const char *path, const char *dsn, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char *pqerr = NULL;
	int rc;

	if ((opts = PQconninfoParse(dsn, &pqerr)) == NULL) {
		if (pqerr != NULL) {
			explicit_bzero(pqerr, strlen(pqerr));
			PQfreemem(pqerr);
		}
		return poolfiles_fail(err, errlen, path,
		    "not a libpq connection string (libpq cannot parse it; its contents are not "
		    "shown, they may hold a password)");
	}
	rc = poolfiles_check_hosts(path, opts, err, errlen);
	poolfiles_wipe_options(opts);
	PQconninfoFree(opts);
	return rc;
}

/*
 * Without sslmode=verify-full, the password and every ledger row may only travel over a
 * Unix socket: each host must be a socket directory, and nothing may supply a network
 * address instead (hostaddr, a service file's entry) or leave the host to the environment.
 */
static int
poolfiles_check_hosts(const char *path, PQconninfoOption *opts, char *err, size_t errlen)
{
	const char *host = poolfiles_option(opts, "host"), *v, *p;

	if ((v = poolfiles_option(opts, "sslmode")) != NULL && strcmp(v, "verify-full") == 0)
		return 0;
	if (poolfiles_option(opts, "hostaddr") != NULL)
		return poolfiles_fail(err, errlen, path,
		    "hostaddr connects over the network: set sslmode=verify-full");
	if (poolfiles_option(opts, "service") != NULL)
		return poolfiles_fail(err, errlen, path,
		    "service may name a network host: name the socket directory in host, or set "
		    "sslmode=verify-full");
	if (host == NULL)
		return poolfiles_fail(err, errlen, path,
		    "names no host: name the server's socket directory (host=/run/postgresql), or "
		    "set sslmode=verify-full for a network host");
	for (p = host;; p++) {
		if (*p != '/')
			return poolfiles_fail(err, errlen, path,
			    "a host is not a Unix socket directory (a path starting with '/'): a "
			    "network host needs sslmode=verify-full");
		if ((p = strchr(p, ',')) == NULL)
			return 0;
	}
}

/* The value of a keyword the string set, NULL when it did not set it or left it empty. */
static const char *
poolfiles_option(PQconninfoOption *opts, const char *keyword)
{
	for (; opts->keyword != NULL; opts++) {
		if (strcmp(opts->keyword, keyword) == 0)
			return opts->val != NULL && opts->val[0] != '\0' ? opts->val : NULL;
	}
	return NULL;
}

/* libpq frees the parsed values without wiping them, the password among them. */
static void
poolfiles_wipe_options(PQconninfoOption *opts)
{
	for (; opts->keyword != NULL; opts++) {
		if (opts->val != NULL)
			explicit_bzero(opts->val, strlen(opts->val));
	}
}

static int
poolfiles_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
