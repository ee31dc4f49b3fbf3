/* Child processes watched from the event loop: exit status, output, time limit, overflow. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "job.h"
#include "sandbox.h"

struct outcome {
	int done;
	int status;
	int timed_out;
	int overflowed;
	int sig;
	int filtered;
	char out[8192];
	size_t len;
};

static void
collect(struct job *job, void *arg)
{
	struct outcome *o = arg;
	const unsigned char *p;

	o->done = 1;
	o->status = job_exit_status(job);
	o->timed_out = job_timed_out(job);
	o->overflowed = job_overflowed(job);
	o->sig = job_signal(job);
	o->filtered = job_filtered(job);
	p = job_output(job, &o->len);
	if (o->len > sizeof(o->out) - 1)
		o->len = sizeof(o->out) - 1;
	if (o->len > 0)
		memcpy(o->out, p, o->len);
	o->out[o->len] = '\0';
	job_free(job);
}

static void
run_loop(struct event_base *base, struct outcome *o)
{
	while (!o->done)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
test_exec_status_and_output(void **state)
{
	struct event_base *base = event_base_new();
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"echo out; echo err >&2; exit 3",
		NULL };
	struct outcome o = { 0 };

	assert_non_null(job_exec(base, argv, 5000, 4096, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 3);
	assert_false(o.timed_out);
	assert_non_null(strstr(o.out, "out"));
	assert_non_null(strstr(o.out, "err"));
	event_base_free(base);
}

/* A command that outlives its limit is killed, with its whole process group. */
static void
test_exec_timeout(void **state)
{
	struct event_base *base = event_base_new();
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"sleep 30 & sleep 30", NULL };
	struct outcome o = { 0 };

	assert_non_null(job_exec(base, argv, 200, 4096, collect, &o));
	run_loop(base, &o);
	assert_true(o.timed_out);
	assert_int_equal(o.status, -1);
	event_base_free(base);
}

