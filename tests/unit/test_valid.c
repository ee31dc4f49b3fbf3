/*
 * The agent-id allow-list the daemon (worker, supervise, exclude/include/forget), the CLI
 * (exclude, include, forget) and the agent (agent.conf, its state) share. Each once held
 * its own copy with its own constant of 64: a change to one (a longer id, one more
 * character) would have let the CLI or the agent accept an id the daemon refuses. Also
 * errbuf_fail, the one "fill err, return -1" of the daemon's modules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "errbuf.h"
#include "proto_limits.h"
#include "valid.h"

static int
test_id(const char *s)
{
	return valid_agent_id(s, strlen(s));
}

static void
test_agent_id_good(void **state)
{
	char id[LIMITS_MAX_AGENT_ID + 1];
	const char *c;

	assert_true(test_id("a"));
	assert_true(test_id("host-1.example_X"));
	for (c = VALID_AGENT_ID_CHARS; *c != '\0'; c++)
		assert_true(valid_agent_id(c, 1));
	memset(id, 'x', LIMITS_MAX_AGENT_ID);
	id[LIMITS_MAX_AGENT_ID] = '\0';
	assert_true(test_id(id));
}

/* Every byte outside the list is refused, in every position; so are the lengths out of range. */
static void
test_agent_id_bad(void **state)
{
	char id[LIMITS_MAX_AGENT_ID + 2];
	int c;

	assert_false(test_id(""));
	assert_false(valid_agent_id(NULL, 0));
	assert_false(valid_agent_id(NULL, 3));
	memset(id, 'x', LIMITS_MAX_AGENT_ID + 1);
	id[LIMITS_MAX_AGENT_ID + 1] = '\0';
	assert_false(test_id(id));
	for (c = 1; c < 256; c++) {
		if (c < 128 && strchr(VALID_AGENT_ID_CHARS, c) != NULL)
			continue;
		strcpy(id, "abc");
		id[0] = (char)c;
		assert_false(test_id(id));
		strcpy(id, "abc");
		id[2] = (char)c;
		assert_false(test_id(id));
	}
	assert_false(test_id("a b"));
	assert_false(test_id("../etc"));
	assert_false(test_id("a\n"));
	assert_false(test_id("\xc3\xa9"));
}

/* A NUL inside the length the caller gives (a protobuf string is NUL-terminated, a header not). */
static void
test_agent_id_nul_inside(void **state)
{
	assert_false(valid_agent_id("ab\0cd", 5));
	assert_false(valid_agent_id("\0", 1));
	assert_true(valid_agent_id("ab\0cd", 2));
}

static void
test_errbuf_fail(void **state)
{
	char err[8];

	memset(err, 'z', sizeof(err));
	assert_int_equal(errbuf_fail(err, sizeof(err), "%s %d", "bad", 12345), -1);
	assert_string_equal(err, "bad 123");
	assert_int_equal(errbuf_fail(NULL, 0, "%s", "nothing written"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_id_good),
		cmocka_unit_test(test_agent_id_bad),
		cmocka_unit_test(test_agent_id_nul_inside),
		cmocka_unit_test(test_errbuf_fail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
