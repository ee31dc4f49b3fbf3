/* carotate-agent: argv, the three verbs, and the one place exit codes are chosen. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>

#include "agent.h"
#include "xmalloc.h"

#define MAIN_BUNDLE_PATH "/carotate/v1/ca-bundle"
#define MAIN_LINK_PATH   "/carotate/v1/link"

/* What one run works with: configuration, state, and the failure line if any. */
struct run {
	struct agent_conf conf;
	struct agent_state st;
	int have_state;
	char token[AGENT_HEX64 + 1];
	char err[AGENT_ERRLEN];
	int lock_fd; /* state_lock's, held until exit; -1: none */
};

/* A command's options (main_args). */
struct args {
	const char *server, *ca_file, *pin, *bearer_file, *id; /* link */
	int json;                                              /* status */
};

static void main_usage(FILE *);
static int main_fail(struct run *, int code);
static char *main_url(const char *base, const char *path);
static int main_read_secret(const char *path, char *out, size_t outlen, char *err, size_t);
static int main_machine_id(char *out, size_t outlen, char *err, size_t errlen);
static int main_status_code(struct run *, const struct http_resp *, const char *what);
static int main_check_bundle(
    struct run *, const struct http_resp *, const char *what, STACK_OF(X509) * *cas);
static int main_install(struct run *, struct http_resp *, STACK_OF(X509) * cas);
static int main_hook(struct run *);
static int main_canary(struct run *, const struct http_resp *served);
static int main_args(int argc, char **argv, struct args *);
static int main_lock(struct run *);
static void main_warn_canary(const struct http_resp *);
static int main_link(struct run *, const struct args *);
static int main_checkin(struct run *);
static int main_status(struct run *, int json);

/* The usage lines name each command's options; carotate-agent(8), its completion and
 * test_manpages.sh read them. */
static void
main_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: carotate-agent [-c FILE] link [--server URL] [--ca-file FILE | --ca-pin "
	    "sha256:HEX]\n"
	    "                          (--join-token-file FILE | --linking-key-file FILE) "
	    "[--id ID]\n"
	    "       carotate-agent [-c FILE] check-in\n"
	    "       carotate-agent [-c FILE] status [--json]\n"
	    "       carotate-agent --help | --version\n"
	    "\n"
	    "link takes the server, ca_file and id keys of the configuration when not given\n"
	    "them. Every command takes --help.\n"
	    "\n"
	    "options:\n"
	    "  -c, --config FILE  the configuration (default " AGENT_DEFAULT_CONF ")\n"
	    "  -h, --help         this text\n"
	    "  -V, --version      the version\n");
}

/* Printable ASCII stays, anything else becomes \xHH: text from the network or a file. */
void
agent_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	unsigned char c;

	for (; *in != '\0' && o + 5 < outlen; in++) {
		c = (unsigned char)*in;
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	if (outlen > 0)
		out[o < outlen ? o : outlen - 1] = '\0';
}

/* One line on stderr; a linked agent also remembers it as its last result. */
static int
main_fail(struct run *r, int code)
{
	char line[AGENT_ERRLEN * 4 + 1], ignore[AGENT_ERRLEN];

	agent_escape(r->err, line, sizeof(line));
	fprintf(stderr, "carotate-agent: %s\n", line);
	if (r->have_state && code != AGENT_EINTERNAL) {
		state_set_result(&r->st, line);
		r->st.last_time = (int64_t)time(NULL);
		(void)state_save(r->conf.state_dir, &r->st, ignore, sizeof(ignore));
	}
	return code;
}

static char *
main_url(const char *base, const char *path)
{
	size_t n = strlen(base);
	char *url;

	while (n > 0 && base[n - 1] == '/')
		n--;
	xasprintf(&url, "%.*s%s", (int)n, base, path);
	return url;
}

