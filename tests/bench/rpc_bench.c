/*
 * rpc_bench: the status RPC on carotated's control socket, compared with a trivial
 * length-prefixed echo server over an AF_UNIX stream socket that this program runs itself
 * (a forked child with one poll loop, like the daemon, answering every frame with a copy of
 * the daemon's real status reply). Prints figures; asserts nothing.
 *
 *   rpc_bench [-n requests] [-t seconds] [-c connections] SOCKET
 *
 * Measures, for each server: round-trip p50/p99/mean of -n sequential status requests on one
 * connection, and requests/s over -c connections (one process each) for -t seconds.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "carotate.pb-c.h"
#include "sockclient.h"
#include "wire.h"

#define IO_TIMEOUT_MS  10000
#define ECHO_MAX_CONNS 64

struct bench_result {
	double p50_us, p99_us, mean_us, max_us;
	double rps;
	long long errors;
};

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * One round trip, as a real client does it: write the request frame, read one reply frame,
 * decode it. Returns the reply's status (0 OK), or -1 on an I/O or decoding error. With
 * raw != NULL, the whole reply frame (header included) is handed back (malloc'd).
 */
static int
rpc(int fd, const uint8_t *req, size_t reqlen, uint8_t **raw, size_t *rawlen)
{
	Carotate__V1__Response *resp;
	struct wire_budget budget;
	uint8_t *body;
	size_t len;
	int status;

	if (wire_write_all(fd, req, reqlen, IO_TIMEOUT_MS) < 0)
		return -1;
	if (wire_read_frame(fd, WIRE_MAX_REPLY, &body, &len, IO_TIMEOUT_MS) != WIRE_READ_OK)
		return -1;
	wire_budget_init(&budget, WIRE_REPLY_BUDGET);
	resp = wire_response_unpack(body, len, &budget);
	status = resp != NULL ? (int)resp->status : -1;
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, &budget.allocator);
	if (raw != NULL) {
		*raw = malloc(WIRE_HEADER_LEN + len);
		if (*raw == NULL) {
			free(body);
			return -1;
		}
		wire_put_length(*raw, (uint32_t)len);
		memcpy(*raw + WIRE_HEADER_LEN, body, len);
		*rawlen = WIRE_HEADER_LEN + len;
	}
	free(body);
	return status;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* -n sequential round trips on one connection (after a warm-up). */
static int
measure_latency(
    const char *path, const uint8_t *req, size_t reqlen, int n, struct bench_result *res)
{
	long long *lat, sum = 0, t0;
	int fd, i;

	if (n <= 0)
		return -1;
	if ((fd = sockclient_connect(path, 0)) < 0) {
		fprintf(stderr, "rpc_bench: connect %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n / 10 + 10; i++) {
		if (rpc(fd, req, reqlen, NULL, NULL) != 0) {
			fprintf(stderr, "rpc_bench: warm-up request %d on %s failed\n", i, path);
			close(fd);
			return -1;
		}
	}
	if ((lat = calloc((size_t)n, sizeof(*lat))) == NULL) {
		close(fd);
		return -1;
	}
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		if (rpc(fd, req, reqlen, NULL, NULL) != 0) {
			fprintf(stderr, "rpc_bench: request %d on %s failed\n", i, path);
			free(lat);
			close(fd);
			return -1;
		}
		lat[i] = now_ns() - t0;
		sum += lat[i];
	}
	close(fd);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_ll);
	res->p50_us = lat[n / 2] / 1000.0;
	res->p99_us = lat[(size_t)((long long)n * 99 / 100)] / 1000.0;
	res->max_us = lat[n - 1] / 1000.0;
	res->mean_us = (double)sum / n / 1000.0;
	free(lat);
	return 0;
}

struct worker_report {
	long long count;
	long long errors;
	long long elapsed_ns;
};

