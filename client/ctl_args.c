/*
 * carotatectl's argument grammar, shared by every verb: the common options, getopt over a
 * verb's own options, DURATION and N, reading the files install sends, reasons and pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "xmalloc.h"

static void ctl_args_cmd_usage(const struct ctl_cmd *cmd, FILE *fp);
static uint64_t ctl_args_unit_seconds(char unit);
static int ctl_args_timeout(const char *s, int *seconds);
static int ctl_args_open_file(const char *opt, const char *path, struct ctl_error *err);
static int ctl_args_read_all(int fd, uint8_t *buf, size_t size, size_t *len);

const struct option ctl_args_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 },
};

/* The synopsis, the command's own options, then the common ones with its default timeout. */
static void
ctl_args_cmd_usage(const struct ctl_cmd *cmd, FILE *fp)
{
	int timeout = cmd->timeout != 0 ? cmd->timeout : CTL_DEFAULT_TIMEOUT;

	fprintf(fp, "usage: " CTL_NAME " [--socket PATH] [--json] [--timeout DURATION] %s\n",
	    cmd->name);
	if (cmd->args[0] != '\0')
		fprintf(fp, "         %s\n", cmd->args);
	fprintf(fp, "\n%s\n", cmd->summary);
	if (cmd->options[0] != '\0')
		fprintf(fp, "\noptions:\n%s", cmd->options);
	fprintf(fp, "\ncommon options (before or after the command):\n"
	            "  -s, --socket PATH         control socket (default: $" CTL_SOCKET_ENV
	            ", else " CTL_DEFAULT_SOCKET ")\n"
	            "  -j, --json                print one JSON object on stdout\n");
	if (cmd->own_timeout)
		fprintf(fp,
		    "  -h, --help                print this help\n"
		    "\ncommon option before the command only:\n"
		    "  -t, --timeout DURATION    give up on each call to carotated after "
		    "DURATION:\n"
		    "                            digits with an optional s, m, h or d suffix, up\n"
		    "                            to 24d; 0 waits forever (default: %ds)\n",
		    timeout);
	else
		fprintf(fp,
		    "  -t, --timeout DURATION    give up after DURATION: digits with an optional "
		    "s,\n"
		    "                            m, h or d suffix, up to 24d; 0 waits forever\n"
		    "                            (default: %ds)\n"
		    "  -h, --help                print this help\n",
		    timeout);
}

/* Says what is wrong and where help is; returns -1 so callers can `return ctl_args_usage_error()`.
 */
int
ctl_args_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
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

static uint64_t
ctl_args_unit_seconds(char unit)
{
	switch (unit) {
	case 'm':
		return 60;
	case 'h':
		return 3600;
	case 'd':
		return CTL_DAY;
	default:
		return 1;
	}
}

/*
 * DURATION: decimal digits, then one suffix of `units` (of s, m, h, d) or none (seconds);
 * at most max seconds.
 */
int
ctl_args_duration(const char *s, const char *units, uint64_t max, uint64_t *seconds)
{
	unsigned long long v, scale = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		if (end[1] != '\0' || strchr(units, *end) == NULL)
			return -1;
		scale = ctl_args_unit_seconds(*end);
	}
	if (v > max / scale)
		return -1;
	*seconds = v * scale;
	return 0;
}

/* N: plain decimal digits, from min to max; no sign, blank or unit. */
int
ctl_args_count(const char *s, uint64_t min, uint64_t max, uint64_t *n)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*n = v;
	return 0;
}

/*
 * The common --timeout: the one DURATION grammar (s, m, h, d), within what the wire deadline
 * (int ms) holds: 24 days.
 */
static int
ctl_args_timeout(const char *s, int *seconds)
{
	uint64_t v;

	if (ctl_args_duration(s, "smhd", CTL_MAX_TIMEOUT, &v) != 0)
		return -1;
	*seconds = (int)v;
	return 0;
}

