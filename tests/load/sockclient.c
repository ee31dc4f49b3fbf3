/* The client side of the daemon's sockets for the bench and load tools (sockclient.h). */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sockclient.h"

static int sockclient_read_head(int fd, char *buf, size_t *got, const char **end);

int
sockclient_connect(const char *path, int nonblock)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, saved;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

const char *
sockclient_header(const char *h, const char *end, const char *name, size_t *len)
{
	size_t nlen = strlen(name);
	const char *p, *eol;

	for (p = strstr(h, "\r\n"); p != NULL && p < end; p = eol) {
		p += 2;
		if ((eol = strstr(p, "\r\n")) == NULL)
			return NULL;
		if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			p += nlen + 1;
			while (*p == ' ')
				p++;
			*len = (size_t)(eol - p);
			return p;
		}
	}
	return NULL;
}

/* Reads until buf (SOCKCLIENT_BUF) holds the whole header block; *end: its blank line. */
static int
sockclient_read_head(int fd, char *buf, size_t *got, const char **end)
{
	ssize_t n;

	for (;;) {
		if (*got == SOCKCLIENT_BUF - 1)
			return -1;
		if ((n = read(fd, buf + *got, SOCKCLIENT_BUF - 1 - *got)) <= 0)
			return -1;
		*got += (size_t)n;
		buf[*got] = '\0';
		if ((*end = strstr(buf, "\r\n\r\n")) != NULL)
			return 0;
	}
}

int
sockclient_http_exchange(int fd, const char *req, int *status, char *token, char *etag)
{
	static __thread char buf[SOCKCLIENT_BUF]; /* the ingest bench's threads each have one */
	const char *end, *v;
	size_t got = 0, len, need, clen = 0;
	ssize_t n;

	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		return -1;
	if (sockclient_read_head(fd, buf, &got, &end) == -1 ||
	    sscanf(buf, "HTTP/1.1 %d", status) != 1)
		return -1;
	if ((v = sockclient_header(buf, end, "Content-Length", &len)) != NULL)
		clen = strtoul(v, NULL, 10);
	if (token != NULL && (v = sockclient_header(buf, end, "X-Agent-Token", &len)) != NULL &&
	    len == SOCKCLIENT_TOKEN - 1) {
		memcpy(token, v, len);
		token[len] = '\0';
	}
	if (etag != NULL && (v = sockclient_header(buf, end, "ETag", &len)) != NULL &&
	    len == SOCKCLIENT_ETAG + 1 && v[0] == '"' && v[len - 1] == '"') {
		memcpy(etag, v + 1, SOCKCLIENT_ETAG - 1);
		etag[SOCKCLIENT_ETAG - 1] = '\0';
	}
	/* The rest of the body, read over what was kept: only its length matters here. */
	need = (size_t)(end - buf) + 4 + clen;
	while (got < need) {
		len = need - got < SOCKCLIENT_BUF ? need - got : SOCKCLIENT_BUF;
		if ((n = read(fd, buf, len)) <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}
