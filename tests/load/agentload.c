/*
 * agentload: check-ins and hostile HTTP clients straight on carotated's agent
 * socket (the worker's listener, HTTP over AF_UNIX, no TLS), from one process
 * and one epoll loop. Prints figures as key=value lines; asserts nothing.
 *
 *   agentload -s SOCKET -k LINKING_KEY_FILE [-n AGENTS] [-t SECONDS] [--tokens FILE]
 *             [--checkin N [--rounds R]] [--keepalive] [--slowloris N] [--body N]
 *             [--idle N] [--noread N] [--drip-interval MS] [-e etag=HEX] [-e certs=N]
 *             [-p [NAME=]PID]...
 *
 * First links -n agents (default 1000; their tokens stay in memory), then
 * runs for -t seconds. With --tokens FILE, agents keep their tokens across
 * runs as real agents do (the daemon refuses a second link of an id): the
 * first run links and writes "id token" lines to FILE, later runs read them
 * and link nothing (give them -e etag).
 *  checkin    N clients, each one check-in at a time, round-robin over the
 *             agents, a new connection each (as nginx connects upstream) or
 *             kept alive; 7 in 8 present the bundle id (expect 304 and the
 *             ETag), every 8th does not (expect 200, the ETag and the bundle);
 *             with --rounds, R check-ins per agent in all, then the run ends
 *  slowloris  send a check-in's request line and headers one byte every
 *             --drip-interval ms (default 1000), never finishing them
 *  body       send a link request's headers whole, then 10 of the 1000 body
 *             bytes its Content-Length announces, then nothing
 *  idle       connect and send nothing
 *  noread     pipeline keep-alive check-ins asking for the whole bundle, as
 *             many as the socket takes, every tick, and never read a response
 * Hostile clients reconnect as soon as the worker closes them. -e etag: the
 * bundle id expected (default: the one the links answered); -e certs: the
 * certificates expected in a 200's bundle.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "load.h"
#include "sockclient.h"

#define AGL_TICK_MS      5
#define AGL_BUF          65536 /* bytes of one response, at most */
#define AGL_FULL_EVERY   8     /* every 8th check-in asks for the whole bundle */
#define AGL_NOREAD_BYTES 4096  /* one block of a noread client's pipelined check-ins */

enum agl_kind { AGL_CHECKIN, AGL_SLOWLORIS, AGL_BODY, AGL_IDLE, AGL_NOREAD, AGL_NKINDS };

static const char *agl_kind_names[AGL_NKINDS] = { "checkin", "slowloris", "body", "idle",
	"noread" };

struct agl_agent {
	char id[65];
	char token[65];
};

struct agl_conn {
	enum agl_kind kind;
	int fd;
	int64_t opened, started, due;
	char req[AGL_NOREAD_BYTES + 1024];
	size_t reqlen, woff;
	char *buf;
	size_t blen;
	unsigned agent;
	int full; /* this check-in asks for the whole bundle */
};

struct agl_stats {
	struct load_conns conn;
	long requests, ok, wrong, busy, errors, answered;
	long long sent; /* bytes, of noread clients */
};

static const char *agl_path;
static char agl_key[300];
static char agl_etag[65];
static long agl_certs = -1;
static long agl_max_checkins; /* --rounds: check-ins in all; 0: until the end */
static struct agl_agent *agl_agents;
static unsigned agl_nagents = 1000, agl_next_agent;
static int agl_epfd, agl_keepalive;
static int64_t agl_drip_us = 1000000;
static struct agl_stats agl_stats[AGL_NKINDS];
static struct load_procs agl_procs;

static void agl_usage(void) __attribute__((noreturn));
static void agl_read_key(const char *);
static void agl_link_all(void);
static int agl_load_tokens(const char *);
static void agl_save_tokens(const char *);
static void agl_open(struct agl_conn *, int64_t);
static void agl_drop(struct agl_conn *, int64_t, int by_daemon);
static void agl_checkin_request(struct agl_conn *);
static void agl_noread_requests(struct agl_conn *);
static void agl_noread_push(struct agl_conn *, int64_t);
static void agl_flush(struct agl_conn *, int64_t);
static void agl_readable(struct agl_conn *, int64_t);
static int agl_response(struct agl_conn *, int64_t);
static void agl_judge(struct agl_conn *, int, const char *, const char *, size_t, int64_t);
static void agl_timer(struct agl_conn *, int64_t);
static void agl_report(double);

