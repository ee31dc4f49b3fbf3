/*
 * Crash injection for tests. In a build with -DCAROTATE_FAULTS, a
 * fault_point whose name equals $CAROTATE_CRASH_AT kills the process on the
 * spot (SIGKILL: no clean-up, like a power cut for the process). Elsewhere
 * fault points compile to nothing.
 */
#ifndef CAROTATE_FAULT_H
#define CAROTATE_FAULT_H

#ifdef CAROTATE_FAULTS
void fault_point(const char *name);
#else
#define fault_point(name) ((void)0)
#endif

#endif
