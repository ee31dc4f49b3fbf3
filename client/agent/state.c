/*
 * state_dir: `state`, a key=value text file (one key a line, `proven` repeated), and
 * `token` (0600). Both are written whole and atomically; a state file that does not parse
 * is refused with the line that is wrong, never half-used.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "xmalloc.h"

#define STATE_MAX_SIZE     (64 * 1024)
#define STATE_MAX_RESULT   300
#define STATE_LOCK_POLL_MS 20 /* between two tries of a lock another run holds */

static int state_hex64(const char *);
static int state_clean_text(const char *);
static int state_line(struct agent_state *, char *line, const char **why);

static int
state_hex64(const char *s)
{
	return strlen(s) == AGENT_HEX64 && strspn(s, "0123456789abcdef") == AGENT_HEX64;
}

/* Printable ASCII only: the file is read back by status and shown on a terminal. */
static int
state_clean_text(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* One "key=value" line into st. 0, or -1 with why. */
static int
state_line(struct agent_state *st, char *line, const char **why)
{
	char *eq = strchr(line, '='), *val, *end;
	long long n;

	if (eq == NULL) {
		*why = "expected key=value";
		return -1;
	}
	*eq = '\0';
	val = eq + 1;
	if (!state_clean_text(val)) {
		*why = "control character in value";
		return -1;
	}
	if (strcmp(line, "version") == 0) {
		if (strcmp(val, "1") != 0) {
			*why = "unknown version";
			return -1;
		}
	} else if (strcmp(line, "server") == 0) {
		if (!conf_valid_url(val) || st->server != NULL) {
			*why = "server: not one https:// URL";
			return -1;
		}
		st->server = xstrdup(val);
	} else if (strcmp(line, "id") == 0) {
		if (!conf_valid_id(val) || st->id != NULL) {
			*why = "id: not one valid agent id";
			return -1;
		}
		st->id = xstrdup(val);
	} else if (strcmp(line, "etag") == 0) {
		if (val[0] != '\0' && !state_hex64(val)) {
			*why = "etag: not 64 lower-case hex digits";
			return -1;
		}
		snprintf(st->etag, sizeof(st->etag), "%s", val);
	} else if (strcmp(line, "last_result") == 0) {
		if (strlen(val) > STATE_MAX_RESULT || st->last_result != NULL) {
			*why = "last_result: too long or repeated";
			return -1;
		}
		st->last_result = xstrdup(val);
	} else if (strcmp(line, "last_time") == 0) {
		errno = 0;
		n = strtoll(val, &end, 10);
		if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0) {
			*why = "last_time: not a number of seconds";
			return -1;
		}
		st->last_time = n;
	} else if (strcmp(line, "hook_owed") == 0) {
		if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0) {
			*why = "hook_owed: not 0 or 1";
			return -1;
		}
		st->hook_owed = val[0] == '1';
	} else if (strcmp(line, "proven") == 0) {
		if (!state_hex64(val) || st->n_proven == AGENT_MAX_PROVEN) {
			*why = "proven: not 64 lower-case hex digits, or too many";
			return -1;
		}
		memcpy(st->proven[st->n_proven++], val, AGENT_HEX64 + 1);
	} else {
		*why = "unknown key";
		return -1;
	}
	return 0;
}

int
state_parse(const char *buf, size_t len, struct agent_state *out, char *why, size_t whylen)
{
	struct agent_state st;
	char *copy, *p, *line;
	const char *what = NULL;
	int lineno = 0, version = 0;

	memset(&st, 0, sizeof(st));
	if (len > STATE_MAX_SIZE || memchr(buf, '\0', len) != NULL) {
		snprintf(why, whylen, "too large or binary");
		return -1;
	}
	if (len == 0 || buf[len - 1] != '\n') {
		snprintf(why, whylen, "truncated (no final newline)");
		return -1;
	}
	p = copy = xstrndup(buf, len);
	while (what == NULL && (line = strsep(&p, "\n")) != NULL) {
		if (p == NULL && line[0] == '\0')
			break; /* after the final newline */
		lineno++;
		if (strncmp(line, "version=", 8) == 0)
			version = 1;
		if (state_line(&st, line, &what) == -1)
			break;
	}
	free(copy);
	if (what == NULL && !version)
		what = "no version line";
	if (what == NULL && (st.server == NULL || st.id == NULL))
		what = "no server or id";
	if (what != NULL) {
		snprintf(why, whylen, "line %d: %s", lineno, what);
		state_free(&st);
		return -1;
	}
	*out = st;
	return 0;
}

char *
state_format(const struct agent_state *st)
{
	char *out, *prev;
	int i;

	xasprintf(&out,
	    "version=1\nserver=%s\nid=%s\netag=%s\nlast_result=%s\nlast_time=%" PRId64
	    "\nhook_owed=%d\n",
	    st->server, st->id, st->etag, st->last_result != NULL ? st->last_result : "",
	    st->last_time, st->hook_owed);
	for (i = 0; i < st->n_proven; i++) {
		prev = out;
		xasprintf(&out, "%sproven=%s\n", prev, st->proven[i]);
		free(prev);
	}
	return out;
}

