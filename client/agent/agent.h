/*
 * carotate-agent: the agent half of the protocol, one module per job:
 * conf.c (agent.conf), state.c (state_dir), fsio.c (atomic files), bundle.c (validation),
 * http.c (libcurl), hook.c (the hook), main.c (verbs; the one place exit codes are chosen).
 * Errors travel as values with a message for the operator in a caller's buffer.
 */
#ifndef CAROTATE_AGENT_H
#define CAROTATE_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "proto_limits.h"

/* Exit codes (carotate-agent(8)). */
enum agent_exit {
	AGENT_OK = 0,
	AGENT_EUSAGE = 1,     /* usage or configuration */
	AGENT_EUNREACH = 2,   /* connect, TLS, timeout, 5xx, canary failure */
	AGENT_ENOTLINKED = 3, /* no token in state_dir */
	AGENT_EREFUSED = 4,   /* 401: the token is refused, relink */
	AGENT_EINVALID = 5,   /* the proxy sent something invalid (or a pin mismatch) */
	AGENT_EINTERNAL = 6,  /* disk full, unwritable or corrupt state */
};

#define AGENT_ERRLEN       512
#define AGENT_HEX64        64
#define AGENT_MAX_BUNDLE   (1024 * 1024) /* bytes of PEM */
#define AGENT_MAX_CAS      64
#define AGENT_MAX_PROVEN   64 /* fingerprints remembered; the oldest go first */
#define AGENT_ID_MAX       LIMITS_MAX_AGENT_ID
#define AGENT_DEFAULT_CONF "/etc/carotate-agent/agent.conf"

/* ---- conf.c: agent.conf ([agent] section) */
struct agent_conf {
	char *server;     /* https URL or NULL */
	char *id;         /* NULL: /etc/machine-id */
	char *state_dir;  /* never NULL */
	char *bundle;     /* never NULL */
	char *hook;       /* NULL: none */
	char *canary_url; /* NULL: what the proxy announces */
	char *ca_file;    /* trust for the first contact, or NULL */
	uint64_t hook_timeout_ms;
	uint64_t timeout_ms;
};

/* Defaults, then path's keys. missing_ok: a missing file leaves the defaults. 0 or -1. */
int conf_load(const char *path, int missing_ok, struct agent_conf *, char *err, size_t errlen);
void conf_free(struct agent_conf *);
/* 1 when s is a valid agent id: valid_agent_id (1-64 of [A-Za-z0-9._-]). */
int conf_valid_id(const char *s);
/* 1 when s is an https:// URL without spaces or control characters, at most 1024 bytes. */
int conf_valid_url(const char *s);

/* ---- state.c: state_dir/state and state_dir/token */
struct agent_state {
	char *server;
	char *id;
	char etag[AGENT_HEX64 + 1]; /* "" when none */
	char *last_result;          /* "ok", "unchanged", or the last error's line */
	int64_t last_time;          /* Unix seconds, 0: never */
	int hook_owed;              /* the bundle changed and the hook has not succeeded since */
	int n_proven;
	char proven[AGENT_MAX_PROVEN][AGENT_HEX64 + 1]; /* CA fingerprints seen in a handshake */
};

/* Parses the text of a state file. 0, or -1 with why (never touches st's strings then). */
int state_parse(const char *buf, size_t len, struct agent_state *, char *why, size_t whylen);
/* The text of st; the caller frees it. */
char *state_format(const struct agent_state *);
/* 1 loaded, 0 no state yet, -1 unreadable or corrupt (err says which). */
int state_load(const char *dir, struct agent_state *, char *err, size_t errlen);
int state_save(const char *dir, const struct agent_state *, char *err, size_t errlen);
/* state_save in two steps (fsio.c's stage and commit): the text in a staged temporary file
 * (*tmp), then renamed to dir/state and the directory fsynced. 0 or -1 with err. */
int state_stage(const char *dir, const struct agent_state *, char **tmp, char *err, size_t errlen);
int state_commit(const char *dir, const char *tmp, char *err, size_t errlen);
/* An exclusive flock on state_dir itself for the whole run (O_CLOEXEC: the hook does not hold
 * it), waiting up to timeout_ms for another run to finish. 0 with *fd held (closing it
 * releases the lock), 1 when another run held it all that time, -1 with err (errno kept:
 * ENOENT when there is no state_dir). */
int state_lock(const char *dir, uint64_t timeout_ms, int *fd, char *err, size_t errlen);
void state_free(struct agent_state *);
int state_is_proven(const struct agent_state *, const char *fp);
void state_add_proven(struct agent_state *, const char *fp);
void state_set_result(struct agent_state *, const char *result);
/* The token (64 lower-case hex): 1 loaded, 0 none, -1 error. */
int state_load_token(const char *dir, char tok[AGENT_HEX64 + 1], char *err, size_t errlen);
int state_save_token(const char *dir, const char *tok, char *err, size_t errlen);
/* Creates dir 0700 when missing. */
int state_mkdir(const char *dir, char *err, size_t errlen);

