/*
 * One HTTPS request on one libcurl easy handle (so one connection, one handshake): https
 * only, no redirects, a deadline, a 1 MiB body cap. The certificate verification callback
 * (OpenSSL backend, CURLOPT_SSL_CTX_FUNCTION) captures the chain served on this very
 * connection and, for a first contact by pin, is the whole trust decision.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "agent.h"
#include "xmalloc.h"

#define HTTP_MAX_HEADER 8192

struct http_call {
	const struct http_req *req;
	struct http_resp *resp;
};

static size_t http_on_body(char *, size_t, size_t, void *);
static size_t http_on_header(char *, size_t, size_t, void *);
static CURLcode http_on_ssl_ctx(CURL *, void *sslctx, void *arg);
static int http_on_verify(X509_STORE_CTX *, void *arg);
static int http_pin_ok(X509_STORE_CTX *, struct http_call *);
static void http_header_hex64(
    const char *v, size_t n, int quoted, char out[AGENT_HEX64 + 1], int *bad);
static int http_curl_error(
    CURLcode, struct http_resp *, const char *ebuf, char *err, size_t errlen);
static int http_host(const char *url, char *host, size_t hostlen);

int
http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* Past the cap the transfer is aborted (CURLE_WRITE_ERROR): a bundle is at most 1 MiB. */
static size_t
http_on_body(char *p, size_t size, size_t n, void *arg)
{
	struct http_resp *r = arg;

	n *= size;
	if (r->len + n > AGENT_MAX_BUNDLE) {
		r->too_big = 1;
		return 0;
	}
	r->body = xreallocarray(r->body, 1, r->len + n + 1);
	memcpy(r->body + r->len, p, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* A value of exactly 64 lower-case hex digits ("quoted" for an ETag), else *bad. */
static void
http_header_hex64(const char *v, size_t n, int quoted, char out[AGENT_HEX64 + 1], int *bad)
{
	if (quoted) {
		if (n < 2 || v[0] != '"' || v[n - 1] != '"') {
			*bad = 1;
			return;
		}
		v++;
		n -= 2;
	}
	if (n != AGENT_HEX64 || strspn(v, "0123456789abcdef") < AGENT_HEX64) {
		*bad = 1;
		return;
	}
	memcpy(out, v, AGENT_HEX64);
	out[AGENT_HEX64] = '\0';
}

static size_t
http_on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http_resp *r = arg;
	size_t total = size * nmemb, len = total, klen, n;
	const char *colon, *v;

	if (total > HTTP_MAX_HEADER)
		return 0;
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue): forget the previous one's headers. */
		r->etag[0] = r->token[0] = r->canary[0] = r->canary_refused[0] = '\0';
		r->etag_bad = r->token_bad = 0;
		r->retry_after = -1;
		return total;
	}
	if ((colon = memchr(p, ':', len)) == NULL)
		return total;
	klen = (size_t)(colon - p);
	for (v = colon + 1; v < p + len && (*v == ' ' || *v == '\t'); v++)
		;
	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n' || p[len - 1] == ' '))
		len--;
	n = p + len > v ? (size_t)(p + len - v) : 0;
	if (klen == 4 && strncasecmp(p, "ETag", 4) == 0)
		http_header_hex64(v, n, 1, r->etag, &r->etag_bad);
	else if (klen == 13 && strncasecmp(p, "X-Agent-Token", 13) == 0)
		http_header_hex64(v, n, 0, r->token, &r->token_bad);
	else if (klen == 17 && strncasecmp(p, "X-Carotate-Canary", 17) == 0 &&
	         n < sizeof(r->canary)) {
		memcpy(r->canary, v, n);
		r->canary[n] = '\0';
		if (!conf_valid_url(r->canary)) {
			/* XXX: announced by the proxy; only ever an https URL */
			memcpy(r->canary_refused, r->canary, n + 1);
			r->canary[0] = '\0';
		}
	} else if (klen == 11 && strncasecmp(p, "Retry-After", 11) == 0 && n > 0 && n < 10 &&
	           isdigit((unsigned char)v[0]))
		r->retry_after = strtol(v, NULL, 10);
	return total;
}

/*
 * With a pin: the served chain must hold a CA certificate whose DER SHA-256 is the pin,
 * and the leaf must verify (purpose TLS server, host name) with that CA as the only
 * anchor. Otherwise the handshake fails and no request is sent.
 */
static int
http_pin_ok(X509_STORE_CTX *ctx, struct http_call *c)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(ctx);
	X509 *leaf = X509_STORE_CTX_get0_cert(ctx), *x;
	char fp[AGENT_HEX64 + 1];
	int i;

	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		x = sk_X509_value(chain, i);
		if (bundle_fingerprint(x, fp) == 0 && strcmp(fp, c->req->pin) == 0 &&
		    (X509_get_extension_flags(x) & EXFLAG_CA) &&
		    bundle_ca_verifies(x, leaf, chain, c->resp->host))
			return 1;
	}
	c->resp->pin_failed = 1;
	X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_UNTRUSTED);
	return 0;
}

