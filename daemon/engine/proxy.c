/*
 * Proxy reload. The command's exit status is reported, but it proves little:
 * `nginx -s reload` exits 0 even when nginx rejects the new files. What the
 * proxy really serves is checked over TLS where it matters (rotation).
 */
#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carotated.h"
#include "config.h"
#include "job.h"
#include "log.h"
#include "proxy.h"
#include "clock.h"
#include "xmalloc.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "pki.h"

#define PROXY_MAX_OUTPUT 4096 /* bytes of the command's output kept (its tail) */

struct proxy_reload_ctx {
	LIST_ENTRY(proxy_reload_ctx) entry;
	struct carotated *cd;
	proxy_reload_done done;
	void *arg;
};

/* Reloads and checks in flight, so that a shutdown that kills their jobs frees them. */
static LIST_HEAD(, proxy_reload_ctx) proxy_reloads = LIST_HEAD_INITIALIZER(proxy_reloads);

static void proxy_reload_finished(struct job *, void *);
static void proxy_last_error(struct carotated_proxy_last *, const char *, const char *);
static void proxy_note_reload(struct carotated *, const Carotate__V1__ReloadResult *);
static void proxy_note_check(struct carotated *, int, const char *);
static char *proxy_printable(const unsigned char *, size_t);

/* what: why, as one printable line, the last failure. */
static void
proxy_last_error(struct carotated_proxy_last *last, const char *what, const char *why)
{
	size_t i;

	snprintf(last->error, sizeof(last->error), "%s: %s", what, why);
	for (i = 0; last->error[i] != '\0'; i++)
		if (!isprint((unsigned char)last->error[i]))
			last->error[i] = ' ';
}

/* Every reload's outcome is kept, whoever asked for it: a pool member's state shows it. */
static void
proxy_note_reload(struct carotated *cd, const Carotate__V1__ReloadResult *r)
{
	cd->proxy_last.reload_at = (int64_t)time(NULL);
	cd->proxy_last.reload_ok = r->ok;
	if (!r->ok)
		proxy_last_error(&cd->proxy_last, "reload",
		    r->output != NULL && r->output[0] != '\0' ? r->output : "failed");
}

/* And every TLS check's. */
static void
proxy_note_check(struct carotated *cd, int ok, const char *why)
{
	cd->proxy_last.check_at = (int64_t)time(NULL);
	cd->proxy_last.check_ok = ok;
	if (!ok)
		proxy_last_error(&cd->proxy_last, "TLS check", why);
}

