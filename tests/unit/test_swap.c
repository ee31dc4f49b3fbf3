/* The journaled swap: rotate, restore, backup ids, tampering, symlinks, and crash recovery. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "backup.h"
#include "config.h"
#include "fixture_fs.h"
#include "fixture_pki.h"
#include "journal.h"
#include "statenote.h"
#include "swap.h"

#define T0       1764201600 /* 2025-11-27 00:00:00 UTC */
#define OTHER_CA "0011111111111111111111111111111111111111111111111111111111111111"

static struct fixture_fs fx;
static struct config conf;

static void make_set(const char *, const char *);
static const char *active_set(void);
static void make_manual(const char *, const char *);
static int note_text(void *, const char *, char *, size_t);
static const char *pending(void);

static int note_calls; /* note_text's, in this process */

/* The caller's pending note (struct journal_note): names the backup the swap made. */
static int
note_text(void *arg, const char *backup_id, char *buf, size_t len)
{
	note_calls++;
	if (arg == NULL)
		return -1; /* "does not fit" */
	snprintf(buf, len, "note %s backup=%s\n", (const char *)arg,
	    backup_id[0] != '\0' ? backup_id : "-");
	return 0;
}

/* JOURNAL_PENDING's text, or "" when there is none (a static copy). */
static const char *
pending(void)
{
	static char copy[256];
	char *text = NULL, err[256];
	int r;

	r = statenote_read(&conf, JOURNAL_PENDING, &text, err, sizeof(err));
	assert_true(r >= 0);
	snprintf(copy, sizeof(copy), "%s", r == 1 ? text : "");
	free(text);
	return copy;
}

/* A set named tag ("OLD", "NEW") in dir ("" for the active names, "new/" for the staged set). */
static void
make_set(const char *dir, const char *tag)
{
	char rel[128], text[64];

	if (strcmp(dir, "new/") == 0 || strcmp(dir, "renew/") == 0) {
		snprintf(rel, sizeof(rel), "%s/%.*s", fx.ssl, (int)strlen(dir) - 1, dir);
		assert_int_equal(mkdir(rel, 0700), 0);
	}
	snprintf(rel, sizeof(rel), "%sca.crt", dir);
	snprintf(text, sizeof(text), "%s-CA\n", tag);
	fixture_fs_put(fx.ssl, rel, text, 0644);
	snprintf(rel, sizeof(rel), "%sserver.crt", dir);
	snprintf(text, sizeof(text), "%s-CERT\n", tag);
	fixture_fs_put(fx.ssl, rel, text, 0644);
	snprintf(rel, sizeof(rel), "%sserver.key", dir);
	snprintf(text, sizeof(text), "%s-KEY\n", tag);
	fixture_fs_put(fx.ssl, rel, text, 0600);
	snprintf(rel, sizeof(rel), "%s.carotate-set", dir);
	snprintf(text, sizeof(text), "origin=generated\ncreated=%s\n",
	    strcmp(tag, "OLD") == 0 ? "1" : "2");
	fixture_fs_put(fx.ssl, rel, text, 0644);
}

/* "OLD", "NEW", "none", or "mixed" for the active ca/cert/key. */
static const char *
active_set(void)
{
	static const char *const tags[] = { "OLD", "NEW" };
	char want[3][32];
	int i;

	if (!fixture_fs_exists(fx.ssl, "ca.crt") && !fixture_fs_exists(fx.ssl, "server.crt") &&
	    !fixture_fs_exists(fx.ssl, "server.key"))
		return "none";
	for (i = 0; i < 2; i++) {
		snprintf(want[0], sizeof(want[0]), "%s-CA\n", tags[i]);
		snprintf(want[1], sizeof(want[1]), "%s-CERT\n", tags[i]);
		snprintf(want[2], sizeof(want[2]), "%s-KEY\n", tags[i]);
		if (strcmp(fixture_fs_get(fx.ssl, "ca.crt"), want[0]) == 0 &&
		    strcmp(fixture_fs_get(fx.ssl, "server.crt"), want[1]) == 0 &&
		    strcmp(fixture_fs_get(fx.ssl, "server.key"), want[2]) == 0)
			return tags[i];
	}
	return "mixed";
}

static int
setup(void **st)
{
	return fixture_fs_reset(&fx);
}

static int
group_setup(void **st)
{
	if (fixture_fs_init(&fx, "swap") == -1)
		return -1;
	fixture_fs_conf(&fx, &conf);
	return 0;
}

static int
group_teardown(void **st)
{
	return fixture_fs_remove(&fx);
}

/* A fresh proxy: the staged set simply becomes the active one, no backup. */
static void
test_rotate_no_active(void **st)
{
	char id[SWAP_ID_MAX], err[256];

	make_set("new/", "NEW");
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
	assert_string_equal(id, "");
	assert_string_equal(active_set(), "NEW");
	assert_int_equal(fixture_fs_mode(fx.ssl, "server.key"), 0600);
	assert_string_equal(
	    fixture_fs_get(fx.ssl, ".carotate-set"), "origin=generated\ncreated=2\n");
	assert_false(fixture_fs_exists(fx.ssl, "new"));
	assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 0);
	assert_int_equal(journal_recover(&conf, err, sizeof(err)), 0);
	/* Nothing staged any more: refused. */
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no staged set"));
}

