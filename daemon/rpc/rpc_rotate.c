/*
 * rotate and restore: stage 3 of a rotation, and its way back. Both swap the
 * active set through swap.c's journal (a crash at any point is finished or
 * undone at the next start), re-derive the trust bundle, reload the proxy,
 * and then believe only a TLS handshake: the proxy must serve the expected
 * leaf certificate within [proxy] check_timeout. If it does not, the previous
 * set is put back by the same mechanism and the proxy reloaded again; the
 * caller gets INTERNAL with what happened.
 *
 * A swap itself is synchronous (a few renames and fsyncs); the reload and the
 * check run off the event loop, so the call is answered later
 * (op_defer) and holds the exclusive slot until then.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "audit.h"
#include "backups.h"
#include "bundle.h"
#include "carotated.h"
#include "certset.h"
#include "clock.h"
#include "config.h"
#include "op.h"
#include "dispatch.h"
#include "reply.h"
#include "fault.h"
#include "ledger.h"
#include "log.h"
#include "pki.h"
#include "proto_limits.h"
#include "proxy.h"
#include "ssldir.h"
#include "swap.h"
#include "xmalloc.h"

#define ROTATE_PENDING_SHOW 20 /* pending agents named in a refusal */

/* What a rotate or restore knows before its swap. */
struct rotation_req {
	const char *call;     /* "rotate" or "restore" */
	const char *expected; /* the leaf the proxy must serve once the set is live */
	const char *previous; /* the leaf of the set live now; "" none */
	const char *restored; /* restore: the backup to put back; "" for rotate */
	const char *reason;   /* rotate: the reason in the backup's manifest */
	const char *ca;       /* rotate: the staged CA the gate counted */
	int forced;
	time_t now;
};

/*
 * How a rotate or restore ended, for the one that started it: the answer and
 * its audit record are the owner's. The pointers hold until done returns; the
 * owner takes reload, served and pruned (heap; NULL when there are none).
 */
struct rotation_result {
	const char *call;
	Carotate__V1__Status status;
	const char *message;
	int abandoned;        /* a stop cut it short: the note stays, the next start finishes it */
	int resumed;          /* finished at start-up */
	const char *backup;   /* where the previous active set went; "" none */
	const char *restored; /* restore: the backup put back; "" */
	int forced;
	Carotate__V1__ReloadResult *reload; /* the last reload's outcome */
	char *served;                       /* the leaf the proxy served at the last check */
	int verified;                       /* the proxy serves the new set */
	int rolled_back;
	uint64_t rotate_ms; /* from the request to the check that passed */
	char **pruned;      /* backups removed by the retention rule */
	size_t n_pruned;
};

/* The owner of a rotation (rpc/rpc_rotate.c): how the call is deferred, recorded, answered. */
struct rotation_hooks {
	/* The swap is done and the call goes on: the owner's answer waits. */
	void (*begin)(void *arg);
	/* Appends the owner's lines (its audit record) to the pending note; -1 when they do not
	 * fit. */
	int (*save)(void *arg, char *buf, size_t len);
	/* At start-up: the owner of the call a pending note (its whole text) records. */
	void *(*load)(struct carotated *, const char *text);
	/*
	 * The end (or, res->abandoned, a stop): the owner answers and records the call,
	 * and, when not abandoned, drops the note (rotation_forget) before the next call starts.
	 */
	void (*done)(struct rotation_result *, void *arg);
};

/* One rotate or restore from the swap to its result. */
struct rpc_rotate_op {
	struct carotated *cd;
	const struct rotation_hooks *hooks;
	void *arg;                         /* the hooks' */
	const char *call;                  /* "rotate" or "restore" */
	char backup[SWAP_ID_MAX];          /* where the previous active set went; "" none */
	char rollback_backup[SWAP_ID_MAX]; /* where the rolled-back set went */
	char restored[SWAP_ID_MAX];        /* restore: the backup put back; "" */
	char expected[PKI_SHA256_HEX];     /* the leaf the proxy must serve now */
	char previous[PKI_SHA256_HEX];     /* the leaf of the previous set; "" none */
	int forced;
	int rolling_back;
	char failure[768]; /* why the new set was rolled back */
	uint64_t t0;       /* ms, monotonic: the request arrived */
	/* The outcome so far: the last reload and TLS check, the backups pruned. */
	Carotate__V1__ReloadResult *reload;
	char *served;
	int verified, rolled_back;
	uint64_t rotate_ms;
	char **pruned;
	size_t n_pruned;
	int resumed; /* finished at start-up from SWAP_PENDING */
};

#define PENDING_MAGIC "carotate-pending 1"

/* The swap between its swap and its result (at most one: the call is exclusive). */
static struct rpc_rotate_op *rpc_rotate_running;

static struct rpc_rotate_op *rpc_rotate_op_new(
    struct carotated *, const struct rotation_req *, const struct rotation_hooks *, void *);
