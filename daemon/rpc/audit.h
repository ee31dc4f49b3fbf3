/*
 * The audit log: every state-changing call (every entry of the dispatch table
 * whose minimum role is admin), every refusal of one, and the events the
 * daemon originates itself, each as one line in syslog and one record in the
 * ledger's hash-chained audit table (ledger.h).
 */
#ifndef CAROTATE_AUDIT_H
#define CAROTATE_AUDIT_H

#include <stddef.h>

#include "acl.h"
#include "carotate.pb-c.h"

struct carotated;
struct config;
struct audit_call;

#define AUDIT_DAEMON_USER "carotated" /* the user of the daemon's own events */

/*
 * The certificate sets on disk, for a record's before and after:
 * "active=<CA sha256>/<server sha256> staged=<CA sha256>", SHA-256 of the
 * certificate's DER in lower-case hex; "-" for a set or file that is absent,
 * "?" for one that cannot be read or parsed.
 */
void audit_fingerprint(const struct config *, char *buf, size_t len);

/*
 * An audited call starts (dispatch_run, before its checks' verdict is
 * known): who (uid, user name, pid), what (the request's significant
 * arguments, never key material), and the sets before it. peer may be NULL
 * (then uid 4294967295, no user).
 */
struct audit_call *audit_call_start(
    struct carotated *, const char *call, const struct acl_peer *, const Carotate__V1__Request *);
/*
 * Its reply is sent (at once, or later through control_complete): the result,
 * the reply's message and the sets after it are recorded, and ac is freed.
 * NULL is a no-op. A record the ledger cannot take is logged loudly and stays
 * in syslog; the reply is not changed.
 */
void audit_call_end(struct audit_call *, const Carotate__V1__Response *);

/* Frees ac without recording anything (the call is finished elsewhere: audit_call_load). */
void audit_call_free(struct audit_call *);
/*
 * An open record as "audit.KEY value" lines (uid, pid, user, call, detail,
 * before; all sanitized, one line each), appended to buf (NUL-terminated);
 * for a call whose end a later start finishes. 0, or -1 when it does not fit.
 */
int audit_call_save(const struct audit_call *, char *buf, size_t len);
/*
 * The record audit_call_save wrote, found among other lines of text (others
 * are skipped); NULL when it has no call. Ends with audit_call_end as usual.
 */
struct audit_call *audit_call_load(struct carotated *, const char *text);
/*
 * audit_call_save for a call about to change the sets without a swap (the
 * intent note, store/statenote.h), with two more lines: "audit.unchanged" (the
 * sets on disk now) and "audit.expect" (the same active set, and the CA
 * staged, the SHA-256 of its certificate, or "-" for none). 0, or -1 when it
 * does not fit.
 */
int audit_call_note(const struct audit_call *, const char *staged, char *buf, size_t len);
/*
 * At start-up, before audit_adopt: the call an intent note (audit_call_note's
 * text) records, cut short by a stop before its record was committed. The
 * sets on disk as expected: its record is committed as the caller's, OK, saying
 * the reply was cut short; as unchanged: as interrupted (UNAVAILABLE), nothing
 * changed; else nothing (audit_adopt judges them). Nothing either when the
 * newest record is already this call's (the stop came after its record). 1
 * when a record was written, 0 when not.
 */
int audit_call_settle(struct carotated *, const char *text);

/*
 * An admin call refused by the dispatch table's checks (role, phase, busy),
 * with its reply. The first refusal of a uid, call and status is recorded at
 * once (syslog and ledger); identical ones within [daemon] audit_coalesce of
 * it are only counted, and become one record when the interval ends (a timer
 * on cd->base; without a base, at the next refusal or audit_flush), whose
 * detail starts "count=N refusals since record S". No refusal is lost: the
 * counts of a uid, call and status add up to its refusals.
 */
void audit_refusal(struct carotated *, const char *call, const struct acl_peer *,
    const Carotate__V1__Request *, const Carotate__V1__Response *);
/* Writes every count not yet written (shutdown), before the ledger closes. */
void audit_flush(void);
/*
 * How many calls a record stands for: N for a detail starting "count=N
 * refusals since record ", which only audit_refusal writes; else 1.
 */
uint64_t audit_count(const char *detail);

/*
 * An event the daemon originates itself ("adopt", "recover", ...): user
 * "carotated", uid getuid(), pid 0, result the name of status. before NULL
 * (or ""): the after of the newest record, i.e. the state the log last
 * knew ("-" when the log is empty); after NULL: the sets on disk now.
 * Before the ledger is open (crash recovery at start-up) records are held
 * and written, in order, by audit_start.
 */
void audit_event(struct carotated *, const char *call, Carotate__V1__Status, const char *before,
    const char *after, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The ledger is open: writes the records held until now, then audit_adopt. */
void audit_start(struct carotated *);
/*
 * At start-up and SIGHUP, with no call in progress: when the sets on disk
 * differ from the after of the newest record, they were changed outside
 * carotated (a manual restore, say), which is recorded as "adopt". Not while
 * cd->resuming: a call interrupted by a stop changed them, and its own record
 * (audit_call_load) says so.
 */
void audit_adopt(struct carotated *);

/*
 * Client text made safe for syslog and the table: printable ASCII but '"'
 * and '\' kept, every other byte as \xNN; cut to fit len (NUL included)
 * with "..." at the end when something was left out.
 */
void audit_sanitize(char *dst, size_t len, const char *src);
/* The request's significant arguments as one line: agent="a1" reason="..." force=yes. */
void audit_describe(const Carotate__V1__Request *, char *buf, size_t len);

#endif
