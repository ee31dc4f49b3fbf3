/*
 * Crash injection for tests. In a build with -DCAROTATE_FAULTS, a
 * fault_point whose name equals $CAROTATE_CRASH_AT kills the process on the
 * spot (SIGKILL: no clean-up, like a power cut for the process); name@N kills
 * it the Nth time that point is reached (counted from the process's start). Elsewhere
 * fault points compile to nothing.
 */
#ifndef CAROTATE_FAULT_H
#define CAROTATE_FAULT_H

/*
 * fault_confined(name) runs in a confined job (job.c) once its system call
 * filter is in force, for tests to see that filter and the job's state:
 * $CAROTATE_JOB_FORBIDDEN=name makes a call outside the filter (socket(2)),
 * which must kill the job; $CAROTATE_JOB_PAUSE=name waits 3 s first (futex,
 * which the filter allows) so that a test can read /proc/PID of the job.
 * Each fires in one job: fault_confined_spent(name), called by the parent
 * once it has forked that job, takes them out of its environment.
 */
#ifdef CAROTATE_FAULTS
void fault_point(const char *name);
void fault_confined(const char *name);
void fault_confined_spent(const char *name);
#else
#define fault_point(name)          ((void)0)
#define fault_confined(name)       ((void)0)
#define fault_confined_spent(name) ((void)0)
#endif

#endif
