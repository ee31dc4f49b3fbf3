/*
 * The audit log. dispatch_run opens a record for every admin call, refused or
 * not, with who asked and the sets on disk; the record is closed when the
 * reply is sent, with the result and the sets after, and written to syslog
 * and to the ledger's hash chain. Whatever a client sent is sanitized and
 * cut before it reaches either: clients are not trusted to write our logs.
 */
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit.h"
#include "carotated.h"
#include "certset.h"
#include "clock.h"
#include "config.h"
#include "ledger.h"
#include "log.h"
#include "pki.h"
#include "ssldir.h"
#include "status.h"
#include "xmalloc.h"

#define AUDIT_MAX_ID       96  /* bytes of a sanitized agent or backup id (64 valid ones fit) */
#define AUDIT_MAX_REASON   320 /* bytes of a sanitized reason (256 printable ones fit) */
#define AUDIT_MAX_TEXT     64  /* bytes of other client strings (key type, CA name) */
#define AUDIT_MAX_HELD     16  /* records held before the ledger is open */
#define AUDIT_PWBUF        8192
#define AUDIT_NO_UID       0xffffffffu
#define AUDIT_MAX_COALESCE 64 /* refusals counted at once; beyond, each is recorded alone */

/* One audited call between its start and its reply. */
struct audit_call {
	struct carotated *cd; /* cd->conf may be replaced (SIGHUP) meanwhile: not kept */
	struct ledger_audit rec;
};

/* The lines audit_call_note adds to the record's: the sets before and as the call means them. */
struct audit_note {
	char unchanged[LEDGER_AUDIT_MAX_STATE + 1];
	char expect[LEDGER_AUDIT_MAX_STATE + 1];
};

/*
 * Refusals of one uid, call and result, counted from the record of the first
 * until the interval ([daemon] audit_coalesce) ends: a loop of refused calls
 * must not fill the state directory nor stall the loop with synced writes.
 */
struct audit_refusal {
	struct carotated *cd; /* NULL: the slot is free */
	struct event *ev;     /* ends the interval (none without an event base) */
	long long until;      /* clock_ms() at which the interval ends */
	uint64_t first_seq;   /* the record of the interval's first refusal */
	uint64_t count;       /* refusals since that record, not yet written */
	int status;
	struct ledger_audit last; /* the latest of them: uid, user, pid, call, detail */
};

static struct ledger_audit audit_held[AUDIT_MAX_HELD];
static size_t audit_nheld;
static struct audit_refusal audit_refusals[AUDIT_MAX_COALESCE];

static void audit_user(uid_t, char *, size_t);
static void audit_arg(char *, size_t, const char *, ...) __attribute__((format(printf, 3, 4)));
static void audit_arg_str(char *, size_t, const char *, const char *, size_t);
static const char *audit_yes(int);
static void audit_outcome(const Carotate__V1__Response *, char *, size_t);
static void audit_reload(const Carotate__V1__ReloadResult *, char *, size_t);
static void audit_commit(struct carotated *, struct ledger_audit *);
static void audit_call_fill(struct audit_call *, const Carotate__V1__Response *);
static struct audit_refusal *audit_refusal_find(uint32_t, const char *, int);
static void audit_refusal_begin(struct carotated *, const struct ledger_audit *, int);
static void audit_refusal_write(struct audit_refusal *);
static void audit_refusal_timer(evutil_socket_t, short, void *);
static void audit_hold(struct ledger_audit *);
static void audit_member(const struct config *, struct ledger_audit *);
static void audit_syslog(const struct ledger_audit *, const char *);
static int audit_newest(struct ledger *, struct ledger_audit *);
static void audit_keep(const struct ledger_audit *, void *);
static void audit_load_line(struct ledger_audit *, struct audit_note *, const char *);
static struct audit_call *audit_call_parse(struct carotated *, const char *, struct audit_note *);
static void audit_load_text(char *, size_t, const char *);
static int audit_same_call(const struct ledger_audit *, const struct ledger_audit *);
static void audit_append(char *, size_t, const char *);

