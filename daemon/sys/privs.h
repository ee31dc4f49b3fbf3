/* The parent's privileges once it has started: only the capabilities it needs. */
#ifndef CAROTATE_PRIVS_H
#define CAROTATE_PRIVS_H

#include <stddef.h>

/*
 * Sets no_new_privs, empties the bounding and ambient sets but for the kept
 * capabilities (privs.c says which and why), makes them the only permitted
 * and effective ones, reads the result back and compares. Run as root,
 * before any thread exists; 0, or -1 with err filled in.
 */
int privs_restrict(char *err, size_t errlen);
/* The sets after privs_restrict, for messages (cap_to_text(3)). */
const char *privs_kept(void);

#endif
