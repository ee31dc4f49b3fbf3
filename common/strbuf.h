/* Text built in a fixed buffer, piece by piece (journals, manifests). */
#ifndef CAROTATE_STRBUF_H
#define CAROTATE_STRBUF_H

#include <stddef.h>

/*
 * Formats at buf + *len (size bytes in all) and advances *len: 0, or -1 when the text does
 * not fit whole (*len unchanged; the caller discards buf: a cut journal line must never be
 * written).
 */
int strbuf_appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