/* Replaces X509_verify_cert for this handle: capture what was served, then decide. */
static int
http_on_verify(X509_STORE_CTX *ctx, void *arg)
{
	struct http_call *c = arg;
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(ctx);
	X509 *leaf = X509_STORE_CTX_get0_cert(ctx);

	X509_free(c->resp->leaf);
	sk_X509_pop_free(c->resp->chain, X509_free);
	c->resp->leaf = NULL;
	c->resp->chain = NULL;
	if (leaf != NULL && X509_up_ref(leaf) == 1)
		c->resp->leaf = leaf;
	if (chain != NULL)
		c->resp->chain = X509_chain_up_ref(chain);
	if (c->req->pin != NULL)
		return http_pin_ok(ctx, c);
	return X509_verify_cert(ctx);
}

static CURLcode
http_on_ssl_ctx(CURL *curl, void *sslctx, void *arg)
{
	SSL_CTX_set_cert_verify_callback(sslctx, http_on_verify, arg);
	return CURLE_OK;
}

/* The URL's host (brackets of an IPv6 literal removed), for the verification. */
static int
http_host(const char *url, char *host, size_t hostlen)
{
	CURLU *u = curl_url();
	char *h = NULL;
	size_t n;
	int rc = -1;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK) {
		n = strlen(h);
		if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
			snprintf(host, hostlen, "%.*s", (int)(n - 2), h + 1);
		else
			snprintf(host, hostlen, "%s", h);
		rc = 0;
	}
	curl_free(h);
	curl_url_cleanup(u);
	return rc;
}

/* libcurl's failure as an exit code and one line. */
static int
http_curl_error(CURLcode cc, struct http_resp *r, const char *ebuf, char *err, size_t errlen)
{
	const char *what = ebuf[0] != '\0' ? ebuf : curl_easy_strerror(cc);

	if (r->pin_failed) {
		snprintf(err, errlen,
		    "pin mismatch: the proxy's chain holds no CA with that fingerprint that "
		    "verifies its certificate");
		return AGENT_EINVALID;
	}
	if (r->too_big) {
		snprintf(
		    err, errlen, "the proxy's answer is larger than %d bytes", AGENT_MAX_BUNDLE);
		return AGENT_EINVALID;
	}
	switch (cc) {
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_OUT_OF_MEMORY:
		snprintf(err, errlen, "cannot load the trust file: %s", what);
		return AGENT_EINTERNAL;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(err, errlen, "bad URL: %s", what);
		return AGENT_EUSAGE;
	case CURLE_WEIRD_SERVER_REPLY:
		snprintf(err, errlen, "malformed answer from the proxy: %s", what);
		return AGENT_EINVALID;
	default:
		snprintf(err, errlen, "proxy unreachable: %s", what);
		return AGENT_EUNREACH;
	}
}

int
http_request(const struct http_req *req, struct http_resp *resp, char *err, size_t errlen)
{
	struct http_call call = { req, resp };
	char ebuf[CURL_ERROR_SIZE] = "", *line;
	struct curl_slist *hdrs = NULL;
	CURL *curl;
	CURLcode cc;
	int rc;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if (http_host(req->url, resp->host, sizeof(resp->host)) == -1) {
		snprintf(err, errlen, "bad URL");
		return AGENT_EUSAGE;
	}
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot start libcurl");
		return AGENT_EINTERNAL;
	}
	if (req->bearer != NULL) {
		xasprintf(&line, "Authorization: Bearer %s", req->bearer);
		hdrs = curl_slist_append(hdrs, line);
		explicit_bzero(line, strlen(line));
		free(line);
	}
	if (req->agent_id != NULL) {
		xasprintf(&line, "X-Agent-Id: %s", req->agent_id);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
	}
	if (req->token != NULL) {
		xasprintf(&line, "X-Agent-Token: %s", req->token);
		hdrs = curl_slist_append(hdrs, line);
		explicit_bzero(line, strlen(line));
		free(line);
	}
	if (req->etag != NULL && req->etag[0] != '\0') {
		xasprintf(&line, "If-None-Match: \"%s\"", req->etag);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "carotate-agent/" CAROTATE_VERSION);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, http_on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(curl, CURLOPT_CAINFO, req->ca_file);
	curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, http_on_ssl_ctx);
	curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, &call);
	if (req->post) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
		rc = AGENT_OK;
	} else
		rc = http_curl_error(cc, resp, ebuf, err, errlen);
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdrs);
	return rc;
}

void
http_resp_free(struct http_resp *r)
{
	free(r->body);
	X509_free(r->leaf);
	sk_X509_pop_free(r->chain, X509_free);
	explicit_bzero(r->token, sizeof(r->token));
	memset(r, 0, sizeof(*r));
}
