/*
 * What the load tools share: a monotonic clock, latency samples and their
 * percentiles, non-blocking AF_UNIX connections, and the CPU time and
 * resident memory of the processes under test, read from /proc.
 */
#ifndef CAROTATE_LOAD_H
#define CAROTATE_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LOAD_MAX_PIDS 4

/* Microseconds, CLOCK_MONOTONIC. */
int64_t load_now_us(void);

/* Latencies in microseconds; grows as needed. */
struct load_lat {
	int64_t *v;
	size_t n, cap;
};
void load_lat_add(struct load_lat *, int64_t us);
/* Sorts the samples; then load_lat_pct answers in milliseconds (0 when empty). */
void load_lat_sort(struct load_lat *);
double load_lat_pct(const struct load_lat *, double pct);
void load_lat_free(struct load_lat *);

/*
 * A non-blocking stream connection to path. -1 with errno EAGAIN when the
 * listener's backlog is full (AF_UNIX never answers EINPROGRESS).
 */
int load_connect(const char *path);

/* A process watched over the run: CPU time (ticks) and VmRSS (KiB), start, end, peak. */
struct load_proc {
	pid_t pid;
	char name[32];
	long long cpu0, cpu1; /* utime + stime, clock ticks */
	int64_t t0, t1;       /* us */
	long rss0, rss1, rss_max;
	int gone;
};
void load_proc_start(struct load_proc *);
void load_proc_sample(struct load_proc *);
void load_proc_end(struct load_proc *);
/* One line: "<tag> proc=<name> pid= cpu_pct= rss_start_kb= rss_end_kb= rss_max_kb= alive=". */
void load_proc_print(const char *tag, const struct load_proc *);
/* Parses "NAME=PID" (or a bare PID, named "daemon"); -1 on a bad argument. */
int load_proc_parse(struct load_proc *, const char *);

#endif
