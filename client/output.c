/* carotatectl output: the human block and the JSON object for each reply. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "output.h"
#include "xmalloc.h"

#define OUTPUT_LABEL_WIDTH 13
#define OUTPUT_DAY         86400
/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what RFC 3339 can spell. */
#define OUTPUT_TIME_MIN (-62167219200LL)
#define OUTPUT_TIME_MAX 253402300799LL
#define OUTPUT_ABBREV   16 /* hex digits of a fingerprint shown before the ellipsis */
#define OUTPUT_BAR      30 /* columns of wait's progress bar */

static int output_swap_changed(const Carotate__V1__RotateReply *);
static const char *output_s(const char *);
static size_t output_utf8(const unsigned char *, uint32_t *);
static int output_unsafe_cp(uint32_t);
static int output_safe_run(const unsigned char *);
static json_t *output_jcheck(json_t *);
static void output_jset(json_t *, const char *, json_t *);
static json_t *output_jstr(const char *);
static json_t *output_jhex(const char *);
static json_t *output_jtime(int64_t);
static json_t *output_jtime_opt(int64_t);
static json_t *output_jstr_opt(const char *);
static json_t *output_jstrings(char **, size_t, int);
static json_t *output_cert_json(const Carotate__V1__CertInfo *);
static json_t *output_set_json(const Carotate__V1__CertSet *);
static json_t *output_member_json(const Carotate__V1__BundleCa *);
static json_t *output_bundle_json(const Carotate__V1__Bundle *);
static json_t *output_reload_json(const Carotate__V1__ReloadResult *);
static int output_dump(FILE *, json_t *);
static char *output_hex(const char *);
static const char *output_phase_name(Carotate__V1__Phase);
static void output_label(FILE *, const char *);
static void output_lines(FILE *, const char *);
static void output_time_human(FILE *, int64_t);
static void output_worker_pid(FILE *, const char *, uint32_t);
static void output_worker_health(FILE *, const Carotate__V1__WorkerHealth *);
static json_t *output_workers_json(const Carotate__V1__StatusReply *);
static void output_expiry_human(FILE *, int64_t, int64_t);
static void output_cert_human(
    FILE *, const char *, const Carotate__V1__CertInfo *, const char *, int64_t);
static void output_set_human(FILE *, const char *, const Carotate__V1__CertSet *, int64_t);
static const char *output_role(const char *);
static void output_member_human(FILE *, const Carotate__V1__BundleCa *);
static void output_bundle_human(FILE *, const Carotate__V1__Bundle *, const Carotate__V1__CertSet *,
    const Carotate__V1__CertSet *);
static const char *output_bundle_role(
    const Carotate__V1__CertSet *, const Carotate__V1__CertSet *, const char *);
static void output_reload_human(FILE *, const Carotate__V1__ReloadResult *);
static json_t *output_jcount(uint64_t);
static json_t *output_pending_json(const Carotate__V1__PendingAgent *);
static json_t *output_holding_json(const Carotate__V1__BundleHolding *);
static void output_abbrev(FILE *, const char *, int);
static void output_ago(uint64_t, char *, size_t);
static void output_counts_human(FILE *, const Carotate__V1__ReportReply *);
static void output_pending_human(FILE *, const Carotate__V1__ReportReply *, uint64_t, int64_t);
static void output_holdings_human(FILE *, const Carotate__V1__ReportReply *);
static void output_staged_human(FILE *, const Carotate__V1__ReportReply *);
static void output_steady_human(FILE *, const Carotate__V1__ReportReply *);
static json_t *output_audit_record_json(const Carotate__V1__AuditRecord *);
static void output_audit_record_human(FILE *, const Carotate__V1__AuditRecord *);
static json_t *output_backup_json(const Carotate__V1__Backup *);
static const char *output_backup_reason(const char *);
static int output_width(const char *);
static void output_pad(FILE *, const char *, int);
static void output_backup_human(FILE *, const Carotate__V1__Backup *, int, int);
static json_t *output_retired_json(const Carotate__V1__BundleCa *);

int
output_rfc3339(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t < OUTPUT_TIME_MIN || t > OUTPUT_TIME_MAX || gmtime_r(&tt, &tm) == NULL)
		return -1;
	if (snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec) >= (int)len)
		return -1;
	return 0;
}

void
output_duration(uint64_t s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	else if (s < OUTPUT_DAY)
		snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(
		    buf, len, "%" PRIu64 "d %" PRIu64 "h", s / OUTPUT_DAY, s % OUTPUT_DAY / 3600);
}

/*
 * Length (1-4) of the well-formed UTF-8 sequence at p, its code point in *cp; 0 when the
 * byte at p starts none: a stray continuation byte, a truncated sequence, an overlong
 * encoding, a surrogate or a code point above U+10FFFF.
 */
static size_t
output_utf8(const unsigned char *p, uint32_t *cp)
{
	size_t n, i;
	uint32_t c, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f, min = 0x80;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, c = p[0] & 0x0f, min = 0x800;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/*
 * Code points a terminal would act on rather than show: C0, DEL, C1 (U+009B is CSI on its
 * own), and the bidi controls that make text read in another order than it is stored
 * (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069), plus the line and paragraph separators.
 */
static int
output_unsafe_cp(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061c || c == 0x200e || c == 0x200f ||
	       (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/*
 * Bytes at p printed as they are (> 0), or to be escaped one by one as \xHH (< 0); the
 * magnitude is how many bytes. Printable UTF-8 ("é", "東") passes: subjects are often
 * written in the operator's language.
 */
static int
output_safe_run(const unsigned char *p)
{
	uint32_t c;
	size_t n = output_utf8(p, &c);

	if (n == 0)
		return -1;
	return output_unsafe_cp(c) ? -(int)n : (int)n;
}

/* Text from certificates and the daemon, so that no byte of it can drive the terminal. */
void
output_safe(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)output_s(s);
	int n, i;

	while (*p != '\0') {
		if ((n = output_safe_run(p)) > 0) {
			fwrite(p, 1, (size_t)n, fp);
			p += n;
		} else
			for (i = 0; i < -n; i++)
				fprintf(fp, "\\x%02x", *p++);
	}
}

/* Hand-built messages may leave strings NULL; unpacked ones never do. */
static const char *
output_s(const char *s)
{
	return s != NULL ? s : "";
}

/* Jansson returns NULL only when out of memory (or on bad UTF-8, handled before). */
static json_t *
output_jcheck(json_t *j)
{
	if (j == NULL)
		fatalx("out of memory building JSON");
	return j;
}

static void
output_jset(json_t *obj, const char *key, json_t *val)
{
	if (json_object_set_new(obj, key, output_jcheck(val)) != 0)
		fatalx("out of memory building JSON");
}

/* Jansson refuses invalid UTF-8; then non-ASCII bytes become '?' so the field survives. */
static json_t *
output_jstr(const char *s)
{
	json_t *j;
	char *copy, *p;

	s = output_s(s);
	if ((j = json_string(s)) != NULL)
		return j;
	copy = xstrdup(s);
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return output_jcheck(j);
}

/* Fingerprints and serials: lower-case, no colons, whatever the daemon sent. */
static char *
output_hex(const char *s)
{
	char *out, *q;

	s = output_s(s);
	out = q = xstrdup(s);
	for (; *s != '\0'; s++)
		if (*s != ':')
			*q++ = (char)tolower((unsigned char)*s);
	*q = '\0';
	return out;
}

static json_t *
output_jhex(const char *s)
{
	char *hex = output_hex(s);
	json_t *j = output_jstr(hex);

	free(hex);
	return j;
}

/* RFC 3339, or null for an instant RFC 3339 cannot spell. */
static json_t *
output_jtime(int64_t t)
{
	char buf[OUTPUT_RFC3339_LEN];

	if (output_rfc3339(t, buf, sizeof(buf)) != 0)
		return json_null();
	return output_jstr(buf);
}

/* Optional instants: 0 means unknown (or not applicable), which JSON spells null. */
static json_t *
output_jtime_opt(int64_t t)
{
	return t != 0 ? output_jtime(t) : json_null();
}

/* Optional strings: proto3 cannot tell empty from absent, so empty reads as null. */
static json_t *
output_jstr_opt(const char *s)
{
	return output_s(s)[0] != '\0' ? output_jstr(s) : json_null();
}

static json_t *
output_jstrings(char **v, size_t n, int hex)
{
	json_t *a = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < n; i++)
		if (json_array_append_new(
		        a, output_jcheck(hex ? output_jhex(v[i]) : output_jstr(v[i]))) != 0)
			fatalx("out of memory building JSON");
	return a;
}

static const char *
output_phase_name(Carotate__V1__Phase phase)
{
	switch (phase) {
	case CAROTATE__V1__PHASE__PHASE_STEADY:
		return "steady";
	case CAROTATE__V1__PHASE__PHASE_STAGED:
		return "staged";
	default:
		return "unknown";
	}
}

static json_t *
output_cert_json(const Carotate__V1__CertInfo *c)
{
	json_t *o;

	if (c == NULL)
		return json_null();
	o = output_jcheck(json_object());
	output_jset(o, "subject", output_jstr(c->subject));
	output_jset(o, "issuer", output_jstr(c->issuer));
	output_jset(o, "sha256", output_jhex(c->sha256));
	output_jset(o, "serial", output_jhex(c->serial));
	output_jset(o, "not_before", output_jtime(c->not_before));
	output_jset(o, "not_after", output_jtime(c->not_after));
	output_jset(o, "key_type", output_jstr(c->key_type));
	output_jset(o, "sans", output_jstrings(c->sans, c->n_sans, 0));
	return o;
}

static json_t *
output_set_json(const Carotate__V1__CertSet *set)
{
	json_t *o;

	if (set == NULL)
		return json_null();
	o = output_jcheck(json_object());
	output_jset(o, "ca", output_cert_json(set->ca));
	output_jset(o, "server", output_cert_json(set->server));
	output_jset(o, "server_days_left", json_integer(set->server_days_left));
	output_jset(o, "key_present", json_boolean(set->key_present));
	output_jset(o, "problems", output_jstrings(set->problems, set->n_problems, 0));
	output_jset(o, "origin", output_jstr_opt(set->origin));
	output_jset(o, "created", output_jtime_opt(set->created));
	return o;
}

static json_t *
output_member_json(const Carotate__V1__BundleCa *m)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "sha256", output_jhex(m->sha256));
	output_jset(o, "subject", output_jstr(m->subject));
	output_jset(o, "role", output_jstr(m->role));
	output_jset(o, "not_after", output_jtime(m->not_after));
	output_jset(o, "retained_until", output_jtime_opt(m->retained_until));
	return o;
}

