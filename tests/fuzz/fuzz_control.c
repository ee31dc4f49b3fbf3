/*
 * The control socket, end to end: the bytes a client sends (frames: a 4-byte
 * big-endian length, then a carotate.v1.Request) go through a real control
 * connection over a socketpair, so control.c's size cap, budgeted decode,
 * version and canonical-encoding checks run, then the dispatch table and its
 * handlers, against a daemon state in a scratch directory: an SSL directory
 * with an active set and a backup (and, for half the inputs, a staged set),
 * a ledger with linked agents and an audit log, the trust bundle.
 *
 * Input: one byte of flags (bit 0: the client is an admin, else a reader;
 * bit 1: a set is staged), then the byte stream, which is followed by EOF;
 * a stream is cut after its 16th whole frame.
 * The loop runs until the daemon has answered and closed the connection.
 *
 * No process is started: in this build every job (the certificate job of
 * generate and install, the proxy reload of rotate and restore) fails to
 * start, as it does when fork fails, so every handler runs in full up to
 * that point and its failure path runs after it (rotate and restore swap,
 * roll back and answer INTERNAL). Whatever an input changed (audit
 * records, exclusions, swaps, backups, a discarded set: any file under the
 * state whose inode, size, mode, owner or change time moved) is undone
 * before the next input (fuzz_reset): inputs are independent and
 * reproducible, and the disk does not grow.
 *
 * Invariants: every reply is a well-formed frame of a Response within the
 * reply cap, and no request is answered twice; afterwards no connection is
 * left open and no call holds the exclusive slot.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <openssl/evp.h>

#include "acl.h"
#include "agents.h"
#include "bundle.h"
#include "carotated.h"
#include "config.h"
#include "control.h"
#include "fuzzlib.h"
#include "ledger.h"
#include "log.h"
#include "pki.h"
#include "ssldir.h"
#include "swap.h"
#include "wire.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct carotated fuzz_cd;
static struct control *fuzz_ctl;
static char fuzz_live[512], fuzz_tmpl[2][512];
static int fuzz_current = -1; /* template live/ was last reset to, -1: none yet */
static int fuzz_dirty;        /* FUZZ_DIRTY_*: what inputs changed in live/ since */
#define FUZZ_DIRTY_FILES  0x1
#define FUZZ_DIRTY_LEDGER 0x2
static int fuzz_ledger_open; /* the daemon's ledger is open on live/ */
static int fuzz_sync_tmpl;   /* fuzz_reset's template */
static int fuzz_sync_same;   /* ... which live/ held, so fuzz_known applies */

#define FUZZ_MAX_CALLS 16 /* whole frames of an input sent; the rest is cut */
#define FUZZ_MAX_KNOWN 256
static struct {
	char rel[256];
	struct stat st;
} fuzz_known[FUZZ_MAX_KNOWN]; /* what live/ held after the last reset */
static size_t fuzz_nknown;
static uint64_t fuzz_baseline[2]; /* fuzz_fingerprint of live/ after the last reset */
static uint64_t fuzz_fp[2];       /* [0] the files, [1] the ledger's */