/* A token or key file: its first line, without the newline. */
static int
main_read_secret(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	char *buf;
	size_t len;

	if (fsio_read(path, 4096, &buf, &len, err, errlen) == -1)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	len = strlen(buf);
	if (len == 0 || len >= outlen ||
	    strspn(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
	                "vwxyz0123456789._~+/=-") != len) {
		snprintf(err, errlen, "%s: not a token (one line of token characters)", path);
		explicit_bzero(buf, len);
		free(buf);
		return -1;
	}
	memcpy(out, buf, len + 1);
	explicit_bzero(buf, len);
	free(buf);
	return 0;
}

static int
main_machine_id(char *out, size_t outlen, char *err, size_t errlen)
{
	const char *path = "/etc/machine-id";
	char *buf;
	size_t len;

	if (fsio_read(path, 128, &buf, &len, err, errlen) == -1)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	if (!conf_valid_id(buf)) {
		snprintf(err, errlen, "%s: not a valid agent id: give --id", path);
		free(buf);
		return -1;
	}
	snprintf(out, outlen, "%s", buf);
	free(buf);
	return 0;
}

/* Anything but 200 (and 304 where allowed) as an exit code and one line. */
static int
main_status_code(struct run *r, const struct http_resp *h, const char *what)
{
	if (h->status == 401) {
		snprintf(r->err, sizeof(r->err), "token refused: relink");
		return AGENT_EREFUSED;
	}
	if (h->status == 403 || h->status == 409) {
		snprintf(r->err, sizeof(r->err), "%s refused by the proxy (HTTP %ld)%s", what,
		    h->status, h->status == 409 ? ": the id is linked already" : "");
		return AGENT_EREFUSED;
	}
	if (h->status >= 500 || h->status == 429) {
		if (h->retry_after >= 0)
			snprintf(r->err, sizeof(r->err),
			    "proxy unavailable: %s answered HTTP %ld, retry after %ld s", what,
			    h->status, h->retry_after);
		else
			snprintf(r->err, sizeof(r->err), "proxy unavailable: %s answered HTTP %ld",
			    what, h->status);
		return AGENT_EUNREACH;
	}
	snprintf(r->err, sizeof(r->err), "%s: unexpected answer HTTP %ld", what, h->status);
	return AGENT_EINVALID;
}

/* 1 when the file at path is a bundle whose id is id: an install a crash cut short. */
static int
main_installed_is(const char *path, const char *id)
{
	STACK_OF(X509) *cas = NULL;
	char *pem, why[256], have[AGENT_HEX64 + 1];
	size_t len;
	int rc;

	if (fsio_read(path, AGENT_MAX_BUNDLE, &pem, &len, why, sizeof(why)) == -1)
		return 0;
	rc = bundle_parse(pem, len, &cas, why, sizeof(why)) == 0 && bundle_id(cas, have) == 0 &&
	     strcmp(have, id) == 0;
	free(pem);
	sk_X509_pop_free(cas, X509_free);
	return rc;
}

/*
 * Both new files are written and fsynced under temporary names before either is renamed,
 * so that a full disk or an I/O error leaves bundle, .prev and state as they were. Then
 * .prev, the bundle and its directory, the state and its directory, in that order: the
 * state never names a bundle that is not on disk. A crash (or a failed rename) between the
 * bundle's rename and the state's leaves the new bundle in place with the state naming the
 * old one; the next check-in presents the old id, gets the same 200 and installs again.
 * That second install must not turn the new bundle into .prev: the file in place already
 * has the incoming id, so .prev is left alone, and the old bundle stays there.
 */
