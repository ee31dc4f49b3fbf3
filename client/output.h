/*
 * carotatectl output: the primitives every verb's printers share. Escaping (output_safe),
 * times and spans, JSON building, table columns, and the blocks several replies carry: a
 * certificate set, the bundle, the proxy reload. The verbs' own printers are in their
 * ctl_<group>.c.
 */
#ifndef CAROTATE_OUTPUT_H
#define CAROTATE_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "carotate.pb-c.h"

/* "YYYY-MM-DDTHH:MM:SSZ" and its NUL. */
#define OUTPUT_RFC3339_LEN 21
#define OUTPUT_LABEL_WIDTH 13 /* columns of a human block's labels ("staged set:") */
#define OUTPUT_DAY         86400
#define OUTPUT_ABBREV      16 /* hex digits of a fingerprint shown before the ellipsis */

/* Formats t (seconds since the epoch) as RFC 3339 UTC; -1 if the year is outside 0000-9999. */
int output_rfc3339(int64_t t, char *buf, size_t len);
/* Formats a span of seconds with its two largest units: "45s", "12m 5s", "3h 12m", "2d 3h". */
void output_duration(uint64_t seconds, char *buf, size_t len);
/* A span of seconds in the largest unit that divides it, as DURATION arguments spell it: "7d",
 * "90m", "45s". */
void output_span(uint64_t seconds, char *buf, size_t len);
/*
 * Writes s so that a reply cannot drive the terminal or reorder what it shows: each byte of
 * invalid UTF-8 (stray, truncated, overlong, surrogate), of a C0 or C1 control, DEL, a bidi
 * control (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069) or U+2028/U+2029 is written as
 * \xHH; printable UTF-8 ("é") is written as it is.
 */
void output_safe(FILE *, const char *s);
/* Hand-built messages may leave strings NULL; unpacked ones never do: "" then. */
const char *output_s(const char *);
/* Fingerprints and serials: lower-case, no colons (free it). */
char *output_hex(const char *);
/* Columns s takes once printed by output_safe; s escaped, then blanks up to width. */
int output_width(const char *s);
void output_pad(FILE *, const char *s, int width);
/* A fingerprint's first OUTPUT_ABBREV hex digits and an ellipsis, padded to width (0: none). */
void output_abbrev(FILE *, const char *s, int width);

/* Human blocks: a label in its column, an instant (RFC 3339, else @seconds). */
void output_label(FILE *, const char *label);
void output_time_human(FILE *, int64_t);
/* A certificate set under its name ("staged set:"); `now` decides what has expired. */
void output_set_human(FILE *, const char *name, const Carotate__V1__CertSet *, int64_t now);
/* The bundle and its CAs; without members, each CA's role is guessed from the sets. */
void output_bundle_human(FILE *, const Carotate__V1__Bundle *, const Carotate__V1__CertSet *active,
    const Carotate__V1__CertSet *staged);
/* One CA of the bundle: role, subject, fingerprint, retention. */
void output_member_human(FILE *, const Carotate__V1__BundleCa *);
/* The proxy reload's outcome, its output on the lines below. */
void output_reload_human(FILE *, const Carotate__V1__ReloadResult *);

/*
 * JSON: every constructor is checked (out of memory is fatal); strings that are not UTF-8
 * keep their ASCII; instants are RFC 3339, or null when unknown (the _opt ones: 0 and "").
 */
json_t *output_jcheck(json_t *);
void output_jset(json_t *obj, const char *key, json_t *val);
json_t *output_jstr(const char *);
json_t *output_jstr_opt(const char *);
json_t *output_jhex(const char *);
json_t *output_jtime(int64_t);
json_t *output_jtime_opt(int64_t);
json_t *output_jcount(uint64_t);
json_t *output_jstrings(char **, size_t, int hex);
json_t *output_set_json(const Carotate__V1__CertSet *);
json_t *output_bundle_json(const Carotate__V1__Bundle *);
json_t *output_reload_json(const Carotate__V1__ReloadResult *);
json_t *output_pending_json(const Carotate__V1__PendingAgent *);
/* Writes j as one ASCII-only object and a newline, and frees it. 0, or -1 on a write error. */
int output_dump(FILE *, json_t *j);
/* {"error": {"status": ..., "message": ...}}: how any failure reads with --json. */
int output_error_json(FILE *, const char *status, const char *message);

#endif
