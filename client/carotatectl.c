/* carotatectl: one request to carotated over its control socket, one reply printed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "output.h"
#include "status.h"
#include "wire.h"
#include "xmalloc.h"

#define CTL_NAME            "carotatectl"
#define CTL_DEFAULT_SOCKET  "/run/carotate/carotated.sock"
#define CTL_SOCKET_ENV      "CAROTATE_SOCKET"
#define CTL_DEFAULT_TIMEOUT 30               /* seconds */
#define CTL_MAX_TIMEOUT     (INT_MAX / 1000) /* seconds: the wire deadline is int ms */

struct ctl_opts {
	const char *socket;
	int json;
	int timeout; /* seconds; 0: wait forever */
};

/* A request and the storage of its call, so building one allocates nothing. */
struct ctl_request {
	Carotate__V1__Request req;
	union {
		Carotate__V1__StatusRequest status;
	} call;
};

/* A failure meant for the operator: a protocol status (which fixes the exit code) and why. */
struct ctl_error {
	int status;
	char message[1024];
};

struct ctl_cmd {
	const char *name;
	const char *args;    /* synopsis after the name; "" when it takes none */
	const char *summary; /* one line for --help */
	/* Parses the command's arguments into the request; -1 after printing a usage error. */
	int (*build)(const struct ctl_cmd *, struct ctl_opts *, int, char **, struct ctl_request *);
	/* Prints an OK reply; returns the exit code. */
	int (*print)(const struct ctl_opts *, const Carotate__V1__Response *);
};

static int ctl_build_status(
    const struct ctl_cmd *, struct ctl_opts *, int, char **, struct ctl_request *);
static int ctl_print_status(const struct ctl_opts *, const Carotate__V1__Response *);

static void ctl_usage(FILE *);
static void ctl_cmd_usage(const struct ctl_cmd *, FILE *);
static int ctl_usage_error(const struct ctl_cmd *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static int ctl_parse_timeout(const char *, int *);
static int ctl_common_option(const struct ctl_cmd *, struct ctl_opts *, int, const char *, char **);
static int ctl_parse_globals(struct ctl_opts *, int, char **);
static int ctl_parse_cmd_options(const struct ctl_cmd *, struct ctl_opts *, int, char **);
static const struct ctl_cmd *ctl_find(const char *);
static int ctl_set_error(struct ctl_error *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static long long ctl_now_ms(void);
static int ctl_left_ms(long long);
static int ctl_connect(const struct ctl_opts *, long long, struct ctl_error *);
static int ctl_send(
    int, const struct ctl_opts *, const struct ctl_request *, long long, struct ctl_error *);
static int ctl_receive(
    int, const struct ctl_opts *, long long, uint8_t **, size_t *, struct ctl_error *);
static Carotate__V1__Response *ctl_exchange(
    const struct ctl_opts *, const struct ctl_request *, struct wire_budget *, struct ctl_error *);
static int ctl_fail(const struct ctl_opts *, const struct ctl_error *);
static int ctl_finish_output(int);
static int ctl_run(const struct ctl_cmd *, struct ctl_opts *, int, char **);

/* Every command, in the order --help lists them. Later commands slot in here. */
static const struct ctl_cmd ctl_table[] = {
	{ "status", "", "show the phase, the active and staged certificate sets, the trust bundle",
	    ctl_build_status, ctl_print_status },
};

/* Options every command also accepts after its name ("status --json"). */
#define CTL_COMMON_SHORTOPTS ":hjs:t:"
/* clang-format off */
#define CTL_COMMON_LONGOPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "json", no_argument, NULL, 'j' }, \
	{ "socket", required_argument, NULL, 's' }, \
	{ "timeout", required_argument, NULL, 't' }
/* clang-format on */

static const struct option ctl_global_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_cmd_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 },
};