static void rpc_rotate_op_start(struct rpc_rotate_op *);
static void rpc_rotate_op_swapped(struct rpc_rotate_op *);
static void rpc_rotate_op_reloaded(Carotate__V1__ReloadResult *, void *);
static void rpc_rotate_op_checked(int, const char *, const char *, void *);
static void rpc_rotate_op_rollback(struct rpc_rotate_op *, const char *, const char *);
static void rpc_rotate_op_reply(struct rpc_rotate_op *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void rpc_rotate_op_outcome(
    struct rpc_rotate_op *, struct rotation_result *, Carotate__V1__Status, const char *);
static void rpc_rotate_op_free(struct rpc_rotate_op *);
static void rpc_rotate_op_note(struct rpc_rotate_op *);
static void rpc_rotate_op_line(char *, size_t, const char *, const char *);
static int rpc_rotate_op_load_line(struct rpc_rotate_op *, const char *);

/* 64 lower-case hex digits: the only shape of a CA fingerprint a caller may send. */
static int
rpc_rotate_op_sha_ok(const char *s)
{
	return strlen(s) == PKI_SHA256_HEX - 1 &&
	       strspn(s, "0123456789abcdef") == PKI_SHA256_HEX - 1;
}

static struct rpc_rotate_op *
rpc_rotate_op_new(struct carotated *cd, const struct rotation_req *q,
    const struct rotation_hooks *hooks, void *arg)
{
	struct rpc_rotate_op *op = xcalloc(1, sizeof(*op));

	op->cd = cd;
	op->hooks = hooks;
	op->arg = arg;
	op->call = q->call;
	op->forced = q->forced;
	snprintf(op->restored, sizeof(op->restored), "%s", q->restored);
	snprintf(op->expected, sizeof(op->expected), "%s", q->expected);
	snprintf(op->previous, sizeof(op->previous), "%s", q->previous);
	op->t0 = clock_ms();
	return op;
}

/*
 * rotate: new/ goes live. The swap checks again that new/ holds the CA counted
 * (q->ca): nothing else goes live. 0 when the call goes on (hooks->begin, then
 * hooks->done later), or -1 / SWAP_STALE with err (nothing changed).
 */
static int
rpc_rotate_op_rotate(struct carotated *cd, const struct rotation_req *q,
    const struct rotation_hooks *hooks, void *arg, char *err, size_t errlen)
{
	struct rpc_rotate_op *op = rpc_rotate_op_new(cd, q, hooks, arg);
	int rc;

	if ((rc = swap_rotate_ca(cd->conf, q->now, q->reason, q->ca, op->backup, sizeof(op->backup),
	         op->failure, sizeof(op->failure))) != 0) {
		log_warnx("rotate: %s", op->failure);
		if (rc == SWAP_STALE)
			agents_refresh(cd);
		snprintf(err, errlen, "%s", op->failure);
		rpc_rotate_op_free(op);
		return rc;
	}
	log_info("rotate: the staged set is live (server %s); the previous set is in %s",
	    op->expected, op->backup[0] != '\0' ? op->backup : "(none: first activation)");
	rpc_rotate_op_start(op);
	return 0;
}

/* restore: backup q->restored goes live. As rpc_rotate_op_rotate; -1 with err. */
static int
rpc_rotate_op_restore(struct carotated *cd, const struct rotation_req *q,
    const struct rotation_hooks *hooks, void *arg, char *err, size_t errlen)
{
	struct rpc_rotate_op *op = rpc_rotate_op_new(cd, q, hooks, arg);

	if (swap_restore(cd->conf, q->restored, q->now, op->backup, sizeof(op->backup), op->failure,
	        sizeof(op->failure)) == -1) {
		log_warnx("restore: %s", op->failure);
		snprintf(err, errlen, "%s", op->failure);
		rpc_rotate_op_free(op);
		return -1;
	}
	log_info("restore: %s is live again (server %s); the previous set is in %s", q->restored,
	    op->expected, op->backup[0] != '\0' ? op->backup : "(none)");
	rpc_rotate_op_start(op);
	return 0;
}

static void
rpc_rotate_op_start(struct rpc_rotate_op *op)
{
	op->hooks->begin(op->arg);
	rpc_rotate_running = op;
	rpc_rotate_op_note(op);
	rpc_rotate_op_swapped(op);
}

/* key value, one line: control characters (none expected) become '?'. */
static void
rpc_rotate_op_line(char *buf, size_t len, const char *key, const char *value)
{
	size_t n = strlen(buf), i;

	if (n + strlen(key) + 3 >= len)
		return;
	n += (size_t)snprintf(buf + n, len - n, "%s ", key);
	for (i = 0; value[i] != '\0' && n + 2 < len; i++)
		buf[n++] = iscntrl((unsigned char)value[i]) ? '?' : value[i];
	buf[n++] = '\n';
	buf[n] = '\0';
}

/*
 * The set on disk changed (or was put back by a roll back): what is left to do
 * is written down, so that a stop that cuts the call short (a shutdown past its
 * bound, a crash) leaves the next start to reload, check, roll back and audit
 * it as this call, not as a change made outside carotated. The hooks add the
 * call's own lines (its audit record).
 */
static void
rpc_rotate_op_note(struct rpc_rotate_op *op)
{
	char buf[SWAP_PENDING_MAX], err[512] = "";

	snprintf(buf, sizeof(buf), "%s\n", PENDING_MAGIC);
	rpc_rotate_op_line(buf, sizeof(buf), "call", op->call);
	rpc_rotate_op_line(buf, sizeof(buf), "backup", op->backup[0] != '\0' ? op->backup : "-");
	rpc_rotate_op_line(
	    buf, sizeof(buf), "restored", op->restored[0] != '\0' ? op->restored : "-");
	rpc_rotate_op_line(buf, sizeof(buf), "expected", op->expected);
	rpc_rotate_op_line(
	    buf, sizeof(buf), "previous", op->previous[0] != '\0' ? op->previous : "-");
	rpc_rotate_op_line(buf, sizeof(buf), "forced", op->forced ? "1" : "0");
	rpc_rotate_op_line(buf, sizeof(buf), "rolling_back", op->rolling_back ? "1" : "0");
	rpc_rotate_op_line(buf, sizeof(buf), "rollback_backup",
	    op->rollback_backup[0] != '\0' ? op->rollback_backup : "-");
	rpc_rotate_op_line(buf, sizeof(buf), "failure", op->failure[0] != '\0' ? op->failure : "-");
	if (op->hooks->save(op->arg, buf, sizeof(buf)) == -1 ||
	    swap_pending_write(op->cd->conf, buf, err, sizeof(err)) == -1)
		log_warnx("%s: %s: a stop before the reply would leave it unaudited", op->call,
		    err[0] != '\0' ? err : "the record does not fit");
}

/* The set on disk changed: the bundle follows, then the proxy is told. */
static void
rpc_rotate_op_swapped(struct rpc_rotate_op *op)
{
	const struct config *conf = op->cd->conf;
	char before[BUNDLE_NOTE_LEN], after[BUNDLE_NOTE_LEN], err[512];
	struct bundle b;
	time_t now = time(NULL);

	fault_point("rotate-after-swap");
	/* The CA replaced stays in the bundle for the retention window. */
	if (bundle_note_active(conf, now, before, after, err, sizeof(err)) == -1)
		log_warnx("%s: %s", op->call, err);
	if (bundle_publish(conf, now, &b, err, sizeof(err)) == -1)
		log_warnx("%s: %s", op->call, err);
	bundle_clear(&b);
	agents_refresh(op->cd);
	fault_point("rotate-after-publish");
	proxy_reload(op->cd, rpc_rotate_op_reloaded, op);
}

static void
rpc_rotate_op_reloaded(Carotate__V1__ReloadResult *result, void *arg)
{
	struct rpc_rotate_op *op = arg;
	const struct config *conf = op->cd->conf;

	fault_point("rotate-after-reload");
	if (op->reload != NULL)
		protobuf_c_message_free_unpacked(&op->reload->base, NULL);
	op->reload = result;
	proxy_check(op->cd, &conf->proxy_address, conf->proxy_server_name, op->expected,
	    conf->check_timeout, rpc_rotate_op_checked, op);
}

static void
rpc_rotate_op_checked(int ok, const char *served, const char *why, void *arg)
{
	struct rpc_rotate_op *op = arg;
	const struct config *conf = op->cd->conf;
	char addr[300], err[256];
	size_t i;

	free(op->served);
	op->served = xstrdup(served);
	proxy_address_text(&conf->proxy_address, addr, sizeof(addr));
	if (op->rolling_back) {
		op->rolled_back = 1;
		if (ok)
			rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__INTERNAL,
			    "%s; rolled back: the previous set is live again and %s serves it "
			    "(the set that failed is kept in %s)",
			    op->failure, addr, op->rollback_backup);
		else
			rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__INTERNAL,
			    "%s; the previous set was put back, but %s does not serve it either "
			    "(%s): check the proxy now",
			    op->failure, addr, why);
		return;
	}
	if (!ok) {
		snprintf(op->failure, sizeof(op->failure),
		    "%s: %s did not serve the new certificate within %u s (%s)", op->call, addr,
		    conf->check_timeout / 1000, why);
		log_warnx("%s", op->failure);
		if (op->backup[0] == '\0') {
			rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__INTERNAL,
			    "%s; there was no previous set to roll back to", op->failure);
			return;
		}
		rpc_rotate_op_rollback(op, op->backup, op->previous);
		return;
	}
	op->verified = 1;
	op->rotate_ms = clock_ms() - op->t0;
	if (backups_prune(conf, &op->pruned, &op->n_pruned, err, sizeof(err)) == -1)
		log_warnx("%s: backup retention: %s", op->call, err);
	for (i = 0; i < op->n_pruned; i++)
		log_info("%s: backup %s removed by the retention rule (keep %u)", op->call,
		    op->pruned[i], conf->backups_keep);
	log_info("%s: %s serves %s (%llu ms)", op->call, addr, op->expected,
	    (unsigned long long)op->rotate_ms);
	rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__OK, "%s serves the new certificate%s%s", addr,
	    op->backup[0] != '\0' ? "; the previous set is in " : "", op->backup);
}