static int
main_install_files(struct run *r, const struct http_resp *h)
{
	char *btmp = NULL, *stmp = NULL;
	int rc = -1;

	if (fsio_stage(r->conf.bundle, h->body, h->len, 0644, &btmp, r->err, sizeof(r->err)) ==
	        -1 ||
	    state_stage(r->conf.state_dir, &r->st, &stmp, r->err, sizeof(r->err)) == -1)
		goto out;
	if (!main_installed_is(r->conf.bundle, h->etag) &&
	    fsio_keep_prev(r->conf.bundle, r->err, sizeof(r->err)) == -1)
		goto out;
	if (fsio_commit(btmp, r->conf.bundle, r->err, sizeof(r->err)) == -1)
		goto out;
	free(btmp);
	btmp = NULL;
	if (fsio_sync_dir(r->conf.bundle, r->err, sizeof(r->err)) == -1 ||
	    state_commit(r->conf.state_dir, stmp, r->err, sizeof(r->err)) == -1)
		goto out;
	free(stmp);
	stmp = NULL;
	rc = 0;
out:
	fsio_discard(btmp);
	fsio_discard(stmp);
	return rc;
}

/*
 * The checks of a 200, before anything is written: a valid ETag and a bundle validated
 * whole against it and the served chain. *cas gets the bundle's CAs (the caller frees).
 */
static int
main_check_bundle(struct run *r, const struct http_resp *h, const char *what, STACK_OF(X509) * *cas)
{
	char why[256];

	*cas = NULL;
	if (h->etag_bad || h->etag[0] == '\0') {
		snprintf(r->err, sizeof(r->err), "%s: 200 without a valid ETag", what);
		return AGENT_EINVALID;
	}
	if (bundle_validate(h->body != NULL ? h->body : "", h->len, h->etag, h->leaf, h->chain,
	        h->host, cas, why, sizeof(why)) == -1) {
		snprintf(r->err, sizeof(r->err), "%s: invalid bundle: %s", what, why);
		return AGENT_EINVALID;
	}
	return AGENT_OK;
}

/*
 * A 200's bundle, checked by main_check_bundle (its CAs: cas, freed here), installed with
 * the state that names it (hook owed). The CAs that verify the served certificate are
 * proven by this very handshake.
 */
static int
main_install(struct run *r, struct http_resp *h, STACK_OF(X509) * cas)
{
	char fp[AGENT_HEX64 + 1], old_etag[AGENT_HEX64 + 1];
	int i, old_owed;

	for (i = 0; i < sk_X509_num(cas); i++)
		if (bundle_ca_verifies(sk_X509_value(cas, i), h->leaf, h->chain, h->host) &&
		    bundle_fingerprint(sk_X509_value(cas, i), fp) == 0)
			state_add_proven(&r->st, fp);
	sk_X509_pop_free(cas, X509_free);
	memcpy(old_etag, r->st.etag, sizeof(old_etag));
	old_owed = r->st.hook_owed;
	memcpy(r->st.etag, h->etag, sizeof(r->st.etag));
	r->st.hook_owed = r->conf.hook != NULL;
	if (main_install_files(r, h) == -1) {
		memcpy(r->st.etag, old_etag, sizeof(r->st.etag));
		r->st.hook_owed = old_owed;
		return AGENT_EINTERNAL;
	}
	return AGENT_OK;
}

/* Runs the hook when one is owed; the state keeps owing it until it succeeds. */
static int
main_hook(struct run *r)
{
	char **argv, why[256];
	int rc;

	if (!r->st.hook_owed)
		return AGENT_OK;
	if (r->conf.hook == NULL) {
		r->st.hook_owed = 0;
		return AGENT_OK;
	}
	if (hook_split(r->conf.hook, &argv, r->err, sizeof(r->err)) == -1)
		return AGENT_EUSAGE;
	rc = hook_run(argv, r->conf.bundle, r->st.etag, r->conf.hook_timeout_ms, why, sizeof(why));
	hook_free(argv);
	if (rc == -1) {
		snprintf(r->err, sizeof(r->err), "%s (it runs again at the next check-in)", why);
		return AGENT_EINTERNAL;
	}
	r->st.hook_owed = 0;
	return AGENT_OK;
}

/*
 * The canary proof: when the installed bundle holds a CA that the proxy's own listener has
 * not yet served a certificate of (not proven), one check-in through the canary URL
 * trusting only that bundle. It never changes the bundle, and it proves nothing for good:
 * the proxy counts a canary check-in only once it has itself seen the canary serve the
 * staged certificate (after its reload), which this agent cannot see. A proof made before
 * that would count for nothing, so it is made again at every run until the staged CA is
 * live (then the main listener proves it) or retired.
 */