/* `id` and `cas` are the carotatectl(1) keys; `members` says why each CA is there. */
static json_t *
output_bundle_json(const Carotate__V1__Bundle *b)
{
	json_t *o, *members;
	size_t i;

	if (b == NULL)
		return json_null();
	o = output_jcheck(json_object());
	output_jset(o, "id", output_jhex(b->id));
	output_jset(o, "cas", output_jstrings(b->cas, b->n_cas, 1));
	members = output_jcheck(json_array());
	for (i = 0; i < b->n_members; i++)
		if (json_array_append_new(members, output_member_json(b->members[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "members", members);
	output_jset(o, "published", json_boolean(b->published));
	return o;
}

static json_t *
output_reload_json(const Carotate__V1__ReloadResult *rr)
{
	json_t *o;

	if (rr == NULL)
		return json_null();
	o = output_jcheck(json_object());
	output_jset(o, "ran", json_boolean(rr->ran));
	output_jset(o, "ok", json_boolean(rr->ok));
	output_jset(o, "exit_status", json_integer(rr->exit_status));
	output_jset(o, "output", output_jstr(rr->output));
	return o;
}

/*
 * One object, two-space indent, keys in insertion order, newline-terminated, ASCII only
 * (\uXXXX for the rest), so that a C1 control or bidi override from a certificate never
 * reaches a terminal that shows the JSON. Frees j.
 */
static int
output_dump(FILE *fp, json_t *j)
{
	int r;

	r = json_dumpf(j, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(j);
	if (r != 0 || fputc('\n', fp) == EOF || ferror(fp))
		return -1;
	return 0;
}

/* [{name, running, pid, restarts, last_error, last_error_at}], agents then canary. */
static json_t *
output_workers_json(const Carotate__V1__StatusReply *r)
{
	json_t *a = output_jcheck(json_array()), *o;
	size_t i;

	for (i = 0; i < r->n_workers; i++) {
		const Carotate__V1__WorkerHealth *w = r->workers[i];

		o = output_jcheck(json_object());
		output_jset(o, "name", output_jstr(w->name));
		output_jset(o, "running", json_boolean(w->running));
		output_jset(o, "pid", w->pid != 0 ? json_integer(w->pid) : json_null());
		output_jset(o, "restarts", json_integer(w->restarts));
		output_jset(o, "last_error", output_jstr_opt(w->last_error));
		output_jset(o, "last_error_at", output_jtime_opt(w->last_error_at));
		if (json_array_append_new(a, o) != 0)
			output_jcheck(NULL);
	}
	return a;
}

int
output_status_json(FILE *fp, const Carotate__V1__StatusReply *r)
{
	json_t *o = output_jcheck(json_object());
	uint64_t up = r->uptime_seconds;

	output_jset(o, "version", output_jstr(r->version));
	output_jset(o, "pid", json_integer(r->pid));
	output_jset(
	    o, "worker_pid", r->worker_pid != 0 ? json_integer(r->worker_pid) : json_null());
	output_jset(o, "canary_worker_pid",
	    r->canary_worker_pid != 0 ? json_integer(r->canary_worker_pid) : json_null());
	output_jset(o, "workers", output_workers_json(r));
	output_jset(o, "uptime_seconds", json_integer(up > INT64_MAX ? INT64_MAX : (json_int_t)up));
	output_jset(o, "now", output_jtime(r->now));
	output_jset(o, "phase", output_jstr(output_phase_name(r->phase)));
	output_jset(o, "ssl_dir", output_jstr(r->ssl_dir));
	output_jset(o, "active", output_set_json(r->active));
	output_jset(o, "staged", output_set_json(r->staged));
	output_jset(o, "bundle", output_bundle_json(r->bundle));
	return output_dump(fp, o);
}

/* generate, install and discard: one object, whichever of the three answered. */
int
output_stage_json(FILE *fp, const Carotate__V1__StageReply *r)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "staged", output_set_json(r->staged));
	output_jset(o, "bundle", output_bundle_json(r->bundle));
	output_jset(o, "reload", output_reload_json(r->reload));
	output_jset(o, "warnings", output_jstrings(r->warnings, r->n_warnings, 0));
	output_jset(o, "kept_as", output_jstr_opt(r->kept_as));
	return output_dump(fp, o);
}

int
output_error_json(FILE *fp, const char *status, const char *message)
{
	json_t *o = output_jcheck(json_object()), *e = output_jcheck(json_object());

	output_jset(e, "status", output_jstr(status));
	output_jset(e, "message", output_jstr(message));
	output_jset(o, "error", e);
	return output_dump(fp, o);
}

static void
output_label(FILE *fp, const char *label)
{
	fprintf(fp, "%-*s", OUTPUT_LABEL_WIDTH, label);
}

/*
 * Multi-line text from the daemon (a reload command's stderr): one escaped line each,
 * continuation lines under the value column, trailing blank lines dropped.
 */
static void
output_lines(FILE *fp, const char *text)
{
	char *copy = xstrdup(output_s(text)), *line, *next;
	size_t len = strlen(copy);

	while (len > 0 && (copy[len - 1] == '\n' || copy[len - 1] == '\r'))
		copy[--len] = '\0';
	for (line = copy; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line != copy)
			fprintf(fp, "%*s", OUTPUT_LABEL_WIDTH, "");
		output_safe(fp, line);
		fputc('\n', fp);
	}
	free(copy);
}

static void
output_time_human(FILE *fp, int64_t t)
{
	char buf[OUTPUT_RFC3339_LEN];

	if (output_rfc3339(t, buf, sizeof(buf)) == 0)
		fputs(buf, fp);
	else
		fprintf(fp, "@%" PRId64, t);
}

/* The date, then how far away it is; the difference is taken unsigned so it cannot overflow. */
static void
output_expiry_human(FILE *fp, int64_t not_after, int64_t now)
{
	uint64_t days;

	fprintf(fp, "%*s%s ", OUTPUT_LABEL_WIDTH, "", not_after > now ? "expires" : "expired");
	output_time_human(fp, not_after);
	if (not_after > now) {
		days = ((uint64_t)not_after - (uint64_t)now) / OUTPUT_DAY;
		if (days == 0)
			fputs(" (less than a day left)\n", fp);
		else
			fprintf(fp, " (%" PRIu64 " day%s left)\n", days, days == 1 ? "" : "s");
		return;
	}
	days = ((uint64_t)now - (uint64_t)not_after) / OUTPUT_DAY;
	if (days == 0)
		fputs(" (EXPIRED less than a day ago)\n", fp);
	else
		fprintf(fp, " (EXPIRED %" PRIu64 " day%s ago)\n", days, days == 1 ? "" : "s");
}

/* One certificate; the issuer is shown only when it is not the expected one. */
static void
output_cert_human(FILE *fp, const char *label, const Carotate__V1__CertInfo *c,
    const char *expected_issuer, int64_t now)
{
	char *hex;
	size_t i;

	output_label(fp, label);
	if (c == NULL) {
		fputs("missing\n", fp);
		return;
	}
	output_safe(fp, c->subject);
	fputc('\n', fp);
	if (c->n_sans > 0) {
		fprintf(fp, "%*sSANs ", OUTPUT_LABEL_WIDTH, "");
		for (i = 0; i < c->n_sans; i++) {
			fputs(i > 0 ? ", " : "", fp);
			output_safe(fp, c->sans[i]);
		}
		fputc('\n', fp);
	}
	if (expected_issuer != NULL && strcmp(output_s(c->issuer), expected_issuer) != 0) {
		fprintf(fp, "%*sissued by ", OUTPUT_LABEL_WIDTH, "");
		output_safe(fp, c->issuer);
		fputc('\n', fp);
	}
	hex = output_hex(c->sha256);
	fprintf(fp, "%*ssha256 ", OUTPUT_LABEL_WIDTH, "");
	output_safe(fp, hex);
	free(hex);
	hex = output_hex(c->serial);
	fprintf(fp, "\n%*s", OUTPUT_LABEL_WIDTH, "");
	output_safe(fp, output_s(c->key_type)[0] != '\0' ? c->key_type : "unknown");
	fputs(" key, serial ", fp);
	output_safe(fp, hex);
	fputc('\n', fp);
	free(hex);
	output_expiry_human(fp, c->not_after, now);
}

static void
output_set_human(FILE *fp, const char *name, const Carotate__V1__CertSet *set, int64_t now)
{
	const char *ca_subject = set->ca != NULL ? output_s(set->ca->subject) : NULL;
	size_t i;

	fprintf(fp, "%s\n", name);
	output_cert_human(fp, "  CA:", set->ca, ca_subject, now);
	output_cert_human(fp, "  server:", set->server, ca_subject, now);
	output_label(fp, "  key:");
	fputs(set->key_present ? "present\n" : "MISSING\n", fp);
	if (output_s(set->origin)[0] != '\0') {
		output_label(fp, "  origin:");
		output_safe(fp, set->origin);
		fputc('\n', fp);
	}
	if (set->created != 0) {
		output_label(fp, "  created:");
		output_time_human(fp, set->created);
		fputc('\n', fp);
	}
	for (i = 0; i < set->n_problems; i++) {
		output_label(fp, i == 0 ? "  problems:" : "");
		output_safe(fp, set->problems[i]);
		fputc('\n', fp);
	}
}

/*
 * Which set a bundle CA belongs to, for a daemon that sends no members: the role is
 * guessed from the sets' CA fingerprints.
 */
static const char *
output_bundle_role(
    const Carotate__V1__CertSet *active, const Carotate__V1__CertSet *staged, const char *ca)
{
	char *hex = output_hex(ca), *other;
	const char *role = "retained";
	const Carotate__V1__CertSet *sets[2] = { active, staged };
	const char *names[2] = { "active", "staged" };
	size_t i;

	for (i = 0; i < 2; i++) {
		if (sets[i] == NULL || sets[i]->ca == NULL)
			continue;
		other = output_hex(sets[i]->ca->sha256);
		if (strcmp(hex, other) == 0)
			role = names[i];
		free(other);
	}
	free(hex);
	return role;
}

/* Roles are the daemon's words ("active", "staged", "retained"); anything else reads "unknown". */
static const char *
output_role(const char *role)
{
	const char *p;

	role = output_s(role);
	for (p = role; *p != '\0'; p++)
		if ((*p < 'a' || *p > 'z') && *p != '-')
			return "unknown";
	return p != role && p - role < 32 ? role : "unknown";
}

/* One CA of the bundle, laid out like a certificate of a set: role, subject, fingerprint. */
static void
output_member_human(FILE *fp, const Carotate__V1__BundleCa *m)
{
	char label[40], *hex = output_hex(m->sha256);

	snprintf(label, sizeof(label), "  %s:", output_role(m->role));
	output_label(fp, label);
	output_safe(fp, m->subject);
	fprintf(fp, "\n%*ssha256 ", OUTPUT_LABEL_WIDTH, "");
	output_safe(fp, hex);
	fputc('\n', fp);
	free(hex);
	if (m->retained_until != 0) {
		fprintf(fp, "%*sretained until ", OUTPUT_LABEL_WIDTH, "");
		output_time_human(fp, m->retained_until);
		fputc('\n', fp);
	}
}

static void
output_bundle_human(FILE *fp, const Carotate__V1__Bundle *b, const Carotate__V1__CertSet *active,
    const Carotate__V1__CertSet *staged)
{
	char *hex;
	size_t i;

	output_label(fp, "bundle:");
	if (b == NULL) {
		fputs("none\n", fp);
		return;
	}
	hex = output_hex(b->id);
	output_safe(fp, hex);
	free(hex);
	fprintf(fp, " (%zu CA%s)\n", b->n_cas, b->n_cas == 1 ? "" : "s");
	if (!b->published)
		fprintf(fp, "%*s(not yet published to ca-bundle.pem)\n", OUTPUT_LABEL_WIDTH, "");
	for (i = 0; i < b->n_members; i++)
		output_member_human(fp, b->members[i]);
	if (b->n_members > 0)
		return;
	for (i = 0; i < b->n_cas; i++) {
		hex = output_hex(b->cas[i]);
		fprintf(fp, "%*s", OUTPUT_LABEL_WIDTH, "");
		output_safe(fp, hex);
		fprintf(fp, " %s\n", output_bundle_role(active, staged, b->cas[i]));
		free(hex);
	}
}

/* The reload outcome; the command's stderr tail follows on its own lines. */
static void
output_reload_human(FILE *fp, const Carotate__V1__ReloadResult *rr)
{
	output_label(fp, "reload:");
	if (rr == NULL) {
		fputs("not reported by carotated\n", fp);
		return;
	}
	if (rr->ran && rr->ok) {
		fputs("proxy reloaded\n", fp);
		return;
	}
	if (!rr->ran)
		fputs("proxy reload not run", fp);
	else if (rr->exit_status >= 0)
		fprintf(fp, "proxy reload FAILED (exit %" PRId32 ")", rr->exit_status);
	else
		fputs("proxy reload FAILED (killed)", fp);
	if (output_s(rr->output)[0] == '\0') {
		fputc('\n', fp);
		return;
	}
	fputs(": ", fp);
	output_lines(fp, rr->output);
}

/* generate and install: what is staged now, the bundle agents receive, the reload. */
int
output_stage_human(FILE *fp, const Carotate__V1__StageReply *r, int64_t now)
{
	const char *origin = r->staged != NULL ? output_s(r->staged->origin) : "";

	fputs("staged: new set", fp);
	if (origin[0] != '\0') {
		fputs(" (", fp);
		output_safe(fp, origin);
		fputc(')', fp);
	}
	fputc('\n', fp);
	if (r->staged != NULL)
		output_set_human(fp, "staged set:", r->staged, now);
	else {
		output_label(fp, "staged set:");
		fputs("not reported by carotated\n", fp);
	}
	output_bundle_human(fp, r->bundle, NULL, r->staged);
	output_reload_human(fp, r->reload);
	return ferror(fp) ? -1 : 0;
}

int
output_discard_human(FILE *fp, const Carotate__V1__StageReply *r)
{
	fputs("discarded the staged set", fp);
	if (output_s(r->kept_as)[0] != '\0') {
		fputs("; kept as ", fp);
		output_safe(fp, r->kept_as);
	}
	fputc('\n', fp);
	output_bundle_human(fp, r->bundle, NULL, NULL);
	output_reload_human(fp, r->reload);
	return ferror(fp) ? -1 : 0;
}

/*
 * Meant for stderr in both output modes, so that an operator piping JSON still sees them;
 * a failed reload comes last, as the one that needs action.
 */
int
output_stage_warnings(FILE *fp, const char *prog, const Carotate__V1__StageReply *r)
{
	size_t i;

	for (i = 0; i < r->n_warnings; i++) {
		fprintf(fp, "%s: warning: ", prog);
		output_safe(fp, r->warnings[i]);
		fputc('\n', fp);
	}
	if (r->reload != NULL && r->reload->ran && !r->reload->ok)
		fprintf(fp,
		    "%s: warning: the proxy reload failed: agents still receive the new bundle, "
		    "but the canary listener serves the old certificate until the proxy reloads, "
		    "so no agent can prove (verified) that it trusts the new CA\n",
		    prog);
	return ferror(fp) ? -1 : 0;
}

/* "agent pid N", or "agent restarting" while the daemon restarts it. */
static void
output_worker_pid(FILE *fp, const char *which, uint32_t pid)
{
	if (pid != 0)
		fprintf(fp, "%s pid %" PRIu32, which, pid);
	else
		fprintf(fp, "%s restarting", which);
}

/*
 * A worker that restarted or failed gets a line of its own under "workers:":
 * "agents: down, 5 restarts; last error 2026-...: why". Silent when healthy.
 */
static void
output_worker_health(FILE *fp, const Carotate__V1__WorkerHealth *w)
{
	if (w->running && w->restarts == 0 && output_s(w->last_error)[0] == '\0')
		return;
	output_label(fp, "");
	output_safe(fp, w->name);
	fprintf(fp, ": %s, %" PRIu32 " restart%s", w->running ? "running" : "down", w->restarts,
	    w->restarts == 1 ? "" : "s");
	if (output_s(w->last_error)[0] != '\0') {
		fputs("; last error ", fp);
		output_time_human(fp, w->last_error_at);
		fputs(": ", fp);
		output_safe(fp, w->last_error);
	}
	fputc('\n', fp);
}

/* The daemon's clock decides what has expired; ours only if it sent none. */
int
output_status_human(FILE *fp, const Carotate__V1__StatusReply *r)
{
	int64_t now = r->now != 0 ? r->now : (int64_t)time(NULL);
	char up[64];
	size_t i;

	output_duration(r->uptime_seconds, up, sizeof(up));
	fputs("carotated ", fp);
	output_safe(fp, r->version);
	fprintf(fp, " (pid %" PRIu32 "), up %s\n", r->pid, up);
	output_label(fp, "workers:");
	output_worker_pid(fp, "agent", r->worker_pid);
	output_worker_pid(fp, ", canary", r->canary_worker_pid);
	fputc('\n', fp);
	for (i = 0; i < r->n_workers; i++)
		output_worker_health(fp, r->workers[i]);
	output_label(fp, "phase:");
	fprintf(fp, "%s\n", output_phase_name(r->phase));
	output_label(fp, "ssl dir:");
	output_safe(fp, r->ssl_dir);
	fputc('\n', fp);
	if (r->active != NULL)
		output_set_human(fp, "active set:", r->active, now);
	else {
		output_label(fp, "active set:");
		fputs("none (no active set in ", fp);
		output_safe(fp, r->ssl_dir);
		fputs(")\n", fp);
	}
	if (r->staged != NULL)
		output_set_human(fp, "staged set:", r->staged, now);
	else {
		output_label(fp, "staged set:");
		fputs("none\n", fp);
	}
	output_bundle_human(fp, r->bundle, r->active, r->staged);
	return ferror(fp) ? -1 : 0;
}

void
output_span(uint64_t s, char *buf, size_t len)
{
	if (s != 0 && s % OUTPUT_DAY == 0)
		snprintf(buf, len, "%" PRIu64 "d", s / OUTPUT_DAY);
	else if (s != 0 && s % 3600 == 0)
		snprintf(buf, len, "%" PRIu64 "h", s / 3600);
	else if (s != 0 && s % 60 == 0)
		snprintf(buf, len, "%" PRIu64 "m", s / 60);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
}

/* Counters are uint64 on the wire; JSON integers here are int64. */
static json_t *
output_jcount(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *
output_pending_json(const Carotate__V1__PendingAgent *a)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "id", output_jstr(a->id));
	output_jset(o, "last_seen", output_jtime_opt(a->last_seen));
	output_jset(o, "delivered", json_boolean(a->delivered));
	return o;
}

