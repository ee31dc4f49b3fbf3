/*
 * The rotation engine: the swap -> reload -> TLS check -> roll back state
 * machine of rotate and restore, and the pending note that lets the next
 * start finish a call a stop cut short (its file: journal.c, JOURNAL_PENDING,
 * written by the swap's journal before its commit).
 */
#ifndef CAROTATE_ROTATION_H
#define CAROTATE_ROTATION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "carotate.pb-c.h"

struct carotated;

/* What a rotate or restore knows before its swap. */
struct rotation_req {
	const char *call;     /* "rotate", "restore" or "renew" */
	const char *expected; /* the leaf the proxy must serve once the set is live */
	const char *previous; /* the leaf of the set live now; "" none */
	const char *restored; /* restore: the backup to put back; "" for rotate */
	const char *reason;   /* rotate: the reason in the backup's manifest */
	const char *ca;       /* rotate: the staged CA the gate counted; renew: the active CA */
	const char *origin;   /* renew: the active set's origin, kept ("generated", "custom") */
	int dry_run;          /* renew: make the leaf, show it, change nothing */
	int forced;
	time_t now;
};

/*
 * How a rotate or restore ended, for the one that started it: the answer and
 * its audit record are the owner's. The pointers hold until done returns; the
 * owner takes reload, served and pruned (heap; NULL when there are none).
 */
struct rotation_result {
	const char *call;
	Carotate__V1__Status status;
	const char *message;
	int abandoned;        /* a stop cut it short: the note stays, the next start finishes it */
	int resumed;          /* finished at start-up */
	const char *backup;   /* where the previous active set went; "" none */
	const char *restored; /* restore: the backup put back; "" */
	int forced;
	Carotate__V1__ReloadResult *reload; /* the last reload's outcome */
	char *served;                       /* the leaf the proxy served at the last check */
	int verified;                       /* the proxy serves the new set */
	int rolled_back;
	uint64_t rotate_ms; /* from the request to the check that passed */
	char **pruned;      /* backups removed by the retention rule */
	size_t n_pruned;
	const char *would_be; /* renew --dry-run: the leaf (PEM) that would go live; else NULL */
};

/* The owner of a rotation (rpc/rpc_rotate.c): how the call is deferred, recorded, answered. */
struct rotation_hooks {
	/* The swap is done and the call goes on: the owner's answer waits. */
	void (*begin)(void *arg);
	/*
	 * Adds the owner's lines (its audit record) to the pending note; -1: they do not fit.
	 * Asked during the swap, before begin (the journal writes the note before its
	 * commit), and again after a roll back.
	 */
	int (*save)(void *arg, char *buf, size_t len);
	/* At start-up: the owner of the call a pending note (its whole text) records. */
	void *(*load)(struct carotated *, const char *text);
	/*
	 * The end (or, res->abandoned, a stop): the owner answers and records the call,
	 * and, when not abandoned, drops the note (rotation_forget) before the next call starts.
	 */
	void (*done)(struct rotation_result *, void *arg);
};

/*
 * rotate: new/ goes live. The swap checks again that new/ holds the CA counted
 * (q->ca): nothing else goes live. 0 when the call goes on (hooks->begin, then
 * hooks->done later), or -1 / SWAP_STALE with err (nothing changed).
 */
int rotation_rotate(struct carotated *cd, const struct rotation_req *q,
    const struct rotation_hooks *hooks, void *arg, char *err, size_t errlen);

/* restore: backup q->restored goes live. As rotation_rotate; -1 with err. */
int rotation_restore(struct carotated *cd, const struct rotation_req *q,
    const struct rotation_hooks *hooks, void *arg, char *err, size_t errlen);

/*
 * renew: the certificate job (in, which it takes: certjob_renew) makes or
 * checks the new leaf under the active CA (q->ca) in a confined child; its
 * result is written as renew/ (ssldir_renewal) and goes live through
 * swap_renew, then on as rotate (reload, TLS check, roll back). hooks->begin
 * runs now (the job is started) and again after the swap; a refusal of the
 * job (INVALID_ARGUMENT) or a dry run (res->would_be) ends in hooks->done with
 * nothing changed. 0 when the call goes on, -1 with err.
 */
struct certjob;
int rotation_renew(struct carotated *cd, const struct rotation_req *q, struct certjob *in,
    const struct rotation_hooks *hooks, void *arg, char *err, size_t errlen);

/* The owner recorded the call: the note goes, nothing is left for a next start. */
void rotation_forget(struct carotated *cd, const char *call);

/*
 * Shutdown outlasted its bound (job_kill_all and proxy_abandon_all ran): the
 * owner is told (res.abandoned), nothing is audited, and JOURNAL_PENDING stays for
 * the next start, which finishes the call and records it.
 */
void rotation_abandon(void);

/*
 * At start-up: finishes the call JOURNAL_PENDING records (hooks->load gives its
 * owner, from the note's whole text). 1 resumed, 0 none, -1 (logged, the note
 * removed) when it was unusable.
 */
int rotation_resume(struct carotated *cd, const struct rotation_hooks *hooks);

#endif