static int
main_canary(struct run *r, const struct http_resp *served)
{
	const char *base = served->canary[0] != '\0' ? served->canary : r->conf.canary_url;
	STACK_OF(X509) *cas = NULL;
	struct http_req req;
	struct http_resp h;
	char *pem, *url, fp[AGENT_HEX64 + 1], why[256];
	size_t len;
	int i, unproven = 0, rc;

	if (fsio_read(r->conf.bundle, AGENT_MAX_BUNDLE, &pem, &len, r->err, sizeof(r->err)) == -1)
		return AGENT_EINTERNAL;
	rc = bundle_parse(pem, len, &cas, why, sizeof(why));
	free(pem);
	if (rc == -1) {
		snprintf(r->err, sizeof(r->err), "%s: %s", r->conf.bundle, why);
		return AGENT_EINTERNAL;
	}
	for (i = 0; i < sk_X509_num(cas); i++) {
		if (bundle_fingerprint(sk_X509_value(cas, i), fp) == -1)
			continue;
		/* The main listener's certificate proves its CA, on a 304 as on a 200. */
		if (served->leaf != NULL && bundle_ca_verifies(sk_X509_value(cas, i), served->leaf,
		                                served->chain, served->host))
			state_add_proven(&r->st, fp);
		if (!state_is_proven(&r->st, fp))
			unproven++;
	}
	if (unproven == 0 || base == NULL) {
		sk_X509_pop_free(cas, X509_free);
		return AGENT_OK; /* nothing to prove, or nowhere to prove it (status shows it) */
	}
	memset(&req, 0, sizeof(req));
	req.url = url = main_url(base, MAIN_BUNDLE_PATH);
	req.ca_file = r->conf.bundle;
	req.bearer = r->token;
	req.agent_id = r->st.id;
	req.etag = r->st.etag;
	req.timeout_ms = r->conf.timeout_ms;
	rc = http_request(&req, &h, why, sizeof(why));
	free(url);
	if (rc == AGENT_OK && h.status != 200 && h.status != 304) {
		rc = main_status_code(r, &h, "canary check-in");
		snprintf(why, sizeof(why), "%.200s", r->err);
	}
	if (rc != AGENT_OK) {
		snprintf(r->err, sizeof(r->err), "canary check-in failed: %s", why);
		rc = rc == AGENT_EREFUSED ? rc : AGENT_EUNREACH;
	}
	http_resp_free(&h);
	sk_X509_pop_free(cas, X509_free);
	return rc;
}

/* Loads the configuration; returns an exit code. */
static int
main_conf(struct run *r, const char *path, int given)
{
	if (conf_load(path, !given, &r->conf, r->err, sizeof(r->err)) == -1)
		return main_fail(r, AGENT_EUSAGE);
	return AGENT_OK;
}

static int
main_finish(struct run *r, const char *result)
{
	state_set_result(&r->st, result);
	r->st.last_time = (int64_t)time(NULL);
	if (state_save(r->conf.state_dir, &r->st, r->err, sizeof(r->err)) == -1)
		return main_fail(r, AGENT_EINTERNAL);
	return AGENT_OK;
}

/* After the main answer (served): the hook if owed, then the canary proof, then the state. */
static int
main_after(struct run *r, const struct http_resp *served, const char *result)
{
	int rc;

	if ((rc = main_hook(r)) != AGENT_OK) {
		char ignore[AGENT_ERRLEN];

		(void)state_save(r->conf.state_dir, &r->st, ignore, sizeof(ignore));
		return main_fail(r, rc);
	}
	if ((rc = main_canary(r, served)) != AGENT_OK)
		return main_fail(r, rc);
	return main_finish(r, result);
}

/*
 * One run at a time per state_dir (the timer's and an operator's): the second waits up to
 * `timeout`, then does its own check-in against the state the first left. A missing
 * state_dir is left to the caller (not linked).
 */
