/*
 * A pool member's heartbeat (member.h). The state written is read from disk at each beat
 * (the fingerprints the audit records use) and from what the proxy's last reload and TLS
 * check left in the daemon's context: nothing is kept twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "carotated.h"
#include "certset.h"
#include "config.h"
#include "ledger.h"
#include "log.h"
#include "member.h"
#include "pki.h"
#include "xmalloc.h"

struct member {
	struct event *ev;
	int64_t started_at; /* seconds since the epoch */
	int down;           /* the last beat failed; said once */
};

static void member_state(struct carotated *, struct ledger_member *);
static void member_tick(evutil_socket_t, short, void *);

/* What this member serves now and how its proxy answered last. */
static void
member_state(struct carotated *cd, struct ledger_member *m)
{
	char ca[PKI_SHA256_HEX], srv[PKI_SHA256_HEX], staged[PKI_SHA256_HEX];
	const struct carotated_proxy_last *p = &cd->proxy_last;

	memset(m, 0, sizeof(*m));
	certset_fingerprints(cd->conf, 0, ca, srv);
	certset_fingerprints(cd->conf, 1, staged, NULL);
	snprintf(m->active_ca, sizeof(m->active_ca), "%s", ca);
	snprintf(m->active_server, sizeof(m->active_server), "%s", srv);
	snprintf(m->staged_ca, sizeof(m->staged_ca), "%s", staged);
	m->started_at = cd->member->started_at;
	m->last_reload_at = p->reload_at;
	m->last_reload_ok = p->reload_ok;
	m->last_check_at = p->check_at;
	m->last_check_ok = p->check_ok;
	snprintf(m->last_error, sizeof(m->last_error), "%s", p->error);
}

void
member_beat(struct carotated *cd)
{
	struct ledger_member m;

	if (cd->member == NULL || cd->ledger == NULL || ledger_in_batch(cd->ledger))
		return;
	member_state(cd, &m);
	if (ledger_member_beat(cd->ledger, &m) == 0) {
		if (cd->member->down)
			log_info("pool heartbeat: this member's state is written again");
		cd->member->down = 0;
		return;
	}
	if (!cd->member->down)
		log_warnx("pool heartbeat: cannot write this member's state to the pool's "
		          "database; the other members will see it stale until it is back");
	cd->member->down = 1;
}

static void
member_tick(evutil_socket_t fd, short events, void *arg)
{
	member_beat(arg);
}

void
member_start(struct carotated *cd)
{
	struct timeval tv = { .tv_sec = (time_t)cd->conf->ledger_heartbeat };

	if (cd->conf->ledger_backend != CONFIG_LEDGER_POSTGRESQL || cd->member != NULL)
		return;
	cd->member = xcalloc(1, sizeof(*cd->member));
	cd->member->started_at = (int64_t)time(NULL);
	if ((cd->member->ev = event_new(cd->base, -1, EV_PERSIST, member_tick, cd)) == NULL ||
	    event_add(cd->member->ev, &tv) == -1)
		fatalx("cannot start the pool heartbeat");
	member_beat(cd);
}

void
member_stop(struct carotated *cd)
{
	if (cd->member == NULL)
		return;
	if (cd->member->ev != NULL)
		event_free(cd->member->ev);
	free(cd->member);
	cd->member = NULL;
}
