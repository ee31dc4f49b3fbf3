/* Framing and budgeted decoding: the caps hold before anything is allocated. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "wire.h"

static void
test_length_roundtrip(void **state)
{
	static const uint32_t lens[] = { 0, 1, 255, 256, 65535, WIRE_MAX_REQUEST,
		WIRE_MAX_REQUEST + 1, 0x80000000u, 0xffffffffu };
	uint8_t hdr[WIRE_HEADER_LEN];
	size_t i;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		wire_put_length(hdr, lens[i]);
		assert_int_equal(wire_get_length(hdr), lens[i]);
	}
	wire_put_length(hdr, 0x01020304);
	assert_memory_equal(hdr, "\x01\x02\x03\x04", 4);
}

static void
test_pack_unpack(void **state)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__StatusRequest st = CAROTATE__V1__STATUS_REQUEST__INIT;
	Carotate__V1__Request *got;
	struct wire_budget b;
	uint8_t *frame;
	size_t len;

	req.version = WIRE_VERSION;
	req.call_case = CAROTATE__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	frame = wire_frame_pack(&req.base, WIRE_MAX_REQUEST, &len);
	assert_non_null(frame);
	assert_int_equal(wire_get_length(frame), len - WIRE_HEADER_LEN);
	wire_budget_init(&b, wire_request_budget(len));
	got = wire_request_unpack(frame + WIRE_HEADER_LEN, len - WIRE_HEADER_LEN, &b);
	assert_non_null(got);
	assert_int_equal(got->version, 1);
	assert_int_equal(got->call_case, CAROTATE__V1__REQUEST__CALL_STATUS);
	assert_true(b.used > 0);
	protobuf_c_message_free_unpacked(&got->base, &b.allocator);
	assert_int_equal(b.used, 0);
	free(frame);
}

/* A message larger than the cap is not packed at all. */
static void
test_pack_over_cap(void **state)
{
	Carotate__V1__Response resp = CAROTATE__V1__RESPONSE__INIT;
	char *big = malloc(2000);
	uint8_t *frame;
	size_t len = 0;

	memset(big, 'x', 1999);
	big[1999] = '\0';
	resp.message = big;
	assert_null(wire_frame_pack(&resp.base, 1000, &len));
	frame = wire_frame_pack(&resp.base, 4000, &len);
	assert_non_null(frame);
	assert_true(len > 1999 + WIRE_HEADER_LEN);
	free(frame);
	free(big);
}

/*
 * Unknown fields are kept by protobuf-c, each costing far more memory than
 * its three bytes: 80,000 of them must exhaust the budget, not the heap.
 */
static void
test_budget_stops_amplification(void **state)
{
	size_t n = 80000, len = 3 * n + 2, i;
	uint8_t *buf = malloc(len);
	struct wire_budget b;
	Carotate__V1__Request *req;

	buf[0] = 0x08; /* version = 1 */
	buf[1] = 0x01;
	for (i = 0; i < n; i++) {
		buf[2 + 3 * i] = 0xa0; /* field 100 (unknown), varint 0 */
		buf[3 + 3 * i] = 0x06;
		buf[4 + 3 * i] = 0x00;
	}
	wire_budget_init(&b, wire_request_budget(len));
	req = wire_request_unpack(buf, len, &b);
	assert_null(req);
	assert_true(b.exhausted);
	assert_int_equal(b.used, 0);

	/* The same bytes decode with an unlimited budget: it was the budget that refused. */
	wire_budget_init(&b, SIZE_MAX);
	req = wire_request_unpack(buf, len, &b);
	assert_non_null(req);
	assert_true(b.used > wire_request_budget(len));
	protobuf_c_message_free_unpacked(&req->base, &b.allocator);
	free(buf);
}

static void
test_garbage_does_not_decode(void **state)
{
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct wire_budget b;

	wire_budget_init(&b, wire_request_budget(sizeof(junk)));
	assert_null(wire_request_unpack(junk, sizeof(junk), &b));
	assert_false(b.exhausted);
	assert_int_equal(b.used, 0);
}

static void
test_read_frame(void **state)
{
	int sv[2];
	uint8_t hdr[WIRE_HEADER_LEN], *body = NULL;
	size_t len;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* A whole frame. */
	wire_put_length(hdr, 3);
	assert_int_equal(wire_write_all(sv[0], hdr, 4, 1000), 0);
	assert_int_equal(wire_write_all(sv[0], "abc", 3, 1000), 0);
	assert_int_equal(wire_read_frame(sv[1], 16, &body, &len, 1000), WIRE_READ_OK);
	assert_int_equal(len, 3);
	assert_memory_equal(body, "abc", 3);
	free(body);
	/* Over the cap: refused from the header alone. */
	wire_put_length(hdr, 17);
	assert_int_equal(wire_write_all(sv[0], hdr, 4, 1000), 0);
	assert_int_equal(wire_read_frame(sv[1], 16, &body, &len, 1000), WIRE_READ_TOOLARGE);
	/* Truncated, then nothing more: a timeout. */
	wire_put_length(hdr, 10);
	assert_int_equal(wire_write_all(sv[0], hdr, 4, 1000), 0);
	assert_int_equal(wire_write_all(sv[0], "abc", 3, 1000), 0);
	assert_int_equal(wire_read_frame(sv[1], 16, &body, &len, 50), WIRE_READ_TIMEOUT);
	/* Truncated, then closed: EOF. */
	assert_int_equal(wire_write_all(sv[0], hdr, 4, 1000), 0);
	close(sv[0]);
	assert_int_equal(wire_read_frame(sv[1], 16, &body, &len, 1000), WIRE_READ_EOF);
	close(sv[1]);
}

/* A string holding a NUL decodes, truncated: only the re-encoded size gives it away. */
static void
test_canonical(void **state)
{
	static const uint8_t nul[] = { 0x08, 0x01, 0x7a, 0x05, 0x0a, 0x03, 'a', 0, 'b' };
	static const uint8_t clean[] = { 0x08, 0x01, 0x7a, 0x05, 0x0a, 0x03, 'a', 'x', 'b' };
	static const uint8_t padded[] = { 0x08, 0x81, 0x00 }; /* version 1 as a two-byte varint */
	struct wire_budget b;
	Carotate__V1__Request *req;

	wire_budget_init(&b, 4096);
	assert_non_null(req = wire_request_unpack(clean, sizeof(clean), &b));
	assert_string_equal(req->restore->backup, "axb");
	assert_true(wire_request_canonical(req, sizeof(clean)));
	protobuf_c_message_free_unpacked(&req->base, &b.allocator);

	wire_budget_init(&b, 4096);
	assert_non_null(req = wire_request_unpack(nul, sizeof(nul), &b));
	assert_string_equal(req->restore->backup, "a");
	assert_false(wire_request_canonical(req, sizeof(nul)));
	protobuf_c_message_free_unpacked(&req->base, &b.allocator);

	wire_budget_init(&b, 4096);
	assert_non_null(req = wire_request_unpack(padded, sizeof(padded), &b));
	assert_int_equal(req->version, 1);
	assert_false(wire_request_canonical(req, sizeof(padded)));
	protobuf_c_message_free_unpacked(&req->base, &b.allocator);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_length_roundtrip),
		cmocka_unit_test(test_pack_unpack),
		cmocka_unit_test(test_pack_over_cap),
		cmocka_unit_test(test_budget_stops_amplification),
		cmocka_unit_test(test_garbage_does_not_decode),
		cmocka_unit_test(test_read_frame),
		cmocka_unit_test(test_canonical),
	};

	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