/* ---- fsio.c: whole files */
/* tmp in the same directory, fsync, rename, directory fsync. */
int fsio_write_atomic(
    const char *path, const void *buf, size_t len, unsigned mode, char *err, size_t errlen);
/* The steps of fsio_write_atomic, for a caller replacing two files at once:
 * stage writes, fsyncs and closes a temporary file beside path (*tmp names it; 0 or -1 with
 * nothing left behind); discard removes a staged file and frees its name (NULL: nothing);
 * keep_prev gives the file at path the second name <path>.prev (none at path: nothing),
 * leaving the old .prev on failure; commit renames tmp to path (the caller still frees or
 * discards tmp); sync_dir fsyncs the directory holding path. Each 0 or -1 with err. */
int fsio_stage(const char *path, const void *buf, size_t len, unsigned mode, char **tmp, char *err,
    size_t errlen);
void fsio_discard(char *tmp);
int fsio_keep_prev(const char *path, char *err, size_t errlen);
int fsio_commit(const char *tmp, const char *path, char *err, size_t errlen);
int fsio_sync_dir(const char *path, char *err, size_t errlen);
/* Reads a regular file of at most max bytes; *buf is NUL-terminated. 0, or -1 (errno kept). */
int fsio_read(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen);

/* ---- bundle.c: PEM trust bundles */
/* PEM certificates only, each a CA, 1..64, at most 1 MiB. 0 or -1 with why. */
int bundle_parse(const char *pem, size_t len, STACK_OF(X509) * *cas, char *why, size_t whylen);
/* The bundle id (carotatectl(1), the agents' protocol): SHA-256 over the sorted DER of the CAs,
 * lower-case hex. */
int bundle_id(STACK_OF(X509) * cas, char id[AGENT_HEX64 + 1]);
/* SHA-256 of a certificate's DER, lower-case hex. */
int bundle_fingerprint(X509 *, char fp[AGENT_HEX64 + 1]);
/* 1 when leaf verifies for host through the CA ca alone (chain: the served intermediates). */
int bundle_ca_verifies(X509 *ca, X509 *leaf, STACK_OF(X509) * chain, const char *host);
/* Everything check-in asks of a bundle before it replaces anything. */
int bundle_validate(const char *pem, size_t len, const char *etag, X509 *leaf,
    STACK_OF(X509) * chain, const char *host, STACK_OF(X509) * *cas, char *why, size_t whylen);

/* ---- hook.c */
/* Splits on blanks; "double quotes" keep blanks. NULL-terminated argv, or -1 with why. */
int hook_split(const char *s, char ***argv, char *why, size_t whylen);
void hook_free(char **argv);
/* fork+exec, stdin /dev/null, fds >= 3 closed, PATH/CAROTATE_BUNDLE/CAROTATE_BUNDLE_ID only,
 * killed after timeout_ms. 0 when it exited 0, else -1 with why. */
int hook_run(char *const argv[], const char *bundle, const char *bundle_id, uint64_t timeout_ms,
    char *why, size_t whylen);

/* ---- http.c: one request on one libcurl handle */
struct http_req {
	const char *url;
	int post;
	const char *ca_file;  /* CURLOPT_CAINFO, or NULL with pin */
	const char *pin;      /* 64 hex: the served chain must hold this CA */
	const char *bearer;   /* Authorization: Bearer */
	const char *agent_id; /* X-Agent-Id */
	const char *token;    /* X-Agent-Token (link: a renewal) */
	const char *etag;     /* If-None-Match, or NULL */
	uint64_t timeout_ms;
};

struct http_resp {
	long status;
	char *body;
	size_t len;
	char etag[AGENT_HEX64 + 1]; /* "" unless a well-formed "<64 hex>" came */
	int etag_bad;               /* an ETag header that is not one */
	char token[AGENT_HEX64 + 1];
	int token_bad;
	char canary[1025];
	char canary_refused[1025]; /* an X-Carotate-Canary that is not https (main warns) */
	long retry_after;          /* seconds, -1: none */
	X509 *leaf;                /* the certificate served on this connection */
	STACK_OF(X509) * chain;    /* what came with it */
	char host[256];            /* the URL's host, for bundle_validate */
	int pin_failed, too_big;   /* internal flags for the caller's message */
};

int http_global_init(void);
/* Returns AGENT_OK (any HTTP status: see resp->status) or an exit code with err. */
int http_request(const struct http_req *, struct http_resp *, char *err, size_t errlen);
void http_resp_free(struct http_resp *);

/* ---- text escaping (main.c): network and file text never reaches a terminal raw */
void agent_escape(const char *in, char *out, size_t outlen);

#endif