static void fuzz_setup(const char *);
static void fuzz_make_state(const char *, const char *);
static void fuzz_stage(const struct config *, const char *);
static void fuzz_rotate(const struct config *, time_t);
static void fuzz_link_agents(void);
static void fuzz_reset(int);
static int fuzz_is_ledger(const char *);
static const struct stat *fuzz_known_stat(const char *);
static int fuzz_same_stat(const struct stat *, const struct stat *);
static int fuzz_prune_one(const char *, const struct stat *, int, struct FTW *);
static int fuzz_fill_one(const char *, const struct stat *, int, struct FTW *);
static int fuzz_know_one(const char *, const struct stat *, int, struct FTW *);
static void fuzz_fingerprint(uint64_t[2]);
static int fuzz_fp_one(const char *, const struct stat *, int, struct FTW *);
static size_t fuzz_frames(const uint8_t *, size_t, size_t *);
static void fuzz_check_replies(struct evbuffer *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(1, 0, "fuzz_control");
	fuzz_setup(fuzz_tmpdir("control"));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_client c;
	enum acl_role role;
	uint64_t fp[2];
	int fds[2], staged;
	size_t len, replies;

	if (size < 1)
		return 0;
	role = data[0] & 1 ? ACL_ADMIN : ACL_READER;
	staged = (data[0] >> 1) & 1;
	len = fuzz_frames(data + 1, size - 1, &replies);
	if (fuzz_current != staged || fuzz_dirty)
		fuzz_reset(staged);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == -1)
		fuzz_fail("socketpair: %s", strerror(errno));
	control_fuzz_attach(fuzz_ctl, fds[0], role);
	fuzz_client_start(&c, fuzz_cd.base, fds[1], data + 1, len);
	while (!c.done)
		if (event_base_loop(fuzz_cd.base, EVLOOP_ONCE) != 0)
			fuzz_fail("the event loop ran dry before the connection closed");
	if (control_fuzz_conns(fuzz_ctl) != 0)
		fuzz_fail("%u connections left open", control_fuzz_conns(fuzz_ctl));
	if (fuzz_cd.busy != NULL)
		fuzz_fail("%s still holds the exclusive slot", fuzz_cd.busy);
	fuzz_check_replies(c.in, replies);
	fuzz_client_close(&c);
	/* What an input changed on disk (a reader's refused admin call is audited too) is undone.
	 */
	fuzz_fingerprint(fp);
	if (fp[0] != fuzz_baseline[0])
		fuzz_dirty |= FUZZ_DIRTY_FILES;
	if (fp[1] != fuzz_baseline[1])
		fuzz_dirty |= FUZZ_DIRTY_LEDGER;
	return 0;
}

/*
 * One walk over the stream's frames. Returns the bytes to send: the stream up
 * to the end of its FUZZ_MAX_CALLS-th whole frame, all of it when it holds
 * fewer (a restore or rotate costs milliseconds here; inputs that pipelined
 * hundreds of them ran at a tenth of the usual rate and bring nothing a
 * handful of calls in a row does not). *replies is the most replies those
 * bytes can earn: one per whole frame, and one more for a header over the
 * cap (refused, then the connection closes).
 */
static size_t
fuzz_frames(const uint8_t *p, size_t len, size_t *replies)
{
	size_t off = 0, n = 0;
	uint32_t body;

	while (n < FUZZ_MAX_CALLS && len - off >= WIRE_HEADER_LEN) {
		if ((body = wire_get_length(p + off)) > WIRE_MAX_REQUEST) {
			*replies = n + 1;
			return len;
		}
		if (len - off - WIRE_HEADER_LEN < body)
			break;
		off += WIRE_HEADER_LEN + body;
		n++;
	}
	*replies = n;
	return n == FUZZ_MAX_CALLS ? off : len;
}

/* Every reply is a whole frame holding a Response, within the cap; none is answered twice. */
static void
fuzz_check_replies(struct evbuffer *in, size_t max)
{
	struct wire_budget budget;
	Carotate__V1__Response *r;
	uint8_t hdr[WIRE_HEADER_LEN];
	size_t n = 0;
	uint32_t len;

	while (evbuffer_get_length(in) > 0) {
		if (++n > max)
			fuzz_fail("more replies than requests (%zu of them)", max);
		if (evbuffer_remove(in, hdr, sizeof(hdr)) != (int)sizeof(hdr))
			fuzz_fail("a reply ends inside its header");
		if ((len = wire_get_length(hdr)) > WIRE_MAX_REPLY)
			fuzz_fail("a reply of %u bytes exceeds the cap", len);
		if (evbuffer_get_length(in) < len)
			fuzz_fail("a reply of %u bytes is cut short", len);
		wire_budget_init(&budget, WIRE_REPLY_BUDGET);
		r = wire_response_unpack(evbuffer_pullup(in, len), len, &budget);
		if (r == NULL)
			fuzz_fail("a reply of %u bytes does not decode", len);
		if (r->status != CAROTATE__V1__STATUS__OK && r->message[0] == '\0')
			fuzz_fail("a refusal (status %d) without a message", (int)r->status);
		protobuf_c_message_free_unpacked(&r->base, &budget.allocator);
		evbuffer_drain(in, len);
	}
}

/*
 * live/ becomes template staged again, touching only what differs. When
 * files changed (or the template is the other one): a file that is not in
 * the template, or whose inode, size, mode, owner or change time moved since
 * the last reset, is removed; what is missing is copied from the template;
 * directories get their mode and owner back; the daemon reads its files
 * again. The ledger stays open (reopening it, with its integrity check and
 * statements, was most of an input's time): its rows come back from the
 * template's (ledger_fuzz_restore) and the daemon sets its target again.
 * Most inputs change only the ledger (every admin call is audited).
 */