/* Puts backup id back (the set that was live before this call), then reloads and checks again. */
static void
rpc_rotate_op_rollback(struct rpc_rotate_op *op, const char *id, const char *previous)
{
	char err[512];

	op->rolling_back = 1;
	snprintf(op->expected, sizeof(op->expected), "%s", previous);
	if (swap_restore_as(op->cd->conf, id, time(NULL), 1, op->rollback_backup,
	        sizeof(op->rollback_backup), err, sizeof(err)) == -1) {
		log_warnx("%s: roll back to %s: %s", op->call, id, err);
		rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__INTERNAL,
		    "%s; putting %s back failed too (%s): restore it by hand (carotatectl "
		    "restore %s)",
		    op->failure, id, err, id);
		return;
	}
	log_info("%s: rolled back to %s; the set that failed is in %s", op->call, id,
	    op->rollback_backup);
	rpc_rotate_op_note(op);
	rpc_rotate_op_swapped(op);
}

/* The outcome as it stands; the result takes the reload and the pruned list. */
static void
rpc_rotate_op_outcome(struct rpc_rotate_op *op, struct rotation_result *res,
    Carotate__V1__Status status, const char *msg)
{
	memset(res, 0, sizeof(*res));
	res->call = op->call;
	res->status = status;
	res->message = msg;
	res->resumed = op->resumed;
	res->backup = op->backup;
	res->restored = op->restored;
	res->forced = op->forced;
	res->reload = op->reload;
	res->served = op->served;
	res->verified = op->verified;
	res->rolled_back = op->rolled_back;
	res->rotate_ms = op->rotate_ms;
	res->pruned = op->pruned;
	res->n_pruned = op->n_pruned;
	op->reload = NULL;
	op->served = NULL;
	op->pruned = NULL;
	op->n_pruned = 0;
}

