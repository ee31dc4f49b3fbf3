/*
 * Proxy reload. The command's exit status is reported, but it proves little:
 * `nginx -s reload` exits 0 even when nginx rejects the new files. What the
 * proxy really serves is checked over TLS where it matters (rotation).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carotated.h"
#include "config.h"
#include "job.h"
#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

#define PROXY_MAX_OUTPUT 4096 /* bytes of the command's output kept (its tail) */

struct proxy_reload_ctx {
	proxy_reload_done done;
	void *arg;
};

static void proxy_reload_finished(struct job *, void *);
static char *proxy_printable(const unsigned char *, size_t);

/* The output as one printable line: control bytes become spaces, white space is trimmed. */
static char *
proxy_printable(const unsigned char *p, size_t len)
{
	char *s = xmalloc(len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		s[n++] = isprint(p[i]) ? (char)p[i] : ' ';
	while (n > 0 && s[n - 1] == ' ')
		n--;
	s[n] = '\0';
	return s;
}

static void
proxy_reload_finished(struct job *job, void *arg)
{
	struct proxy_reload_ctx *ctx = arg;
	Carotate__V1__ReloadResult *r = xmalloc(sizeof(*r));
	const unsigned char *out;
	char why[64];
	size_t len;

	carotate__v1__reload_result__init(r);
	out = job_output(job, &len);
	r->ran = 1;
	r->exit_status = job_exit_status(job);
	r->ok = r->exit_status == 0;
	r->output = proxy_printable(out, len);
	job_describe(job, why, sizeof(why));
	if (r->ok)
		log_info("proxy reload: %s %s", job_name(job), why);
	else
		log_warnx("proxy reload: %s %s: %s", job_name(job), why, r->output);
	job_free(job);
	ctx->done(r, ctx->arg);
	free(ctx);
}

void
proxy_reload(struct carotated *cd, proxy_reload_done done, void *arg)
{
	const struct config *conf = cd->conf;
	struct proxy_reload_ctx *ctx = xmalloc(sizeof(*ctx));
	Carotate__V1__ReloadResult *r;

	ctx->done = done;
	ctx->arg = arg;
	if (job_exec(cd->base, conf->reload_argv, conf->reload_timeout, PROXY_MAX_OUTPUT,
	        proxy_reload_finished, ctx) != NULL)
		return;
	log_warn("proxy reload: cannot start %s", conf->reload_argv[0]);
	r = xmalloc(sizeof(*r));
	carotate__v1__reload_result__init(r);
	r->exit_status = -1;
	xasprintf(&r->output, "cannot start %s: %s", conf->reload_argv[0], strerror(errno));
	free(ctx);
	done(r, arg);
}
