#include "fault.h"

#ifdef CAROTATE_FAULTS
#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAULT_PAUSE_S 3

static int fault_named(const char *, const char *);

/*
 * $CAROTATE_CRASH_AT is a point's name, or name@N for the Nth time the process
 * reaches it (a point in a helper used by several steps: fsx_replace writes the
 * intent note before it writes the bundle).
 */
void
fault_point(const char *name)
{
	const char *at = getenv("CAROTATE_CRASH_AT"), *n;
	static unsigned long hits;
	size_t k;

	if (at == NULL)
		return;
	n = strchr(at, '@');
	k = n != NULL ? (size_t)(n - at) : strlen(at);
	if (strlen(name) != k || strncmp(at, name, k) != 0)
		return;
	if (n == NULL || ++hits == strtoul(n + 1, NULL, 10)) {
		static const char msg[] = "fault_point: crashing here\n";

		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* nothing to do: we are about to die anyway */
		}
		kill(getpid(), SIGKILL);
	}
}

static int
fault_named(const char *var, const char *name)
{
	const char *v = getenv(var);

	return v != NULL && strcmp(v, name) == 0;
}

void
fault_confined(const char *name)
{
	struct timespec ts = { FAULT_PAUSE_S, 0 };
	int word = 0;

	/* A wait on a word nobody wakes: only the time limit ends it. */
	if (fault_named("CAROTATE_JOB_PAUSE", name))
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	if (fault_named("CAROTATE_JOB_FORBIDDEN", name) && socket(AF_INET, SOCK_STREAM, 0) != -1) {
		static const char msg[] = "fault_confined: socket(2) was allowed\n";

		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* the test sees the job go on instead of dying */
		}
	}
}

void
fault_confined_spent(const char *name)
{
	if (fault_named("CAROTATE_JOB_PAUSE", name))
		unsetenv("CAROTATE_JOB_PAUSE");
	if (fault_named("CAROTATE_JOB_FORBIDDEN", name))
		unsetenv("CAROTATE_JOB_FORBIDDEN");
}
#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int fault_unused;
#endif
