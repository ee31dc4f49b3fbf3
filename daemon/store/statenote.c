/*
 * Notes in the state directory (statenote.h). Each must be on disk before the
 * change it announces: a note lost to a power cut would leave a change no one
 * is credited with.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fsx.h"
#include "statenote.h"

static int statenote_dir(const struct config *, char *, size_t);

/* The state directory: a descriptor, or -1 with err. */
static int
statenote_dir(const struct config *conf, char *err, size_t errlen)
{
	int fd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1)
		snprintf(err, errlen, "cannot open %s: %s", conf->state_dir, strerror(errno));
	return fd;
}

int
statenote_write(
    const struct config *conf, const char *name, const char *text, char *err, size_t errlen)
{
	int fd, r = 0;

	if (strlen(text) >= STATENOTE_MAX) {
		snprintf(err, errlen, "%s/%s: too long", conf->state_dir, name);
		return -1;
	}
	if ((fd = statenote_dir(conf, err, errlen)) == -1)
		return -1;
	if (fsx_replace(fd, name, text, strlen(text), 0600) == -1) {
		snprintf(
		    err, errlen, "cannot write %s/%s: %s", conf->state_dir, name, strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}

int
statenote_read(const struct config *conf, const char *name, char **text, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int fd, r = 1;

	*text = NULL;
	if ((fd = statenote_dir(conf, err, errlen)) == -1)
		return -1;
	if (fsx_read(fd, name, STATENOTE_MAX, &buf, &len) == -1) {
		r = errno == ENOENT ? 0 : -1;
		if (r == -1)
			snprintf(err, errlen, "cannot read %s/%s: %s", conf->state_dir, name,
			    strerror(errno));
	} else if (strlen((char *)buf) != len) {
		free(buf);
		snprintf(err, errlen, "%s/%s: binary content", conf->state_dir, name);
		r = -1;
	} else
		*text = (char *)buf;
	close(fd);
	return r;
}

int
statenote_remove(const struct config *conf, const char *name, char *err, size_t errlen)
{
	int fd, r = 0;

	if ((fd = statenote_dir(conf, err, errlen)) == -1)
		return -1;
	/* And the temporary file of a write a stop cut short. */
	if (fsx_remove(fd, name) == -1) {
		snprintf(
		    err, errlen, "cannot remove %s/%s: %s", conf->state_dir, name, strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}
