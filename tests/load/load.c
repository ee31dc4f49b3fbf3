/* Shared pieces of the load tools (load.h). */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "load.h"
#include "sockclient.h"

static int load_cmp(const void *, const void *);
static int load_read_stat(pid_t, long long *);
static long load_read_rss(pid_t);

static char load_wrong_text[LOAD_MAX_WRONG][512];
static int load_nwrong_text;

int64_t
load_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
load_lat_add(struct load_lat *l, int64_t us)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		if ((l->v = realloc(l->v, l->cap * sizeof(*l->v))) == NULL) {
			perror("realloc");
			exit(2);
		}
	}
	l->v[l->n++] = us;
}

static int
load_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void
load_lat_sort(struct load_lat *l)
{
	if (l->n > 0)
		qsort(l->v, l->n, sizeof(*l->v), load_cmp);
}

/* Nearest rank: the smallest sample with at least pct % of the samples at or below it. */
double
load_lat_pct(const struct load_lat *l, double pct)
{
	size_t i;

	if (l->n == 0)
		return 0;
	i = (size_t)((pct / 100.0) * (double)l->n + 0.999999);
	i = i == 0 ? 0 : i - 1;
	if (i >= l->n)
		i = l->n - 1;
	return (double)l->v[i] / 1000.0;
}

void
load_lat_free(struct load_lat *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int
load_conns_open(struct load_conns *s, const char *path, int64_t now, int64_t *due)
{
	int fd;

	if ((fd = sockclient_connect(path, 1)) == -1) {
		if (errno == EAGAIN)
			s->connect_retries++;
		else
			s->connect_errors++;
		*due = now + (errno == EAGAIN ? LOAD_RETRY_US : LOAD_ERROR_US);
		return -1;
	}
	*due = 0;
	s->opened++;
	if (++s->open_now > s->held_max)
		s->held_max = s->open_now;
	return fd;
}

void
load_conns_close(struct load_conns *s, int *fd, int64_t lifetime_us, int by_daemon)
{
	close(*fd);
	*fd = -1;
	s->open_now--;
	if (by_daemon) {
		s->closed_by_daemon++;
		load_lat_add(&s->life, lifetime_us);
	}
}

void
load_conns_print_head(const char *tag, const char *kind, double secs, struct load_conns *s)
{
	load_lat_sort(&s->lat);
	load_lat_sort(&s->life);
	printf("%s kind=%s conns=%ld seconds=%.2f opened=%ld held_max=%ld open_at_end=%ld "
	       "connect_retries=%ld connect_errors=%ld closed_by_daemon=%ld",
	    tag, kind, s->conns, secs, s->opened, s->held_max, s->open_now, s->connect_retries,
	    s->connect_errors, s->closed_by_daemon);
}

void
load_conns_print_tail(const struct load_conns *s)
{
	printf(" p50_ms=%.2f p99_ms=%.2f max_ms=%.2f life_min_ms=%.0f life_p50_ms=%.0f "
	       "life_max_ms=%.0f\n",
	    load_lat_pct(&s->lat, 50), load_lat_pct(&s->lat, 99), load_lat_pct(&s->lat, 100),
	    load_lat_pct(&s->life, 0), load_lat_pct(&s->life, 50), load_lat_pct(&s->life, 100));
}

void
load_conns_free(struct load_conns *s)
{
	load_lat_free(&s->lat);
	load_lat_free(&s->life);
}

void
load_watch(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		fprintf(
		    stderr, "%s: epoll_ctl: %s\n", program_invocation_short_name, strerror(errno));
		exit(2);
	}
}

void
load_rlimit(size_t n)
{
	struct rlimit rl;

	/* One descriptor a client, and a few of our own. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < n + 64)
			fprintf(stderr, "%s: warning: a descriptor limit of %llu for %zu clients\n",
			    program_invocation_short_name, (unsigned long long)rl.rlim_cur, n);
	}
}

void
load_wrong(const char *fmt, ...)
{
	va_list ap;

	if (load_nwrong_text >= LOAD_MAX_WRONG)
		return;
	va_start(ap, fmt);
	vsnprintf(load_wrong_text[load_nwrong_text++], sizeof(load_wrong_text[0]), fmt, ap);
	va_end(ap);
}

void
load_wrong_print(const char *tag)
{
	int i;

	for (i = 0; i < load_nwrong_text; i++)
		printf("%s wrong: %s\n", tag, load_wrong_text[i]);
}

/* utime + stime of pid, in clock ticks; -1 when it is gone. */
static int
load_read_stat(pid_t pid, long long *ticks)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields restart after the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	*ticks = (long long)(ut + st);
	return 0;
}

/* VmRSS of pid in KiB; -1 when it is gone. */
static long
load_read_rss(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

void
load_proc_start(struct load_proc *p)
{
	p->t0 = load_now_us();
	if (load_read_stat(p->pid, &p->cpu0) == -1)
		p->gone = 1;
	p->rss0 = p->rss_max = load_read_rss(p->pid);
}

void
load_proc_sample(struct load_proc *p)
{
	long rss;

	if (p->gone)
		return;
	if ((rss = load_read_rss(p->pid)) == -1)
		p->gone = 1;
	else if (rss > p->rss_max)
		p->rss_max = rss;
}

void
load_proc_end(struct load_proc *p)
{
	p->t1 = load_now_us();
	if (load_read_stat(p->pid, &p->cpu1) == -1)
		p->gone = 1;
	p->rss1 = load_read_rss(p->pid);
	if (p->rss1 > p->rss_max)
		p->rss_max = p->rss1;
}

void
load_proc_print(const char *tag, const struct load_proc *p)
{
	double secs = (double)(p->t1 - p->t0) / 1e6;
	double cpu = secs > 0 ? (double)(p->cpu1 - p->cpu0) / (double)sysconf(_SC_CLK_TCK) : 0;

	printf("%s proc=%s pid=%ld seconds=%.2f cpu_s=%.2f cpu_pct=%.1f rss_start_kb=%ld "
	       "rss_end_kb=%ld rss_max_kb=%ld alive=%d\n",
	    tag, p->name, (long)p->pid, secs, cpu, secs > 0 ? 100.0 * cpu / secs : 0, p->rss0,
	    p->rss1, p->rss_max, !p->gone);
}

int
load_proc_parse(struct load_proc *p, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *end;
	long v;

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "daemon");
	if (eq != NULL) {
		snprintf(p->name, sizeof(p->name), "%.*s", (int)(eq - arg), arg);
		arg = eq + 1;
	}
	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	p->pid = (pid_t)v;
	return 0;
}

int
load_procs_add(struct load_procs *ps, const char *arg)
{
	if (ps->n == LOAD_MAX_PIDS || load_proc_parse(&ps->p[ps->n], arg) == -1)
		return -1;
	ps->n++;
	return 0;
}

void
load_procs_start(struct load_procs *ps)
{
	int i;

	for (i = 0; i < ps->n; i++)
		load_proc_start(&ps->p[i]);
}

void
load_procs_sample(struct load_procs *ps)
{
	int i;

	for (i = 0; i < ps->n; i++)
		load_proc_sample(&ps->p[i]);
}

void
load_procs_end(struct load_procs *ps)
{
	int i;

	for (i = 0; i < ps->n; i++)
		load_proc_end(&ps->p[i]);
}

void
load_procs_print(const char *tag, const struct load_procs *ps)
{
	int i;

	for (i = 0; i < ps->n; i++)
		load_proc_print(tag, &ps->p[i]);
}
