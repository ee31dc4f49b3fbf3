/*
 * carotatectl wait: the report call repeated until its threshold holds, with progress on
 * stderr (a bar on a terminal) and carotated's restarts ridden out.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "output.h"

#define CTL_WAIT_INTERVAL     2    /* seconds between wait's reports */
#define CTL_WAIT_MAX_INTERVAL 3600 /* seconds */
#define CTL_WAIT_BAR          30   /* columns of wait's progress bar */

struct ctl_wait_args {
	const char *percent, *timeout, *interval;
	int verified;
};

/* wait between two reports: what was shown, and how the last report went. */
struct ctl_wait_state {
	int tty;           /* progress is a bar redrawn on stderr */
	int drawn;         /* the bar is on screen, its line not ended */
	int shown;         /* progress was printed: the values below */
	uint32_t percent;  /* of the last report */
	uint64_t num, den; /* agents acknowledged (or verified), agents active */
	int noted;         /* the note that carotated is unreachable was printed */
	int unreachable;   /* the last call did not reach carotated: err says why */
	struct ctl_error err;
};

#define CTL_WAIT_OPTIONS                                                                           \
	"  --percent P               the threshold, a whole number from 0 to 100 (required)\n"     \
	"  --verified                count the agents that proved they trust the staged CA\n"      \
	"                            through the canary listener, not those that acknowledged\n"   \
	"                            it\n"                                                         \
	"  --max-wait DURATION       give up after DURATION in all: digits with an optional\n"     \
	"                            s, m, h or d suffix (bare: seconds); 0 waits forever\n"       \
	"                            (default: forever). --timeout after the command is an\n"      \
	"                            old name for it (deprecated: a note goes to stderr)\n"        \
	"  --interval DURATION       time between two reports: digits with an optional s, m,\n"    \
	"                            h or d suffix, 1s to 1h (default: 2s)\n"                      \
	"\n"                                                                                       \
	"wait repeats the report call until P % of the active agents acknowledged (or,\n"          \
	"with --verified, verified) the staged CA; with no active agent that is 0 %.\n"            \
	"Progress goes to stderr, as a bar on a terminal and otherwise as one line per\n"          \
	"change; the last line goes to stdout (with --json, only the final report, as\n"           \
	"one JSON object). If carotated cannot be reached, wait says so once and keeps\n"          \
	"trying until --max-wait. --timeout (before the command, \"" CTL_NAME " --timeout\n"       \
	"10s wait ...\") bounds each call, as for every command.\n"                                \
	"\n"                                                                                       \
	"exit status: 0 reached; 3 nothing is staged, or timed out below P %; 2 timed out\n"       \
	"while carotated was unreachable; 1, 4, 5, 6 as for every command.\n"

static int ctl_wait_option(
    const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx);
static int ctl_wait_fill(struct ctl_wait *w, const struct ctl_wait_args *a, struct ctl_error *err);
static int ctl_wait_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err);
static int ctl_wait_call_timeout(int call, long long deadline);
static void ctl_wait_sleep_ms(long long ms);
static void ctl_wait_end_line(struct ctl_wait_state *st);
static void ctl_wait_note(
    struct ctl_wait_state *st, const struct ctl_request *r, long long deadline);
static const char *ctl_wait_label(const struct ctl_wait *w);
static void ctl_wait_progress(
    struct ctl_wait_state *st, uint32_t percent, uint64_t num, uint64_t den, const char *label);
static int ctl_wait_check(const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__ReportReply *rep, struct ctl_wait_state *st);
static int ctl_wait_poll(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, long long deadline, struct ctl_wait_state *st);
static int ctl_wait_timeout(
    const struct ctl_opts *opts, const struct ctl_request *r, struct ctl_wait_state *st);
static int ctl_wait_run(
    const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r);

/* --timeout ('t') after wait is the deprecated name of --max-wait: the command sets own_timeout. */
static const struct option ctl_wait_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "percent", required_argument, NULL, CTL_OPT_PERCENT },
	{ "verified", no_argument, NULL, CTL_OPT_VERIFIED },
	{ "max-wait", required_argument, NULL, CTL_OPT_MAX_WAIT },
	{ "interval", required_argument, NULL, CTL_OPT_INTERVAL },
	{ NULL, 0, NULL, 0 },
};

/* Its request is a report's; run polls it, so there is no print of its own. */
const struct ctl_cmd ctl_wait_cmd = {
	.name = "wait",
	.args = "--percent P [--verified] [--max-wait DURATION] [--interval DURATION]",
	.summary = "wait until P % of active agents acknowledged (or verified) the staged CA",
	.options = CTL_WAIT_OPTIONS,
	.result = CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY,
	.build = ctl_wait_build,
	.run = ctl_wait_run,
	.own_timeout = 1,
};

