/*
 * The parent's reader of the agent worker's frames (daemon/sys/supervise.c):
 * what a compromised worker can send. The input is the byte stream on the
 * socketpair (4-byte big-endian length, then an AgentRequest, repeated),
 * after one leading byte that says where the stream is cut in two reads, so
 * that frames split across reads are covered.
 *
 * Invariants: every request handed on has passed the checks the parent
 * relies on and carries the worker's generation in the top bits of its seq;
 * when nothing was refused, what stays buffered is less than a whole frame.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "fuzzlib.h"
#include "log.h"
#include "supervise.h"
#include "valid.h"
#include "wire.h"
#include "worker.h"

#define FUZZ_GEN UINT64_C(0x2a)

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void fuzz_requests(struct supervise *, Carotate__Internal__AgentRequest **, size_t, void *);
static void fuzz_leftover(struct evbuffer *);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(1, 0, "fuzz_internal");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *in;
	const char *bad;
	size_t cut, seen = 0;

	if (size < 1)
		return 0;
	cut = (size_t)data[0] * (size - 1) / 255;
	if ((in = evbuffer_new()) == NULL)
		fuzz_fail("evbuffer_new");
	evbuffer_add(in, data + 1, cut);
	bad = supervise_fuzz_batch(in, FUZZ_GEN, fuzz_requests, &seen);
	if (bad == NULL) {
		fuzz_leftover(in);
		evbuffer_add(in, data + 1 + cut, size - 1 - cut);
		bad = supervise_fuzz_batch(in, FUZZ_GEN, fuzz_requests, &seen);
	}
	if (bad == NULL)
		fuzz_leftover(in);
	evbuffer_free(in);
	return 0;
}

/* The parent's callee: what it may take for granted of each request. */
static void
fuzz_requests(struct supervise *sv, Carotate__Internal__AgentRequest **reqs, size_t n, void *arg)
{
	const Carotate__Internal__AgentRequest *r;
	size_t *seen = arg, i;
	uint64_t low;

	if (n == 0)
		fuzz_fail("an empty batch was handed on");
	for (i = 0; i < n; i++) {
		r = reqs[i];
		low = r->seq & WORKER_MAX_SEQ;
		if (r->seq >> 48 != FUZZ_GEN || low == 0)
			fuzz_fail(
			    "seq %llx lacks the generation or is 0", (unsigned long long)r->seq);
		if (r->call != CAROTATE__INTERNAL__AGENT_CALL__AGENT_CHECKIN &&
		    r->call != CAROTATE__INTERNAL__AGENT_CALL__AGENT_LINK)
			fuzz_fail("unknown call %d handed on", (int)r->call);
		if (!valid_agent_id(r->agent_id, strlen(r->agent_id)))
			fuzz_fail("malformed agent id handed on");
		if (!worker_valid_credential(r->call, r->credential.data, r->credential.len))
			fuzz_fail("malformed credential handed on");
		if (r->if_none_match[0] != '\0' &&
		    !worker_valid_hex64(r->if_none_match, strlen(r->if_none_match)))
			fuzz_fail("malformed If-None-Match handed on");
	}
	*seen += n;
}

/* Whole frames are always taken: what is left is the start of one. */
static void
fuzz_leftover(struct evbuffer *in)
{
	uint8_t hdr[WIRE_HEADER_LEN];
	size_t have = evbuffer_get_length(in);

	if (have < WIRE_HEADER_LEN)
		return;
	evbuffer_copyout(in, hdr, sizeof(hdr));
	if (have >= WIRE_HEADER_LEN + (size_t)wire_get_length(hdr))
		fuzz_fail("a whole frame of %u bytes was left buffered", wire_get_length(hdr));
}
