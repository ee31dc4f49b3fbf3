/*
 * agentsim: a fleet of simulated carotate agents (carotate-protocol(7) AGENT PROTOCOL), for the end-to-end tests,
 * `make demo` and the benchmarks.
 *
 * Every agent has its own state directory DIR/<id>/ holding trust.pem (the CAs it trusts),
 * token and etag (the id of the bundle it holds). It talks to nginx exactly like a real
 * agent: a fresh TCP connection and a full TLS handshake per request (no session
 * resumption), SNI = --server-name, the server certificate verified against the agent's
 * own trust.pem with host name (or IP) verification; then HTTP/1.1:
 *
 *   POST /carotate/v1/link        Authorization: Bearer <linking key>, X-Agent-Id
 *        -> 200, X-Agent-Token, ETag, the PEM bundle (stored: trust.pem, token, etag)
 *   GET  /carotate/v1/ca-bundle   Authorization: Bearer <token>, X-Agent-Id, If-None-Match
 *        -> 304 (current) or 200 + bundle + ETag (trust.pem and etag replaced)
 *
 * A failed certificate verification is "untrusted server certificate": the outage that a
 * careless CA rotation causes, and that carotate exists to prevent.
 *
 * Single file, OpenSSL 3 only. Build:
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o agentsim agentsim.c -lssl -lcrypto -lpthread
 * Usage: agentsim --help, and tests/agentsim/README.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define AGENTSIM_VERSION "1"
#define ID_MAX           64
#define HEX64            64
#define MAX_RESPONSE     (1024 * 1024) /* a response larger than this is a protocol error */
#define MAX_FILE         (1024 * 1024)
#define MAX_MESSAGES     20 /* failure lines printed without --verbose */
#define STORE_CACHE      64

/* ------------------------------------------------------------------ options */

static struct {
	const char *host;
	const char *server_name;
	const char *dir;
	const char *prefix;
	const char *initial_ca;
	const char *linking_key_file;
	int port;
	int canary_port;
	unsigned agents;
	unsigned first;
	unsigned stale;
	unsigned offline;
	unsigned never_update;
	unsigned rounds;
	unsigned canary_every;
	unsigned concurrency;
	unsigned interval_ms;
	unsigned duration_ms; /* 0: run every round */
	unsigned timeout_ms;
	int link;
	int report;
	int expect_all_ok;
	int verbose;
	int quiet;
	int do_fsync;
} opt = {
	.host = "127.0.0.1",
	.prefix = "sim-",
	.agents = 1,
	.rounds = 1,
	.concurrency = 16,
	.timeout_ms = 10000,
};

/* Filled once at start. */
static struct sockaddr_storage main_addr, canary_addr;
static socklen_t main_addrlen, canary_addrlen;
static int server_name_is_ip;
static SSL_CTX *ssl_ctx;
static char *linking_key;
static char *initial_ca_pem;
static size_t initial_ca_len;

/* ------------------------------------------------------------------ agents and results */

enum role { ROLE_NORMAL, ROLE_NEVER_UPDATE, ROLE_STALE, ROLE_OFFLINE };

struct agent {
	char id[ID_MAX + 1];
	enum role role;
	int last_status; /* HTTP status of its last check-in, 0 = none */
	int current;     /* its last check-in presented the current bundle id (304) */
	int failed;      /* any failure in this run */
};

static struct agent *agents;

/* Failure kinds, counted per listener. */
enum failure {
	F_NONE,
	F_CONNECT,   /* TCP connect refused / unreachable */
	F_UNTRUSTED, /* the server certificate did not verify against the agent's trust store */
	F_TLS,       /* any other handshake failure */
	F_TIMEOUT,   /* no answer in time */
	F_IO,        /* the connection broke */
	F_PROTOCOL,  /* a malformed answer: headers, ETag, token, bundle */
	F_LOCAL,     /* the agent's own files */
	F_N
};
static const char *const failure_names[F_N] = { "none", "connect", "untrusted", "tls", "timeout",
	"io", "protocol", "local" };

/* Per-thread statistics, merged at the end (no locks in the hot path). */
struct stats {
	uint64_t link_attempts, linked;
	uint64_t checkins, checked_in, canary_checkins, canary_checked_in;
	uint64_t updated, refused_updates, unlinked;
	uint64_t status[600], status_other;
	uint64_t failures[F_N];
	uint64_t expected_failures; /* never-update agents refused by the canary listener */
	uint64_t handshakes;
	uint32_t *lat_us;
	size_t nlat, cap_lat;
};

static atomic_uint next_agent;
static atomic_uint messages_printed;
static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;

static void usage(FILE *f);
static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...);

static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "agentsim: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One failure line on stderr (the first MAX_MESSAGES unless --verbose). */
static void __attribute__((format(printf, 2, 3)))
agent_msg(const struct agent *a, const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	if (opt.quiet)
		return;
	if (!opt.verbose && atomic_fetch_add(&messages_printed, 1) >= MAX_MESSAGES) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "agentsim: %s: %s\n", a->id, buf);
}

/* ------------------------------------------------------------------ small helpers */