static void
test_rotate_backup(void **st)
{
	unsigned char md[32];
	char id[SWAP_ID_MAX], err[256], line[128], hex[65];
	unsigned int i;

	make_set("", "OLD");
	make_set("new/", "NEW");
	assert_int_equal(
	    swap_rotate(&conf, T0, "forced: test\nrun", id, sizeof(id), err, sizeof(err)), 0);
	assert_string_equal(id, "certs-20251127-000000");
	assert_string_equal(active_set(), "NEW");
	assert_false(fixture_fs_exists(fx.ssl, "new"));
	assert_int_equal(fixture_fs_mode(fx.ssl, "certs-20251127-000000"), 0700);
	assert_string_equal(fixture_fs_get(fx.ssl, "certs-20251127-000000/ca.crt"), "OLD-CA\n");
	assert_string_equal(
	    fixture_fs_get(fx.ssl, "certs-20251127-000000/server.key"), "OLD-KEY\n");
	assert_int_equal(fixture_fs_mode(fx.ssl, "certs-20251127-000000/server.key"), 0600);
	assert_string_equal(fixture_fs_get(fx.ssl, "certs-20251127-000000/.carotate-set"),
	    "origin=generated\ncreated=1\n");
	/* The manifest: reason on one line, time, and sha256, mode, name per file. */
	assert_non_null(strstr(fixture_fs_get(fx.ssl, "certs-20251127-000000/.manifest"),
	    "reason=forced: test?run\nop=rotate\ncreated=1764201600\n"));
	EVP_Digest("OLD-KEY\n", 8, md, NULL, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(line, sizeof(line), "%s  0600  server.key\n", hex);
	assert_non_null(strstr(fixture_fs_get(fx.ssl, "certs-20251127-000000/.manifest"), line));
	assert_int_equal(backup_check_files(&conf, id, err, sizeof(err)), 0);
	assert_false(fixture_fs_exists(fx.ssl, "../state/swap.journal"));

	/* The same second again: a suffix, never an overwrite. */
	make_set("new/", "OLD");
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
	assert_string_equal(id, "certs-20251127-000000-2");
	assert_string_equal(fixture_fs_get(fx.ssl, "certs-20251127-000000-2/ca.crt"), "NEW-CA\n");
	assert_string_equal(active_set(), "OLD");
}

/* Restore copies (the backup stays) and backs up the current set first, so it can be undone. */
static void
test_restore(void **st)
{
	char id[SWAP_ID_MAX], id2[SWAP_ID_MAX], id3[SWAP_ID_MAX], err[256];

	make_set("", "OLD");
	make_set("new/", "NEW");
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
	assert_int_equal(swap_restore(&conf, id, T0 + 61, id2, sizeof(id2), err, sizeof(err)), 0);
	assert_string_equal(id2, "certs-20251127-000101");
	assert_string_equal(active_set(), "OLD");
	assert_int_equal(fixture_fs_mode(fx.ssl, "server.key"), 0600);
	assert_string_equal(
	    fixture_fs_get(fx.ssl, ".carotate-set"), "origin=generated\ncreated=1\n");
	assert_int_equal(backup_check_files(&conf, id, err, sizeof(err)), 0);
	assert_string_equal(
	    fixture_fs_get(fx.ssl, "certs-20251127-000101/server.crt"), "NEW-CERT\n");
	assert_non_null(strstr(fixture_fs_get(fx.ssl, "certs-20251127-000101/.manifest"),
	    "reason=restore of certs-20251127-000000\nop=restore\n"));
	/* ...and undone. */
	assert_int_equal(swap_restore(&conf, id2, T0 + 61, id3, sizeof(id3), err, sizeof(err)), 0);
	assert_string_equal(id3, "certs-20251127-000101-2");
	assert_string_equal(active_set(), "NEW");
	assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 3);
	assert_false(fixture_fs_exists(fx.ssl, ".ca.crt.tmp"));
}

/*
 * A step after the commit fails while the daemon runs: every step is undone,
 * the previous set is live and whole, no backup or journal is left. Here the
 * copy of server.key fails (a directory holds its temporary name), then the
 * removal of new/ (a directory inside it).
 */
