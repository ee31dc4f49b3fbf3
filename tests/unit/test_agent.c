/*
 * carotate-agent's pure parts (client/agent/): bundle validation, the state file, agent.conf,
 * agent ids and the hook's argv. Each hostile input here is one a proxy, a damaged disk or a
 * mistyped configuration can hand the agent: a key or junk in the bundle, a leaf CA, 65
 * certificates, more than 1 MiB, an id that is not the ETag, a bundle that would lock the
 * host out (it lacks the CA that signs the served certificate), a truncated or tampered state
 * file. Certificates are made by the openssl command in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "agent/agent.h"
#include "xmalloc.h"

static char dir[] = "/tmp/test_agent.XXXXXX";
static char *ca1, *ca2, *key1, *leaf1; /* PEM text; leaf1 is signed by ca1 for proxy.test */
static X509 *leaf;

static char *
slurp(const char *name)
{
	char *path, *buf, err[256];
	size_t len;

	xasprintf(&path, "%s/%s", dir, name);
	assert_int_equal(fsio_read(path, 1 << 20, &buf, &len, err, sizeof(err)), 0);
	free(path);
	return buf;
}

static int
setup(void **state)
{
	char *cmd;
	BIO *bio;

	assert_non_null(mkdtemp(dir));
	xasprintf(&cmd,
	    "cd %s && for n in 1 2; do openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 "
	    "-nodes -keyout ca$n.key -out ca$n.crt -days 30 -subj /CN=ca$n "
	    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign; done "
	    ">/dev/null 2>&1 && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout leaf.key -out leaf.csr -subj /CN=proxy.test >/dev/null 2>&1 && "
	    "printf 'subjectAltName=DNS:proxy.test\\nbasicConstraints=CA:FALSE\\n"
	    "extendedKeyUsage=serverAuth\\n' >ext && openssl x509 -req -in leaf.csr -CA ca1.crt "
	    "-CAkey ca1.key -CAcreateserial -days 10 -extfile ext -out leaf.crt >/dev/null 2>&1",
	    dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	ca1 = slurp("ca1.crt");
	ca2 = slurp("ca2.crt");
	key1 = slurp("ca1.key");
	leaf1 = slurp("leaf.crt");
	bio = BIO_new_mem_buf(leaf1, -1);
	leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(leaf);
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	char *cmd;

	xasprintf(&cmd, "rm -rf %s", dir);
	(void)!system(cmd);
	free(cmd);
	free(ca1);
	free(ca2);
	free(key1);
	free(leaf1);
	X509_free(leaf);
	(void)state;
	return 0;
}

/* The id of a bundle text, as the proxy would send it in its ETag. */
static void
id_of(const char *pem, char id[AGENT_HEX64 + 1])
{
	STACK_OF(X509) * cas;
	char why[256];

	assert_int_equal(bundle_parse(pem, strlen(pem), &cas, why, sizeof(why)), 0);
	assert_int_equal(bundle_id(cas, id), 0);
	sk_X509_pop_free(cas, X509_free);
}

/* bundle_validate on pem with etag; returns 0/-1 and leaves why. */
static int
validate(const char *pem, size_t len, const char *etag, char *why, size_t whylen)
{
	STACK_OF(X509) *cas = NULL;
	int rc = bundle_validate(pem, len, etag, leaf, NULL, "proxy.test", &cas, why, whylen);

	sk_X509_pop_free(cas, X509_free);
	return rc;
}

static void
test_bundle_good(void **state)
{
	char *both, id[AGENT_HEX64 + 1], id2[AGENT_HEX64 + 1], *rev, why[256] = "";

	xasprintf(&both, "%s\n%s", ca1, ca2);
	id_of(both, id);
	assert_int_equal(validate(both, strlen(both), id, why, sizeof(why)), 0);
	/* The id does not depend on the order of the certificates. */
	xasprintf(&rev, "%s%s", ca2, ca1);
	id_of(rev, id2);
	assert_string_equal(id, id2);
	free(both);
	free(rev);
	(void)state;
}

static void
test_bundle_refused(void **state)
{
	char id[AGENT_HEX64 + 1], why[256], *s, *big;
	size_t i;

	id_of(ca1, id);
	assert_int_equal(validate("hello", 5, id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "other than PEM"));
	assert_int_equal(validate("", 0, id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no certificate"));
	/* A private key beside the CA. */
	xasprintf(&s, "%s%s", ca1, key1);
	assert_int_equal(validate(s, strlen(s), id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "private key"));
	free(s);
	/* Junk after the certificate. */
	xasprintf(&s, "%sjunk\n", ca1);
	assert_int_equal(validate(s, strlen(s), id, why, sizeof(why)), -1);
	free(s);
	/* A truncated certificate. */
	s = xstrndup(ca1, strlen(ca1) - 30);
	assert_int_equal(validate(s, strlen(s), id, why, sizeof(why)), -1);
	free(s);
	/* A certificate that is not a CA. */
	assert_int_equal(validate(leaf1, strlen(leaf1), id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not a CA"));
	/* 65 certificates. */
	big = xstrdup("");
	for (i = 0; i < 65; i++) {
		xasprintf(&s, "%s%s", big, i % 2 ? ca1 : ca2);
		free(big);
		big = s;
	}
	assert_int_equal(validate(big, strlen(big), id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "more than 64"));
	free(big);
	/* More than 1 MiB (whitespace counts). */
	big = xmalloc(AGENT_MAX_BUNDLE + 2);
	memset(big, ' ', AGENT_MAX_BUNDLE + 1);
	memcpy(big, ca1, strlen(ca1));
	big[AGENT_MAX_BUNDLE + 1] = '\0';
	assert_int_equal(validate(big, AGENT_MAX_BUNDLE + 1, id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "larger than"));
	free(big);
	/* Its id is not the ETag. */
	assert_int_equal(validate(ca2, strlen(ca2), id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not its ETag"));
	/* It lacks the CA that signs the served certificate: the host would lock itself out. */
	id_of(ca2, id);
	assert_int_equal(validate(ca2, strlen(ca2), id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "lacks the CA"));
	(void)state;
}

static void
test_ca_verifies_host(void **state)
{
	STACK_OF(X509) * cas;
	char why[256];

	assert_int_equal(bundle_parse(ca1, strlen(ca1), &cas, why, sizeof(why)), 0);
	assert_int_equal(bundle_ca_verifies(sk_X509_value(cas, 0), leaf, NULL, "proxy.test"), 1);
	assert_int_equal(bundle_ca_verifies(sk_X509_value(cas, 0), leaf, NULL, "evil.test"), 0);
	assert_int_equal(bundle_ca_verifies(sk_X509_value(cas, 0), leaf, NULL, "127.0.0.1"), 0);
	sk_X509_pop_free(cas, X509_free);
	(void)state;
}

static void
test_state_round_trip(void **state)
{
	struct agent_state st, back;
	char why[128], *text, *again;

	memset(&st, 0, sizeof(st));
	st.server = xstrdup("https://proxy.example.com:8443");
	st.id = xstrdup("host-1.example");
	memset(st.etag, 'a', AGENT_HEX64);
	st.last_time = 1700000000;
	st.hook_owed = 1;
	state_set_result(&st, "proxy unreachable: \x1b[31mred");
	assert_null(strchr(st.last_result, '\x1b'));
	state_add_proven(&st, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	state_add_proven(&st, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	state_add_proven(&st, "not hex");
	assert_int_equal(st.n_proven, 1);
	text = state_format(&st);
	assert_int_equal(state_parse(text, strlen(text), &back, why, sizeof(why)), 0);
	again = state_format(&back);
	assert_string_equal(text, again);
	assert_int_equal(back.hook_owed, 1);
	assert_true(state_is_proven(&back, st.proven[0]));
	free(text);
	free(again);
	state_free(&st);
	state_free(&back);
	(void)state;
}

static void
test_state_corrupt(void **state)
{
	static const char *bad[] = {
		"", "version=1\nserver=https://a\nid=x",                 /* no final newline */
		"server=https://a\nid=x\n",                              /* no version */
		"version=2\nserver=https://a\nid=x\n",                   /* unknown version */
		"version=1\nid=x\n",                                     /* no server */
		"version=1\nserver=http://a\nid=x\n",                    /* not https */
		"version=1\nserver=https://a\nid=x y\n",                 /* bad id */
		"version=1\nserver=https://a\nid=x\nid=y\n",             /* repeated */
		"version=1\nserver=https://a\nid=x\netag=abc\n",         /* short etag */
		"version=1\nserver=https://a\nid=x\nlast_time=-1\n",     /* negative */
		"version=1\nserver=https://a\nid=x\nhook_owed=2\n",      /* not a flag */
		"version=1\nserver=https://a\nid=x\nproven=zz\n",        /* not hex */
		"version=1\nserver=https://a\nid=x\nwhat=1\n",           /* unknown key */
		"version=1\nserver=https://a\nid=x\nnoequals\n",         /* no = */
		"version=1\nserver=https://a\nid=x\nlast_result=\x1b\n", /* control char */
	};
	struct agent_state st;
	char why[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&st, 0, sizeof(st));
		if (state_parse(bad[i], strlen(bad[i]), &st, why, sizeof(why)) != -1)
			fail_msg("state %zu parsed: %s", i, bad[i]);
	}
	/* A NUL byte. */
	assert_int_equal(state_parse("version=1\n\0\n", 12, &st, why, sizeof(why)), -1);
	(void)state;
}

static void
test_state_load_corrupt_file(void **state)
{
	struct agent_state st;
	char *path, err[AGENT_ERRLEN];
	FILE *fp;

	memset(&st, 0, sizeof(st));
	assert_int_equal(state_load(dir, &st, err, sizeof(err)), 0); /* none yet */
	xasprintf(&path, "%s/state", dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("version=1\nserver=https://a\n\x01\x02garbage", fp);
	fclose(fp);
	assert_int_equal(state_load(dir, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "corrupt state"));
	unlink(path);
	free(path);
	(void)state;
}

/* One run at a time: a second lock on state_dir waits its timeout and reports the other
 * run; closing the first releases it; a missing state_dir is ENOENT (not linked). */
static void
test_state_lock(void **state)
{
	char err[AGENT_ERRLEN], *missing;
	int fd1 = -1, fd2 = -1;

	assert_int_equal(state_lock(dir, 1000, &fd1, err, sizeof(err)), 0);
	assert_true(fd1 >= 0);
	assert_true((fcntl(fd1, F_GETFD) & FD_CLOEXEC) != 0); /* the hook does not hold it */
	assert_int_equal(state_lock(dir, 100, &fd2, err, sizeof(err)), 1);
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(err, "another run"));
	close(fd1);
	assert_int_equal(state_lock(dir, 100, &fd2, err, sizeof(err)), 0);
	close(fd2);
	xasprintf(&missing, "%s/no-such-dir", dir);
	assert_int_equal(state_lock(missing, 100, &fd2, err, sizeof(err)), -1);
	assert_int_equal(errno, ENOENT);
	free(missing);
	(void)state;
}

/* The install's steps: a staged file is invisible until committed, discarding it leaves
 * nothing, .prev is a second name of the file replaced (none when there was none). */
static void
test_fsio_steps(void **state)
{
	char err[AGENT_ERRLEN], *path, *prev, *tmp, *buf;
	size_t len;

	xasprintf(&path, "%s/b.pem", dir);
	xasprintf(&prev, "%s/b.pem.prev", dir);
	assert_int_equal(fsio_keep_prev(path, err, sizeof(err)), 0); /* nothing to keep */
	assert_int_equal(access(prev, F_OK), -1);
	assert_int_equal(fsio_stage(path, "one", 3, 0644, &tmp, err, sizeof(err)), 0);
	assert_int_equal(access(path, F_OK), -1);
	fsio_discard(tmp);
	assert_int_equal(fsio_write_atomic(path, "one", 3, 0644, err, sizeof(err)), 0);
	assert_int_equal(fsio_stage(path, "two", 3, 0644, &tmp, err, sizeof(err)), 0);
	assert_int_equal(fsio_keep_prev(path, err, sizeof(err)), 0);
	assert_int_equal(fsio_commit(tmp, path, err, sizeof(err)), 0);
	free(tmp);
	assert_int_equal(fsio_read(path, 16, &buf, &len, err, sizeof(err)), 0);
	assert_string_equal(buf, "two");
	free(buf);
	assert_int_equal(fsio_read(prev, 16, &buf, &len, err, sizeof(err)), 0);
	assert_string_equal(buf, "one");
	free(buf);
	/* A file that cannot be created leaves nothing and says why. */
	free(path);
	xasprintf(&path, "%s/no-such-dir/b.pem", dir);
	assert_int_equal(fsio_stage(path, "x", 1, 0644, &tmp, err, sizeof(err)), -1);
	assert_null(tmp);
	assert_non_null(strstr(err, "cannot create"));
	free(path);
	xasprintf(&path, "rm -f %s/b.pem %s/b.pem.prev", dir, dir);
	assert_int_equal(system(path), 0);
	free(path);
	free(prev);
	(void)state;
}

static int
conf_text(const char *text, struct agent_conf *c, char *err, size_t errlen)
{
	char *path;
	FILE *fp;
	int rc;

	xasprintf(&path, "%s/agent.conf", dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	rc = conf_load(path, 0, c, err, errlen);
	free(path);
	return rc;
}

static void
test_conf(void **state)
{
	static const char *bad[] = {
		"[agent]\nserver = http://x\n",
		"[agent]\nserverx = https://x\n",
		"[other]\nserver = https://x\n",
		"server = https://x\n",
		"[agent]\ntimeout = 5 minutes\n",
		"[agent]\ntimeout = 0s\n",
		"[agent]\nhook_timeout = 2d\n",
		"[agent]\nstate_dir = relative\n",
		"[agent]\nid = has space\n",
		"[agent\nserver = https://x\n",
	};
	struct agent_conf c;
	char err[AGENT_ERRLEN];
	size_t i;

	assert_int_equal(conf_text("# agent\n[agent]\nserver = https://proxy.test:8443  # main\n"
	                           "timeout = 5m\nhook = /bin/true\nid = a.b-c_d\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_string_equal(c.server, "https://proxy.test:8443");
	assert_int_equal(c.timeout_ms, 300000);
	assert_int_equal(c.hook_timeout_ms, 30000);
	assert_string_equal(c.bundle, "/etc/carotate-agent/ca-bundle.pem");
	conf_free(&c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (conf_text(bad[i], &c, err, sizeof(err)) != -1)
			fail_msg("config %zu accepted: %s", i, bad[i]);
		assert_non_null(strstr(err, "agent.conf:"));
		conf_free(&c);
	}
	assert_int_equal(conf_load("/nonexistent/agent.conf", 1, &c, err, sizeof(err)), 0);
	conf_free(&c);
	assert_int_equal(conf_load("/nonexistent/agent.conf", 0, &c, err, sizeof(err)), -1);
	conf_free(&c);
	(void)state;
}

static void
test_ids(void **state)
{
	char s[70];

	assert_true(conf_valid_id("a"));
	assert_true(conf_valid_id("0123456789abcdef0123456789abcdef"));
	assert_true(conf_valid_id("host-1.example_x"));
	assert_false(conf_valid_id(""));
	assert_false(conf_valid_id("a b"));
	assert_false(conf_valid_id("a/b"));
	assert_false(conf_valid_id("a\n"));
	assert_false(conf_valid_id("\xc3\xa9"));
	memset(s, 'a', 65);
	s[65] = '\0';
	assert_false(conf_valid_id(s));
	s[64] = '\0';
	assert_true(conf_valid_id(s));
	(void)state;
}

static void
test_hook_split(void **state)
{
	char **argv, why[128];

	assert_int_equal(
	    hook_split("  /usr/bin/systemctl   reload\tnginx ", &argv, why, sizeof(why)), 0);
	assert_string_equal(argv[0], "/usr/bin/systemctl");
	assert_string_equal(argv[1], "reload");
	assert_string_equal(argv[2], "nginx");
	assert_null(argv[3]);
	hook_free(argv);
	assert_int_equal(hook_split("/bin/echo \"a b\" \"\" c", &argv, why, sizeof(why)), 0);
	assert_string_equal(argv[1], "a b");
	assert_string_equal(argv[2], "");
	assert_string_equal(argv[3], "c");
	hook_free(argv);
	assert_int_equal(hook_split("/bin/echo \"open", &argv, why, sizeof(why)), -1);
	assert_int_equal(hook_split("   ", &argv, why, sizeof(why)), -1);
	assert_int_equal(hook_split("echo relative", &argv, why, sizeof(why)), -1);
	assert_int_equal(hook_split("/bin/echo a\x01", &argv, why, sizeof(why)), -1);
	(void)state;
}

static void
test_hook_run(void **state)
{
	char *argv_ok[] = { (char *)"/bin/sh", (char *)"-c",
		(char *)"[ \"$CAROTATE_BUNDLE_ID\" = id1 ] && [ -z \"$HOME\" ] && ! [ -e /dev/fd/3 "
		        "] "
		        "&& ! read x",
		NULL };
	char *argv_fail[] = { (char *)"/bin/sh", (char *)"-c", (char *)"exit 3", NULL };
	char *argv_slow[] = { (char *)"/bin/sleep", (char *)"5", NULL };
	char *argv_none[] = { (char *)"/nonexistent/hook", NULL };
	char why[256];

	assert_int_equal(hook_run(argv_ok, "/b.pem", "id1", 5000, why, sizeof(why)), 0);
	assert_int_equal(hook_run(argv_fail, "/b.pem", "id1", 5000, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "exit 3"));
	assert_int_equal(hook_run(argv_slow, "/b.pem", "id1", 200, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "killed after"));
	assert_int_equal(hook_run(argv_none, "/b.pem", "id1", 5000, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "cannot run"));
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bundle_good),
		cmocka_unit_test(test_bundle_refused),
		cmocka_unit_test(test_ca_verifies_host),
		cmocka_unit_test(test_state_round_trip),
		cmocka_unit_test(test_state_corrupt),
		cmocka_unit_test(test_state_load_corrupt_file),
		cmocka_unit_test(test_state_lock),
		cmocka_unit_test(test_fsio_steps),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_hook_split),
		cmocka_unit_test(test_hook_run),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
