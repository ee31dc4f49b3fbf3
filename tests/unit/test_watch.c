/*
 * The watcher that vouches for the status reply's cache (daemon/sys/watch.c). A
 * cached reply is only as fresh as this generation: each test changes one
 * thing the reply is read from, in one of the ways an operator or the daemon
 * changes it, and asserts that the generation moved at once (no event loop
 * turn in between), and that it does not move while nothing that matters
 * changes (else the cache is useless):
 *
 *  - a file rewritten in place, and through a hard link outside the directory;
 *  - the staging directory created after the watch was set, files written in
 *    it, then renamed away (writes in its new place no longer count);
 *  - the state directory, of which only retained/ matters: the ledger's
 *    files churning there change nothing, retained/ appearing and its files
 *    changing do;
 *  - a root replaced through a renamed parent (its watch follows the old
 *    inode: only the identity check sees it), a root missing (0: read
 *    everything), the queue overflowing with events that would not matter
 *    one by one (they cannot be told apart any more).
 */
#include <sys/stat.h>

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

#include "fixture_fs.h"
#include "watch.h"

struct t {
	struct fixture_fs fs;
	char path[8][160];
	struct watch_path p[8];
	size_t n;
	struct watch *w;
};

static int
t_setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	if (t == NULL || fixture_fs_init(&t->fs, "watch") == -1 || fixture_fs_reset(&t->fs) == -1)
		return -1;
	if ((t->w = watch_new()) == NULL)
		return -1;
	*state = t;
	return 0;
}

static int
t_teardown(void **state)
{
	struct t *t = *state;

	watch_free(t->w);
	fixture_fs_remove(&t->fs);
	free(t);
	return 0;
}

/* Adds a path to watch: dir (ssl or state), then rel ("" for dir itself). */
static void
t_add(struct t *t, const char *dir, const char *rel, enum watch_kind kind)
{
	snprintf(t->path[t->n], sizeof(t->path[0]), "%s%s%s", dir, *rel ? "/" : "", rel);
	t->p[t->n].path = t->path[t->n];
	t->p[t->n].kind = kind;
	t->n++;
}

/* The daemon's layout, as carotated_watch sets it (one file per directory is enough). */
static void
t_watch_daemon(struct t *t)
{
	t_add(t, t->fs.ssl, "", WATCH_ROOT);
	t_add(t, t->fs.ssl, "ca.crt", WATCH_FILE);
	t_add(t, t->fs.ssl, "new", WATCH_DIR);
	t_add(t, t->fs.ssl, "new/ca.crt", WATCH_FILE);
	t_add(t, t->fs.state, "", WATCH_ENTRIES);
	t_add(t, t->fs.state, "retained", WATCH_DIR);
	watch_set(t->w, t->p, t->n);
}