static void
agl_usage(void)
{
	fprintf(stderr,
	    "usage: agentload -s SOCKET -k LINKING_KEY_FILE [-n AGENTS] [-t SECONDS] [--tokens "
	    "FILE]\n"
	    "                 [--checkin N [--rounds R]] [--keepalive] [--slowloris N] [--body N]\n"
	    "                 [--idle N] [--noread N] [--drip-interval MS] [-e etag=HEX]\n"
	    "                 [-e certs=N]\n"
	    "                 [-p [NAME=]PID]...\n");
	exit(2);
}

static void
agl_read_key(const char *path)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL || (n = fread(agl_key, 1, sizeof(agl_key) - 1, f)) == 0) {
		perror(path);
		exit(2);
	}
	fclose(f);
	agl_key[n] = '\0';
	while (n > 0 && isspace((unsigned char)agl_key[n - 1]))
		agl_key[--n] = '\0';
}

static void
agl_link_all(void)
{
	char req[1024], etag[65] = "";
	int64_t t0 = load_now_us();
	unsigned i;
	int fd = -1, status;

	for (i = 0; i < agl_nagents; i++) {
		snprintf(req, sizeof(req),
		    "POST /carotate/v1/link HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer %s\r\n"
		    "X-Agent-Id: %s\r\nContent-Length: 0\r\n\r\n",
		    agl_key, agl_agents[i].id);
		/* One keep-alive connection, blocking: linking is set-up, not load. */
		if (fd == -1)
			fd = sockclient_connect(agl_path, 0);
		if (fd == -1 ||
		    sockclient_http_exchange(fd, req, &status, agl_agents[i].token, etag) == -1 ||
		    status != 200) {
			fprintf(stderr, "agentload: linking %s failed\n", agl_agents[i].id);
			exit(2);
		}
	}
	close(fd);
	if (agl_etag[0] == '\0')
		memcpy(agl_etag, etag, sizeof(agl_etag));
	printf("agentload linked=%u seconds=%.2f links_per_s=%.0f etag=%s\n", agl_nagents,
	    (double)(load_now_us() - t0) / 1e6, agl_nagents / ((double)(load_now_us() - t0) / 1e6),
	    agl_etag);
	fflush(stdout);
}

/* Reads the tokens an earlier run saved: 0 when FILE holds one for every agent, -1 absent. */
static int
agl_load_tokens(const char *path)
{
	FILE *f = fopen(path, "re");
	char id[65], token[65];
	unsigned i;

	if (f == NULL)
		return -1;
	for (i = 0; i < agl_nagents; i++) {
		if (fscanf(f, "%64s %64s", id, token) != 2 || strcmp(id, agl_agents[i].id) != 0) {
			fprintf(stderr, "agentload: %s does not hold agent %s\n", path,
			    agl_agents[i].id);
			exit(2);
		}
		memcpy(agl_agents[i].token, token, sizeof(token));
	}
	fclose(f);
	printf("agentload linked=0 reused=%u tokens=%s\n", agl_nagents, path);
	fflush(stdout);
	return 0;
}

