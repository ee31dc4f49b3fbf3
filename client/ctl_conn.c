/*
 * carotatectl's one call: connect to the control socket, check who serves it before a
 * secret goes out, send the framed request, read and decode the reply within its budget,
 * and report the outcome (the call's error, or output that did not reach stdout).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "output.h"
#include "status.h"
#include "xmalloc.h"

static int ctl_conn_left_ms(long long deadline);
static int ctl_conn_denied(const char *path, struct ctl_error *err);
static int ctl_conn_connect(const struct ctl_opts *opts, long long deadline, struct ctl_error *err);
static int ctl_conn_check_peer(
    int fd, const struct ctl_opts *opts, const struct ctl_request *r, struct ctl_error *err);
static int ctl_conn_send(int fd, const struct ctl_opts *opts, const struct ctl_request *r,
    long long deadline, struct ctl_error *err);
static int ctl_conn_receive(int fd, const struct ctl_opts *opts, long long deadline, uint8_t **body,
    size_t *len, struct ctl_error *err);
static int ctl_conn_has_result(
    const struct ctl_cmd *cmd, const struct ctl_request *r, const Carotate__V1__Response *resp);

int
ctl_conn_error(struct ctl_error *err, int status, const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* Milliseconds until the deadline, as the wire helpers take them (-1: no deadline). */
static int
ctl_conn_left_ms(long long deadline)
{
	long long left;

	if (deadline < 0)
		return -1;
	left = deadline - clock_ms();
	return left > 0 ? (int)left : 0;
}

/*
 * A socket we may not open: name its group, read from the file itself (socket_group is
 * whatever carotated.conf says), and how to join it.
 */
static int
ctl_conn_denied(const char *path, struct ctl_error *err)
{
	struct group *gr;
	struct stat st;

	if (stat(path, &st) == -1)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__PERMISSION_DENIED,
		    "permission denied on %s: %s (may you enter its directory?)", path,
		    strerror(errno));
	if ((gr = getgrgid(st.st_gid)) == NULL)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__PERMISSION_DENIED,
		    "permission denied on %s: its group is gid %ld, which has no name here", path,
		    (long)st.st_gid);
	return ctl_conn_error(err, CAROTATE__V1__STATUS__PERMISSION_DENIED,
	    "permission denied on %s: only members of its group %s (readers) or of "
	    "carotated's admin_group may connect; an administrator adds you with "
	    "`usermod -aG %s USER` (or the admin_group), then log in again",
	    path, gr->gr_name, gr->gr_name);
}

/*
 * A Unix-socket connect blocks while the daemon's backlog is full; SO_SNDTIMEO bounds that
 * wait. Afterwards the socket is non-blocking: the wire helpers poll against the deadline.
 */
static int
ctl_conn_connect(const struct ctl_opts *opts, long long deadline, struct ctl_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int left = ctl_conn_left_ms(deadline), fd, flags;
	struct timeval tv = { .tv_sec = left / 1000, .tv_usec = left % 1000 * 1000 };

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return ctl_conn_error(
		    err, CAROTATE__V1__STATUS__INTERNAL, "socket: %s", strerror(errno));
	memcpy(sa.sun_path, opts->socket, strlen(opts->socket));
	if (left > 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		int e = errno;

		close(fd);
		if (e == EACCES || e == EPERM)
			return ctl_conn_denied(opts->socket, err);
		if (e == EAGAIN || e == EINPROGRESS)
			return ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
			    "cannot reach carotated at %s: timed out connecting (daemon busy?)",
			    opts->socket);
		return ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: %s%s", opts->socket, strerror(e),
		    e == ENOENT || e == ECONNREFUSED ? " (is carotated running?)" : "");
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
		close(fd);
		return ctl_conn_error(
		    err, CAROTATE__V1__STATUS__INTERNAL, "fcntl: %s", strerror(errno));
	}
	return fd;
}

/*
 * XXX the socket path comes from --socket or CAROTATE_SOCKET, which whoever runs us (or
 * set up our environment) may point anywhere: before a private key is sent, the peer must
 * be a process we already trust with it, root or ourselves, or the uid the operator named.
 * SO_PEERCRED gives the listener's credentials as they were when it called listen().
 */
static int
ctl_conn_check_peer(
    int fd, const struct ctl_opts *opts, const struct ctl_request *r, struct ctl_error *err)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t me = geteuid();

	if (!r->secret)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 || len != sizeof(cred))
		return ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "refusing to send the private key to %s: cannot tell who serves it (%s)",
		    opts->socket, strerror(errno));
	if (r->daemon_uid_set ? cred.uid == r->daemon_uid : cred.uid == 0 || cred.uid == me)
		return 0;
	if (r->daemon_uid_set)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "refusing to send the private key to %s: it is served by uid %lu, not by "
		    "--daemon-uid %lu",
		    opts->socket, (unsigned long)cred.uid, (unsigned long)r->daemon_uid);
	return ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
	    "refusing to send the private key to %s: it is served by uid %lu, neither root nor "
	    "you (uid %lu); if carotated runs as that user, say so with --daemon-uid %lu",
	    opts->socket, (unsigned long)cred.uid, (unsigned long)me, (unsigned long)cred.uid);
}

/*
 * Sends the framed request. A daemon that refuses the connection (too many clients) may
 * answer and close before reading it: EPIPE is not final, its reply may be waiting.
 */
static int
ctl_conn_send(int fd, const struct ctl_opts *opts, const struct ctl_request *r, long long deadline,
    struct ctl_error *err)
{
	uint8_t *frame;
	size_t len;
	int ret = 0;