/* A throughput worker: waits for the start signal (EOF on go), then loops for `seconds`. */
static void __attribute__((noreturn)) throughput_worker(
    const char *path, const uint8_t *req, size_t reqlen, double seconds, int go, int out)
{
	struct worker_report rep = { 0, 0, 0 };
	long long start, end;
	char c;
	int fd;

	fd = sockclient_connect(path, 0);
	while (read(go, &c, 1) < 0 && errno == EINTR)
		;
	start = now_ns();
	end = start + (long long)(seconds * 1e9);
	if (fd < 0)
		rep.errors = 1;
	while (fd >= 0 && now_ns() < end) {
		if (rpc(fd, req, reqlen, NULL, NULL) == 0) {
			rep.count++;
		} else {
			rep.errors++;
			close(fd);
			fd = sockclient_connect(
			    path, 0); /* e.g. dropped: go on with a new connection */
		}
	}
	rep.elapsed_ns = now_ns() - start;
	if (write(out, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		_exit(1);
	_exit(0);
}

/* -c connections, one process each, for -t seconds; all start together. */
static int
measure_throughput(const char *path, const uint8_t *req, size_t reqlen, int conns, double seconds,
    struct bench_result *res)
{
	int gopipe[2], outpipe[2], i, ok = 0;
	struct worker_report rep;
	double rps = 0;
	pid_t *pids;

	if (pipe(gopipe) < 0 || pipe(outpipe) < 0)
		return -1;
	if ((pids = calloc((size_t)conns, sizeof(*pids))) == NULL)
		return -1;
	for (i = 0; i < conns; i++) {
		if ((pids[i] = fork()) < 0) {
			perror("rpc_bench: fork");
			conns = i;
			break;
		}
		if (pids[i] == 0) {
			close(gopipe[1]);
			close(outpipe[0]);
			throughput_worker(path, req, reqlen, seconds, gopipe[0], outpipe[1]);
		}
	}
	close(gopipe[0]);
	close(outpipe[1]);
	usleep(100000); /* let every worker connect */
	close(gopipe[1]);
	res->errors = 0;
	for (i = 0; i < conns; i++) {
		if (read(outpipe[0], &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
			break;
		if (rep.elapsed_ns > 0)
			rps += rep.count / (rep.elapsed_ns / 1e9);
		res->errors += rep.errors;
		ok++;
	}
	close(outpipe[0]);
	for (i = 0; i < conns; i++) /* only the workers: the echo server is a child too */
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	free(pids);
	res->rps = rps;
	return ok == conns ? 0 : -1;
}

struct echo_conn {
	int fd;
	size_t have;
	uint8_t buf[WIRE_HEADER_LEN + 4096];
};

/* The echo server: one poll loop; every whole frame read is answered with `reply`. */
static void __attribute__((noreturn)) echo_server(int lfd, const uint8_t *reply, size_t replylen)
{
	static struct echo_conn conns[ECHO_MAX_CONNS];
	struct pollfd pfd[1 + ECHO_MAX_CONNS];
	int nconns = 0, i, n, fd;
	ssize_t r;

	for (;;) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < nconns; i++) {
			pfd[1 + i].fd = conns[i].fd;
			pfd[1 + i].events = POLLIN;
		}
		if ((n = poll(pfd, (nfds_t)(1 + nconns), -1)) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (i = nconns - 1; i >= 0; i--) {
			struct echo_conn *c = &conns[i];
			int closed = 0;

			if (!(pfd[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
			if (r <= 0) {
				closed = 1;
			} else {
				c->have += (size_t)r;
				for (;;) {
					uint32_t len;
					size_t whole;

					if (c->have < WIRE_HEADER_LEN)
						break;
					len = wire_get_length(c->buf);
					if (len > sizeof(c->buf) - WIRE_HEADER_LEN) {
						closed = 1;
						break;
					}
					whole = WIRE_HEADER_LEN + len;
					if (c->have < whole)
						break;
					if (wire_write_all(c->fd, reply, replylen, IO_TIMEOUT_MS) <
					    0) {
						closed = 1;
						break;
					}
					memmove(c->buf, c->buf + whole, c->have - whole);
					c->have -= whole;
				}
			}
			if (closed) {
				close(c->fd);
				conns[i] = conns[nconns - 1];
				nconns--;
			}
		}
		if (pfd[0].revents & POLLIN) {
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0 && nconns < ECHO_MAX_CONNS) {
				conns[nconns].fd = fd;
				conns[nconns].have = 0;
				nconns++;
			} else if (fd >= 0) {
				close(fd);
			}
		}
	}
}

static pid_t
start_echo(const char *path, const uint8_t *reply, size_t replylen)
{
	struct sockaddr_un sa;
	pid_t pid;
	int lfd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
		fprintf(stderr, "rpc_bench: echo server on %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0)
		echo_server(lfd, reply, replylen);
	close(lfd);
	return pid;
}

static void
usage(void)
{
	fprintf(stderr, "usage: rpc_bench [-n requests] [-t seconds] [-c connections] SOCKET\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__StatusRequest st = CAROTATE__V1__STATUS_REQUEST__INIT;
	struct bench_result d, e;
	char dir[] = "/tmp/rpc_bench.XXXXXX", echo_path[64];
	uint8_t *frame, *reply = NULL;
	size_t framelen, replylen = 0;
	int n = 20000, conns = 8, ch, fd, rc = 0;
	double seconds = 3.0;
	pid_t echo_pid;

	while ((ch = getopt(argc, argv, "n:t:c:")) != -1) {
		switch (ch) {
		case 'n':
			n = atoi(optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'c':
			conns = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || n < 100 || seconds <= 0 || conns < 1 || conns > ECHO_MAX_CONNS)
		usage();
	signal(SIGPIPE, SIG_IGN);

	req.version = WIRE_VERSION;
	req.call_case = CAROTATE__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	frame = wire_frame_pack(&req.base, WIRE_MAX_REQUEST, &framelen);

	/* One real reply: its bytes are what the echo server sends back. */
	if ((fd = sockclient_connect(argv[optind], 0)) < 0) {
		fprintf(stderr, "rpc_bench: connect %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	if (rpc(fd, frame, framelen, &reply, &replylen) != 0) {
		fprintf(stderr, "rpc_bench: the status RPC on %s failed\n", argv[optind]);
		return 1;
	}
	close(fd);

	if (mkdtemp(dir) == NULL) {
		perror("rpc_bench: mkdtemp");
		return 1;
	}
	snprintf(echo_path, sizeof(echo_path), "%s/echo.sock", dir);
	if ((echo_pid = start_echo(echo_path, reply, replylen)) < 0) {
		rmdir(dir);
		return 1;
	}

	printf("rpc_bench: status RPC, request frame %zu bytes, reply frame %zu bytes; "
	       "%d sequential requests; %d connections for %.1f s\n",
	    framelen, replylen, n, conns, seconds);
	memset(&d, 0, sizeof(d));
	memset(&e, 0, sizeof(e));
	if (measure_latency(argv[optind], frame, framelen, n, &d) < 0 ||
	    measure_throughput(argv[optind], frame, framelen, conns, seconds, &d) < 0 ||
	    measure_latency(echo_path, frame, framelen, n, &e) < 0 ||
	    measure_throughput(echo_path, frame, framelen, conns, seconds, &e) < 0) {
		fprintf(stderr, "rpc_bench: a measurement failed\n");
		rc = 1;
	} else {
		double tput = e.rps > 0 ? 100.0 * d.rps / e.rps : 0;
		double lat = e.p50_us > 0 ? d.p50_us / e.p50_us : 0;

		printf("\n%-22s %10s %10s %10s %10s %14s\n", "", "p50 us", "p99 us", "mean us",
		    "max us", "req/s");
		printf("%-22s %10.1f %10.1f %10.1f %10.1f %14.0f\n", "carotated", d.p50_us,
		    d.p99_us, d.mean_us, d.max_us, d.rps);
		printf("%-22s %10.1f %10.1f %10.1f %10.1f %14.0f\n", "echo (AF_UNIX)", e.p50_us,
		    e.p99_us, e.mean_us, e.max_us, e.rps);
		printf("%-22s %9.2fx %9.2fx %9.2fx %10s %13.1f%%\n", "carotated / echo", lat,
		    e.p99_us > 0 ? d.p99_us / e.p99_us : 0,
		    e.mean_us > 0 ? d.mean_us / e.mean_us : 0, "", tput);
		if (d.errors > 0 || e.errors > 0)
			printf("errors during the throughput runs: carotated %lld, echo %lld\n",
			    d.errors, e.errors);
		printf("\ngoal: daemon throughput >= 50%% of echo: %s (%.1f%%)\n",
		    tput >= 50.0 ? "met" : "NOT met", tput);
		printf("goal: daemon p50 <= 2x echo p50:         %s (%.2fx)\n",
		    lat <= 2.0 ? "met" : "NOT met", lat);
	}

	kill(echo_pid, SIGTERM);
	waitpid(echo_pid, NULL, 0);
	unlink(echo_path);
	rmdir(dir);
	free(reply);
	free(frame);
	return rc;
}