/* The output as one printable line: control bytes become spaces, white space is trimmed. */
static char *
proxy_printable(const unsigned char *p, size_t len)
{
	char *s = xmalloc(len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		s[n++] = isprint(p[i]) ? (char)p[i] : ' ';
	while (n > 0 && s[n - 1] == ' ')
		n--;
	s[n] = '\0';
	return s;
}

static void
proxy_reload_finished(struct job *job, void *arg)
{
	struct proxy_reload_ctx *ctx = arg;
	Carotate__V1__ReloadResult *r = xmalloc(sizeof(*r));
	const unsigned char *out;
	char why[64];
	size_t len;

	carotate__v1__reload_result__init(r);
	out = job_output(job, &len);
	r->ran = 1;
	r->exit_status = job_exit_status(job);
	r->ok = r->exit_status == 0;
	r->output = proxy_printable(out, len);
	job_describe(job, why, sizeof(why));
	if (r->ok)
		log_info("proxy reload: %s %s", job_name(job), why);
	else
		log_warnx("proxy reload: %s %s: %s", job_name(job), why, r->output);
	job_free(job);
	LIST_REMOVE(ctx, entry);
	proxy_note_reload(ctx->cd, r);
	ctx->done(r, ctx->arg);
	free(ctx);
}

void
proxy_reload(struct carotated *cd, proxy_reload_done done, void *arg)
{
	const struct config *conf = cd->conf;
	struct proxy_reload_ctx *ctx = xmalloc(sizeof(*ctx));
	Carotate__V1__ReloadResult *r;

	ctx->cd = cd;
	ctx->done = done;
	ctx->arg = arg;
	if (job_exec(cd->base, conf->reload_argv, conf->reload_timeout, PROXY_MAX_OUTPUT,
	        proxy_reload_finished, ctx) != NULL) {
		LIST_INSERT_HEAD(&proxy_reloads, ctx, entry);
		return;
	}
	log_warn("proxy reload: cannot start %s", conf->reload_argv[0]);
	r = xmalloc(sizeof(*r));
	carotate__v1__reload_result__init(r);
	r->exit_status = -1;
	xasprintf(&r->output, "cannot start %s: %s", conf->reload_argv[0], strerror(errno));
	free(ctx);
	proxy_note_reload(cd, r);
	done(r, arg);
}

#define PROXY_CHECK_RETRY  200 /* ms between attempts */
#define PROXY_CHECK_OUTPUT 512

struct proxy_check_ctx {
	LIST_ENTRY(proxy_check_ctx) entry;
	struct carotated *cd;
	const struct config_address *addr;
	const char *server_name;
	const char *expected;
	unsigned timeout_ms;
	proxy_check_done done;
	void *arg;
};

static LIST_HEAD(, proxy_check_ctx) proxy_checks = LIST_HEAD_INITIALIZER(proxy_checks);

const char *
proxy_address_text(const struct config_address *a, char *buf, size_t len)
{
	if (a->is_unix)
		snprintf(buf, len, "unix:%s", a->path);
	else if (strchr(a->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", a->host, a->port);
	else
		snprintf(buf, len, "%s:%u", a->host, a->port);
	return buf;
}

/* A connected socket with one-second I/O timeouts, or -1 (why filled). */
static int
proxy_connect(const struct config_address *a, char *why, size_t len)
{
	struct timeval tv = { 1, 0 };
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char port[8];
	int fd = -1, r;

	if (a->is_unix) {
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", a->path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1 &&
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			goto done;
		snprintf(why, len, "connect: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", a->port);
	if ((r = getaddrinfo(a->host, port, &hints, &res)) != 0) {
		snprintf(why, len, "%s: %s", a->host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0)) == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(why, len, "connect: %s", strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return -1;
done:
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* One handshake; the SHA-256 of the leaf served, or "" with why filled. */
static void
proxy_served(
    SSL_CTX *ctx, const struct proxy_check_ctx *c, char out[PKI_SHA256_HEX], char *why, size_t len)
{
	SSL *ssl = NULL;
	X509 *leaf = NULL;
	int fd;

	out[0] = '\0';
	if ((fd = proxy_connect(c->addr, why, len)) == -1)
		return;
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    (c->server_name[0] != '\0' && SSL_set_tlsext_host_name(ssl, c->server_name) != 1)) {
		snprintf(why, len, "cannot set up TLS");
	} else if (SSL_connect(ssl) != 1) {
		snprintf(why, len, "TLS handshake failed: %s",
		    ERR_reason_error_string(ERR_peek_last_error()) != NULL
		        ? ERR_reason_error_string(ERR_peek_last_error())
		        : "connection closed");
	} else if ((leaf = SSL_get1_peer_certificate(ssl)) == NULL)
		snprintf(why, len, "no certificate served");
	else
		pki_cert_sha256(leaf, out);
	X509_free(leaf);
	SSL_free(ssl);
	ERR_clear_error();
	close(fd);
}

/* The child: try until the expected certificate is served or time is up. */
static int
proxy_check_child(void *arg, int fd)
{
	const struct proxy_check_ctx *c = arg;
	long long deadline = clock_ms() + c->timeout_ms;
	char served[PKI_SHA256_HEX] = "", why[256] = "no attempt", out[PROXY_CHECK_OUTPUT];
	/* Fingerprints are compared, not chains: nothing to trust or verify here. */
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok = 0, n;

	if (ctx == NULL)
		return 2;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* A resumed session would not show the certificate now served. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	for (;;) {
		proxy_served(ctx, c, served, why, sizeof(why));
		if (served[0] != '\0' && strcmp(served, c->expected) == 0) {
			ok = 1;
			break;
		}
		if (served[0] != '\0')
			snprintf(why, sizeof(why), "it serves another certificate");
		if (clock_ms() + PROXY_CHECK_RETRY >= deadline)
			break;
		poll(NULL, 0, PROXY_CHECK_RETRY);
	}
	SSL_CTX_free(ctx);
	n = snprintf(out, sizeof(out), "%s %s %s", ok ? "ok" : "no", served[0] ? served : "-", why);
	return write(fd, out, (size_t)n) == n ? 0 : 1;
}

static void
proxy_check_finished(struct job *job, void *arg)
{
	struct proxy_check_ctx *c = arg;
	char buf[PROXY_CHECK_OUTPUT + 1], served[PKI_SHA256_HEX] = "", why[64];
	const unsigned char *out;
	size_t len;
	int ok = 0, off = 0;

	out = job_output(job, &len);
	if (len > PROXY_CHECK_OUTPUT)
		len = PROXY_CHECK_OUTPUT;
	memcpy(buf, out != NULL ? (const char *)out : "", len);
	buf[len] = '\0';
	if (job_exit_status(job) == 0 && sscanf(buf, "%*s %64s %n", served, &off) == 1) {
		ok = strncmp(buf, "ok ", 3) == 0;
		if (strcmp(served, "-") == 0)
			served[0] = '\0';
		proxy_note_check(c->cd, ok, buf + off);
		c->done(ok, served, buf + off, c->arg);
	} else {
		job_describe(job, why, sizeof(why));
		proxy_note_check(c->cd, 0, why);
		c->done(0, "", why, c->arg);
	}
	job_free(job);
	LIST_REMOVE(c, entry);
	free(c);
}

void
proxy_check(struct carotated *cd, const struct config_address *addr, const char *server_name,
    const char *expected, unsigned timeout_ms, proxy_check_done done, void *arg)
{
	struct proxy_check_ctx *c = xmalloc(sizeof(*c));

	c->cd = cd;
	c->addr = addr;
	c->server_name = server_name != NULL ? server_name : "";
	c->expected = expected;
	c->timeout_ms = timeout_ms;
	c->done = done;
	c->arg = arg;
	/* A little longer than the child's own deadline: it ends by itself. */
	if (job_fork(cd->base, "tls-check", proxy_check_child, c, timeout_ms + 5000,
	        PROXY_CHECK_OUTPUT, proxy_check_finished, c) == NULL) {
		const char *why = strerror(errno);

		free(c);
		proxy_note_check(cd, 0, why);
		done(0, "", why, arg);
		return;
	}
	LIST_INSERT_HEAD(&proxy_checks, c, entry);
}

void
proxy_abandon_all(void)
{
	struct proxy_reload_ctx *r;
	struct proxy_check_ctx *c;

	while ((r = LIST_FIRST(&proxy_reloads)) != NULL) {
		LIST_REMOVE(r, entry);
		free(r);
	}
	while ((c = LIST_FIRST(&proxy_checks)) != NULL) {
		LIST_REMOVE(c, entry);
		free(c);
	}
}