static void
ctl_usage(FILE *fp)
{
	size_t i;

	fprintf(fp,
	    "usage: " CTL_NAME " [--socket PATH] [--json] [--timeout DURATION] COMMAND [ARGS]\n"
	    "       " CTL_NAME " COMMAND --help\n"
	    "       " CTL_NAME " --version\n"
	    "\n"
	    "options:\n"
	    "  -s, --socket PATH         control socket (default: $" CTL_SOCKET_ENV
	    ", else " CTL_DEFAULT_SOCKET ")\n"
	    "  -j, --json                print one JSON object on stdout\n"
	    "  -t, --timeout DURATION    give up after DURATION: seconds, or with an s or m\n"
	    "                            suffix; 0 waits forever (default: %ds)\n"
	    "  -h, --help                print this help\n"
	    "  -V, --version             print the version\n"
	    "\n"
	    "commands:\n",
	    CTL_DEFAULT_TIMEOUT);
	for (i = 0; i < sizeof(ctl_table) / sizeof(ctl_table[0]); i++)
		fprintf(fp, "  %-12s %s\n", ctl_table[i].name, ctl_table[i].summary);
	fprintf(fp,
	    "\nexit status: 0 done, 1 usage, 2 daemon unreachable, 3 precondition not met,\n"
	    "4 permission denied, 5 invalid input, 6 internal error.\n");
}

static void
ctl_cmd_usage(const struct ctl_cmd *cmd, FILE *fp)
{
	fprintf(fp, "usage: " CTL_NAME " [--socket PATH] [--json] [--timeout DURATION] %s%s%s\n",
	    cmd->name, cmd->args[0] != '\0' ? " " : "", cmd->args);
	fprintf(fp, "%s\n", cmd->summary);
}

/* Says what is wrong and where help is; returns -1 so callers can `return ctl_usage_error()`. */
static int
ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, CTL_NAME ": ");
	if (cmd != NULL)
		fprintf(stderr, "%s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" CTL_NAME " %s%s--help' for more information.\n",
	    cmd != NULL ? cmd->name : "", cmd != NULL ? " " : "");
	return -1;
}

/* DURATION: whole seconds with an optional s or m suffix, within what the wire deadline holds. */
static int
ctl_parse_timeout(const char *s, int *seconds)
{
	unsigned long long v, scale = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (strcmp(end, "m") == 0)
		scale = 60;
	else if (strcmp(end, "s") != 0 && *end != '\0')
		return -1;
	if (v > CTL_MAX_TIMEOUT / scale)
		return -1;
	*seconds = (int)(v * scale);
	return 0;
}

/* Handles one option common to the whole program; 1 to exit 0 (help printed), -1 on error. */
static int
ctl_common_option(
    const struct ctl_cmd *cmd, struct ctl_opts *opts, int c, const char *arg, char **argv)
{
	switch (c) {
	case 'h':
		if (cmd != NULL)
			ctl_cmd_usage(cmd, stdout);
		else
			ctl_usage(stdout);
		return 1;
	case 'j':
		opts->json = 1;
		return 0;
	case 's':
		opts->socket = arg;
		return 0;
	case 't':
		if (ctl_parse_timeout(arg, &opts->timeout) != 0)
			return ctl_usage_error(cmd, "invalid timeout: %s", arg);
		return 0;
	case ':':
		return ctl_usage_error(cmd, "option %s needs an argument", argv[optind - 1]);
	default:
		if (optopt != 0)
			return ctl_usage_error(cmd, "unknown option -%c", optopt);
		return ctl_usage_error(cmd, "unknown option %s", argv[optind - 1]);
	}
}

/* Options before COMMAND; returns the index of COMMAND, argc after --help/--version, -1. */
static int
ctl_parse_globals(struct ctl_opts *opts, int argc, char **argv)
{
	int c, r;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(
	            argc, argv, "+" CTL_COMMON_SHORTOPTS "V", ctl_global_longopts, NULL)) != -1) {
		if (c == 'V') {
			printf(CTL_NAME " %s\n", CAROTATE_VERSION);
			return argc;
		}
		if ((r = ctl_common_option(NULL, opts, c, optarg, argv)) != 0)
			return r > 0 ? argc : -1;
	}
	if (optind >= argc)
		return ctl_usage_error(NULL, "no command given");
	return optind;
}

/*
 * Options after COMMAND for a command with only the common ones; argv[0] is the command
 * name. Returns the index of the first operand, 0 after --help, -1 on error.
 */
static int
ctl_parse_cmd_options(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv)
{
	int c, r;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, CTL_COMMON_SHORTOPTS, ctl_cmd_longopts, NULL)) != -1)
		if ((r = ctl_common_option(cmd, opts, c, optarg, argv)) != 0)
			return r > 0 ? 0 : -1;
	return optind;
}