/* Called for wait's own options, -t and --timeout among them (own_timeout). */
static int
ctl_wait_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_wait_args *a = ctx;

	switch (c) {
	case CTL_OPT_PERCENT:
		return ctl_args_once(cmd, name, &a->percent, arg);
	case CTL_OPT_VERIFIED:
		a->verified = 1;
		return 0;
	case 't':
		fprintf(stderr,
		    CTL_NAME ": wait: --timeout after the command is deprecated: use --max-wait "
		             "(the whole wait); --timeout before the command bounds each call\n");
		return ctl_args_once(cmd, "max-wait", &a->timeout, arg);
	case CTL_OPT_MAX_WAIT:
		return ctl_args_once(cmd, name, &a->timeout, arg);
	case CTL_OPT_INTERVAL:
		return ctl_args_once(cmd, name, &a->interval, arg);
	default:
		return ctl_args_usage_error(cmd, "unknown option --%s", name);
	}
}

static int
ctl_wait_fill(struct ctl_wait *w, const struct ctl_wait_args *a, struct ctl_error *err)
{
	uint64_t v;

	if (ctl_args_count(a->percent, 0, 100, &v) != 0)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--percent %s: expected a whole number from 0 to 100", a->percent);
	w->percent = (uint32_t)v;
	w->verified = a->verified;
	if (a->timeout != NULL &&
	    ctl_args_duration(a->timeout, "smhd", CTL_MAX_SPAN, &w->timeout) != 0)
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--max-wait %s: expected a duration up to %dd (digits with an optional s, m, "
		    "h or d suffix; 0 waits forever)",
		    a->timeout, LIMITS_MAX_DAYS);
	w->interval = CTL_WAIT_INTERVAL;
	if (a->interval != NULL &&
	    (ctl_args_duration(a->interval, "smhd", CTL_WAIT_MAX_INTERVAL, &w->interval) != 0 ||
	        w->interval == 0))
		return ctl_conn_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--interval %s: expected a duration from 1s to 1h", a->interval);
	return 0;
}

