/*
 * Staging, stage 1 of a rotation. Certificate work runs in a short-lived child
 * (certjob.c, forked by job.c): RSA key generation takes seconds and must not
 * stall other clients, and the bytes of a custom set are hostile until
 * checked, so they are parsed in a process that can crash alone. The parent
 * only writes what the child returns, re-encoded by OpenSSL, and then
 * publishes the bundle and reloads the proxy before its owner answers
 * (hooks->done). The engine knows nothing of replies or deferred calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "backup.h"
#include "bundle.h"
#include "cakeys.h"
#include "carotated.h"
#include "certjob.h"
#include "certset.h"
#include "config.h"
#include "fault.h"
#include "statenote.h"
#include "internal.pb-c.h"
#include "job.h"
#include "log.h"
#include "pki.h"
#include "proxy.h"
#include "sandbox.h"
#include "ssldir.h"
#include "stage.h"
#include "xmalloc.h"

#define STAGE_GENERATE_TIMEOUT 300000     /* ms: RSA-4096 on a slow machine */
#define STAGE_INSTALL_TIMEOUT  30000      /* ms */
#define STAGE_MAX_MATERIAL     (1u << 20) /* bytes a job may return */
#define STAGE_NOTE_MAGIC       "carotate-stage-pending 1"

/* One generate or install (or discard) from its start to its result. */
struct stage {
	struct carotated *cd;
	const struct stage_hooks *hooks;
	void *arg; /* the hooks' */
	const char *call;
	struct certjob *in; /* generate, install */
	/* the outcome */
	char **warnings;
	size_t n_warnings;
	char *kept_as;
	char *publish_err; /* the set is staged (or discarded), the bundle not published */
};

/* The generate, install or discard between its start and its result (exclusive: one). */
static struct stage *stage_running;