/* The end of the call: its owner answers and records it (hooks->done). */
static void
rpc_rotate_op_reply(struct rpc_rotate_op *op, Carotate__V1__Status status, const char *fmt, ...)
{
	struct rotation_result res;
	va_list ap;
	char msg[2048];
	int n;

	/* Said first when resumed: the caller got no answer from the daemon that stopped. */
	n = op->resumed ? snprintf(msg, sizeof(msg),
	                      "finished at start-up (carotated stopped before the %s had "
	                      "answered): ",
	                      op->call)
	                : 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	rpc_rotate_op_outcome(op, &res, status, msg);
	rpc_rotate_running = NULL;
	op->cd->resuming = 0;
	op->hooks->done(&res, op->arg);
	rpc_rotate_op_free(op);
}

/* Recorded: nothing is left for a next start to finish. */
static void
rpc_rotate_op_forget(struct carotated *cd, const char *call)
{
	char err[256];

	if (swap_pending_remove(cd->conf, err, sizeof(err)) == -1)
		log_warnx("%s: %s", call, err);
}

static void
rpc_rotate_op_free(struct rpc_rotate_op *op)
{
	size_t i;

	if (op->reload != NULL)
		protobuf_c_message_free_unpacked(&op->reload->base, NULL);
	free(op->served);
	for (i = 0; i < op->n_pruned; i++)
		free(op->pruned[i]);
	free(op->pruned);
	free(op);
}

/*
 * Shutdown outlasted its bound (job_kill_all and proxy_abandon_all ran): the
 * owner is told (res.abandoned), nothing is audited, and SWAP_PENDING stays for
 * the next start, which finishes the call and records it.
 */
static void
rpc_rotate_op_abandon(void)
{
	struct rpc_rotate_op *op = rpc_rotate_running;
	struct rotation_result res;
	char msg[1024];

	if (op == NULL)
		return;
	rpc_rotate_running = NULL;
	log_warnx("%s: stopping before it finished: the next start reloads, checks and "
	          "audits it",
	    op->call);
	snprintf(msg, sizeof(msg),
	    "%s: carotated is stopping before the proxy check ended; the set on disk "
	    "changed (backup %s), and the next start reloads, checks (rolls back if "
	    "need be) and audits it",
	    op->call, op->backup[0] != '\0' ? op->backup : "none");
	rpc_rotate_op_outcome(op, &res, CAROTATE__V1__STATUS__UNAVAILABLE, msg);
	res.abandoned = 1;
	op->hooks->done(&res, op->arg);
	rpc_rotate_op_free(op);
}

/* One line of SWAP_PENDING; the owner's lines (its audit record) are its hooks'. */
static int
rpc_rotate_op_load_line(struct rpc_rotate_op *op, const char *line)
{
	const char *v = strchr(line, ' ');
	size_t k;

	if (v == NULL || strncmp(line, "audit.", 6) == 0)
		return 0;
	k = (size_t)(v++ - line);
	if (k == 4 && strncmp(line, "call", 4) == 0)
		op->call = strcmp(v, "restore") == 0 ? "restore" : "rotate";
	else if (k == 6 && strncmp(line, "backup", 6) == 0 && backupid_valid(v))
		snprintf(op->backup, sizeof(op->backup), "%s", v);
	else if (k == 8 && strncmp(line, "restored", 8) == 0 && backupid_valid(v))
		snprintf(op->restored, sizeof(op->restored), "%s", v);
	else if (k == 8 && strncmp(line, "expected", 8) == 0 && rpc_rotate_op_sha_ok(v))
		snprintf(op->expected, sizeof(op->expected), "%s", v);
	else if (k == 8 && strncmp(line, "previous", 8) == 0 && rpc_rotate_op_sha_ok(v))
		snprintf(op->previous, sizeof(op->previous), "%s", v);
	else if (k == 6 && strncmp(line, "forced", 6) == 0)
		op->forced = strcmp(v, "1") == 0;
	else if (k == 12 && strncmp(line, "rolling_back", 12) == 0)
		op->rolling_back = strcmp(v, "1") == 0;
	else if (k == 15 && strncmp(line, "rollback_backup", 15) == 0 && backupid_valid(v))
		snprintf(op->rollback_backup, sizeof(op->rollback_backup), "%s", v);
	else if (k == 7 && strncmp(line, "failure", 7) == 0 && strcmp(v, "-") != 0)
		snprintf(op->failure, sizeof(op->failure), "%s", v);
	return 0;
}

/*
 * At start-up: finishes the call SWAP_PENDING records (hooks->load gives its
 * owner, from the note's whole text). 1 resumed, 0 none, -1 (logged, the note
 * removed) when it was unusable.
 */