static void
fuzz_reset(int staged)
{
	char from[600], err[512];

	int files = fuzz_current != staged || (fuzz_dirty & FUZZ_DIRTY_FILES);
	const char *ca, *bundle;

	fuzz_sync_tmpl = staged;
	fuzz_sync_same = fuzz_current == staged;
	if (files) {
		if (nftw(fuzz_live, fuzz_prune_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
			fuzz_fail("walk %s: %s", fuzz_live, strerror(errno));
		if (nftw(fuzz_tmpl[staged], fuzz_fill_one, 16, FTW_PHYS) == -1)
			fuzz_fail("walk %s: %s", fuzz_tmpl[staged], strerror(errno));
	}
	fuzz_path(from, sizeof(from), fuzz_tmpl[staged], "state/" LEDGER_FILE);
	if (!fuzz_ledger_open) {
		if ((fuzz_cd.ledger = ledger_open(fuzz_cd.conf->state_dir, err, sizeof(err))) ==
		        NULL ||
		    agents_init(&fuzz_cd, err, sizeof(err)) == -1)
			fuzz_fail("ledger_open, agents_init: %s", err);
		fuzz_ledger_open = 1;
	} else {
		if (ledger_fuzz_restore(fuzz_cd.ledger, from, err, sizeof(err)) == -1)
			fuzz_fail("%s", err);
		if (files) {
			agents_refresh(&fuzz_cd);
		} else {
			/* What agents_refresh would set, from the files it read last. */
			ca = fuzz_cd.staged_ca;
			bundle = fuzz_cd.bundle_id;
			if (ledger_set_target(fuzz_cd.ledger, ca[0] != '\0' ? ca : NULL,
			        bundle[0] != '\0' ? bundle : NULL) == -1)
				fuzz_fail("ledger_set_target after a restore");
		}
	}
	if (files) {
		fuzz_nknown = 0;
		if (nftw(fuzz_live, fuzz_know_one, 16, FTW_PHYS) == -1)
			fuzz_fail("walk %s: %s", fuzz_live, strerror(errno));
	}
	fuzz_current = staged;
	fuzz_dirty = 0;
	fuzz_fingerprint(fuzz_baseline);
}

/* The ledger's own files, which only SQLite touches while it is open. */
static int
fuzz_is_ledger(const char *rel)
{
	return fuzz_ledger_open &&
	       strncmp(rel, "state/" LEDGER_FILE, strlen("state/" LEDGER_FILE)) == 0;
}

static const struct stat *
fuzz_known_stat(const char *rel)
{
	size_t i;

	for (i = 0; i < fuzz_nknown; i++)
		if (strcmp(fuzz_known[i].rel, rel) == 0)
			return &fuzz_known[i].st;
	return NULL;
}

static int
fuzz_same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_size == b->st_size && a->st_mode == b->st_mode &&
	       a->st_uid == b->st_uid && a->st_gid == b->st_gid &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Depth first over live/: removes what the template lacks and every file that changed. */
static int
fuzz_prune_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *rel = path + strlen(fuzz_live);
	const struct stat *was;
	struct stat t;
	char tp[1024];

	if (ftw->level == 0 || fuzz_is_ledger(++rel))
		return 0;
	fuzz_path(tp, sizeof(tp), fuzz_tmpl[fuzz_sync_tmpl], rel);
	if (lstat(tp, &t) == 0 && (t.st_mode & S_IFMT) == (st->st_mode & S_IFMT)) {
		if (type == FTW_DP)
			return 0; /* mode and owner are put back by fuzz_fill_one */
		if (fuzz_sync_same && (was = fuzz_known_stat(rel)) != NULL &&
		    fuzz_same_stat(was, st))
			return 0;
	}
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) == -1)
		fuzz_fail("remove %s: %s", path, strerror(errno));
	return 0;
}