static json_t *
output_holding_json(const Carotate__V1__BundleHolding *h)
{
	json_t *o = output_jcheck(json_object());
	char *hex = output_hex(h->bundle_id);

	output_jset(o, "bundle_id", output_jstr_opt(hex));
	output_jset(o, "agents", output_jcount(h->agents));
	output_jset(o, "current", json_boolean(h->current));
	free(hex);
	return o;
}

/*
 * The carotatectl(1) keys first; holdings and current only with nothing staged, pending_agents
 * only when asked for. percent is copied, never derived from the counts.
 */
int
output_report_json(FILE *fp, const Carotate__V1__ReportReply *r, int pending)
{
	json_t *o = output_jcheck(json_object()), *a;
	int staged = output_s(r->staged_ca)[0] != '\0';
	char *hex;
	size_t i;

	output_jset(o, "now", output_jtime_opt(r->now));
	output_jset(o, "active_within", output_jcount(r->active_within));
	hex = output_hex(r->staged_ca);
	output_jset(o, "staged_ca", output_jstr_opt(hex));
	free(hex);
	hex = output_hex(r->bundle_id);
	output_jset(o, "bundle_id", output_jstr_opt(hex));
	free(hex);
	output_jset(o, "gate", output_jstr_opt(r->gate));
	output_jset(o, "linked", output_jcount(r->linked));
	output_jset(o, "active", output_jcount(r->active));
	output_jset(o, "acknowledged", output_jcount(r->acknowledged));
	output_jset(o, "verified", output_jcount(r->verified));
	output_jset(o, "pending", output_jcount(r->pending));
	output_jset(o, "inactive_lacking", output_jcount(r->inactive_lacking));
	output_jset(o, "excluded", output_jcount(r->excluded));
	output_jset(o, "never_confirmed", output_jcount(r->never_confirmed));
	output_jset(o, "percent", json_integer(r->percent));
	output_jset(o, "percent_verified", json_integer(r->percent_verified));
	output_jset(o, "canary_confirmed", json_boolean(r->canary_confirmed));
	output_jset(o, "canary_check_unset", json_boolean(r->canary_check_unset));
	if (!staged) {
		output_jset(o, "current", output_jcount(r->current));
		a = output_jcheck(json_array());
		for (i = 0; i < r->n_holdings; i++)
			if (json_array_append_new(a, output_holding_json(r->holdings[i])) != 0)
				fatalx("out of memory building JSON");
		output_jset(o, "holdings", a);
	}
	if (pending) {
		a = output_jcheck(json_array());
		for (i = 0; i < r->n_pending_agents; i++)
			if (json_array_append_new(a, output_pending_json(r->pending_agents[i])) !=
			    0)
				fatalx("out of memory building JSON");
		output_jset(o, "pending_agents", a);
	}
	return output_dump(fp, o);
}