static void
agl_save_tokens(const char *path)
{
	FILE *f = fopen(path, "wxe");
	unsigned i;

	if (f == NULL) {
		perror(path);
		exit(2);
	}
	for (i = 0; i < agl_nagents; i++)
		fprintf(f, "%s %s\n", agl_agents[i].id, agl_agents[i].token);
	if (fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* Connects c (or schedules a retry) and starts what its kind does. */
static void
agl_open(struct agl_conn *c, int64_t now)
{
	struct agl_stats *s = &agl_stats[c->kind];

	if (c->kind == AGL_CHECKIN && agl_max_checkins > 0 &&
	    agl_stats[AGL_CHECKIN].requests >= agl_max_checkins) {
		c->due = 0; /* done: every agent checked in --rounds times */
		return;
	}
	if (c->started == 0)
		c->started = now;
	if ((c->fd = load_conns_open(&s->conn, agl_path, now, &c->due)) == -1)
		return;
	/* A noread client hears of the close only: EPOLLIN would report its unread responses. */
	load_watch(agl_epfd, c->fd, c->kind == AGL_NOREAD ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP, c);
	c->opened = now;
	c->woff = c->blen = 0;
	switch (c->kind) {
	case AGL_CHECKIN:
		agl_checkin_request(c);
		agl_flush(c, now);
		break;
	case AGL_SLOWLORIS:
		/* Headers without the blank line that ends them: never a whole request. */
		c->reqlen = (size_t)snprintf(c->req, sizeof(c->req),
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: agent\r\nX-Agent-Id: slow-%u\r\n"
		    "Authorization: Bearer %064d\r\nX-Padding: %0200d\r\n",
		    c->agent, 0, 0);
		c->due = now;
		break;
	case AGL_NOREAD:
		agl_noread_requests(c);
		c->due = now;
		break;
	case AGL_BODY:
		c->reqlen = (size_t)snprintf(c->req, sizeof(c->req),
		    "POST /carotate/v1/link HTTP/1.1\r\nHost: agent\r\nX-Agent-Id: body-%u\r\n"
		    "Authorization: Bearer not-the-linking-key\r\nContent-Length: 1000\r\n\r\n"
		    "0123456789",
		    c->agent);
		agl_flush(c, now);
		break;
	default:
		break;
	}
}

/* Closes c; by_daemon: the worker closed it first. Hostile clients come back at once. */
static void
agl_drop(struct agl_conn *c, int64_t now, int by_daemon)
{
	if (c->fd == -1)
		return;
	load_conns_close(&agl_stats[c->kind].conn, &c->fd, now - c->opened, by_daemon);
	if (c->kind != AGL_CHECKIN)
		c->started = 0;
	c->due = now + (by_daemon || c->kind == AGL_CHECKIN ? 0 : LOAD_ERROR_US);
}

/* The next agent's check-in: with its bundle id (304), or every 8th without (200). */
static void
agl_checkin_request(struct agl_conn *c)
{
	const struct agl_agent *a = &agl_agents[agl_next_agent++ % agl_nagents];
	char inm[128] = "";

	c->full = agl_stats[AGL_CHECKIN].requests % AGL_FULL_EVERY == AGL_FULL_EVERY - 1;
	if (!c->full)
		snprintf(inm, sizeof(inm), "If-None-Match: \"%s\"\r\n", agl_etag);
	c->reqlen = (size_t)snprintf(c->req, sizeof(c->req),
	    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: agent\r\nX-Agent-Id: %s\r\n"
	    "Authorization: Bearer %s\r\n%s%s\r\n",
	    a->id, a->token, inm, agl_keepalive ? "" : "Connection: close\r\n");
	c->woff = 0;
	agl_stats[AGL_CHECKIN].requests++;
}

/* Keep-alive check-ins of agent c->agent, whole bundle each, back to back. */
static void
agl_noread_requests(struct agl_conn *c)
{
	const struct agl_agent *a = &agl_agents[c->agent % agl_nagents];
	int n;

	c->reqlen = 0;
	while (c->reqlen < AGL_NOREAD_BYTES) {
		n = snprintf(c->req + c->reqlen, sizeof(c->req) - c->reqlen,
		    "GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: agent\r\nX-Agent-Id: %s\r\n"
		    "Authorization: Bearer %s\r\n\r\n",
		    a->id, a->token);
		if (n < 0 || (size_t)n >= sizeof(c->req) - c->reqlen)
			break;
		c->reqlen += (size_t)n;
	}
	c->woff = 0;
}

/* A noread client's tick: its block of requests again and again until the socket is full. */
static void
agl_noread_push(struct agl_conn *c, int64_t now)
{
	ssize_t n;

	for (;;) {
		n = write(c->fd, c->req + c->woff, c->reqlen - c->woff);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			agl_drop(c, now, 1);
			return;
		}
		c->woff += (size_t)n;
		agl_stats[AGL_NOREAD].sent += n;
		if (c->woff == c->reqlen)
			c->woff = 0;
	}
	c->due = now + AGL_TICK_MS * 1000;
}

/* Writes what is left of c's request (a few hundred bytes: one write does it). */
static void
agl_flush(struct agl_conn *c, int64_t now)
{
	ssize_t n = write(c->fd, c->req + c->woff, c->reqlen - c->woff);

	if (n < 0 && errno != EAGAIN) {
		agl_stats[c->kind].errors++;
		agl_drop(c, now, 1);
		return;
	}
	if (n > 0)
		c->woff += (size_t)n;
	if (c->woff < c->reqlen && c->kind == AGL_CHECKIN) {
		agl_stats[c->kind].errors++;
		load_wrong("checkin: a request of %zu bytes did not fit the socket", c->reqlen);
		agl_drop(c, now, 0);
	}
}

static void
agl_readable(struct agl_conn *c, int64_t now)
{
	ssize_t n;

	for (;;) {
		if (c->blen == AGL_BUF - 1) {
			agl_stats[c->kind].errors++;
			load_wrong(
			    "%s: a response over %d bytes", agl_kind_names[c->kind], AGL_BUF);
			agl_drop(c, now, 0);
			return;
		}
		n = read(c->fd, c->buf + c->blen, AGL_BUF - 1 - c->blen);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			if (c->kind == AGL_CHECKIN) {
				agl_stats[c->kind].errors++;
				load_wrong(
				    "checkin: closed before a whole response (%zu bytes)", c->blen);
			}
			agl_drop(c, now, 1);
			return;
		}
		if (n < 0)
			return;
		c->blen += (size_t)n;
		c->buf[c->blen] = '\0';
		if (agl_response(c, now) == 1)
			return;
	}
}

