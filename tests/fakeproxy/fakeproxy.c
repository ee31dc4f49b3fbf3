/*
 * fakeproxy: a TLS server with one canned HTTP answer, for the answers nginx in front of
 * carotated never gives (tests/integration/test_agent_faults.sh): a 5xx, a truncated or
 * invalid bundle, a wrong ETag, a bundle lacking the served certificate's CA, a peer that
 * closes right after accept or never answers.
 *
 * Every connection is served by a child process (a sleeping answer blocks nobody) and gets
 * the same answer. Every request's request line and headers are appended to --log, each
 * connection's events as lines starting with '#', so a test can assert that a client sent
 * nothing at all (e.g. after a pin mismatch: `grep -v '^#' LOG` is empty).
 *
 *   fakeproxy --cert CHAIN --key KEY [--port N] [--port-file F] [--log F]
 *             [--status CODE] [--header 'Name: value']... [--body F]
 *             [--truncate N] [--close] [--sleep S] [--if-none-match ETAG]
 *
 * --port 0 (the default) lets the kernel pick one; the port is printed on stdout (and written
 * to --port-file) once the server listens. --truncate N announces the whole body's length but
 * sends only its first N bytes, then closes. --close closes each connection right after
 * accept, before any TLS. --sleep S waits S seconds after reading the request, then answers.
 * --if-none-match ETAG answers 304 (ETag: "ETAG") instead whenever the request's
 * If-None-Match names ETAG, as the real proxy does once a client holds the current bundle.
 * Single file, OpenSSL 3, plain blocking sockets. Ends on SIGTERM; children die with it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define FP_MAX_HEADERS 32
#define FP_REQ_MAX     (64 * 1024) /* request line and headers; more is refused */
#define FP_BODY_MAX    (16 * 1024 * 1024)

struct fp_opts {
	int port;
	const char *port_file;
	const char *cert;
	const char *key;
	const char *log;
	int status;
	const char *headers[FP_MAX_HEADERS];
	int nheaders;
	char *body;
	size_t body_len;
	long truncate; /* bytes of body to send, -1: all */
	int close_on_accept;
	unsigned sleep_s;
	const char *inm; /* answer 304 to a request holding this ETag */
};

