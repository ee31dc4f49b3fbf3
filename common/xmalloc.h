/* Allocation that never returns NULL: failure is fatal. */
#ifndef CAROTATE_XMALLOC_H
#define CAROTATE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
/* len bytes of p (NULL when len is 0) and a NUL after them: bytes a PEM parser reads. */
void *xmemdupz(const void *p, size_t len);
int xasprintf(char **, const char *, ...) __attribute__((format(printf, 2, 3)));
/* Wipes len bytes at p, then frees p. */
void xfreezero(void *p, size_t len);

#endif
