/*
 * The intent note of a set change that is not a swap (intent.h). Like the swap
 * journal's pending note, it must be on disk before the change it announces:
 * a note lost to a power cut would leave a change no one is credited with.
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
#include "intent.h"

static int intent_dir(const struct config *, char *, size_t);

/* The state directory: a descriptor, or -1 with err. */
static int
intent_dir(const struct config *conf, char *err, size_t errlen)
{
	int fd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1)
		snprintf(err, errlen, "cannot open %s: %s", conf->state_dir, strerror(errno));
	return fd;
}

int
intent_write(const struct config *conf, const char *text, char *err, size_t errlen)
{
	int fd, r = 0;

	if (strlen(text) >= INTENT_MAX) {
		snprintf(err, errlen, "%s/%s: too long", conf->state_dir, INTENT_FILE);
		return -1;
	}
	if ((fd = intent_dir(conf, err, errlen)) == -1)
		return -1;
	if (fsx_replace(fd, INTENT_FILE, text, strlen(text), 0600) == -1) {
		snprintf(err, errlen, "cannot write %s/%s: %s", conf->state_dir, INTENT_FILE,
		    strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}

int
intent_read(const struct config *conf, char **text, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int fd, r = 1;

	*text = NULL;
	if ((fd = intent_dir(conf, err, errlen)) == -1)
		return -1;
	if (fsx_read(fd, INTENT_FILE, INTENT_MAX, &buf, &len) == -1) {
		r = errno == ENOENT ? 0 : -1;
		if (r == -1)
			snprintf(err, errlen, "cannot read %s/%s: %s", conf->state_dir, INTENT_FILE,
			    strerror(errno));
	} else if (strlen((char *)buf) != len) {
		free(buf);
		snprintf(err, errlen, "%s/%s: binary content", conf->state_dir, INTENT_FILE);
		r = -1;
	} else
		*text = (char *)buf;
	close(fd);
	return r;
}

int
intent_remove(const struct config *conf, char *err, size_t errlen)
{
	int fd, r = 0;

	if ((fd = intent_dir(conf, err, errlen)) == -1)
		return -1;
	/* And the temporary file of a write a stop cut short (fsx_replace's name for it). */
	if ((unlinkat(fd, INTENT_FILE, 0) == -1 && errno != ENOENT) ||
	    (unlinkat(fd, "." INTENT_FILE ".tmp", 0) == -1 && errno != ENOENT) ||
	    fsx_fsync_dir(fd) == -1) {
		snprintf(err, errlen, "cannot remove %s/%s: %s", conf->state_dir, INTENT_FILE,
		    strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}