static int
is_hex64(const char *s, size_t n)
{
	size_t i;

	if (n != HEX64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
valid_id(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. -1 with errno. */
static int
read_file(const char *path, char **out, size_t *lenp, size_t max)
{
	size_t len = 0, cap = 4096;
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	if ((buf = malloc(cap + 1)) == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		if (len == cap) {
			char *nb;

			if (cap >= max) {
				free(buf);
				close(fd);
				errno = EFBIG;
				return -1;
			}
			cap *= 2;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				close(fd);
				errno = ENOMEM;
				return -1;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			int e = errno;

			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	if (lenp != NULL)
		*lenp = len;
	return 0;
}

/* Writes dir/name atomically: a temporary file in dir, (fsync,) rename. -1 with errno. */
static int
write_file_atomic(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	const char *p = data;
	size_t off = 0;
	ssize_t n;
	int fd, e;

	if (snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd == -1)
		return -1;
	while (off < len) {
		n = write(fd, p + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		off += (size_t)n;
	}
	if (opt.do_fsync && fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) == -1)
		goto fail;
	return 0;
fail:
	e = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}

/* Reads a small one-line file (token, etag): trimmed into out. 0, or -1 (absent/invalid). */
static int
read_line_file(const char *dir, const char *name, char *out, size_t outlen)
{
	char path[PATH_MAX], *buf;
	size_t len;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -1;
	if (read_file(path, &buf, &len, 4096) == -1)
		return -1;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
	                      buf[len - 1] == '\t'))
		buf[--len] = '\0';
	if (len == 0 || len >= outlen) {
		free(buf);
		return -1;
	}
	memcpy(out, buf, len + 1);
	free(buf);
	return 0;
}

static void
stats_latency(struct stats *st, uint64_t us)
{
	if (st->nlat == st->cap_lat) {
		size_t cap = st->cap_lat ? st->cap_lat * 2 : 1024;
		uint32_t *n = realloc(st->lat_us, cap * sizeof(*n));

		if (n == NULL)
			return;
		st->lat_us = n;
		st->cap_lat = cap;
	}
	st->lat_us[st->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* ------------------------------------------------------------------ certificates */

/* DER blobs, for the bundle id. */
struct der {
	unsigned char *p;
	int len;
};

static int
der_cmp(const void *a, const void *b)
{
	const struct der *x = a, *y = b;
	int c = memcmp(x->p, y->p, (size_t)(x->len < y->len ? x->len : y->len));

	if (c == 0)
		c = (x->len > y->len) - (x->len < y->len);
	return c;
}

/*
 * Parses a PEM bundle: every certificate must parse and be a CA. Computes its id (the
 * SHA-256 of the certificates' DER, sorted, concatenated: carotate-protocol(7) AGENT PROTOCOL) into id (65 bytes).
 * Returns the number of certificates, or -1 with why filled.
 */
static int
bundle_parse(const char *pem, size_t len, char id[HEX64 + 1], char *why, size_t whylen)
{
	static const char hexd[] = "0123456789abcdef";
	struct der ders[64];
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	int n = 0, i, ok = -1;
	X509 *x;
	BIO *bio;

	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (n == (int)(sizeof(ders) / sizeof(ders[0]))) {
			X509_free(x);
			snprintf(why, whylen, "more than %d certificates", n);
			goto out;
		}
		if (X509_check_ca(x) < 1) {
			X509_free(x);
			snprintf(why, whylen, "certificate %d is not a CA", n + 1);
			goto out;
		}
		ders[n].p = NULL;
		ders[n].len = i2d_X509(x, &ders[n].p);
		X509_free(x);
		if (ders[n].len <= 0) {
			snprintf(why, whylen, "cannot encode certificate %d", n + 1);
			goto out;
		}
		n++;
	}
	/* The loop ends at the end of the text, or at something that is not a certificate. */
	{
		unsigned long e = ERR_peek_last_error();

		if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
			ERR_clear_error();
		else if (e != 0) {
			snprintf(why, whylen, "bad PEM after certificate %d: %s", n,
			    ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?");
			ERR_clear_error();
			goto out;
		}
	}
	if (n == 0) {
		snprintf(why, whylen, "no certificate in the bundle");
		goto out;
	}
	qsort(ders, (size_t)n, sizeof(ders[0]), der_cmp);
	if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		snprintf(why, whylen, "sha256 unavailable");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (EVP_DigestUpdate(ctx, ders[i].p, (size_t)ders[i].len) != 1)
			goto out;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	for (i = 0; i < 32; i++) {
		id[2 * i] = hexd[md[i] >> 4];
		id[2 * i + 1] = hexd[md[i] & 15];
	}
	id[HEX64] = '\0';
	ok = n;
out:
	for (i = 0; i < n; i++)
		OPENSSL_free(ders[i].p);
	EVP_MD_CTX_free(ctx);
	BIO_free(bio);
	return ok;
}

/*
 * The X509_STORE of a trust store's text. Stores are cached by the SHA-256 of the file's
 * bytes: agents holding identical files verify against identical stores, so sharing one is
 * exactly equivalent to building one per agent, and far cheaper with a thousand agents.
 * Returns a new reference, or NULL with why filled.
 */
static struct {
	unsigned char key[32];
	X509_STORE *store;
} store_cache[STORE_CACHE];
static size_t store_cache_n;

static X509_STORE *
trust_store(const char *pem, size_t len, char *why, size_t whylen)
{
	unsigned char key[32];
	X509_STORE *st = NULL;
	size_t i;
	int n = 0;
	X509 *x;
	BIO *bio;

	if (EVP_Digest(pem, len, key, NULL, EVP_sha256(), NULL) != 1) {
		snprintf(why, whylen, "sha256 unavailable");
		return NULL;
	}
	pthread_mutex_lock(&store_lock);
	for (i = 0; i < store_cache_n; i++) {
		if (memcmp(store_cache[i].key, key, 32) == 0) {
			st = store_cache[i].store;
			X509_STORE_up_ref(st);
			pthread_mutex_unlock(&store_lock);
			return st;
		}
	}
	pthread_mutex_unlock(&store_lock);

	if ((st = X509_STORE_new()) == NULL || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		X509_STORE_free(st);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) != 1) {
			unsigned long e = ERR_peek_last_error();

			/* The same CA twice in a file is harmless. */
			if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
				X509_free(x);
				break;
			}
		}
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	if (n == 0) {
		X509_STORE_free(st);
		snprintf(why, whylen, "no certificate in trust.pem");
		return NULL;
	}
	pthread_mutex_lock(&store_lock);
	if (store_cache_n < STORE_CACHE) {
		memcpy(store_cache[store_cache_n].key, key, 32);
		store_cache[store_cache_n].store = st;
		X509_STORE_up_ref(st);
		store_cache_n++;
	}
	pthread_mutex_unlock(&store_lock);
	return st;
}

/* ------------------------------------------------------------------ TLS and HTTP */

struct response {
	int status;
	char etag[HEX64 + 1]; /* unquoted; "" when absent */
	int etag_bad;         /* present but not "<64 hex>" */
	char token[HEX64 + 1];
	int token_bad;
	char *raw;  /* the whole response */
	char *body; /* into raw (or a decoded copy, for chunked) */
	size_t body_len;
	char *chunked_body;
};

static void
response_free(struct response *r)
{
	free(r->raw);
	free(r->chunked_body);
	memset(r, 0, sizeof(*r));
}

static int
set_timeouts(int fd, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	               setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1
	           ? -1
	           : 0;
}

/* TCP connect with a time limit; the socket is blocking with I/O timeouts afterwards. */
static int
tcp_connect(
    const struct sockaddr_storage *sa, socklen_t salen, enum failure *fk, char *why, size_t whylen)
{
	struct pollfd pfd;
	int fd, flags, err = 0, one = 1, r;
	socklen_t errlen = sizeof(err);

	if ((fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		*fk = F_LOCAL;
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, salen) == -1) {
		if (errno != EINPROGRESS) {
			err = errno;
			goto fail;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			r = poll(&pfd, 1, (int)opt.timeout_ms);
		while (r == -1 && errno == EINTR);
		if (r == 0) {
			close(fd);
			*fk = F_TIMEOUT;
			snprintf(why, whylen, "connect: timed out");
			return -1;
		}
		if (r == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) == -1)
			err = errno;
		if (err != 0)
			goto fail;
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1 ||
	    set_timeouts(fd, opt.timeout_ms) == -1) {
		err = errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	*fk = F_CONNECT;
	snprintf(why, whylen, "connect: %s", strerror(err));
	return -1;
}

/* The last OpenSSL error as text (the queue is per thread). */
static void
ssl_error_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "%s", errno ? strerror(errno) : "connection closed");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/*
 * Connects to the listener and completes a full TLS handshake, verifying the server's
 * certificate against store for --server-name. Returns the SSL (its fd inside), or NULL
 * with the failure kind and text.
 */
static SSL *
tls_open(int canary, X509_STORE *store, enum failure *fk, char *why, size_t whylen)
{
	const struct sockaddr_storage *sa = canary ? &canary_addr : &main_addr;
	socklen_t salen = canary ? canary_addrlen : main_addrlen;
	X509_VERIFY_PARAM *vp;
	char err[256];
	long vr;
	SSL *ssl;
	int fd, r;

	if ((fd = tcp_connect(sa, salen, fk, why, whylen)) == -1)
		return NULL;
	if ((ssl = SSL_new(ssl_ctx)) == NULL) {
		close(fd);
		*fk = F_LOCAL;
		snprintf(why, whylen, "SSL_new failed");
		return NULL;
	}
	vp = SSL_get0_param(ssl);
	if (SSL_set1_verify_cert_store(ssl, store) != 1 || SSL_set_fd(ssl, fd) != 1 ||
	    (server_name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, opt.server_name) != 1
	                       : (SSL_set_tlsext_host_name(ssl, opt.server_name) != 1 ||
	                             SSL_set1_host(ssl, opt.server_name) != 1))) {
		SSL_free(ssl);
		close(fd);
		*fk = F_LOCAL;
		snprintf(why, whylen, "cannot set up the TLS connection");
		return NULL;
	}
	if (!server_name_is_ip)
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	errno = 0;
	if ((r = SSL_connect(ssl)) != 1) {
		int se = SSL_get_error(ssl, r), e = errno;

		vr = SSL_get_verify_result(ssl);
		if (vr != X509_V_OK) {
			*fk = F_UNTRUSTED;
			snprintf(why, whylen, "untrusted server certificate: %s",
			    X509_verify_cert_error_string(vr));
			ERR_clear_error();
		} else if (se == SSL_ERROR_SYSCALL && (e == EAGAIN || e == EWOULDBLOCK)) {
			*fk = F_TIMEOUT;
			snprintf(why, whylen, "TLS handshake: timed out");
			ERR_clear_error();
		} else {
			*fk = F_TLS;
			ssl_error_text(err, sizeof(err));
			snprintf(why, whylen, "TLS handshake failed: %s", err);
		}
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	/* Belt and braces: SSL_VERIFY_PEER already failed the handshake otherwise. */
	if ((vr = SSL_get_verify_result(ssl)) != X509_V_OK ||
	    SSL_get0_peer_certificate(ssl) == NULL) {
		*fk = F_UNTRUSTED;
		snprintf(why, whylen, "untrusted server certificate: %s",
		    X509_verify_cert_error_string(vr));
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	return ssl;
}

static void
tls_close(SSL *ssl)
{
	int fd = SSL_get_fd(ssl);

	SSL_shutdown(ssl); /* our close_notify; no need to wait for nginx's */
	ERR_clear_error();
	SSL_free(ssl);
	if (fd != -1)
		close(fd);
}

/* Case-insensitive header lookup in [p, end): the value, trimmed, in val (NUL-terminated). */
static int
header_value(const char *hdrs, size_t hlen, const char *name, char *val, size_t vallen)
{
	const char *p = hdrs, *end = hdrs + hlen, *eol, *colon, *v, *ve;
	size_t nl = strlen(name);

	/* Skip the status line. */
	if ((eol = memmem(p, (size_t)(end - p), "\r\n", 2)) == NULL)
		return -1;
	p = eol + 2;
	while (p < end) {
		if ((eol = memmem(p, (size_t)(end - p), "\r\n", 2)) == NULL)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon != NULL && (size_t)(colon - p) == nl && strncasecmp(p, name, nl) == 0) {
			v = colon + 1;
			ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if ((size_t)(ve - v) >= vallen)
				return -2;
			memcpy(val, v, (size_t)(ve - v));
			val[ve - v] = '\0';
			return 0;
		}
		p = eol + 2;
	}
	return -1;
}

/*
 * Decodes a chunked body in [p, end). Returns 1 when complete (out filled, malloc'd), 0
 * when more bytes are needed, -1 when malformed.
 */
static int
dechunk(const char *p, const char *end, char **out, size_t *outlen)
{
	size_t len = 0, cap = 4096;
	char *buf, *nb, *q;
	unsigned long n;

	if ((buf = malloc(cap)) == NULL)
		return -1;
	for (;;) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (eol == NULL) {
			free(buf);
			return 0;
		}
		errno = 0;
		n = strtoul(p, &q, 16);
		if (q == p || errno != 0 || n > MAX_RESPONSE) {
			free(buf);
			return -1;
		}
		p = eol + 2;
		if (n == 0) {
			/* No trailers expected: the final CRLF. */
			if (end - p < 2) {
				free(buf);
				return 0;
			}
			*out = buf;
			*outlen = len;
			return 1;
		}
		if ((size_t)(end - p) < n + 2) {
			free(buf);
			return 0;
		}
		if (len + n > cap) {
			while (len + n > cap)
				cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return -1;
			}
			buf = nb;
		}
		memcpy(buf + len, p, n);
		len += n;
		p += n + 2;
	}
}

/*
 * Sends req and reads one response (Content-Length, chunked, or until EOF). 0, or -1 with
 * the failure kind and text.
 */
static int
http_exchange(SSL *ssl, const char *req, size_t reqlen, struct response *resp, enum failure *fk,
    char *why, size_t whylen)
{
	size_t len = 0, cap = 8192, hlen = 0;
	char *buf, val[256], err[256];
	const char *hend = NULL;
	long long clen = -1;
	int chunked = 0, r, se, done = 0;

	memset(resp, 0, sizeof(*resp));
	errno = 0;
	if ((r = SSL_write(ssl, req, (int)reqlen)) != (int)reqlen) {
		se = SSL_get_error(ssl, r);
		*fk = (se == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
		          ? F_TIMEOUT
		          : F_IO;
		ssl_error_text(err, sizeof(err));
		snprintf(why, whylen, "sending the request: %s", err);
		return -1;
	}
	if ((buf = malloc(cap + 1)) == NULL) {
		*fk = F_LOCAL;
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	while (!done) {
		if (len == cap) {
			char *nb;

			if (cap >= MAX_RESPONSE) {
				free(buf);
				*fk = F_PROTOCOL;
				snprintf(
				    why, whylen, "response larger than %d bytes", MAX_RESPONSE);
				return -1;
			}
			cap *= 2;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				*fk = F_LOCAL;
				snprintf(why, whylen, "out of memory");
				return -1;
			}
			buf = nb;
		}
		errno = 0;
		r = SSL_read(ssl, buf + len, (int)(cap - len));
		if (r <= 0) {
			se = SSL_get_error(ssl, r);
			if (se == SSL_ERROR_ZERO_RETURN ||
			    (se == SSL_ERROR_SSL && hend != NULL && clen < 0 && !chunked)) {
				/* EOF: the end of a body without length (unexpected EOF tolerated).
				 */
				ERR_clear_error();
				if (hend == NULL || clen >= 0 || chunked)
					break; /* incomplete: checked below */
				done = 1;
				break;
			}
			if (se == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				free(buf);
				ERR_clear_error();
				*fk = F_TIMEOUT;
				snprintf(why, whylen, "no response within %u ms", opt.timeout_ms);
				return -1;
			}
			if (hend != NULL && clen < 0 && !chunked) {
				ERR_clear_error();
				done = 1;
				break;
			}
			free(buf);
			ssl_error_text(err, sizeof(err));
			*fk = F_IO;
			snprintf(why, whylen, "reading the response: %s", err);
			return -1;
		}
		len += (size_t)r;
		buf[len] = '\0';
		if (hend == NULL) {
			const char *e = memmem(buf, len, "\r\n\r\n", 4);

			if (e == NULL)
				continue;
			hend = e + 4;
			hlen = (size_t)(e - buf) + 2;
			if (sscanf(buf, "HTTP/1.%*1[01] %3d", &resp->status) != 1 ||
			    resp->status < 100 || resp->status > 599) {
				free(buf);
				*fk = F_PROTOCOL;
				snprintf(why, whylen, "not an HTTP/1.x status line");
				return -1;
			}
			if (header_value(buf, hlen, "Transfer-Encoding", val, sizeof(val)) == 0 &&
			    strcasecmp(val, "chunked") == 0)
				chunked = 1;
			else if (header_value(buf, hlen, "Content-Length", val, sizeof(val)) == 0) {
				char *q;

				errno = 0;
				clen = strtoll(val, &q, 10);
				if (*q != '\0' || errno != 0 || clen < 0 || clen > MAX_RESPONSE) {
					free(buf);
					*fk = F_PROTOCOL;
					snprintf(why, whylen, "bad Content-Length: %s", val);
					return -1;
				}
			} else if (resp->status == 304 || resp->status == 204 || resp->status < 200)
				clen = 0;
		}
		if (hend != NULL) {
			size_t have = len - (size_t)(hend - buf);

			if (chunked) {
				int c =
				    dechunk(hend, buf + len, &resp->chunked_body, &resp->body_len);

				if (c == -1) {
					free(buf);
					*fk = F_PROTOCOL;
					snprintf(why, whylen, "bad chunked encoding");
					return -1;
				}
				done = c == 1;
			} else if (clen >= 0 && have >= (size_t)clen)
				done = 1;
		}
	}
	if (!done) {
		free(buf);
		*fk = hend == NULL ? F_IO : F_PROTOCOL;
		snprintf(why, whylen, "%s",
		    hend == NULL ? "connection closed before a response"
		                 : "connection closed in the body");
		return -1;
	}
	resp->raw = buf;
	if (chunked)
		resp->body = resp->chunked_body;
	else {
		resp->body = (char *)hend;
		resp->body_len = clen >= 0 ? (size_t)clen : len - (size_t)(hend - buf);
	}
	if (header_value(buf, hlen, "ETag", val, sizeof(val)) == 0) {
		size_t n = strlen(val);

		if (n == HEX64 + 2 && val[0] == '"' && val[n - 1] == '"' &&
		    is_hex64(val + 1, HEX64)) {
			memcpy(resp->etag, val + 1, HEX64);
			resp->etag[HEX64] = '\0';
		} else
			resp->etag_bad = 1;
	}
	if (header_value(buf, hlen, "X-Agent-Token", val, sizeof(val)) == 0) {
		if (is_hex64(val, strlen(val)))
			memcpy(resp->token, val, HEX64 + 1);
		else
			resp->token_bad = 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ one agent */

struct worker {
	struct stats st;
	int phase_canary; /* this phase's check-ins go to the canary listener */
	int phase_link;   /* this phase links */
};

static int
agent_dir(const struct agent *a, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/%s", opt.dir, a->id) < (int)len ? 0 : -1;
}

/*
 * The agent's trust store: its trust.pem, or --initial-ca while it has none (an agent
 * that never linked; the file is written when it links). NULL with why.
 */
static X509_STORE *
agent_store(const char *dir, char *why, size_t whylen)
{
	char path[PATH_MAX], *pem;
	X509_STORE *st;
	size_t len;

	if (snprintf(path, sizeof(path), "%s/trust.pem", dir) >= (int)sizeof(path)) {
		snprintf(why, whylen, "path too long");
		return NULL;
	}
	if (read_file(path, &pem, &len, MAX_FILE) == -1) {
		if (errno != ENOENT) {
			snprintf(why, whylen, "%.300s: %s", path, strerror(errno));
			return NULL;
		}
		if (initial_ca_pem == NULL) {
			snprintf(why, whylen, "no trust store (%.300s) and no --initial-ca", path);
			return NULL;
		}
		return trust_store(initial_ca_pem, initial_ca_len, why, whylen);
	}
	st = trust_store(pem, len, why, whylen);
	free(pem);
	return st;
}

/*
 * One request of an agent: connect, handshake, exchange. On success resp is filled (the
 * caller frees it) and 0 returned; on failure the failure is counted and printed, -1.
 */
static int
agent_request(struct worker *w, struct agent *a, int canary, const char *req, size_t reqlen,
    X509_STORE *store, struct response *resp)
{
	char why[512];
	enum failure fk = F_NONE;
	uint64_t t0 = now_us();
	SSL *ssl;
	int r;

	if ((ssl = tls_open(canary, store, &fk, why, sizeof(why))) == NULL)
		goto failed;
	w->st.handshakes++;
	r = http_exchange(ssl, req, reqlen, resp, &fk, why, sizeof(why));
	tls_close(ssl);
	if (r == -1)
		goto failed;
	stats_latency(&w->st, now_us() - t0);
	return 0;
failed:
	/* A never-update agent refused by the canary listener: exactly what the canary is for. */
	if (canary && fk == F_UNTRUSTED && a->role == ROLE_NEVER_UPDATE)
		w->st.expected_failures++;
	else {
		w->st.failures[fk]++;
		a->failed = 1;
		agent_msg(a, "%s: %s", canary ? "canary" : "main", why);
	}
	return -1;
}

static void
count_status(struct stats *st, int status)
{
	if (status >= 0 && status < 600)
		st->status[status]++;
	else
		st->status_other++;
}

/* A 200 with a bundle: checks ETag and body, installs them unless never-update. 0 or -1. */
static int
agent_take_bundle(
    struct worker *w, struct agent *a, const char *dir, const struct response *r, const char *what)
{
	char id[HEX64 + 1], why[256], line[HEX64 + 2];
	int n;

	if (r->etag[0] == '\0') {
		w->st.failures[F_PROTOCOL]++;
		a->failed = 1;
		agent_msg(
		    a, "%s: 200 %s ETag", what, r->etag_bad ? "with a malformed" : "without an");
		return -1;
	}
	if ((n = bundle_parse(r->body, r->body_len, id, why, sizeof(why))) < 0) {
		w->st.failures[F_PROTOCOL]++;
		a->failed = 1;
		agent_msg(a, "%s: bad bundle: %s", what, why);
		return -1;
	}
	if (strcmp(id, r->etag) != 0) {
		w->st.failures[F_PROTOCOL]++;
		a->failed = 1;
		agent_msg(a, "%s: the ETag \"%s\" is not the bundle's id %s", what, r->etag, id);
		return -1;
	}
	if (a->role == ROLE_NEVER_UPDATE) {
		char path[PATH_MAX];

		/* It keeps what it trusted before: on its first link, --initial-ca. */
		w->st.refused_updates++;
		if (snprintf(path, sizeof(path), "%s/trust.pem", dir) < (int)sizeof(path) &&
		    access(path, F_OK) == -1 && errno == ENOENT && initial_ca_pem != NULL &&
		    write_file_atomic(dir, "trust.pem", initial_ca_pem, initial_ca_len, 0644) ==
		        -1) {
			w->st.failures[F_LOCAL]++;
			a->failed = 1;
			agent_msg(a, "%s: storing the trust store: %s", what, strerror(errno));
			return -1;
		}
		return 0;
	}
	/* trust.pem first: a crash in between leaves the old etag, so the next check-in gets
	 * the bundle again. */
	snprintf(line, sizeof(line), "%s\n", r->etag);
	if (write_file_atomic(dir, "trust.pem", r->body, r->body_len, 0644) == -1 ||
	    write_file_atomic(dir, "etag", line, strlen(line), 0644) == -1) {
		w->st.failures[F_LOCAL]++;
		a->failed = 1;
		agent_msg(a, "%s: storing the bundle: %s", what, strerror(errno));
		return -1;
	}
	w->st.updated++;
	return 0;
}

static void
agent_link(struct worker *w, struct agent *a, const char *dir)
{
	char req[1024], why[512], line[HEX64 + 2];
	struct response r;
	X509_STORE *store;
	int n;

	if ((store = agent_store(dir, why, sizeof(why))) == NULL) {
		w->st.failures[F_LOCAL]++;
		a->failed = 1;
		agent_msg(a, "link: %s", why);
		return;
	}
	n = snprintf(req, sizeof(req),
	    "POST /carotate/v1/link HTTP/1.1\r\n"
	    "Host: %s\r\n"
	    "User-Agent: carotate-agentsim/" AGENTSIM_VERSION "\r\n"
	    "Authorization: Bearer %s\r\n"
	    "X-Agent-Id: %s\r\n"
	    "Content-Length: 0\r\n"
	    "Connection: close\r\n"
	    "\r\n",
	    opt.server_name, linking_key, a->id);
	w->st.link_attempts++;
	if (agent_request(w, a, 0, req, (size_t)n, store, &r) == -1) {
		X509_STORE_free(store);
		return;
	}
	X509_STORE_free(store);
	count_status(&w->st, r.status);
	if (r.status != 200) {
		a->failed = 1;
		agent_msg(a, "link: HTTP %d", r.status);
		response_free(&r);
		return;
	}
	if (r.token[0] == '\0') {
		w->st.failures[F_PROTOCOL]++;
		a->failed = 1;
		agent_msg(a, "link: 200 %s X-Agent-Token",
		    r.token_bad ? "with a malformed" : "without an");
		response_free(&r);
		return;
	}
	if (agent_take_bundle(w, a, dir, &r, "link") == 0) {
		snprintf(line, sizeof(line), "%s\n", r.token);
		if (write_file_atomic(dir, "token", line, strlen(line), 0600) == -1) {
			w->st.failures[F_LOCAL]++;
			a->failed = 1;
			agent_msg(a, "link: storing the token: %s", strerror(errno));
		} else
			w->st.linked++;
	}
	response_free(&r);
}

static void
agent_checkin(struct worker *w, struct agent *a, const char *dir, int canary)
{
	char req[1024], why[512], token[HEX64 + 1], etag[HEX64 + 1], inm[HEX64 + 32];
	struct response r;
	X509_STORE *store;
	int n;

	if (read_line_file(dir, "token", token, sizeof(token)) == -1) {
		w->st.unlinked++;
		return;
	}
	inm[0] = '\0';
	if (read_line_file(dir, "etag", etag, sizeof(etag)) == 0)
		snprintf(inm, sizeof(inm), "If-None-Match: \"%s\"\r\n", etag);
	if ((store = agent_store(dir, why, sizeof(why))) == NULL) {
		w->st.failures[F_LOCAL]++;
		a->failed = 1;
		agent_msg(a, "check-in: %s", why);
		return;
	}
	n = snprintf(req, sizeof(req),
	    "GET /carotate/v1/ca-bundle HTTP/1.1\r\n"
	    "Host: %s\r\n"
	    "User-Agent: carotate-agentsim/" AGENTSIM_VERSION "\r\n"
	    "Authorization: Bearer %s\r\n"
	    "X-Agent-Id: %s\r\n"
	    "%s"
	    "Connection: close\r\n"
	    "\r\n",
	    opt.server_name, token, a->id, inm);
	w->st.checkins++;
	if (canary)
		w->st.canary_checkins++;
	if (agent_request(w, a, canary, req, (size_t)n, store, &r) == -1) {
		X509_STORE_free(store);
		return;
	}
	X509_STORE_free(store);
	count_status(&w->st, r.status);
	a->last_status = r.status;
	a->current = 0;
	switch (r.status) {
	case 304:
		a->current = 1;
		w->st.checked_in++;
		if (canary)
			w->st.canary_checked_in++;
		break;
	case 200:
		if (agent_take_bundle(w, a, dir, &r, canary ? "canary check-in" : "check-in") ==
		    0) {
			w->st.checked_in++;
			if (canary)
				w->st.canary_checked_in++;
		}
		break;
	default:
		a->failed = 1;
		agent_msg(a, "%s: HTTP %d", canary ? "canary check-in" : "check-in", r.status);
		break;
	}
	response_free(&r);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char dir[PATH_MAX];
	unsigned i;

	while ((i = atomic_fetch_add(&next_agent, 1)) < opt.agents) {
		struct agent *a = &agents[i];

		if (a->role == ROLE_OFFLINE)
			continue;
		if (agent_dir(a, dir, sizeof(dir)) == -1)
			errno = ENAMETOOLONG;
		else if (mkdir(dir, 0700) == 0 || errno == EEXIST)
			errno = 0;
		if (errno != 0) {
			w->st.failures[F_LOCAL]++;
			a->failed = 1;
			agent_msg(a, "mkdir %s: %s", dir, strerror(errno));
			continue;
		}
		if (w->phase_link) {
			struct stat sb;
			char tpath[PATH_MAX];

			if (snprintf(tpath, sizeof(tpath), "%s/token", dir) < (int)sizeof(tpath) &&
			    stat(tpath, &sb) == -1)
				agent_link(w, a, dir);
		} else if (a->role != ROLE_STALE)
			agent_checkin(w, a, dir, w->phase_canary);
	}
	return NULL;
}

/* Runs one phase over every agent with opt.concurrency threads; merges into total. */
static void
run_phase(int link, int canary, struct stats *total, struct worker *ws, pthread_t *tids)
{
	unsigned t, nthreads = opt.concurrency < opt.agents ? opt.concurrency : opt.agents;
	size_t k;
	int e;

	if (nthreads == 0)
		nthreads = 1;
	atomic_store(&next_agent, 0);
	for (t = 0; t < nthreads; t++) {
		memset(&ws[t], 0, sizeof(ws[t]));
		ws[t].phase_link = link;
		ws[t].phase_canary = canary;
		if ((e = pthread_create(&tids[t], NULL, worker_main, &ws[t])) != 0)
			die("pthread_create: %s", strerror(e));
	}
	for (t = 0; t < nthreads; t++) {
		struct stats *s = &ws[t].st;

		pthread_join(tids[t], NULL);
		total->link_attempts += s->link_attempts;
		total->linked += s->linked;
		total->checkins += s->checkins;
		total->checked_in += s->checked_in;
		total->canary_checkins += s->canary_checkins;
		total->canary_checked_in += s->canary_checked_in;
		total->updated += s->updated;
		total->refused_updates += s->refused_updates;
		total->unlinked += s->unlinked;
		total->status_other += s->status_other;
		total->expected_failures += s->expected_failures;
		total->handshakes += s->handshakes;
		for (k = 0; k < 600; k++)
			total->status[k] += s->status[k];
		for (k = 0; k < F_N; k++)
			total->failures[k] += s->failures[k];
		if (s->nlat > 0) {
			uint32_t *n = realloc(total->lat_us, (total->nlat + s->nlat) * sizeof(*n));

			if (n != NULL) {
				memcpy(n + total->nlat, s->lat_us, s->nlat * sizeof(*n));
				total->lat_us = n;
				total->nlat += s->nlat;
			}
		}
		free(s->lat_us);
	}
}

/* ------------------------------------------------------------------ set-up */

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static unsigned
parse_uint(const char *name, const char *s, unsigned max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v > max)
		die("%s: expected an integer from 0 to %u, got '%s'", name, max, s);
	return (unsigned)v;
}

static void
resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res;
	char ps[16];
	int e;

	snprintf(ps, sizeof(ps), "%d", port);
	if ((e = getaddrinfo(host, ps, &hints, &res)) != 0)
		die("cannot resolve %s: %s", host, gai_strerror(e));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: agentsim --dir DIR --port PORT [options]\n"
	    "Simulates a fleet of carotate agents talking to nginx over real TLS.\n"
	    "\n"
	    "  --dir DIR            state directory: DIR/<id>/{trust.pem,token,etag} (created)\n"
	    "  --host ADDR          address of nginx (default 127.0.0.1)\n"
	    "  --port PORT          the main TLS listener\n"
	    "  --canary-port PORT   the canary listener\n"
	    "  --server-name NAME   SNI and the name verified in the certificate (default: "
	    "--host)\n"
	    "  --agents N           number of agents (default 1)\n"
	    "  --first I            number of the first agent (default 0)\n"
	    "  --prefix P           agent id prefix (default sim-): ids are P00000, P00001, ...\n"
	    "  --initial-ca FILE    trust store of an agent that has none yet (the active CA)\n"
	    "  --linking-key FILE   the linking key (white space trimmed), for --link\n"
	    "  --link               link the agents that have no token yet, before the rounds\n"
	    "  --rounds R           check-in rounds (default 1; 0: only link)\n"
	    "  --canary             every check-in goes to the canary listener\n"
	    "  --canary-every K     round r goes to the canary listener when r %% K == 0\n"
	    "  --interval MS        pause between rounds (default 0)\n"
	    "  --duration MS        start no round after MS (default: run all --rounds)\n"
	    "  --never-update K     K agents never install a bundle (trust store, etag)\n"
	    "  --stale K            K agents never check in (they may link)\n"
	    "  --offline K          K agents do nothing at all in this run\n"
	    "                       (roles go to the last agents: ... never-update, stale, "
	    "offline)\n"
	    "  --concurrency C      parallel connections (threads; default 16)\n"
	    "  --timeout MS         per connection (default 10000)\n"
	    "  --fsync              fsync the agents' files\n"
	    "  --report             print a JSON summary on stdout\n"
	    "  --expect-all-ok      exit 1 on any TLS, HTTP or protocol failure\n"
	    "  --verbose, --quiet   every failure line / none (default: the first %d)\n"
	    "Exit: 0 ok; 1 failures (with --expect-all-ok); 2 usage or set-up error.\n",
	    MAX_MESSAGES);
}

static void
parse_options(int argc, char **argv)
{
	enum {
		OPT_DIR = 256,
		OPT_HOST,
		OPT_PORT,
		OPT_CANARY_PORT,
		OPT_SERVER_NAME,
		OPT_AGENTS,
		OPT_FIRST,
		OPT_PREFIX,
		OPT_INITIAL_CA,
		OPT_LINKING_KEY,
		OPT_LINK,
		OPT_ROUNDS,
		OPT_CANARY,
		OPT_CANARY_EVERY,
		OPT_INTERVAL,
		OPT_DURATION,
		OPT_NEVER_UPDATE,
		OPT_STALE,
		OPT_OFFLINE,
		OPT_CONCURRENCY,
		OPT_TIMEOUT,
		OPT_FSYNC,
		OPT_REPORT,
		OPT_EXPECT_ALL_OK,
		OPT_VERBOSE,
		OPT_QUIET,
		OPT_HELP,
		OPT_VERSION
	};
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "host", required_argument, NULL, OPT_HOST },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "canary-port", required_argument, NULL, OPT_CANARY_PORT },
		{ "server-name", required_argument, NULL, OPT_SERVER_NAME },
		{ "agents", required_argument, NULL, OPT_AGENTS },
		{ "first", required_argument, NULL, OPT_FIRST },
		{ "prefix", required_argument, NULL, OPT_PREFIX },
		{ "initial-ca", required_argument, NULL, OPT_INITIAL_CA },
		{ "linking-key", required_argument, NULL, OPT_LINKING_KEY },
		{ "link", no_argument, NULL, OPT_LINK },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "canary", no_argument, NULL, OPT_CANARY },
		{ "canary-every", required_argument, NULL, OPT_CANARY_EVERY },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "never-update", required_argument, NULL, OPT_NEVER_UPDATE },
		{ "stale", required_argument, NULL, OPT_STALE },
		{ "offline", required_argument, NULL, OPT_OFFLINE },
		{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "fsync", no_argument, NULL, OPT_FSYNC },
		{ "report", no_argument, NULL, OPT_REPORT },
		{ "expect-all-ok", no_argument, NULL, OPT_EXPECT_ALL_OK },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	char sample[ID_MAX + 32];
	int c;

	while ((c = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DIR:
			opt.dir = optarg;
			break;
		case OPT_HOST:
			opt.host = optarg;
			break;
		case OPT_PORT:
			opt.port = (int)parse_uint("--port", optarg, 65535);
			break;
		case OPT_CANARY_PORT:
			opt.canary_port = (int)parse_uint("--canary-port", optarg, 65535);
			break;
		case OPT_SERVER_NAME:
			opt.server_name = optarg;
			break;
		case OPT_AGENTS:
			opt.agents = parse_uint("--agents", optarg, 10000000);
			break;
		case OPT_FIRST:
			opt.first = parse_uint("--first", optarg, 100000000);
			break;
		case OPT_PREFIX:
			opt.prefix = optarg;
			break;
		case OPT_INITIAL_CA:
			opt.initial_ca = optarg;
			break;
		case OPT_LINKING_KEY:
			opt.linking_key_file = optarg;
			break;
		case OPT_LINK:
			opt.link = 1;
			break;
		case OPT_ROUNDS:
			opt.rounds = parse_uint("--rounds", optarg, 1000000);
			break;
		case OPT_CANARY:
			opt.canary_every = 1;
			break;
		case OPT_CANARY_EVERY:
			opt.canary_every = parse_uint("--canary-every", optarg, 1000000);
			break;
		case OPT_INTERVAL:
			opt.interval_ms = parse_uint("--interval", optarg, 86400000);
			break;
		case OPT_DURATION:
			opt.duration_ms = parse_uint("--duration", optarg, 86400000);
			break;
		case OPT_NEVER_UPDATE:
			opt.never_update = parse_uint("--never-update", optarg, 10000000);
			break;
		case OPT_STALE:
			opt.stale = parse_uint("--stale", optarg, 10000000);
			break;
		case OPT_OFFLINE:
			opt.offline = parse_uint("--offline", optarg, 10000000);
			break;
		case OPT_CONCURRENCY:
			opt.concurrency = parse_uint("--concurrency", optarg, 4096);
			break;
		case OPT_TIMEOUT:
			opt.timeout_ms = parse_uint("--timeout", optarg, 3600000);
			break;
		case OPT_FSYNC:
			opt.do_fsync = 1;
			break;
		case OPT_REPORT:
			opt.report = 1;
			break;
		case OPT_EXPECT_ALL_OK:
			opt.expect_all_ok = 1;
			break;
		case 'v':
		case OPT_VERBOSE:
			opt.verbose = 1;
			break;
		case OPT_QUIET:
			opt.quiet = 1;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("agentsim " AGENTSIM_VERSION "\n");
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc)
		die("unexpected argument '%s' (see --help)", argv[optind]);
	if (opt.dir == NULL || opt.port == 0)
		die("--dir and --port are required (see --help)");
	if (opt.canary_every > 0 && opt.canary_port == 0)
		die("--canary / --canary-every need --canary-port");
	if (opt.concurrency == 0)
		die("--concurrency must be at least 1");
	if (opt.timeout_ms == 0)
		die("--timeout must be at least 1 ms");
	if ((unsigned long long)opt.never_update + opt.stale + opt.offline > opt.agents)
		die("--never-update + --stale + --offline exceed --agents");
	if (opt.server_name == NULL)
		opt.server_name = opt.host;
	snprintf(sample, sizeof(sample), "%s%05u", opt.prefix, opt.first + opt.agents);
	if (!valid_id(sample))
		die("--prefix '%s' does not make valid agent ids (1-64 of [A-Za-z0-9._-])",
		    opt.prefix);
	if (strlen(opt.server_name) > 253 || strchr(opt.server_name, '\r') ||
	    strchr(opt.server_name, '\n'))
		die("bad --server-name");
}

