/* Building control replies: status and message, and the parts several calls share. */
#ifndef CAROTATE_REPLY_H
#define CAROTATE_REPLY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "carotate.pb-c.h"

/* A new reply, status OK; free it with reply_free. */
Carotate__V1__Response *reply_new(void);
void reply_free(Carotate__V1__Response *);
/* The reply's status and message (printf-style); replaces an earlier message. */
void reply_error(Carotate__V1__Response *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
/* reply_error, then -1: a refusal in one statement. */
int reply_fail(Carotate__V1__Response *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * reply_error with a va_list, for a caller's own printf-style wrapper; the message is cut
 * to cap - 1 bytes when cap is not 0 (text another process wrote, say).
 */
void reply_verror(Carotate__V1__Response *, Carotate__V1__Status, size_t cap, const char *, va_list)
    __attribute__((format(printf, 4, 0)));
/* A pending agent for a reply (report, a rotate the gate refused). */
Carotate__V1__PendingAgent *reply_pending_agent(const char *id, int64_t last_seen, int delivered);
struct ledger;
/*
 * A ledger call failed: UNAVAILABLE, naming the outage, when the ledger is out of reach (a
 * pool member cut off from its database: nothing changed, try again once it answers), else
 * INTERNAL. what says what the call could not do ("update the ledger").
 */
void reply_ledger_error(Carotate__V1__Response *, const struct ledger *, const char *what);
/* Operator text (a reason): min to max bytes of printable ASCII, nothing else. */
int reply_text_ok(const char *, size_t min, size_t max);

#endif