static void
test_fail_after_commit(void **st)
{
	char id[SWAP_ID_MAX], id2[SWAP_ID_MAX], err[256], before[8192], after[8192], path[128];

	make_set("", "OLD");
	make_set("new/", "NEW");
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/.server.key.tmp", fx.ssl);
	assert_int_equal(mkdir(path, 0700), 0);
	fixture_fs_put(fx.ssl, ".server.key.tmp/x", "x", 0600);
	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	assert_int_equal(swap_restore(&conf, id, T0 + 61, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "server.key"));
	assert_non_null(strstr(err, "nothing changed"));
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);
	assert_string_equal(active_set(), "NEW");
	assert_false(fixture_fs_exists(fx.ssl, "../state/swap.journal"));
	snprintf(path, sizeof(path), "rm -rf %s/.server.key.tmp", fx.ssl);
	assert_int_equal(system(path), 0);

	make_set("new/", "OLD");
	snprintf(path, sizeof(path), "%s/new/junk", fx.ssl);
	assert_int_equal(mkdir(path, 0700), 0);
	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	assert_int_equal(
	    swap_rotate(&conf, T0 + 62, "rotate", id2, sizeof(id2), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nothing changed"));
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);
	assert_string_equal(active_set(), "NEW");
	assert_false(fixture_fs_exists(fx.ssl, "../state/swap.journal"));
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(
	    swap_rotate(&conf, T0 + 62, "rotate", id2, sizeof(id2), err, sizeof(err)), 0);
	assert_string_equal(active_set(), "OLD");
}

/*
 * The pending note travels with the swap (issue 19): it is written before the
 * commit, with the backup the swap made, and stays once the swap is done, for
 * the engine to finish the call; a first activation (no backup) has one too.
 * Before, the engine wrote it only after the journal was gone: a crash in
 * between left a new set that no call accounted for.
 */
static void
test_note_commit(void **st)
{
	struct journal_note note = { note_text, (void *)"rotate" };
	char id[SWAP_ID_MAX], id2[SWAP_ID_MAX], err[256];

	make_set("", "OLD");
	make_set("new/", "NEW");
	note_calls = 0;
	assert_int_equal(
	    swap_rotate_ca(&conf, T0, "rotate", NULL, &note, id, sizeof(id), err, sizeof(err)), 0);
	assert_int_equal(note_calls, 1);
	assert_string_equal(id, "certs-20251127-000000");
	assert_string_equal(pending(), "note rotate backup=certs-20251127-000000\n");
	assert_string_equal(active_set(), "NEW");
	assert_false(fixture_fs_exists(fx.ssl, "../state/swap.journal"));

	/* The restore of that backup: a new note, for the backup made of NEW. */
	note.arg = (void *)"restore";
	assert_int_equal(
	    swap_restore_as(&conf, id, T0 + 61, 0, &note, id2, sizeof(id2), err, sizeof(err)), 0);
	assert_string_equal(pending(), "note restore backup=certs-20251127-000101\n");
	assert_string_equal(active_set(), "OLD");

	/* No active set: no backup, and the note all the same. */
	assert_int_equal(setup(NULL), 0);
	make_set("new/", "NEW");
	note.arg = (void *)"first";
	assert_int_equal(
	    swap_rotate_ca(&conf, T0, "rotate", NULL, &note, id, sizeof(id), err, sizeof(err)), 0);
	assert_string_equal(id, "");
	assert_string_equal(pending(), "note first backup=-\n");
	assert_string_equal(active_set(), "NEW");
}

/*
 * A note that cannot be written stops the swap before its commit: nothing
 * changes, and no note or journal is left. Likewise a swap that fails after
 * its commit (undone while running) takes its note away: nothing is left to
 * finish. A swap without a note (a roll back's) leaves the call's note alone.
 */
