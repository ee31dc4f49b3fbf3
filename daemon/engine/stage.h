/*
 * The staging engine: the certificate job's result written as the staged set
 * (and a generated CA's key kept), discard, the bundle published and the proxy
 * reloaded. Its owner (rpc/rpc_stage.c) checks the arguments and answers.
 */
#ifndef CAROTATE_STAGE_H
#define CAROTATE_STAGE_H

#include <stddef.h>

#include "carotate.pb-c.h"

struct carotated;
struct certjob;

/*
 * How a generate, install or discard ended, for the one that started it. The
 * pointers hold until done returns; the owner takes warnings and reload.
 */
struct stage_result {
	const char *call;
	Carotate__V1__Status status; /* OK: the set is staged (or discarded), the proxy told */
	const char *message;         /* why not, when status is not OK */
	char **warnings;             /* about the set, and a bundle that could not be published */
	size_t n_warnings;
	Carotate__V1__ReloadResult *reload;
	const char *kept_as; /* discard: the backup the staged set became */
};

/* The owner of a staging (rpc/rpc_stage.c): how the call is deferred and answered. */
struct stage_hooks {
	/* The call goes on (a job runs, or a reload): the owner's answer waits. */
	void (*begin)(void *arg);
	/*
	 * Before the sets change: the owner's lines (its audit record) for the
	 * intent note (store/statenote.h), given what the call leaves staged (the
	 * SHA-256 of its CA; "-" for nothing), appended to buf. -1: they do not fit.
	 */
	int (*save)(void *arg, const char *staged, char *buf, size_t len);
	/* The end, or a stop (status UNAVAILABLE): the owner answers. */
	void (*done)(struct stage_result *, void *arg);
};

/*
 * Starts the certificate job of call ("generate" or "install") on in, which it
 * takes. The job runs confined (job_fork_confined): as [agents] user when we
 * are root, with no capability and only its pipe, under the system call
 * filter. It holds no more than its result: a generated CA key goes back to us
 * through the pipe, and we write it to the state directory. 0 when the call
 * goes on (hooks->begin now, hooks->done later), -1 with err.
 */
int stage_start(struct carotated *cd, const char *call, struct certjob *in,
    const struct stage_hooks *hooks, void *arg, char *err, size_t errlen);

/*
 * discard: the staged set goes to a discarded-... backup, the bundle and the
 * proxy follow. 0 when the call goes on (hooks->begin now, hooks->done
 * later), -1 with err (nothing changed).
 */
int stage_discard(
    struct carotated *cd, const struct stage_hooks *hooks, void *arg, char *err, size_t errlen);

/*
 * Shutdown killed the job or abandoned the reload of the call in progress
 * (job_kill_all, proxy_abandon_all): no answer will come, so the owner answers
 * now; the audit log records the call as interrupted.
 */
void stage_abandon(void);

/*
 * The owner has recorded the call (or found it recorded): its intent note
 * goes, if it wrote one. Called after the audit record is committed, so that a
 * stop between the two leaves the note, never a change without a record.
 */
void stage_forget(struct carotated *, const char *call);
/*
 * At start-up: the text of the intent note a generate, install or discard cut
 * short by a stop left (heap), or NULL when there is none (or it cannot be read:
 * logged, and the note is removed; audit_adopt then judges the sets).
 */
char *stage_pending(struct carotated *);

#endif
