/* Scratch directories and file helpers of the unit tests (fixture_fs.h). */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "fixture_fs.h"

int
fixture_fs_init(struct fixture_fs *fx, const char *name)
{
	snprintf(fx->root, sizeof(fx->root), "/tmp/carotate-test-%s-XXXXXX", name);
	if (mkdtemp(fx->root) == NULL)
		return -1;
	snprintf(fx->ssl, sizeof(fx->ssl), "%s/ssl", fx->root);
	snprintf(fx->state, sizeof(fx->state), "%s/state", fx->root);
	return 0;
}

int
fixture_fs_reset(const struct fixture_fs *fx)
{
	char cmd[300];

	snprintf(
	    cmd, sizeof(cmd), "rm -rf %s/ssl %s/state %s/outside", fx->root, fx->root, fx->root);
	if (system(cmd) != 0 || mkdir(fx->ssl, 0755) == -1 || mkdir(fx->state, 0700) == -1)
		return -1;
	return 0;
}

int
fixture_fs_remove(const struct fixture_fs *fx)
{
	char cmd[100];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->root);
	return system(cmd) == 0 ? 0 : -1;
}

void
fixture_fs_conf(const struct fixture_fs *fx, struct config *conf)
{
	conf->ssl_dir = (char *)fx->ssl;
	conf->state_dir = (char *)fx->state;
	conf->ssl_ca = (char *)"ca.crt";
	conf->ssl_cert = (char *)"server.crt";
	conf->ssl_key = (char *)"server.key";
}

void
fixture_fs_put(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

const char *
fixture_fs_get(const char *dir, const char *rel)
{
	static char buf[2][1024];
	static int k;
	char path[512];
	ssize_t n;
	int fd;

	k ^= 1;
	buf[k][0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW)) == -1)
		return buf[k];
	n = read(fd, buf[k], sizeof(buf[k]) - 1);
	buf[k][n > 0 ? n : 0] = '\0';
	close(fd);
	return buf[k];
}

int
fixture_fs_exists(const char *dir, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

mode_t
fixture_fs_mode(const char *dir, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

int
fixture_fs_count(const char *dir, const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

void
fixture_fs_snapshot(const char *dir, char *out, size_t len)
{
	char cmd[256];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd),
	    "cd %s && find . -printf '%%p %%y %%m\\n' | sort && find . -type f | sort | xargs cat",
	    dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	pclose(p);
}
