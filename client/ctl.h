/*
 * carotatectl: what its files share. ctl.c routes a verb through ctl_table[] to the
 * ctl_cmd of its group's file (ctl_status.c, ctl_stage.c, ...), which parses the verb's
 * options into a request and prints its reply; ctl_args.c is the grammar they share,
 * ctl_conn.c the call to carotated, output.c the printing primitives.
 */
#ifndef CAROTATE_CTL_H
#define CAROTATE_CTL_H

#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "carotate.pb-c.h"
#include "proto_limits.h"
#include "wire.h"

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
#define CTL_SWAP_TIMEOUT 300
#define CTL_DAY          86400ULL
#define CTL_MAX_SPAN     (LIMITS_MAX_DAYS * CTL_DAY) /* seconds: --active-within, wait --timeout */
#define CTL_MAX_OFFSET   ((uint64_t)INT64_MAX)       /* SQL's OFFSET is a signed 64-bit integer */

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
 * its ctl_cmd's clear wipes and frees.
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
		Carotate__V1__CheckRequest check;
		Carotate__V1__RenewRequest renew;
	} call;
	char *sans[LIMITS_MAX_SANS];         /* generate: the --san arguments, in argv */
	struct ctl_wait wait;                /* wait: what to wait for; its request is a report */
	uint64_t check_warn, check_critical; /* check: the server certificate's thresholds, s */
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
	/* Prints an OK reply whose result case is `result`; returns the exit code. NULL: run does.
	 */
	int (*print)(const struct ctl_cmd *, const struct ctl_opts *, const struct ctl_request *,
	    const Carotate__V1__Response *);
	/* Sends the built request and reports; returns the exit code. NULL: once, then print. */
	int (*run)(const struct ctl_cmd *, const struct ctl_opts *, const struct ctl_request *);
	/* -t/--timeout after the name is the command's own option (wait), not the call's. */
	int own_timeout;
	/* Wipes and frees what build allocated (install: the files' bytes). NULL: nothing. */
	void (*clear)(struct ctl_request *);
	/* The exit code of a usage error; 0: EXIT_USAGE (check: 3, UNKNOWN to a monitor). */
	int usage_exit;
};

/* A command's own option: its long name, its getopt code, its argument (NULL: none). */
typedef int (*ctl_option_fn)(const struct ctl_cmd *, const char *, int, const char *, void *);

/* backups: one page. */
struct ctl_page_args {
	const char *limit, *offset;
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
	CTL_OPT_WARN,
	CTL_OPT_MEMBER,
	CTL_OPT_CRITICAL,
	CTL_OPT_IF_EXPIRES_WITHIN,
	CTL_OPT_IF_DUE,
};

/* The verbs, one ctl_cmd each, defined in their group's file. */
extern const struct ctl_cmd ctl_status_cmd;
extern const struct ctl_cmd ctl_stage_generate_cmd, ctl_stage_install_cmd, ctl_stage_discard_cmd,
    ctl_stage_retire_cmd;
extern const struct ctl_cmd ctl_report_cmd, ctl_report_exclude_cmd, ctl_report_include_cmd,
    ctl_report_forget_cmd;
extern const struct ctl_cmd ctl_wait_cmd;
extern const struct ctl_cmd ctl_rotate_cmd, ctl_rotate_restore_cmd, ctl_rotate_renew_cmd;
extern const struct ctl_cmd ctl_join_cmd;
extern const struct ctl_cmd ctl_backups_cmd;
extern const struct ctl_cmd ctl_audit_cmd;
extern const struct ctl_cmd ctl_check_cmd;

/* ctl_args.c: the common options alone, for commands that take no other. */
extern const struct option ctl_args_longopts[];
/* Says what is wrong and where help is; returns -1 so callers can `return ctl_args_usage_error()`.
 */