static int
rpc_rotate_op_resume(struct carotated *cd, const struct rotation_hooks *hooks)
{
	char *text = NULL, *copy, *line, *save = NULL, err[512];
	struct rpc_rotate_op *op;
	int r;

	if ((r = swap_pending_read(cd->conf, &text, err, sizeof(err))) <= 0) {
		if (r == -1)
			log_warnx("%s", err);
		return r;
	}
	op = xcalloc(1, sizeof(*op));
	op->cd = cd;
	op->hooks = hooks;
	op->call = "rotate";
	op->resumed = 1;
	op->t0 = clock_ms();
	copy = xstrdup(text);
	line = strtok_r(copy, "\n", &save);
	if (line == NULL || strcmp(line, PENDING_MAGIC) != 0)
		op->expected[0] = '\0';
	else
		while ((line = strtok_r(NULL, "\n", &save)) != NULL)
			rpc_rotate_op_load_line(op, line);
	free(copy);
	if (op->expected[0] == '\0') {
		free(text);
		log_warnx("%s/%s: not a record of an unfinished rotate or restore; removed",
		    cd->conf->state_dir, SWAP_PENDING);
		rpc_rotate_op_free(op);
		if (swap_pending_remove(cd->conf, err, sizeof(err)) == -1)
			log_warnx("%s", err);
		return -1;
	}
	op->arg = hooks->load(cd, text);
	free(text);
	cd->busy = op->call;
	cd->resuming = 1;
	rpc_rotate_running = op;
	log_info("%s: carotated stopped before it had answered; finishing it now: reload, "
	         "TLS check%s, audit",
	    op->call, op->rolling_back ? " of the set rolled back to" : ", roll back if need be");
	rpc_rotate_op_swapped(op);
	return 1;
}

/* The handlers: argument checks, the gates, the reply. */

/* A rotate or restore the engine carries out: what its answer needs. */
struct rpc_rotate_call {
	struct rpc_ctx *ctx; /* while the handler runs, for rpc_rotate_begin */
	struct carotated *cd;
	struct control_pending *pending;
	struct audit_call *audit; /* the call's record, closed with the reply */
	Carotate__V1__RotateReply *reply;
};

static Carotate__V1__RotateReply *rpc_rotate_reply_new(void);
static void rpc_rotate_attach(Carotate__V1__Response *, const char *, Carotate__V1__RotateReply *);
static void rpc_rotate_pending_cb(const char *, int64_t, int, void *);
static int rpc_rotate_gate(struct rpc_ctx *, const Carotate__V1__RotateRequest *,
    Carotate__V1__RotateReply *, Carotate__V1__Response *);
static int rpc_rotate_counted(struct rpc_ctx *, const Carotate__V1__RotateRequest *,
    const Carotate__V1__RotateReply *, Carotate__V1__Response *);
static int rpc_rotate_restore_gate(struct rpc_ctx *, const Carotate__V1__RestoreRequest *,
    Carotate__V1__RotateReply *, Carotate__V1__Response *);
static struct rpc_rotate_call *rpc_rotate_call_new(struct rpc_ctx *, Carotate__V1__Response *);
static void rpc_rotate_call_free(struct rpc_rotate_call *);
static void rpc_rotate_begin(void *);
static int rpc_rotate_save(void *, char *, size_t);
static void *rpc_rotate_load(struct carotated *, const char *);
static void rpc_rotate_take(Carotate__V1__RotateReply *, struct rotation_result *);
static void rpc_rotate_done(struct rotation_result *, void *);

static const struct rotation_hooks rpc_rotate_hooks = {
	rpc_rotate_begin,
	rpc_rotate_save,
	rpc_rotate_load,
	rpc_rotate_done,
};

static Carotate__V1__RotateReply *
rpc_rotate_reply_new(void)
{
	Carotate__V1__RotateReply *r = xmalloc(sizeof(*r));

	carotate__v1__rotate_reply__init(r);
	return r;
}

static void
rpc_rotate_attach(Carotate__V1__Response *reply, const char *call, Carotate__V1__RotateReply *r)
{
	if (strcmp(call, "restore") == 0) {
		reply->result_case = CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY;
		reply->restore_reply = r;
	} else {
		reply->result_case = CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY;
		reply->rotate_reply = r;
	}
}

static void
rpc_rotate_pending_cb(const char *id, int64_t last_seen, int delivered, void *arg)
{
	Carotate__V1__RotateReply *r = arg;
	Carotate__V1__PendingAgent *p = reply_pending_agent(id, last_seen, delivered);

	r->pending_agents =
	    xreallocarray(r->pending_agents, r->n_pending_agents + 1, sizeof(*r->pending_agents));
	r->pending_agents[r->n_pending_agents++] = p;
}

/*
 * The 100 % gate (carotated(8) ROTATION): every active, non-excluded agent acknowledged
 * (or verified) the staged CA. A proxy with no active set has no agents to
 * cut off. 0 to go on, -1 with the refusal in reply.
 */
