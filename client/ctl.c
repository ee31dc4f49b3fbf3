/*
 * carotatectl: one request to carotated over its control socket, one reply printed (wait:
 * the same report request, repeated until its threshold holds).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backupid.h"
#include "log.h"
#include "output.h"
#include "status.h"
#include "wire.h"
#include "clock.h"
#include "xmalloc.h"

#define CTL_NAME            "carotatectl"
#define CTL_DEFAULT_SOCKET  "/run/carotate/carotated.sock"
#define CTL_SOCKET_ENV      "CAROTATE_SOCKET"
#define CTL_DEFAULT_TIMEOUT 30               /* seconds */
#define CTL_MAX_TIMEOUT     (INT_MAX / 1000) /* seconds: the wire deadline is int ms */
/*
 * Seconds: the daemon answers a staging call only after the proxy reload (reload_timeout
 * defaults to 30 s), and generate after making the keys too (RSA-4096 can take a while).
 */
#define CTL_STAGE_TIMEOUT    60
#define CTL_GENERATE_TIMEOUT 120
/*
 * Seconds: rotate and restore answer after a reload and a TLS check, and after a failed
 * check after a second reload and check (the roll back): 2 x (30 s + check_timeout).
 */
#define CTL_SWAP_TIMEOUT    300
#define CTL_MAX_AUDIT_LIMIT 1000  /* AuditRequest.limit */
#define CTL_MAX_FILE        65536 /* bytes: the daemon's cap on each PEM of InstallRequest */
#define CTL_MAX_SANS        64
#define CTL_MAX_DAYS        36500 /* a hundred years: beyond that a typo is likelier */
#define CTL_DAY             86400ULL
#define CTL_MAX_SPAN        (CTL_MAX_DAYS * CTL_DAY) /* seconds: --active-within, wait --timeout */
#define CTL_MAX_LIMIT       10000                    /* ReportRequest.limit */
#define CTL_MAX_BACKUPS     1000                     /* ListBackupsRequest.limit */
#define CTL_MAX_OFFSET      ((uint64_t)INT64_MAX)    /* SQL's OFFSET is a signed 64-bit integer */
#define CTL_WAIT_INTERVAL   2                        /* seconds between wait's reports */
#define CTL_MAX_INTERVAL    3600                     /* seconds */
#define CTL_MAX_AGENT_ID    64                       /* README: Stage 2: 1-64 of [A-Za-z0-9._-] */
#define CTL_MAX_REASON      256
#define CTL_AGENT_ID_CHARS  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

struct ctl_opts {
	const char *socket;
	int json;
	int timeout;     /* seconds; 0: wait forever */
	int timeout_set; /* --timeout given: the command's own default no longer applies */
};

/* wait's threshold and clock, checked. */
struct ctl_wait {
	uint32_t percent;  /* 0 to 100 */
	int verified;      /* count verified agents, not acknowledged ones */
	uint64_t timeout;  /* seconds in all; 0: wait forever */
	uint64_t interval; /* seconds between reports */
};

/*
 * A request and the storage of its call. Only install allocates: the files' bytes, which
 * ctl_request_clear wipes and frees.
 */
struct ctl_request {
	Carotate__V1__Request req;
	union {
		Carotate__V1__AuditRequest audit;
		Carotate__V1__StatusRequest status;
		Carotate__V1__GenerateRequest generate;
		Carotate__V1__InstallRequest install;
		Carotate__V1__DiscardRequest discard;
		Carotate__V1__ReportRequest report;
		Carotate__V1__ExcludeRequest exclude;
		Carotate__V1__IncludeRequest include;
		Carotate__V1__ForgetRequest forget;
		Carotate__V1__JoinTokenCreateRequest join_create;
		Carotate__V1__JoinTokenListRequest join_list;
		Carotate__V1__JoinTokenRevokeRequest join_revoke;
		Carotate__V1__ListBackupsRequest list_backups;
		Carotate__V1__RetireRequest retire;
		Carotate__V1__RotateRequest rotate;
		Carotate__V1__RestoreRequest restore;
	} call;
	char *sans[CTL_MAX_SANS]; /* generate: the --san arguments, in argv */
	struct ctl_wait wait;     /* wait: what to wait for; its request is a report */
	/*
	 * The request carries a private key: it goes only to a peer running as root or as us,
	 * or, when the operator named one (--daemon-uid), as exactly that uid.
	 */
	int secret;
	int daemon_uid_set;
	uid_t daemon_uid;
};

/* A failure meant for the operator: a protocol status (which fixes the exit code) and why. */
struct ctl_error {
	int status;
	char message[1024];
};

/* What a build function returns besides 1 (built), 0 (help printed) and -1 (usage error). */
#define CTL_BUILD_REFUSED (-2) /* the input is wrong: err says why, reported like a reply */

struct ctl_cmd {
	const char *name;
	const char *args;    /* synopsis after the name; "" when it takes none */
	const char *summary; /* one line for --help */
	const char *options; /* the command's own options for COMMAND --help; "" when none */
	int timeout;         /* default seconds; 0: CTL_DEFAULT_TIMEOUT */
	Carotate__V1__Response__ResultCase result; /* the result an OK reply carries */
	/* Parses the command's arguments into the request: 1, 0, -1 or CTL_BUILD_REFUSED. */
	int (*build)(const struct ctl_cmd *, struct ctl_opts *, int, char **, struct ctl_request *,
	    struct ctl_error *);
	/* Prints an OK reply whose result case is `result`; returns the exit code. */
	int (*print)(const struct ctl_cmd *, const struct ctl_opts *, const struct ctl_request *,
	    const Carotate__V1__Response *);
	/* Sends the built request and reports; returns the exit code. NULL: once, then print. */
	int (*run)(const struct ctl_cmd *, const struct ctl_opts *, const struct ctl_request *);
	/* -t/--timeout after the name is the command's own option (wait), not the call's. */
	int own_timeout;
};

/* A command's own option: its long name, its getopt code, its argument (NULL: none). */
typedef int (*ctl_option_fn)(const struct ctl_cmd *, const char *, int, const char *, void *);

/* generate's arguments as given, checked once all are parsed. */
struct ctl_generate_args {
	const char *key_type, *ca_days, *server_days, *name;
	char **sans;   /* CTL_MAX_SANS slots */
	size_t n_sans; /* how many were given, possibly more than the slots */
};

struct ctl_install_args {
	const char *ca, *cert, *key, *chain, *daemon_uid;
};

/* backups: one page. */
struct ctl_page_args {
	const char *limit, *offset;
};

struct ctl_report_args {
	const char *active_within;
	struct ctl_page_args page;
	int pending;
};

struct ctl_audit_args {
	struct ctl_page_args page;
	int verify;
};

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

