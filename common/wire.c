#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"
#include "clock.h"
#include "xmalloc.h"

/* Every budgeted allocation carries its size in front, so free can give it back. */
union wire_block {
	size_t size;
	max_align_t align;
};

static void *wire_budget_alloc(void *, size_t);
static void wire_budget_free(void *, void *);

uint32_t
wire_get_length(const uint8_t hdr[WIRE_HEADER_LEN])
{
	return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
}

void
wire_put_length(uint8_t hdr[WIRE_HEADER_LEN], uint32_t len)
{
	hdr[0] = len >> 24;
	hdr[1] = len >> 16;
	hdr[2] = len >> 8;
	hdr[3] = len;
}

static void *
wire_budget_alloc(void *data, size_t size)
{
	struct wire_budget *b = data;
	union wire_block *blk;

	if (size > b->limit || b->used > b->limit - size) {
		b->exhausted = 1;
		return NULL;
	}
	if ((blk = malloc(sizeof(*blk) + size)) == NULL)
		return NULL;
	blk->size = size;
	b->used += size;
	return blk + 1;
}

static void
wire_budget_free(void *data, void *p)
{
	struct wire_budget *b = data;
	union wire_block *blk;

	if (p == NULL)
		return;
	blk = (union wire_block *)p - 1;
	b->used -= blk->size;
	/* Requests may carry private keys: nothing decoded outlives its request. */
	explicit_bzero(p, blk->size);
	free(blk);
}

void
wire_budget_init(struct wire_budget *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->allocator.alloc = wire_budget_alloc;
	b->allocator.free = wire_budget_free;
	b->allocator.allocator_data = b;
	b->limit = limit;
}

/*
 * Unpacking amplifies memory (an empty sub-message costs far more than its
 * two bytes). Legitimate requests carry mostly strings and bytes, which cost
 * about their length once; allow twice that plus room for the structures.
 */
size_t
wire_request_budget(size_t len)
{
	return 64 * 1024 + 2 * len;
}

Carotate__V1__Request *
wire_request_unpack(const uint8_t *buf, size_t len, struct wire_budget *b)
{
	return carotate__v1__request__unpack(&b->allocator, len, buf);
}

int
wire_request_canonical(const Carotate__V1__Request *req, size_t len)
{
	return protobuf_c_message_get_packed_size(&req->base) == len;
}

Carotate__V1__Response *
wire_response_unpack(const uint8_t *buf, size_t len, struct wire_budget *b)
{
	return carotate__v1__response__unpack(&b->allocator, len, buf);
}

uint8_t *
wire_frame_pack(const ProtobufCMessage *msg, size_t cap, size_t *framelen)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;

	if (len > cap)
		return NULL;
	buf = xmalloc(WIRE_HEADER_LEN + len);
	wire_put_length(buf, (uint32_t)len);
	if (protobuf_c_message_pack(msg, buf + WIRE_HEADER_LEN) != len)
		abort();
	*framelen = WIRE_HEADER_LEN + len;
	return buf;
}

/* Waits for events on fd until the deadline; 1 ready, 0 timed out, -1 error. */
static int
wire_wait(int fd, short events, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int timeout, n;

	for (;;) {
		timeout = -1;
		if (deadline >= 0) {
			long long left = deadline - clock_ms();
			timeout = left > 0 ? (int)left : 0;
		}
		n = poll(&pfd, 1, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -1 : n > 0;
	}
}

int
wire_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	const uint8_t *p = buf;
	long long deadline = timeout_ms < 0 ? -1 : clock_ms() + timeout_ms;
	ssize_t n;
	int r;

	while (len > 0) {
		if ((r = wire_wait(fd, POLLOUT, deadline)) <= 0) {
			if (r == 0)
				errno = ETIMEDOUT;
			return -1;
		}
		/* A peer that closed first must not kill us with SIGPIPE. */
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes; the result codes of wire_read_frame. */
static enum wire_read_result
wire_read_exact(int fd, uint8_t *p, size_t len, long long deadline)
{
	ssize_t n;
	int r;

	while (len > 0) {
		if ((r = wire_wait(fd, POLLIN, deadline)) <= 0)
			return r == 0 ? WIRE_READ_TIMEOUT : WIRE_READ_ERROR;
		n = read(fd, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? WIRE_READ_EOF : WIRE_READ_ERROR;
		if (n == 0)
			return WIRE_READ_EOF;
		p += n;
		len -= (size_t)n;
	}
	return WIRE_READ_OK;
}

enum wire_read_result
wire_read_frame(int fd, size_t cap, uint8_t **body, size_t *len, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : clock_ms() + timeout_ms;
	uint8_t hdr[WIRE_HEADER_LEN];
	enum wire_read_result r;
	uint32_t n;
	uint8_t *buf;

	if ((r = wire_read_exact(fd, hdr, sizeof(hdr), deadline)) != WIRE_READ_OK)
		return r;
	n = wire_get_length(hdr);
	if (n > cap)
		return WIRE_READ_TOOLARGE;
	buf = xmalloc(n > 0 ? n : 1);
	if ((r = wire_read_exact(fd, buf, n, deadline)) != WIRE_READ_OK) {
		free(buf);
		return r;
	}
	*body = buf;
	*len = n;
	return WIRE_READ_OK;
}
