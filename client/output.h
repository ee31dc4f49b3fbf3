/* carotatectl output: human-readable and JSON printing of daemon replies. */
#ifndef CAROTATE_OUTPUT_H
#define CAROTATE_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "carotate.pb-c.h"

/* "YYYY-MM-DDTHH:MM:SSZ" and its NUL. */
#define OUTPUT_RFC3339_LEN 21

/* Formats t (seconds since the epoch) as RFC 3339 UTC; -1 if the year is outside 0000-9999. */
int output_rfc3339(int64_t t, char *buf, size_t len);
/* Formats a span of seconds with its two largest units: "45s", "12m 5s", "3h 12m", "2d 3h". */
void output_duration(uint64_t seconds, char *buf, size_t len);
/*
 * Writes s so that a reply cannot drive the terminal or reorder what it shows: each byte of
 * invalid UTF-8 (stray, truncated, overlong, surrogate), of a C0 or C1 control, DEL, a bidi
 * control (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069) or U+2028/U+2029 is written as
 * \xHH; printable UTF-8 ("é") is written as it is.
 */
void output_safe(FILE *, const char *s);

/* `status`: one aligned block for operators, or one JSON object (carotatectl(1)). 0, or -1 on a
 * write error. */
int output_status_human(FILE *, const Carotate__V1__StatusReply *);
int output_status_json(FILE *, const Carotate__V1__StatusReply *);
/*
 * generate, install and discard (a StageReply). Human: the staged set as `status` prints it,
 * the bundle and the proxy reload; JSON: {staged, bundle, reload, warnings, kept_as}. `now`
 * decides what has expired. 0, or -1 on a write error.
 */
int output_stage_human(FILE *, const Carotate__V1__StageReply *, int64_t now);
int output_discard_human(FILE *, const Carotate__V1__StageReply *);
int output_stage_json(FILE *, const Carotate__V1__StageReply *);
/* "PROG: warning: ..." for each warning of the reply and for a proxy reload that failed. */
int output_stage_warnings(FILE *, const char *prog, const Carotate__V1__StageReply *);
/* A span of seconds in the largest unit that divides it, as DURATION arguments spell it: "7d",
 * "90m", "45s". */
void output_span(uint64_t seconds, char *buf, size_t len);

/*
 * `report`. Percentages are the daemon's (rounded down there) and printed as given, never
 * recomputed. `pending` says --pending was given: the pending agents are listed (JSON:
 * `pending_agents`); `offset` is the page's first agent. 0, or -1 on a write error.
 */
int output_report_human(FILE *, const Carotate__V1__ReportReply *, int pending, uint64_t offset);
int output_report_json(FILE *, const Carotate__V1__ReportReply *, int pending);
/* exclude and include: the agent's state after the call. 0, or -1 on a write error. */
int output_agent_human(FILE *, const Carotate__V1__AgentReply *);
int output_agent_json(FILE *, const Carotate__V1__AgentReply *);
/* forget: the agent forgotten, or how many never-confirmed ones; JSON {forgotten, agent}. */
int output_forget_human(FILE *, const Carotate__V1__ForgetReply *);
int output_forget_json(FILE *, const Carotate__V1__ForgetReply *);
/*
 * join-token create: the token on its own first line (shown once), then its id and expiry;
 * JSON {token, id, description, uses_left, expires, created}. list: a table without
 * secrets; JSON {join_tokens: [{id, description, uses_left, expires, created}]}.
 */
int output_join_created_human(FILE *, const Carotate__V1__JoinTokenCreateReply *);
int output_join_created_json(FILE *, const Carotate__V1__JoinTokenCreateReply *);
int output_join_list_human(FILE *, const Carotate__V1__JoinTokenListReply *);
int output_join_list_json(FILE *, const Carotate__V1__JoinTokenListReply *);
/* join-token revoke: "join token ID revoked"; JSON {revoked}. */
int output_join_revoked_human(FILE *, const Carotate__V1__JoinTokenRevokeReply *);
int output_join_revoked_json(FILE *, const Carotate__V1__JoinTokenRevokeReply *);
/*
 * `backups`: a table, one line per backup (newest first), `offset` being the page's first;
 * JSON {backups: [{id, created, reason, detail, ca_subject, ca_sha256, server_sha256,
 * server_not_after, restorable, problem}], total, keep}. 0, or -1 on a write error.
 */
int output_backups_human(FILE *, const Carotate__V1__BackupsReply *, uint64_t offset);
int output_backups_json(FILE *, const Carotate__V1__BackupsReply *);
/*
 * `retire`: the daemon's one-line summary (`message`), the CAs dropped (or, dry run, that
 * would be), and the bundle; JSON {dry_run, retired: [{sha256, subject, not_after,
 * retained_until}], bundle, message}. 0, or -1 on a write error.
 */
int output_retire_human(FILE *, const Carotate__V1__RetireReply *, const char *message);
int output_retire_json(FILE *, const Carotate__V1__RetireReply *, const char *message);
/*
 * `wait` progress, `num` of `den` active agents `label` ("acknowledged"): on a terminal
 * (tty) a bar redrawn in place, without a newline; otherwise one line. The bar fills from
 * percent, so it is full only at 100.
 */
int output_progress(
    FILE *, int tty, uint32_t percent, uint64_t num, uint64_t den, const char *label);
/* `wait`'s last line once `need` percent is reached. */
int output_wait_reached(
    FILE *, uint32_t percent, uint64_t num, uint64_t den, const char *label, uint32_t need);
/*
 * `audit`: one page of records, newest first. Human: a line per record (seq, time RFC 3339,
 * user(uid), pid, call, result, detail), the sets before and after indented below it, then the
 * chain's verdict when verify was asked; `offset` is the page's first record. JSON: {records,
 * total, intact, broken_at, problem} (the last three null unless verify was asked; problem null
 * when intact). 0, or -1 on a write error.
 */
int output_audit_human(FILE *, const Carotate__V1__AuditReply *, uint64_t offset);
int output_audit_json(FILE *, const Carotate__V1__AuditReply *);
/* {"error": {"status": ..., "message": ...}}: how any failure reads with --json. */
/*
 * rotate and restore (a RotateReply), also when refused or rolled back: status and message
 * are NULL on success, else the reply's status name and message (JSON: an "error" object).
 */
int output_swap_json(
    FILE *, const Carotate__V1__RotateReply *, const char *status, const char *message);
int output_swap_human(FILE *, const Carotate__V1__RotateReply *, int64_t now);
int output_error_json(FILE *, const char *status, const char *message);

#endif