int
output_agent_json(FILE *fp, const Carotate__V1__AgentReply *r)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "agent", output_jstr(r->agent));
	output_jset(o, "excluded", json_boolean(r->excluded));
	output_jset(o, "reason", output_jstr_opt(r->reason));
	output_jset(o, "last_seen", output_jtime_opt(r->last_seen));
	return output_dump(fp, o);
}

/*
 * A fingerprint's first OUTPUT_ABBREV hex digits and an ellipsis; padded to `width` columns
 * (0: none). The full value is in the JSON output.
 */
static void
output_abbrev(FILE *fp, const char *s, int width)
{
	char *hex = output_hex(s);
	int cols = (int)strlen(hex);

	if (cols > OUTPUT_ABBREV) {
		hex[OUTPUT_ABBREV] = '\0';
		cols = OUTPUT_ABBREV + 1;
		output_safe(fp, hex);
		fputs("\xe2\x80\xa6", fp); /* U+2026 */
	} else
		output_safe(fp, hex);
	if (width > cols)
		fprintf(fp, "%*s", width - cols, "");
	free(hex);
}

/* How long ago, in its largest unit: "45s", "12m", "3h", "2d". */
static void
output_ago(uint64_t s, char *buf, size_t len)
{
	if (s == 0)
		snprintf(buf, len, "just now");
	else if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s ago", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m ago", s / 60);
	else if (s < OUTPUT_DAY)
		snprintf(buf, len, "%" PRIu64 "h ago", s / 3600);
	else
		snprintf(buf, len, "%" PRIu64 "d ago", s / OUTPUT_DAY);
}

