/*
 * Every privilege change, through libcap where it has a call (the
 * capability, bounding and ambient sets) and prctl(2) where it has none
 * (no_new_privs, dumpable). The user changes are setgroups, setresgid and
 * setresuid: libcap's cap_setuid and cap_setgroups read the current sets
 * into a new allocation, which the children must not make.
 *
 * Least privilege for the parent (PITFALLS: "Peer credentials and
 * privileges"). Everything that needs more than these is done before
 * privs_drop_parent runs: the sockets are bound and chowned to their groups,
 * the ledger is open, the agent worker is started. From then on the parent
 * keeps only what it proves it needs, and neither it nor anything it runs
 * (the proxy's reload command, the certificate jobs) can get the rest back:
 *
 *   CAP_SETUID, CAP_SETGID  restart the agent worker, which gives up root for
 *                           [agents] user before it re-executes itself;
 *   CAP_KILL                stop that worker, a process of another user;
 *   CAP_SETPCAP             let the worker empty its bounding set (a drop
 *                           from the bounding set needs it) before it changes
 *                           user; it can only take capabilities away.
 *
 * Not kept: CAP_CHOWN (the sockets were chowned at bind), CAP_DAC_OVERRIDE
 * and CAP_FOWNER (every file the daemon writes is root's own), and the rest.
 * The order is the one the kernel needs: no_new_privs; the bounding set
 * (CAP_SETPCAP still held); ambient; then the final sets; then read back.
 * A service manager may grant less (systemd's CapabilityBoundingSet=): only
 * what is held is kept, and without CAP_SETPCAP the bounding set stays as
 * the manager left it.
 *
 * The children (the agent worker, the certificate jobs, the TLS check, the
 * reload command) drop between fork and exec or their work. The daemon is
 * single-threaded, so that an allocation there would not deadlock; they
 * make none all the same, as when they called capset(2) directly: the sets
 * they set and read back are allocated by privs_prepare in the parent, and
 * capgetp(3) reads into one of them where cap_get_proc would allocate.
 */
#include <sys/prctl.h>

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/capability.h>

#include "log.h"
#include "privs.h"
#include "sandbox.h"

static const cap_value_t privs_keep[] = { CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_SETPCAP };
#define PRIVS_NKEEP (sizeof(privs_keep) / sizeof(privs_keep[0]))

static char privs_text[256] = "none";
/* privs_prepare's: the empty set the children set, and where they read theirs back. */
static cap_t privs_none;
static cap_t privs_seen;

static int privs_is_kept(cap_value_t);
static int privs_error(char *, size_t, const char *);
static void privs_drop_bounding(void);
static int privs_setuser(const struct sandbox_ids *);
static int privs_drop_caps(void);
static const char *privs_drop_child(const struct sandbox_ids *, int);

static int
privs_is_kept(cap_value_t c)
{
	size_t i;

	for (i = 0; i < PRIVS_NKEEP; i++)
		if (privs_keep[i] == c)
			return 1;
	return 0;
}

static int
privs_error(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "dropping capabilities: %s: %s", what, strerror(errno));
	return -1;
}

const char *
privs_kept(void)
{
	return privs_text;
}

int
privs_drop_parent(char *err, size_t errlen)
{
	cap_value_t kept[PRIVS_NKEEP];
	cap_flag_value_t v;
	cap_t have, want, got;
	cap_value_t c;
	size_t i, n = 0;
	int setpcap, same;
	char *text;

	/* Only what we hold can be kept (a unit may have granted less). */
	if ((have = cap_get_proc()) == NULL)
		return privs_error(err, errlen, "reading the current sets");
	for (i = 0; i < PRIVS_NKEEP; i++)
		if (cap_get_flag(have, privs_keep[i], CAP_PERMITTED, &v) == 0 && v == CAP_SET)
			kept[n++] = privs_keep[i];
	setpcap = cap_get_flag(have, CAP_SETPCAP, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
	cap_free(have);

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return privs_error(err, errlen, "no_new_privs");
	/* Dropping from the bounding set needs CAP_SETPCAP; without it, it stays as granted. */
	for (c = 0; setpcap && c <= CAP_LAST_CAP; c++)
		if (!privs_is_kept(c) && CAP_IS_SUPPORTED(c) && cap_get_bound(c) == 1 &&
		    cap_drop_bound(c) == -1)
			return privs_error(err, errlen, "bounding set");
	if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() == -1)
		return privs_error(err, errlen, "ambient set");
	if ((want = cap_init()) == NULL)
		return privs_error(err, errlen, "cap_init");
	if ((n > 0 && (cap_set_flag(want, CAP_PERMITTED, (int)n, kept, CAP_SET) == -1 ||
	                  cap_set_flag(want, CAP_EFFECTIVE, (int)n, kept, CAP_SET) == -1)) ||
	    cap_set_proc(want) == -1) {
		cap_free(want);
		return privs_error(err, errlen, "permitted and effective sets");
	}
	/* Read back: what the kernel holds now, not what was asked for. */
	if ((got = cap_get_proc()) == NULL) {
		cap_free(want);
		return privs_error(err, errlen, "reading them back");
	}
	same = cap_compare(want, got) == 0;
	if ((text = cap_to_text(got, NULL)) != NULL) {
		snprintf(privs_text, sizeof(privs_text), "%s", text);
		cap_free(text);
	}
	cap_free(want);
	cap_free(got);
	if (!same || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		errno = EPERM;
		return privs_error(err, errlen, "the sets read back differ");
	}
	for (c = 0; setpcap && c <= CAP_LAST_CAP; c++)
		if (CAP_IS_SUPPORTED(c) && cap_get_bound(c) == 1 && !privs_is_kept(c)) {
			errno = EPERM;
			return privs_error(err, errlen, "the bounding set read back differs");
		}
	if (!setpcap)
		snprintf(privs_text + strlen(privs_text), sizeof(privs_text) - strlen(privs_text),
		    " (no cap_setpcap: the bounding set stays as granted)");
	return 0;
}