/* Writes dir/rel in place: the same inode, truncated and written again. */
static void
t_rewrite(const char *dir, const char *rel, const char *text)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_true((fd = open(path, O_WRONLY | O_TRUNC)) != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* The generation now, which must vouch for the files (not 0). */
static uint64_t
t_gen(struct t *t)
{
	uint64_t g = watch_generation(t->w);

	assert_true(g != 0);
	return g;
}

/* Asserts that the generation moved, and then holds still. */
static void
t_moved(struct t *t, uint64_t *g)
{
	uint64_t now = t_gen(t);

	assert_true(now != *g);
	assert_true(t_gen(t) == now);
	*g = now;
}

static void
test_nothing_watched(void **state)
{
	struct t *t = *state;

	assert_int_equal(watch_generation(NULL), 0);
	assert_int_equal(watch_generation(t->w), 0);
	watch_set(NULL, NULL, 0);
	watch_free(NULL);
}

static void
test_quiet_and_in_place(void **state)
{
	struct t *t = *state;
	char tmp[200];
	uint64_t g;

	fixture_fs_put(t->fs.ssl, "ca.crt", "one", 0644);
	t_watch_daemon(t);
	g = t_gen(t);
	assert_true(t_gen(t) == g);
	assert_true(t_gen(t) == g);
	t_rewrite(t->fs.ssl, "ca.crt", "two");
	t_moved(t, &g);
	/* Replaced by a rename, as fsx_replace does. */
	fixture_fs_put(t->fs.ssl, "ca.crt.tmp", "three", 0644);
	snprintf(tmp, sizeof(tmp), "%s/ca.crt.tmp", t->fs.ssl);
	assert_int_equal(rename(tmp, t->path[1]), 0);
	t_moved(t, &g);
	/* The file now watched is the new inode: writing it counts too. */
	t_rewrite(t->fs.ssl, "ca.crt", "four");
	t_moved(t, &g);
	/* Another file of the SSL directory: the whole directory matters. */
	fixture_fs_put(t->fs.ssl, "server.crt", "x", 0644);
	t_moved(t, &g);
	assert_int_equal(chmod(t->path[1], 0600), 0);
	t_moved(t, &g);
	/* Setting the paths again (a reload) starts a new generation. */
	watch_set(t->w, t->p, t->n);
	t_moved(t, &g);
}

static void
test_hard_link(void **state)
{
	struct t *t = *state;
	char outside[200];
	uint64_t g;

	fixture_fs_put(t->fs.ssl, "ca.crt", "one", 0644);
	snprintf(outside, sizeof(outside), "%s/linked", t->fs.root);
	t_watch_daemon(t);
	assert_int_equal(link(t->path[1], outside), 0);
	g = t_gen(t);
	/* The link itself changes ca.crt's link count: an attribute change. */
	g = t_gen(t);
	t_rewrite(t->fs.root, "linked", "through the other name");
	t_moved(t, &g);
	assert_string_equal(fixture_fs_get(t->fs.ssl, "ca.crt"), "through the other name");
}

static void
test_staging(void **state)
{
	struct t *t = *state;
	char newdir[200], away[200];
	uint64_t g;

	t_watch_daemon(t);
	g = t_gen(t);
	snprintf(newdir, sizeof(newdir), "%s/new", t->fs.ssl);
	snprintf(away, sizeof(away), "%s/away", t->fs.root);
	assert_int_equal(mkdir(newdir, 0700), 0);
	t_moved(t, &g);
	/* new/ was watched from that call on: a file written in it counts. */
	fixture_fs_put(newdir, "server.crt", "staged", 0644);
	t_moved(t, &g);
	t_rewrite(newdir, "server.crt", "staged again");
	t_moved(t, &g);
	fixture_fs_put(newdir, "ca.crt", "ca", 0644);
	t_moved(t, &g);
	t_rewrite(newdir, "ca.crt", "ca again");
	t_moved(t, &g);
	/* Renamed out of the SSL directory: its files there are not ours any more. */
	assert_int_equal(rename(newdir, away), 0);
	t_moved(t, &g);
	t_rewrite(away, "server.crt", "elsewhere");
	t_rewrite(away, "ca.crt", "elsewhere");
	assert_true(t_gen(t) == g);
	/* And a new new/ is watched again. */
	assert_int_equal(mkdir(newdir, 0700), 0);
	t_moved(t, &g);
	fixture_fs_put(newdir, "ca.crt", "ca", 0644);
	t_moved(t, &g);
}

static void
test_state_entries(void **state)
{
	struct t *t = *state;
	char retained[200], journal[200];
	uint64_t g;
	int i;

	t_watch_daemon(t);
	g = t_gen(t);
	snprintf(journal, sizeof(journal), "%s/ledger.db-journal", t->fs.state);
	/* The ledger at work: files made, written and removed. */
	for (i = 0; i < 20; i++) {
		fixture_fs_put(t->fs.state, "ledger.db-journal", "j", 0600);
		t_rewrite(t->fs.state, "ledger.db-journal", "jj");
		assert_int_equal(unlinkat(AT_FDCWD, journal, 0), 0);
	}
	fixture_fs_put(t->fs.state, "ledger.db", "db", 0600);
	t_rewrite(t->fs.state, "ledger.db", "db2");
	assert_true(t_gen(t) == g);
	snprintf(retained, sizeof(retained), "%s/retained", t->fs.state);
	assert_int_equal(mkdir(retained, 0700), 0);
	t_moved(t, &g);
	fixture_fs_put(retained, "a.crt", "# replaced 1\n", 0600);
	t_moved(t, &g);
	/* In place: the directory's identity does not change, its watch sees it. */
	t_rewrite(retained, "a.crt", "# replaced 2\n");
	t_moved(t, &g);
	fixture_fs_put(t->fs.state, "ledger.db", "db3", 0600);
	assert_true(t_gen(t) == g);
}

static void
test_root_replaced(void **state)
{
	struct t *t = *state;
	char parent[200], moved[200], root[220], moved_root[220], f[240];
	uint64_t g;

	snprintf(parent, sizeof(parent), "%s/p", t->fs.root);
	snprintf(moved, sizeof(moved), "%s/q", t->fs.root);
	snprintf(root, sizeof(root), "%s/ssl", parent);
	snprintf(moved_root, sizeof(moved_root), "%s/ssl", moved);
	assert_int_equal(mkdir(parent, 0755), 0);
	assert_int_equal(mkdir(root, 0755), 0);
	t_add(t, root, "", WATCH_ROOT);
	watch_set(t->w, t->p, t->n);
	g = t_gen(t);
	/* The parent moves away and another directory takes the path: no event on the root. */
	assert_int_equal(rename(parent, moved), 0);
	assert_int_equal(mkdir(parent, 0755), 0);
	assert_int_equal(mkdir(root, 0755), 0);
	t_moved(t, &g);
	fixture_fs_put(moved_root, "ca.crt", "old place", 0644);
	assert_true(t_gen(t) == g);
	fixture_fs_put(root, "ca.crt", "new place", 0644);
	t_moved(t, &g);
	/* Gone: nothing can be vouched for, until it is back. */
	snprintf(f, sizeof(f), "%s/ca.crt", root);
	assert_int_equal(unlink(f), 0);
	assert_int_equal(rmdir(root), 0);
	assert_int_equal(watch_generation(t->w), 0);
	assert_int_equal(watch_generation(t->w), 0);
	assert_int_equal(mkdir(root, 0755), 0);
	g = t_gen(t);
	assert_true(t_gen(t) == g);
}

static void
test_overflow(void **state)
{
	struct t *t = *state;
	char path[200];
	long max = 0;
	FILE *f;
	uint64_t g;
	long i;
	int fd;

	if ((f = fopen("/proc/sys/fs/inotify/max_queued_events", "r")) != NULL) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 0;
		fclose(f);
	}
	if (max <= 0 || max > 200000)
		skip();
	t_watch_daemon(t);
	g = t_gen(t);
	/* Events that do not matter one by one, until the queue cannot hold them. */
	snprintf(path, sizeof(path), "%s/churn", t->fs.state);
	for (i = 0; i < max / 2 + 16; i++) {
		assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600)) != -1);
		close(fd);
		assert_int_equal(unlink(path), 0);
	}
	t_moved(t, &g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nothing_watched, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_quiet_and_in_place, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_hard_link, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_staging, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_state_entries, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_root_replaced, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_overflow, t_setup, t_teardown),
	};

	return cmocka_run_group_tests_name("watch", tests, NULL, NULL);
}