static void
output_counts_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	char window[32];

	fprintf(fp,
	    "  linked %" PRIu64 "   active %" PRIu64 "   acknowledged %" PRIu64
	    "   verified %" PRIu64 "   pending %" PRIu64 "   inactive lacking the new CA %" PRIu64
	    "   excluded %" PRIu64 "   never confirmed %" PRIu64 "\n",
	    r->linked, r->active, r->acknowledged, r->verified, r->pending, r->inactive_lacking,
	    r->excluded, r->never_confirmed);
	output_span(r->active_within, window, sizeof(window));
	fprintf(fp, "  active window: %s", window);
	if (output_s(r->gate)[0] != '\0') {
		fputs("   gate: ", fp);
		output_safe(fp, r->gate);
	}
	fputc('\n', fp);
}

/* One page of pending agents; ids padded to the longest of the page (ids are <= 64 bytes). */
static void
output_pending_human(FILE *fp, const Carotate__V1__ReportReply *r, uint64_t offset, int64_t now)
{
	const Carotate__V1__PendingAgent *a;
	char when[OUTPUT_RFC3339_LEN], ago[32], ago_paren[36];
	size_t i, w = 0;

	if (r->n_pending_agents == 0) {
		fprintf(fp, "pending agents: none");
		if (offset > 0)
			fprintf(fp, " from offset %" PRIu64 " (%" PRIu64 " pending)", offset,
			    r->pending);
		fputc('\n', fp);
		return;
	}
	for (i = 0; i < r->n_pending_agents; i++)
		if (strlen(output_s(r->pending_agents[i]->id)) > w)
			w = strlen(output_s(r->pending_agents[i]->id));
	fprintf(fp, "pending agents (%zu shown from offset %" PRIu64 "):\n", r->n_pending_agents,
	    offset);
	for (i = 0; i < r->n_pending_agents; i++) {
		a = r->pending_agents[i];
		fputs("  ", fp);
		output_safe(fp, a->id);
		fprintf(fp, "%*s    last seen ", (int)(w - strlen(output_s(a->id))), "");
		if (a->last_seen == 0 || output_rfc3339(a->last_seen, when, sizeof(when)) != 0)
			fprintf(fp, "%-31s", "unknown");
		else {
			output_ago(a->last_seen < now ? (uint64_t)now - (uint64_t)a->last_seen : 0,
			    ago, sizeof(ago));
			snprintf(ago_paren, sizeof(ago_paren), "(%s)", ago);
			fprintf(fp, "%s %-10s", when, ago_paren);
		}
		fprintf(fp, "   bundle delivered: %s\n", a->delivered ? "yes" : "no");
	}
	if (r->pending > offset && r->pending - offset > r->n_pending_agents)
		fprintf(fp, "  (%" PRIu64 " more; --offset %" PRIu64 " shows the next page)\n",
		    r->pending - offset - r->n_pending_agents, offset + r->n_pending_agents);
}

static void
output_holdings_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	const Carotate__V1__BundleHolding *h;
	size_t i;

	if (r->n_holdings == 0)
		return;
	fputs("bundles held by active agents:\n", fp);
	for (i = 0; i < r->n_holdings; i++) {
		h = r->holdings[i];
		fputs("  ", fp);
		if (output_s(h->bundle_id)[0] != '\0')
			output_abbrev(fp, h->bundle_id, OUTPUT_ABBREV + 1);
		else
			fprintf(fp, "%-*s", OUTPUT_ABBREV + 1, "none confirmed");
		fprintf(fp, "  %" PRIu64 " agent%s%s\n", h->agents, h->agents == 1 ? "" : "s",
		    h->current ? " (current)" : "");
	}
}

/* The percentages are the daemon's: 999 of 1000 is 99 %, and stays 99 here. */
static void
output_staged_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	fputs("migration to CA ", fp);
	output_abbrev(fp, r->staged_ca, 0);
	fprintf(fp,
	    " (staged): %" PRIu64 " of %" PRIu64 " active agents acknowledged (%" PRIu32
	    " %%), %" PRIu64 " verified (%" PRIu32 " %%)\n",
	    r->acknowledged, r->active, r->percent, r->verified, r->percent_verified);
	if (r->canary_check_unset)
		fputs("  ([proxy] canary_address is not set, so the canary listener is never "
		      "checked: canary check-ins do not count as verified)\n",
		    fp);
	else if (!r->canary_confirmed)
		fputs("  (the canary listener has not been seen serving the staged certificate: "
		      "canary check-ins do not count as verified yet)\n",
		    fp);
	output_counts_human(fp, r);
}

static void
output_steady_human(FILE *fp, const Carotate__V1__ReportReply *r)
{
	char window[32];

	if (output_s(r->bundle_id)[0] != '\0') {
		fputs("nothing staged; bundle ", fp);
		output_abbrev(fp, r->bundle_id, 0);
		fprintf(fp, ": %" PRIu64 " of %" PRIu64 " active agents hold it\n", r->current,
		    r->active);
	} else
		fprintf(fp, "nothing staged; no bundle served (%" PRIu64 " active agents)\n",
		    r->active);
	output_span(r->active_within, window, sizeof(window));
	fprintf(fp,
	    "  linked %" PRIu64 "   active %" PRIu64 "   excluded %" PRIu64
	    "   never confirmed %" PRIu64 "\n  active window: %s\n",
	    r->linked, r->active, r->excluded, r->never_confirmed, window);
	output_holdings_human(fp, r);
}

