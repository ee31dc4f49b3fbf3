/*
 * The client side of the daemon's two sockets, shared by the bench and load
 * tools: connecting to an AF_UNIX stream socket, and one blocking HTTP/1.1
 * exchange with the agent socket (what linking and the ingest bench need).
 * The control protocol's frames are built with common/wire.h.
 */
#ifndef CAROTATE_SOCKCLIENT_H
#define CAROTATE_SOCKCLIENT_H

#include <stddef.h>

#define SOCKCLIENT_BUF   65536 /* bytes of one response's header block and body kept */
#define SOCKCLIENT_TOKEN 65    /* an agent token: 64 hex digits and a NUL */
#define SOCKCLIENT_ETAG  65    /* a bundle's ETag without its quotes: 64 hex digits and a NUL */

/*
 * A stream connection to the socket at path, non-blocking when nonblock. -1
 * with errno: ENAMETOOLONG when path does not fit sun_path, EAGAIN from a
 * non-blocking connect when the listener's backlog is full (AF_UNIX never
 * answers EINPROGRESS).
 */
int sockclient_connect(const char *path, int nonblock);

/* The value of header name in the header block [h, end) and its length; NULL when absent. */
const char *sockclient_header(const char *h, const char *end, const char *name, size_t *len);

/*
 * Writes req on the blocking connection fd and reads one whole response
 * (Content-Length). Sets *status; token and etag, when not NULL, receive the
 * X-Agent-Token and the ETag (unquoted) when the response carries well-formed
 * ones. 0, or -1 on an I/O error or a response that does not parse.
 */
int sockclient_http_exchange(int fd, const char *req, int *status, char *token, char *etag);

#endif