static int
rpc_rotate_gate(struct rpc_ctx *ctx, const Carotate__V1__RotateRequest *q,
    Carotate__V1__RotateReply *r, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	struct ledger *l = ctx->cd->ledger;
	struct ledger_counts c;
	time_t now = time(NULL);
	uint64_t days = conf->active_within / 86400;

	r->gate = xstrdup(conf->gate == CONFIG_GATE_VERIFIED ? "verified" : "acknowledged");
	r->forced = q->force;
	/* Counted even when it does not apply, so that the reply agrees with report. */
	ledger_count(l, now, conf->active_within, &c);
	r->active = c.active;
	r->confirmed = conf->gate == CONFIG_GATE_VERIFIED ? c.verified : c.acknowledged;
	if (r->before == NULL)
		return 0;
	if (c.active > 0 && r->confirmed >= c.active)
		return 0;
	if (c.active > 0 && ledger_pending(l, now, conf->active_within, 0, ROTATE_PENDING_SHOW,
	                        rpc_rotate_pending_cb, r) == -1)
		log_warnx("rotate: cannot list the pending agents");
	if (q->force) {
		log_info("rotate forced below the gate (%llu of %llu active agents %s): %s",
		    (unsigned long long)r->confirmed, (unsigned long long)c.active, r->gate,
		    q->reason);
		return 0;
	}
	if (c.active == 0 && c.excluded > 0 && c.linked == c.excluded)
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "every agent is excluded (%llu of %llu): none is left to acknowledge the "
		    "staged CA (carotatectl include AGENT counts one again; rotate --force "
		    "--reason "
		    "TEXT rotates anyway)",
		    (unsigned long long)c.excluded, (unsigned long long)c.linked);
	else if (c.active == 0)
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "no agent has checked in within %llu%s: is the agent endpoint wired? "
		    "(rotate --force --reason TEXT rotates anyway)",
		    (unsigned long long)(days > 0 ? days : conf->active_within),
		    days > 0 ? "d" : "s");
	else
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "only %llu of %llu active agents (%u %%) %s the staged CA; %llu pending: "
		    "rotating now could cut them off (rotate --force --reason TEXT rotates anyway)",
		    (unsigned long long)r->confirmed, (unsigned long long)c.active,
		    (unsigned)(r->confirmed * 100 / c.active),
		    conf->gate == CONFIG_GATE_VERIFIED ? "verified" : "acknowledged",
		    (unsigned long long)(c.active - r->confirmed));
	return -1;
}

/*
 * The CA in new/ (read from disk just now, r->after) is the one the caller
 * expects and the one the gate counts. new/ replaced by hand without a
 * SIGHUP leaves the ledger counting the old CA: the daemon takes the new one
 * as its target (agents start from nothing: the report shows the truth) and
 * refuses. --force overrides the percentage, never this: what is counted,
 * audited and installed is one CA. 0 to go on, -1 with the refusal in reply.
 */
static int
rpc_rotate_counted(struct rpc_ctx *ctx, const Carotate__V1__RotateRequest *q,
    const Carotate__V1__RotateReply *r, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	const char *staged = r->after->ca->sha256;
	char counted[PKI_SHA256_HEX];

	if (q->expect_ca[0] != '\0' && strcmp(q->expect_ca, staged) != 0) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "the staged CA in %s/%s is %s, not the expected %s: nothing changed (see "
		    "carotatectl status)",
		    conf->ssl_dir, SSLDIR_STAGING, staged, q->expect_ca);
		return -1;
	}
	/* With no active set there is no gate: nobody can be cut off. */
	if (r->before == NULL)
		return 0;
	snprintf(counted, sizeof(counted), "%s", ctx->cd->staged_ca);
	if (strcmp(counted, staged) == 0)
		return 0;
	log_warnx("rotate: %s/%s holds CA %s, but the gate counted %s: it changed without "
	          "carotatectl or a SIGHUP; counting the new CA from now",
	    conf->ssl_dir, SSLDIR_STAGING, staged, counted[0] != '\0' ? counted : "none");
	agents_refresh(ctx->cd);
	reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
	    "the staged set in %s/%s was replaced outside carotatectl (its CA is %s; the gate "
	    "counted %s): nothing changed. Agents must now acknowledge the new CA: carotated "
	    "counts it from now (see carotatectl report)",
	    conf->ssl_dir, SSLDIR_STAGING, staged, counted[0] != '\0' ? counted : "none");
	return -1;
}

void
rpc_rotate(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__RotateRequest *q = req->rotate;
	const struct config *conf = ctx->cd->conf;
	struct rotation_req rq;
	Carotate__V1__RotateReply *r;
	struct rpc_rotate_call *c;
	time_t now = time(NULL);
	char err[768];
	X509 *ca;
	int saved, rc;

	if (q->force && q->reason[0] == '\0') {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--force needs --reason: say why the gate is overridden");
		return;
	}
	/* It goes into manifests, logs and the audit trail: one printable line. */
	if (!reply_text_ok(q->reason, 0, LIMITS_MAX_REASON)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "the reason may hold up to %d printable characters", LIMITS_MAX_REASON);
		return;
	}
	if (q->expect_ca[0] != '\0' && !rpc_rotate_op_sha_ok(q->expect_ca)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--expect-ca takes the staged CA's SHA-256: 64 lower-case hex digits");
		return;
	}
	r = rpc_rotate_reply_new();
	r->dry_run = q->dry_run;
	r->before = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	r->after = certset_describe(conf, 1, now, &ca);
	saved = errno;
	X509_free(ca);
	rpc_rotate_attach(reply, "rotate", r);
	/* A set that cannot be read is not called incomplete: the reason is given. */
	if (r->after == NULL && saved != ENOENT) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL,
		    "cannot read the staged set in %s/%s: %s", conf->ssl_dir, SSLDIR_STAGING,
		    strerror(saved));
		return;
	}
	if (r->after == NULL || r->after->server == NULL || r->after->ca == NULL ||
	    !r->after->key_present) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "the staged set in %s/%s is incomplete%s%s%s: stage it again", conf->ssl_dir,
		    SSLDIR_STAGING, r->after != NULL && r->after->n_problems > 0 ? " (" : "",
		    r->after != NULL && r->after->n_problems > 0 ? r->after->problems[0] : "",
		    r->after != NULL && r->after->n_problems > 0 ? ")" : "");
		return;
	}
	if (r->after->n_problems > 0 && !q->force) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "the staged set is not sound: %s", r->after->problems[0]);
		return;
	}
	if (rpc_rotate_counted(ctx, q, r, reply) == -1 || rpc_rotate_gate(ctx, q, r, reply) == -1)
		return;
	if (q->dry_run) {
		reply_error(reply, CAROTATE__V1__STATUS__OK,
		    "dry run: the staged set would go live%s%s",
		    r->before != NULL ? ""
		                      : " (no "
		                        "active "
		                        "set yet)",
		    r->forced ? " (forced)" : "");
		return;
	}
	c = rpc_rotate_call_new(ctx, reply);
	rq.call = "rotate";
	rq.expected = c->reply->after->server->sha256;
	rq.previous = c->reply->before != NULL && c->reply->before->server != NULL
	                  ? c->reply->before->server->sha256
	                  : "";
	rq.restored = "";
	rq.reason = q->reason[0] != '\0' ? q->reason : "rotate";
	rq.ca = c->reply->after->ca->sha256;
	rq.forced = c->reply->forced;
	rq.now = now;
	if ((rc = rpc_rotate_op_rotate(ctx->cd, &rq, &rpc_rotate_hooks, c, err, sizeof(err))) !=
	    0) {
		reply_error(reply,
		    rc == SWAP_STALE ? CAROTATE__V1__STATUS__FAILED_PRECONDITION
		                     : CAROTATE__V1__STATUS__INTERNAL,
		    "%s", err);
		rpc_rotate_call_free(c);
	}
}