int
output_report_human(FILE *fp, const Carotate__V1__ReportReply *r, int pending, uint64_t offset)
{
	int64_t now = r->now != 0 ? r->now : (int64_t)time(NULL);

	if (output_s(r->staged_ca)[0] != '\0')
		output_staged_human(fp, r);
	else
		output_steady_human(fp, r);
	if (pending && output_s(r->staged_ca)[0] == '\0' && r->n_pending_agents == 0)
		fputs("pending agents: none (nothing is staged)\n", fp);
	else if (pending)
		output_pending_human(fp, r, offset, now);
	return ferror(fp) ? -1 : 0;
}

int
output_agent_human(FILE *fp, const Carotate__V1__AgentReply *r)
{
	if (!r->excluded) {
		fputs("included ", fp);
		output_safe(fp, r->agent);
		fputs(" again\n", fp);
		return ferror(fp) ? -1 : 0;
	}
	fputs("excluded ", fp);
	output_safe(fp, r->agent);
	if (output_s(r->reason)[0] != '\0') {
		fputs(" (reason: ", fp);
		output_safe(fp, r->reason);
		fputc(')', fp);
	}
	fputs("; it is listed but no longer counted\n", fp);
	return ferror(fp) ? -1 : 0;
}

/* \r and erase-to-end-of-line redraw the bar over itself; the caller ends it with \n. */
int
output_progress(FILE *fp, int tty, uint32_t percent, uint64_t num, uint64_t den, const char *label)
{
	int filled = (int)((percent > 100 ? 100 : percent) * OUTPUT_BAR / 100), i;

	if (tty) {
		fputs("\r[", fp);
		for (i = 0; i < OUTPUT_BAR; i++)
			fputc(i < filled ? '#' : '.', fp);
		fputs("] ", fp);
	}
	fprintf(fp, "%" PRIu32 " %% (%" PRIu64 "/%" PRIu64 " ", percent, num, den);
	output_safe(fp, label);
	fputs(tty ? ")\033[K" : ")\n", fp);
	return ferror(fp) ? -1 : 0;
}

int
output_wait_reached(
    FILE *fp, uint32_t percent, uint64_t num, uint64_t den, const char *label, uint32_t need)
{
	fprintf(fp, "%" PRIu32 " %% of active agents ", percent);
	output_safe(fp, label);
	fprintf(
	    fp, " (%" PRIu64 "/%" PRIu64 "), threshold %" PRIu32 " %% reached\n", num, den, need);
	return ferror(fp) ? -1 : 0;
}

/* The daemon's words ("rotate", "restore", "rollback", "discard", "manual"); anything else reads
 * "unknown". */
static const char *
output_backup_reason(const char *reason)
{
	static const char *const known[] = { "rotate", "restore", "rollback", "discard", "manual" };
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(output_s(reason), known[i]) == 0)
			return known[i];
	return "unknown";
}

/* carotatectl(1)'s keys (id, created, reason, ca_sha256, server_not_after) and the rest. */
static json_t *
output_backup_json(const Carotate__V1__Backup *b)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "id", output_jstr(b->id));
	output_jset(o, "created", output_jtime_opt(b->created));
	output_jset(o, "reason", output_jstr(output_backup_reason(b->reason)));
	output_jset(o, "detail", output_jstr_opt(b->detail));
	output_jset(o, "ca_subject", b->ca != NULL ? output_jstr(b->ca->subject) : json_null());
	output_jset(o, "ca_sha256", b->ca != NULL ? output_jhex(b->ca->sha256) : json_null());
	output_jset(
	    o, "ca_not_after", b->ca != NULL ? output_jtime(b->ca->not_after) : json_null());
	output_jset(
	    o, "server_subject", b->server != NULL ? output_jstr(b->server->subject) : json_null());
	output_jset(
	    o, "server_sha256", b->server != NULL ? output_jhex(b->server->sha256) : json_null());
	output_jset(o, "server_not_after",
	    b->server != NULL ? output_jtime(b->server->not_after) : json_null());
	output_jset(o, "restorable", json_boolean(b->restorable));
	output_jset(o, "problem", output_jstr_opt(b->problem));
	return o;
}

int
output_backups_json(FILE *fp, const Carotate__V1__BackupsReply *r)
{
	json_t *o = output_jcheck(json_object()), *a = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < r->n_backups; i++)
		if (json_array_append_new(a, output_backup_json(r->backups[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "backups", a);
	output_jset(o, "total", output_jcount(r->total));
	output_jset(o, "keep", json_integer(r->keep));
	return output_dump(fp, o);
}

/* Columns a string takes once printed by output_safe: a code point each, 4 per escaped byte. */
static int
output_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)output_s(s);
	int n = 0, run;

	while (*p != '\0') {
		run = output_safe_run(p);
		n += run > 0 ? 1 : -4 * run;
		p += run > 0 ? run : -run;
	}
	return n;
}

/* s, escaped, then blanks up to width columns. */
static void
output_pad(FILE *fp, const char *s, int width)
{
	int w = output_width(s);

	output_safe(fp, s);
	if (width > w)
		fprintf(fp, "%*s", width - w, "");
}

/* One row: id, created, reason, CA subject, CA fingerprint, server expiry, restorable. */
static void
output_backup_human(FILE *fp, const Carotate__V1__Backup *b, int idw, int subjw)
{
	char when[OUTPUT_RFC3339_LEN];
	const char *reason = output_backup_reason(b->reason);

	fputs("  ", fp);
	output_pad(fp, b->id, idw);
	if (b->created == 0 || output_rfc3339(b->created, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "unknown");
	fprintf(fp, "  %-20s  %-7s  ", when, reason);
	output_pad(fp, b->ca != NULL ? b->ca->subject : "-", subjw);
	fputs("  ", fp);
	if (b->ca != NULL)
		output_abbrev(fp, b->ca->sha256, OUTPUT_ABBREV + 1);
	else
		fprintf(fp, "%-*s", OUTPUT_ABBREV + 1, "-");
	if (b->server == NULL || output_rfc3339(b->server->not_after, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "-");
	fprintf(fp, "  %-20s  ", when);
	if (b->restorable)
		fputs("yes\n", fp);
	else {
		fputs("no: ", fp);
		output_safe(fp, output_s(b->problem)[0] != '\0' ? b->problem : "(no reason given)");
		fputc('\n', fp);
	}
	if (output_s(b->detail)[0] != '\0' && strcmp(b->detail, reason) != 0) {
		fprintf(fp, "  %*s  reason given: ", idw, "");
		output_safe(fp, b->detail);
		fputc('\n', fp);
	}
}

int
output_backups_human(FILE *fp, const Carotate__V1__BackupsReply *r, uint64_t offset)
{
	int idw = 2, subjw = 10, w;
	size_t i;

	if (r->n_backups == 0) {
		fputs("no backups", fp);
		if (offset > 0)
			fprintf(
			    fp, " from offset %" PRIu64 " (%" PRIu64 " in all)", offset, r->total);
		fprintf(fp, "; keep %" PRIu32 "\n", r->keep);
		return ferror(fp) ? -1 : 0;
	}
	for (i = 0; i < r->n_backups; i++) {
		if ((w = output_width(r->backups[i]->id)) > idw)
			idw = w;
		if (r->backups[i]->ca != NULL &&
		    (w = output_width(r->backups[i]->ca->subject)) > subjw)
			subjw = w;
	}
	fputs("  ", fp);
	output_pad(fp, "ID", idw);
	fprintf(fp, "  %-20s  %-7s  ", "CREATED", "REASON");
	output_pad(fp, "CA SUBJECT", subjw);
	fprintf(fp, "  %-*s  %-20s  %s\n", OUTPUT_ABBREV + 1, "CA SHA256", "SERVER EXPIRES",
	    "RESTORABLE");
	for (i = 0; i < r->n_backups; i++)
		output_backup_human(fp, r->backups[i], idw, subjw);
	fprintf(fp, "%" PRIu64 " backup%s", r->total, r->total == 1 ? "" : "s");
	if (offset > 0 || r->total > r->n_backups)
		fprintf(fp, " (%zu shown from offset %" PRIu64 ")", r->n_backups, offset);
	fprintf(fp,
	    "; carotated keeps the newest %" PRIu32
	    " of its own and removes older ones (never one made by hand)\n",
	    r->keep);
	if (r->total > offset && r->total - offset > r->n_backups)
		fprintf(fp, "  (%" PRIu64 " more; --offset %" PRIu64 " shows the next page)\n",
		    r->total - offset - r->n_backups, offset + r->n_backups);
	return ferror(fp) ? -1 : 0;
}

static json_t *
output_retired_json(const Carotate__V1__BundleCa *m)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "sha256", output_jhex(m->sha256));
	output_jset(o, "subject", output_jstr(m->subject));
	output_jset(o, "not_after", output_jtime_opt(m->not_after));
	output_jset(o, "retained_until", output_jtime_opt(m->retained_until));
	return o;
}

