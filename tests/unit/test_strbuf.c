/*
 * strbuf_appendf: pieces of a journal or a manifest appended to a fixed buffer. A piece
 * that does not fit whole fails, and the length stays where it was, so a caller never
 * writes a cut line (the journal and the backup manifest each had their own copy).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "strbuf.h"

static void
test_pieces(void **state)
{
	char buf[16];
	size_t len = 0;

	assert_int_equal(strbuf_appendf(buf, sizeof(buf), &len, "op %s\n", "rotate"), 0);
	assert_int_equal(strbuf_appendf(buf, sizeof(buf), &len, "n %d\n", 42), 0);
	assert_string_equal(buf, "op rotate\nn 42\n");
	assert_int_equal(len, 15);
}

static void
test_exact_fit_and_overflow(void **state)
{
	char buf[8];
	size_t len = 0;

	assert_int_equal(strbuf_appendf(buf, sizeof(buf), &len, "%s", "1234567"), 0);
	assert_int_equal(len, 7); /* 7 characters and the NUL: full */
	assert_int_equal(strbuf_appendf(buf, sizeof(buf), &len, "%s", "x"), -1);
	assert_int_equal(len, 7);
	len = 3;
	assert_int_equal(strbuf_appendf(buf, sizeof(buf), &len, "%s", "abcde"), -1);
	assert_int_equal(len, 3); /* not advanced over a cut piece */
	len = sizeof(buf);
	assert_int_equal(strbuf_appendf(buf, sizeof(buf), &len, "%s", ""), -1);
	assert_int_equal(len, sizeof(buf));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_exact_fit_and_overflow),
	};

	return cmocka_run_group_tests_name("strbuf", tests, NULL, NULL);
}
