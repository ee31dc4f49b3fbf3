/*
 * Least privilege for the parent (PITFALLS: "Peer credentials and
 * privileges"). Everything that needs more than these is done before
 * privs_restrict runs: the sockets are bound and chowned to their groups, the
 * ledger is open, the agent worker is started. From then on the parent keeps
 * only what it proves it needs, and neither it nor anything it runs (the
 * proxy's reload command, the certificate jobs) can get the rest back:
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
 */
#include <sys/prctl.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sys/capability.h>

#include "privs.h"

static const cap_value_t privs_keep[] = { CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_SETPCAP };
#define PRIVS_NKEEP (sizeof(privs_keep) / sizeof(privs_keep[0]))

static char privs_text[256] = "none";

static int privs_is_kept(cap_value_t);
static int privs_error(char *, size_t, const char *);

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
privs_restrict(char *err, size_t errlen)
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