/* 1 when a whole response was handled (c may be closed or reused), 0: more to read. */
static int
agl_response(struct agl_conn *c, int64_t now)
{
	const char *end, *v, *etag;
	size_t hlen, len, clen = 0, elen = 0;
	int status;

	if ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
		return 0;
	hlen = (size_t)(end - c->buf) + 4;
	if ((v = sockclient_header(c->buf, end, "Content-Length", &len)) != NULL)
		clen = strtoul(v, NULL, 10);
	if (c->blen < hlen + clen)
		return 0;
	if (sscanf(c->buf, "HTTP/1.1 %d", &status) != 1)
		status = -1;
	etag = sockclient_header(c->buf, end, "ETag", &elen);
	if (c->kind != AGL_CHECKIN) {
		agl_stats[c->kind].answered++;
		c->blen = 0;
		return 1;
	}
	agl_judge(c, status, etag, c->buf + hlen, clen, now);
	if (c->fd == -1)
		return 1;
	if (!agl_keepalive) {
		agl_drop(c, now, 0);
		c->started = 0;
		c->due = now;
		return 1;
	}
	c->blen = 0;
	if (agl_max_checkins > 0 && agl_stats[AGL_CHECKIN].requests >= agl_max_checkins) {
		agl_drop(c, now, 0);
		c->due = 0;
		return 1;
	}
	c->started = now;
	agl_checkin_request(c);
	agl_flush(c, now);
	return 1;
}

/* Counts one check-in's answer as right, busy (503) or wrong, with its latency. */
static void
agl_judge(
    struct agl_conn *c, int status, const char *etag, const char *body, size_t blen, int64_t now)
{
	struct agl_stats *s = &agl_stats[AGL_CHECKIN];
	char want[80];
	long certs = 0;
	const char *p;

