/* Peer credentials -> role: uid 0 and the daemon's own uid administer, then groups decide. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "acl.h"

#define SELF     1000
#define ADMIN_G  500
#define READER_G 600

static struct acl
make_acl(int have_admin, int have_reader)
{
	struct acl acl = { .self = SELF,
		.admin_gid = ADMIN_G,
		.reader_gid = READER_G,
		.have_admin = have_admin,
		.have_reader = have_reader };

	return acl;
}

static enum acl_role
role_of(const struct acl *acl, uid_t uid, gid_t gid, gid_t *groups, size_t n)
{
	struct acl_peer peer = {
		.pid = 42, .uid = uid, .gid = gid, .groups = groups, .ngroups = n
	};

	return acl_role(acl, &peer);
}

static void
test_roles(void **state)
{
	struct acl acl = make_acl(1, 1);
	gid_t reader[] = { 7, READER_G }, admin[] = { ADMIN_G }, both[] = { READER_G, ADMIN_G },
	      other[] = { 7, 8, 9 };

	assert_int_equal(role_of(&acl, 0, 0, NULL, 0), ACL_ADMIN);
	assert_int_equal(role_of(&acl, SELF, 100, NULL, 0), ACL_ADMIN);
	assert_int_equal(role_of(&acl, 2000, 100, reader, 2), ACL_READER);
	assert_int_equal(role_of(&acl, 2000, 100, admin, 1), ACL_ADMIN);
	assert_int_equal(role_of(&acl, 2000, 100, both, 2), ACL_ADMIN);
	assert_int_equal(role_of(&acl, 2000, 100, other, 3), ACL_NONE);
	assert_int_equal(role_of(&acl, 2000, 100, NULL, 0), ACL_NONE);
	/* The primary group counts like a supplementary one. */
	assert_int_equal(role_of(&acl, 2000, READER_G, NULL, 0), ACL_READER);
	assert_int_equal(role_of(&acl, 2000, ADMIN_G, NULL, 0), ACL_ADMIN);
}

/* A group that does not exist grants nothing, even to a peer whose gid happens to match. */
static void
test_missing_groups_grant_nothing(void **state)
{
	struct acl acl = make_acl(0, 0);
	gid_t g[] = { ADMIN_G, READER_G };

	assert_int_equal(role_of(&acl, 2000, ADMIN_G, g, 2), ACL_NONE);
	assert_int_equal(role_of(&acl, 0, 0, NULL, 0), ACL_ADMIN);
	acl = make_acl(0, 1);
	assert_int_equal(role_of(&acl, 2000, 1, g, 2), ACL_READER);
}

static void
test_init_unknown_group(void **state)
{
	struct acl acl;

	acl_init(&acl, SELF, "carotate-no-such-group-x", "carotate-no-such-group-y");
	assert_false(acl.have_admin);
	assert_false(acl.have_reader);
	acl_init(&acl, SELF, "root", "root");
	assert_true(acl.have_admin);
	assert_int_equal(acl.admin_gid, 0);
}

/* The kernel's record of a socketpair peer is ourselves. */
static void
test_peer_read(void **state)
{
	struct acl_peer peer;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(acl_peer_read(sv[0], &peer), 0);
	assert_int_equal(peer.uid, getuid());
	assert_int_equal(peer.gid, getgid());
	assert_int_equal(peer.pid, getpid());
	assert_int_equal(peer.ngroups, (size_t)getgroups(0, NULL));
	acl_peer_clear(&peer);
	assert_null(peer.groups);
	close(sv[0]);
	close(sv[1]);
	/* Not a socket: an error, not a role. */
	assert_int_equal(acl_peer_read(0 + 1000, &peer), -1);
}

static void
test_names(void **state)
{
	assert_string_equal(acl_role_name(ACL_ADMIN), "admin");
	assert_string_equal(acl_role_name(ACL_READER), "reader");
	assert_string_equal(acl_role_name(ACL_NONE), "none");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_missing_groups_grant_nothing),
		cmocka_unit_test(test_init_unknown_group),
		cmocka_unit_test(test_peer_read),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests_name("acl", tests, NULL, NULL);
}
