/*
 * The power-loss write log (tests/powerloss/logfs.c documents the format): its records, and
 * the reads and writes logfs and replay share.
 */
#ifndef LOGFMT_H
#define LOGFMT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LOGFMT_MAGIC     "CRPLOG1\n"
#define LOGFMT_MAGIC_LEN 8
#define LOGFMT_HDR_LEN   16
/* A WRITE larger than this is a corrupt log (FUSE writes are at most 1 MiB). */
#define LOGFMT_MAX_LEN (16u << 20)

enum { LOGFMT_WRITE = 1, LOGFMT_FLUSH = 2, LOGFMT_MARK = 3 };

struct logfmt_rec {
	uint32_t type;
	uint32_t len;
	uint64_t offset;
};

/* hdr[LOGFMT_HDR_LEN] := the record header, little-endian. */
void logfmt_put_header(unsigned char *, uint32_t, uint32_t, uint64_t);
/* The header in hdr[LOGFMT_HDR_LEN]; -1 for an unknown type or a length over the cap. */
int logfmt_get_header(const unsigned char *, struct logfmt_rec *);
/* 0, or -1 with errno: the whole buffer or nothing said. */
/* 1 when len bytes were read, 0 at a clean end of file, -1 on an error or a short read. */
int logfmt_read_all(int, void *, size_t);

#endif
