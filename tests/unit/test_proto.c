/*
 * The schema's safety property: no message type can contain itself, directly
 * or through others (protobuf-c's decoder has no depth limit, so a recursive
 * type would let a small frame exhaust the stack). Also pins the envelope's
 * field numbers and names, which are the public API.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "carotate.pb-c.h"
#include "status.h"

#define MAX_TYPES 256

/* 1 when some type reachable from d (through message fields) is d itself or loops. */
static int
reaches(const ProtobufCMessageDescriptor *d, const ProtobufCMessageDescriptor **path, int depth)
{
	unsigned i;
	int k;

	for (k = 0; k < depth; k++)
		if (path[k] == d)
			return 1;
	if (depth >= MAX_TYPES)
		return 1;
	path[depth] = d;
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->type == PROTOBUF_C_TYPE_MESSAGE && reaches(f->descriptor, path, depth + 1))
			return 1;
	}
	return 0;
}

static int
recursive(const ProtobufCMessageDescriptor *root)
{
	const ProtobufCMessageDescriptor *path[MAX_TYPES + 1];

	return reaches(root, path, 0);
}

static void
test_no_recursive_types(void **state)
{
	assert_false(recursive(&carotate__v1__request__descriptor));
	assert_false(recursive(&carotate__v1__response__descriptor));
}

/* The walker itself must see a cycle: two hand-made types that contain each other. */
static void
test_walker_detects_cycle(void **state)
{
	static ProtobufCFieldDescriptor fa[1], fb[1];
	static ProtobufCMessageDescriptor a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	fa[0].name = "b";
	fa[0].type = PROTOBUF_C_TYPE_MESSAGE;
	fa[0].descriptor = &b;
	fb[0].name = "a";
	fb[0].type = PROTOBUF_C_TYPE_MESSAGE;
	fb[0].descriptor = &a;
	a.fields = fa;
	a.n_fields = 1;
	b.fields = fb;
	b.n_fields = 1;
	assert_true(recursive(&a));
	fb[0].type = PROTOBUF_C_TYPE_STRING;
	fb[0].descriptor = NULL;
	assert_false(recursive(&a));
}

static void
expect_field(const ProtobufCMessageDescriptor *d, const char *name, unsigned number)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(d, name);

	assert_non_null(f);
	assert_int_equal(f->id, number);
}

/* proto/carotate.proto: package carotate.v1, field numbers of the envelope. */
static void
test_envelope_numbers(void **state)
{
	const ProtobufCMessageDescriptor *req = &carotate__v1__request__descriptor;
	const ProtobufCMessageDescriptor *resp = &carotate__v1__response__descriptor;

	assert_string_equal(req->name, "carotate.v1.Request");
	assert_string_equal(resp->name, "carotate.v1.Response");
	expect_field(req, "version", 1);
	expect_field(req, "status", 10);
	expect_field(req, "generate", 11);
	expect_field(req, "install", 12);
	expect_field(req, "report", 13);
	expect_field(req, "rotate", 14);
	expect_field(req, "restore", 15);
	expect_field(req, "list_backups", 16);
	expect_field(req, "discard", 17);
	expect_field(req, "retire", 18);
	expect_field(req, "audit", 19);
	expect_field(resp, "status", 1);
	expect_field(resp, "message", 2);
}

static void
test_status_enum(void **state)
{
	static const char *names[] = { "OK", "INVALID_ARGUMENT", "PERMISSION_DENIED",
		"FAILED_PRECONDITION", "NOT_FOUND", "ALREADY_EXISTS", "INTERNAL", "UNAVAILABLE" };
	const ProtobufCEnumDescriptor *e = &carotate__v1__status__descriptor;
	int i;

	assert_string_equal(e->name, "carotate.v1.Status");
	for (i = 0; i < 8; i++) {
		const ProtobufCEnumValue *v =
		    protobuf_c_enum_descriptor_get_value_by_name(e, names[i]);

		assert_non_null(v);
		assert_int_equal(v->value, i);
	}
}

/* One table of status names (common/status.c): it covers every value of the protocol, and the
 * audit log's spelling is the protocol's own. */
static void
test_status_names(void **state)
{
	const ProtobufCEnumDescriptor *d = &carotate__v1__status__descriptor;
	unsigned i;

	for (i = 0; i < d->n_values; i++) {
		assert_string_equal(status_record_name(d->values[i].value), d->values[i].name);
		assert_string_not_equal(status_name(d->values[i].value), "unknown");
	}
	assert_string_equal(status_record_name(99), "UNKNOWN");
	assert_string_equal(status_name(99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_recursive_types),
		cmocka_unit_test(test_walker_detects_cycle),
		cmocka_unit_test(test_envelope_numbers),
		cmocka_unit_test(test_status_enum),
		cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
