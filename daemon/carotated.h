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
};

#endif