static void
test_note_undone(void **st)
{
	struct journal_note note = { note_text, NULL };
	char id[SWAP_ID_MAX], id2[SWAP_ID_MAX], err[256], before[8192], after[8192], path[128];

	make_set("", "OLD");
	make_set("new/", "NEW");
	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	note_calls = 0;
	assert_int_equal(
	    swap_rotate_ca(&conf, T0, "rotate", NULL, &note, id, sizeof(id), err, sizeof(err)), -1);
	assert_int_equal(note_calls, 1);
	assert_non_null(strstr(err, "does not fit"));
	assert_non_null(strstr(err, "nothing changed"));
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);
	assert_string_equal(pending(), "");
	assert_false(fixture_fs_exists(fx.ssl, "../state/swap.journal"));

	/* Fails after the commit (server.key's temporary name is taken): undone, note gone. */
	note.arg = (void *)"rotate";
	assert_int_equal(
	    swap_rotate_ca(&conf, T0, "rotate", NULL, &note, id, sizeof(id), err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/.server.key.tmp", fx.ssl);
	assert_int_equal(mkdir(path, 0700), 0);
	fixture_fs_put(fx.ssl, ".server.key.tmp/x", "x", 0600);
	assert_int_equal(statenote_remove(&conf, JOURNAL_PENDING, err, sizeof(err)), 0);
	note_calls = 0;
	note.arg = (void *)"restore";
	assert_int_equal(
	    swap_restore_as(&conf, id, T0 + 61, 0, &note, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_int_equal(note_calls, 1);
	assert_non_null(strstr(err, "nothing changed"));
	assert_string_equal(active_set(), "NEW");
	assert_string_equal(pending(), "");
	assert_false(fixture_fs_exists(fx.ssl, "../state/swap.journal"));

	/* A roll back (no note of its own) that fails the same way keeps the call's note. */
	assert_int_equal(statenote_write(&conf, JOURNAL_PENDING, "EARLIER\n", err, sizeof(err)), 0);
	assert_int_equal(
	    swap_restore_as(&conf, id, T0 + 61, 1, NULL, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_string_equal(pending(), "EARLIER\n");
	snprintf(path, sizeof(path), "rm -rf %s/.server.key.tmp", fx.ssl);
	assert_int_equal(system(path), 0);
}

/* Anything but the exact name of an existing backup is refused, and nothing changes. */
static void
test_restore_bad_ids(void **st)
{
	static const char *const bad[] = { "../x", "/etc", "a/b", "certs-2026", "new",
		"discarded-20251127-000000", "certs-20251127-000000/..", "certs-20251127-000000 ",
		"certs-20251127-000000/", "./certs-20251127-000000", "certs-20251127-000000-0",
		"certs-20251127-000000-1000", "certs-20251127-000099", "certs-20251128-000000", "",
		"CERTS-20251127-000000" };
	char id[SWAP_ID_MAX], id2[SWAP_ID_MAX], err[256], before[8192], after[8192];
	char longid[301], path[256];
	size_t i;

	make_set("", "OLD");
	make_set("new/", "NEW");
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
	make_set("new/", "OLD");
	snprintf(path, sizeof(path), "%s/discarded-20251127-000000", fx.ssl);
	assert_int_equal(mkdir(path, 0700), 0);
	/* A symlink with a backup's name, pointing at a copy of a valid backup. */
	snprintf(path, sizeof(path), "cp -a %s/%s %s/outside", fx.ssl, id, fx.root);
	assert_int_equal(system(path), 0);
	snprintf(path, sizeof(path), "%s/certs-20251128-000000", fx.ssl);
	assert_int_equal(symlink("../outside", path), 0);
	memset(longid, 'a', 300);
	longid[300] = '\0';
	memcpy(longid, "certs-20251127-000000", 21);

	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(backupid_valid(bad[i]) &&
		             strcmp(bad[i], "certs-20251127-000099") != 0 &&
		             strcmp(bad[i], "certs-20251128-000000") != 0);
		assert_int_equal(
		    swap_restore(&conf, bad[i], T0 + 1, id2, sizeof(id2), err, sizeof(err)), -1);
		assert_string_equal(id2, "");
	}
	assert_int_equal(
	    swap_restore(&conf, longid, T0 + 1, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a backup id"));
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);
	assert_true(backupid_valid("certs-20251127-000000-2"));
	assert_true(backupid_valid("certs-20251127-000000-100"));
}

/* One byte changed in a backup, or a mode, or a missing manifest: refused, nothing changed. */
static void
test_restore_tampered(void **st)
{
	char id[SWAP_ID_MAX], id2[SWAP_ID_MAX], err[256], before[8192], after[8192];
	char path[256];

	make_set("", "OLD");
	make_set("new/", "NEW");
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
	fixture_fs_put(fx.ssl, "certs-20251127-000000/server.crt", "OLD-CERU\n", 0644);
	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	assert_int_equal(swap_restore(&conf, id, T0 + 1, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not match its manifest"));
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);
	fixture_fs_put(fx.ssl, "certs-20251127-000000/server.crt", "OLD-CERT\n", 0644);
	snprintf(path, sizeof(path), "%s/%s/server.key", fx.ssl, id);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(swap_restore(&conf, id, T0 + 1, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_int_equal(chmod(path, 0600), 0);
	/* A set file of the backup replaced by a symlink. */
	snprintf(path, sizeof(path), "%s/%s/ca.crt", fx.ssl, id);
	assert_int_equal(rename(path, "/tmp/carotate-test-swap-ca"), 0);
	assert_int_equal(symlink("/tmp/carotate-test-swap-ca", path), 0);
	assert_int_equal(swap_restore(&conf, id, T0 + 1, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	unlink(path);
	assert_int_equal(rename("/tmp/carotate-test-swap-ca", path), 0);
	/* A manifest that exists but says nothing, or is a symlink: refused, not "made by hand". */
	fixture_fs_put(fx.ssl, "certs-20251127-000000/.manifest", "", 0600);
	assert_int_equal(swap_restore(&conf, id, T0 + 1, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a complete set"));
	snprintf(path, sizeof(path), "%s/%s/.manifest", fx.ssl, id);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/dev/null", path), 0);
	assert_int_equal(swap_restore(&conf, id, T0 + 1, id2, sizeof(id2), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	assert_string_equal(active_set(), "NEW");
	assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 1);
	assert_false(fixture_fs_exists(fx.ssl, "../state/swap.journal"));
}

/* certs-<id>/ made by hand, as PROCEDURE.txt's operators do: the set files and no manifest. */
static void
make_manual(const char *id, const char *tag)
{
	char path[256], rel[128], text[64];
	static const char *const names[] = { "ca.crt", "server.crt", "server.key" };
	static const char *const what[] = { "CA", "CERT", "KEY" };
	int i;

	snprintf(path, sizeof(path), "%s/%s", fx.ssl, id);
	assert_int_equal(mkdir(path, 0755), 0);
	for (i = 0; i < 3; i++) {
		snprintf(rel, sizeof(rel), "%s/%s", id, names[i]);
		snprintf(text, sizeof(text), "%s-%s\n", tag, what[i]);
		fixture_fs_put(fx.ssl, rel, text, i == 2 ? 0600 : 0644);
	}
}

/* A backup without a manifest is accepted when its three files are regular files. */
static void
test_manual_backup(void **st)
{
	char id[SWAP_ID_MAX], err[256], path[256], before[8192], after[8192];

	make_set("", "NEW");
	make_manual("certs-20251126-120000", "OLD");
	assert_int_equal(backup_check_files(&conf, "certs-20251126-120000", err, sizeof(err)), 0);

	/* One of its files a symlink (to a valid copy, even): refused, nothing changed. */
	snprintf(path, sizeof(path), "%s/certs-20251126-120000/server.key", fx.ssl);
	assert_int_equal(rename(path, "/tmp/carotate-test-swap-key"), 0);
	assert_int_equal(symlink("/tmp/carotate-test-swap-key", path), 0);
	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	assert_int_equal(
	    swap_restore(&conf, "certs-20251126-120000", T0, id, sizeof(id), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "server.key: a symbolic link"));
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);
	/* Missing. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(backup_check_files(&conf, "certs-20251126-120000", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a complete set"));
	/* A directory where a file belongs. */
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(backup_check_files(&conf, "certs-20251126-120000", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rename("/tmp/carotate-test-swap-key", path), 0);

	/* The backup directory itself a symlink to a good manual set: never followed. */
	snprintf(path, sizeof(path), "%s/certs-20251126-120001", fx.ssl);
	assert_int_equal(symlink("certs-20251126-120000", path), 0);
	assert_int_equal(backup_check_files(&conf, "certs-20251126-120001", err, sizeof(err)), -1);

	/* Restored like any backup; the set it replaced gets a manifest saying so. */
	assert_int_equal(
	    swap_restore(&conf, "certs-20251126-120000", T0, id, sizeof(id), err, sizeof(err)), 0);
	assert_string_equal(id, "certs-20251127-000000");
	assert_string_equal(active_set(), "OLD");
	assert_non_null(strstr(fixture_fs_get(fx.ssl, "certs-20251127-000000/.manifest"),
	    "reason=restore of certs-20251126-120000\nop=restore\ncreated=1764201600\n"));
	assert_int_equal(backup_check_files(&conf, id, err, sizeof(err)), 0);
}

/* Manifests written before the op= line still verify. */
static void
test_manifest_without_op(void **st)
{
	char id[SWAP_ID_MAX], err[256], manifest[1024], *p;

	make_set("", "OLD");
	make_set("new/", "NEW");
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
	snprintf(manifest, sizeof(manifest), "%s",
	    fixture_fs_get(fx.ssl, "certs-20251127-000000/.manifest"));
	assert_non_null(p = strstr(manifest, "op=rotate\n"));
	memmove(p, p + 10, strlen(p + 10) + 1);
	assert_null(strstr(manifest, "op="));
	fixture_fs_put(fx.ssl, "certs-20251127-000000/.manifest", manifest, 0600);
	assert_int_equal(backup_check_files(&conf, id, err, sizeof(err)), 0);
	/* ...while a changed sum still refuses. */
	p = strstr(manifest, "  0644  ca.crt");
	assert_non_null(p);
	p[-1] = p[-1] == '0' ? '1' : '0';
	fixture_fs_put(fx.ssl, "certs-20251127-000000/.manifest", manifest, 0600);
	assert_int_equal(backup_check_files(&conf, id, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not match its manifest"));
}

/* A symlink planted in place of a set file (active or staged) is refused, never followed. */
static void
test_symlink_refused(void **st)
{
	char id[SWAP_ID_MAX], err[256], before[8192], after[8192], path[256];

	make_set("", "OLD");
	make_set("new/", "NEW");
	snprintf(path, sizeof(path), "%s/ca.crt", fx.ssl);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);

	/* In the staged set too. */
	assert_int_equal(unlink(path), 0);
	fixture_fs_put(fx.ssl, "ca.crt", "OLD-CA\n", 0644);
	snprintf(path, sizeof(path), "%s/new/server.key", fx.ssl);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/etc/shadow", path), 0);
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	assert_string_equal(active_set(), "OLD");
	assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 0);
}

/* A pending journal blocks new swaps; a journal that cannot be trusted is kept, not guessed. */
static void
test_journal_guard(void **st)
{
	char id[SWAP_ID_MAX], err[256], path[256];
	FILE *f;

	make_set("", "OLD");
	make_set("new/", "NEW");
	snprintf(path, sizeof(path), "%s/swap.journal", fx.state);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("carotate-swap 1\nop rotate\nbackup -\nstate committed\ncommit\n"
	      "step move new ../.. /etc/passwd\n",
	    f);
	fclose(f);
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "awaits recovery"));
	assert_int_equal(journal_recover(&conf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad line"));
	assert_int_equal(access(path, F_OK), 0);
	assert_string_equal(active_set(), "OLD");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
}

/* A pool's set, as PEM text, in the ssldir_files swap_adopt takes. */
static void
adopt_files(const struct pki_material *m, struct ssldir_files *f)
{
	memset(f, 0, sizeof(*f));
	f->ca = m->ca;
	f->ca_len = strlen(m->ca);
	f->cert = m->cert;
	f->cert_len = strlen(m->cert);
	f->key = m->key;
	f->key_len = strlen(m->key);
	f->origin = "generated";
	f->created = T0 - 60;
}

/*
 * A pool's set with another CA than the active one goes live whole: the live files are the
 * pool's bytes, the old set is a backup labelled op=pool (and restore --latest's), and
 * nothing is left in renew/.
 */
static void
test_adopt(void **st)
{
	struct journal_note note = { note_text, (void *)"adopt" };
	char id[SWAP_ID_MAX], latest[BACKUP_ID_MAX], sha[PKI_SHA256_HEX], err[256];
	struct pki_material m = { 0 };
	struct ssldir_files f;

	assert_int_equal(fixture_pki_generate("pool", 3650, 397, T0, &m), 0);
	fixture_pki_sha(m.ca, sha);
	adopt_files(&m, &f);
	make_set("", "OLD");
	assert_int_equal(swap_adopt(&conf, &f, T0, "pool generation 7", sha, &note, id, sizeof(id),
	                     err, sizeof(err)),
	    0);
	assert_string_equal(id, "certs-20251127-000000");
	assert_string_equal(fixture_fs_get(fx.ssl, "ca.crt"), m.ca);
	assert_string_equal(fixture_fs_get(fx.ssl, "server.crt"), m.cert);
	assert_string_equal(fixture_fs_get(fx.ssl, "server.key"), m.key);
	assert_int_equal(fixture_fs_mode(fx.ssl, "server.key") & 077, 0);
	assert_string_equal(
	    fixture_fs_get(fx.ssl, ".carotate-set"), "origin=generated\ncreated=1764201540\n");
	assert_false(fixture_fs_exists(fx.ssl, "renew"));
	assert_string_equal(fixture_fs_get(fx.ssl, "certs-20251127-000000/ca.crt"), "OLD-CA\n");
	assert_non_null(
	    strstr(fixture_fs_get(fx.ssl, "certs-20251127-000000/.manifest"), "op=pool\n"));
	assert_non_null(strstr(fixture_fs_get(fx.ssl, "certs-20251127-000000/.manifest"),
	    "reason=pool generation 7\n"));
	assert_int_equal(backup_check_files(&conf, id, err, sizeof(err)), 0);
	assert_int_equal(backup_latest(&conf, latest, err, sizeof(err)), 0);
	assert_string_equal(latest, id);
	assert_string_equal(pending(), "note adopt backup=certs-20251127-000000\n");
	pki_material_clear(&m);
}

/*
 * Another CA than the caller checked: SWAP_STALE and the directory as it was; a journal
 * awaiting recovery: refused, renew/ (which may be that journal's) untouched.
 */
static void
test_adopt_refused(void **st)
{
	char id[SWAP_ID_MAX], before[8192], after[8192], err[256];
	struct pki_material m = { 0 };
	struct ssldir_files f;

	assert_int_equal(fixture_pki_generate("pool", 3650, 397, T0, &m), 0);
	adopt_files(&m, &f);
	make_set("", "OLD");
	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	assert_int_equal(
	    swap_adopt(&conf, &f, T0, "pool", OTHER_CA, NULL, id, sizeof(id), err, sizeof(err)),
	    SWAP_STALE);
	assert_non_null(strstr(err, "changed while swapping"));
	assert_string_equal(id, "");
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);
	assert_string_equal(pending(), "");

	make_set("renew/", "NEW");
	fixture_fs_put(fx.state, "swap.journal", "carotate-swap 1\n", 0600);
	fixture_fs_snapshot(fx.ssl, before, sizeof(before));
	assert_int_equal(
	    swap_adopt(&conf, &f, T0, "pool", NULL, NULL, id, sizeof(id), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "awaits recovery"));
	fixture_fs_snapshot(fx.ssl, after, sizeof(after));
	assert_string_equal(before, after);
	pki_material_clear(&m);
}

#ifdef CAROTATE_FAULTS
enum crash_op {
	CRASH_ROTATE,
	CRASH_ROTATE_FRESH,
	CRASH_RESTORE,
	CRASH_RENEW, /* renew/ (a new leaf and key beside the same CA) goes live */
	CRASH_ADOPT, /* a pool's set, written as renew/, goes live */
};

/* The pool's set the adopt walk puts live: make_set's NEW, as text. */
static const struct ssldir_files crash_pool_set = { "NEW-CA\n", "NEW-CERT\n", "NEW-KEY\n", 7, 9, 8,
	"generated", 2 };

/* The walk's swaps carry a note; when not, an earlier note (a roll back's call) must stay. */
static int crash_noted;

static int crash_child(enum crash_op, const char *, const char *);
static void crash_prepare(enum crash_op);
static void crash_check(enum crash_op);

/* Runs op in a child that dies at fault point `at`: 1 when it died there, 0 when it finished. */
static int
crash_child(enum crash_op op, const char *at, const char *recover_at)
{
	struct journal_note note = { note_text, (void *)"crash" };
	const struct journal_note *np = crash_noted ? &note : NULL;
	char id[SWAP_ID_MAX], err[256];
	int status, fd, r;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) != -1)
			dup2(fd, 2);
		setenv("CAROTATE_CRASH_AT", at, 1);
		if (recover_at != NULL)
			r = journal_recover(&conf, err, sizeof(err)) == -1 ? -1 : 0;
		else if (op == CRASH_RESTORE)
			r = swap_restore_as(&conf, "certs-20251127-000000", T0 + 1, 0, np, id,
			    sizeof(id), err, sizeof(err));
		else if (op == CRASH_RENEW)
			r = swap_renew(&conf, T0, NULL, np, id, sizeof(id), err, sizeof(err));
		else if (op == CRASH_ADOPT)
			r = swap_adopt(&conf, &crash_pool_set, T0, "pool", NULL, np, id, sizeof(id),
			    err, sizeof(err));
		else
			r = swap_rotate_ca(
			    &conf, T0, "rotate", NULL, np, id, sizeof(id), err, sizeof(err));
		_exit(r == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status)) {
		assert_int_equal(WTERMSIG(status), SIGKILL);
		return 1;
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return 0;
}

static void
crash_prepare(enum crash_op op)
{
	char id[SWAP_ID_MAX], err[256];

	assert_int_equal(setup(NULL), 0);
	if (op != CRASH_ROTATE_FRESH)
		make_set("", "OLD");
	if (op != CRASH_ADOPT)
		make_set(op == CRASH_RENEW ? "renew/" : "new/", "NEW");
	/* Restore starts from a rotated proxy: NEW active, OLD in certs-20251127-000000. */
	if (op == CRASH_RESTORE)
		assert_int_equal(
		    swap_rotate(&conf, T0, "rotate", id, sizeof(id), err, sizeof(err)), 0);
	if (!crash_noted)
		assert_int_equal(
		    statenote_write(&conf, JOURNAL_PENDING, "EARLIER\n", err, sizeof(err)), 0);
}

/*
 * All old or all new; the rest of the directory agrees; no journal left. The
 * note: the swap's when it went through, none when it was undone; an earlier
 * one untouched by a swap without its own.
 */
static void
crash_check(enum crash_op op)
{
	const char *set = active_set();
	char err[256];
	int done = strcmp(set, op == CRASH_RESTORE ? "OLD" : "NEW") == 0;

	if (!crash_noted)
		assert_string_equal(pending(), "EARLIER\n");
	else if (!done)
		assert_string_equal(pending(), "");
	else
		assert_string_equal(pending(), op == CRASH_ROTATE_FRESH ? "note crash backup=-\n"
		                               : op == CRASH_RESTORE
		                                   ? "note crash backup=certs-20251127-000001\n"
		                                   : "note crash backup=certs-20251127-000000\n");

	assert_false(fixture_fs_exists(fx.ssl, "../state/swap.journal"));
	assert_false(fixture_fs_exists(fx.ssl, "../state/.swap.journal.tmp"));
	assert_false(fixture_fs_exists(fx.ssl, ".ca.crt.tmp") ||
	             fixture_fs_exists(fx.ssl, ".server.key.tmp"));
	switch (op) {
	case CRASH_ROTATE:
	case CRASH_ROTATE_FRESH:
		if (strcmp(set, "NEW") == 0) {
			assert_false(fixture_fs_exists(fx.ssl, "new"));
			assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), op == CRASH_ROTATE);
			if (op == CRASH_ROTATE)
				assert_int_equal(backup_check_files(&conf, "certs-20251127-000000",
				                     err, sizeof(err)),
				    0);
		} else {
			assert_string_equal(set, op == CRASH_ROTATE ? "OLD" : "none");
			assert_string_equal(fixture_fs_get(fx.ssl, "new/server.key"), "NEW-KEY\n");
			assert_string_equal(fixture_fs_get(fx.ssl, "new/.carotate-set"),
			    "origin=generated\ncreated=2\n");
			assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 0);
		}
		break;
	case CRASH_RENEW:
	case CRASH_ADOPT:
		/* Old leaf and key, renew/ whole for the next start to drop; or new, backed up. */
		if (strcmp(set, "NEW") == 0) {
			assert_false(fixture_fs_exists(fx.ssl, "renew"));
			assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 1);
			assert_int_equal(
			    backup_check_files(&conf, "certs-20251127-000000", err, sizeof(err)),
			    0);
			assert_non_null(
			    strstr(fixture_fs_get(fx.ssl, "certs-20251127-000000/.manifest"),
			        op == CRASH_ADOPT ? "op=pool\n" : "op=renew\n"));
		} else {
			assert_string_equal(set, "OLD");
			assert_string_equal(
			    fixture_fs_get(fx.ssl, "renew/server.key"), "NEW-KEY\n");
			assert_string_equal(
			    fixture_fs_get(fx.ssl, "renew/server.crt"), "NEW-CERT\n");
			assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 0);
		}
		break;
	case CRASH_RESTORE:
		assert_int_equal(
		    backup_check_files(&conf, "certs-20251127-000000", err, sizeof(err)), 0);
		if (strcmp(set, "OLD") == 0) {
			assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 2);
			assert_int_equal(
			    backup_check_files(&conf, "certs-20251127-000001", err, sizeof(err)),
			    0);
			assert_string_equal(
			    fixture_fs_get(fx.ssl, "certs-20251127-000001/ca.crt"), "NEW-CA\n");
		} else {
			assert_string_equal(set, "NEW");
			assert_int_equal(fixture_fs_count(fx.ssl, "certs-"), 1);
		}
		break;
	}
}

/* For every crash point N of op (and every crash point M of the recovery after it). */
static void
crash_walk(enum crash_op op, const char *name)
{
	char at[48], rat[48], err[256];
	int n, m, crashed = 0, undone = 0, rcrashed = 0;

	for (n = 1;; n++) {
		crash_prepare(op);
		snprintf(at, sizeof(at), "swap-%s-%d", name, n);
		if (!crash_child(op, at, NULL))
			break;
		crashed++;
		/* A journal left says whether it carries a note. */
		if (fixture_fs_exists(fx.ssl, "../state/swap.journal"))
			assert_int_equal(strstr(fixture_fs_get(fx.ssl, "../state/swap.journal"),
			                     "\nnote yes\n") != NULL,
			    crash_noted);
		/* The recovery itself may crash too, at any of its points. */
		for (m = 1;; m++) {
			snprintf(rat, sizeof(rat), "swap-recover-%d", m);
			if (!crash_child(op, rat, rat))
				break;
			rcrashed++;
		}
		assert_true(journal_recover(&conf, err, sizeof(err)) >= 0);
		crash_check(op);
		undone += strcmp(active_set(), op == CRASH_RESTORE ? "OLD" : "NEW") != 0;
		assert_int_equal(journal_recover(&conf, err, sizeof(err)), 0);
		crash_check(op);
	}
	print_message("%s%s: %d crash points, %d undone, %d finished, %d crashes in recovery\n",
	    name, crash_noted ? " (with a note)" : "", crashed, undone, crashed - undone, rcrashed);
	assert_true(crashed >= 3 && crashed - undone >= 1);
	/* Past the last point the swap completes. */
	crash_check(op);
	assert_string_equal(active_set(), op == CRASH_RESTORE ? "OLD" : "NEW");
}

static void
test_crash_rotate(void **st)
{
	for (crash_noted = 0; crash_noted < 2; crash_noted++)
		crash_walk(CRASH_ROTATE, "rotate");
}

static void
test_crash_rotate_fresh(void **st)
{
	for (crash_noted = 0; crash_noted < 2; crash_noted++)
		crash_walk(CRASH_ROTATE_FRESH, "rotate");
}

static void
test_crash_restore(void **st)
{
	for (crash_noted = 0; crash_noted < 2; crash_noted++)
		crash_walk(CRASH_RESTORE, "restore");
}

/*
 * renew's swap, killed at every journal step (and its recovery at every one
 * of its own): the live certificate and key are both old or both new, never
 * one of each. Before swap_renew there was no journaled way to replace a
 * leaf: only a whole rotation.
 */
static void
test_crash_renew(void **st)
{
	for (crash_noted = 0; crash_noted < 2; crash_noted++)
		crash_walk(CRASH_RENEW, "renew");
}

/*
 * A pool's set put live, killed at every journal step (and its recovery at every one of
 * its own): the old set or the pool's, whole, never a mix; what a crash left in renew/
 * never went live.
 */
static void
test_crash_adopt(void **st)
{
	for (crash_noted = 0; crash_noted < 2; crash_noted++)
		crash_walk(CRASH_ADOPT, "pool");
}
#endif

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rotate_no_active, setup),
		cmocka_unit_test_setup(test_rotate_backup, setup),
		cmocka_unit_test_setup(test_restore, setup),
		cmocka_unit_test_setup(test_fail_after_commit, setup),
		cmocka_unit_test_setup(test_restore_bad_ids, setup),
		cmocka_unit_test_setup(test_restore_tampered, setup),
		cmocka_unit_test_setup(test_manual_backup, setup),
		cmocka_unit_test_setup(test_manifest_without_op, setup),
		cmocka_unit_test_setup(test_symlink_refused, setup),
		cmocka_unit_test_setup(test_journal_guard, setup),
		cmocka_unit_test_setup(test_note_commit, setup),
		cmocka_unit_test_setup(test_note_undone, setup),
		cmocka_unit_test_setup(test_adopt, setup),
		cmocka_unit_test_setup(test_adopt_refused, setup),
#ifdef CAROTATE_FAULTS
		cmocka_unit_test_setup(test_crash_rotate, setup),
		cmocka_unit_test_setup(test_crash_rotate_fresh, setup),
		cmocka_unit_test_setup(test_crash_restore, setup),
		cmocka_unit_test_setup(test_crash_renew, setup),
		cmocka_unit_test_setup(test_crash_adopt, setup),
#endif
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