	s->answered++;
	load_lat_add(&s->conn.lat, now - c->started);
	snprintf(want, sizeof(want), "\"%s\"", agl_etag);
	if (status == 503) {
		s->busy++;
		return;
	}
	for (p = body;
	     (p = memmem(p, blen - (size_t)(p - body), "-----BEGIN CERTIFICATE-----", 27)) != NULL;
	     p += 27)
		certs++;
	if (status != (c->full ? 200 : 304) || etag == NULL || strncmp(etag, want, strlen(want)) ||
	    (c->full && agl_certs >= 0 && certs != agl_certs)) {
		s->wrong++;
		load_wrong("checkin: HTTP %d, ETag %.66s, %ld certificates (want %d, %s, %ld)",
		    status, etag != NULL ? etag : "(none)", certs, c->full ? 200 : 304, want,
		    agl_certs);
		return;
	}
	s->ok++;
}

/* The timed action of c: connect, the next byte of a slowloris request, or noread's pipeline. */
static void
agl_timer(struct agl_conn *c, int64_t now)
{
	c->due = 0;
	if (c->fd == -1) {
		agl_open(c, now);
		return;
	}
	if (c->kind == AGL_NOREAD) {
		agl_noread_push(c, now);
		return;
	}
	if (c->kind != AGL_SLOWLORIS || c->woff >= c->reqlen)
		return;
	if (write(c->fd, c->req + c->woff, 1) != 1) {
		agl_drop(c, now, 1);
		return;
	}
	c->woff++;
	c->due = now + agl_drip_us;
}

static void
agl_report(double secs)
{
	struct agl_stats *s;
	int k;

	for (k = 0; k < AGL_NKINDS; k++) {
		s = &agl_stats[k];
		if (s->conn.conns == 0)
			continue;
		load_conns_print_head("agentload", agl_kind_names[k], secs, &s->conn);
		printf(" requests=%ld answered=%ld ok=%ld wrong=%ld busy=%ld errors=%ld per_s=%.0f"
		       " sent_kb=%lld",
		    s->requests, s->answered, s->ok, s->wrong, s->busy, s->errors,
		    secs > 0 ? (double)s->answered / secs : 0, s->sent / 1024);
		load_conns_print_tail(&s->conn);
	}
	load_procs_print("agentload", &agl_procs);
	load_wrong_print("agentload");
}

