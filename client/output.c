/* carotatectl output: what every verb's printers share (escaping, JSON, tables, sets). */
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

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what RFC 3339 can spell. */
#define OUTPUT_TIME_MIN (-62167219200LL)
#define OUTPUT_TIME_MAX 253402300799LL

static size_t output_utf8(const unsigned char *p, uint32_t *cp);
static int output_unsafe_cp(uint32_t c);
static int output_safe_run(const unsigned char *p);
static json_t *output_cert_json(const Carotate__V1__CertInfo *c);
static json_t *output_member_json(const Carotate__V1__BundleCa *m);
static void output_lines(FILE *fp, const char *text);
static void output_expiry_human(FILE *fp, int64_t not_after, int64_t now);
static void output_cert_human(FILE *fp, const char *label, const Carotate__V1__CertInfo *c,
    const char *expected_issuer, int64_t now);
static const char *output_bundle_role(
    const Carotate__V1__CertSet *active, const Carotate__V1__CertSet *staged, const char *ca);
static const char *output_role(const char *role);

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
const char *
output_s(const char *s)
{
	return s != NULL ? s : "";
}

/* Jansson returns NULL only when out of memory (or on bad UTF-8, handled before). */
json_t *
output_jcheck(json_t *j)
{
	if (j == NULL)
		fatalx("out of memory building JSON");
	return j;
}

void
output_jset(json_t *obj, const char *key, json_t *val)
{
	if (json_object_set_new(obj, key, output_jcheck(val)) != 0)
		fatalx("out of memory building JSON");
}

/* Jansson refuses invalid UTF-8; then non-ASCII bytes become '?' so the field survives. */
json_t *
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
char *
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

json_t *
output_jhex(const char *s)
{
	char *hex = output_hex(s);
	json_t *j = output_jstr(hex);

	free(hex);
	return j;
}

/* RFC 3339, or null for an instant RFC 3339 cannot spell. */
json_t *
output_jtime(int64_t t)
{
	char buf[OUTPUT_RFC3339_LEN];

	if (output_rfc3339(t, buf, sizeof(buf)) != 0)
		return json_null();
	return output_jstr(buf);
}

/* Optional instants: 0 means unknown (or not applicable), which JSON spells null. */
json_t *
output_jtime_opt(int64_t t)
{
	return t != 0 ? output_jtime(t) : json_null();
}

/* Optional strings: proto3 cannot tell empty from absent, so empty reads as null. */
json_t *
output_jstr_opt(const char *s)
{
	return output_s(s)[0] != '\0' ? output_jstr(s) : json_null();
}

json_t *
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

json_t *
output_set_json(const Carotate__V1__CertSet *set)
{
	json_t *o;

	if (set == NULL)
		return json_null();
	o = output_jcheck(json_object());
	output_jset(o, "ca", output_cert_json(set->ca));
	output_jset(o, "server", output_cert_json(set->server));
	output_jset(o, "server_days_left", json_integer(set->server_days_left));
	output_jset(o, "ca_days_left", json_integer(set->ca_days_left));
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
json_t *
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

json_t *
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
int
output_dump(FILE *fp, json_t *j)
{
	int r;

	r = json_dumpf(j, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(j);
	if (r != 0 || fputc('\n', fp) == EOF || ferror(fp))
		return -1;
	return 0;
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

void
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

void
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

void
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
void
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

void
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
void
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
json_t *
output_jcount(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

json_t *
output_pending_json(const Carotate__V1__PendingAgent *a)
{
	json_t *o = output_jcheck(json_object());

	output_jset(o, "id", output_jstr(a->id));
	output_jset(o, "last_seen", output_jtime_opt(a->last_seen));
	output_jset(o, "delivered", json_boolean(a->delivered));
	return o;
}

/*
 * A fingerprint's first OUTPUT_ABBREV hex digits and an ellipsis; padded to `width` columns
 * (0: none). The full value is in the JSON output.
 */
void
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

/* Columns a string takes once printed by output_safe: a code point each, 4 per escaped byte. */
int
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
void
output_pad(FILE *fp, const char *s, int width)
{
	int w = output_width(s);

	output_safe(fp, s);
	if (width > w)
		fprintf(fp, "%*s", width - w, "");
}