void
rpc_rotate_restore(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__RestoreRequest *q = req->restore;
	const struct config *conf = ctx->cd->conf;
	char id[SWAP_ID_MAX], err[512], failure[768];
	struct rotation_req rq;
	Carotate__V1__RotateReply *r;
	struct rpc_rotate_call *c;
	time_t now = time(NULL);
	X509 *ca;

	if (q->force && q->reason[0] == '\0') {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--force needs --reason: say why agents may be cut off");
		return;
	}
	if (!reply_text_ok(q->reason, 0, LIMITS_MAX_REASON)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "the reason may hold up to %d printable characters", LIMITS_MAX_REASON);
		return;
	}
	if (q->latest == (q->backup[0] != '\0')) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "name one backup, or ask for the latest");
		return;
	}
	if (q->latest) {
		if (backups_latest(conf, id, err, sizeof(err)) == -1) {
			reply_error(reply, CAROTATE__V1__STATUS__NOT_FOUND, "%s", err);
			return;
		}
		log_info(
		    "restore --latest: %s (the newest backup but those of rolled-back sets)", id);
	} else if (!backupid_valid(q->backup)) {
		/* Never echoed: it may be anything. */
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "not a backup id: backups are named certs-YYYYMMDD-HHMMSS[-N] (see "
		    "carotatectl backups)");
		return;
	} else
		snprintf(id, sizeof(id), "%s", q->backup);
	r = rpc_rotate_reply_new();
	r->dry_run = q->dry_run;
	r->restored = xstrdup(id);
	r->before = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	r->after = certset_describe_backup(conf, id, now, &ca);
	X509_free(ca);
	rpc_rotate_attach(reply, "restore", r);
	if (r->after == NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__NOT_FOUND, "no backup %s in %s", id,
		    conf->ssl_dir);
		return;
	}
	if (backups_check(conf, id, err, sizeof(err)) == -1 || r->after->server == NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "%s",
		    r->after->server == NULL ? "the backup has no server certificate" : err);
		return;
	}
	if (rpc_rotate_restore_gate(ctx, q, r, reply) == -1)
		return;
	if (q->dry_run) {
		reply_error(reply, CAROTATE__V1__STATUS__OK, "dry run: %s would be put back", id);
		return;
	}
	c = rpc_rotate_call_new(ctx, reply);
	rq.call = "restore";
	rq.expected = c->reply->after->server->sha256;
	rq.previous = c->reply->before != NULL && c->reply->before->server != NULL
	                  ? c->reply->before->server->sha256
	                  : "";
	rq.restored = id;
	rq.reason = "";
	rq.ca = "";
	rq.forced = c->reply->forced;
	rq.now = now;
	if (rpc_rotate_op_restore(ctx->cd, &rq, &rpc_rotate_hooks, c, failure, sizeof(failure)) ==
	    -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", failure);
		rpc_rotate_call_free(c);
	}
}

/*
 * Restore's gate: agents trust exactly the bundle served now (active, staged,
 * retained CAs), so a backup whose CA is not in it (retired, or past [bundle]
 * retention) would cut every agent off. Refused unless forced with a reason;
 * a dry run says so the same way. 0 to go on, -1 with the refusal in reply.
 */