void
audit_sanitize(char *dst, size_t len, const char *src)
{
	const unsigned char *p = (const unsigned char *)(src != NULL ? src : "");
	size_t o = 0, mark = 0, need;
	char esc[8];

	if (len == 0)
		return;
	for (; *p != '\0'; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			need = (size_t)snprintf(esc, sizeof(esc), "%c", *p);
		else
			need = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
		if (o + need >= len)
			break;
		memcpy(dst + o, esc, need);
		o += need;
		if (o + 3 < len)
			mark = o; /* "..." still fits after this much */
	}
	if (*p != '\0' && len > 3) {
		o = mark;
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

void
audit_fingerprint(const struct config *conf, char *buf, size_t len)
{
	char ca[PKI_SHA256_HEX], srv[PKI_SHA256_HEX], staged[PKI_SHA256_HEX];

	certset_fingerprints(conf, 0, ca, srv);
	certset_fingerprints(conf, 1, staged, NULL);
	snprintf(buf, len, "active=%s/%s staged=%s", ca, srv, staged);
}

/* The peer's user name ("" when the uid has none); from NSS, so sanitized like client text. */
static void
audit_user(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char *tmp = xmalloc(AUDIT_PWBUF);

	if (getpwuid_r(uid, &pw, tmp, AUDIT_PWBUF, &res) == 0 && res != NULL)
		audit_sanitize(buf, len, pw.pw_name);
	else
		buf[0] = '\0';
	free(tmp);
}

/* Appends one argument, space-separated. */
static void
audit_arg(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n > 0 && n + 1 < len)
		buf[n++] = ' ';
	buf[n] = '\0';
	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* Appends key="value" with a client's string sanitized and cut to max bytes. */
static void
audit_arg_str(char *buf, size_t len, const char *key, const char *s, size_t max)
{
	char v[AUDIT_MAX_REASON + 1];

	audit_sanitize(v, max + 1 < sizeof(v) ? max + 1 : sizeof(v), s);
	audit_arg(buf, len, "%s=\"%s\"", key, v);
}

static const char *
audit_yes(int b)
{
	return b ? "yes" : "no";
}

/*
 * What a call asks for, as far as an auditor needs it. Key material (install)
 * is never described. A call not named here is recorded with its result and
 * message only.
 */
void
audit_describe(const Carotate__V1__Request *req, char *buf, size_t len)
{
	const Carotate__V1__GenerateRequest *g = req->generate;
	const Carotate__V1__RotateRequest *ro = req->rotate;
	const Carotate__V1__RestoreRequest *re = req->restore;

	buf[0] = '\0';
	switch (req->call_case) {
	case CAROTATE__V1__REQUEST__CALL_GENERATE:
		if (g == NULL)
			break;
		audit_arg_str(buf, len, "key_type",
		    g->key_type[0] != '\0' ? g->key_type : "ec-p256", AUDIT_MAX_TEXT);
		if (g->ca_days != 0)
			audit_arg(buf, len, "ca_days=%u", g->ca_days);
		if (g->server_days != 0)
			audit_arg(buf, len, "server_days=%u", g->server_days);
		if (g->name[0] != '\0')
			audit_arg_str(buf, len, "name", g->name, AUDIT_MAX_TEXT);
		if (g->n_sans > 0)
			audit_arg(buf, len, "sans=%zu", g->n_sans);
		break;
	case CAROTATE__V1__REQUEST__CALL_EXCLUDE:
		if (req->exclude == NULL)
			break;
		audit_arg_str(buf, len, "agent", req->exclude->agent, AUDIT_MAX_ID);
		audit_arg_str(buf, len, "reason", req->exclude->reason, AUDIT_MAX_REASON);
		break;
	case CAROTATE__V1__REQUEST__CALL_INCLUDE:
		if (req->include != NULL)
			audit_arg_str(buf, len, "agent", req->include->agent, AUDIT_MAX_ID);
		break;
	case CAROTATE__V1__REQUEST__CALL_FORGET:
		if (req->forget == NULL)
			break;
		if (req->forget->never_confirmed)
			audit_arg(buf, len, "never_confirmed=yes older_than=%llu",
			    (unsigned long long)req->forget->older_than);
		else
			audit_arg_str(buf, len, "agent", req->forget->agent, AUDIT_MAX_ID);
		break;
	case CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_CREATE:
		/* Never the token: it exists only in the reply. */
		if (req->join_token_create == NULL)
			break;
		audit_arg(buf, len, "uses=%u ttl=%llu", req->join_token_create->uses,
		    (unsigned long long)req->join_token_create->ttl);
		audit_arg_str(
		    buf, len, "description", req->join_token_create->description, AUDIT_MAX_REASON);
		break;
	case CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_REVOKE:
		if (req->join_token_revoke != NULL)
			audit_arg_str(buf, len, "id", req->join_token_revoke->id, AUDIT_MAX_ID);
		break;
	case CAROTATE__V1__REQUEST__CALL_ROTATE:
		if (ro == NULL)
			break;
		audit_arg(
		    buf, len, "force=%s dry_run=%s", audit_yes(ro->force), audit_yes(ro->dry_run));
		if (ro->reason[0] != '\0')
			audit_arg_str(buf, len, "reason", ro->reason, AUDIT_MAX_REASON);
		if (ro->expect_ca[0] != '\0')
			audit_arg_str(buf, len, "expect_ca", ro->expect_ca, AUDIT_MAX_TEXT);
		break;
	case CAROTATE__V1__REQUEST__CALL_RESTORE:
		if (re == NULL)
			break;
		if (re->latest)
			audit_arg(buf, len, "backup=latest");
		if (re->backup[0] != '\0' || !re->latest)
			audit_arg_str(buf, len, "backup", re->backup, AUDIT_MAX_ID);
		audit_arg(buf, len, "dry_run=%s", audit_yes(re->dry_run));
		if (re->force)
			audit_arg(buf, len, "force=yes");
		if (re->reason[0] != '\0')
			audit_arg_str(buf, len, "reason", re->reason, AUDIT_MAX_REASON);
		break;
	case CAROTATE__V1__REQUEST__CALL_RENEW:
		/* Which kind of renewal, never the files' bytes: a key may be among them. */
		if (req->renew == NULL)
			break;
		audit_arg(buf, len, "dry_run=%s custom=%s", audit_yes(req->renew->dry_run),
		    audit_yes(req->renew->cert.len > 0));
		if (req->renew->server_days != 0)
			audit_arg(buf, len, "server_days=%u", req->renew->server_days);
		if (req->renew->if_due)
			audit_arg(buf, len, "if_due=yes");
		if (req->renew->if_expires_within != 0)
			audit_arg(buf, len, "if_expires_within=%llu",
			    (unsigned long long)req->renew->if_expires_within);
		break;
	case CAROTATE__V1__REQUEST__CALL_RETIRE:
		if (req->retire != NULL)
			audit_arg(buf, len, "dry_run=%s", audit_yes(req->retire->dry_run));
		break;
	default:
		break;
	}
}

static void
audit_reload(const Carotate__V1__ReloadResult *rr, char *buf, size_t len)
{
	if (rr != NULL)
		audit_arg(buf, len, "reload=%s", !rr->ran ? "not-run" : rr->ok ? "ok" : "failed");
}

/* What the reply says happened beyond its message: where sets went, whether the proxy took them. */
static void
audit_outcome(const Carotate__V1__Response *reply, char *buf, size_t len)
{
	const Carotate__V1__RotateReply *ro = NULL;
	const Carotate__V1__StageReply *st = NULL;

	switch (reply->result_case) {
	case CAROTATE__V1__RESPONSE__RESULT_GENERATE_REPLY:
		st = reply->generate_reply;
		break;
	case CAROTATE__V1__RESPONSE__RESULT_INSTALL_REPLY:
		st = reply->install_reply;
		break;
	case CAROTATE__V1__RESPONSE__RESULT_DISCARD_REPLY:
		st = reply->discard_reply;
		break;
	case CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY:
		ro = reply->rotate_reply;
		break;
	case CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY:
		ro = reply->restore_reply;
		break;
	case CAROTATE__V1__RESPONSE__RESULT_RENEW_REPLY:
		/*
		 * Only a renewal that swapped (its backup made) carries an outcome: a
		 * skipped, refused or dry-run one changed nothing for check to judge.
		 */
		ro = reply->renew_reply;
		if (ro != NULL && ro->skipped)
			audit_arg(buf, len, "skipped=yes");
		if (ro != NULL && (ro->backup == NULL || ro->backup[0] == '\0'))
			return;
		break;
	case CAROTATE__V1__RESPONSE__RESULT_FORGET_REPLY:
		if (reply->forget_reply != NULL)
			audit_arg(buf, len, "forgotten=%llu",
			    (unsigned long long)reply->forget_reply->forgotten);
		return;
	case CAROTATE__V1__RESPONSE__RESULT_JOIN_TOKEN_CREATE_REPLY:
		if (reply->join_token_create_reply != NULL &&
		    reply->join_token_create_reply->join_token != NULL)
			audit_arg_str(buf, len, "id",
			    reply->join_token_create_reply->join_token->id, AUDIT_MAX_ID);
		return;
	case CAROTATE__V1__RESPONSE__RESULT_RETIRE_REPLY:
		if (reply->retire_reply != NULL)
			audit_arg(buf, len, "retired=%zu", reply->retire_reply->n_retired);
		return;
	default:
		return;
	}
	if (st != NULL) {
		if (st->kept_as != NULL && st->kept_as[0] != '\0')
			audit_arg_str(buf, len, "kept_as", st->kept_as, AUDIT_MAX_ID);
		audit_reload(st->reload, buf, len);
	}
	if (ro == NULL)
		return;
	if (ro->backup != NULL && ro->backup[0] != '\0')
		audit_arg_str(buf, len, "backup_made", ro->backup, AUDIT_MAX_ID);
	if (ro->restored != NULL && ro->restored[0] != '\0')
		audit_arg_str(buf, len, "restored", ro->restored, AUDIT_MAX_ID);
	if (ro->forced)
		audit_arg(buf, len, "forced=yes");
	audit_reload(ro->reload, buf, len);
	if (!ro->dry_run)
		audit_arg(buf, len, "verified=%s rolled_back=%s", audit_yes(ro->verified),
		    audit_yes(ro->rolled_back));
}

struct audit_call *
audit_call_start(struct carotated *cd, const char *call, const struct acl_peer *peer,
    const Carotate__V1__Request *req)
{
	struct audit_call *ac = xcalloc(1, sizeof(*ac));

	ac->cd = cd;
	ac->rec.uid = AUDIT_NO_UID;
	if (peer != NULL) {
		ac->rec.uid = (uint32_t)peer->uid;
		ac->rec.pid = peer->pid > 0 ? (uint32_t)peer->pid : 0;
		audit_user(peer->uid, ac->rec.user, sizeof(ac->rec.user));
	}
	audit_sanitize(ac->rec.call, sizeof(ac->rec.call), call);
	audit_describe(req, ac->rec.detail, sizeof(ac->rec.detail));
	audit_fingerprint(cd->conf, ac->rec.before, sizeof(ac->rec.before));
	return ac;
}

/* The record of a call whose reply is final: result, outcome, message, sets after. */
static void
audit_call_fill(struct audit_call *ac, const Carotate__V1__Response *reply)
{
	struct ledger_audit *r = &ac->rec;
	size_t n;

	r->time = time(NULL);
	snprintf(r->result, sizeof(r->result), "%s", status_record_name(reply->status));
	audit_outcome(reply, r->detail, sizeof(r->detail));
	if (reply->message != NULL && reply->message[0] != '\0') {
		n = strlen(r->detail);
		if (n > 0 && n + 2 < sizeof(r->detail)) {
			memcpy(r->detail + n, "; ", 2);
			n += 2;
		}
		audit_sanitize(r->detail + n, sizeof(r->detail) - n, reply->message);
	}
	audit_fingerprint(ac->cd->conf, r->after, sizeof(r->after));
}

void
audit_call_end(struct audit_call *ac, const Carotate__V1__Response *reply)
{
	if (ac == NULL)
		return;
	audit_call_fill(ac, reply);
	audit_commit(ac->cd, &ac->rec);
	free(ac);
}

void
audit_call_free(struct audit_call *ac)
{
	free(ac);
}

int
audit_call_save(const struct audit_call *ac, char *buf, size_t len)
{
	const struct ledger_audit *r = &ac->rec;
	size_t n = strlen(buf);
	int w;

	/* Every string was sanitized when the record was opened: no newline in any. */
	w = snprintf(buf + n, len - n,
	    "audit.uid %lu\naudit.pid %lu\naudit.user %s\naudit.call %s\naudit.detail %s\n"
	    "audit.before %s\n",
	    (unsigned long)r->uid, (unsigned long)r->pid, r->user, r->call, r->detail, r->before);
	if (w < 0 || (size_t)w >= len - n) {
		buf[n] = '\0';
		return -1;
	}
	return 0;
}

/* One "audit.KEY value" line into rec (or note, when given); other lines are not ours. */
static void
audit_load_line(struct ledger_audit *r, struct audit_note *note, const char *line)
{
	const char *v = strchr(line, ' ');
	unsigned long u;
	char *end;

	if (strncmp(line, "audit.", 6) != 0 || v == NULL)
		return;
	v++;
	if (strncmp(line, "audit.uid ", 10) == 0 || strncmp(line, "audit.pid ", 10) == 0) {
		errno = 0;
		u = strtoul(v, &end, 10);
		if (errno != 0 || *end != '\0' || u > 0xffffffffUL)
			return;
		if (line[6] == 'u')
			r->uid = (uint32_t)u;
		else
			r->pid = (uint32_t)u;
	} else if (strncmp(line, "audit.user ", 11) == 0)
		audit_load_text(r->user, sizeof(r->user), v);
	else if (strncmp(line, "audit.call ", 11) == 0)
		audit_load_text(r->call, sizeof(r->call), v);
	else if (strncmp(line, "audit.detail ", 13) == 0)
		audit_load_text(r->detail, sizeof(r->detail), v);
	else if (strncmp(line, "audit.before ", 13) == 0)
		audit_load_text(r->before, sizeof(r->before), v);
	else if (note != NULL && strncmp(line, "audit.unchanged ", 16) == 0)
		audit_load_text(note->unchanged, sizeof(note->unchanged), v);
	else if (note != NULL && strncmp(line, "audit.expect ", 13) == 0)
		audit_load_text(note->expect, sizeof(note->expect), v);
}

/*
 * Text saved already sanitized (its quotes are ours, from audit_arg_str): copied
 * as it is, but anything outside printable ASCII becomes '?'.
 */
static void
audit_load_text(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

struct audit_call *
audit_call_load(struct carotated *cd, const char *text)
{
	return audit_call_parse(cd, text, NULL);
}

/* The record saved in text (NULL when it holds none), and the note's own lines when note. */
static struct audit_call *
audit_call_parse(struct carotated *cd, const char *text, struct audit_note *note)
{
	struct audit_call *ac = xcalloc(1, sizeof(*ac));
	char *copy = xstrdup(text), *line, *save = NULL;

	ac->cd = cd;
	ac->rec.uid = AUDIT_NO_UID;
	if (note != NULL)
		note->unchanged[0] = note->expect[0] = '\0';
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		audit_load_line(&ac->rec, note, line);
	free(copy);
	if (ac->rec.call[0] == '\0') {
		free(ac);
		return NULL;
	}
	return ac;
}

int
audit_call_note(const struct audit_call *ac, const char *staged, char *buf, size_t len)
{
	char now[LEDGER_AUDIT_MAX_STATE + 1];
	size_t n, a;
	int w;

	if (audit_call_save(ac, buf, len) == -1)
		return -1;
	audit_fingerprint(ac->cd->conf, now, sizeof(now));
	a = strcspn(now, " ");
	n = strlen(buf);
	w = snprintf(buf + n, len - n, "audit.unchanged %s\naudit.expect %.*s staged=%s\n", now,
	    (int)a, now, staged);
	if (w < 0 || (size_t)w >= len - n) {
		buf[n] = '\0';
		return -1;
	}
	return 0;
}

/* Whether the newest record, last, is the call rec opened (same caller, call and sets before). */
static int
audit_same_call(const struct ledger_audit *last, const struct ledger_audit *rec)
{
	return last->uid == rec->uid && last->pid == rec->pid &&
	       strcmp(last->call, rec->call) == 0 && strcmp(last->user, rec->user) == 0 &&
	       strcmp(last->before, rec->before) == 0;
}

/* Appends "; " and text (ours, not a client's) to a record's detail, cut to fit. */
static void
audit_append(char *detail, size_t len, const char *text)
{
	size_t n = strlen(detail);

	if (n > 0 && n + 2 < len) {
		memcpy(detail + n, "; ", 2);
		n += 2;
	}
	audit_sanitize(detail + n, len - n, text);
}

int
audit_call_settle(struct carotated *cd, const char *text)
{
	struct audit_note note;
	struct audit_call *ac = audit_call_parse(cd, text, &note);
	char now[LEDGER_AUDIT_MAX_STATE + 1];
	struct ledger_audit *r, last;
	int status;

	if (ac == NULL)
		return 0;
	r = &ac->rec;
	audit_fingerprint(cd->conf, now, sizeof(now));
	if (cd->ledger != NULL && audit_newest(cd->ledger, &last) == 1 &&
	    audit_same_call(&last, r)) {
		/* Recorded, then stopped before the note went: once is enough. */
		free(ac);
		return 0;
	}
	if (note.expect[0] != '\0' && strcmp(now, note.expect) == 0) {
		status = CAROTATE__V1__STATUS__OK;
		audit_append(r->detail, sizeof(r->detail),
		    "the sets changed as the call meant to; carotated stopped before it "
		    "answered (the reply was cut short), and recorded it at its next start");
	} else if (note.unchanged[0] != '\0' && strcmp(now, note.unchanged) == 0) {
		/*
		 * Recorded all the same: the caller got no answer, and this record
		 * is what says the call reached carotated and changed nothing.
		 */
		status = CAROTATE__V1__STATUS__UNAVAILABLE;
		audit_append(r->detail, sizeof(r->detail),
		    "interrupted: carotated stopped before the call changed the sets; nothing "
		    "changed");
	} else {
		log_warnx("%s by uid %lu (pid %lu) was cut short by a stop, and the sets are "
		          "neither as it found them nor as it meant to leave them",
		    r->call, (unsigned long)r->uid, (unsigned long)r->pid);
		free(ac);
		return 0;
	}
	r->time = time(NULL);
	snprintf(r->result, sizeof(r->result), "%s", status_record_name(status));
	snprintf(r->after, sizeof(r->after), "%s", now);
	audit_commit(cd, r);
	free(ac);
	return 1;
}

/* The open interval of uid, call and status, or NULL. */
static struct audit_refusal *
audit_refusal_find(uint32_t uid, const char *call, int status)
{
	size_t i;

	for (i = 0; i < AUDIT_MAX_COALESCE; i++) {
		struct audit_refusal *e = &audit_refusals[i];

		if (e->cd != NULL && e->last.uid == uid && e->status == status &&
		    strcmp(e->last.call, call) == 0)
			return e;
	}
	return NULL;
}

void
audit_refusal(struct carotated *cd, const char *call, const struct acl_peer *peer,
    const Carotate__V1__Request *req, const Carotate__V1__Response *reply)
{
	uint32_t uid = peer != NULL ? (uint32_t)peer->uid : AUDIT_NO_UID;
	char name[LEDGER_AUDIT_MAX_CALL + 1], msg[LEDGER_AUDIT_MAX_DETAIL + 1];
	struct audit_refusal *e;
	struct audit_call *ac;
	size_t n;

	audit_sanitize(name, sizeof(name), call);
	if ((e = audit_refusal_find(uid, name, reply->status)) != NULL) {
		if (clock_ms() < e->until) {
			/* Counted; the latest refusal's pid and arguments go in the summary. */
			e->count++;
			e->last.pid = peer != NULL && peer->pid > 0 ? (uint32_t)peer->pid : 0;
			audit_describe(req, e->last.detail, sizeof(e->last.detail));
			n = strlen(e->last.detail);
			audit_sanitize(msg, sizeof(msg), reply->message);
			snprintf(e->last.detail + n, sizeof(e->last.detail) - n, "%s%s",
			    n > 0 && msg[0] != '\0' ? "; " : "", msg);
			return;
		}
		/* Over, and its timer has not run yet: close it before a new one opens. */
		audit_refusal_write(e);
	}
	ac = audit_call_start(cd, call, peer, req);
	audit_call_fill(ac, reply);
	audit_commit(cd, &ac->rec);
	audit_refusal_begin(cd, &ac->rec, reply->status);
	free(ac);
}

/* Opens the interval that rec, just recorded, starts; with no free slot, none. */
static void
audit_refusal_begin(struct carotated *cd, const struct ledger_audit *rec, int status)
{
	struct timeval tv = { (time_t)cd->conf->audit_coalesce, 0 };
	struct audit_refusal *e = NULL;
	size_t i;

	for (i = 0; i < AUDIT_MAX_COALESCE && e == NULL; i++)
		if (audit_refusals[i].cd == NULL)
			e = &audit_refusals[i];
	if (e == NULL || rec->seq == 0)
		return; /* every slot busy, or not in the ledger: the next is recorded alone */
	memset(e, 0, sizeof(*e));
	e->cd = cd;
	e->last = *rec;
	e->status = status;
	e->first_seq = rec->seq;
	e->until = clock_ms() + (long long)cd->conf->audit_coalesce * 1000;
	if (cd->base != NULL) {
		if ((e->ev = evtimer_new(cd->base, audit_refusal_timer, e)) == NULL)
			fatalx("%s: evtimer_new", __func__);
		evtimer_add(e->ev, &tv);
	}
}

/*
 * Closes an interval: the refusals counted since its first record, if any,
 * become one record whose detail starts "count=N" (audit_count reads it back),
 * in the hash chain like any other. Frees the slot.
 */
static void
audit_refusal_write(struct audit_refusal *e)
{
	struct ledger_audit rec = e->last;
	size_t n, tail;

	if (e->ev != NULL)
		event_free(e->ev);
	if (e->count > 0) {
		/* The count first, so that a detail cut to size still says it. */
		n = (size_t)snprintf(rec.detail, sizeof(rec.detail),
		    "count=%llu refusals since record %llu, the last: ",
		    (unsigned long long)e->count, (unsigned long long)e->first_seq);
		tail = strlen(e->last.detail);
		if (tail > sizeof(rec.detail) - 1 - n)
			tail = sizeof(rec.detail) - 1 - n;
		memcpy(rec.detail + n, e->last.detail, tail);
		rec.detail[n + tail] = '\0';
		rec.time = time(NULL);
		audit_fingerprint(e->cd->conf, rec.before, sizeof(rec.before));
		snprintf(rec.after, sizeof(rec.after), "%s", rec.before);
		rec.seq = 0;
		rec.prev_hash[0] = rec.hash[0] = '\0';
		audit_commit(e->cd, &rec);
	}
	memset(e, 0, sizeof(*e));
}

static void
audit_refusal_timer(evutil_socket_t fd, short events, void *arg)
{
	audit_refusal_write(arg);
}

void
audit_flush(void)
{
	size_t i;

	for (i = 0; i < AUDIT_MAX_COALESCE; i++)
		if (audit_refusals[i].cd != NULL)
			audit_refusal_write(&audit_refusals[i]);
}

uint64_t
audit_count(const char *detail)
{
	unsigned long long n;
	char *end;

	if (strncmp(detail, "count=", 6) != 0 || detail[6] < '1' || detail[6] > '9')
		return 1;
	errno = 0;
	n = strtoull(detail + 6, &end, 10);
	if (errno != 0 || strncmp(end, " refusals since record ", 23) != 0)
		return 1;
	return n;
}

void
audit_event(struct carotated *cd, const char *call, Carotate__V1__Status status, const char *before,
    const char *after, const char *fmt, ...)
{
	struct ledger_audit rec;
	char detail[LEDGER_AUDIT_MAX_DETAIL + 1];
	va_list ap;

	memset(&rec, 0, sizeof(rec));
	rec.time = time(NULL);
	rec.uid = (uint32_t)getuid();
	snprintf(rec.user, sizeof(rec.user), "%s", AUDIT_DAEMON_USER);
	audit_sanitize(rec.call, sizeof(rec.call), call);
	snprintf(rec.result, sizeof(rec.result), "%s", status_record_name(status));
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	audit_sanitize(rec.detail, sizeof(rec.detail), detail);
	if (before != NULL)
		audit_sanitize(rec.before, sizeof(rec.before), before);
	if (after != NULL)
		audit_sanitize(rec.after, sizeof(rec.after), after);
	else
		audit_fingerprint(cd->conf, rec.after, sizeof(rec.after));
	audit_commit(cd, &rec);
}

/* One line per record; seq is "held" or "none" when the record is not (yet) in the ledger. */
static void
audit_syslog(const struct ledger_audit *r, const char *seq)
{
	char num[24];

	if (seq == NULL) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)r->seq);
		seq = num;
	}
	log_notice("audit: seq=%s hash=%s uid=%lu user=%s pid=%lu call=%s result=%s "
	           "before=\"%s\" after=\"%s\" detail=%s",
	    seq, r->hash[0] != '\0' ? r->hash : "-", (unsigned long)r->uid, r->user,
	    (unsigned long)r->pid, r->call, r->result, r->before, r->after, r->detail);
}