	if ((frame = wire_frame_pack(&r->req.base, WIRE_MAX_REQUEST, &len)) == NULL)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "request too large (the limit is %u KiB)", WIRE_MAX_REQUEST / 1024);
	if (wire_write_all(fd, frame, len, ctl_conn_left_ms(deadline)) == -1 && errno != EPIPE &&
	    errno != ECONNRESET)
		ret = ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: %s", opts->socket,
		    errno == ETIMEDOUT ? "timed out sending the request" : strerror(errno));
	xfreezero(frame, len); /* install: it holds the private key */
	return ret;
}

static int
ctl_conn_receive(int fd, const struct ctl_opts *opts, long long deadline, uint8_t **body,
    size_t *len, struct ctl_error *err)
{
	switch (wire_read_frame(fd, WIRE_MAX_REPLY, body, len, ctl_conn_left_ms(deadline))) {
	case WIRE_READ_OK:
		return 0;
	case WIRE_READ_EOF:
		return ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: connection closed before a reply", opts->socket);
	case WIRE_READ_TIMEOUT:
		return ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: no reply within %ds", opts->socket,
		    opts->timeout);
	case WIRE_READ_TOOLARGE:
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INTERNAL,
		    "reply from carotated too large (the limit is %u MiB)",
		    WIRE_MAX_REPLY / (1024 * 1024));
	default:
		return ctl_conn_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot reach carotated at %s: %s", opts->socket, strerror(errno));
	}
}

/* Connect, send, receive, decode within the reply budget; NULL with err filled. */
Carotate__V1__Response *
ctl_conn_exchange(const struct ctl_opts *opts, const struct ctl_request *r, struct wire_budget *b,
    struct ctl_error *err)
{
	long long deadline = opts->timeout > 0 ? clock_ms() + opts->timeout * 1000LL : -1;
	Carotate__V1__Response *resp = NULL;
	uint8_t *body = NULL;
	size_t len;
	int fd;

	if ((fd = ctl_conn_connect(opts, deadline, err)) == -1)
		return NULL;
	if (ctl_conn_check_peer(fd, opts, r, err) == 0 &&
	    ctl_conn_send(fd, opts, r, deadline, err) == 0 &&
	    ctl_conn_receive(fd, opts, deadline, &body, &len, err) == 0) {
		wire_budget_init(b, WIRE_REPLY_BUDGET);
		if ((resp = wire_response_unpack(body, len, b)) == NULL)
			ctl_conn_error(err, CAROTATE__V1__STATUS__INTERNAL,
			    "undecodable reply from carotated (%zu bytes%s)", len,
			    b->exhausted ? ", over the memory budget" : "");
	}
	free(body);
	close(fd);
	return resp;
}

/* Reports a failure on stderr (and as JSON on stdout with --json); returns its exit code. */
int
ctl_conn_fail(const struct ctl_opts *opts, const struct ctl_error *err)
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
int
ctl_conn_finish(int r)
{
	if (r != 0 || fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, CTL_NAME ": writing output: %s\n",
		    errno != 0 ? strerror(errno) : "failed");
		return EXIT_INTERNAL;
	}
	return EXIT_DONE;
}

/*
 * The result of an OK reply is the one the command asked for, and present. Which member of
 * the result oneof is set is read through protobuf-c's descriptor (its field number is the
 * case), so a new call's result needs no line here.
 */
static int
ctl_conn_has_result(
    const struct ctl_cmd *cmd, const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	const ProtobufCFieldDescriptor *f;

	/* Results are numbered as their calls: a command with several calls expects its own. */
	if ((int)resp->result_case != (cmd->result != CAROTATE__V1__RESPONSE__RESULT__NOT_SET
	                                      ? (int)cmd->result
	                                      : (int)r->req.call_case))
		return 0;
	f = protobuf_c_message_descriptor_get_field(
	    &carotate__v1__response__descriptor, (unsigned)resp->result_case);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return 0;
	return *(const void *const *)((const char *)resp + f->offset) != NULL;
}

/*
 * One call: an OK reply carrying the command's result (freed by the caller with
 * budget->allocator), or NULL with err filled; err->status is UNAVAILABLE when carotated
 * could not be reached or said it could not answer.
 */
Carotate__V1__Response *
ctl_conn_call(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    struct wire_budget *budget, struct ctl_error *err)
{
	Carotate__V1__Response *resp;

	if ((resp = ctl_conn_exchange(opts, r, budget, err)) == NULL)
		return NULL;
	if (resp->status != CAROTATE__V1__STATUS__OK)
		ctl_conn_error(err, resp->status, "%s",
		    resp->message[0] != '\0' ? resp->message : status_message(resp->status));
	else if (!ctl_conn_has_result(cmd, r, resp))
		ctl_conn_error(err, CAROTATE__V1__STATUS__INTERNAL,
		    "reply from carotated to %s carries no %s result", cmd->name, cmd->name);
	else
		return resp;
	carotate__v1__response__free_unpacked(resp, &budget->allocator);
	return NULL;
}

/* Sends the built request, prints the reply or the failure; returns the exit code. */
int
ctl_conn_run(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r)
{
	struct wire_budget budget;
	struct ctl_error err;
	Carotate__V1__Response *resp;
	int code;

	if ((resp = ctl_conn_call(cmd, opts, r, &budget, &err)) == NULL)
		return ctl_conn_fail(opts, &err);
	code = cmd->print(cmd, opts, r, resp);
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	return code;
}