static void
agl_run(struct agl_conn *conns, size_t n, int64_t end)
{
	struct epoll_event ev[256];
	int64_t now, next_tick = 0, next_sample = 0;
	size_t i;
	int k, nev;

	while ((now = load_now_us()) < end) {
		if (agl_max_checkins > 0 && agl_stats[AGL_CHECKIN].answered >= agl_max_checkins)
			break;
		if (now >= next_tick) {
			for (i = 0; i < n; i++)
				if (conns[i].due != 0 && conns[i].due <= now)
					agl_timer(&conns[i], now);
			next_tick = now + AGL_TICK_MS * 1000;
		}
		if (now >= next_sample) {
			load_procs_sample(&agl_procs);
			next_sample = now + 100000;
		}
		nev = epoll_wait(agl_epfd, ev, 256, AGL_TICK_MS);
		now = load_now_us();
		for (k = 0; k < nev; k++) {
			struct agl_conn *c = ev[k].data.ptr;

			if (c->fd == -1)
				continue;
			if (c->kind == AGL_NOREAD)
				agl_drop(c, now, 1); /* the worker closed it: reconnect */
			else
				agl_readable(c, now);
		}
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "checkin", required_argument, NULL, 'C' },
		{ "keepalive", no_argument, NULL, 'K' },
		{ "slowloris", required_argument, NULL, 'S' },
		{ "body", required_argument, NULL, 'B' },
		{ "idle", required_argument, NULL, 'L' },
		{ "noread", required_argument, NULL, 'N' },
		{ "drip-interval", required_argument, NULL, 'E' },
		{ "rounds", required_argument, NULL, 'R' },
		{ "tokens", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	long want[AGL_NKINDS] = { 0 }, secs = 20, j;
	const char *keyfile = NULL, *tokens = NULL;
	struct agl_conn *conns;
	int64_t start;
	size_t n = 0, i;
	unsigned a;
	int ch, k;

	while ((ch = getopt_long(argc, argv, "s:k:n:t:e:p:", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			agl_path = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'n':
			agl_nagents = (unsigned)atol(optarg);
			break;
		case 't':
			secs = atol(optarg);
			break;
		case 'e':
			if (strncmp(optarg, "etag=", 5) == 0 && strlen(optarg + 5) == 64)
				memcpy(agl_etag, optarg + 5, 65);
			else if (strncmp(optarg, "certs=", 6) == 0)
				agl_certs = atol(optarg + 6);
			else
				agl_usage();
			break;
		case 'p':
			if (load_procs_add(&agl_procs, optarg) == -1)
				agl_usage();
			break;
		case 'T':
			tokens = optarg;
			break;
		case 'C':
			want[AGL_CHECKIN] = atol(optarg);
			break;
		case 'K':
			agl_keepalive = 1;
			break;
		case 'S':
			want[AGL_SLOWLORIS] = atol(optarg);
			break;
		case 'B':
			want[AGL_BODY] = atol(optarg);
			break;
		case 'L':
			want[AGL_IDLE] = atol(optarg);
			break;
		case 'N':
			want[AGL_NOREAD] = atol(optarg);
			break;
		case 'E':
			agl_drip_us = atol(optarg) * 1000;
			break;
		case 'R':
			agl_max_checkins = atol(optarg);
			break;
		default:
			agl_usage();
		}
	}
	if (agl_path == NULL || keyfile == NULL || optind != argc || secs <= 0 || agl_nagents < 1 ||
	    agl_nagents > 1000000 || agl_drip_us <= 0 || agl_max_checkins < 0 ||
	    agl_max_checkins > 1000)
		agl_usage();
	for (k = 0; k < AGL_NKINDS; k++) {
		if (want[k] < 0 || want[k] > 100000)
			agl_usage();
		n += (size_t)want[k];
	}
	signal(SIGPIPE, SIG_IGN);
	load_rlimit(n);
	agl_read_key(keyfile);
	if ((agl_agents = calloc(agl_nagents, sizeof(*agl_agents))) == NULL ||
	    (conns = calloc(n + 1, sizeof(*conns))) == NULL ||
	    (agl_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("agentload");
		return 2;
	}
	for (a = 0; a < agl_nagents; a++)
		snprintf(agl_agents[a].id, sizeof(agl_agents[a].id), "load-%u", a);
	if (tokens != NULL && agl_etag[0] == '\0' && access(tokens, F_OK) == 0) {
		fprintf(stderr, "agentload: agents of %s link nothing: give -e etag=HEX\n", tokens);
		return 2;
	}
	if (tokens == NULL || agl_load_tokens(tokens) == -1) {
		agl_link_all();
		if (tokens != NULL)
			agl_save_tokens(tokens);
	}
	agl_max_checkins *= (long)agl_nagents;
	for (k = 0, i = 0; k < AGL_NKINDS; k++) {
		agl_stats[k].conn.conns = want[k];
		for (j = 0; j < want[k]; j++, i++) {
			conns[i].kind = (enum agl_kind)k;
			conns[i].fd = -1;
			conns[i].agent = (unsigned)j;
			if ((conns[i].buf = malloc(AGL_BUF)) == NULL)
				return 2;
		}
	}
	start = load_now_us();
	load_procs_start(&agl_procs);
	for (i = 0; i < n; i++)
		conns[i].due = start;
	agl_run(conns, n, start + (int64_t)secs * 1000000);
	load_procs_end(&agl_procs);
	agl_report((double)(load_now_us() - start) / 1e6);
	for (i = 0; i < n; i++) {
		if (conns[i].fd != -1)
			close(conns[i].fd);
		free(conns[i].buf);
	}
	for (k = 0; k < AGL_NKINDS; k++)
		load_conns_free(&agl_stats[k].conn);
	free(conns);
	free(agl_agents);
	close(agl_epfd);
	return 0;
}