/* Handles one option common to the whole program; 1 to exit 0 (help printed), -1 on error. */
int
ctl_args_common(
    const struct ctl_cmd *cmd, struct ctl_opts *opts, int c, const char *arg, char **argv)
{
	switch (c) {
	case 'h':
		if (cmd != NULL)
			ctl_args_cmd_usage(cmd, stdout);
		return 1;
	case 'j':
		opts->json = 1;
		return 0;
	case 's':
		opts->socket = arg;
		return 0;
	case 't':
		if (ctl_args_timeout(arg, &opts->timeout) != 0)
			return ctl_args_usage_error(cmd,
			    "invalid timeout: %s (expected digits with an optional s, m, h or d "
			    "suffix, up to %dd)",
			    arg, CTL_MAX_TIMEOUT / 86400);
		opts->timeout_set = 1;
		return 0;
	case ':':
		return ctl_args_usage_error(cmd, "option %s needs an argument", argv[optind - 1]);
	default:
		if (optopt != 0)
			return ctl_args_usage_error(cmd, "unknown option -%c", optopt);
		return ctl_args_usage_error(cmd, "unknown option %s", argv[optind - 1]);
	}
}

/*
 * Options after COMMAND (argv[0] is its name): the common ones here, the command's own (those
 * of longopts beyond the common) through fn. Returns the index of the first operand, 0 after
 * --help, -1 after a usage error.
 */
int
ctl_args_parse(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    const struct option *longopts, ctl_option_fn fn, void *ctx)
{
	int c, r, li = 0;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, CTL_COMMON_SHORTOPTS, longopts, &li)) != -1) {
		if (c == 't' && cmd->own_timeout && fn != NULL)
			r = fn(cmd, "timeout", c, optarg, ctx);
		else if (c >= CTL_OPT_KEY_TYPE && fn != NULL)
			r = fn(cmd, longopts[li].name, c, optarg, ctx);
		else
			r = ctl_args_common(cmd, opts, c, optarg, argv);
		if (r != 0)
			return r > 0 ? 0 : -1;
	}
	return optind;
}

/* Commands that take only the common options. */
int
ctl_args_no_operands(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv)
{
	int first;

	first = ctl_args_parse(cmd, opts, argc, argv, ctl_args_longopts, NULL, NULL);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	return 1;
}

/* The one operand (what) at argv[first]; its index, or -1 after a usage error. */
int
ctl_args_one_operand(const struct ctl_cmd *cmd, int argc, char **argv, int first, const char *what)
{
	if (first >= argc)
		return ctl_args_usage_error(cmd, "%s is required", what);
	if (first + 1 < argc)
		return ctl_args_usage_error(
		    cmd, "takes one %s (got also %s)", what, argv[first + 1]);
	return first;
}

/* An option that may be given once: a second one is more likely a mistake than an override. */
int
ctl_args_once(const struct ctl_cmd *cmd, const char *name, const char **slot, const char *arg)
{
	if (*slot != NULL)
		return ctl_args_usage_error(cmd, "--%s given more than once", name);
	*slot = arg;
	return 0;
}

/* A numeric uid, 0 to 2^32 - 2 ((uid_t)-1 means "no uid" to the kernel). */
int
ctl_args_uid(const char *s, uid_t *uid)
{
	uint64_t v;

	if (ctl_args_count(s, 0, UINT32_MAX - 1, &v) != 0)
		return -1;
	*uid = (uid_t)v;
	return 0;
}

/*
 * Opens a file the operator names, with the operator's permissions; a regular file only.
 * O_NONBLOCK so that a FIFO cannot block the open before fstat refuses it. Returns the fd.
 */
static int
ctl_args_open_file(const char *opt, const char *path, struct ctl_error *err)
{
	struct stat st;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--%s %s: %s",
		    opt, path, strerror(errno));
	if (fstat(fd, &st) == -1) {
		e = errno;
		close(fd);
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--%s %s: %s",
		    opt, path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--%s %s: not a regular file", opt, path);
	}
	if (st.st_size > LIMITS_MAX_PEM) {
		close(fd);
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--%s %s: file too large (%lld bytes, limit %d)", opt, path,
		    (long long)st.st_size, LIMITS_MAX_PEM);
	}
	return fd;
}