int ctl_args_usage_error(const struct ctl_cmd *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * One option common to the whole program (cmd NULL: before the command). 1 after --help
 * (COMMAND --help printed; the caller prints the global help), -1 on a usage error.
 */
int ctl_args_common(const struct ctl_cmd *, struct ctl_opts *, int, const char *, char **);
/*
 * Options after COMMAND (argv[0] is its name): the common ones, the command's own through
 * fn. The index of the first operand, 0 after --help, -1 after a usage error.
 */
int ctl_args_parse(const struct ctl_cmd *, struct ctl_opts *, int, char **, const struct option *,
    ctl_option_fn, void *);
/* Commands that take only the common options: 1, 0 after --help, -1. */
int ctl_args_no_operands(const struct ctl_cmd *, struct ctl_opts *, int, char **);
/* The one operand (what) at argv[first]: its index, or -1 after a usage error. */
int ctl_args_one_operand(const struct ctl_cmd *, int, char **, int, const char *);
/* An option that may be given once: 0, or -1 after a usage error. */
int ctl_args_once(const struct ctl_cmd *, const char *, const char **, const char *);
/* DURATION: digits, then one suffix of `units` (of s, m, h, d) or none; at most max seconds. */
int ctl_args_duration(const char *, const char *, uint64_t, uint64_t *);
/* N: plain decimal digits, from min to max. */
int ctl_args_count(const char *, uint64_t, uint64_t, uint64_t *);
/* A numeric uid, 0 to 2^32 - 2. */
int ctl_args_uid(const char *, uid_t *);
/* A regular file of 1 to LIMITS_MAX_PEM bytes, read into a buffer ctl_args_wipe frees. */
int ctl_args_read_file(const char *, const char *, ProtobufCBinaryData *, struct ctl_error *);
void ctl_args_wipe(ProtobufCBinaryData *);
/* --reason: 1 to LIMITS_MAX_REASON printable ASCII characters. */
int ctl_args_reason(const char *, struct ctl_error *);
/* --limit and --offset: the option, then their values checked (limit 1 to max). */
int ctl_args_page_option(const struct ctl_cmd *, const char *, int, const char *, void *);
int ctl_args_fill_page(
    const struct ctl_page_args *, uint64_t, uint32_t *, uint64_t *, struct ctl_error *);

/* ctl_conn.c: fills err (status and message) and returns -1. */
int ctl_conn_error(struct ctl_error *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
/* Connect, send, receive, decode within the reply budget; NULL with err filled. */
Carotate__V1__Response *ctl_conn_exchange(
    const struct ctl_opts *, const struct ctl_request *, struct wire_budget *, struct ctl_error *);
/*
 * One call: an OK reply carrying the command's result (freed by the caller with
 * budget->allocator), or NULL with err filled; err->status is UNAVAILABLE when carotated
 * could not be reached or said it could not answer.
 */
Carotate__V1__Response *ctl_conn_call(const struct ctl_cmd *, const struct ctl_opts *,
    const struct ctl_request *, struct wire_budget *, struct ctl_error *);
/* Sends the built request, prints the reply (cmd->print) or the failure; the exit code. */
int ctl_conn_run(const struct ctl_cmd *, const struct ctl_opts *, const struct ctl_request *);
/* Reports a failure on stderr (and as JSON on stdout with --json); returns its exit code. */
int ctl_conn_fail(const struct ctl_opts *, const struct ctl_error *);
/* The exit code of a printer's result r: output that did not reach stdout is a failure. */
int ctl_conn_finish(int);

/*
 * The printers of each verb: one aligned block for operators, or one JSON object
 * (carotatectl(1)). 0, or -1 on a write error.
 */
/* status. The daemon's clock decides what has expired. */
int ctl_status_human(FILE *, const Carotate__V1__StatusReply *);
int ctl_status_json(FILE *, const Carotate__V1__StatusReply *);
/*
 * generate, install and discard (a StageReply). Human: the staged set as `status` prints it,
 * the bundle and the proxy reload; JSON: {staged, bundle, reload, warnings, kept_as}. `now`
 * decides what has expired.
 */
int ctl_stage_human(FILE *, const Carotate__V1__StageReply *, int64_t now);
int ctl_stage_discard_human(FILE *, const Carotate__V1__StageReply *);
int ctl_stage_json(FILE *, const Carotate__V1__StageReply *);
/* "PROG: warning: ..." for each warning of the reply and for a proxy reload that failed. */
int ctl_stage_warnings(FILE *, const char *prog, const Carotate__V1__StageReply *);
/*
 * retire: the daemon's one-line summary (`message`), the CAs dropped (or, dry run, that
 * would be), and the bundle; JSON {dry_run, retired: [{sha256, subject, not_after,
 * retained_until}], bundle, message}.
 */
int ctl_stage_retire_human(FILE *, const Carotate__V1__RetireReply *, const char *message);
int ctl_stage_retire_json(FILE *, const Carotate__V1__RetireReply *, const char *message);
/*
 * report. Percentages are the daemon's (rounded down there) and printed as given, never
 * recomputed. `pending` says --pending was given: the pending agents are listed (JSON:
 * `pending_agents`); `offset` is the page's first agent.
 */
int ctl_report_human(FILE *, const Carotate__V1__ReportReply *, int pending, uint64_t offset);
int ctl_report_json(FILE *, const Carotate__V1__ReportReply *, int pending);
/* exclude and include: the agent's state after the call. */
int ctl_report_agent_human(FILE *, const Carotate__V1__AgentReply *);
int ctl_report_agent_json(FILE *, const Carotate__V1__AgentReply *);
/* forget: the agent forgotten, or how many never-confirmed ones; JSON {forgotten, agent}. */
int ctl_report_forget_human(FILE *, const Carotate__V1__ForgetReply *);
int ctl_report_forget_json(FILE *, const Carotate__V1__ForgetReply *);
/*
 * wait progress, `num` of `den` active agents `label` ("acknowledged"): on a terminal
 * (tty) a bar redrawn in place, without a newline; otherwise one line. The bar fills from
 * percent, so it is full only at 100.
 */
int ctl_wait_bar(FILE *, int tty, uint32_t percent, uint64_t num, uint64_t den, const char *label);
/* wait's last line once `need` percent is reached. */
int ctl_wait_reached(
    FILE *, uint32_t percent, uint64_t num, uint64_t den, const char *label, uint32_t need);
/*
 * rotate and restore (a RotateReply), also when refused or rolled back: status and message
 * are NULL on success, else the reply's status name and message (JSON: an "error" object).
 */
int ctl_rotate_json(
    FILE *, const Carotate__V1__RotateReply *, const char *status, const char *message);
int ctl_rotate_human(FILE *, const Carotate__V1__RotateReply *, int64_t now);
/*
 * backups: a table, one line per backup (newest first), `offset` being the page's first;
 * JSON {backups: [{id, created, reason, detail, ca_subject, ca_sha256, server_sha256,
 * server_not_after, restorable, problem}], total, keep}.
 */
int ctl_backups_human(FILE *, const Carotate__V1__BackupsReply *, uint64_t offset);
int ctl_backups_json(FILE *, const Carotate__V1__BackupsReply *);
/*
 * audit: one page of records, newest first. Human: a line per record (seq, time RFC 3339,
 * user(uid), pid, call, result, detail), the sets before and after indented below it, then the
 * chain's verdict when verify was asked; `offset` is the page's first record. JSON: {records,
 * total, intact, broken_at, problem} (the last three null unless verify was asked; problem null
 * when intact).
 */
int ctl_audit_human(FILE *, const Carotate__V1__AuditReply *, uint64_t offset);
int ctl_audit_json(FILE *, const Carotate__V1__AuditReply *);
/*
 * join-token create: the token on its own first line (shown once), then its id and expiry;
 * JSON {token, id, description, uses_left, expires, created}. list: a table without
 * secrets; JSON {join_tokens: [{id, description, uses_left, expires, created}]}.
 * revoke: "join token ID revoked"; JSON {revoked}.
 */
int ctl_join_created_human(FILE *, const Carotate__V1__JoinTokenCreateReply *);
int ctl_join_created_json(FILE *, const Carotate__V1__JoinTokenCreateReply *);
int ctl_join_list_human(FILE *, const Carotate__V1__JoinTokenListReply *);
int ctl_join_list_json(FILE *, const Carotate__V1__JoinTokenListReply *);
int ctl_join_revoked_human(FILE *, const Carotate__V1__JoinTokenRevokeReply *);
int ctl_join_revoked_json(FILE *, const Carotate__V1__JoinTokenRevokeReply *);

/*
 * check: the monitoring plugin states (Nagios, Icinga, Sensu); each is also the exit code,
 * and the worst finding decides.
 */
enum ctl_check_state {
	CTL_CHECK_OK = 0,
	CTL_CHECK_WARNING = 1,
	CTL_CHECK_CRITICAL = 2,
	CTL_CHECK_UNKNOWN = 3,
};
#define CTL_CHECK_WARN_DEFAULT     (30 * CTL_DAY) /* server certificate, --warn */
#define CTL_CHECK_CRITICAL_DEFAULT (7 * CTL_DAY)  /* server certificate, --critical */
#define CTL_CHECK_CA_CRITICAL      (30 * CTL_DAY) /* CA; its warning is [renew] ca_warn */
#define CTL_CHECK_MAX_FINDINGS     16
/* One finding that is not OK: its state, what it is about ("server_certificate"), why. */
struct ctl_check_finding {
	enum ctl_check_state state;
	const char *name;
	char text[320];
};
/* What check prints: the judgement, then the numbers of the perfdata. */
struct ctl_check_result {
	enum ctl_check_state state;
	struct ctl_check_finding findings[CTL_CHECK_MAX_FINDINGS];
	size_t n_findings;
	char summary[1024]; /* the findings, "; "-separated, or what is fine */
	int has_server, has_ca, staged;
	double server_days, ca_days;                   /* left, in days (negative once expired) */
	uint32_t acked_pct;                            /* staged only */
	uint64_t warn, critical, ca_warn, ca_critical; /* the thresholds used, seconds */
	char perfdata[512];                            /* label=value[UOM];warn;crit;min;max ... */
};
/*
 * Judges the daemon's facts against the thresholds (warn and critical: the server
 * certificate's, seconds): a pure function, no clock but the reply's.
 */
void ctl_check_judge(
    const Carotate__V1__CheckReply *, uint64_t warn, uint64_t critical, struct ctl_check_result *);
/* The state's name: "OK", "WARNING", "CRITICAL", "UNKNOWN". */
const char *ctl_check_state_name(enum ctl_check_state);
/* "CAROTATE <STATE> - <summary> | <perfdata>" and a newline; JSON: the same as an object. */
int ctl_check_human(FILE *, const struct ctl_check_result *);
int ctl_check_json(FILE *, const struct ctl_check_result *);

#endif