int
state_load(const char *dir, struct agent_state *st, char *err, size_t errlen)
{
	char *path, *buf, why[128];
	size_t len;
	int rc = 1;

	xasprintf(&path, "%s/state", dir);
	if (fsio_read(path, STATE_MAX_SIZE, &buf, &len, err, errlen) == -1) {
		rc = errno == ENOENT ? 0 : -1;
		if (errno == EFBIG)
			snprintf(err, errlen, "%s: corrupt state: too large", path);
	} else {
		if (state_parse(buf, len, st, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: corrupt state: %s (move it away and link again)",
			    path, why);
			rc = -1;
		}
		free(buf);
	}
	free(path);
	return rc;
}

int
state_save(const char *dir, const struct agent_state *st, char *err, size_t errlen)
{
	char *path, *text;
	int rc;

	xasprintf(&path, "%s/state", dir);
	text = state_format(st);
	rc = fsio_write_atomic(path, text, strlen(text), 0600, err, errlen);
	free(text);
	free(path);
	return rc;
}

int
state_stage(const char *dir, const struct agent_state *st, char **tmp, char *err, size_t errlen)
{
	char *path, *text;
	int rc;

	xasprintf(&path, "%s/state", dir);
	text = state_format(st);
	rc = fsio_stage(path, text, strlen(text), 0600, tmp, err, errlen);
	free(text);
	free(path);
	return rc;
}

int
state_commit(const char *dir, const char *tmp, char *err, size_t errlen)
{
	char *path;
	int rc;

	xasprintf(&path, "%s/state", dir);
	rc = fsio_commit(tmp, path, err, errlen);
	if (rc == 0)
		rc = fsio_sync_dir(path, err, errlen);
	free(path);
	return rc;
}

/*
 * The directory itself is locked, not a file in it: a check-in before link leaves
 * state_dir empty, and there is no stale lock file to mind. Polled rather than blocking
 * so that the wait has a deadline without a signal.
 */
int
state_lock(const char *dir, uint64_t timeout_ms, int *fdp, char *err, size_t errlen)
{
	const struct timespec nap = { 0, STATE_LOCK_POLL_MS * 1000000L };
	uint64_t waited = 0;
	int fd, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: cannot open: %s", dir, strerror(errno));
		errno = saved;
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			saved = errno;
			snprintf(err, errlen, "%s: cannot lock: %s", dir, strerror(errno));
			close(fd);
			errno = saved;
			return -1;
		}
		if (waited >= timeout_ms) {
			snprintf(err, errlen,
			    "another run holds the lock on %s: gave up after %" PRIu64 " s", dir,
			    timeout_ms / 1000);
			close(fd);
			return 1;
		}
		(void)nanosleep(&nap, NULL);
		waited += STATE_LOCK_POLL_MS;
	}
	*fdp = fd;
	return 0;
}

void
state_free(struct agent_state *st)
{
	free(st->server);
	free(st->id);
	free(st->last_result);
	memset(st, 0, sizeof(*st));
}

int
state_is_proven(const struct agent_state *st, const char *fp)
{
	int i;

	for (i = 0; i < st->n_proven; i++)
		if (strcmp(st->proven[i], fp) == 0)
			return 1;
	return 0;
}

/* A full list drops its oldest entry: a CA proven 64 rotations ago is long gone. */
void
state_add_proven(struct agent_state *st, const char *fp)
{
	if (state_is_proven(st, fp) || !state_hex64(fp))
		return;
	if (st->n_proven == AGENT_MAX_PROVEN) {
		memmove(
		    st->proven[0], st->proven[1], sizeof(st->proven[0]) * (AGENT_MAX_PROVEN - 1));
		st->n_proven--;
	}
	memcpy(st->proven[st->n_proven++], fp, AGENT_HEX64 + 1);
}

/* Keeps what status prints: printable, one line, bounded. */
void
state_set_result(struct agent_state *st, const char *result)
{
	char *r = xstrndup(result, STATE_MAX_RESULT);
	char *p;

	for (p = r; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	free(st->last_result);
	st->last_result = r;
}

int
state_load_token(const char *dir, char tok[AGENT_HEX64 + 1], char *err, size_t errlen)
{
	char *path, *buf;
	size_t len;
	int rc = 1;

	xasprintf(&path, "%s/token", dir);
	if (fsio_read(path, 128, &buf, &len, err, errlen) == -1) {
		rc = errno == ENOENT ? 0 : -1;
	} else {
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = '\0';
		if (!state_hex64(buf)) {
			snprintf(err, errlen, "%s: corrupt token (link again)", path);
			rc = -1;
		} else
			memcpy(tok, buf, AGENT_HEX64 + 1);
		explicit_bzero(buf, len);
		free(buf);
	}
	free(path);
	return rc;
}

int
state_save_token(const char *dir, const char *tok, char *err, size_t errlen)
{
	char *path, line[AGENT_HEX64 + 2];
	int rc;

	xasprintf(&path, "%s/token", dir);
	snprintf(line, sizeof(line), "%s\n", tok);
	rc = fsio_write_atomic(path, line, strlen(line), 0600, err, errlen);
	explicit_bzero(line, sizeof(line));
	free(path);
	return rc;
}

int
state_mkdir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	return 0;
}
