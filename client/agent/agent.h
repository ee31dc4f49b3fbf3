/*
 * carotate-agent: the agent half of the protocol (DESIGN §6, §11), one module per job:
 * conf.c (agent.conf), state.c (state_dir), fsio.c (atomic files), bundle.c (validation),
 * http.c (libcurl), hook.c (the hook), main.c (verbs and exit codes).
 */
#ifndef CAROTATE_AGENT_H
#define CAROTATE_AGENT_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes (DESIGN §11), mapped in main.c only. */
enum agent_exit {
	AGENT_OK = 0,
	AGENT_EUSAGE = 1,     /* usage or configuration */
	AGENT_EUNREACH = 2,   /* connect, TLS, timeout, 5xx, canary failure */
	AGENT_ENOTLINKED = 3, /* no token in state_dir */
	AGENT_EREFUSED = 4,   /* 401: the token is refused, relink */
	AGENT_EINVALID = 5,   /* the proxy sent something invalid (or a pin mismatch) */
	AGENT_EINTERNAL = 6,  /* disk full, unwritable or corrupt state */
};

#define AGENT_ERRLEN 512

#endif