/* A report with the daemon's defaults, sent again and again by ctl_wait_run. */
static int
ctl_wait_build(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_wait_args a = { 0 };
	int first;

	carotate__v1__report_request__init(&r->call.report);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_REPORT;
	r->req.report = &r->call.report;
	first = ctl_args_parse(cmd, opts, argc, argv, ctl_wait_longopts, ctl_wait_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_args_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (a.percent == NULL)
		return ctl_args_usage_error(cmd, "--percent is required");
	if (ctl_wait_fill(&r->wait, &a, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

/* Seconds for one of wait's calls: the call timeout, but not past wait's deadline (>= 1 s). */
static int
ctl_wait_call_timeout(int call, long long deadline)
{
	long long left;

	if (deadline < 0)
		return call;
	left = (deadline - clock_ms() + 999) / 1000;
	if (left < 1)
		left = 1;
	if (left > CTL_MAX_TIMEOUT)
		left = CTL_MAX_TIMEOUT;
	return call == 0 || left < call ? (int)left : call;
}

static void
ctl_wait_sleep_ms(long long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 };

	while (ms > 0 && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Ends the progress bar's line, so that what follows starts on a line of its own. */
static void
ctl_wait_end_line(struct ctl_wait_state *st)
{
	if (!st->drawn)
		return;
	fputc('\n', stderr);
	st->drawn = 0;
	st->shown = 0; /* redraw the bar below */
}

/* Once: carotated is unreachable and wait keeps trying (a restart is not the end of a wait). */
static void
ctl_wait_note(struct ctl_wait_state *st, const struct ctl_request *r, long long deadline)
{
	char every[32];

	if (st->noted)
		return;
	st->noted = 1;
	ctl_wait_end_line(st);
	output_span(r->wait.interval, every, sizeof(every));
	fputs(CTL_NAME ": ", stderr);
	output_safe(stderr, st->err.message);
	fprintf(stderr, "; retrying every %s%s\n", every, deadline >= 0 ? " until --max-wait" : "");
}

static const char *
ctl_wait_label(const struct ctl_wait *w)
{
	return w->verified ? "verified" : "acknowledged";
}

/* Records the numbers; a line (or the bar, redrawn) only when they changed. */
static void
ctl_wait_progress(
    struct ctl_wait_state *st, uint32_t percent, uint64_t num, uint64_t den, const char *label)
{
	if (st->shown && st->percent == percent && st->num == num && st->den == den)
		return;
	st->shown = 1;
	st->percent = percent;
	st->num = num;
	st->den = den;
	ctl_wait_bar(stderr, st->tty, percent, num, den, label);
	st->drawn = st->tty;
	fflush(stderr);
}

/*
 * One report: the exit code once wait is over (reached: the last line or the report as
 * JSON on stdout; nothing staged: exit 3), else -1. No active agent is 0 %, never reached.
 */
static int
ctl_wait_check(const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__ReportReply *rep, struct ctl_wait_state *st)
{
	const struct ctl_wait *w = &r->wait;
	uint32_t percent = w->verified ? rep->percent_verified : rep->percent;
	uint64_t num = w->verified ? rep->verified : rep->acknowledged;
	struct ctl_error err;
	int ret;

	if (rep->staged_ca[0] == '\0') {
		ctl_wait_end_line(st);
		ctl_conn_error(&err, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "nothing is staged: no migration to wait for (stage a CA with generate or "
		    "install first)");
		return ctl_conn_fail(opts, &err);
	}
	if (rep->active == 0)
		percent = 0;
	if (opts->json)
		st->percent = percent; /* for the timeout message: no progress with --json */
	else
		ctl_wait_progress(st, percent, num, rep->active, ctl_wait_label(w));
	if (rep->active == 0 || percent < w->percent)
		return -1;
	ctl_wait_end_line(st);
	if (opts->json)
		ret = ctl_report_json(stdout, rep, 0);
	else
		ret = ctl_wait_reached(
		    stdout, percent, num, rep->active, ctl_wait_label(w), w->percent);
	return ctl_conn_finish(ret);
}

/*
 * One report call, bounded by wait's deadline. Unreachable: noted, -1 to try again; any
 * other failure (permission denied, say) ends the wait with its own exit code.
 */
static int
ctl_wait_poll(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    long long deadline, struct ctl_wait_state *st)
{
	struct ctl_opts call = *opts;
	struct wire_budget budget;
	Carotate__V1__Response *resp;
	int code;

	call.timeout = ctl_wait_call_timeout(opts->timeout, deadline);
	if ((resp = ctl_conn_call(cmd, &call, r, &budget, &st->err)) == NULL) {
		if (st->err.status != CAROTATE__V1__STATUS__UNAVAILABLE) {
			ctl_wait_end_line(st);
			return ctl_conn_fail(opts, &st->err);
		}
		st->unreachable = 1;
		ctl_wait_note(st, r, deadline);
		return -1;
	}
	st->unreachable = 0;
	code = ctl_wait_check(opts, r, resp->report_reply, st);
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	return code;
}

/* Exit 2 when the last call did not reach carotated, else 3: below the threshold. */
static int
ctl_wait_timeout(
    const struct ctl_opts *opts, const struct ctl_request *r, struct ctl_wait_state *st)
{
	struct ctl_error err;
	char span[32];

	ctl_wait_end_line(st);
	output_span(r->wait.timeout, span, sizeof(span));
	if (st->unreachable)
		ctl_conn_error(&err, CAROTATE__V1__STATUS__UNAVAILABLE, "timed out after %s: %s",
		    span, st->err.message);
	else
		ctl_conn_error(&err, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "timed out after %s: %" PRIu32 " %% of active agents %s (need %" PRIu32 " %%)",
		    span, st->percent, ctl_wait_label(&r->wait), r->wait.percent);
	return ctl_conn_fail(opts, &err);
}

/* Polls report every interval until the threshold holds, nothing is staged, or time is up. */
static int
ctl_wait_run(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r)
{
	struct ctl_wait_state st = { .tty = !opts->json && isatty(STDERR_FILENO) };
	long long deadline = -1, left;
	int code;

	if (r->wait.timeout > 0)
		deadline = clock_ms() + (long long)r->wait.timeout * 1000;
	for (;;) {
		if ((code = ctl_wait_poll(cmd, opts, r, deadline, &st)) != -1)
			return code;
		left = (long long)r->wait.interval * 1000;
		if (deadline >= 0 && deadline - clock_ms() < left)
			left = deadline - clock_ms();
		if (deadline >= 0 && left <= 0)
			return ctl_wait_timeout(opts, r, &st);
		ctl_wait_sleep_ms(left);
	}
}

/* \r and erase-to-end-of-line redraw the bar over itself; the caller ends it with \n. */
int
ctl_wait_bar(FILE *fp, int tty, uint32_t percent, uint64_t num, uint64_t den, const char *label)
{
	int filled = (int)((percent > 100 ? 100 : percent) * CTL_WAIT_BAR / 100), i;

	if (tty) {
		fputs("\r[", fp);
		for (i = 0; i < CTL_WAIT_BAR; i++)
			fputc(i < filled ? '#' : '.', fp);
		fputs("] ", fp);
	}
	fprintf(fp, "%" PRIu32 " %% (%" PRIu64 "/%" PRIu64 " ", percent, num, den);
	output_safe(fp, label);
	fputs(tty ? ")\033[K" : ")\n", fp);
	return ferror(fp) ? -1 : 0;
}

int
ctl_wait_reached(
    FILE *fp, uint32_t percent, uint64_t num, uint64_t den, const char *label, uint32_t need)
{
	fprintf(fp, "%" PRIu32 " %% of active agents ", percent);
	output_safe(fp, label);
	fprintf(
	    fp, " (%" PRIu64 "/%" PRIu64 "), threshold %" PRIu32 " %% reached\n", num, den, need);
	return ferror(fp) ? -1 : 0;
}