/* Reads until EOF or until buf is full; short reads and EINTR are not the end. */
static int
ctl_args_read_all(int fd, uint8_t *buf, size_t size, size_t *len)
{
	ssize_t n;

	*len = 0;
	while (*len < size) {
		if ((n = read(fd, buf + *len, size - *len)) == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		*len += (size_t)n;
	}
	return 0;
}

/*
 * A file's bytes into out: the buffer holds LIMITS_MAX_PEM + 1 so that a file that grew since
 * fstat is caught, and it is never reallocated, so no stray copy of a key is left behind.
 */
int
ctl_args_read_file(
    const char *opt, const char *path, ProtobufCBinaryData *out, struct ctl_error *err)
{
	uint8_t *buf;
	size_t len;
	int fd, r, e;

	if ((fd = ctl_args_open_file(opt, path, err)) == -1)
		return -1;
	buf = xmalloc(LIMITS_MAX_PEM + 1);
	r = ctl_args_read_all(fd, buf, LIMITS_MAX_PEM + 1, &len);
	e = errno;
	close(fd);
	if (r == -1 || len == 0 || len > LIMITS_MAX_PEM)
		xfreezero(buf, LIMITS_MAX_PEM + 1);
	if (r == -1)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--%s %s: %s",
		    opt, path, strerror(e));
	if (len > LIMITS_MAX_PEM)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--%s %s: file too large (over %d bytes, limit %d)", opt, path, LIMITS_MAX_PEM,
		    LIMITS_MAX_PEM);
	if (len == 0)
		return ctl_conn_error(
		    err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--%s %s: empty", opt, path);
	out->data = buf;
	out->len = len;
	return 0;
}

/* Every file buffer is LIMITS_MAX_PEM + 1 bytes (ctl_args_read_file). */
void
ctl_args_wipe(ProtobufCBinaryData *b)
{
	if (b->data != NULL)
		xfreezero(b->data, LIMITS_MAX_PEM + 1);
	b->data = NULL;
	b->len = 0;
}

/* Printable ASCII only: the reason is shown on operators' terminals and logs. */
int
ctl_args_reason(const char *reason, struct ctl_error *err)
{
	const unsigned char *p;
	size_t n = strlen(reason);

	if (n == 0 || n > LIMITS_MAX_REASON)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--reason: expected 1 to %d characters (got %zu)", LIMITS_MAX_REASON, n);
	for (p = (const unsigned char *)reason; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "--reason: byte 0x%02x at offset %zu is not printable ASCII", *p,
			    (size_t)(p - (const unsigned char *)reason));
	return 0;
}

int
ctl_args_page_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_page_args *a = ctx;

	switch (c) {
	case CTL_OPT_LIMIT:
		return ctl_args_once(cmd, name, &a->limit, arg);
	case CTL_OPT_OFFSET:
		return ctl_args_once(cmd, name, &a->offset, arg);
	default:
		return ctl_args_usage_error(cmd, "unknown option --%s", name);
	}
}

/*
 * --limit (1 to max) and --offset (0 or more) as given; a field left unset
 * stays zero, the daemon's default page from the newest.
 */
int
ctl_args_fill_page(const struct ctl_page_args *a, uint64_t max, uint32_t *limit, uint64_t *offset,
    struct ctl_error *err)
{
	uint64_t v;

	if (a->limit != NULL && ctl_args_count(a->limit, 1, max, &v) != 0)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--limit %s: expected a whole number from 1 to %" PRIu64, a->limit, max);
	if (a->limit != NULL)
		*limit = (uint32_t)v;
	if (a->offset != NULL && ctl_args_count(a->offset, 0, CTL_MAX_OFFSET, &v) != 0)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--offset %s: expected a whole number, 0 or more", a->offset);
	if (a->offset != NULL)
		*offset = v;
	return 0;
}