/* Over the template: copies what live/ lacks, puts directories' modes and owners back. */
static int
fuzz_fill_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *rel = path + strlen(fuzz_tmpl[fuzz_sync_tmpl]);
	struct stat l;
	char lp[1024];

	if (ftw->level == 0 || fuzz_is_ledger(++rel))
		return 0;
	fuzz_path(lp, sizeof(lp), fuzz_live, rel);
	if (type == FTW_D) {
		if (lstat(lp, &l) == -1 && mkdir(lp, st->st_mode & 07777) == -1)
			fuzz_fail("mkdir %s: %s", lp, strerror(errno));
		if (chmod(lp, st->st_mode & 07777) == -1 ||
		    lchown(lp, st->st_uid, st->st_gid) == -1)
			fuzz_fail("chmod %s: %s", lp, strerror(errno));
	} else if (type == FTW_F) {
		if (lstat(lp, &l) == -1)
			fuzz_copy_file(path, lp, st->st_mode & 07777);
	} else {
		fuzz_fail("the template holds %s (type %d)", path, type);
	}
	return 0;
}

/* Records every entry of live/ as the reset left it. */
static int
fuzz_know_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *rel = path + strlen(fuzz_live);

	if (ftw->level == 0)
		return 0;
	if (fuzz_nknown == FUZZ_MAX_KNOWN)
		fuzz_fail("more than %d entries under %s", FUZZ_MAX_KNOWN, fuzz_live);
	snprintf(fuzz_known[fuzz_nknown].rel, sizeof(fuzz_known[0].rel), "%s", rel + 1);
	fuzz_known[fuzz_nknown++].st = *st;
	return 0;
}

/*
 * Every entry under live/, hashed (FNV-1a) into fuzz_fp[1] for the ledger's
 * files, else fuzz_fp[0]: name, mode and owner, and for a file its inode,
 * size and change time (a directory's change with its entries shows in them).
 */
static int
fuzz_fp_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const uint8_t *p = (const uint8_t *)path;
	int64_t v[7] = { (int64_t)st->st_mode, (int64_t)st->st_uid, (int64_t)st->st_gid };
	uint64_t *h = &fuzz_fp[ftw->level > 0 && fuzz_is_ledger(path + strlen(fuzz_live) + 1)];
	size_t i;

	if (type == FTW_F) {
		v[3] = (int64_t)st->st_ino;
		v[4] = (int64_t)st->st_size;
		v[5] = (int64_t)st->st_ctim.tv_sec;
		v[6] = (int64_t)st->st_ctim.tv_nsec;
	}
	for (; *p != '\0'; p++)
		*h = (*h ^ *p) * UINT64_C(0x100000001b3);
	for (i = 0; i < sizeof(v); i++)
		*h = (*h ^ ((const uint8_t *)v)[i]) * UINT64_C(0x100000001b3);
	return 0;
}

static void
fuzz_fingerprint(uint64_t fp[2])
{
	fuzz_fp[0] = fuzz_fp[1] = UINT64_C(0xcbf29ce484222325);
	if (nftw(fuzz_live, fuzz_fp_one, 16, FTW_PHYS) == -1)
		fuzz_fail("walk %s: %s", fuzz_live, strerror(errno));
	fp[0] = fuzz_fp[0];
	fp[1] = fuzz_fp[1];
}

static void
fuzz_setup(const char *dir)
{
	char path[600], conf[4096], err[512];
	int fd;

	fuzz_path(fuzz_live, sizeof(fuzz_live), dir, "live");
	fuzz_path(fuzz_tmpl[0], sizeof(fuzz_tmpl[0]), dir, "steady");
	fuzz_path(fuzz_tmpl[1], sizeof(fuzz_tmpl[1]), dir, "staged");
	fuzz_write_file(fuzz_path(path, sizeof(path), dir, "linking.key"),
	    "fuzz-linking-key-0123456789abcdef\n", 34);
	snprintf(conf, sizeof(conf),
	    "[daemon]\nsocket = %s/c.sock\nstate_dir = %s/state\n"
	    "request_timeout = 10s\nidle_timeout = 60s\n"
	    "[ssl]\ndir = %s/ssl\n"
	    "[proxy]\nnames = proxy.test, 127.0.0.1\nreload = /bin/false\n"
	    "address = unix:%s/no-proxy.sock\ncanary_address = unix:%s/no-canary.sock\n"
	    "[agents]\nlinking_key = %s/linking.key\nactive_within = 3650d\n"
	    "[backups]\nkeep = 3\n",
	    dir, fuzz_live, fuzz_live, dir, dir, dir);
	fuzz_write_file(fuzz_path(path, sizeof(path), dir, "carotated.conf"), conf, strlen(conf));
	if ((fuzz_cd.conf = config_load(path, err, sizeof(err))) == NULL)
		fuzz_fail("config_load: %s", err);
	fuzz_cd.conf_path = fuzz_cd.conf->path;
	fuzz_cd.foreground = 1;
	if ((fuzz_cd.base = event_base_new()) == NULL)
		fuzz_fail("event_base_new");
	fuzz_make_state(dir, path);
	if ((fd = control_bind(fuzz_cd.conf, 0, err, sizeof(err))) == -1)
		fuzz_fail("control_bind: %s", err);
	fuzz_ctl = control_start(&fuzz_cd, fd);
}

