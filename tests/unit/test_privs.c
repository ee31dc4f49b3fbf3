/*
 * The children's privilege drops (privs.c) between fork and exec: they make
 * system calls only. libcap allocates in cap_init, cap_get_proc and
 * cap_compare (a copy of one set); a drop that called them in a child would
 * allocate after fork, which the raw capset(2) it replaced never did (the
 * first version of the move compared its read-back with cap_compare: this
 * test caught it). This program counts the allocations a forked child makes
 * while it drops (malloc, calloc, realloc wrap glibc's own) and requires
 * none; and a drop whose sets were not prepared fails instead of allocating.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "privs.h"
#include "sandbox.h"

/* Counting needs our own malloc: not under AddressSanitizer or valgrind, which bring theirs. */
#if defined(__SANITIZE_ADDRESS__)
#define PRIVS_TEST_COUNTS 0
#else
#define PRIVS_TEST_COUNTS 1
#endif

static volatile int counting;
static volatile int allocations;

#if PRIVS_TEST_COUNTS
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *
malloc(size_t n)
{
	allocations += counting;
	return __libc_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
	allocations += counting;
	return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
	allocations += counting;
	return __libc_realloc(p, n);
}

void
free(void *p)
{
	__libc_free(p);
}
#endif

static struct sandbox_ids ids;

static const char *
drop_worker(void)
{
	return privs_drop_worker(&ids);
}

static const char *
drop_job(void)
{
	return privs_drop_job(&ids);
}

/*
 * Runs drop in a child: 0 when it succeeded without allocating, 2 when it
 * failed (3 with EINVAL: not prepared), 4 when it allocated.
 */
static int
in_child(const char *(*drop)(void))
{
	const char *step;
	int status, r;
	pid_t pid;

	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		counting = 1;
		step = drop();
		counting = 0;
		r = step != NULL ? (errno == EINVAL ? 3 : 2) : allocations > 0 ? 4 : 0;
		_exit(r);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Runs first: nothing has called privs_prepare yet. */
static void
test_unprepared(void **state)
{
	assert_int_equal(in_child(privs_drop_function), 3);
	assert_int_equal(in_child(privs_drop_exec), 3);
}

static void
test_no_allocation(void **state)
{
	struct passwd *pw;

	if (!PRIVS_TEST_COUNTS || RUNNING_ON_VALGRIND)
		skip();
	/* As root, the worker's and the jobs' drops change user too (to nobody here). */
	if (geteuid() == 0 && (pw = getpwnam("nobody")) != NULL && pw->pw_uid != 0) {
		ids.drop = 1;
		ids.uid = pw->pw_uid;
		ids.gid = pw->pw_gid;
	}
	privs_prepare();
	/* The count works: an allocation in the child is seen. */
	counting = 1;
	free(malloc(1));
	counting = 0;
	assert_int_equal(allocations, 1);
	allocations = 0;
	assert_int_equal(in_child(privs_drop_function), 0);
	assert_int_equal(in_child(privs_drop_exec), 0);
	assert_int_equal(in_child(drop_worker), 0);
	assert_int_equal(in_child(drop_job), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unprepared),
		cmocka_unit_test(test_no_allocation),
	};

	return cmocka_run_group_tests_name("privs", tests, NULL, NULL);
}
