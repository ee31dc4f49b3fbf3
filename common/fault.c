#include "fault.h"

#ifdef CAROTATE_FAULTS
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
fault_point(const char *name)
{
	const char *at = getenv("CAROTATE_CRASH_AT");

	if (at != NULL && strcmp(at, name) == 0) {
		static const char msg[] = "fault_point: crashing here\n";

		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* nothing to do: we are about to die anyway */
		}
		kill(getpid(), SIGKILL);
	}
}
#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int fault_unused;
#endif