int
output_retire_json(FILE *fp, const Carotate__V1__RetireReply *r, const char *message)
{
	json_t *o = output_jcheck(json_object()), *a = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < r->n_retired; i++)
		if (json_array_append_new(a, output_retired_json(r->retired[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "dry_run", json_boolean(r->dry_run));
	output_jset(o, "retired", a);
	output_jset(o, "bundle", output_bundle_json(r->bundle));
	output_jset(o, "message", output_jstr_opt(message));
	return output_dump(fp, o);
}

int
output_retire_human(FILE *fp, const Carotate__V1__RetireReply *r, const char *message)
{
	size_t i;

	if (output_s(message)[0] != '\0')
		output_safe(fp, message);
	else
		fprintf(fp, "%s %zu CA%s", r->dry_run ? "would retire" : "retired", r->n_retired,
		    r->n_retired == 1 ? "" : "s");
	fputc('\n', fp);
	for (i = 0; i < r->n_retired; i++)
		output_member_human(fp, r->retired[i]);
	output_bundle_human(fp, r->bundle, NULL, NULL);
	return ferror(fp) ? -1 : 0;
}

/*
 * Whether the set on disk changed: the daemon attaches the reload's result only once the
 * swap went through (rpc_rotate.c), so a refusal, a dry run or a swap undone at once has
 * none. Then after is the set that would have gone live, and nothing else.
 */
static int
output_swap_changed(const Carotate__V1__RotateReply *r)
{
	return !r->dry_run && r->reload != NULL;
}

/*
 * rotate and restore, whether they succeeded or not: a refused rotate carries the gate's
 * figures and the first pending agents, a rolled-back one what was served. error is NULL on
 * success, else {status, message} as output_error_json writes it.
 */
int
output_swap_json(
    FILE *fp, const Carotate__V1__RotateReply *r, const char *status, const char *message)
{
	json_t *o = output_jcheck(json_object()), *e, *list;
	size_t i;

	output_jset(o, "dry_run", json_boolean(r->dry_run));
	output_jset(o, "before", output_set_json(r->before));
	/* One meaning per key: "after" is what is live after a change, never a proposal. */
	output_jset(
	    o, output_swap_changed(r) ? "after" : "would_become_active", output_set_json(r->after));
	output_jset(o, "backup", output_jstr_opt(r->backup));
	output_jset(o, "restored", output_jstr_opt(r->restored));
	output_jset(o, "reload", output_reload_json(r->reload));
	output_jset(o, "verified", json_boolean(r->verified));
	output_jset(o, "served", output_jstr_opt(r->served));
	output_jset(o, "rolled_back", json_boolean(r->rolled_back));
	output_jset(o, "bundle", output_bundle_json(r->bundle));
	if (output_s(r->gate)[0] != '\0') {
		output_jset(o, "gate", output_jstr(r->gate));
		output_jset(o, "active", output_jcount(r->active));
		output_jset(o, "confirmed", output_jcount(r->confirmed));
		output_jset(o, "forced", json_boolean(r->forced));
		list = output_jcheck(json_array());
		for (i = 0; i < r->n_pending_agents; i++)
			if (json_array_append_new(
			        list, output_pending_json(r->pending_agents[i])) != 0)
				fatalx("out of memory building JSON");
		output_jset(o, "pending_agents", list);
	}
	output_jset(o, "pruned", output_jstrings(r->pruned, r->n_pruned, 0));
	output_jset(o, "rotate_ms", output_jcount(r->rotate_ms));
	if (status != NULL) {
		e = output_jcheck(json_object());
		output_jset(e, "status", output_jstr(status));
		output_jset(e, "message", output_jstr(message));
		output_jset(o, "error", e);
	}
	return output_dump(fp, o);
}

int
output_swap_human(FILE *fp, const Carotate__V1__RotateReply *r, int64_t now)
{
	const char *what = output_s(r->restored)[0] != '\0' ? "restore" : "rotate";
	int changed = output_swap_changed(r);
	size_t i;

	if (r->dry_run)
		fprintf(fp, "dry run: nothing was changed\n");
	if (output_s(r->gate)[0] != '\0') {
		output_label(fp, "gate:");
		fprintf(fp, "%" PRIu64 " of %" PRIu64 " active agents %s the staged CA%s\n",
		    r->confirmed, r->active, output_s(r->gate),
		    r->before == NULL ? " (no active set before: a first activation cuts no agent "
		                        "off, so the gate does not apply)"
		    : r->forced       ? " (FORCED)"
		                      : "");
	}
	for (i = 0; i < r->n_pending_agents; i++) {
		output_label(fp, i == 0 ? "pending:" : "");
		output_safe(fp, r->pending_agents[i]->id);
		fputc('\n', fp);
	}
	if (output_s(r->restored)[0] != '\0') {
		/* restore --latest: which backup "latest" was is the first thing to know. */
		output_label(fp, "restored:");
		output_safe(fp, r->restored);
		fputc('\n', fp);
	}
	/* "active now:" only ever names what is live after a change, never a proposal. */
	if (r->before != NULL)
		output_set_human(fp, changed ? "active before:" : "active:", r->before, now);
	else {
		output_label(fp, changed ? "active before:" : "active:");
		fputs("none\n", fp);
	}
	if (r->after != NULL)
		output_set_human(
		    fp, changed ? "active now:" : "would become active:", r->after, now);
	if (output_s(r->backup)[0] != '\0') {
		output_label(fp, "backup:");
		output_safe(fp, r->backup);
		fputs(r->rolled_back ? " (put back)\n" : " (the previous set)\n", fp);
	}
	if (r->reload != NULL)
		output_reload_human(fp, r->reload);
	if (!r->dry_run && (r->reload != NULL || r->verified)) {
		output_label(fp, "check:");
		if (r->verified)
			fprintf(fp,
			    "the proxy serves the %s certificate (%s took %" PRIu64 " ms)\n",
			    strcmp(what, "restore") == 0 ? "restored" : "new", what, r->rotate_ms);
		else if (r->rolled_back)
			fputs("the proxy did not serve the new certificate: ROLLED BACK\n", fp);
		else
			fputs("the proxy did not serve the new certificate\n", fp);
	}
	for (i = 0; i < r->n_pruned; i++) {
		output_label(fp, i == 0 ? "pruned:" : "");
		output_safe(fp, r->pruned[i]);
		fputc('\n', fp);
	}
	if (r->bundle != NULL && !r->dry_run)
		output_bundle_human(fp, r->bundle, NULL, NULL);
	return ferror(fp) ? -1 : 0;
}

static json_t *
output_audit_record_json(const Carotate__V1__AuditRecord *a)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "seq", output_jcount(a->seq));
	output_jset(o, "time", output_jtime(a->time));
	output_jset(o, "uid", json_integer(a->uid));
	output_jset(o, "user", output_jstr(a->user));
	output_jset(o, "pid", json_integer(a->pid));
	output_jset(o, "call", output_jstr(a->call));
	output_jset(o, "result", output_jstr(a->result));
	output_jset(o, "detail", output_jstr(a->detail));
	output_jset(o, "before", output_jstr(a->before));
	output_jset(o, "after", output_jstr(a->after));
	output_jset(o, "prev_hash", output_jstr(a->prev_hash));
	output_jset(o, "hash", output_jstr(a->hash));
	/* A daemon that predates counting sends 0: each record was one call. */
	output_jset(o, "count", output_jcount(a->count != 0 ? a->count : 1));
	return o;
}