/* A missing program is an exit status (127) and a message, not a crash. */
static void
test_exec_missing_program(void **state)
{
	struct event_base *base = event_base_new();
	char *argv[] = { (char *)"/nonexistent/reload", NULL };
	struct outcome o = { 0 };

	assert_non_null(job_exec(base, argv, 5000, 4096, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 127);
	assert_non_null(strstr(o.out, "cannot run /nonexistent/reload"));
	event_base_free(base);
}

/* The tail of a long output is what is kept. */
static void
test_exec_keeps_tail(void **state)
{
	struct event_base *base = event_base_new();
	char *argv[] = { (char *)"/bin/sh", (char *)"-c",
		(char *)"i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done", NULL };
	struct outcome o = { 0 };

	assert_non_null(job_exec(base, argv, 5000, 100, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.len, 100);
	assert_non_null(strstr(o.out, "line1999"));
	event_base_free(base);
}

static int
child_writes(void *arg, int fd)
{
	size_t n = *(size_t *)arg, i;

	for (i = 0; i < n; i++)
		if (write(fd, "x", 1) != 1)
			return 2;
	return 0;
}

static int
child_crashes(void *arg, int fd)
{
	abort();
}

static void
test_fork_result(void **state)
{
	struct event_base *base = event_base_new();
	struct outcome o = { 0 };
	size_t n = 1000;

	assert_non_null(job_fork(base, "t", child_writes, &n, 5000, 4096, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.len, 1000);
	event_base_free(base);
}

/* A result larger than allowed kills the child: a partial result is never used. */
static void
test_fork_overflow(void **state)
{
	struct event_base *base = event_base_new();
	struct outcome o = { 0 };
	size_t n = 100000;

	assert_non_null(job_fork(base, "t", child_writes, &n, 5000, 1000, collect, &o));
	run_loop(base, &o);
	assert_true(o.overflowed);
	assert_int_equal(o.status, -1);
	event_base_free(base);
}

static void
test_fork_crash(void **state)
{
	struct event_base *base = event_base_new();
	struct outcome o = { 0 };

	assert_non_null(job_fork(base, "t", child_crashes, NULL, 5000, 1000, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, -1);
	assert_int_equal(o.sig, 6);
	event_base_free(base);
}

/*
 * Repro: a descriptor the daemon holds without O_CLOEXEC (one it inherited,
 * say) and the /dev/null job_child_run opened for stdin both reached the
 * reload command. Now: stdin on /dev/null, stdout and stderr on the pipe, and
 * nothing else (ls's own directory descriptor aside).
 */
static void
test_exec_descriptors(void **state)
{
	struct event_base *base = event_base_new();
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"ls -l /proc/self/fd", NULL };
	struct outcome o = { 0 };
	int held = open("/dev/null", O_RDONLY), nulls = 0;
	const char *p;

	assert_true(held > 2);
	assert_non_null(job_exec(base, argv, 5000, 4096, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 0);
	for (p = o.out; (p = strstr(p, "/dev/null")) != NULL; p++)
		nulls++;
	assert_int_equal(nulls, 1); /* stdin only */
	close(held);
	event_base_free(base);
}

/* Repro: the reload command saw the daemon's whole environment. Now PATH and LANG only. */
static void
test_exec_environment(void **state)
{
	struct event_base *base = event_base_new();
	char *argv[] = { (char *)"/usr/bin/env", NULL };
	struct outcome o = { 0 };

	setenv("CAROTATE_TEST_SECRET", "x", 1);
	assert_non_null(job_exec(base, argv, 5000, 4096, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 0);
	assert_string_equal(o.out, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLANG=C\n");
	unsetenv("CAROTATE_TEST_SECRET");
	event_base_free(base);
}

static int held_fd = -1;

/* Writes "open" when the descriptor the parent holds is still open here. */
static int
child_probes_fd(void *arg, int fd)
{
	const char *r = fcntl(held_fd, F_GETFD) == -1 ? "closed" : "open";

	return write(fd, r, strlen(r)) == (ssize_t)strlen(r) ? 0 : 1;
}

/* Repro: a function child held every descriptor of the daemon. Now its pipe only. */
static void
test_fork_descriptors(void **state)
{
	struct event_base *base = event_base_new();
	struct outcome o = { 0 };

	held_fd = open("/dev/null", O_RDONLY);
	assert_true(held_fd > 2);
	assert_non_null(job_fork(base, "t", child_probes_fd, NULL, 5000, 4096, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 0);
	assert_string_equal(o.out, "closed");
	close(held_fd);
	event_base_free(base);
}

/* The lines of /proc/self/status of the process that reads it, into buf (NUL-terminated). */
static size_t
read_status(char *buf, size_t len)
{
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd == -1 ? -1 : read(fd, buf, len - 1);

	if (fd != -1)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

/* The value of field name ("CapBnd") in a copy of /proc/PID/status, or NULL when absent. */
static const char *
status_field(const char *status, const char *name, char *out, size_t len)
{
	char key[32];
	const char *p, *end;

	snprintf(key, sizeof(key), "\n%s:", name);
	out[0] = '\0';
	if ((p = strstr(status, key)) == NULL)
		return NULL;
	for (p += strlen(key); *p == '\t' || *p == ' '; p++)
		;
	if ((end = strchr(p, '\n')) == NULL)
		end = p + strlen(p);
	snprintf(out, len, "%.*s", (int)(end - p), p);
	return out;
}

/* A function child's /proc/self/status, whole, to its pipe. */
static int
child_sends_status(void *arg, int fd)
{
	char buf[4096];
	size_t n = read_status(buf, sizeof(buf));

	return write(fd, buf, n) == (ssize_t)n ? 0 : 1;
}

/* fields of the child's status (o->out) that must equal the test's own. */
static void
assert_inherited(const struct outcome *o, const char *const *fields, size_t n)
{
	char mine[4096], a[128], b[128];
	size_t i;

	read_status(mine, sizeof(mine));
	for (i = 0; i < n; i++) {
		if (status_field(o->out, fields[i], a, sizeof(a)) == NULL ||
		    status_field(mine, fields[i], b, sizeof(b)) == NULL)
			fail_msg("no %s in the child's status or ours", fields[i]);
		if (strcmp(a, b) != 0)
			fail_msg("%s: the child's is \"%s\", ours \"%s\"", fields[i], a, b);
	}
}

static void
assert_field(const struct outcome *o, const char *field, const char *want)
{
	char v[128];

	if (status_field(o->out, field, v, sizeof(v)) == NULL)
		fail_msg("no %s in the child's status", field);
	if (strcmp(v, want) != 0)
		fail_msg("%s: the child's is \"%s\", want \"%s\"", field, v, want);
}

/* Whether this process may empty a child's bounding set (CAP_SETPCAP effective: root). */
static int
have_setpcap(void)
{
	char mine[4096], eff[64];

	read_status(mine, sizeof(mine));
	if (status_field(mine, "CapEff", eff, sizeof(eff)) == NULL)
		fail_msg("no CapEff in our status");
	return (strtoull(eff, NULL, 16) >> 8) & 1; /* CAP_SETPCAP is 8 */
}

/*
 * What a function child (the TLS check) holds: no capability in its
 * permitted, effective, inheritable or ambient set; the rest as ours (the
 * bounding set, no_new_privs, user, groups): it keeps our uid to connect
 * where the check points. Protects the move of its drop to privs.c.
 */
static void
test_fork_privileges(void **state)
{
	static const char *const same[] = { "CapBnd", "NoNewPrivs", "Uid", "Gid", "Groups" };
	struct event_base *base = event_base_new();
	struct outcome o = { 0 };

	assert_non_null(job_fork(base, "t", child_sends_status, NULL, 5000, 4096, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 0);
	assert_field(&o, "CapInh", "0000000000000000");
	assert_field(&o, "CapPrm", "0000000000000000");
	assert_field(&o, "CapEff", "0000000000000000");
	assert_field(&o, "CapAmb", "0000000000000000");
	assert_inherited(&o, same, sizeof(same) / sizeof(same[0]));
	event_base_free(base);
}

/*
 * What a program (the reload command) holds: no capability at all, the
 * bounding set emptied too where we may (CAP_SETPCAP); our user, groups and
 * no_new_privs, which it inherits. Protects the move of its drop to privs.c.
 */
static void
test_exec_privileges(void **state)
{
	static const char *const same[] = { "NoNewPrivs", "Uid", "Gid", "Groups" };
	static const char *const bnd[] = { "CapBnd" };
	char *argv[] = { (char *)"/bin/cat", (char *)"/proc/self/status", NULL };
	struct event_base *base = event_base_new();
	struct outcome o = { 0 };

	assert_non_null(job_exec(base, argv, 5000, 8192, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.status, 0);
	assert_field(&o, "CapInh", "0000000000000000");
	assert_field(&o, "CapPrm", "0000000000000000");
	assert_field(&o, "CapEff", "0000000000000000");
	assert_field(&o, "CapAmb", "0000000000000000");
	if (have_setpcap())
		assert_field(&o, "CapBnd", "0000000000000000");
	else
		assert_inherited(&o, bnd, 1);
	assert_inherited(&o, same, sizeof(same) / sizeof(same[0]));
	event_base_free(base);
}

/* A confined child may write its result, but not open a socket: SIGSYS kills it. */
static int
child_opens_socket(void *arg, int fd)
{
	if (write(fd, "x", 1) != 1)
		return 1;
	socket(AF_INET, SOCK_STREAM, 0);
	return 0;
}

static void
test_fork_confined_filter(void **state)
{
	struct event_base *base;
	struct sandbox_ids none = { 0 };
	struct outcome o = { 0 }, good = { 0 };
	size_t n = 10;

	if (RUNNING_ON_VALGRIND)
		skip(); /* no filter under valgrind (sandbox.h) */
	base = event_base_new();

	assert_non_null(
	    job_fork_confined(base, "t", child_opens_socket, NULL, &none, 5000, 4096, collect, &o));
	run_loop(base, &o);
	assert_int_equal(o.sig, SIGSYS);
	assert_true(o.filtered);
	assert_int_equal(o.len, 1);
	assert_non_null(
	    job_fork_confined(base, "t", child_writes, &n, &none, 5000, 4096, collect, &good));
	run_loop(base, &good);
	assert_int_equal(good.status, 0);
	assert_int_equal(good.len, 10);
	assert_false(good.filtered);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_status_and_output),
		cmocka_unit_test(test_exec_timeout),
		cmocka_unit_test(test_exec_missing_program),
		cmocka_unit_test(test_exec_keeps_tail),
		cmocka_unit_test(test_fork_result),
		cmocka_unit_test(test_fork_overflow),
		cmocka_unit_test(test_fork_crash),
		cmocka_unit_test(test_exec_descriptors),
		cmocka_unit_test(test_exec_environment),
		cmocka_unit_test(test_fork_descriptors),
		cmocka_unit_test(test_fork_confined_filter),
		cmocka_unit_test(test_fork_privileges),
		cmocka_unit_test(test_exec_privileges),
	};

	return cmocka_run_group_tests_name("job", tests, NULL, NULL);
}