static int
ctl_build_status(
    const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv, struct ctl_request *r)
{
	int first;

	if ((first = ctl_parse_cmd_options(cmd, opts, argc, argv)) <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	carotate__v1__status_request__init(&r->call.status);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_STATUS;
	r->req.status = &r->call.status;
	return 1;
}

static int
ctl_print_status(const struct ctl_opts *opts, const Carotate__V1__Response *resp)
{
	struct ctl_error err;
	int r;

	if (resp->result_case != CAROTATE__V1__RESPONSE__RESULT_STATUS_REPLY ||
	    resp->status_reply == NULL) {
		ctl_set_error(&err, CAROTATE__V1__STATUS__INTERNAL,
		    "reply from carotated to status carries no status report");
		return ctl_fail(opts, &err);
	}
	if (opts->json)
		r = output_status_json(stdout, resp->status_reply);
	else
		r = output_status_human(stdout, resp->status_reply);
	return ctl_finish_output(r);
}

static const struct ctl_cmd *
ctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ctl_table) / sizeof(ctl_table[0]); i++)
		if (strcmp(ctl_table[i].name, name) == 0)
			return &ctl_table[i];
	return NULL;
}

static int
ctl_set_error(struct ctl_error *err, int status, const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

static long long
ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds until the deadline, as the wire helpers take them (-1: no deadline). */
static int
ctl_left_ms(long long deadline)
{
	long long left;

	if (deadline < 0)
		return -1;
	left = deadline - ctl_now_ms();
	return left > 0 ? (int)left : 0;
}

/*
 * A Unix-socket connect blocks while the daemon's backlog is full; SO_SNDTIMEO bounds that
 * wait. Afterwards the socket is non-blocking: the wire helpers poll against the deadline.
 */
static int
ctl_connect(const struct ctl_opts *opts, long long deadline, struct ctl_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int left = ctl_left_ms(deadline), fd, flags;
	struct timeval tv = { .tv_sec = left / 1000, .tv_usec = left % 1000 * 1000 };

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return ctl_set_error(
		    err, CAROTATE__V1__STATUS__INTERNAL, "socket: %s", strerror(errno));
	memcpy(sa.sun_path, opts->socket, strlen(opts->socket));
	if (left > 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		int e = errno;

		close(fd);
		if (e == EACCES || e == EPERM)
			return ctl_set_error(err, CAROTATE__V1__STATUS__PERMISSION_DENIED,
			    "permission denied on %s (are you in the carotate group?)",
			    opts->socket);
		if (e == EAGAIN || e == EINPROGRESS)
			return ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
			    "cannot reach carotated at %s: timed out connecting (daemon busy?)",
			    opts->socket);
		return ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: %s%s", opts->socket, strerror(e),
		    e == ENOENT || e == ECONNREFUSED ? " (is carotated running?)" : "");
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
		close(fd);
		return ctl_set_error(
		    err, CAROTATE__V1__STATUS__INTERNAL, "fcntl: %s", strerror(errno));
	}
	return fd;
}

/*
 * Sends the framed request. A daemon that refuses the connection (too many clients) may
 * answer and close before reading it: EPIPE is not final, its reply may be waiting.
 */
static int
ctl_send(int fd, const struct ctl_opts *opts, const struct ctl_request *r, long long deadline,
    struct ctl_error *err)
{
	uint8_t *frame;
	size_t len;
	int ret = 0;

	if ((frame = wire_frame_pack(&r->req.base, WIRE_MAX_REQUEST, &len)) == NULL)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "request too large (the limit is %u KiB)", WIRE_MAX_REQUEST / 1024);
	if (wire_write_all(fd, frame, len, ctl_left_ms(deadline)) == -1 && errno != EPIPE &&
	    errno != ECONNRESET)
		ret = ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: %s", opts->socket,
		    errno == ETIMEDOUT ? "timed out sending the request" : strerror(errno));
	free(frame);
	return ret;
}

static int
ctl_receive(int fd, const struct ctl_opts *opts, long long deadline, uint8_t **body, size_t *len,
    struct ctl_error *err)
{
	switch (wire_read_frame(fd, WIRE_MAX_REPLY, body, len, ctl_left_ms(deadline))) {
	case WIRE_READ_OK:
		return 0;
	case WIRE_READ_EOF:
		return ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: connection closed before a reply", opts->socket);
	case WIRE_READ_TIMEOUT:
		return ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: no reply within %ds", opts->socket,
		    opts->timeout);
	case WIRE_READ_TOOLARGE:
		return ctl_set_error(err, CAROTATE__V1__STATUS__INTERNAL,
		    "reply from carotated too large (the limit is %u MiB)",
		    WIRE_MAX_REPLY / (1024 * 1024));
	default:
		return ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: %s", opts->socket, strerror(errno));
	}
}