int
output_audit_json(FILE *fp, const Carotate__V1__AuditReply *r)
{
	json_t *o = output_jcheck(json_object()), *recs = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < r->n_records; i++)
		if (json_array_append_new(recs, output_audit_record_json(r->records[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "records", recs);
	output_jset(o, "total", output_jcount(r->total));
	output_jset(o, "intact", r->verify ? json_boolean(r->intact) : json_null());
	output_jset(o, "broken_at", r->verify ? output_jcount(r->broken_at) : json_null());
	output_jset(o, "problem", r->verify && !r->intact ? output_jstr(r->problem) : json_null());
	return output_dump(fp, o);
}

/* One record: seq, time, who, call, result and detail on a line; the sets indented below. */
static void
output_audit_record_human(FILE *fp, const Carotate__V1__AuditRecord *a)
{
	char when[OUTPUT_RFC3339_LEN];

	if (output_rfc3339(a->time, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "%s", "unknown time");
	fprintf(fp, "#%" PRIu64 " %s ", a->seq, when);
	output_safe(fp, a->user);
	fprintf(fp, "(%" PRIu32 ") pid %" PRIu32 " ", a->uid, a->pid);
	output_safe(fp, a->call);
	fputc(' ', fp);
	output_safe(fp, a->result);
	if (a->count > 1)
		fprintf(fp, " x%" PRIu64, a->count);
	if (output_s(a->detail)[0] != '\0') {
		fputc(' ', fp);
		output_safe(fp, a->detail);
	}
	fputc('\n', fp);
	if (strcmp(output_s(a->before), output_s(a->after)) == 0) {
		fputs("    unchanged: ", fp);
		output_safe(fp, a->after);
		fputc('\n', fp);
		return;
	}
	fputs("    before: ", fp);
	output_safe(fp, a->before);
	fputs("\n    after:  ", fp);
	output_safe(fp, a->after);
	fputc('\n', fp);
}

int
output_audit_human(FILE *fp, const Carotate__V1__AuditReply *r, uint64_t offset)
{
	size_t i;

	if (r->n_records == 0)
		fprintf(
		    fp, "audit log: %s\n", r->total == 0 ? "empty" : "no records from this offset");
	else
		fprintf(fp,
		    "audit log: %" PRIu64 " record%s, newest first (%zu shown from offset %" PRIu64
		    ")\n",
		    r->total, r->total == 1 ? "" : "s", r->n_records, offset);
	for (i = 0; i < r->n_records; i++)
		output_audit_record_human(fp, r->records[i]);
	if (r->total > offset && r->total - offset > r->n_records)
		fprintf(fp, "(%" PRIu64 " older; --offset %" PRIu64 " shows the next page)\n",
		    r->total - offset - r->n_records, offset + r->n_records);
	if (r->verify && r->intact)
		fprintf(fp, "hash chain: intact (%" PRIu64 " record%s checked)\n", r->total,
		    r->total == 1 ? "" : "s");
	else if (r->verify) {
		fprintf(fp, "hash chain: BROKEN at record %" PRIu64 ": ", r->broken_at);
		output_safe(fp, r->problem);
		fputc('\n', fp);
	}
	return ferror(fp) ? -1 : 0;
}

int
output_forget_human(FILE *fp, const Carotate__V1__ForgetReply *r)
{
	if (output_s(r->agent)[0] != '\0') {
		fputs("forgot agent ", fp);
		output_safe(fp, r->agent);
		fputs("; it may link again\n", fp);
	} else
		fprintf(fp, "forgot %" PRIu64 " agent(s) that never confirmed a bundle\n",
		    r->forgotten);
	return ferror(fp) ? -1 : 0;
}

int
output_forget_json(FILE *fp, const Carotate__V1__ForgetReply *r)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "forgotten", output_jcount(r->forgotten));
	output_jset(o, "agent", output_jstr_opt(r->agent));
	return output_dump(fp, o);
}

static json_t *
output_join_json(const Carotate__V1__JoinToken *t)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "id", output_jstr(t->id));
	output_jset(o, "description", output_jstr(t->description));
	output_jset(o, "uses_left", json_integer(t->uses_left));
	output_jset(o, "expires", output_jtime(t->expires));
	output_jset(o, "created", output_jtime(t->created));
	return o;
}

int
output_join_created_human(FILE *fp, const Carotate__V1__JoinTokenCreateReply *r)
{
	char exp[OUTPUT_RFC3339_LEN];

	if (r->join_token == NULL || output_rfc3339(r->join_token->expires, exp, sizeof(exp)) == -1)
		snprintf(exp, sizeof(exp), "?");
	output_safe(fp, r->token);
	fputs("\n", fp);
	fputs("join token ", fp);
	output_safe(fp, r->join_token != NULL ? r->join_token->id : "");
	fprintf(fp, ": %u use(s), expires %s; it is shown only once\n",
	    r->join_token != NULL ? r->join_token->uses_left : 0, exp);
	return ferror(fp) ? -1 : 0;
}

int
output_join_created_json(FILE *fp, const Carotate__V1__JoinTokenCreateReply *r)
{
	json_t *o =
	    r->join_token != NULL ? output_join_json(r->join_token) : output_jcheck(json_object());

	output_jset(o, "token", output_jstr(r->token));
	return output_dump(fp, o);
}

int
output_join_list_human(FILE *fp, const Carotate__V1__JoinTokenListReply *r)
{
	char exp[OUTPUT_RFC3339_LEN], created[OUTPUT_RFC3339_LEN];
	const Carotate__V1__JoinToken *t;
	size_t i;

	if (r->n_join_tokens == 0)
		fputs("no join tokens\n", fp);
	else
		fprintf(fp, "%-16s  %-9s  %-20s  %-20s  %s\n", "ID", "USES LEFT", "EXPIRES",
		    "CREATED", "DESCRIPTION");
	for (i = 0; i < r->n_join_tokens; i++) {
		t = r->join_tokens[i];
		if (output_rfc3339(t->expires, exp, sizeof(exp)) == -1)
			snprintf(exp, sizeof(exp), "?");
		if (output_rfc3339(t->created, created, sizeof(created)) == -1)
			snprintf(created, sizeof(created), "?");
		fprintf(fp, "%-16.16s  %-9u  %-20s  %-20s  ", output_s(t->id), t->uses_left, exp,
		    created);
		output_safe(fp, t->description);
		fputs(t->expires <= r->now ? "  (expired)\n"
		      : t->uses_left == 0  ? "  (used up)\n"
		                           : "\n",
		    fp);
	}
	return ferror(fp) ? -1 : 0;
}

int
output_join_list_json(FILE *fp, const Carotate__V1__JoinTokenListReply *r)
{
	json_t *o = output_jcheck(json_object()), *a = output_jcheck(json_array());
	size_t i;

	for (i = 0; i < r->n_join_tokens; i++)
		if (json_array_append_new(a, output_join_json(r->join_tokens[i])) != 0)
			fatalx("out of memory building JSON");
	output_jset(o, "join_tokens", a);
	return output_dump(fp, o);
}

int
output_join_revoked_human(FILE *fp, const Carotate__V1__JoinTokenRevokeReply *r)
{
	fputs("join token ", fp);
	output_safe(fp, r->id);
	fputs(" revoked\n", fp);
	return ferror(fp) ? -1 : 0;
}

int
output_join_revoked_json(FILE *fp, const Carotate__V1__JoinTokenRevokeReply *r)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "revoked", output_jstr(r->id));
	return output_dump(fp, o);
}