static int
rpc_rotate_restore_gate(struct rpc_ctx *ctx, const Carotate__V1__RestoreRequest *q,
    Carotate__V1__RotateReply *r, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	const char *ca = r->after->ca != NULL ? r->after->ca->sha256 : "";
	struct bundle b;
	char err[256];
	size_t i;
	int trusted = 0;

	if (bundle_derive(conf, time(NULL), &b, err, sizeof(err)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL,
		    "cannot derive the trust bundle: %s", err);
		return -1;
	}
	for (i = 0; i < b.n; i++)
		trusted |= strcmp(b.cas[i].sha256, ca) == 0;
	bundle_clear(&b);
	if (trusted)
		return 0;
	if (q->force) {
		r->forced = 1;
		log_info("restore of %s forced although its CA %s is not in the trust bundle: %s",
		    r->restored, ca, q->reason);
		return 0;
	}
	reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
	    "%s%s holds CA %s, which is not in the trust bundle agents hold (retired, or older "
	    "than [bundle] retention): restoring it would cut them off (restore --force "
	    "--reason TEXT restores anyway)",
	    q->dry_run ? "dry run: the restore would be refused: " : "", r->restored,
	    ca[0] != '\0' ? ca : "(unreadable)");
	return -1;
}

/* The call goes ahead: it takes the reply's RotateReply (before and after are described). */
static struct rpc_rotate_call *
rpc_rotate_call_new(struct rpc_ctx *ctx, Carotate__V1__Response *reply)
{
	struct rpc_rotate_call *c = xcalloc(1, sizeof(*c));

	c->ctx = ctx;
	c->cd = ctx->cd;
	c->reply = reply->result_case == CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY
	               ? reply->restore_reply
	               : reply->rotate_reply;
	reply->rotate_reply = reply->restore_reply = NULL;
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT__NOT_SET;
	return c;
}

static void
rpc_rotate_call_free(struct rpc_rotate_call *c)
{
	if (c->reply != NULL)
		protobuf_c_message_free_unpacked(&c->reply->base, NULL);
	audit_call_free(c->audit);
	free(c);
}

/* The swap is done: the answer waits for the check; the record goes into the note. */
static void
rpc_rotate_begin(void *arg)
{
	struct rpc_rotate_call *c = arg;

	c->pending = op_defer(c->ctx);
	c->audit = op_take_audit(c->cd, c->pending);
	c->ctx = NULL;
}

static int
rpc_rotate_save(void *arg, char *buf, size_t len)
{
	struct rpc_rotate_call *c = arg;

	return c->audit != NULL ? audit_call_save(c->audit, buf, len) : 0;
}

/* A call a stop cut short: no client waits; its record is the one the note kept. */
static void *
rpc_rotate_load(struct carotated *cd, const char *text)
{
	struct rpc_rotate_call *c = xcalloc(1, sizeof(*c));

	c->cd = cd;
	c->reply = rpc_rotate_reply_new();
	c->audit = audit_call_load(cd, text);
	return c;
}

/* The engine's outcome into the reply, which takes its heap parts. */
static void
rpc_rotate_take(Carotate__V1__RotateReply *r, struct rotation_result *res)
{
	if (r->backup != protobuf_c_empty_string)
		free(r->backup);
	r->backup = xstrdup(res->backup);
	if (r->restored[0] == '\0' && res->restored[0] != '\0') {
		if (r->restored != protobuf_c_empty_string)
			free(r->restored);
		r->restored = xstrdup(res->restored);
	}
	r->forced = res->forced;
	if (res->reload != NULL) {
		if (r->reload != NULL)
			protobuf_c_message_free_unpacked(&r->reload->base, NULL);
		r->reload = res->reload;
	}
	if (res->served != NULL) {
		if (r->served != protobuf_c_empty_string)
			free(r->served);
		r->served = res->served;
	}
	r->verified = res->verified;
	r->rolled_back = res->rolled_back;
	r->rotate_ms = res->rotate_ms;
	r->pruned = res->pruned;
	r->n_pruned = res->n_pruned;
	res->reload = NULL;
	res->served = NULL;
	res->pruned = NULL;
	res->n_pruned = 0;
}

/*
 * The answer: the set now live and the bundle, the audit record closed, the
 * note dropped, then the next state change may start. A stop (res->abandoned)
 * only tells the client: the note and its record stay for the next start.
 */
static void
rpc_rotate_done(struct rotation_result *res, void *arg)
{
	struct rpc_rotate_call *c = arg;
	Carotate__V1__RotateReply *r = c->reply;
	const struct config *conf = c->cd->conf;
	Carotate__V1__Response *reply;
	time_t now = time(NULL);
	struct bundle b;
	char err[256];
	X509 *ca;

	rpc_rotate_take(r, res);
	if (res->abandoned) {
		if (c->pending != NULL) {
			reply = reply_new();
			reply_error(reply, res->status, "%s", res->message);
			op_complete(c->cd, c->pending, reply);
		}
		rpc_rotate_call_free(c);
		return;
	}
	reply = reply_new();
	if (r->after != NULL)
		protobuf_c_message_free_unpacked(&r->after->base, NULL);
	r->after = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	if (bundle_derive(conf, now, &b, err, sizeof(err)) == 0)
		r->bundle = bundle_describe(&b, ssldir_published(conf, b.pem, b.pem_len));
	bundle_clear(&b);
	agents_check_canary(c->cd);
	reply_error(reply, res->status, "%s", res->message);
	rpc_rotate_attach(reply, res->call, r);
	c->reply = NULL;
	audit_call_end(c->audit, reply);
	c->audit = NULL;
	rpc_rotate_op_forget(c->cd, res->call);
	op_finish(c->cd, c->pending, reply);
	rpc_rotate_call_free(c);
}

void
rpc_rotate_abandon(void)
{
	rpc_rotate_op_abandon();
}

int
rpc_rotate_resume(struct carotated *cd)
{
	return rpc_rotate_op_resume(cd, &rpc_rotate_hooks);
}