static void fp_die(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fp_log(const struct fp_opts *, const char *, size_t);
static void fp_logf(const struct fp_opts *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static char *fp_read_file(const char *, size_t *);
static const char *fp_reason(int);
static int fp_listen(int *);
static SSL_CTX *fp_ctx(const struct fp_opts *);
static ssize_t fp_read_request(SSL *, char *, size_t);
static int fp_write_all(SSL *, const char *, size_t);
static void fp_answer(const struct fp_opts *, SSL *);
static int fp_holds_etag(const struct fp_opts *, const char *);
static void fp_serve(const struct fp_opts *, SSL_CTX *, int);
static void fp_usage(void) __attribute__((noreturn));
static void fp_parse(struct fp_opts *, int, char **);

static void
fp_die(const char *fmt, ...)
{
	va_list ap;

	fputs("fakeproxy: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* One write(2) per record on an O_APPEND descriptor: children never interleave a record. */
static void
fp_log(const struct fp_opts *o, const char *buf, size_t len)
{
	int fd;

	if (o->log == NULL)
		return;
	fd = open(o->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1)
		return;
	if (write(fd, buf, len) < 0) {
		/* A test reads the log; a lost record shows there, nothing to do here. */
	}
	close(fd);
}

static void
fp_logf(const struct fp_opts *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fp_log(o, line, (size_t)n);
}

static char *
fp_read_file(const char *path, size_t *len)
{
	char *buf;
	size_t n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		fp_die("%s: %s", path, strerror(errno));
	if ((buf = malloc(FP_BODY_MAX)) == NULL)
		fp_die("out of memory");
	while ((r = read(fd, buf + n, FP_BODY_MAX - n)) > 0)
		n += (size_t)r;
	if (r < 0)
		fp_die("%s: %s", path, strerror(errno));
	if (n == FP_BODY_MAX)
		fp_die("%s: larger than %d bytes", path, FP_BODY_MAX);
	close(fd);
	*len = n;
	return buf;
}

static const char *
fp_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 409:
		return "Conflict";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	default:
		return "Status";
	}
}

/* Listens on 127.0.0.1:*port (0: any free port, written back). */
static int
fp_listen(int *port)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fp_die("socket: %s", strerror(errno));
	/* A test restarts fakeproxy on the port an agent recorded when it linked. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)*port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		fp_die("bind 127.0.0.1:%d: %s", *port, strerror(errno));
	if (listen(fd, 128) == -1)
		fp_die("listen: %s", strerror(errno));
	if (getsockname(fd, (struct sockaddr *)&sin, &slen) == -1)
		fp_die("getsockname: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

static SSL_CTX *
fp_ctx(const struct fp_opts *o)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		fp_die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
		fp_die("%s: not a usable certificate chain", o->cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1)
		fp_die("%s: not a usable private key", o->key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		fp_die("%s does not match %s", o->key, o->cert);
	return ctx;
}

/*
 * Reads the request line and headers (up to the empty line), then a Content-Length body,
 * which is dropped. Returns the length of the head, -1 when the peer closed or sent too much.
 */
static ssize_t
fp_read_request(SSL *ssl, char *buf, size_t cap)
{
	size_t n = 0;
	char *end, *cl, drain[4096];
	long body;
	int r;

	buf[0] = '\0';
	while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
		if (n + 1 >= cap)
			return -1;
		if ((r = SSL_read(ssl, buf + n, (int)(cap - 1 - n))) <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
	}
	end += 4;
	cl = strcasestr(buf, "\r\ncontent-length:");
	body = (cl != NULL && cl < end) ? strtol(cl + 17, NULL, 10) : 0;
	body -= (long)(n - (size_t)(end - buf));
	while (body > 0) {
		if ((r = SSL_read(ssl, drain,
		         body > (long)sizeof(drain) ? (int)sizeof(drain) : (int)body)) <= 0)
			break;
		body -= r;
	}
	return end - buf;
}

static int
fp_write_all(SSL *ssl, const char *buf, size_t len)
{
	int r;

	while (len > 0) {
		if ((r = SSL_write(ssl, buf, len > 65536 ? 65536 : (int)len)) <= 0)
			return -1;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static void
fp_answer(const struct fp_opts *o, SSL *ssl)
{
	char head[8192];
	size_t len, send_body;
	int n, i;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nConnection: close\r\n", o->status,
	    fp_reason(o->status));
	for (i = 0; i < o->nheaders && n > 0 && (size_t)n < sizeof(head); i++)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n", o->headers[i]);
	if (n > 0 && (size_t)n < sizeof(head) && o->status != 304)
		n += snprintf(
		    head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", o->body_len);
	if (n > 0 && (size_t)n < sizeof(head))
		n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if (n < 0 || (size_t)n >= sizeof(head))
		fp_die("the answer's headers are longer than %zu bytes", sizeof(head));
	len = (size_t)n;
	send_body = o->status == 304 ? 0 : o->body_len;
	if (o->truncate >= 0 && (size_t)o->truncate < send_body)
		send_body = (size_t)o->truncate;
	if (fp_write_all(ssl, head, len) == -1 || fp_write_all(ssl, o->body, send_body) == -1) {
		fp_logf(o, "# write failed");
		return;
	}
	fp_logf(o, "# answered %d, %zu of %zu body bytes", o->status, send_body, o->body_len);
}

/* Whether the request head names --if-none-match's ETag in its If-None-Match. */
static int
fp_holds_etag(const struct fp_opts *o, const char *req)
{
	const char *h, *eol;
	char want[256];

	if (o->inm == NULL || (h = strcasestr(req, "\r\nif-none-match:")) == NULL)
		return 0;
	eol = strstr(h + 2, "\r\n");
	snprintf(want, sizeof(want), "\"%s\"", o->inm);
	h = strstr(h, want);
	return h != NULL && eol != NULL && h < eol;
}

/* One connection, in its own process. */
static void
fp_serve(const struct fp_opts *o, SSL_CTX *ctx, int fd)
{
	char req[FP_REQ_MAX];
	ssize_t hlen;
	SSL *ssl;

	fp_logf(o, "# accepted");
	if (o->close_on_accept) {
		fp_logf(o, "# closed after accept");
		return;
	}
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1)
		fp_die("SSL_new failed");
	if (SSL_accept(ssl) != 1) {
		fp_logf(o, "# handshake failed");
		return;
	}
	fp_logf(o, "# handshake done");
	if ((hlen = fp_read_request(ssl, req, sizeof(req))) < 0) {
		fp_logf(o, "# closed without a complete request");
		return;
	}
	fp_log(o, req, (size_t)hlen);
	if (o->sleep_s > 0) {
		fp_logf(o, "# sleeping %u s", o->sleep_s);
		sleep(o->sleep_s);
	}
	if (fp_holds_etag(o, req)) {
		struct fp_opts nm = *o;
		char etag[300];

		snprintf(etag, sizeof(etag), "ETag: \"%s\"", o->inm);
		nm.status = 304;
		nm.nheaders = 1;
		nm.headers[0] = etag;
		fp_answer(&nm, ssl);
	} else {
		fp_answer(o, ssl);
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
}

static void
fp_usage(void)
{
	fputs("usage: fakeproxy --cert CHAIN --key KEY [--port N] [--port-file F] [--log F]\n"
	      "                 [--status CODE] [--header 'Name: value']... [--body F]\n"
	      "                 [--truncate N] [--close] [--sleep S] [--if-none-match ETAG]\n",
	    stderr);
	exit(1);
}

static void
fp_parse(struct fp_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'P' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "log", required_argument, NULL, 'l' },
		{ "status", required_argument, NULL, 's' },
		{ "header", required_argument, NULL, 'H' },
		{ "body", required_argument, NULL, 'b' },
		{ "truncate", required_argument, NULL, 't' },
		{ "close", no_argument, NULL, 'C' },
		{ "sleep", required_argument, NULL, 'S' },
		{ "if-none-match", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->status = 200;
	o->truncate = -1;
	o->body = (char *)"";
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			o->port = atoi(optarg);
			break;
		case 'P':
			o->port_file = optarg;
			break;
		case 'c':
			o->cert = optarg;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'l':
			o->log = optarg;
			break;
		case 's':
			o->status = atoi(optarg);
			break;
		case 'H':
			if (o->nheaders == FP_MAX_HEADERS || strpbrk(optarg, "\r\n") != NULL)
				fp_die("too many headers, or a header with a line break");
			o->headers[o->nheaders++] = optarg;
			break;
		case 'b':
			o->body = fp_read_file(optarg, &o->body_len);
			break;
		case 't':
			o->truncate = atol(optarg);
			break;
		case 'C':
			o->close_on_accept = 1;
			break;
		case 'S':
			o->sleep_s = (unsigned)atoi(optarg);
			break;
		case 'I':
			o->inm = optarg;
			break;
		default:
			fp_usage();
		}
	}
	if (optind != argc || o->cert == NULL || o->key == NULL || o->status < 100 ||
	    o->status > 999 || o->port < 0 || o->port > 65535)
		fp_usage();
}

int
main(int argc, char **argv)
{
	struct fp_opts o;
	SSL_CTX *ctx;
	FILE *f;
	pid_t parent;
	int lfd, cfd;

	fp_parse(&o, argc, argv);
	ctx = fp_ctx(&o);
	lfd = fp_listen(&o.port);
	signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	signal(SIGPIPE, SIG_IGN);
	if (o.port_file != NULL) {
		if ((f = fopen(o.port_file, "we")) == NULL)
			fp_die("%s: %s", o.port_file, strerror(errno));
		fprintf(f, "%d\n", o.port);
		fclose(f);
	}
	printf("%d\n", o.port);
	fflush(stdout);
	parent = getpid();
	for (;;) {
		if ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fp_die("accept: %s", strerror(errno));
		}
		switch (fork()) {
		case -1:
			fp_die("fork: %s", strerror(errno));
		case 0:
			/* A sleeping child must not outlive the server the test stops. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			close(lfd);
			fp_serve(&o, ctx, cfd);
			close(cfd);
			_exit(0);
		default:
			close(cfd);
		}
	}
}
