/*
 * replay: the disk a power cut leaves, rebuilt from logfs's write log (logfs.c documents it).
 *
 *   replay BASE.img LOG OUT.img N [--drop I,J,...]
 *       OUT.img := BASE.img (the fresh image the log started from, copied sparse), then the
 *       first N records of LOG applied in order (records are numbered from 0), except the
 *       WRITE records numbered in --drop: writes the disk lost or had not yet done when the
 *       power went (it may reorder writes between two flushes).
 *   replay --list LOG
 *       one line a record: "I WRITE OFFSET LENGTH", "I FLUSH" or "I MARK TEXT".
 *
 * Exit status: 0 done, 1 an error (a short or corrupt log, N past its end), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "logfmt.h"

struct replay_drops {
	unsigned long *idx;
	size_t n;
};

static int replay_usage(void);
static int replay_open_log(const char *);
static int replay_next(int, struct logfmt_rec *, unsigned char **);
static int replay_list(const char *);
static int replay_copy(int, int);
static int replay_parse_drops(const char *, struct replay_drops *);
static int replay_dropped(const struct replay_drops *, unsigned long);
static int replay_apply(
    const char *, const char *, const char *, unsigned long, const struct replay_drops *);

static int
replay_usage(void)
{
	fprintf(stderr, "usage: replay BASE.img LOG OUT.img N [--drop I,J,...]\n"
	                "       replay --list LOG\n");
	return 2;
}

/* The log, its magic checked; -1 (said) otherwise. */
static int
replay_open_log(const char *path)
{
	char magic[LOGFMT_MAGIC_LEN];
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		perror(path);
		return -1;
	}
	if (logfmt_read_all(fd, magic, sizeof(magic)) != 1 ||
	    memcmp(magic, LOGFMT_MAGIC, LOGFMT_MAGIC_LEN) != 0) {
		fprintf(stderr, "replay: %s is not a logfs log\n", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* The next record and its payload (*data, freed by the caller); 1, 0 at the end, -1 (said) on
 * a truncated or corrupt record. */
static int
replay_next(int fd, struct logfmt_rec *r, unsigned char **data)
{
	unsigned char hdr[LOGFMT_HDR_LEN];
	int rc;

	*data = NULL;
	if ((rc = logfmt_read_all(fd, hdr, sizeof(hdr))) != 1) {
		if (rc == -1)
			fprintf(stderr, "replay: a truncated record header\n");
		return rc;
	}
	if (logfmt_get_header(hdr, r) == -1) {
		fprintf(stderr, "replay: a corrupt record (type %u, length %u)\n", r->type, r->len);
		return -1;
	}
	if ((*data = malloc(r->len + 1)) == NULL) {
		perror("replay");
		return -1;
	}
	if (r->len > 0 && logfmt_read_all(fd, *data, r->len) != 1) {
		fprintf(stderr, "replay: a truncated record\n");
		free(*data);
		*data = NULL;
		return -1;
	}
	(*data)[r->len] = '\0';
	return 1;
}

static int
replay_list(const char *log)
{
	struct logfmt_rec r;
	unsigned char *data;
	unsigned long i;
	int fd, rc;

	if ((fd = replay_open_log(log)) == -1)
		return 1;
	for (i = 0; (rc = replay_next(fd, &r, &data)) == 1; i++) {
		if (r.type == LOGFMT_WRITE)
			printf("%lu WRITE %llu %u\n", i, (unsigned long long)r.offset, r.len);
		else if (r.type == LOGFMT_FLUSH)
			printf("%lu FLUSH\n", i);
		else
			printf("%lu MARK %s\n", i, (char *)data);
		free(data);
	}
	close(fd);
	return rc == 0 ? 0 : 1;
}

/* out := in, holes kept holes (XFS images are hundreds of MB of mostly nothing). */
static int
replay_copy(int in, int out)
{
	struct stat st;
	off_t data = 0, hole;
	ssize_t n;

	if (fstat(in, &st) == -1 || ftruncate(out, st.st_size) == -1)
		return -1;
	while (data < st.st_size) {
		if ((data = lseek(in, data, SEEK_DATA)) == -1)
			return errno == ENXIO ? 0 : -1;
		if ((hole = lseek(in, data, SEEK_HOLE)) == -1)
			return -1;
		while (data < hole) {
			off_t ioff = data, ooff = data;

			n = copy_file_range(in, &ioff, out, &ooff, (size_t)(hole - data), 0);
			if (n <= 0)
				return -1;
			data += n;
		}
	}
	return 0;
}

/* "I,J,..." of decimal record numbers. */
static int
replay_parse_drops(const char *s, struct replay_drops *d)
{
	char *end;

	while (*s != '\0') {
		unsigned long *p;
		unsigned long v;

		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno != 0 || end == s || (*end != ',' && *end != '\0'))
			return -1;
		if ((p = realloc(d->idx, (d->n + 1) * sizeof(*p))) == NULL)
			return -1;
		d->idx = p;
		d->idx[d->n++] = v;
		s = *end == ',' ? end + 1 : end;
	}
	return 0;
}

static int
replay_dropped(const struct replay_drops *d, unsigned long i)
{
	size_t k;

	for (k = 0; k < d->n; k++)
		if (d->idx[k] == i)
			return 1;
	return 0;
}

static int
replay_apply(const char *base, const char *log, const char *outp, unsigned long n,
    const struct replay_drops *drops)
{
	struct logfmt_rec r;
	unsigned char *data;
	unsigned long i;
	int in, out, lfd, rc = 1;

	if ((in = open(base, O_RDONLY | O_CLOEXEC)) == -1) {
		perror(base);
		return 1;
	}
	out = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out == -1 || replay_copy(in, out) == -1) {
		perror(outp);
		goto done;
	}
	if ((lfd = replay_open_log(log)) == -1)
		goto done;
	for (i = 0; i < n; i++) {
		int got = replay_next(lfd, &r, &data);

		if (got != 1) {
			if (got == 0)
				fprintf(stderr, "replay: the log has %lu records, not %lu\n", i, n);
			break;
		}
		if (r.type == LOGFMT_WRITE && !replay_dropped(drops, i) &&
		    io_pwrite_all(out, data, r.len, (off_t)r.offset) == -1) {
			perror(outp);
			free(data);
			break;
		}
		free(data);
	}
	close(lfd);
	if (i == n)
		rc = 0;
done:
	close(in);
	if (out != -1 && close(out) == -1 && rc == 0) {
		perror(outp);
		rc = 1;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	struct replay_drops drops = { NULL, 0 };
	unsigned long n;
	char *end;
	int rc;

	if (argc == 3 && strcmp(argv[1], "--list") == 0)
		return replay_list(argv[2]);
	if (argc != 5 && argc != 7)
		return replay_usage();
	errno = 0;
	n = strtoul(argv[4], &end, 10);
	if (errno != 0 || end == argv[4] || *end != '\0' || argv[4][0] == '-')
		return replay_usage();
	if (argc == 7 &&
	    (strcmp(argv[5], "--drop") != 0 || replay_parse_drops(argv[6], &drops) == -1))
		return replay_usage();
	rc = replay_apply(argv[1], argv[2], argv[3], n, &drops);
	free(drops.idx);
	return rc;
}