static int
main_lock(struct run *r)
{
	int rc =
	    state_lock(r->conf.state_dir, r->conf.timeout_ms, &r->lock_fd, r->err, sizeof(r->err));

	if (rc == 1)
		return AGENT_EUNREACH;
	if (rc == -1 && errno != ENOENT)
		return AGENT_EINTERNAL;
	return AGENT_OK;
}

/* The proxy announced a canary that is not https: refused, and said, since the proxy's
 * configuration is wrong; the run goes on with canary_url. */
static void
main_warn_canary(const struct http_resp *h)
{
	char esc[sizeof(h->canary_refused) * 4 + 1];

	if (h->canary_refused[0] == '\0')
		return;
	agent_escape(h->canary_refused, esc, sizeof(esc));
	fprintf(stderr,
	    "carotate-agent: warning: ignoring X-Carotate-Canary \"%s\" from the proxy: not an "
	    "https:// URL\n",
	    esc);
}

/*
 * A command's options, parsed before the configuration is read: --help must work with a
 * broken agent.conf. 0, 1 for --help, or -1 (usage). optind must be 1 on entry.
 */
static int
main_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "ca-file", required_argument, NULL, 'f' },
		{ "ca-pin", required_argument, NULL, 'p' },
		{ "join-token-file", required_argument, NULL, 'j' },
		{ "linking-key-file", required_argument, NULL, 'k' },
		{ "id", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, i;

	memset(a, 0, sizeof(*a));
	if (strcmp(argv[0], "link") != 0) {
		for (i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--help") == 0)
				return 1;
			if (strcmp(argv[i], "--json") != 0 || strcmp(argv[0], "status") != 0)
				return -1;
			a->json = 1;
		}
		return 0;
	}
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			a->server = optarg;
			break;
		case 'f':
			a->ca_file = optarg;
			break;
		case 'p':
			a->pin = optarg;
			break;
		case 'j':
		case 'k':
			a->bearer_file = optarg;
			break;
		case 'i':
			a->id = optarg;
			break;
		case 'h':
			return 1;
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

static int
main_link(struct run *r, const struct args *a)
{
	const char *server = a->server, *ca_file = a->ca_file, *pin = a->pin,
	           *bearer_file = a->bearer_file, *id = a->id;
	char idbuf[AGENT_ID_MAX + 1], pinbuf[AGENT_HEX64 + 1], bearer[1024], *url;
	struct http_req req;
	struct http_resp h;
	STACK_OF(X509) *cas = NULL;
	int c, rc, renew = 0;

	if (server == NULL)
		server = r->conf.server;
	if (ca_file == NULL && pin == NULL)
		ca_file = r->conf.ca_file;
	if (id == NULL)
		id = r->conf.id;
	if (server == NULL || !conf_valid_url(server))
		snprintf(r->err, sizeof(r->err), "link: --server https://HOST[:PORT] is required");
	else if ((ca_file == NULL) == (pin == NULL))
		snprintf(
		    r->err, sizeof(r->err), "link: give --ca-file FILE or --ca-pin sha256:HEX");
	else if (pin != NULL &&
	         (strncmp(pin, "sha256:", 7) != 0 || strlen(pin + 7) != AGENT_HEX64 ||
	             strspn(pin + 7, "0123456789abcdefABCDEF") != AGENT_HEX64))
		snprintf(
		    r->err, sizeof(r->err), "link: --ca-pin must be sha256: and 64 hex digits");
	else if (bearer_file == NULL)
		snprintf(r->err, sizeof(r->err),
		    "link: --join-token-file FILE or --linking-key-file FILE is required");
	else if (id != NULL && !conf_valid_id(id))
		snprintf(r->err, sizeof(r->err), "link: --id: 1 to 64 of A-Z a-z 0-9 . _ -");
	else
		r->err[0] = '\0';
	if (r->err[0] != '\0')
		return main_fail(r, AGENT_EUSAGE);
	if (pin != NULL) {
		for (c = 0; c < AGENT_HEX64; c++)
			pinbuf[c] = (char)(pin[7 + c] | 0x20); /* lower case */
		pinbuf[AGENT_HEX64] = '\0';
	}
	if (id == NULL) {
		if (main_machine_id(idbuf, sizeof(idbuf), r->err, sizeof(r->err)) == -1)
			return main_fail(r, AGENT_EUSAGE);
		id = idbuf;
	}
	if (main_read_secret(bearer_file, bearer, sizeof(bearer), r->err, sizeof(r->err)) == -1)
		return main_fail(r, AGENT_EUSAGE);
	if (state_mkdir(r->conf.state_dir, r->err, sizeof(r->err)) == -1)
		return main_fail(r, AGENT_EINTERNAL);
	if ((rc = main_lock(r)) != AGENT_OK)
		return main_fail(r, rc);
	if ((rc = state_load(r->conf.state_dir, &r->st, r->err, sizeof(r->err))) == -1)
		return main_fail(r, AGENT_EINTERNAL);
	r->have_state = rc == 1;
	if (r->have_state && strcmp(r->st.id, id) == 0 &&
	    (rc = state_load_token(r->conf.state_dir, r->token, r->err, sizeof(r->err))) == 1)
		renew = 1; /* linked already: the token renews the link */
	else if (rc == -1)
		return main_fail(r, AGENT_EINTERNAL);
	if (!r->have_state || strcmp(r->st.id, id) != 0) {
		state_free(&r->st);
		r->st.id = xstrdup(id);
		r->st.server = xstrdup(server);
	}
	free(r->st.server);
	r->st.server = xstrdup(server);

	memset(&req, 0, sizeof(req));
	req.url = url = main_url(server, MAIN_LINK_PATH);
	req.post = 1;
	req.ca_file = ca_file;
	req.pin = pin != NULL ? pinbuf : NULL;
	req.bearer = bearer;
	req.agent_id = id;
	req.token = renew ? r->token : NULL;
	req.timeout_ms = r->conf.timeout_ms;
	rc = http_request(&req, &h, r->err, sizeof(r->err));
	explicit_bzero(bearer, sizeof(bearer));
	free(url);
	if (rc == AGENT_OK)
		main_warn_canary(&h);
	if (rc == AGENT_OK && h.status != 200)
		rc = main_status_code(r, &h, "link");
	if (rc == AGENT_OK && (h.token_bad || h.token[0] == '\0')) {
		snprintf(r->err, sizeof(r->err), "link: 200 without a valid X-Agent-Token");
		rc = AGENT_EINVALID;
	}
	/* Checked before the token is kept: a bad answer leaves the old link intact. */
	if (rc == AGENT_OK)
		rc = main_check_bundle(r, &h, "link", &cas);
	if (rc == AGENT_OK &&
	    state_save_token(r->conf.state_dir, h.token, r->err, sizeof(r->err)) == -1)
		rc = AGENT_EINTERNAL;
	if (rc == AGENT_OK) {
		memcpy(r->token, h.token, sizeof(r->token));
		r->have_state = 1;
		rc = main_install(r, &h, cas);
		cas = NULL;
	}
	sk_X509_pop_free(cas, X509_free);
	if (rc != AGENT_OK) {
		http_resp_free(&h);
		return main_fail(r, rc);
	}
	rc = main_after(r, &h, "linked");
	http_resp_free(&h);
	return rc;
}

static int
main_checkin(struct run *r)
{
	struct http_req req;
	struct http_resp h;
	STACK_OF(X509) *cas = NULL;
	const char *result = "unchanged";
	char *url;
	int rc;

	if ((rc = main_lock(r)) != AGENT_OK)
		return main_fail(r, rc);
	if ((rc = state_load(r->conf.state_dir, &r->st, r->err, sizeof(r->err))) == -1)
		return main_fail(r, AGENT_EINTERNAL);
	if (rc == 1)
		rc = state_load_token(r->conf.state_dir, r->token, r->err, sizeof(r->err));
	if (rc == -1)
		return main_fail(r, AGENT_EINTERNAL);
	if (rc == 0) {
		state_free(&r->st);
		snprintf(r->err, sizeof(r->err), "not linked: run carotate-agent link first");
		return main_fail(r, AGENT_ENOTLINKED);
	}
	r->have_state = 1;
	memset(&req, 0, sizeof(req));
	req.url = url = main_url(r->st.server, MAIN_BUNDLE_PATH);
	req.ca_file = r->conf.bundle;
	req.bearer = r->token;
	req.agent_id = r->st.id;
	req.etag = r->st.etag;
	req.timeout_ms = r->conf.timeout_ms;
	rc = http_request(&req, &h, r->err, sizeof(r->err));
	free(url);
	if (rc == AGENT_OK)
		main_warn_canary(&h);
	if (rc == AGENT_OK && h.status == 200) {
		if ((rc = main_check_bundle(r, &h, "check-in", &cas)) == AGENT_OK)
			rc = main_install(r, &h, cas);
		result = "updated";
	} else if (rc == AGENT_OK && h.status != 304)
		rc = main_status_code(r, &h, "check-in");
	if (rc != AGENT_OK) {
		http_resp_free(&h);
		return main_fail(r, rc);
	}
	rc = main_after(r, &h, result);
	http_resp_free(&h);
	return rc;
}

static void
main_time(const ASN1_TIME *t, char *out, size_t outlen)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(out, outlen, "?");
}

