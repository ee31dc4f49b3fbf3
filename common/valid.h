/*
 * Allow-lists for the names that cross a trust boundary, one copy for the daemon, the
 * CLI and the agent: a name one of them accepts, the others accept too.
 */
#ifndef CAROTATE_VALID_H
#define CAROTATE_VALID_H

#include <stddef.h>

#include "proto_limits.h"

/* The characters of an agent id: safe in a header, a file name, a log line and SQL text. */
#define VALID_AGENT_ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

/* 1 when s (len bytes, no NUL inside) is 1 to LIMITS_MAX_AGENT_ID of VALID_AGENT_ID_CHARS. */
int valid_agent_id(const char *s, size_t len);

#endif