static void
load_inputs(void)
{
	struct in6_addr a6;
	struct in_addr a4;
	char why[256], id[HEX64 + 1];
	size_t len, i;
	char *s;

	server_name_is_ip = inet_pton(AF_INET, opt.server_name, &a4) == 1 ||
	                    inet_pton(AF_INET6, opt.server_name, &a6) == 1;
	if (opt.link) {
		if (opt.linking_key_file == NULL)
			die("--link needs --linking-key FILE");
		if (read_file(opt.linking_key_file, &s, &len, 4096) == -1)
			die("%s: %s", opt.linking_key_file, strerror(errno));
		while (len > 0 && strchr(" \t\r\n", s[len - 1]))
			s[--len] = '\0';
		for (i = 0; s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'; i++)
			;
		if (i == len)
			die("%s: the linking key is empty", opt.linking_key_file);
		for (size_t j = i; j < len; j++)
			if ((unsigned char)s[j] < 0x21 || (unsigned char)s[j] > 0x7e)
				die("%s: the linking key has a character a header cannot carry",
				    opt.linking_key_file);
		linking_key = strdup(s + i);
		free(s);
		if (linking_key == NULL)
			die("out of memory");
	}
	if (opt.initial_ca != NULL) {
		if (read_file(opt.initial_ca, &initial_ca_pem, &initial_ca_len, MAX_FILE) == -1)
			die("%s: %s", opt.initial_ca, strerror(errno));
		if (bundle_parse(initial_ca_pem, initial_ca_len, id, why, sizeof(why)) < 0)
			die("%s: %s", opt.initial_ca, why);
	}
	if (mkdir(opt.dir, 0755) == -1 && errno != EEXIST)
		die("mkdir %s: %s", opt.dir, strerror(errno));
	resolve(opt.host, opt.port, &main_addr, &main_addrlen);
	if (opt.canary_port != 0)
		resolve(opt.host, opt.canary_port, &canary_addr, &canary_addrlen);

	if ((ssl_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
	/* Each connection is an agent's own full handshake: no session is ever resumed. */
	SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
}

/* ------------------------------------------------------------------ report */

/* "key": ["id", ...] for the agents of a role. */
static void
print_ids(const char *key, enum role role)
{
	unsigned i;
	int n = 0;

	printf("\"%s\": [", key);
	for (i = 0; i < opt.agents; i++)
		if (agents[i].role == role)
			printf("%s\"%s\"", n++ ? ", " : "", agents[i].id);
	printf("]");
}

int
main(int argc, char **argv)
{
	struct stats total;
	struct worker *ws;
	pthread_t *tids;
	uint64_t t0, elapsed_us, failures = 0;
	unsigned i, r, current = 0, failed_agents = 0, nthreads;
	int first, k;

	signal(SIGPIPE, SIG_IGN);
	parse_options(argc, argv);
	load_inputs();

	if ((agents = calloc(opt.agents ? opt.agents : 1, sizeof(*agents))) == NULL)
		die("out of memory");
	for (i = 0; i < opt.agents; i++) {
		unsigned from_end = opt.agents - 1 - i;

		snprintf(agents[i].id, sizeof(agents[i].id), "%s%05u", opt.prefix, opt.first + i);
		if (from_end < opt.offline)
			agents[i].role = ROLE_OFFLINE;
		else if (from_end < opt.offline + opt.stale)
			agents[i].role = ROLE_STALE;
		else if (from_end < opt.offline + opt.stale + opt.never_update)
			agents[i].role = ROLE_NEVER_UPDATE;
		else
			agents[i].role = ROLE_NORMAL;
	}
	nthreads = opt.concurrency;
	if ((ws = calloc(nthreads, sizeof(*ws))) == NULL ||
	    (tids = calloc(nthreads, sizeof(*tids))) == NULL)
		die("out of memory");
	memset(&total, 0, sizeof(total));

	t0 = now_us();
	if (opt.link && opt.agents > 0)
		run_phase(1, 0, &total, ws, tids);
	for (r = 1; r <= opt.rounds && opt.agents > 0; r++) {
		if (r > 1 && opt.duration_ms > 0 && now_us() - t0 >= opt.duration_ms * 1000ull)
			break;
		if (r > 1 && opt.interval_ms > 0)
			usleep(opt.interval_ms * 1000u);
		run_phase(0, opt.canary_every > 0 && r % opt.canary_every == 0, &total, ws, tids);
	}
	elapsed_us = now_us() - t0;

	for (i = 0; i < opt.agents; i++) {
		current += agents[i].current;
		failed_agents += agents[i].failed;
	}
	for (k = 0; k < F_N; k++)
		failures += total.failures[k];
	for (k = 0; k < 600; k++)
		if (k != 200 && k != 304)
			failures += total.status[k];
	failures += total.status_other;

	if (opt.report) {
		uint64_t requests = total.nlat;
		double secs = (double)elapsed_us / 1e6;

		if (total.nlat > 0)
			qsort(total.lat_us, total.nlat, sizeof(uint32_t), u32_cmp);
		printf("{\n");
		printf("  \"agents\": %u,\n", opt.agents);
		printf("  \"roles\": {\"normal\": %u, \"never_update\": %u, \"stale\": %u, "
		       "\"offline\": %u},\n",
		    opt.agents - opt.never_update - opt.stale - opt.offline, opt.never_update,
		    opt.stale, opt.offline);
		printf("  \"link_attempts\": %" PRIu64 ",\n", total.link_attempts);
		printf("  \"linked\": %" PRIu64 ",\n", total.linked);
		printf("  \"checkins\": %" PRIu64 ",\n", total.checkins);
		printf("  \"checked_in\": %" PRIu64 ",\n", total.checked_in);
		printf("  \"canary_checkins\": %" PRIu64 ",\n", total.canary_checkins);
		printf("  \"canary_checked_in\": %" PRIu64 ",\n", total.canary_checked_in);
		printf("  \"unlinked\": %" PRIu64 ",\n", total.unlinked);
		printf("  \"updated\": %" PRIu64 ",\n", total.updated);
		printf("  \"refused_updates\": %" PRIu64 ",\n", total.refused_updates);
		printf("  \"acknowledged\": %u,\n", current);
		printf("  \"status\": {");
		for (k = 0, first = 1; k < 600; k++)
			if (total.status[k] > 0) {
				printf("%s\"%d\": %" PRIu64, first ? "" : ", ", k, total.status[k]);
				first = 0;
			}
		if (total.status_other > 0)
			printf("%s\"other\": %" PRIu64, first ? "" : ", ", total.status_other);
		printf("},\n");
		printf("  \"tls_failures\": %" PRIu64 ",\n",
		    total.failures[F_UNTRUSTED] + total.failures[F_TLS]);
		printf("  \"untrusted\": %" PRIu64 ",\n", total.failures[F_UNTRUSTED]);
		printf("  \"failures\": {");
		for (k = 1, first = 1; k < F_N; k++) {
			printf("%s\"%s\": %" PRIu64, first ? "" : ", ", failure_names[k],
			    total.failures[k]);
			first = 0;
		}
		printf("},\n");
		printf("  \"expected_failures\": %" PRIu64 ",\n", total.expected_failures);
		printf("  \"failed_agents\": %u,\n", failed_agents);
		printf("  \"handshakes\": %" PRIu64 ",\n", total.handshakes);
		printf("  \"requests\": %" PRIu64 ",\n", requests);
		printf("  \"elapsed_ms\": %.1f,\n", (double)elapsed_us / 1000.0);
		printf("  \"requests_per_s\": %.1f,\n", secs > 0 ? (double)requests / secs : 0.0);
		printf("  \"latency_ms\": {\"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, \"max\": "
		       "%.2f},\n",
		    total.nlat ? total.lat_us[total.nlat / 2] / 1000.0 : 0.0,
		    total.nlat ? total.lat_us[total.nlat * 9 / 10] / 1000.0 : 0.0,
		    total.nlat ? total.lat_us[total.nlat * 99 / 100] / 1000.0 : 0.0,
		    total.nlat ? total.lat_us[total.nlat - 1] / 1000.0 : 0.0);
		printf("  \"concurrency\": %u,\n", opt.concurrency);
		printf("  \"agents_by_role\": {");
		print_ids("never_update", ROLE_NEVER_UPDATE);
		printf(", ");
		print_ids("stale", ROLE_STALE);
		printf(", ");
		print_ids("offline", ROLE_OFFLINE);
		printf("}\n}\n");
	}
	fflush(stdout);
	free(total.lat_us);
	free(ws);
	free(tids);
	free(agents);
	free(linking_key);
	free(initial_ca_pem);
	for (i = 0; i < store_cache_n; i++)
		X509_STORE_free(store_cache[i].store);
	SSL_CTX_free(ssl_ctx);
	if (opt.expect_all_ok && failures > 0) {
		fprintf(stderr, "agentsim: %" PRIu64 " failure(s) (%u agents)\n", failures,
		    failed_agents);
		return 1;
	}
	return 0;
}
