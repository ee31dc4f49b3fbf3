/*
 * What the fuzz targets share: a scratch directory, files, splitting an input
 * into fields, and a client that sends an input on a socket and collects the answers.
 */
#ifndef CAROTATE_FUZZLIB_H
#define CAROTATE_FUZZLIB_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct event;
struct event_base;
struct evbuffer;

/* Separates the fields of one input (PEM text, a flag byte, ...): "\n@@@@\n". */
#define FUZZ_SEP     "\n@@@@\n"
#define FUZZ_SEP_LEN 6

struct fuzz_field {
	const uint8_t *p;
	size_t len;
};

/* Fails loudly: a broken invariant is a finding, reported by libFuzzer as a crash. */
void fuzz_fail(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A fresh directory for this process (on /dev/shm when it can), removed at exit. */
const char *fuzz_tmpdir(const char *name);
/* dir/name, in a static buffer of its own per call site's choice (buf, len). */
char *fuzz_path(char *buf, size_t len, const char *dir, const char *name);
/* Writes len bytes to path (created 0600 or truncated); fatal on error. */
void fuzz_write_file(const char *path, const void *, size_t len);
/* Splits data at FUZZ_SEP into at most max fields; missing ones are empty. Returns the count. */
size_t fuzz_split(const uint8_t *data, size_t size, struct fuzz_field *, size_t max);
/* rm -rf path (our own scratch trees only). */
void fuzz_rmtree(const char *path);
/* Copies the regular file from to a new file to (which must not exist), mode mode. */
void fuzz_copy_file(const char *from, const char *to, mode_t mode);
/* cp -a from to (directories, regular files and symlinks, with their modes); fatal on error. */
void fuzz_copytree(const char *from, const char *to);

/* The client's end of one connection. */
struct fuzz_client {
	int fd;
	struct event *ev;
	struct evbuffer *out; /* still to send */
	struct evbuffer *in;  /* answers */
	int shut;             /* our side is closed for writing */
	int done;             /* the other side closed the connection */
};
/* Sends len bytes of data on fd from base's loop, then EOF; collects answers in c->in until done.
 */
void fuzz_client_start(
    struct fuzz_client *, struct event_base *, int fd, const void *data, size_t len);
/* Closes fd and frees what start made. */
void fuzz_client_close(struct fuzz_client *);

#endif
