/* Building control replies (reply.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "log.h"
#include "reply.h"
#include "xmalloc.h"

Carotate__V1__Response *
reply_new(void)
{
	Carotate__V1__Response *reply = xmalloc(sizeof(*reply));

	carotate__v1__response__init(reply);
	return reply;
}

/* Replies are built from heap strings and sub-messages only, so the generic free applies. */
void
reply_free(Carotate__V1__Response *reply)
{
	if (reply != NULL)
		protobuf_c_message_free_unpacked(&reply->base, NULL);
}

void
reply_error(Carotate__V1__Response *reply, Carotate__V1__Status status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(reply, status, 0, fmt, ap);
	va_end(ap);
}

int
reply_fail(Carotate__V1__Response *reply, Carotate__V1__Status status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(reply, status, 0, fmt, ap);
	va_end(ap);
	return -1;
}

void
reply_verror(Carotate__V1__Response *reply, Carotate__V1__Status status, size_t cap,
    const char *fmt, va_list ap)
{
	char *msg;

	if (vasprintf(&msg, fmt, ap) == -1)
		fatalx("%s: out of memory", __func__);
	if (cap > 0 && strlen(msg) >= cap)
		msg[cap - 1] = '\0';
	if (reply->message != NULL && reply->message != protobuf_c_empty_string)
		free(reply->message);
	reply->message = msg;
	reply->status = status;
}

Carotate__V1__PendingAgent *
reply_pending_agent(const char *id, int64_t last_seen, int delivered)
{
	Carotate__V1__PendingAgent *p = xmalloc(sizeof(*p));

	carotate__v1__pending_agent__init(p);
	p->id = xstrdup(id);
	p->last_seen = last_seen;
	p->delivered = delivered;
	return p;
}

int
reply_text_ok(const char *s, size_t min, size_t max)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n && s[i] >= 0x20 && s[i] < 0x7f; i++)
		;
	return i == n && n >= min && n <= max;
}

void
reply_ledger_error(Carotate__V1__Response *reply, const struct ledger *l, const char *what)
{
	struct ledger_health h;

	if (l == NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL,
		    "cannot %s: the ledger is not open", what);
		return;
	}
	ledger_health(l, &h);
	if (h.reachable) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "cannot %s", what);
		return;
	}
	reply_error(reply, CAROTATE__V1__STATUS__UNAVAILABLE,
	    "cannot %s: the %s ledger is out of reach (%s); nothing was changed: try again once it "
	    "answers (carotatectl status shows it)",
	    what, ledger_backend_name(l), h.last_error[0] != '\0' ? h.last_error : "no answer");
}
