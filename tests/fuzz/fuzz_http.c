/*
 * The agent worker's HTTP side, end to end: the worker's own evhttp sites
 * (daemon/worker/worker.c: worker_handle, worker_route, worker_headers, its
 * connection deadlines and its parent channel) on listening unix sockets in
 * a scratch directory, one client connection per input carrying the input
 * as raw bytes, then EOF. The harness plays the parent: it reads the
 * worker's AgentRequest frames with the parent's own reader
 * (supervise_fuzz_batch) and answers each with an AgentResponse.
 *
 * A worker serves one socket, whichever site it is (the parent, not the
 * worker, tells them apart), so one listener is enough here.
 *
 * Input: one byte of flags (bit 0: unused since each site has its own
 * worker, kept so that the corpus keeps its meaning; bits 1-3:
 * how the parent answers: 200, 304, 401, 400, 503, a malformed 200, an
 * out-of-range status, or an unknown seq first), then the HTTP bytes.
 * The loop runs until the worker has closed the connection and no request
 * waits on the parent.
 *
 * Invariants: whatever the worker forwards, the parent accepts (else the
 * parent would kill it); every answer on the connection starts with an
 * HTTP status line; afterwards no connection or pending request is left.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fuzzlib.h"
#include "internal.pb-c.h"
#include "log.h"
#include "supervise.h"
#include "wire.h"
#include "worker.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FUZZ_BUNDLE                                                                                \
	"-----BEGIN CERTIFICATE-----\nMIIBfzCCASWgAwIBAgIUfuzz\n-----END CERTIFICATE-----\n"

static struct event_base *fuzz_base;
static int fuzz_parent = -1;         /* our end of the worker's socketpair */
static struct event *fuzz_parent_ev; /* frames from the worker */
static struct evbuffer *fuzz_from_worker;
static unsigned fuzz_answer; /* bits 1-3 of the flags */
static char fuzz_sock[512];

static int fuzz_listen(const char *);
static void fuzz_parent_cb(evutil_socket_t, short, void *);
static void fuzz_answer_batch(
    struct supervise *, Carotate__Internal__AgentRequest **, size_t, void *);
static void fuzz_send_answer(const Carotate__Internal__AgentResponse *);
static int fuzz_connect(const char *);
static void fuzz_check_answers(struct evbuffer *);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir;
	int pair[2];

	log_init(1, 0, "fuzz_http");
	dir = fuzz_tmpdir("http");
	fuzz_path(fuzz_sock, sizeof(fuzz_sock), dir, "agent.sock");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == -1)
		fuzz_fail("socketpair: %s", strerror(errno));
	fuzz_parent = pair[0];
	fuzz_base = worker_fuzz_start(pair[1], fuzz_listen(fuzz_sock));
	fuzz_from_worker = evbuffer_new();
	fuzz_parent_ev =
	    event_new(fuzz_base, fuzz_parent, EV_READ | EV_PERSIST, fuzz_parent_cb, NULL);
	if (fuzz_from_worker == NULL || fuzz_parent_ev == NULL || event_add(fuzz_parent_ev, NULL))
		fuzz_fail("out of memory");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_client c;

	if (size < 1)
		return 0;
	fuzz_answer = (data[0] >> 1) & 7;
	fuzz_client_start(&c, fuzz_base, fuzz_connect(fuzz_sock), data + 1, size - 1);
	while (!c.done || worker_fuzz_pending() > 0 || worker_fuzz_conns() > 0)
		if (event_base_loop(fuzz_base, EVLOOP_ONCE) != 0)
			fuzz_fail("the event loop ran dry");
	if (evbuffer_get_length(fuzz_from_worker) != 0)
		fuzz_fail("%zu bytes of a frame from the worker left over",
		    evbuffer_get_length(fuzz_from_worker));
	fuzz_check_answers(c.in);
	fuzz_client_close(&c);
	return 0;
}

static int
fuzz_listen(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || listen(fd, 64) == -1)
		fuzz_fail("listen %s: %s", path, strerror(errno));
	return fd;
}

static int
fuzz_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fuzz_fail("connect %s: %s", path, strerror(errno));
	return fd;
}

/* The parent's side: the worker's frames through the parent's own reader. */
static void
fuzz_parent_cb(evutil_socket_t fd, short what, void *arg)
{
	const char *bad;
	int n;

	while ((n = evbuffer_read(fuzz_from_worker, fd, 65536)) > 0)
		;
	if (n == 0 || (n == -1 && errno != EAGAIN))
		fuzz_fail("the worker closed its channel");
	if ((bad = supervise_fuzz_batch(fuzz_from_worker, 0, fuzz_answer_batch, NULL)) != NULL)
		fuzz_fail("the worker %s: the parent would kill it", bad);
}

/* Answers each request as the flags say. */
static void
fuzz_answer_batch(
    struct supervise *sv, Carotate__Internal__AgentRequest **reqs, size_t n, void *arg)
{
	static const unsigned status[] = { 200, 304, 401, 400, 503, 200, 700, 200 };
	Carotate__Internal__AgentResponse r;
	size_t i;

	for (i = 0; i < n; i++) {
		carotate__internal__agent_response__init(&r);
		if (fuzz_answer == 7) {
			r.seq = reqs[i]->seq + 1; /* waits on nothing: dropped by the worker */
			fuzz_send_answer(&r);
		}
		r.seq = reqs[i]->seq;
		r.http_status = status[fuzz_answer];
		r.etag = (char *)(fuzz_answer == 5 ? "\"not-hex\"" : FUZZ_HEX);
		if (reqs[i]->call == CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK)
			r.token = (char *)FUZZ_HEX;
		if (r.http_status == 200)
			r.bundle = (ProtobufCBinaryData){ sizeof(FUZZ_BUNDLE) - 1,
				(uint8_t *)FUZZ_BUNDLE };
		else
			r.error = (char *)"refused \x01 by the parent";
		fuzz_send_answer(&r);
	}
}

static void
fuzz_send_answer(const Carotate__Internal__AgentResponse *r)
{
	uint8_t *frame;
	size_t len;
	ssize_t n;

	if ((frame = wire_frame_pack(&r->base, WORKER_MAX_RESPONSE_FRAME, &len)) == NULL)
		fuzz_fail("answer too large");
	/* Small frames into an empty socket buffer: written whole or the test is broken. */
	if ((n = write(fuzz_parent, frame, len)) != (ssize_t)len)
		fuzz_fail("write to the worker: %zd of %zu bytes", n, len);
	free(frame);
}

/* Whatever came back starts with a status line of HTTP/1.x and a 3-digit code. */
static void
fuzz_check_answers(struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	const char *p, *sp;

	if (len == 0)
		return;
	p = (const char *)evbuffer_pullup(in, -1);
	log_info("answer: %.*s", (int)(len > 200 ? 200 : len), p);
	/* evhttp answers in the request's version, whatever it named ("HTTP/-1.1" too). */
	sp = memchr(p, ' ', len);
	if (len < 13 || memcmp(p, "HTTP/", 5) != 0 || sp == NULL || (size_t)(sp - p) + 5 > len ||
	    sp[1] < '1' || sp[1] > '5' || !isdigit((unsigned char)sp[2]) ||
	    !isdigit((unsigned char)sp[3]) || sp[4] != ' ')
		fuzz_fail("the answer does not start with an HTTP status line: %.40s", p);
}
