/*
 * What the load tools share: a monotonic clock, latency samples and their
 * percentiles, what is counted about non-blocking connections (made by
 * sockclient.h), the wrong answers described in full, and the CPU time and resident
 * memory of the processes under test, read from /proc.
 */
#ifndef CAROTATE_LOAD_H
#define CAROTATE_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LOAD_MAX_PIDS  4
#define LOAD_MAX_WRONG 5      /* wrong answers described in full */
#define LOAD_RETRY_US  20000  /* a full backlog: connect again this much later */
#define LOAD_ERROR_US  100000 /* after a refusal or an error, before reconnecting */

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

/* What is counted for each kind of client about its connections. */
struct load_conns {
	long conns, opened, open_now, held_max;
	long connect_retries, connect_errors, closed_by_daemon;
	struct load_lat lat;  /* request latency */
	struct load_lat life; /* lifetime of connections the daemon closed */
};
/*
 * sockclient_connect (non-blocking), counted: the descriptor and *due = 0, or -1 with *due the
 * time (us) to try again.
 */
int load_conns_open(struct load_conns *, const char *path, int64_t now, int64_t *due);
/* Closes *fd and sets it to -1; by_daemon: the daemon closed it first, lifetime_us after opening.
 */
void load_conns_close(struct load_conns *, int *fd, int64_t lifetime_us, int by_daemon);
/*
 * The start of a kind's line, "<tag> kind= ... closed_by_daemon=N" (no newline),
 * and its end, " p50_ms= ... life_max_ms=\n". Sorts the latencies.
 */
void load_conns_print_head(const char *tag, const char *kind, double secs, struct load_conns *);
void load_conns_print_tail(const struct load_conns *);
void load_conns_free(struct load_conns *);

/* Watches fd for events on epfd with ptr as its data; fatal on failure. */
void load_watch(int epfd, int fd, uint32_t events, void *ptr);
/* Raises the descriptor limit for n clients and a few of our own; warns when it cannot. */
void load_rlimit(size_t n);

/* Describes a wrong answer (the first LOAD_MAX_WRONG are kept); printed as "<tag> wrong: ...". */
void load_wrong(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void load_wrong_print(const char *tag);

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

/* The processes given with -p, at most LOAD_MAX_PIDS. */
struct load_procs {
	struct load_proc p[LOAD_MAX_PIDS];
	int n;
};
/* load_proc_parse into the next slot; -1 on a bad argument or when all are taken. */
int load_procs_add(struct load_procs *, const char *);
void load_procs_start(struct load_procs *);
void load_procs_sample(struct load_procs *);
void load_procs_end(struct load_procs *);
void load_procs_print(const char *tag, const struct load_procs *);

#endif