void
privs_prepare(void)
{
	if (privs_none != NULL)
		return;
	/* privs_seen starts full in every child: only a read that fills it can pass. */
	if ((privs_none = cap_init()) == NULL || (privs_seen = cap_from_text("=eip")) == NULL)
		fatalx("%s: out of memory", __func__);
}

/* Best effort: without CAP_SETPCAP the bounding set stays, and no_new_privs covers it. */
static void
privs_drop_bounding(void)
{
	cap_value_t c;
	int r;

	for (c = 0; (r = cap_get_bound(c)) >= 0; c++)
		if (r == 1)
			(void)cap_drop_bound(c);
}

/* No supplementary groups, then gid, then uid; read back; no way back to root. 0 or -1. */
static int
privs_setuser(const struct sandbox_ids *ids)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (setgroups(0, NULL) == -1 || setresgid(ids->gid, ids->gid, ids->gid) == -1 ||
	    setresuid(ids->uid, ids->uid, ids->uid) == -1)
		return -1;
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    getgroups(0, NULL) != 0 || ru != ids->uid || eu != ids->uid || su != ids->uid ||
	    rg != ids->gid || eg != ids->gid || sg != ids->gid) {
		errno = EPERM;
		return -1;
	}
	if (setuid(0) != -1 || setgid(0) != -1) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/*
 * None, whatever securebits the parent set: ambient cleared (it is never
 * more than permitted and inheritable, so its own failure is moot), then
 * the empty set, read back flag by flag (cap_compare would allocate a copy).
 * 0 or -1 (errno).
 */
static int
privs_drop_caps(void)
{
	static const cap_flag_t flags[] = { CAP_EFFECTIVE, CAP_PERMITTED, CAP_INHERITABLE };
	cap_flag_value_t v;
	cap_value_t c;
	size_t i;

	if (privs_none == NULL) {
		errno = EINVAL; /* privs_prepare was not called before fork */
		return -1;
	}
	if (CAP_AMBIENT_SUPPORTED())
		(void)cap_reset_ambient();
	if (cap_set_proc(privs_none) == -1 || capgetp(0, privs_seen) == -1)
		return -1;
	/* Every capability libcap can name (cap_get_flag fails past the last). */
	for (c = 0; cap_get_flag(privs_seen, c, CAP_EFFECTIVE, &v) == 0; c++)
		for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
			if (cap_get_flag(privs_seen, c, flags[i], &v) == -1 || v != CAP_CLEAR) {
				errno = EPERM;
				return -1;
			}
	return c > 0 ? 0 : -1;
}

/* The worker's and the jobs' steps, in the order the kernel needs (privs.h). */
static const char *
privs_drop_child(const struct sandbox_ids *ids, int undumpable)
{
	/* While CAP_SETPCAP is held: the user change takes it away. */
	privs_drop_bounding();
	if (ids->drop && privs_setuser(ids) == -1)
		return "user change";
	if (privs_drop_caps() == -1)
		return "capabilities";
	/* After the user change, which may make the process dumpable again. */
	if (undumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		return "dumpable";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return "no_new_privs";
	return NULL;
}

const char *
privs_drop_worker(const struct sandbox_ids *ids)
{
	return privs_drop_child(ids, 0);
}

const char *
privs_drop_job(const struct sandbox_ids *ids)
{
	return privs_drop_child(ids, 1);
}

const char *
privs_drop_function(void)
{
	return privs_drop_caps() == -1 ? "capabilities" : NULL;
}

const char *
privs_drop_exec(void)
{
	privs_drop_bounding();
	return privs_drop_caps() == -1 ? "capabilities" : NULL;
}