/* Connect, send, receive, decode within the reply budget; NULL with err filled. */
static Carotate__V1__Response *
ctl_exchange(const struct ctl_opts *opts, const struct ctl_request *r, struct wire_budget *b,
    struct ctl_error *err)
{
	long long deadline = opts->timeout > 0 ? ctl_now_ms() + opts->timeout * 1000LL : -1;
	Carotate__V1__Response *resp = NULL;
	uint8_t *body = NULL;
	size_t len;
	int fd;

	if ((fd = ctl_connect(opts, deadline, err)) == -1)
		return NULL;
	if (ctl_send(fd, opts, r, deadline, err) == 0 &&
	    ctl_receive(fd, opts, deadline, &body, &len, err) == 0) {
		wire_budget_init(b, WIRE_REPLY_BUDGET);
		if ((resp = wire_response_unpack(body, len, b)) == NULL)
			ctl_set_error(err, CAROTATE__V1__STATUS__INTERNAL,
			    "undecodable reply from carotated (%zu bytes%s)", len,
			    b->exhausted ? ", over the memory budget" : "");
	}
	free(body);
	close(fd);
	return resp;
}

/* Reports a failure on stderr (and as JSON on stdout with --json); returns its exit code. */
static int
ctl_fail(const struct ctl_opts *opts, const struct ctl_error *err)
{
	fputs(CTL_NAME ": ", stderr);
	output_safe(stderr, err->message);
	fputc('\n', stderr);
	if (opts->json)
		output_error_json(stdout, status_name(err->status), err->message);
	fflush(stdout);
	return status_exit_code(err->status);
}

/* Output that did not reach stdout (a full disk, a closed pipe) is a failure. */
static int
ctl_finish_output(int r)
{
	if (r != 0 || fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, CTL_NAME ": writing output: %s\n",
		    errno != 0 ? strerror(errno) : "failed");
		return EXIT_INTERNAL;
	}
	return EXIT_DONE;
}

/* Builds the command's request, talks to the daemon, prints the reply or the failure. */
static int
ctl_run(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv)
{
	struct ctl_request r = { .req = CAROTATE__V1__REQUEST__INIT };
	struct wire_budget budget;
	struct ctl_error err;
	Carotate__V1__Response *resp;
	int code, built;

	r.req.version = WIRE_VERSION;
	if ((built = cmd->build(cmd, opts, argc, argv, &r)) <= 0)
		return built == 0 ? EXIT_DONE : EXIT_USAGE;
	if (strlen(opts->socket) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		ctl_usage_error(NULL, "socket path too long: %s", opts->socket);
		return EXIT_USAGE;
	}
	resp = ctl_exchange(opts, &r, &budget, &err);
	if (resp == NULL)
		return ctl_fail(opts, &err);
	if (resp->status != CAROTATE__V1__STATUS__OK) {
		ctl_set_error(&err, resp->status, "%s",
		    resp->message[0] != '\0' ? resp->message : status_message(resp->status));
		code = ctl_fail(opts, &err);
	} else
		code = cmd->print(opts, resp);
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	return code;
}

int
main(int argc, char **argv)
{
	struct ctl_opts opts = { .timeout = CTL_DEFAULT_TIMEOUT };
	const struct ctl_cmd *cmd;
	const char *env = getenv(CTL_SOCKET_ENV);
	int first;

	log_init(1, 0, CTL_NAME);
	log_set_exit_status(EXIT_INTERNAL);
	opts.socket = env != NULL && *env != '\0' ? env : CTL_DEFAULT_SOCKET;
	if ((first = ctl_parse_globals(&opts, argc, argv)) < 0)
		return EXIT_USAGE;
	if (first >= argc)
		return ctl_finish_output(0);
	if ((cmd = ctl_find(argv[first])) == NULL) {
		ctl_usage_error(NULL, "unknown command: %s", argv[first]);
		return EXIT_USAGE;
	}
	return ctl_run(cmd, &opts, argc - first, argv + first);
}
