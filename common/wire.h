/* Control-socket framing: a 4-byte big-endian length, then one protobuf message. */
#ifndef CAROTATE_WIRE_H
#define CAROTATE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "carotate.pb-c.h"

#define WIRE_VERSION      1
#define WIRE_HEADER_LEN   4
#define WIRE_MAX_REQUEST  (256u * 1024)       /* bytes of body */
#define WIRE_MAX_REPLY    (4u * 1024 * 1024)  /* bytes of body */
#define WIRE_REPLY_BUDGET (64u * 1024 * 1024) /* unpack memory for one reply */

/*
 * An unpack allocator that refuses to hand out more than `limit` bytes in
 * total, so a small hostile frame cannot amplify into a large allocation.
 */
struct wire_budget {
	ProtobufCAllocator allocator;
	size_t used;
	size_t limit;
	int exhausted;
};

uint32_t wire_get_length(const uint8_t hdr[WIRE_HEADER_LEN]);
void wire_put_length(uint8_t hdr[WIRE_HEADER_LEN], uint32_t len);

void wire_budget_init(struct wire_budget *, size_t limit);
/* The unpack budget for a request body of len bytes. */
size_t wire_request_budget(size_t len);

/* NULL when the body does not decode within the budget. */
Carotate__V1__Request *wire_request_unpack(const uint8_t *, size_t, struct wire_budget *);
/*
 * 1 when req re-encodes to exactly len bytes. protobuf-c hands strings over
 * NUL-terminated and drops their length, so "certs-...\0junk" would arrive
 * as a valid backup id: a string holding a NUL (or any other non-canonical
 * encoding) makes the sizes differ, and such a request is refused whole.
 */
int wire_request_canonical(const Carotate__V1__Request *req, size_t len);
Carotate__V1__Response *wire_response_unpack(const uint8_t *, size_t, struct wire_budget *);

/* Header + packed body in one malloc'd buffer; NULL if the body would exceed cap. */
uint8_t *wire_frame_pack(const ProtobufCMessage *, size_t cap, size_t *framelen);

/* Blocking helpers for clients: whole buffers, with a deadline in milliseconds (-1: none). */
int wire_write_all(int fd, const void *, size_t, int timeout_ms);

enum wire_read_result {
	WIRE_READ_OK = 0,
	WIRE_READ_EOF,      /* peer closed before a whole frame */
	WIRE_READ_TOOLARGE, /* header announced more than cap */
	WIRE_READ_TIMEOUT,
	WIRE_READ_ERROR, /* errno set */
};
/* Reads one frame; *body is malloc'd (freed by the caller), *len its length. */
enum wire_read_result wire_read_frame(
    int fd, size_t cap, uint8_t **body, size_t *len, int timeout_ms);

#endif
