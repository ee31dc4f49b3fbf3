/* State shared by the parts of the daemon's parent process. */
#ifndef CAROTATE_CAROTATED_H
#define CAROTATE_CAROTATED_H

#include <sys/types.h>
#include <time.h>

struct event_base;
struct config;
struct control;

struct carotated {
	struct config *conf;
	const char *conf_path;
	struct event_base *base;
	struct control *control;
	struct timespec started; /* CLOCK_MONOTONIC */
	int foreground;
	int privileged;   /* started as root: user, group and capability changes apply */
	const char *busy; /* the state-changing call in progress, or NULL */
	/* A change of the active set found at start-up or SIGHUP, for the audit log. */
	int adopted;
	int adopted_recovered; /* made by a swap recovery, not by hand */
	char adopted_before[160], adopted_after[160];
};

#endif
