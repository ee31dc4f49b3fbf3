/*
 * io_write_all, the one write loop of the daemon's fsx.c and the agent's fsio.c: a write(2)
 * that takes part of the buffer, or is interrupted by a signal, must not lose or repeat a
 * byte, and a failing descriptor must come back as -1 with errno.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "io.h"

#define IO_TEST_LEN (1024 * 1024)

static void io_test_tick(int);
static int io_test_reader(int, size_t);

static volatile sig_atomic_t io_test_ticks;

static void
io_test_tick(int sig)
{
	(void)sig;
	io_test_ticks++;
}

/* Reads len bytes slowly, 4 KiB at a time; 0 when they are the pattern (i * 7 mod 251). */
static int
io_test_reader(int fd, size_t len)
{
	uint8_t buf[4096];
	size_t got = 0, i;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < (size_t)n; i++)
			if (buf[i] != (uint8_t)((got + i) * 7 % 251))
				return 1;
		got += (size_t)n;
		usleep(200);
	}
	return n == 0 && got == len ? 0 : 1;
}

/* A pipe drained slowly, and a timer every millisecond without SA_RESTART: write(2)
 * returns short counts and EINTR; every byte arrives once, in order. */
static void
test_short_and_interrupted_writes(void **state)
{
	struct sigaction sa = { .sa_handler = io_test_tick }, old;
	struct itimerval every_ms = { { 0, 1000 }, { 0, 1000 } }, off = { { 0, 0 }, { 0, 0 } };
	struct timespec zero = { 0, 0 };
	sigset_t alrm;
	uint8_t *data = malloc(IO_TEST_LEN);
	int fds[2], status;
	pid_t pid;
	size_t i;

	(void)state;
	assert_non_null(data);
	for (i = 0; i < IO_TEST_LEN; i++)
		data[i] = (uint8_t)(i * 7 % 251);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[1]);
		free(data); /* the reader checks the pattern itself; valgrind follows the child */
		_exit(io_test_reader(fds[0], IO_TEST_LEN));
	}
	close(fds[0]);
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &every_ms, NULL), 0);
	assert_int_equal(io_write_all(fds[1], data, IO_TEST_LEN), 0);
	/*
	 * A tick may be pending still when the timer stops (valgrind delivers signals late):
	 * it must be taken here, never meet the default action (terminate) once the old
	 * disposition is back.
	 */
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	assert_int_equal(sigprocmask(SIG_BLOCK, &alrm, NULL), 0);
	setitimer(ITIMER_REAL, &off, NULL);
	while (sigtimedwait(&alrm, NULL, &zero) == SIGALRM)
		;
	sigaction(SIGALRM, &old, NULL);
	assert_int_equal(sigprocmask(SIG_UNBLOCK, &alrm, NULL), 0);
	close(fds[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(io_test_ticks > 0);
	free(data);
}

static void
test_nothing_to_write(void **state)
{
	(void)state;
	assert_int_equal(io_write_all(-1, "", 0), 0);
}

/* A descriptor that cannot be written: -1 and write(2)'s errno, not a loop. */
static void
test_failure_is_reported(void **state)
{
	int fds[2];

	(void)state;
	errno = 0;
	assert_int_equal(io_write_all(-1, "x", 1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(pipe(fds), 0);
	close(fds[0]);
	signal(SIGPIPE, SIG_IGN);
	errno = 0;
	assert_int_equal(io_write_all(fds[1], "abc", 3), -1);
	assert_int_equal(errno, EPIPE);
	close(fds[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_and_interrupted_writes),
		cmocka_unit_test(test_nothing_to_write),
		cmocka_unit_test(test_failure_is_reported),
	};

	return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
