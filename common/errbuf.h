/* Errors as values: a failing function fills the caller's buffer and returns -1. */
#ifndef CAROTATE_ERRBUF_H
#define CAROTATE_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* Formats into err (errlen bytes, truncated, always terminated when errlen > 0); -1. */
int errbuf_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* errbuf_fail with a va_list, for a module's wrapper that finds err in its context. */
int errbuf_vfail(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