static void
main_subject(X509 *x, char *out, size_t outlen)
{
	char raw[1024];

	X509_NAME_oneline(X509_get_subject_name(x), raw, sizeof(raw));
	agent_escape(raw, out, outlen);
}

/* The human form of status's object: one "key: value" line each, the CAs indented. */
static void
main_status_print(json_t *o)
{
	const char *key;
	json_t *v, *e;
	size_t i;

	json_object_foreach(o, key, v)
	{
		if (json_is_array(v)) {
			printf("%s:%s\n", key, json_array_size(v) == 0 ? " none" : "");
			json_array_foreach(v, i, e)
			{
				if (json_is_string(e))
					printf("  %s\n", json_string_value(e));
				else
					printf("  %s  %s  not after %s%s\n",
					    json_string_value(json_object_get(e, "sha256")),
					    json_string_value(json_object_get(e, "subject")),
					    json_string_value(json_object_get(e, "not_after")),
					    json_is_true(json_object_get(e, "proven"))
					        ? ""
					        : "  (not proven)");
			}
		} else if (json_is_string(v))
			printf("%s: %s\n", key, json_string_value(v));
		else if (json_is_boolean(v))
			printf("%s: %s\n", key, json_is_true(v) ? "yes" : "no");
		else
			printf("%s: -\n", key);
	}
}

