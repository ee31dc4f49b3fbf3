/*
 * The duration grammar of both configuration files (carotated.conf, agent.conf): digits and
 * at most one unit letter, s (the default), m, h or d. Strict: no sign, space, fraction or
 * unit combinations, so "1h30m" and " 5s" are errors rather than surprises.
 */
#ifndef CAROTATE_DURATION_H
#define CAROTATE_DURATION_H

#include <stdint.h>

/* 0 and *ms on success; -1 and *why (a phrase: "is too large") otherwise. */
int duration_parse_ms(const char *s, uint64_t *ms, const char **why);

#endif