/* Into the chain; held while the ledger is not open. before "" is the state last recorded. */
static void
audit_commit(struct carotated *cd, struct ledger_audit *rec)
{
	struct ledger *l = cd->ledger;
	struct ledger_audit last;

	if (l == NULL) {
		audit_hold(rec);
		return;
	}
	if (rec->before[0] == '\0')
		snprintf(rec->before, sizeof(rec->before), "%s",
		    audit_newest(l, &last) == 1 ? last.after : "-");
	audit_member(cd->conf, rec);
	if (ledger_audit_append(l, rec) == -1) {
		rec->hash[0] = '\0';
		audit_syslog(rec, "none");
		log_warnx("audit: the record above could NOT be written to the audit log in %s/%s; "
		          "it is in the system log only",
		    cd->conf->state_dir, LEDGER_FILE);
		return;
	}
	audit_syslog(rec, NULL);
}

/*
 * A pool's members share one chain: each record names, as its detail's first argument, the
 * member that wrote it, so that the hash covers who acted where. The argument goes before
 * the others ("member=a reason=..."), or before "; " and a detail that holds only a message.
 */
static void
audit_member(const struct config *conf, struct ledger_audit *rec)
{
	char pre[sizeof("member=; ") + CONFIG_MEMBER_MAX];
	const char *d = rec->detail, *sep;
	size_t n, dl, room = sizeof(rec->detail) - 1;
	int w;

	if (conf->ledger_backend != CONFIG_LEDGER_POSTGRESQL || conf->ledger_member == NULL ||
	    strncmp(d, "member=", 7) == 0)
		return;
	if (d[0] == '\0')
		sep = "";
	else if (d[strcspn(d, "= ;\"")] == '=')
		sep = " ";
	else
		sep = "; ";
	w = snprintf(pre, sizeof(pre), "member=%s%s", conf->ledger_member, sep);
	if (w < 0 || (size_t)w >= sizeof(pre))
		return; /* config.c caps the name: not reached */
	n = (size_t)w;
	if ((dl = strlen(d)) > room - n)
		dl = room - n; /* the end of an over-long detail goes, as audit_append cuts */
	memmove(rec->detail + n, rec->detail, dl);
	memcpy(rec->detail, pre, n);
	rec->detail[n + dl] = '\0';
}