static void stage_job_done(struct job *, void *);
static int stage_write(struct stage *, const Carotate__Internal__Material *, char *, size_t);
static void stage_reload(struct stage *);
static void stage_reloaded(Carotate__V1__ReloadResult *, void *);
static void stage_fail(struct stage *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void stage_finish(struct stage *, struct stage_result *);
static void stage_free(struct stage *);
static void stage_note(struct stage *, const char *);
static void stage_staged_sha(const Carotate__Internal__Material *, char *);

static void
stage_free(struct stage *op)
{
	size_t i;

	certjob_free(op->in);
	for (i = 0; i < op->n_warnings; i++)
		free(op->warnings[i]);
	free(op->warnings);
	free(op->kept_as);
	free(op->publish_err);
	free(op);
}

/*
 * Starts the certificate job of call ("generate" or "install") on in, which it
 * takes. The job runs confined (job_fork_confined): as [agents] user when we
 * are root, with no capability and only its pipe, under the system call
 * filter. It holds no more than its result: a generated CA key goes back to us
 * through the pipe, and we write it to the state directory. 0 when the call
 * goes on (hooks->begin now, hooks->done later), -1 with err.
 */
int
stage_start(struct carotated *cd, const char *call, struct certjob *in,
    const struct stage_hooks *hooks, void *arg, char *err, size_t errlen)
{
	struct stage *op = xcalloc(1, sizeof(*op));
	struct sandbox_ids ids;
	char why[256];

	op->cd = cd;
	op->hooks = hooks;
	op->arg = arg;
	op->call = call;
	op->in = in;
	in->conf = cd->conf;
	if (sandbox_ids(cd->conf->agents_user, cd->privileged, &ids, why, sizeof(why)) == -1) {
		log_warnx("%s: %s: certificate jobs run as that user", op->call, why);
		snprintf(err, errlen,
		    "cannot start the %s job: %s (certificate jobs run as [agents] user)", op->call,
		    why);
		stage_free(op);
		return -1;
	}
	ids.may_fork = !in->install;
	if (job_fork_confined(cd->base, op->call, in->install ? certjob_install : certjob_generate,
	        in, &ids, in->install ? STAGE_INSTALL_TIMEOUT : STAGE_GENERATE_TIMEOUT,
	        STAGE_MAX_MATERIAL, stage_job_done, op) == NULL) {
		snprintf(err, errlen, "cannot start the %s job: %s", op->call, strerror(errno));
		stage_free(op);
		return -1;
	}
	hooks->begin(arg);
	stage_running = op;
	return 0;
}

/*
 * The sets are about to change: who asked and what will be staged go to the
 * intent note first, so that a stop (kill, power cut) before the call's audit
 * record is committed leaves the next start to credit the change to its caller
 * (rpc_stage_resume), not to audit it as made outside carotated. A note that
 * cannot be written does not stop the call, as with the swap's pending note.
 */
static void
stage_note(struct stage *op, const char *staged)
{
	char buf[STATENOTE_MAX], err[512] = "";

	snprintf(buf, sizeof(buf), "%s\n", STAGE_NOTE_MAGIC);
	if (op->hooks->save(op->arg, staged, buf, sizeof(buf)) == -1 ||
	    statenote_write(op->cd->conf, STATENOTE_CALL, buf, err, sizeof(err)) == -1)
		log_warnx("%s: %s: a stop before the reply would leave it unaudited", op->call,
		    err[0] != '\0' ? err : "the record does not fit the intent note");
}

/* The SHA-256 of the CA the job returned (the audit log's fingerprint of it), "?" if unreadable. */
static void
stage_staged_sha(const Carotate__Internal__Material *m, char *sha)
{
	char why[128];

	if (pki_pem_sha256(m->ca.data, m->ca.len, sha, why, sizeof(why)) == -1)
		snprintf(sha, PKI_SHA256_HEX, "?");
}

/* Writes the child's result: the CA key (generated sets), the staged set, the bundle. */
static int
stage_write(struct stage *op, const Carotate__Internal__Material *m, char *err, size_t errlen)
{
	const struct config *conf = op->cd->conf;
	struct ssldir_files f = { (const char *)m->ca.data, (const char *)m->cert.data,
		(const char *)m->key.data, m->ca.len, m->cert.len, m->key.len,
		op->in->install ? "custom" : "generated", time(NULL) };
	char keyname[CAKEYS_NAME_MAX], staged[PKI_SHA256_HEX];
	struct bundle b;
	int r;

	stage_staged_sha(m, staged);
	stage_note(op, staged);
	if (!op->in->install && cakeys_save(conf, m->ca.data, m->ca.len, m->ca_key.data,
	                            m->ca_key.len, keyname, err, errlen) == -1) {
		stage_forget(op->cd, op->call); /* nothing changed: no note outlives it */
		return -1;
	}
	fault_point("stage-after-ca-key");
	if (ssldir_stage(conf, &f, err, errlen) == -1) {
		if (!op->in->install)
			cakeys_drop(conf, keyname);
		stage_forget(op->cd, op->call);
		return -1;
	}
	r = bundle_publish(conf, f.created, &b, err, errlen);
	bundle_clear(&b);
	if (r == -1) {
		log_warnx("%s: %s", op->call, err);
		op->publish_err = xstrdup(err);
	}
	agents_refresh(op->cd);
	return 0;
}

static void
stage_job_done(struct job *job, void *arg)
{
	struct stage *op = arg;
	Carotate__Internal__Material *m = NULL;
	const unsigned char *out;
	char why[64], err[512];
	size_t len, i;

	out = job_output(job, &len);
	if (job_filtered(job)) {
		/* A parser bug, or input built to exploit one: the job died alone. */
		log_warnx("%s: certificate job %s: it made a system call outside its allow-list",
		    op->call, job_describe(job, why, sizeof(why)));
		stage_fail(op, CAROTATE__V1__STATUS__INTERNAL,
		    "the certificate job was killed by its syscall filter (signal %d); nothing was "
		    "staged",
		    job_signal(job));
	} else if (job_exit_status(job) != 0 ||
	           (m = carotate__internal__material__unpack(NULL, len, out)) == NULL) {
		log_warnx("%s: certificate job %s", op->call, job_describe(job, why, sizeof(why)));
		stage_fail(op, CAROTATE__V1__STATUS__INTERNAL, "the certificate job failed (%s)",
		    job_describe(job, why, sizeof(why)));
	} else if (m->error[0] != '\0') {
		log_info("%s refused: %s", op->call, m->error);
		stage_fail(op, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "%s", m->error);
	} else if (stage_write(op, m, err, sizeof(err)) == -1) {
		log_warnx("%s: %s", op->call, err);
		stage_fail(op, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
	} else {
		op->warnings = xcalloc(m->n_warnings + 1, sizeof(char *));
		for (i = 0; i < m->n_warnings; i++)
			op->warnings[i] = xstrdup(m->warnings[i]);
		op->n_warnings = m->n_warnings;
		log_info("%s: a new %s set is staged in %s/%s", op->call,
		    op->in->install ? "custom" : "generated", op->cd->conf->ssl_dir,
		    SSLDIR_STAGING);
		stage_reload(op);
	}
	if (m != NULL) {
		if (m->key.data != NULL)
			explicit_bzero(m->key.data, m->key.len);
		if (m->ca_key.data != NULL)
			explicit_bzero(m->ca_key.data, m->ca_key.len);
		carotate__internal__material__free_unpacked(m, NULL);
	}
	job_free(job);
}

static void
stage_reload(struct stage *op)
{
	stage_running = op;
	proxy_reload(op->cd, stage_reloaded, op);
}

/* The proxy has been told: the call's owner answers with what is now staged and published. */
static void
stage_reloaded(Carotate__V1__ReloadResult *result, void *arg)
{
	struct stage *op = arg;
	struct stage_result res = { 0 };

	fault_point("stage-after-reload");
	if (op->publish_err != NULL) {
		/* The call's change stands; what agents are offered lags until the next publish. */
		op->warnings = xreallocarray(op->warnings, op->n_warnings + 1, sizeof(char *));
		xasprintf(&op->warnings[op->n_warnings++],
		    "the trust bundle or the canary pair could not be published: %s; agents are "
		    "offered the previous bundle until carotated publishes again (at its next "
		    "start "
		    "or the next change of sets)",
		    op->publish_err);
	}
	agents_check_canary(op->cd);
	res.status = CAROTATE__V1__STATUS__OK;
	res.warnings = op->warnings;
	res.n_warnings = op->n_warnings;
	res.reload = result;
	res.kept_as = op->kept_as;
	op->warnings = NULL;
	op->n_warnings = 0;
	stage_finish(op, &res);
}

static void
stage_fail(struct stage *op, Carotate__V1__Status status, const char *fmt, ...)
{
	struct stage_result res = { 0 };
	char msg[1024];
	va_list ap;

	/* 1024: the job's error is the child's text, as long as its message allows. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	res.status = status;
	res.message = msg;
	stage_finish(op, &res);
}

/* The owner answers (hooks->done) and the next state change may start. */
static void
stage_finish(struct stage *op, struct stage_result *res)
{
	if (stage_running == op)
		stage_running = NULL;
	res->call = op->call;
	op->hooks->done(res, op->arg);
	stage_free(op);
}

/*
 * Shutdown killed the job or abandoned the reload of the call in progress
 * (job_kill_all, proxy_abandon_all): no answer will come, so the owner answers
 * now; the audit log records the call as interrupted.
 */
void
stage_abandon(void)
{
	if (stage_running == NULL)
		return;
	stage_fail(stage_running, CAROTATE__V1__STATUS__UNAVAILABLE,
	    "%s: interrupted: carotated is shutting down", stage_running->call);
}

/*
 * discard: the staged set goes to a discarded-... backup, the bundle and the
 * proxy follow. 0 when the call goes on (hooks->begin now, hooks->done
 * later), -1 with err (nothing changed).
 */
int
stage_discard(
    struct carotated *cd, const struct stage_hooks *hooks, void *arg, char *err, size_t errlen)
{
	const struct config *conf = cd->conf;
	char staged[PKI_SHA256_HEX], active[PKI_SHA256_HEX], keyname[CAKEYS_NAME_MAX];
	struct stage *op;
	struct bundle b;
	char kept[64];
	time_t now = time(NULL);

	/* Read before new/ goes: the key of the CA it held is dropped with it. */
	if (certset_ca_sha(conf, 1, staged, err, errlen) == -1 ||
	    certset_ca_sha(conf, 0, active, err, errlen) == -1) {
		log_warnx("discard: %s; its CA key (if any) stays", err);
		staged[0] = '\0';
	}
	op = xcalloc(1, sizeof(*op));
	op->cd = cd;
	op->hooks = hooks;
	op->arg = arg;
	op->call = "discard";
	stage_note(op, "-");
	if (backup_discard(conf, now, kept, sizeof(kept), err, errlen) == -1) {
		stage_forget(op->cd, op->call);
		stage_free(op);
		return -1;
	}
	log_info("discard: the staged set is kept as %s/%s", conf->ssl_dir, kept);
	/*
	 * A generated CA's private key signs nothing once its set is discarded:
	 * it goes (the discarded copy keeps only certificates and the server key).
	 * Never the active CA's, should the two be one.
	 */
	if (staged[0] != '\0' && strcmp(staged, active) != 0) {
		snprintf(keyname, sizeof(keyname), "%s.key", staged);
		cakeys_drop(conf, keyname);
	}
	fault_point("discard-after-remove");
	if (bundle_publish(conf, now, &b, err, errlen) == -1) {
		log_warnx("discard: %s", err);
		op->publish_err = xstrdup(err);
	}
	bundle_clear(&b);
	agents_refresh(cd);
	op->kept_as = xstrdup(kept);
	hooks->begin(arg);
	stage_reload(op);
	return 0;
}

void
stage_forget(struct carotated *cd, const char *call)
{
	char err[512];

	if (statenote_remove(cd->conf, STATENOTE_CALL, err, sizeof(err)) == -1)
		log_warnx("%s: %s", call, err);
}

char *
stage_pending(struct carotated *cd)
{
	char *text = NULL, err[512];
	int r;

	if ((r = statenote_read(cd->conf, STATENOTE_CALL, &text, err, sizeof(err))) == 1 &&
	    strncmp(text, STAGE_NOTE_MAGIC "\n", sizeof(STAGE_NOTE_MAGIC)) == 0)
		return text;
	if (r == 0)
		return NULL;
	log_warnx("%s/%s: %s; removed", cd->conf->state_dir, STATENOTE_CALL,
	    r == -1 ? err : "not the note of a generate, install or discard");
	free(text);
	stage_forget(cd, "start-up");
	return NULL;
}
