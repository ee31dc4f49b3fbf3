/* agent.conf: the [agent] section, parsed with inih as carotated.conf is. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "agent.h"
#include "valid.h"
#include "duration.h" /* one duration grammar for both configuration files */
#include "xmalloc.h"

#define CONF_MAX_SIZE  (64 * 1024)
#define CONF_MAX_VALUE 1024
#define CONF_MAX_MS    (24ULL * 3600 * 1000)

struct conf_parse {
	struct agent_conf *conf;
	const char *path;
	const char *next; /* the reader's position in the file's text */
	int lineno;       /* of the line inih is handling */
	int failed;
	char *err;
	size_t errlen;
};

static int conf_handler(void *, const char *, const char *, const char *);
static char *conf_read_line(char *, int, void *);
static int conf_set(struct agent_conf *, const char *key, const char *value, const char **why);
static void conf_knobs(void);

int
conf_valid_id(const char *s)
{
	return valid_agent_id(s, strlen(s));
}

int
conf_valid_url(const char *s)
{
	const unsigned char *p;

	if (strncmp(s, "https://", 8) != 0 || s[8] == '\0' || s[8] == '/' || strlen(s) > 1024)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return 0;
	return 1;
}

/* Debian's libinih takes its options at run time: strict, as daemon/config.c sets them. */
static void
conf_knobs(void)
{
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_inline_comments = true;
	ini_start_comment_prefixes = (char *)"#;";
	ini_inline_comment_prefixes = (char *)"#;";
	ini_use_stack = true;
	ini_max_line = CONF_MAX_VALUE + 64;
	ini_allow_realloc = false;
	ini_stop_on_first_error = true;
	ini_allow_no_value = false;
}

static void
conf_replace(char **dst, const char *value)
{
	free(*dst);
	*dst = value[0] != '\0' ? xstrdup(value) : NULL;
}

/* One key; why says what is wrong with the value. 0 or -1. */
static int
conf_set(struct agent_conf *c, const char *key, const char *value, const char **why)
{
	const char *dwhy;
	uint64_t ms;

	if (strcmp(key, "hook_timeout") == 0 || strcmp(key, "timeout") == 0) {
		if (duration_parse_ms(value, &ms, &dwhy) == -1 || ms < 1000 || ms > CONF_MAX_MS) {
			*why = "a duration from 1s to 24h (30s, 5m)";
			return -1;
		}
		*(key[0] == 'h' ? &c->hook_timeout_ms : &c->timeout_ms) = ms;
		return 0;
	}
	if ((strcmp(key, "server") == 0 || strcmp(key, "canary_url") == 0) && value[0] != '\0' &&
	    !conf_valid_url(value)) {
		*why = "an https:// URL";
		return -1;
	}
	if (strcmp(key, "id") == 0 && value[0] != '\0' && !conf_valid_id(value)) {
		*why = "1 to 64 of A-Z a-z 0-9 . _ -";
		return -1;
	}
	if ((strcmp(key, "state_dir") == 0 || strcmp(key, "bundle") == 0) && value[0] != '/') {
		*why = "an absolute path";
		return -1;
	}
	if (strcmp(key, "ca_file") == 0 && value[0] != '\0' && value[0] != '/') {
		*why = "an absolute path";
		return -1;
	}
	if (strcmp(key, "server") == 0)
		conf_replace(&c->server, value);
	else if (strcmp(key, "id") == 0)
		conf_replace(&c->id, value);
	else if (strcmp(key, "state_dir") == 0)
		conf_replace(&c->state_dir, value);
	else if (strcmp(key, "bundle") == 0)
		conf_replace(&c->bundle, value);
	else if (strcmp(key, "hook") == 0)
		conf_replace(&c->hook, value);
	else if (strcmp(key, "canary_url") == 0)
		conf_replace(&c->canary_url, value);
	else if (strcmp(key, "ca_file") == 0)
		conf_replace(&c->ca_file, value);
	else {
		*why = "unknown key";
		return -1;
	}
	return 0;
}

/* inih's reader: one line of the text, counted, so that errors can name it. */
static char *
conf_read_line(char *str, int num, void *user)
{
	struct conf_parse *ps = user;
	const char *nl;
	size_t n;

	if (ps->next == NULL || *ps->next == '\0' || ps->failed)
		return NULL;
	ps->lineno++;
	nl = strchr(ps->next, '\n');
	n = nl != NULL ? (size_t)(nl - ps->next) + 1 : strlen(ps->next);
	if (n > (size_t)num - 1) {
		snprintf(ps->err, ps->errlen, "%s:%d: line too long", ps->path, ps->lineno);
		ps->failed = 1;
		return NULL;
	}
	memcpy(str, ps->next, n);
	str[n] = '\0';
	ps->next += n;
	return str;
}

static int
conf_handler(void *user, const char *section, const char *key, const char *value)
{
	int lineno = ((struct conf_parse *)user)->lineno;
	struct conf_parse *ps = user;
	const char *why = NULL;

	if (ps->failed)
		return 0;
	if (strcmp(section, "agent") != 0)
		why = "keys belong in the [agent] section";
	else if (strlen(value) > CONF_MAX_VALUE)
		why = "value too long";
	if (why != NULL || conf_set(ps->conf, key, value, &why) == -1) {
		snprintf(ps->err, ps->errlen, "%s:%d: %s: %s", ps->path, lineno, key, why);
		ps->failed = 1;
		return 0;
	}
	return 1;
}

int
conf_load(const char *path, int missing_ok, struct agent_conf *c, char *err, size_t errlen)
{
	struct conf_parse ps = { c, path, NULL, 0, 0, err, errlen };
	size_t len;
	char *buf;
	int rc;

	memset(c, 0, sizeof(*c));
	c->state_dir = xstrdup("/var/lib/carotate-agent");
	c->bundle = xstrdup("/etc/carotate-agent/ca-bundle.pem");
	c->hook_timeout_ms = 30000;
	c->timeout_ms = 30000;
	if (fsio_read(path, CONF_MAX_SIZE, &buf, &len, err, errlen) == -1)
		return missing_ok && errno == ENOENT ? 0 : -1;
	if (strlen(buf) != len) {
		snprintf(err, errlen, "%s: holds a NUL byte", path);
		free(buf);
		return -1;
	}
	conf_knobs();
	ps.next = buf;
	rc = ini_parse_stream(conf_read_line, &ps, conf_handler, &ps);
	free(buf);
	if (ps.failed)
		return -1;
	if (rc != 0) {
		snprintf(err, errlen,
		    "%s:%d: syntax error: expected \"[agent]\" or \"key = value\"", path, rc);
		return -1;
	}
	return 0;
}

void
conf_free(struct agent_conf *c)
{
	free(c->server);
	free(c->id);
	free(c->state_dir);
	free(c->bundle);
	free(c->hook);
	free(c->canary_url);
	free(c->ca_file);
	memset(c, 0, sizeof(*c));
}