static void
audit_hold(struct ledger_audit *rec)
{
	audit_syslog(rec, "held");
	if (audit_nheld == AUDIT_MAX_HELD) {
		log_warnx("audit: %d records wait for the ledger to open; the one above is in the "
		          "system log only",
		    AUDIT_MAX_HELD);
		return;
	}
	audit_held[audit_nheld++] = *rec;
}

void
audit_start(struct carotated *cd)
{
	size_t i, n = audit_nheld;

	if (cd->ledger == NULL)
		return;
	audit_nheld = 0;
	for (i = 0; i < n; i++)
		audit_commit(cd, &audit_held[i]);
	audit_adopt(cd);
}

static void
audit_keep(const struct ledger_audit *a, void *arg)
{
	*(struct ledger_audit *)arg = *a;
}

/* The newest record: 1, 0 when the log is empty, -1 on error. */
static int
audit_newest(struct ledger *l, struct ledger_audit *last)
{
	last->seq = 0;
	if (ledger_audit_list(l, 0, 1, audit_keep, last) == -1)
		return -1;
	return last->seq != 0;
}

void
audit_adopt(struct carotated *cd)
{
	struct ledger *l = cd->ledger;
	struct ledger_audit last;
	char now[LEDGER_AUDIT_MAX_STATE + 1];
	size_t a, b;
	int active, staged;

	if (l == NULL || cd->resuming || audit_newest(l, &last) != 1)
		return;
	audit_fingerprint(cd->conf, now, sizeof(now));
	if (strcmp(now, last.after) == 0)
		return;
	a = strcspn(now, " ");
	b = strcspn(last.after, " ");
	active = a != b || strncmp(now, last.after, a) != 0;
	staged = strcmp(now + a, last.after + b) != 0;
	audit_event(cd, "adopt", CAROTATE__V1__STATUS__OK, last.after, now,
	    "the %s changed outside carotated since audit record %llu; adopted as found",
	    active && staged ? "active and staged sets"
	    : active         ? "active set"
	                     : "staged set",
	    (unsigned long long)last.seq);
}
