/* The power-loss write log: header encoding and whole reads and writes (logfmt.h). */
#include <errno.h>
#include <unistd.h>

#include "logfmt.h"

static void logfmt_put_le(unsigned char *, uint64_t, int);
static uint64_t logfmt_get_le(const unsigned char *, int);

static void
logfmt_put_le(unsigned char *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
logfmt_get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void
logfmt_put_header(unsigned char *hdr, uint32_t type, uint32_t len, uint64_t offset)
{
	logfmt_put_le(hdr, type, 4);
	logfmt_put_le(hdr + 4, len, 4);
	logfmt_put_le(hdr + 8, offset, 8);
}

int
logfmt_get_header(const unsigned char *hdr, struct logfmt_rec *r)
{
	r->type = (uint32_t)logfmt_get_le(hdr, 4);
	r->len = (uint32_t)logfmt_get_le(hdr + 4, 4);
	r->offset = logfmt_get_le(hdr + 8, 8);
	if (r->type < LOGFMT_WRITE || r->type > LOGFMT_MARK || r->len > LOGFMT_MAX_LEN)
		return -1;
	return 0;
}

int
logfmt_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if ((n = read(fd, p + got, len - got)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == len)
		return 1;
	if (got == 0)
		return 0;
	errno = EIO;
	return -1;
}