/* status: what the agent holds; everything from files or the network is escaped. */
static int
main_status(struct run *r, int json)
{
	STACK_OF(X509) *cas = NULL;
	char *pem = NULL, fp[AGENT_HEX64 + 1], subj[4096], na[64], esc[4096], why[256];
	size_t len;
	int linked, i, rc;
	json_t *o, *arr, *ca;

	if ((rc = state_load(r->conf.state_dir, &r->st, r->err, sizeof(r->err))) == -1)
		return main_fail(r, AGENT_EINTERNAL);
	linked = rc == 1 && state_load_token(r->conf.state_dir, r->token, why, sizeof(why)) == 1;
	explicit_bzero(r->token, sizeof(r->token));
	if (fsio_read(r->conf.bundle, AGENT_MAX_BUNDLE, &pem, &len, why, sizeof(why)) == 0 &&
	    bundle_parse(pem, len, &cas, why, sizeof(why)) == -1)
		cas = NULL;
	free(pem);
	o = json_object();
	agent_escape(
	    rc == 1 ? r->st.server : (r->conf.server ? r->conf.server : ""), esc, sizeof(esc));
	json_object_set_new(o, "server", json_string(esc));
	json_object_set_new(o, "id", rc == 1 ? json_string(r->st.id) : json_null());
	json_object_set_new(o, "linked", json_boolean(linked));
	agent_escape(r->conf.bundle, esc, sizeof(esc));
	json_object_set_new(o, "bundle", json_string(esc));
	json_object_set_new(o, "bundle_id",
	    rc == 1 && r->st.etag[0] != '\0' ? json_string(r->st.etag) : json_null());
	arr = json_array();
	for (i = 0; cas != NULL && i < sk_X509_num(cas); i++) {
		X509 *x = sk_X509_value(cas, i);

		bundle_fingerprint(x, fp);
		main_subject(x, subj, sizeof(subj));
		main_time(X509_get0_notAfter(x), na, sizeof(na));
		ca = json_object();
		json_object_set_new(ca, "subject", json_string(subj));
		json_object_set_new(ca, "sha256", json_string(fp));
		json_object_set_new(ca, "not_after", json_string(na));
		json_object_set_new(ca, "proven", json_boolean(state_is_proven(&r->st, fp)));
		json_array_append_new(arr, ca);
	}
	json_object_set_new(o, "cas", arr);
	arr = json_array();
	for (i = 0; i < r->st.n_proven; i++)
		json_array_append_new(arr, json_string(r->st.proven[i]));
	json_object_set_new(o, "proven", arr);
	json_object_set_new(o, "last_result",
	    r->st.last_result != NULL ? json_string(r->st.last_result) : json_null());
	if (r->st.last_time > 0) {
		time_t t = (time_t)r->st.last_time;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(o, "last_time", json_string(na));
	} else
		json_object_set_new(o, "last_time", json_null());
	json_object_set_new(o, "hook_owed", json_boolean(r->st.hook_owed));
	if (json)
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	else
		main_status_print(o);
	printf(json ? "\n" : "");
	json_decref(o);
	sk_X509_pop_free(cas, X509_free);
	return AGENT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = AGENT_DEFAULT_CONF;
	struct args a;
	struct run r;
	int c, given = 0, rc;

	memset(&r, 0, sizeof(r));
	r.lock_fd = -1;
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			given = 1;
			break;
		case 'h':
			main_usage(stdout);
			return AGENT_OK;
		case 'V':
			printf("carotate-agent %s\n", CAROTATE_VERSION);
			return AGENT_OK;
		default:
			main_usage(stderr);
			return AGENT_EUSAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		main_usage(stderr);
		return AGENT_EUSAGE;
	}
	if (strcmp(argv[0], "link") != 0 && strcmp(argv[0], "check-in") != 0 &&
	    strcmp(argv[0], "status") != 0) {
		snprintf(r.err, sizeof(r.err), "unknown command (link, check-in, status)");
		return main_fail(&r, AGENT_EUSAGE);
	}
	optind = 1;
	if ((c = main_args(argc, argv, &a)) != 0) {
		main_usage(c == 1 ? stdout : stderr);
		return c == 1 ? AGENT_OK : AGENT_EUSAGE;
	}
	if ((rc = main_conf(&r, conf, given)) != AGENT_OK) {
		conf_free(&r.conf);
		return rc;
	}
	if (strcmp(argv[0], "status") == 0)
		rc = main_status(&r, a.json); /* reads only: no lock, no libcurl */
	else if (http_global_init() == -1) {
		snprintf(r.err, sizeof(r.err), "cannot initialise libcurl");
		rc = main_fail(&r, AGENT_EINTERNAL);
	} else {
		rc = strcmp(argv[0], "link") == 0 ? main_link(&r, &a) : main_checkin(&r);
		curl_global_cleanup();
	}
	if (r.lock_fd != -1)
		close(r.lock_fd);
	explicit_bzero(r.token, sizeof(r.token));
	state_free(&r.st);
	conf_free(&r.conf);
	return rc;
}