/* Both templates, made by the daemon's own code: stage, rotate, link agents. */
static void
fuzz_make_state(const char *dir, const char *confpath)
{
	const struct config *conf = fuzz_cd.conf;
	struct bundle b;
	char path[600], err[512];
	time_t now = time(NULL);

	fuzz_rmtree(fuzz_live);
	if (mkdir(fuzz_live, 0755) == -1 ||
	    mkdir(fuzz_path(path, sizeof(path), fuzz_live, "ssl"), 0755) == -1 ||
	    mkdir(fuzz_path(path, sizeof(path), fuzz_live, "state"), 0700) == -1)
		fuzz_fail("mkdir %s: %s", path, strerror(errno));
	fuzz_stage(conf, "fuzz-a");
	fuzz_rotate(conf, now - 86400);
	fuzz_stage(conf, "fuzz-b");
	fuzz_rotate(conf, now - 3600);
	if (bundle_publish(conf, now, &b, err, sizeof(err)) == -1)
		fuzz_fail("bundle_publish: %s", err);
	bundle_clear(&b);
	if ((fuzz_cd.ledger = ledger_open(fuzz_cd.conf->state_dir, err, sizeof(err))) == NULL ||
	    agents_init(&fuzz_cd, err, sizeof(err)) == -1)
		fuzz_fail("ledger_open, agents_init: %s", err);
	fuzz_link_agents();
	agents_stop(&fuzz_cd);
	ledger_close(fuzz_cd.ledger);
	fuzz_cd.ledger = NULL;
	fuzz_copytree(fuzz_live, fuzz_tmpl[0]);
	fuzz_stage(conf, "fuzz-c");
	if (bundle_publish(conf, now, &b, err, sizeof(err)) == -1)
		fuzz_fail("bundle_publish: %s", err);
	bundle_clear(&b);
	fuzz_copytree(fuzz_live, fuzz_tmpl[1]);
}

/* A generated EC set, staged in new/ as generate would leave it. */
static void
fuzz_stage(const struct config *conf, const char *name)
{
	char *sans[] = { (char *)"DNS:proxy.test", (char *)"IP:127.0.0.1" };
	struct pki_profile p = { PKI_KEY_EC_P256, 3650, 397, name, sans, 2, time(NULL) };
	struct pki_material m;
	struct ssldir_files f;
	char err[512];

	if (pki_generate(&p, &m, err, sizeof(err)) != 0)
		fuzz_fail("pki_generate: %s", err);
	f = (struct ssldir_files){ m.ca, m.cert, m.key, strlen(m.ca), strlen(m.cert), strlen(m.key),
		"generated", time(NULL) };
	if (ssldir_stage(conf, &f, err, sizeof(err)) == -1)
		fuzz_fail("ssldir_stage: %s", err);
	pki_material_clear(&m);
}

static void
fuzz_rotate(const struct config *conf, time_t when)
{
	char id[SWAP_ID_MAX], err[512];

	if (swap_rotate(conf, when, "fuzz template", id, sizeof(id), err, sizeof(err)) == -1)
		fuzz_fail("swap_rotate: %s", err);
}

/* Agents for report, exclude and include to find: linked, one of them checked in. */
static void
fuzz_link_agents(void)
{
	static const char *ids[] = { "web-1", "web-2", "db.example-3" };
	uint8_t hash[LEDGER_TOKEN_HASH_LEN];
	unsigned int n;
	size_t i;

	if (ledger_begin(fuzz_cd.ledger) == -1)
		fuzz_fail("ledger_begin");
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		EVP_Digest(ids[i], strlen(ids[i]), hash, &n, EVP_sha256(), NULL);
		if (ledger_link(fuzz_cd.ledger, ids[i], hash, time(NULL)) != LEDGER_OK)
			fuzz_fail("ledger_link %s", ids[i]);
	}
	if (ledger_commit(fuzz_cd.ledger) == -1)
		fuzz_fail("ledger_commit");
}