static int ctl_build_status(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_generate(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_install(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_discard(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_report(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_wait(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_exclude(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_rotate(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_restore(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_swap_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_print_swap(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_run_swap(
    const struct ctl_cmd *, const struct ctl_opts *, const struct ctl_request *);
static int ctl_check_backup_id(const char *, struct ctl_error *);
static int ctl_sha256_ok(const char *);
static int ctl_rotate_shown_ca(
    const struct ctl_opts *, const struct ctl_request *, char[65], struct ctl_error *);
static int ctl_build_forget(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_join(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_print_forget(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_print_join(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_build_include(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_backups(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_retire(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_build_audit(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    struct ctl_request *, struct ctl_error *);
static int ctl_print_status(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_print_stage(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_print_report(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_print_agent(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_print_backups(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_print_retire(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_print_audit(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, const Carotate__V1__Response *);
static int ctl_wait(const struct ctl_cmd *, const struct ctl_opts *, const struct ctl_request *);

static void ctl_usage(FILE *);
static void ctl_cmd_usage(const struct ctl_cmd *, FILE *);
static int ctl_usage_error(const struct ctl_cmd *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static uint64_t ctl_unit_seconds(char);
static int ctl_parse_duration(const char *, const char *, uint64_t, uint64_t *);
static int ctl_parse_count(const char *, uint64_t, uint64_t, uint64_t *);
static int ctl_parse_timeout(const char *, int *);
static int ctl_common_option(const struct ctl_cmd *, struct ctl_opts *, int, const char *, char **);
static int ctl_parse_globals(struct ctl_opts *, int, char **);
static int ctl_parse_cmd_options(const struct ctl_cmd *, struct ctl_opts *, int, char **,
    const struct option *, ctl_option_fn, void *);
static int ctl_no_operands(const struct ctl_cmd *, struct ctl_opts *, int, char **);
static int ctl_one_operand(const struct ctl_cmd *, int, char **, int, const char *);
static int ctl_once(const struct ctl_cmd *, const char *, const char **, const char *);
static int ctl_generate_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_check_key_type(const char *, struct ctl_error *);
static int ctl_parse_days(const char *, const char *, uint32_t *, struct ctl_error *);
static int ctl_check_sans(const struct ctl_generate_args *, struct ctl_error *);
static int ctl_fill_generate(
    Carotate__V1__GenerateRequest *, const struct ctl_generate_args *, struct ctl_error *);
static int ctl_install_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_open_file(const char *, const char *, struct ctl_error *);
static int ctl_read_all(int, uint8_t *, size_t, size_t *);
static int ctl_read_file(const char *, const char *, ProtobufCBinaryData *, struct ctl_error *);
static int ctl_parse_uid(const char *, uid_t *);
static int ctl_read_install(
    Carotate__V1__InstallRequest *, const struct ctl_install_args *, struct ctl_error *);
static int ctl_report_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_fill_report(
    Carotate__V1__ReportRequest *, const struct ctl_report_args *, struct ctl_error *);
static int ctl_wait_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_fill_wait(struct ctl_wait *, const struct ctl_wait_args *, struct ctl_error *);
static int ctl_exclude_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_audit_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_check_agent(const char *, struct ctl_error *);
static int ctl_check_reason(const char *, struct ctl_error *);
static int ctl_page_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static int ctl_fill_page(
    const struct ctl_page_args *, uint64_t, uint32_t *, uint64_t *, struct ctl_error *);
static int ctl_retire_option(const struct ctl_cmd *, const char *, int, const char *, void *);
static void ctl_wipe(ProtobufCBinaryData *);
static void ctl_request_clear(struct ctl_request *);
static const Carotate__V1__StageReply *ctl_stage_reply(const Carotate__V1__Response *);
static const Carotate__V1__AgentReply *ctl_agent_reply(const Carotate__V1__Response *);
static const struct ctl_cmd *ctl_find(const char *);
static int ctl_denied(const char *, struct ctl_error *);
static int ctl_set_error(struct ctl_error *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static int ctl_left_ms(long long);
static int ctl_connect(const struct ctl_opts *, long long, struct ctl_error *);
static int ctl_check_peer(
    int, const struct ctl_opts *, const struct ctl_request *, struct ctl_error *);
static int ctl_send(
    int, const struct ctl_opts *, const struct ctl_request *, long long, struct ctl_error *);
static int ctl_receive(
    int, const struct ctl_opts *, long long, uint8_t **, size_t *, struct ctl_error *);
static Carotate__V1__Response *ctl_exchange(
    const struct ctl_opts *, const struct ctl_request *, struct wire_budget *, struct ctl_error *);
static int ctl_fail(const struct ctl_opts *, const struct ctl_error *);
static int ctl_finish_output(int);
static int ctl_has_result(
    const struct ctl_cmd *, const struct ctl_request *, const Carotate__V1__Response *);
static Carotate__V1__Response *ctl_call(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, struct wire_budget *, struct ctl_error *);
static int ctl_exchange_print(
    const struct ctl_cmd *, const struct ctl_opts *, const struct ctl_request *);
static int ctl_wait_call_timeout(int, long long);
static void ctl_sleep_ms(long long);
static void ctl_wait_end_line(struct ctl_wait_state *);
static void ctl_wait_note(struct ctl_wait_state *, const struct ctl_request *, long long);
static const char *ctl_wait_label(const struct ctl_wait *);
static void ctl_wait_progress(struct ctl_wait_state *, uint32_t, uint64_t, uint64_t, const char *);
static int ctl_wait_check(const struct ctl_opts *, const struct ctl_request *,
    const Carotate__V1__ReportReply *, struct ctl_wait_state *);
static int ctl_wait_poll(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, long long, struct ctl_wait_state *);
static int ctl_wait_timeout(
    const struct ctl_opts *, const struct ctl_request *, struct ctl_wait_state *);
static int ctl_run(const struct ctl_cmd *, struct ctl_opts *, int, char **);

/* Key types of GenerateRequest.key_type; the first is the daemon's default. */
static const char *const ctl_key_types[] = { "ec-p256", "ec-p384", "rsa-2048", "rsa-3072",
	"rsa-4096" };
#define CTL_KEY_TYPES_TEXT "ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096"

#define CTL_GENERATE_OPTIONS                                                                       \
	"  --key-type TYPE           key of the new CA and server certificate: ec-p256\n"          \
	"                            (default), ec-p384, rsa-2048, rsa-3072 or rsa-4096\n"         \
	"  --ca-days N               CA validity in days, 1 to 36500 (default: 3650)\n"            \
	"  --server-days N           server certificate validity in days, 1 to 36500\n"            \
	"                            (default: 397)\n"                                             \
	"  --name PREFIX             CA subject \"CN=PREFIX CA YYYY-MM-DD\" (default: carotate)\n" \
	"  --san SAN                 a subject alternative name of the server certificate,\n"      \
	"                            DNS:NAME or IP:ADDRESS; repeat for more (at most 64);\n"      \
	"                            the first DNS name is also its CN (default: the\n"            \
	"                            [proxy] names of carotated.conf)\n"
#define CTL_INSTALL_OPTIONS                                                                        \
	"  --ca FILE                 the CA certificate agents will trust (PEM)\n"                 \
	"  --cert FILE               the server certificate (PEM), leaf first; intermediates\n"    \
	"                            may follow\n"                                                 \
	"  --key FILE                the server certificate's private key (PEM, unencrypted)\n"    \
	"  --chain FILE              intermediate certificates (PEM), optional\n"                  \
	"  --daemon-uid UID          carotated runs as this uid: send the key to a socket\n"       \
	"                            served by exactly UID (default: root or yourself)\n"          \
	"\n"                                                                                       \
	"Each FILE is read with your own permissions and its bytes are sent to carotated;\n"       \
	"it must be a regular file of 1 to 65536 bytes (\"-\" for stdin is not supported).\n"      \
	"The key is sent only after the socket's peer (SO_PEERCRED) proved to run as root,\n"      \
	"as you, or as --daemon-uid; otherwise nothing is sent and the exit status is 2.\n"
#define CTL_REPORT_OPTIONS                                                                         \
	"  --active-within DURATION  count an agent as active if it linked or checked in\n"        \
	"                            within DURATION: digits with an optional s, m, h or d\n"      \
	"                            suffix (bare: seconds), 1s to 36500d (default: the\n"         \
	"                            [agents] active_within of carotated.conf, 7d)\n"              \
	"  --pending                 also list the pending agents (active, not acknowledged),\n"   \
	"                            most recently seen first, one page at a time\n"               \
	"  --limit N                 agents per page, 1 to 10000 (default: 100)\n"                 \
	"  --offset N                pending agents to skip, for the next page (default: 0)\n"     \
	"\n"                                                                                       \
	"Percentages are carotated's, rounded down: 999 of 1000 agents is 99 %, never 100 %.\n"    \
	"With nothing staged, report shows which bundle the active agents hold.\n"
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
#define CTL_EXCLUDE_OPTIONS                                                                        \
	"  --reason TEXT             why, kept with the agent (required): 1 to 256 printable\n"    \
	"                            ASCII characters\n"                                           \
	"\n"                                                                                       \
	"AGENT is an agent id: 1 to 64 of A-Z a-z 0-9 . _ -. An excluded agent stays listed\n"     \
	"but is no longer counted (a decommissioned machine); include undoes it.\n"
#define CTL_FORGET_OPTIONS                                                                         \
	"  --never-confirmed         forget every agent (not excluded) that linked but never\n"    \
	"                            presented a bundle back, instead of one AGENT\n"              \
	"  --older-than DURATION     with --never-confirmed: only those that linked longer\n"      \
	"                            ago than DURATION: digits with an optional s, m, h or d\n"    \
	"                            suffix (bare: seconds), 1s to 3650d (required)\n"             \
	"\n"                                                                                       \
	"forget deletes agents from the ledger. A link for an id that exists is refused\n"         \
	"(HTTP 409) unless it carries the agent's current token; forget a reinstalled host\n"      \
	"first so that it can link again. Audited.\n"                                              \
	"\n"                                                                                       \
	"exit status: 0 done; 5 not an agent id, no such agent, or a bad DURATION; 1 a\n"          \
	"required option missing; 4 not an admin.\n"
#define CTL_JOIN_OPTIONS                                                                           \
	"  --uses N                  create: links the token allows, 1 to 1000000 (default: 1)\n"  \
	"  --ttl DURATION            create: how long it is accepted: digits with an optional\n"   \
	"                            s, m, h or d suffix, 1s to 365d (default: 1d)\n"              \
	"  --description TEXT        create: what it is for, at most 256 printable ASCII\n"        \
	"                            characters\n"                                                 \
	"\n"                                                                                       \
	"An agent may link with a join token as its bearer instead of the linking key. create\n"   \
	"prints the token (cj1.<id>.<secret>) once, with its id and expiry; carotated keeps\n"     \
	"only its SHA-256. list shows id, description, uses left, expiry and creation, never\n"    \
	"a secret. revoke ID deletes it at once. Each new agent linked with it uses one use;\n"    \
	"an expired, revoked or used-up token gets HTTP 401. Admin only, audited (never the\n"     \
	"token).\n"                                                                                \
	"\n"                                                                                       \
	"exit status: 0 done; 5 a bad value or ID, or no such token; 1 a sub-command or\n"         \
	"option missing or misplaced; 4 not an admin.\n"
#define CTL_BACKUPS_OPTIONS                                                                        \
	"  --limit N                 backups per page, 1 to 1000 (default: 100)\n"                 \
	"  --offset N                backups to skip, for the next page (default: 0)\n"            \
	"\n"                                                                                       \
	"Lists, newest first, the certs-YYYYMMDD-HHMMSS backups of the SSL directory (made\n"      \
	"by rotate, by restore, or by hand) and the discarded-YYYYMMDD-HHMMSS staged sets,\n"      \
	"and whether restore would accept each. Retention: carotated keeps the newest\n"           \
	"[backups] keep (default 10) of the backups it made and removes older ones after\n"        \
	"each rotate or restore; never the newest, never one made by hand.\n"
#define CTL_RETIRE_OPTIONS                                                                         \
	"  --dry-run                 list the CAs that would be dropped; change nothing\n"         \
	"\n"                                                                                       \
	"After a rotation the old CA stays in the trust bundle for [bundle] retention\n"           \
	"(default 30 days), so a restore cannot cut agents off. retire drops every CA\n"           \
	"that is neither active nor staged now; agents receive the smaller bundle at their\n"      \
	"next check-in. Only with nothing staged (exit 3 otherwise).\n"

#define CTL_ROTATE_OPTIONS                                                                         \
	"  --force                   rotate even though not every active agent acknowledged\n"     \
	"                            (or verified) the staged CA, or none checked in at all;\n"    \
	"                            needs --reason\n"                                             \
	"  --reason TEXT             why, recorded in the backup's manifest and the audit log:\n"  \
	"                            1 to 256 printable ASCII characters\n"                        \
	"  --dry-run                 check the gate and show what would change; change nothing\n"  \
	"  --expect-ca SHA256        refuse unless the staged CA is this one (its sha256 as\n"     \
	"                            status shows it); --force does not override it. At a\n"       \
	"                            terminal, rotate shows the staged CA and sends it as\n"       \
	"                            the expected one itself\n"                                    \
	"\n"                                                                                       \
	"rotate backs the active set up to <ssl>/certs-YYYYMMDD-HHMMSS/, puts the staged set\n"    \
	"live, reloads the proxy and checks over TLS that it serves the new certificate. If\n"     \
	"it does not within [proxy] check_timeout, the previous set is put back and the proxy\n"   \
	"reloaded again (exit 6). With no active set yet, the staged set is simply activated.\n"   \
	"\n"                                                                                       \
	"rotate refuses too when new/ was replaced outside carotatectl: the gate counted\n"        \
	"another CA. carotated then counts the new CA from zero; agents must acknowledge it.\n"    \
	"\n"                                                                                       \
	"exit status: 0 rotated; 3 refused by the gate (the pending agents are listed),\n"         \
	"nothing is staged, new/ changed, or the staged CA is not --expect-ca; 6 the proxy\n"      \
	"did not serve the new set (rolled back); 1, 2, 4, 5 as for every command.\n"
#define CTL_RESTORE_OPTIONS                                                                        \
	"  --latest                  the newest backup (instead of BACKUP_ID)\n"                   \
	"  --dry-run                 check the backup and show what would change; change\n"        \
	"                            nothing\n"                                                    \
	"  --force                   restore even though agents no longer trust the backup's\n"    \
	"                            CA (retired, or past [bundle] retention); needs --reason\n"   \
	"  --reason TEXT             why, recorded in the audit log: 1 to 256 printable ASCII\n"   \
	"                            characters\n"                                                 \
	"\n"                                                                                       \
	"BACKUP_ID is the exact name of a backup in the SSL directory, certs-YYYYMMDD-HHMMSS\n"    \
	"or certs-YYYYMMDD-HHMMSS-N (see backups). The backup is checked first (manifest sums,\n"  \
	"key matches certificate, certificate chains to its CA); the active set is backed up\n"    \
	"too, so a restore can itself be undone. Then the proxy is reloaded and checked as by\n"   \
	"rotate, with the same roll back.\n"                                                       \
	"\n"                                                                                       \
	"A backup whose CA is not in the trust bundle agents hold now is refused (exit 3,\n"       \
	"a dry run says so too) unless --force --reason is given.\n"                               \
	"\n"                                                                                       \
	"exit status: 0 restored; 3 agents no longer trust its CA; 4 not an admin; 5 not a\n"      \
	"backup id, or the backup is not sound; 6 the proxy did not serve the restored set\n"      \
	"(rolled back); 1, 2 as for every command.\n"

#define CTL_AUDIT_OPTIONS                                                                          \
	"  --limit N                 records per page, 1 to 1000 (default: 50)\n"                  \
	"  --offset N                newest records to skip, for the next page (default: 0)\n"     \
	"  --verify                  also check the whole hash chain, from the first record\n"     \
	"\n"                                                                                       \
	"Every state-changing call (generate, install, discard, exclude, include, and the\n"       \
	"calls of stage 3) and every refusal of one is recorded with the caller's uid, user\n"     \
	"name and pid, the arguments, the result and the certificate sets before and after;\n"     \
	"so are changes carotated finds made by hand (\"adopt\"). Each record holds the\n"         \
	"SHA-256 of the one before it.\n"                                                          \
	"\n"                                                                                       \
	"exit status: 0 shown (and, with --verify, the chain is intact); 6 the chain is\n"         \
	"broken: a record was changed, removed or inserted (the record is named on stderr);\n"     \
	"1, 2, 4, 5 as for every command.\n"

/* Every command, in the order --help lists them. Later commands slot in here. */
static const struct ctl_cmd ctl_table[] = {
	{ "status", "", "show the phase, the active and staged certificate sets, the trust bundle",
	    "", 0, CAROTATE__V1__RESPONSE__RESULT_STATUS_REPLY, ctl_build_status, ctl_print_status,
	    NULL, 0 },
	{ "generate",
	    "[--key-type TYPE] [--ca-days N] [--server-days N] [--name PREFIX] [--san SAN]...",
	    "stage a new self-signed CA and a server certificate it signs", CTL_GENERATE_OPTIONS,
	    CTL_GENERATE_TIMEOUT, CAROTATE__V1__RESPONSE__RESULT_GENERATE_REPLY, ctl_build_generate,
	    ctl_print_stage, NULL, 0 },
	{ "install", "--ca FILE --cert FILE --key FILE [--chain FILE] [--daemon-uid UID]",
	    "stage a CA, server certificate and key from your own PKI", CTL_INSTALL_OPTIONS,
	    CTL_STAGE_TIMEOUT, CAROTATE__V1__RESPONSE__RESULT_INSTALL_REPLY, ctl_build_install,
	    ctl_print_stage, NULL, 0 },
	{ "report", "[--active-within DURATION] [--pending] [--limit N] [--offset N]",
	    "how many active agents acknowledged and verified the staged CA", CTL_REPORT_OPTIONS, 0,
	    CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY, ctl_build_report, ctl_print_report, NULL,
	    0 },
	{ "wait", "--percent P [--verified] [--max-wait DURATION] [--interval DURATION]",
	    "wait until P % of active agents acknowledged (or verified) the staged CA",
	    CTL_WAIT_OPTIONS, 0, CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY, ctl_build_wait,
	    ctl_print_report, ctl_wait, 1 },
	{ "rotate", "[--force --reason TEXT] [--dry-run] [--expect-ca SHA256]",
	    "put the staged set live once every active agent acknowledged its CA",
	    CTL_ROTATE_OPTIONS, CTL_SWAP_TIMEOUT, CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY,
	    ctl_build_rotate, ctl_print_swap, ctl_run_swap, 0 },
	{ "restore", "BACKUP_ID | --latest [--dry-run] [--force --reason TEXT]",
	    "put a backup back as the active set (the current one is backed up first)",
	    CTL_RESTORE_OPTIONS, CTL_SWAP_TIMEOUT, CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY,
	    ctl_build_restore, ctl_print_swap, ctl_run_swap, 0 },
	{ "discard", "", "remove the staged set (kept as a discarded-YYYYMMDD-HHMMSS backup)", "",
	    CTL_STAGE_TIMEOUT, CAROTATE__V1__RESPONSE__RESULT_DISCARD_REPLY, ctl_build_discard,
	    ctl_print_stage, NULL, 0 },
	{ "exclude", "AGENT --reason TEXT",
	    "stop counting an agent (a decommissioned machine); it stays listed",
	    CTL_EXCLUDE_OPTIONS, 0, CAROTATE__V1__RESPONSE__RESULT_EXCLUDE_REPLY, ctl_build_exclude,
	    ctl_print_agent, NULL, 0 },
	{ "include", "AGENT", "count an excluded agent again", "", 0,
	    CAROTATE__V1__RESPONSE__RESULT_INCLUDE_REPLY, ctl_build_include, ctl_print_agent, NULL,
	    0 },
	{ "forget", "AGENT | --never-confirmed --older-than DURATION",
	    "delete agents from the ledger (a reinstalled host may then link again)",
	    CTL_FORGET_OPTIONS, 0, CAROTATE__V1__RESPONSE__RESULT_FORGET_REPLY, ctl_build_forget,
	    ctl_print_forget, NULL, 0 },
	/* Its result is that of the sub-command's call (RESULT__NOT_SET: the request's own). */
	{ "join-token",
	    "create [--uses N] [--ttl DURATION] [--description TEXT] | list | revoke ID",
	    "create, list or revoke the join tokens agents may link with", CTL_JOIN_OPTIONS, 0,
	    CAROTATE__V1__RESPONSE__RESULT__NOT_SET, ctl_build_join, ctl_print_join, NULL, 0 },
	{ "backups", "[--limit N] [--offset N]",
	    "list the backups (newest first) and whether each can be restored", CTL_BACKUPS_OPTIONS,
	    0, CAROTATE__V1__RESPONSE__RESULT_LIST_BACKUPS_REPLY, ctl_build_backups,
	    ctl_print_backups, NULL, 0 },
	{ "retire", "[--dry-run]",
	    "drop CAs that are neither active nor staged from the trust bundle now",
	    CTL_RETIRE_OPTIONS, 0, CAROTATE__V1__RESPONSE__RESULT_RETIRE_REPLY, ctl_build_retire,
	    ctl_print_retire, NULL, 0 },
	{ "audit", "[--limit N] [--offset N] [--verify]",
	    "show who changed what (the audit log), newest first; --verify checks its hash chain",
	    CTL_AUDIT_OPTIONS, 0, CAROTATE__V1__RESPONSE__RESULT_AUDIT_REPLY, ctl_build_audit,
	    ctl_print_audit, NULL, 0 },
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

/* getopt codes of the commands' own options: long only, above every char. */
enum {
	CTL_OPT_KEY_TYPE = 256,
	CTL_OPT_CA_DAYS,
	CTL_OPT_SERVER_DAYS,
	CTL_OPT_NAME,
	CTL_OPT_SAN,
	CTL_OPT_CA,
	CTL_OPT_CERT,
	CTL_OPT_KEY,
	CTL_OPT_CHAIN,
	CTL_OPT_ACTIVE_WITHIN,
	CTL_OPT_PENDING,
	CTL_OPT_LIMIT,
	CTL_OPT_OFFSET,
	CTL_OPT_PERCENT,
	CTL_OPT_VERIFIED,
	CTL_OPT_INTERVAL,
	CTL_OPT_MAX_WAIT,
	CTL_OPT_REASON,
	CTL_OPT_FORCE,
	CTL_OPT_DRY_RUN,
	CTL_OPT_LATEST,
	CTL_OPT_EXPECT_CA,
	CTL_OPT_VERIFY,
	CTL_OPT_NEVER_CONFIRMED,
	CTL_OPT_OLDER_THAN,
	CTL_OPT_USES,
	CTL_OPT_TTL,
	CTL_OPT_DESCRIPTION,
	CTL_OPT_DAEMON_UID,
};

static const struct option ctl_generate_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "key-type", required_argument, NULL, CTL_OPT_KEY_TYPE },
	{ "ca-days", required_argument, NULL, CTL_OPT_CA_DAYS },
	{ "server-days", required_argument, NULL, CTL_OPT_SERVER_DAYS },
	{ "name", required_argument, NULL, CTL_OPT_NAME },
	{ "san", required_argument, NULL, CTL_OPT_SAN },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_install_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "ca", required_argument, NULL, CTL_OPT_CA },
	{ "cert", required_argument, NULL, CTL_OPT_CERT },
	{ "key", required_argument, NULL, CTL_OPT_KEY },
	{ "chain", required_argument, NULL, CTL_OPT_CHAIN },
	{ "daemon-uid", required_argument, NULL, CTL_OPT_DAEMON_UID },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_report_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "active-within", required_argument, NULL, CTL_OPT_ACTIVE_WITHIN },
	{ "pending", no_argument, NULL, CTL_OPT_PENDING },
	{ "limit", required_argument, NULL, CTL_OPT_LIMIT },
	{ "offset", required_argument, NULL, CTL_OPT_OFFSET },
	{ NULL, 0, NULL, 0 },
};

/* --timeout ('t') after wait is the deprecated name of --max-wait: the command sets own_timeout. */
static const struct option ctl_wait_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "percent", required_argument, NULL, CTL_OPT_PERCENT },
	{ "verified", no_argument, NULL, CTL_OPT_VERIFIED },
	{ "max-wait", required_argument, NULL, CTL_OPT_MAX_WAIT },
	{ "interval", required_argument, NULL, CTL_OPT_INTERVAL },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_backups_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "limit", required_argument, NULL, CTL_OPT_LIMIT },
	{ "offset", required_argument, NULL, CTL_OPT_OFFSET },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_retire_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "dry-run", no_argument, NULL, CTL_OPT_DRY_RUN },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_rotate_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "force", no_argument, NULL, CTL_OPT_FORCE },
	{ "reason", required_argument, NULL, CTL_OPT_REASON },
	{ "dry-run", no_argument, NULL, CTL_OPT_DRY_RUN },
	{ "expect-ca", required_argument, NULL, CTL_OPT_EXPECT_CA },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_restore_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "latest", no_argument, NULL, CTL_OPT_LATEST },
	{ "dry-run", no_argument, NULL, CTL_OPT_DRY_RUN },
	{ "force", no_argument, NULL, CTL_OPT_FORCE },
	{ "reason", required_argument, NULL, CTL_OPT_REASON },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_exclude_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "reason", required_argument, NULL, CTL_OPT_REASON },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_forget_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "never-confirmed", no_argument, NULL, CTL_OPT_NEVER_CONFIRMED },
	{ "older-than", required_argument, NULL, CTL_OPT_OLDER_THAN },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_join_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "uses", required_argument, NULL, CTL_OPT_USES },
	{ "ttl", required_argument, NULL, CTL_OPT_TTL },
	{ "description", required_argument, NULL, CTL_OPT_DESCRIPTION },
	{ NULL, 0, NULL, 0 },
};

static const struct option ctl_audit_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "limit", required_argument, NULL, CTL_OPT_LIMIT },
	{ "offset", required_argument, NULL, CTL_OPT_OFFSET },
	{ "verify", no_argument, NULL, CTL_OPT_VERIFY },
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
	    "  -t, --timeout DURATION    give up on each call after DURATION: digits with an\n"
	    "                            optional s, m, h or d suffix (bare: seconds), up\n"
	    "                            to 24d; 0 waits forever (default: %ds; generate %ds,\n"
	    "                            install and discard %ds, rotate and restore %ds;\n"
	    "                            wait: each of its calls, while wait --max-wait\n"
	    "                            bounds the whole wait)\n"
	    "  -h, --help                print this help\n"
	    "  -V, --version             print the version\n"
	    "\n"
	    "commands:\n",
	    CTL_DEFAULT_TIMEOUT, CTL_GENERATE_TIMEOUT, CTL_STAGE_TIMEOUT, CTL_SWAP_TIMEOUT);
	for (i = 0; i < sizeof(ctl_table) / sizeof(ctl_table[0]); i++)
		fprintf(fp, "  %-12s %s\n", ctl_table[i].name, ctl_table[i].summary);
	fprintf(fp,
	    "\nexit status: 0 done, 1 usage, 2 daemon unreachable, 3 precondition not met,\n"
	    "4 permission denied, 5 invalid input, 6 internal error.\n");
}

/* The synopsis, the command's own options, then the common ones with its default timeout. */
static void
ctl_cmd_usage(const struct ctl_cmd *cmd, FILE *fp)
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

/*
 * A socket we may not open: name its group, read from the file itself (socket_group is
 * whatever carotated.conf says), and how to join it.
 */
static int
ctl_denied(const char *path, struct ctl_error *err)
{
	struct group *gr;
	struct stat st;

	if (stat(path, &st) == -1)
		return ctl_set_error(err, CAROTATE__V1__STATUS__PERMISSION_DENIED,
		    "permission denied on %s: %s (may you enter its directory?)", path,
		    strerror(errno));
	if ((gr = getgrgid(st.st_gid)) == NULL)
		return ctl_set_error(err, CAROTATE__V1__STATUS__PERMISSION_DENIED,
		    "permission denied on %s: its group is gid %ld, which has no name here", path,
		    (long)st.st_gid);
	return ctl_set_error(err, CAROTATE__V1__STATUS__PERMISSION_DENIED,
	    "permission denied on %s: only members of its group %s (readers) or of "
	    "carotated's admin_group may connect; an administrator adds you with "
	    "`usermod -aG %s USER` (or the admin_group), then log in again",
	    path, gr->gr_name, gr->gr_name);
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

static uint64_t
ctl_unit_seconds(char unit)
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
static int
ctl_parse_duration(const char *s, const char *units, uint64_t max, uint64_t *seconds)
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
		scale = ctl_unit_seconds(*end);
	}
	if (v > max / scale)
		return -1;
	*seconds = v * scale;
	return 0;
}

/* N: plain decimal digits, from min to max; no sign, blank or unit. */
static int
ctl_parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *n)
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
ctl_parse_timeout(const char *s, int *seconds)
{
	uint64_t v;

	if (ctl_parse_duration(s, "smhd", CTL_MAX_TIMEOUT, &v) != 0)
		return -1;
	*seconds = (int)v;
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
			return ctl_usage_error(cmd,
			    "invalid timeout: %s (expected digits with an optional s, m, h or d "
			    "suffix, up to %dd)",
			    arg, CTL_MAX_TIMEOUT / 86400);
		opts->timeout_set = 1;
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
 * Options after COMMAND (argv[0] is its name): the common ones here, the command's own (those
 * of longopts beyond the common) through fn. Returns the index of the first operand, 0 after
 * --help, -1 after a usage error.
 */
static int
ctl_parse_cmd_options(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
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
			r = ctl_common_option(cmd, opts, c, optarg, argv);
		if (r != 0)
			return r > 0 ? 0 : -1;
	}
	return optind;
}

/* Commands that take only the common options. */
static int
ctl_no_operands(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv)
{
	int first;

	first = ctl_parse_cmd_options(cmd, opts, argc, argv, ctl_cmd_longopts, NULL, NULL);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	return 1;
}

/* The one operand (what) at argv[first]; its index, or -1 after a usage error. */
static int
ctl_one_operand(const struct ctl_cmd *cmd, int argc, char **argv, int first, const char *what)
{
	if (first >= argc)
		return ctl_usage_error(cmd, "%s is required", what);
	if (first + 1 < argc)
		return ctl_usage_error(cmd, "takes one %s (got also %s)", what, argv[first + 1]);
	return first;
}

/* An option that may be given once: a second one is more likely a mistake than an override. */
static int
ctl_once(const struct ctl_cmd *cmd, const char *name, const char **slot, const char *arg)
{
	if (*slot != NULL)
		return ctl_usage_error(cmd, "--%s given more than once", name);
	*slot = arg;
	return 0;
}

static int
ctl_build_status(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	carotate__v1__status_request__init(&r->call.status);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_STATUS;
	r->req.status = &r->call.status;
	return ctl_no_operands(cmd, opts, argc, argv);
}

static int
ctl_build_discard(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	carotate__v1__discard_request__init(&r->call.discard);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_DISCARD;
	r->req.discard = &r->call.discard;
	return ctl_no_operands(cmd, opts, argc, argv);
}

/* --san may repeat: the first CTL_MAX_SANS are kept, the rest only counted (and refused). */
static int
ctl_generate_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_generate_args *a = ctx;

	switch (c) {
	case CTL_OPT_KEY_TYPE:
		return ctl_once(cmd, name, &a->key_type, arg);
	case CTL_OPT_CA_DAYS:
		return ctl_once(cmd, name, &a->ca_days, arg);
	case CTL_OPT_SERVER_DAYS:
		return ctl_once(cmd, name, &a->server_days, arg);
	case CTL_OPT_NAME:
		return ctl_once(cmd, name, &a->name, arg);
	case CTL_OPT_SAN:
		if (a->n_sans < CTL_MAX_SANS)
			a->sans[a->n_sans] = (char *)arg;
		a->n_sans++;
		return 0;
	default:
		return ctl_usage_error(cmd, "unknown option --%s", name);
	}
}

static int
ctl_check_key_type(const char *s, struct ctl_error *err)
{
	size_t i;

	for (i = 0; i < sizeof(ctl_key_types) / sizeof(ctl_key_types[0]); i++)
		if (strcmp(s, ctl_key_types[i]) == 0)
			return 0;
	return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
	    "--key-type %s: unknown key type (expected " CTL_KEY_TYPES_TEXT ")", s);
}

/* Days: plain decimal digits, 1 to CTL_MAX_DAYS; no sign, blank or unit. */
static int
ctl_parse_days(const char *opt, const char *s, uint32_t *days, struct ctl_error *err)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = *s >= '0' && *s <= '9' ? strtoul(s, &end, 10) : 0;
	if (v == 0 || errno != 0 || *end != '\0' || v > CTL_MAX_DAYS)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--%s %s: expected a whole number of days from 1 to %d", opt, s, CTL_MAX_DAYS);
	*days = (uint32_t)v;
	return 0;
}

/* Syntax only: the daemon checks that the name or address itself is valid. */
static int
ctl_check_sans(const struct ctl_generate_args *a, struct ctl_error *err)
{
	const char *s;
	size_t i;

	if (a->n_sans > CTL_MAX_SANS)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--san: %zu given, at most %d allowed", a->n_sans, CTL_MAX_SANS);
	for (i = 0; i < a->n_sans; i++) {
		s = a->sans[i];
		if ((strncmp(s, "DNS:", 4) == 0 && s[4] != '\0') ||
		    (strncmp(s, "IP:", 3) == 0 && s[3] != '\0'))
			continue;
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--san %s: expected DNS:NAME or IP:ADDRESS", s);
	}
	return 0;
}

/* Unset fields stay zero or empty: the daemon's defaults apply. */
static int
ctl_fill_generate(
    Carotate__V1__GenerateRequest *g, const struct ctl_generate_args *a, struct ctl_error *err)
{
	if (a->key_type != NULL && ctl_check_key_type(a->key_type, err) == -1)
		return -1;
	if (a->ca_days != NULL && ctl_parse_days("ca-days", a->ca_days, &g->ca_days, err) == -1)
		return -1;
	if (a->server_days != NULL &&
	    ctl_parse_days("server-days", a->server_days, &g->server_days, err) == -1)
		return -1;
	if (a->name != NULL && a->name[0] == '\0')
		return ctl_set_error(
		    err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--name: empty prefix");
	if (ctl_check_sans(a, err) == -1)
		return -1;
	if (a->key_type != NULL)
		g->key_type = (char *)a->key_type;
	if (a->name != NULL)
		g->name = (char *)a->name;
	g->n_sans = a->n_sans;
	g->sans = a->n_sans > 0 ? a->sans : NULL;
	return 0;
}

/* Usage errors (exit 1) come before wrong values (exit 5), whatever their order on the line. */
static int
ctl_build_generate(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_generate_args a = { .sans = r->sans };
	int first;

	carotate__v1__generate_request__init(&r->call.generate);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_GENERATE;
	r->req.generate = &r->call.generate;
	first = ctl_parse_cmd_options(
	    cmd, opts, argc, argv, ctl_generate_longopts, ctl_generate_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (ctl_fill_generate(&r->call.generate, &a, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

static int
ctl_install_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_install_args *a = ctx;

	switch (c) {
	case CTL_OPT_CA:
		return ctl_once(cmd, name, &a->ca, arg);
	case CTL_OPT_CERT:
		return ctl_once(cmd, name, &a->cert, arg);
	case CTL_OPT_KEY:
		return ctl_once(cmd, name, &a->key, arg);
	case CTL_OPT_CHAIN:
		return ctl_once(cmd, name, &a->chain, arg);
	case CTL_OPT_DAEMON_UID:
		return ctl_once(cmd, name, &a->daemon_uid, arg);
	default:
		return ctl_usage_error(cmd, "unknown option --%s", name);
	}
}

/*
 * Opens a file the operator names, with the operator's permissions; a regular file only.
 * O_NONBLOCK so that a FIFO cannot block the open before fstat refuses it. Returns the fd.
 */
static int
ctl_open_file(const char *opt, const char *path, struct ctl_error *err)
{
	struct stat st;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--%s %s: %s",
		    opt, path, strerror(errno));
	if (fstat(fd, &st) == -1) {
		e = errno;
		close(fd);
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--%s %s: %s",
		    opt, path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--%s %s: not a regular file", opt, path);
	}
	if (st.st_size > CTL_MAX_FILE) {
		close(fd);
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--%s %s: file too large (%lld bytes, limit %d)", opt, path,
		    (long long)st.st_size, CTL_MAX_FILE);
	}
	return fd;
}

/* Reads until EOF or until buf is full; short reads and EINTR are not the end. */
static int
ctl_read_all(int fd, uint8_t *buf, size_t size, size_t *len)
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
 * A file's bytes into out: the buffer holds CTL_MAX_FILE + 1 so that a file that grew since
 * fstat is caught, and it is never reallocated, so no stray copy of a key is left behind.
 */
static int
ctl_read_file(const char *opt, const char *path, ProtobufCBinaryData *out, struct ctl_error *err)
{
	uint8_t *buf;
	size_t len;
	int fd, r, e;

	if ((fd = ctl_open_file(opt, path, err)) == -1)
		return -1;
	buf = xmalloc(CTL_MAX_FILE + 1);
	r = ctl_read_all(fd, buf, CTL_MAX_FILE + 1, &len);
	e = errno;
	close(fd);
	if (r == -1 || len == 0 || len > CTL_MAX_FILE)
		freezero_x(buf, CTL_MAX_FILE + 1);
	if (r == -1)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--%s %s: %s",
		    opt, path, strerror(e));
	if (len > CTL_MAX_FILE)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--%s %s: file too large (over %d bytes, limit %d)", opt, path, CTL_MAX_FILE,
		    CTL_MAX_FILE);
	if (len == 0)
		return ctl_set_error(
		    err, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "--%s %s: empty", opt, path);
	out->data = buf;
	out->len = len;
	return 0;
}

static int
ctl_read_install(
    Carotate__V1__InstallRequest *in, const struct ctl_install_args *a, struct ctl_error *err)
{
	if (ctl_read_file("ca", a->ca, &in->ca, err) == -1 ||
	    ctl_read_file("cert", a->cert, &in->cert, err) == -1 ||
	    ctl_read_file("key", a->key, &in->key, err) == -1)
		return -1;
	if (a->chain != NULL && ctl_read_file("chain", a->chain, &in->chain, err) == -1)
		return -1;
	return 0;
}

/* Usage errors (exit 1) come before unreadable files (exit 5). */
static int
ctl_build_install(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_install_args a = { 0 };
	int first;

	carotate__v1__install_request__init(&r->call.install);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_INSTALL;
	r->req.install = &r->call.install;
	first = ctl_parse_cmd_options(
	    cmd, opts, argc, argv, ctl_install_longopts, ctl_install_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (a.ca == NULL || a.cert == NULL || a.key == NULL)
		return ctl_usage_error(cmd, "--ca, --cert and --key are required (missing --%s)",
		    a.ca == NULL     ? "ca"
		    : a.cert == NULL ? "cert"
		                     : "key");
	r->secret = 1;
	if (a.daemon_uid != NULL && ctl_parse_uid(a.daemon_uid, &r->daemon_uid) == -1)
		return ctl_usage_error(
		    cmd, "invalid --daemon-uid: %s (a numeric uid)", a.daemon_uid);
	r->daemon_uid_set = a.daemon_uid != NULL;
	if (ctl_read_install(&r->call.install, &a, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

/* A numeric uid, 0 to 2^32 - 2 ((uid_t)-1 means "no uid" to the kernel). */
static int
ctl_parse_uid(const char *s, uid_t *uid)
{
	uint64_t v;

	if (ctl_parse_count(s, 0, UINT32_MAX - 1, &v) != 0)
		return -1;
	*uid = (uid_t)v;
	return 0;
}

static int
ctl_report_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_report_args *a = ctx;

	switch (c) {
	case CTL_OPT_ACTIVE_WITHIN:
		return ctl_once(cmd, name, &a->active_within, arg);
	case CTL_OPT_PENDING:
		a->pending = 1;
		return 0;
	default:
		return ctl_page_option(cmd, name, c, arg, &a->page);
	}
}

/* Unset fields stay zero: the configured window, a page of 100, from the first agent. */
static int
ctl_fill_report(
    Carotate__V1__ReportRequest *rr, const struct ctl_report_args *a, struct ctl_error *err)
{
	uint64_t v;

	if (a->active_within != NULL &&
	    (ctl_parse_duration(a->active_within, "smhd", CTL_MAX_SPAN, &v) != 0 || v == 0))
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--active-within %s: expected a duration from 1s to %dd (digits with an "
		    "optional s, m, h or d suffix)",
		    a->active_within, CTL_MAX_DAYS);
	if (a->active_within != NULL)
		rr->active_within = v;
	if (ctl_fill_page(&a->page, CTL_MAX_LIMIT, &rr->limit, &rr->offset, err) == -1)
		return -1;
	rr->pending = a->pending;
	return 0;
}

/* Usage errors (exit 1) come before wrong values (exit 5). */
static int
ctl_build_report(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_report_args a = { 0 };
	int first;

	carotate__v1__report_request__init(&r->call.report);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_REPORT;
	r->req.report = &r->call.report;
	first = ctl_parse_cmd_options(
	    cmd, opts, argc, argv, ctl_report_longopts, ctl_report_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (ctl_fill_report(&r->call.report, &a, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

/* Called for wait's own options, -t and --timeout among them (own_timeout). */
static int
ctl_wait_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_wait_args *a = ctx;

	switch (c) {
	case CTL_OPT_PERCENT:
		return ctl_once(cmd, name, &a->percent, arg);
	case CTL_OPT_VERIFIED:
		a->verified = 1;
		return 0;
	case 't':
		fprintf(stderr,
		    CTL_NAME ": wait: --timeout after the command is deprecated: use --max-wait "
		             "(the whole wait); --timeout before the command bounds each call\n");
		return ctl_once(cmd, "max-wait", &a->timeout, arg);
	case CTL_OPT_MAX_WAIT:
		return ctl_once(cmd, name, &a->timeout, arg);
	case CTL_OPT_INTERVAL:
		return ctl_once(cmd, name, &a->interval, arg);
	default:
		return ctl_usage_error(cmd, "unknown option --%s", name);
	}
}

static int
ctl_fill_wait(struct ctl_wait *w, const struct ctl_wait_args *a, struct ctl_error *err)
{
	uint64_t v;

	if (ctl_parse_count(a->percent, 0, 100, &v) != 0)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--percent %s: expected a whole number from 0 to 100", a->percent);
	w->percent = (uint32_t)v;
	w->verified = a->verified;
	if (a->timeout != NULL &&
	    ctl_parse_duration(a->timeout, "smhd", CTL_MAX_SPAN, &w->timeout) != 0)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--max-wait %s: expected a duration up to %dd (digits with an optional s, m, "
		    "h or d suffix; 0 waits forever)",
		    a->timeout, CTL_MAX_DAYS);
	w->interval = CTL_WAIT_INTERVAL;
	if (a->interval != NULL &&
	    (ctl_parse_duration(a->interval, "smhd", CTL_MAX_INTERVAL, &w->interval) != 0 ||
	        w->interval == 0))
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--interval %s: expected a duration from 1s to 1h", a->interval);
	return 0;
}

/* A report with the daemon's defaults, sent again and again by ctl_wait. */
static int
ctl_build_wait(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_wait_args a = { 0 };
	int first;

	carotate__v1__report_request__init(&r->call.report);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_REPORT;
	r->req.report = &r->call.report;
	first =
	    ctl_parse_cmd_options(cmd, opts, argc, argv, ctl_wait_longopts, ctl_wait_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (a.percent == NULL)
		return ctl_usage_error(cmd, "--percent is required");
	if (ctl_fill_wait(&r->wait, &a, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

static int
ctl_exclude_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	if (c == CTL_OPT_REASON)
		return ctl_once(cmd, name, (const char **)ctx, arg);
	return ctl_usage_error(cmd, "unknown option --%s", name);
}

/* The daemon's allow-list (README: Stage 2), checked here so that a typo fails before the call. */
static int
ctl_check_agent(const char *id, struct ctl_error *err)
{
	size_t n = strlen(id);

	if (n > CTL_MAX_AGENT_ID)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "invalid agent id: %zu characters long, at most %d", n, CTL_MAX_AGENT_ID);
	if (n >= 1 && strspn(id, CTL_AGENT_ID_CHARS) == n)
		return 0;
	return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
	    "invalid agent id \"%s\": expected 1 to %d of A-Z a-z 0-9 . _ -", id, CTL_MAX_AGENT_ID);
}

/* Printable ASCII only: the reason is shown on operators' terminals and logs. */
static int
ctl_check_reason(const char *reason, struct ctl_error *err)
{
	const unsigned char *p;
	size_t n = strlen(reason);

	if (n == 0 || n > CTL_MAX_REASON)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--reason: expected 1 to %d characters (got %zu)", CTL_MAX_REASON, n);
	for (p = (const unsigned char *)reason; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "--reason: byte 0x%02x at offset %zu is not printable ASCII", *p,
			    (size_t)(p - (const unsigned char *)reason));
	return 0;
}

/* Usage errors (a missing AGENT or --reason: exit 1) come before wrong values (exit 5). */
static int
ctl_build_exclude(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	const char *reason = NULL;
	int first;

	carotate__v1__exclude_request__init(&r->call.exclude);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_EXCLUDE;
	r->req.exclude = &r->call.exclude;
	first = ctl_parse_cmd_options(
	    cmd, opts, argc, argv, ctl_exclude_longopts, ctl_exclude_option, &reason);
	if (first <= 0)
		return first;
	if ((first = ctl_one_operand(cmd, argc, argv, first, "AGENT")) == -1)
		return -1;
	if (reason == NULL)
		return ctl_usage_error(cmd, "--reason is required");
	if (ctl_check_agent(argv[first], err) == -1 || ctl_check_reason(reason, err) == -1)
		return CTL_BUILD_REFUSED;
	r->call.exclude.agent = argv[first];
	r->call.exclude.reason = (char *)reason;
	return 1;
}

/* rotate's and restore's own options; ctx is the request's call. */
struct ctl_swap_args {
	const char *reason;
	const char *expect_ca;
	int force, dry_run, latest;
};

static int
ctl_swap_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_swap_args *a = ctx;

	switch (c) {
	case CTL_OPT_REASON:
		return ctl_once(cmd, name, &a->reason, arg);
	case CTL_OPT_FORCE:
		a->force = 1;
		return 0;
	case CTL_OPT_DRY_RUN:
		a->dry_run = 1;
		return 0;
	case CTL_OPT_LATEST:
		a->latest = 1;
		return 0;
	case CTL_OPT_EXPECT_CA:
		return ctl_once(cmd, name, &a->expect_ca, arg);
	}
	return ctl_usage_error(cmd, "unknown option --%s", name);
}

static int
ctl_build_rotate(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_swap_args a = { 0 };
	int first;

	carotate__v1__rotate_request__init(&r->call.rotate);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	r->req.rotate = &r->call.rotate;
	first =
	    ctl_parse_cmd_options(cmd, opts, argc, argv, ctl_rotate_longopts, ctl_swap_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (a.force && a.reason == NULL)
		return ctl_usage_error(
		    cmd, "--force needs --reason: say why the gate is overridden");
	if (a.reason != NULL && ctl_check_reason(a.reason, err) == -1)
		return CTL_BUILD_REFUSED;
	if (a.expect_ca != NULL && !ctl_sha256_ok(a.expect_ca)) {
		ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--expect-ca %s: expected the CA's SHA-256, 64 lower-case hex digits "
		    "(see " CTL_NAME " status)",
		    a.expect_ca);
		return CTL_BUILD_REFUSED;
	}
	r->call.rotate.expect_ca = (char *)(a.expect_ca != NULL ? a.expect_ca : "");
	r->call.rotate.force = a.force;
	r->call.rotate.dry_run = a.dry_run;
	r->call.rotate.reason = (char *)(a.reason != NULL ? a.reason : "");
	return 1;
}

/* A CA fingerprint as status shows it: 64 lower-case hex digits. */
static int
ctl_sha256_ok(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/*
 * An operator typing rotate at a terminal is shown the staged CA that will go
 * live, and that CA is sent as expect_ca: carotated refuses if new/ holds
 * another one by the time it swaps. Scripts (no terminal, or --json) and an
 * explicit --expect-ca are left alone. 0 with sha filled ("" nothing staged
 * or not interactive), -1 when status could not be asked (err filled).
 */
static int
ctl_rotate_shown_ca(
    const struct ctl_opts *opts, const struct ctl_request *r, char sha[65], struct ctl_error *err)
{
	struct ctl_request sr = { .req = CAROTATE__V1__REQUEST__INIT };
	const Carotate__V1__CertSet *staged;
	struct wire_budget budget;
	Carotate__V1__Response *resp;

	sha[0] = '\0';
	if (r->req.call_case != CAROTATE__V1__REQUEST__CALL_ROTATE || opts->json ||
	    r->call.rotate.dry_run || r->call.rotate.expect_ca[0] != '\0' ||
	    !isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
		return 0;
	sr.req.version = r->req.version;
	carotate__v1__status_request__init(&sr.call.status);
	sr.req.call_case = CAROTATE__V1__REQUEST__CALL_STATUS;
	sr.req.status = &sr.call.status;
	if ((resp = ctl_call(&ctl_table[0], opts, &sr, &budget, err)) == NULL)
		return -1;
	staged = resp->status_reply->staged;
	if (staged != NULL && staged->ca != NULL && ctl_sha256_ok(staged->ca->sha256)) {
		snprintf(sha, 65, "%s", staged->ca->sha256);
		fputs(CTL_NAME ": rotating to the staged CA ", stderr);
		output_safe(stderr, staged->ca->subject);
		fprintf(stderr, "\n" CTL_NAME ":   sha256 %s (sent as --expect-ca)\n", sha);
	}
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	return 0;
}

/* The shape of a backup id, so that a typo fails here; the daemon checks it again. */
static int
ctl_check_backup_id(const char *id, struct ctl_error *err)
{
	if (backup_id_valid(id))
		return 0;
	return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
	    "not a backup id: expected certs-YYYYMMDD-HHMMSS or certs-YYYYMMDD-HHMMSS-N "
	    "(see " CTL_NAME " backups)");
}

static int
ctl_build_restore(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_swap_args a = { 0 };
	int first;

	carotate__v1__restore_request__init(&r->call.restore);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_RESTORE;
	r->req.restore = &r->call.restore;
	first =
	    ctl_parse_cmd_options(cmd, opts, argc, argv, ctl_restore_longopts, ctl_swap_option, &a);
	if (first <= 0)
		return first;
	if (a.latest && first < argc)
		return ctl_usage_error(cmd, "BACKUP_ID and --latest exclude each other");
	if (!a.latest && (first = ctl_one_operand(cmd, argc, argv, first, "BACKUP_ID")) == -1)
		return -1;
	if (!a.latest && ctl_check_backup_id(argv[first], err) == -1)
		return CTL_BUILD_REFUSED;
	if (a.force && a.reason == NULL)
		return ctl_usage_error(
		    cmd, "--force needs --reason: say why agents may be cut off");
	if (a.reason != NULL && ctl_check_reason(a.reason, err) == -1)
		return CTL_BUILD_REFUSED;
	r->call.restore.force = a.force;
	r->call.restore.reason = (char *)(a.reason != NULL ? a.reason : "");
	r->call.restore.latest = a.latest;
	r->call.restore.dry_run = a.dry_run;
	r->call.restore.backup = a.latest ? (char *)"" : argv[first];
	return 1;
}

static int
ctl_print_swap(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__Response *resp)
{
	const Carotate__V1__RotateReply *s =
	    resp->result_case == CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY ? resp->restore_reply
	                                                                      : resp->rotate_reply;
	int ret;

	if (opts->json)
		ret = output_swap_json(stdout, s, NULL, NULL);
	else
		ret = output_swap_human(stdout, s, (int64_t)time(NULL));
	return ctl_finish_output(ret);
}

/*
 * A refused or rolled-back rotate still carries its reply: the gate's figures and the
 * pending agents, or what the proxy served. They are shown with the error (stdout), the
 * exit code is the status's.
 */
static int
ctl_run_swap(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r)
{
	const Carotate__V1__RotateReply *s;
	struct wire_budget budget;
	struct ctl_error err;
	Carotate__V1__Response *resp;
	struct ctl_request shown;
	char sha[65];
	int code;

	if (ctl_rotate_shown_ca(opts, r, sha, &err) == -1)
		return ctl_fail(opts, &err);
	if (sha[0] != '\0') {
		shown = *r;
		shown.call.rotate.expect_ca = sha;
		shown.req.rotate = &shown.call.rotate;
		r = &shown;
	}
	if ((resp = ctl_exchange(opts, r, &budget, &err)) == NULL)
		return ctl_fail(opts, &err);
	s = resp->result_case == CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY  ? resp->restore_reply
	    : resp->result_case == CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY ? resp->rotate_reply
	                                                                       : NULL;
	if (resp->status == CAROTATE__V1__STATUS__OK && s != NULL &&
	    resp->result_case == cmd->result)
		code = ctl_print_swap(cmd, opts, r, resp);
	else if (resp->status == CAROTATE__V1__STATUS__OK) {
		ctl_set_error(&err, CAROTATE__V1__STATUS__INTERNAL,
		    "reply from carotated to %s carries no %s result", cmd->name, cmd->name);
		code = ctl_fail(opts, &err);
	} else {
		ctl_set_error(&err, resp->status, "%s",
		    resp->message[0] != '\0' ? resp->message : status_message(resp->status));
		if (s == NULL)
			code = ctl_fail(opts, &err);
		else {
			fputs(CTL_NAME ": ", stderr);
			output_safe(stderr, err.message);
			fputc('\n', stderr);
			if (opts->json)
				output_swap_json(stdout, s, status_name(resp->status), err.message);
			else
				output_swap_human(stdout, s, (int64_t)time(NULL));
			fflush(stdout);
			code = status_exit_code(resp->status);
		}
	}
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	return code;
}

static int
ctl_build_include(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	int first;

	carotate__v1__include_request__init(&r->call.include);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_INCLUDE;
	r->req.include = &r->call.include;
	first = ctl_parse_cmd_options(cmd, opts, argc, argv, ctl_cmd_longopts, NULL, NULL);
	if (first <= 0)
		return first;
	if ((first = ctl_one_operand(cmd, argc, argv, first, "AGENT")) == -1)
		return -1;
	if (ctl_check_agent(argv[first], err) == -1)
		return CTL_BUILD_REFUSED;
	r->call.include.agent = argv[first];
	return 1;
}

/* forget's and join-token's own options, checked once all are parsed. */
struct ctl_agents_args {
	int never_confirmed;
	const char *older_than, *uses, *ttl, *description;
};

static int
ctl_agents_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_agents_args *a = ctx;

	switch (c) {
	case CTL_OPT_NEVER_CONFIRMED:
		a->never_confirmed = 1;
		return 0;
	case CTL_OPT_OLDER_THAN:
		return ctl_once(cmd, name, &a->older_than, arg);
	case CTL_OPT_USES:
		return ctl_once(cmd, name, &a->uses, arg);
	case CTL_OPT_TTL:
		return ctl_once(cmd, name, &a->ttl, arg);
	case CTL_OPT_DESCRIPTION:
		return ctl_once(cmd, name, &a->description, arg);
	default:
		return ctl_usage_error(cmd, "unknown option --%s", name);
	}
}

static int
ctl_build_forget(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_agents_args a = { 0 };
	uint64_t secs;
	int first;

	carotate__v1__forget_request__init(&r->call.forget);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_FORGET;
	r->req.forget = &r->call.forget;
	first = ctl_parse_cmd_options(
	    cmd, opts, argc, argv, ctl_forget_longopts, ctl_agents_option, &a);
	if (first <= 0)
		return first;
	if (!a.never_confirmed) {
		if (a.older_than != NULL)
			return ctl_usage_error(cmd, "--older-than goes with --never-confirmed");
		if ((first = ctl_one_operand(cmd, argc, argv, first, "AGENT")) == -1)
			return -1;
		if (ctl_check_agent(argv[first], err) == -1)
			return CTL_BUILD_REFUSED;
		r->call.forget.agent = argv[first];
		return 1;
	}
	if (first < argc)
		return ctl_usage_error(cmd, "--never-confirmed takes no AGENT");
	if (a.older_than == NULL)
		return ctl_usage_error(cmd, "--never-confirmed needs --older-than DURATION");
	if (ctl_parse_duration(a.older_than, "smhd", 3650 * CTL_DAY, &secs) != 0 || secs == 0) {
		ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--older-than: \"%s\" is not a duration from 1s to 3650d", a.older_than);
		return CTL_BUILD_REFUSED;
	}
	r->call.forget.never_confirmed = 1;
	r->call.forget.older_than = secs;
	return 1;
}

/* create's values: usage errors first (exit 1), then wrong values (exit 5). */
static int
ctl_fill_join_create(
    const struct ctl_agents_args *a, Carotate__V1__JoinTokenCreateRequest *q, struct ctl_error *err)
{
	uint64_t v;
	const unsigned char *p;

	if (a->uses != NULL) {
		if (ctl_parse_count(a->uses, 1, 1000000, &v) != 0)
			return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "--uses: \"%s\" is not a number from 1 to 1000000", a->uses);
		q->uses = (uint32_t)v;
	}
	if (a->ttl != NULL) {
		if (ctl_parse_duration(a->ttl, "smhd", 365 * CTL_DAY, &v) != 0 || v == 0)
			return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "--ttl: \"%s\" is not a duration from 1s to 365d", a->ttl);
		q->ttl = v;
	}
	if (a->description != NULL) {
		if (strlen(a->description) > CTL_MAX_REASON)
			return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "--description: at most %d characters", CTL_MAX_REASON);
		for (p = (const unsigned char *)a->description; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
				    "--description: byte 0x%02x is not printable ASCII", *p);
		q->description = (char *)a->description;
	}
	return 0;
}

static int
ctl_build_join(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_agents_args a = { 0 };
	const char *sub;
	int first, create;

	first =
	    ctl_parse_cmd_options(cmd, opts, argc, argv, ctl_join_longopts, ctl_agents_option, &a);
	if (first <= 0)
		return first;
	if (first >= argc)
		return ctl_usage_error(cmd, "expected create, list or revoke");
	sub = argv[first++];
	create = strcmp(sub, "create") == 0;
	if (!create && (a.uses != NULL || a.ttl != NULL || a.description != NULL))
		return ctl_usage_error(cmd, "--uses, --ttl and --description go with create");
	if (strcmp(sub, "revoke") == 0) {
		if (argc - first != 1)
			return ctl_usage_error(cmd, "revoke takes one ID");
		carotate__v1__join_token_revoke_request__init(&r->call.join_revoke);
		r->req.call_case = CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_REVOKE;
		r->req.join_token_revoke = &r->call.join_revoke;
		if (strlen(argv[first]) != 16 || strspn(argv[first], "0123456789abcdef") != 16) {
			ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
			    "invalid join token id \"%s\": 16 lower-case hex digits (see "
			    "join-token list)",
			    argv[first]);
			return CTL_BUILD_REFUSED;
		}
		r->call.join_revoke.id = argv[first];
		return 1;
	}
	if (first < argc)
		return ctl_usage_error(cmd, "unexpected argument: %s", argv[first]);
	if (strcmp(sub, "list") == 0) {
		carotate__v1__join_token_list_request__init(&r->call.join_list);
		r->req.call_case = CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_LIST;
		r->req.join_token_list = &r->call.join_list;
		return 1;
	}
	if (!create)
		return ctl_usage_error(cmd, "unknown sub-command %s: create, list or revoke", sub);
	carotate__v1__join_token_create_request__init(&r->call.join_create);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_CREATE;
	r->req.join_token_create = &r->call.join_create;
	return ctl_fill_join_create(&a, &r->call.join_create, err) == -1 ? CTL_BUILD_REFUSED : 1;
}

static int
ctl_page_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_page_args *a = ctx;

	switch (c) {
	case CTL_OPT_LIMIT:
		return ctl_once(cmd, name, &a->limit, arg);
	case CTL_OPT_OFFSET:
		return ctl_once(cmd, name, &a->offset, arg);
	default:
		return ctl_usage_error(cmd, "unknown option --%s", name);
	}
}

/*
 * --limit (1 to max) and --offset (0 or more) as given; a field left unset
 * stays zero, the daemon's default page from the newest.
 */
static int
ctl_fill_page(const struct ctl_page_args *a, uint64_t max, uint32_t *limit, uint64_t *offset,
    struct ctl_error *err)
{
	uint64_t v;

	if (a->limit != NULL && ctl_parse_count(a->limit, 1, max, &v) != 0)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--limit %s: expected a whole number from 1 to %" PRIu64, a->limit, max);
	if (a->limit != NULL)
		*limit = (uint32_t)v;
	if (a->offset != NULL && ctl_parse_count(a->offset, 0, CTL_MAX_OFFSET, &v) != 0)
		return ctl_set_error(err, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--offset %s: expected a whole number, 0 or more", a->offset);
	if (a->offset != NULL)
		*offset = v;
	return 0;
}

/* Usage errors (exit 1) come before wrong values (exit 5). */
static int
ctl_build_backups(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_page_args a = { 0 };
	int first;

	carotate__v1__list_backups_request__init(&r->call.list_backups);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_LIST_BACKUPS;
	r->req.list_backups = &r->call.list_backups;
	first =
	    ctl_parse_cmd_options(cmd, opts, argc, argv, ctl_backups_longopts, ctl_page_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	if (ctl_fill_page(&a, CTL_MAX_BACKUPS, &r->call.list_backups.limit,
	        &r->call.list_backups.offset, err) == -1)
		return CTL_BUILD_REFUSED;
	return 1;
}

static int
ctl_retire_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	if (c != CTL_OPT_DRY_RUN)
		return ctl_usage_error(cmd, "unknown option --%s", name);
	*(protobuf_c_boolean *)ctx = 1;
	return 0;
}

static int
ctl_build_retire(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	int first;

	carotate__v1__retire_request__init(&r->call.retire);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_RETIRE;
	r->req.retire = &r->call.retire;
	first = ctl_parse_cmd_options(
	    cmd, opts, argc, argv, ctl_retire_longopts, ctl_retire_option, &r->call.retire.dry_run);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	return 1;
}

static int
ctl_audit_option(const struct ctl_cmd *cmd, const char *name, int c, const char *arg, void *ctx)
{
	struct ctl_audit_args *a = ctx;

	if (c != CTL_OPT_VERIFY)
		return ctl_page_option(cmd, name, c, arg, &a->page);
	a->verify = 1;
	return 0;
}

/* Usage errors (exit 1) come before wrong values (exit 5). */
static int
ctl_build_audit(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv,
    struct ctl_request *r, struct ctl_error *err)
{
	struct ctl_audit_args a = { 0 };
	int first;

	carotate__v1__audit_request__init(&r->call.audit);
	r->req.call_case = CAROTATE__V1__REQUEST__CALL_AUDIT;
	r->req.audit = &r->call.audit;
	first =
	    ctl_parse_cmd_options(cmd, opts, argc, argv, ctl_audit_longopts, ctl_audit_option, &a);
	if (first <= 0)
		return first;
	if (first < argc)
		return ctl_usage_error(cmd, "takes no arguments (got %s)", argv[first]);
	/* Unset: the daemon's page of 50 from the newest record. */
	if (ctl_fill_page(&a.page, CTL_MAX_AUDIT_LIMIT, &r->call.audit.limit, &r->call.audit.offset,
	        err) == -1)
		return CTL_BUILD_REFUSED;
	r->call.audit.verify = a.verify;
	return 1;
}

/* Every file buffer is CTL_MAX_FILE + 1 bytes (ctl_read_file). */
static void
ctl_wipe(ProtobufCBinaryData *b)
{
	if (b->data != NULL)
		freezero_x(b->data, CTL_MAX_FILE + 1);
	b->data = NULL;
	b->len = 0;
}

/* The key is a secret; the certificates are not, but one rule for all four is simpler. */
static void
ctl_request_clear(struct ctl_request *r)
{
	if (r->req.call_case != CAROTATE__V1__REQUEST__CALL_INSTALL)
		return;
	ctl_wipe(&r->call.install.ca);
	ctl_wipe(&r->call.install.cert);
	ctl_wipe(&r->call.install.key);
	ctl_wipe(&r->call.install.chain);
}

static int
ctl_print_status(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	int ret;

	if (opts->json)
		ret = output_status_json(stdout, resp->status_reply);
	else
		ret = output_status_human(stdout, resp->status_reply);
	return ctl_finish_output(ret);
}

static const Carotate__V1__StageReply *
ctl_stage_reply(const Carotate__V1__Response *resp)
{
	switch (resp->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_GENERATE_REPLY:
		return resp->generate_reply;
	case CAROTATE__V1__RESPONSE__RESULT_INSTALL_REPLY:
		return resp->install_reply;
	case CAROTATE__V1__RESPONSE__RESULT_DISCARD_REPLY:
		return resp->discard_reply;
	default:
		return NULL;
	}
}

/*
 * generate, install, discard. A failed proxy reload still exits 0: the set is staged (or
 * discarded) on disk, and what is left to do is reload the proxy, which the warning says.
 */
static int
ctl_print_stage(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__Response *resp)
{
	const Carotate__V1__StageReply *s = ctl_stage_reply(resp);
	int ret;

	if (opts->json)
		ret = output_stage_json(stdout, s);
	else if (resp->result_case == CAROTATE__V1__RESPONSE__RESULT_DISCARD_REPLY)
		ret = output_discard_human(stdout, s);
	else
		ret = output_stage_human(stdout, s, (int64_t)time(NULL));
	ret = ctl_finish_output(ret);
	output_stage_warnings(stderr, CTL_NAME, s);
	return ret;
}

/* The page asked for says whether pending agents are listed and from where. */
static int
ctl_print_report(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	const Carotate__V1__ReportRequest *rr = &r->call.report;
	int ret;

	if (opts->json)
		ret = output_report_json(stdout, resp->report_reply, rr->pending);
	else
		ret = output_report_human(stdout, resp->report_reply, rr->pending, rr->offset);
	return ctl_finish_output(ret);
}

static const Carotate__V1__AgentReply *
ctl_agent_reply(const Carotate__V1__Response *resp)
{
	switch (resp->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_EXCLUDE_REPLY:
		return resp->exclude_reply;
	case CAROTATE__V1__RESPONSE__RESULT_INCLUDE_REPLY:
		return resp->include_reply;
	default:
		return NULL;
	}
}

static int
ctl_print_agent(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__Response *resp)
{
	int ret;

	if (opts->json)
		ret = output_agent_json(stdout, ctl_agent_reply(resp));
	else
		ret = output_agent_human(stdout, ctl_agent_reply(resp));
	return ctl_finish_output(ret);
}

/* The page asked for says where the listing starts. */
static int
ctl_print_backups(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	int ret;

	if (opts->json)
		ret = output_backups_json(stdout, resp->list_backups_reply);
	else
		ret = output_backups_human(
		    stdout, resp->list_backups_reply, r->call.list_backups.offset);
	return ctl_finish_output(ret);
}

static int
ctl_print_forget(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	return ctl_finish_output(opts->json ? output_forget_json(stdout, resp->forget_reply)
	                                    : output_forget_human(stdout, resp->forget_reply));
}

static int
ctl_print_join(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__Response *resp)
{
	int ret;

	switch (resp->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_CREATE_REPLY:
		ret = opts->json ? output_join_created_json(stdout, resp->join_token_create_reply)
		                 : output_join_created_human(stdout, resp->join_token_create_reply);
		break;
	case CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_LIST_REPLY:
		ret = opts->json ? output_join_list_json(stdout, resp->join_token_list_reply)
		                 : output_join_list_human(stdout, resp->join_token_list_reply);
		break;
	default:
		ret = opts->json ? output_join_revoked_json(stdout, resp->join_token_revoke_reply)
		                 : output_join_revoked_human(stdout, resp->join_token_revoke_reply);
	}
	return ctl_finish_output(ret);
}

static int
ctl_print_retire(const struct ctl_cmd *cmd, const struct ctl_opts *opts,
    const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	int ret;

	if (opts->json)
		ret = output_retire_json(stdout, resp->retire_reply, resp->message);
	else
		ret = output_retire_human(stdout, resp->retire_reply, resp->message);
	return ctl_finish_output(ret);
}

/*
 * The page is printed whatever the chain's state; a broken chain then fails the command
 * (exit 6, as an integrity failure), naming the first record that does not check out.
 */
static int
ctl_print_audit(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    const Carotate__V1__Response *resp)
{
	const Carotate__V1__AuditReply *a = resp->audit_reply;
	int ret;

	if (opts->json)
		ret = output_audit_json(stdout, a);
	else
		ret = output_audit_human(stdout, a, r->call.audit.offset);
	ret = ctl_finish_output(ret);
	if (ret != EXIT_DONE || !a->verify || a->intact)
		return ret;
	fprintf(stderr, CTL_NAME ": the audit log's hash chain is broken at record %" PRIu64 ": ",
	    a->broken_at);
	output_safe(stderr, a->problem);
	fputc('\n', stderr);
	return EXIT_INTERNAL;
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

/* Milliseconds until the deadline, as the wire helpers take them (-1: no deadline). */
static int
ctl_left_ms(long long deadline)
{
	long long left;

	if (deadline < 0)
		return -1;
	left = deadline - clock_ms();
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
			return ctl_denied(opts->socket, err);
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
 * XXX the socket path comes from --socket or CAROTATE_SOCKET, which whoever runs us (or
 * set up our environment) may point anywhere: before a private key is sent, the peer must
 * be a process we already trust with it, root or ourselves, or the uid the operator named.
 * SO_PEERCRED gives the listener's credentials as they were when it called listen().
 */
static int
ctl_check_peer(
    int fd, const struct ctl_opts *opts, const struct ctl_request *r, struct ctl_error *err)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t me = geteuid();

	if (!r->secret)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 || len != sizeof(cred))
		return ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "refusing to send the private key to %s: cannot tell who serves it (%s)",
		    opts->socket, strerror(errno));
	if (r->daemon_uid_set ? cred.uid == r->daemon_uid : cred.uid == 0 || cred.uid == me)
		return 0;
	if (r->daemon_uid_set)
		return ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "refusing to send the private key to %s: it is served by uid %lu, not by "
		    "--daemon-uid %lu",
		    opts->socket, (unsigned long)cred.uid, (unsigned long)r->daemon_uid);
	return ctl_set_error(err, CAROTATE__V1__STATUS__UNAVAILABLE,
	    "refusing to send the private key to %s: it is served by uid %lu, neither root nor "
	    "you (uid %lu); if carotated runs as that user, say so with --daemon-uid %lu",
	    opts->socket, (unsigned long)cred.uid, (unsigned long)me, (unsigned long)cred.uid);
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
	freezero_x(frame, len); /* install: it holds the private key */
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
	long long deadline = opts->timeout > 0 ? clock_ms() + opts->timeout * 1000LL : -1;
	Carotate__V1__Response *resp = NULL;
	uint8_t *body = NULL;
	size_t len;
	int fd;

	if ((fd = ctl_connect(opts, deadline, err)) == -1)
		return NULL;
	if (ctl_check_peer(fd, opts, r, err) == 0 && ctl_send(fd, opts, r, deadline, err) == 0 &&
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

/* The result of an OK reply is the one the command asked for, and present. */
static int
ctl_has_result(
    const struct ctl_cmd *cmd, const struct ctl_request *r, const Carotate__V1__Response *resp)
{
	/* Results are numbered as their calls: a command with several calls expects its own. */
	if ((int)resp->result_case != (cmd->result != CAROTATE__V1__RESPONSE__RESULT__NOT_SET
	                                      ? (int)cmd->result
	                                      : (int)r->req.call_case))
		return 0;
	switch (resp->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_FORGET_REPLY:
		return resp->forget_reply != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_CREATE_REPLY:
		return resp->join_token_create_reply != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_LIST_REPLY:
		return resp->join_token_list_reply != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_REVOKE_REPLY:
		return resp->join_token_revoke_reply != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_STATUS_REPLY:
		return resp->status_reply != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY:
		return resp->report_reply != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_EXCLUDE_REPLY:
	case CAROTATE__V1__RESPONSE__RESULT_INCLUDE_REPLY:
		return ctl_agent_reply(resp) != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_AUDIT_REPLY:
		return resp->audit_reply != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_LIST_BACKUPS_REPLY:
		return resp->list_backups_reply != NULL;
	case CAROTATE__V1__RESPONSE__RESULT_RETIRE_REPLY:
		return resp->retire_reply != NULL;
	default:
		return ctl_stage_reply(resp) != NULL;
	}
}

/*
 * One call: an OK reply carrying the command's result (freed by the caller with
 * budget->allocator), or NULL with err filled; err->status is UNAVAILABLE when carotated
 * could not be reached or said it could not answer.
 */
static Carotate__V1__Response *
ctl_call(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r,
    struct wire_budget *budget, struct ctl_error *err)
{
	Carotate__V1__Response *resp;

	if ((resp = ctl_exchange(opts, r, budget, err)) == NULL)
		return NULL;
	if (resp->status != CAROTATE__V1__STATUS__OK)
		ctl_set_error(err, resp->status, "%s",
		    resp->message[0] != '\0' ? resp->message : status_message(resp->status));
	else if (!ctl_has_result(cmd, r, resp))
		ctl_set_error(err, CAROTATE__V1__STATUS__INTERNAL,
		    "reply from carotated to %s carries no %s result", cmd->name, cmd->name);
	else
		return resp;
	carotate__v1__response__free_unpacked(resp, &budget->allocator);
	return NULL;
}

/* Sends the built request, prints the reply or the failure; returns the exit code. */
static int
ctl_exchange_print(
    const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r)
{
	struct wire_budget budget;
	struct ctl_error err;
	Carotate__V1__Response *resp;
	int code;

	if ((resp = ctl_call(cmd, opts, r, &budget, &err)) == NULL)
		return ctl_fail(opts, &err);
	code = cmd->print(cmd, opts, r, resp);
	carotate__v1__response__free_unpacked(resp, &budget.allocator);
	return code;
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
ctl_sleep_ms(long long ms)
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
	output_progress(stderr, st->tty, percent, num, den, label);
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
		ctl_set_error(&err, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "nothing is staged: no migration to wait for (stage a CA with generate or "
		    "install first)");
		return ctl_fail(opts, &err);
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
		ret = output_report_json(stdout, rep, 0);
	else
		ret = output_wait_reached(
		    stdout, percent, num, rep->active, ctl_wait_label(w), w->percent);
	return ctl_finish_output(ret);
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
	if ((resp = ctl_call(cmd, &call, r, &budget, &st->err)) == NULL) {
		if (st->err.status != CAROTATE__V1__STATUS__UNAVAILABLE) {
			ctl_wait_end_line(st);
			return ctl_fail(opts, &st->err);
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
		ctl_set_error(&err, CAROTATE__V1__STATUS__UNAVAILABLE, "timed out after %s: %s",
		    span, st->err.message);
	else
		ctl_set_error(&err, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "timed out after %s: %" PRIu32 " %% of active agents %s (need %" PRIu32 " %%)",
		    span, st->percent, ctl_wait_label(&r->wait), r->wait.percent);
	return ctl_fail(opts, &err);
}

/* Polls report every interval until the threshold holds, nothing is staged, or time is up. */
static int
ctl_wait(const struct ctl_cmd *cmd, const struct ctl_opts *opts, const struct ctl_request *r)
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
		ctl_sleep_ms(left);
	}
}

/*
 * Builds the command's request, talks to the daemon, prints the reply or the failure. Input
 * refused before sending reports like a daemon's INVALID_ARGUMENT (exit 5, JSON error).
 */
static int
ctl_run(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv)
{
	struct ctl_request r = { .req = CAROTATE__V1__REQUEST__INIT };
	struct ctl_error err;
	int code, built;

	r.req.version = WIRE_VERSION;
	built = cmd->build(cmd, opts, argc, argv, &r, &err);
	if (built == 1 && strlen(opts->socket) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
		built = ctl_usage_error(NULL, "socket path too long: %s", opts->socket);
	if (built == 1) {
		if (!opts->timeout_set && cmd->timeout != 0)
			opts->timeout = cmd->timeout;
		code =
		    cmd->run != NULL ? cmd->run(cmd, opts, &r) : ctl_exchange_print(cmd, opts, &r);
	} else if (built == CTL_BUILD_REFUSED)
		code = ctl_fail(opts, &err);
	else
		code = built == 0 ? EXIT_DONE : EXIT_USAGE;
	ctl_request_clear(&r);
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
