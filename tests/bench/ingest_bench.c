/*
 * ingest_bench: agent check-ins straight into carotated's agent socket (HTTP
 * over AF_UNIX, no TLS), as fast as C keep-alive connections can send them.
 * Links N agents first (their tokens are kept in memory), then checks them in
 * round-robin for S seconds and prints the rate and the status codes seen.
 *
 *   ingest_bench -s SOCKET -k LINKING_KEY_FILE [-n AGENTS] [-c CONNS] [-t SECONDS]
 *                [-p PREFIX] [-i (present the current ETag: 304s)] [-l (link only)]
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sockclient.h"

struct agent {
	char id[65];
	char token[SOCKCLIENT_TOKEN];
	char etag[SOCKCLIENT_ETAG]; /* without its quotes */
};

static const char *sock_path;
static char linking_key[300];
static struct agent *agents;
static int nagents = 1000, nconns = 8, seconds = 5, present = 0;
static atomic_long done, codes[600];
static volatile int stop;

static int
bench_connect(void)
{
	int fd = sockclient_connect(sock_path, 0);

	if (fd == -1) {
		perror(sock_path);
		exit(1);
	}
	return fd;
}

/* Sends a request and reads one response; returns the status (-1 on an error), copies two headers.
 */
static int
bench_exchange(int fd, const char *req, char *token, char *etag)
{
	int status;

	return sockclient_http_exchange(fd, req, &status, token, etag) == -1 ? -1 : status;
}

static void
bench_link(void)
{
	char req[1024];
	int fd = bench_connect(), i, st;

	for (i = 0; i < nagents; i++) {
		snprintf(req, sizeof(req),
		    "POST /carotate/v1/link HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
		    "X-Agent-Id: %s\r\nContent-Length: 0\r\n\r\n",
		    linking_key, agents[i].id);
		if ((st = bench_exchange(fd, req, agents[i].token, agents[i].etag)) != 200) {
			fprintf(stderr, "link %s: status %d\n", agents[i].id, st);
			exit(1);
		}
	}
	close(fd);
}

static void *
bench_worker(void *arg)
{
	long k = (long)arg;
	char req[1024];
	int fd = bench_connect(), st, i;

	for (i = (int)k; !stop; i = (i + nconns) % nagents) {
		struct agent *a = &agents[i];

		snprintf(req, sizeof(req),
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
		    "X-Agent-Id: %s\r\n%s%s%s\r\n",
		    a->token, a->id, present ? "If-None-Match: \"" : "", present ? a->etag : "",
		    present ? "\"\r\n" : "");
		if ((st = bench_exchange(fd, req, NULL, present ? a->etag : NULL)) < 0) {
			close(fd);
			fd = bench_connect();
			continue;
		}
		if (st >= 0 && st < 600)
			atomic_fetch_add(&codes[st], 1);
		atomic_fetch_add(&done, 1);
	}
	close(fd);
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	const char *keyfile = NULL, *prefix = "bench";
	int ch, i, link_only = 0;
	pthread_t *th;
	double t0, t1;
	FILE *f;
	size_t n;

	while ((ch = getopt(argc, argv, "s:k:n:c:t:p:il")) != -1) {
		switch (ch) {
		case 's':
			sock_path = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'n':
			nagents = atoi(optarg);
			break;
		case 'c':
			nconns = atoi(optarg);
			break;
		case 't':
			seconds = atoi(optarg);
			break;
		case 'p':
			prefix = optarg;
			break;
		case 'i':
			present = 1;
			break;
		case 'l':
			link_only = 1;
			break;
		default:
			fprintf(stderr, "usage: ingest_bench -s SOCKET -k KEYFILE [-n N] [-c C] "
			                "[-t S] [-p PREFIX] [-i] [-l]\n");
			return 1;
		}
	}
	if (sock_path == NULL || keyfile == NULL || nagents < 1 || nconns < 1)
		return 1;
	if ((f = fopen(keyfile, "r")) == NULL || (n = fread(linking_key, 1, 299, f)) == 0)
		return perror(keyfile), 1;
	fclose(f);
	while (n > 0 && isspace((unsigned char)linking_key[n - 1]))
		linking_key[--n] = '\0';
	agents = calloc((size_t)nagents, sizeof(*agents));
	for (i = 0; i < nagents; i++)
		snprintf(agents[i].id, sizeof(agents[i].id), "%s-%d", prefix, i);
	t0 = now_s();
	bench_link();
	t1 = now_s();
	printf(
	    "linked %d agents in %.2f s (%.0f links/s)\n", nagents, t1 - t0, nagents / (t1 - t0));
	if (link_only) {
		free(agents);
		return 0;
	}
	th = calloc((size_t)nconns, sizeof(*th));
	t0 = now_s();
	for (i = 0; i < nconns; i++)
		pthread_create(&th[i], NULL, bench_worker, (void *)(long)i);
	sleep((unsigned)seconds);
	stop = 1;
	for (i = 0; i < nconns; i++)
		pthread_join(th[i], NULL);
	t1 = now_s();
	printf(
	    "check-ins: %ld in %.2f s over %d connections: %.0f check-ins/s (200: %ld, 304: %ld, "
	    "401: %ld, 503: %ld)\n",
	    (long)done, t1 - t0, nconns, (double)done / (t1 - t0), (long)codes[200],
	    (long)codes[304], (long)codes[401], (long)codes[503]);
	free(th);
	free(agents);
	return 0;
}
