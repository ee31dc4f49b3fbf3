/* Unit tests of config.c: carotated.conf(5)'s example, the defaults, and each kind of bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "duration.h"

/* Tests run from the repository root (make unit); override with -DPACKAGED_CONF=... */
#ifndef PACKAGED_CONF
#define PACKAGED_CONF "packaging/carotated.conf"
#endif

/* A file whose content should be refused at line, with phrase (and phrase2) in the message. */
struct bad_case {
	const char *name;
	const char *text;
	int line;
	const char *phrase;
	const char *phrase2;
};

static char tmpdir[256];

/* carotated.conf(5)'s example, verbatim with its inline comments. */
static const char design_example[] =
    "[daemon]\n"
    "socket = /run/carotate/carotated.sock\n"
    "socket_group = carotate\n"
    "admin_group = carotate-admin\n"
    "state_dir = /var/lib/carotate\n"
    "\n"
    "[ssl]\n"
    "dir = /usr/local/etc/nginx/ssl\n"
    "ca = ca.crt\n"
    "cert = server.crt\n"
    "key = server.key\n"
    "\n"
    "[proxy]\n"
    "names = proxy.example.com, 192.0.2.10   # SANs of generated server certificates\n"
    "reload = /usr/bin/systemctl reload nginx  # argv, no shell\n"
    "address = 127.0.0.1:443                   # where the post-reload TLS check connects;\n"
    "                                          # or unix:/run/carotate/check/proxy-check.sock (an "
    "nginx\n"
    "                                          # `listen unix:… ssl;` in the agents' server "
    "block)\n"
    "server_name = proxy.example.com           # SNI for that check\n"
    "check_timeout = 10s\n"
    "\n"
    "[agents]\n"
    "socket = /run/carotate/agent.sock\n"
    "canary_socket = /run/carotate/agent-canary.sock\n"
    "user = carotate-agent\n"
    "group = www-data                          # the proxy's group, to open the agent sockets\n"
    "linking_key = /etc/carotate/linking.key\n"
    "active_within = 7d\n"
    "gate = acknowledged                       # or: verified\n"
    "\n"
    "[bundle]\n"
    "retention = 30d\n"
    "\n"
    "[backups]\n"
    "keep = 10\n"
    "\n"
    "[metrics]\n"
    "textfile =                                # e.g. "
    "/var/lib/prometheus/node-exporter/carotate.prom\n";

static const struct bad_case bad_cases[] = {
	/* structure */
	{ "unknown key", "[daemon]\nsocket = /run/x.sock\nsockett = /run/y.sock\n", 3,
	    "unknown key \"sockett\" in [daemon]", NULL },
	{ "key in the wrong section", "[daemon]\ndir = /etc/ssl\n", 2, "unknown key \"dir\"",
	    "belongs in [ssl]" },
	{ "unknown section", "# comment\n[daemon]\n\n[deamon]\n", 4, "unknown section [deamon]",
	    NULL },
	{ "unknown section with keys", "[metric]\ntextfile =\n", 1, "unknown section [metric]",
	    NULL },
	{ "text after a section header", "[ssl] extra\n", 1, "unexpected text after [ssl]", NULL },
	{ "key outside any section", "socket = /x\n[daemon]\n", 1, "outside of any section", NULL },
	{ "line without '='", "[daemon]\nsocket /run/x.sock\n", 2, "syntax error", NULL },
	{ "section without ']'", "\n[daemon\n", 2, "syntax error", NULL },
	{ "indented continuation line", "[proxy]\nnames = a.example\n  b.example\n", 3,
	    "syntax error", NULL },
	{ "duplicate key", "[backups]\nkeep = 1\n\nkeep = 2\n", 4, "duplicate key \"keep\"",
	    "first set on line 2" },
	{ "duplicate key in a repeated section",
	    "[backups]\nkeep = 1\n[ssl]\nca = a\n[backups]\nkeep = 2\n", 6, "duplicate key", NULL },
	{ "control character", "[daemon]\nsocket_group = car\001otate\n", 2, "control character",
	    NULL },
	{ "bare carriage return", "[daemon]\nsocket_group = a\rb\n", 2, "control character", NULL },
	{ "CRLF line endings count lines", "[daemon]\r\n\r\nstate_dir = rel\r\n", 3,
	    "not an absolute path", NULL },
	/* durations */
	{ "duration with a bad unit", "[proxy]\ncheck_timeout = 10x\n", 2,
	    "check_timeout: \"10x\" is not a duration", NULL },
	{ "negative duration", "[proxy]\ncheck_timeout = -5s\n", 2, "is not a duration", NULL },
	{ "duration overflowing 64 bits", "[bundle]\nretention = 99999999999999999999d\n", 2,
	    "is too large", NULL },
	{ "duration overflowing in ms", "[bundle]\nretention = 213503982335d\n", 2, "is too large",
	    NULL },
	{ "duration with a space", "[daemon]\nidle_timeout = 10 s\n", 2, "is not a duration",
	    NULL },
	{ "fractional duration", "[daemon]\nidle_timeout = 1.5h\n", 2, "is not a duration", NULL },
	{ "two units", "[daemon]\nidle_timeout = 1h30m\n", 2, "is not a duration", NULL },
	{ "empty duration", "[agents]\nactive_within =\n", 2, "is not a duration", NULL },
	{ "zero timeout", "[daemon]\nrequest_timeout = 0\n", 2, "out of range (1s..1h)", NULL },
	{ "timeout too long", "[proxy]\ncheck_timeout = 2h\n", 2, "out of range (1s..10m)", NULL },
	{ "zero retention", "[bundle]\nretention = 0d\n", 2, "out of range", NULL },
	/* paths */
	{ "relative path", "[daemon]\nstate_dir = var/lib/carotate\n", 2,
	    "state_dir: \"var/lib/carotate\" is not an absolute path", NULL },
	{ "'..' component", "[ssl]\ndir = /etc/../root\n", 2, "\"..\" component", NULL },
	{ "trailing '..'", "[ssl]\ndir = /etc/nginx/..\n", 2, "\"..\" component", NULL },
	{ "empty path", "[daemon]\nstate_dir =\n", 2, "empty path", NULL },
	{ "relative textfile", "[metrics]\ntextfile = carotate.prom\n", 2, "not an absolute path",
	    NULL },
	{ "ca with a slash", "[ssl]\nca = certs/ca.crt\n", 2,
	    "ca: \"certs/ca.crt\" must be a plain file name", NULL },
	{ "ca is '..'", "[ssl]\nca = ..\n", 2, "plain file name", NULL },
	{ "cert and key the same file", "[ssl]\ncert = a.pem\nkey = a.pem\n", 3,
	    "[ssl] cert and [ssl] key name the same file \"a.pem\"", NULL },
	{ "ca the default cert", "[ssl]\n\nca = server.crt\n", 3, "same file", NULL },
	{ "agent socket the control socket", "[agents]\nsocket = /run/carotate/carotated.sock\n", 2,
	    "[daemon] socket and [agents] socket name the same file", NULL },
	/* names */
	{ "bad name", "[proxy]\nnames = proxy..example.com\n", 2,
	    "not a valid DNS name or IP address (empty label)", NULL },
	{ "wildcard name", "[proxy]\nnames = *.example.com\n", 2, "wildcards are not allowed",
	    NULL },
	{ "bad IPv4 address", "[proxy]\nnames = 192.0.2.300\n", 2, "\"192.0.2.300\" is not a valid",
	    NULL },
	{ "underscore in a name", "[proxy]\nnames = a_b.example\n", 2, "invalid character", NULL },
	{ "label starting with '-'", "[proxy]\nnames = -a.example\n", 2, "starts or ends with '-'",
	    NULL },
	{ "trailing dot", "[proxy]\nnames = a.example.\n", 2, "empty label", NULL },
	{ "IPv6 zone", "[proxy]\nnames = fe80::1%eth0\n", 2, "is not a valid", NULL },
	{ "duplicate name", "[proxy]\nnames = a.example.com, 192.0.2.1, A.Example.COM\n", 2,
	    "duplicate name \"A.Example.COM\"", NULL },
	{ "duplicate IPv6 address", "[proxy]\nnames = 2001:db8::1,2001:DB8:0:0::1\n", 2,
	    "duplicate name", NULL },
	{ "empty list entry", "[proxy]\nnames = a.example,,b.example\n", 2, "empty entry", NULL },
	{ "server_name an IP address", "[proxy]\nserver_name = 192.0.2.1\n", 2,
	    "SNI cannot carry an IP address", NULL },
	{ "bad server_name", "[proxy]\nserver_name = bad-.example\n", 2, "not a valid DNS name",
	    NULL },
	/* reload */
	{ "reload with a relative argv[0]", "[proxy]\nreload = systemctl reload nginx\n", 2,
	    "reload: \"systemctl\" is not an absolute path", NULL },
	{ "empty reload", "[proxy]\nreload =\n", 2, "reload: empty command", NULL },
	{ "reload that is only a comment", "[proxy]\nreload =   # nothing\n", 2, "empty command",
	    NULL },
	/* address */
	{ "address without port", "[proxy]\naddress = 127.0.0.1\n", 2, "missing port", NULL },
	{ "address with an empty port", "[proxy]\naddress = 127.0.0.1:\n", 2, "missing port",
	    NULL },
	{ "port 0", "[proxy]\naddress = 127.0.0.1:0\n", 2, "port 0 is out of range (1..65535)",
	    NULL },
	{ "port 70000", "[proxy]\naddress = 127.0.0.1:70000\n", 2, "port 70000 is out of range",
	    NULL },
	{ "huge port", "[proxy]\naddress = 127.0.0.1:99999999999999999999999\n", 2,
	    "is out of range", NULL },
	{ "named port", "[proxy]\naddress = 127.0.0.1:https\n", 2, "is not a number", NULL },
	{ "IPv6 without brackets", "[proxy]\naddress = ::1:443\n", 2, "needs brackets", NULL },
	{ "IPv6 without port", "[proxy]\naddress = [::1]\n", 2, "missing port", NULL },
	{ "bad IPv6 in brackets", "[proxy]\naddress = [proxy.example]:443\n", 2,
	    "is not an IPv6 address", NULL },
	{ "bad host", "[proxy]\naddress = bad_host:443\n", 2, "is not a valid host", NULL },
	{ "unix:relative", "[proxy]\naddress = unix:relative.sock\n", 2,
	    "\"relative.sock\" is not an absolute path", NULL },
	{ "empty address", "[proxy]\naddress =\n", 2, "empty address", NULL },
	/* enumerations, numbers, accounts */
	{ "bad gate", "[agents]\ngate = maybe\n", 2,
	    "\"maybe\" is neither acknowledged nor verified", NULL },
	{ "gate in upper case", "[agents]\ngate = Verified\n", 2, "neither", NULL },
	{ "keep=0", "[backups]\nkeep = 0\n", 2, "keep: 0 is out of range (1..1000)", NULL },
	{ "keep=1001", "[backups]\nkeep = 1001\n", 2, "out of range", NULL },
	{ "keep not a number", "[backups]\nkeep = ten\n", 2, "\"ten\" is not a number", NULL },
	{ "keep with a sign", "[backups]\nkeep = +3\n", 2, "is not a number", NULL },
	{ "max_clients too large", "[daemon]\nmax_clients = 65537\n", 2, "out of range (1..65536)",
	    NULL },
	{ "admin_reserved = max_clients", "[daemon]\nmax_clients = 4\nadmin_reserved = 4\n", 3,
	    "admin_reserved (4) must be less than max_clients (4)", NULL },
	{ "admin_reserved over the default max_clients", "[daemon]\nadmin_reserved = 300\n", 2,
	    "must be less than max_clients (256)", NULL },
	{ "max_clients_per_uid = 0", "[daemon]\nmax_clients_per_uid = 0\n", 2,
	    "out of range (1..65536)", NULL },
	{ "audit_coalesce = 0", "[daemon]\naudit_coalesce = 0\n", 2, "out of range", NULL },
	{ "audit_coalesce = 2h", "[daemon]\naudit_coalesce = 2h\n", 2, "out of range", NULL },
	{ "max_output below one reply", "[daemon]\nmax_output = 4M\n", 2, "out of range (4194308..",
	    NULL },
	{ "max_output with a bad unit", "[daemon]\nmax_output = 1G\n", 2, "is not a size", NULL },
	{ "max_output too large", "[daemon]\nmax_output = 99999999999M\n", 2, "out of range",
	    NULL },
	{ "user starting with '-'", "[agents]\nuser = -agent\n", 2,
	    "\"-agent\" is not a portable user or group name", NULL },
	{ "group with a space", "[agents]\ngroup = www data\n", 2, "portable", NULL },
	{ "group name too long", "[daemon]\nadmin_group = abcdefghijklmnopqrstuvwxyz0123456\n", 2,
	    "portable", NULL },
	{ "empty group", "[daemon]\nsocket_group =\n", 2, "portable", NULL },
	/* [ledger] */
	{ "unknown backend", "[ledger]\nbackend = mysql\n", 2,
	    "backend: \"mysql\" is neither sqlite nor postgresql", NULL },
	{ "backend in upper case", "[ledger]\nbackend = PostgreSQL\n", 2, "neither", NULL },
	{ "empty backend", "[ledger]\nbackend =\n", 2, "neither", NULL },
	{ "postgresql without dsn_file", "[ledger]\nbackend = postgresql\npool_key = /etc/k\n", 2,
	    "[ledger] backend = postgresql needs dsn_file", NULL },
	{ "postgresql with an empty dsn_file",
	    "[ledger]\npool_key = /etc/k\ndsn_file =\nbackend = postgresql\n", 4, "needs dsn_file",
	    NULL },
	{ "postgresql without pool_key", "[ledger]\nbackend = postgresql\ndsn_file = /etc/d\n", 2,
	    "[ledger] backend = postgresql needs pool_key", NULL },
	{ "dsn_file with the default backend", "[ledger]\n\ndsn_file = /etc/carotate/ledger.dsn\n",
	    3, "[ledger] dsn_file is only for backend = postgresql", NULL },
	{ "dsn_file with sqlite", "[ledger]\nbackend = sqlite\ndsn_file = /etc/d\n", 3,
	    "only for backend = postgresql", NULL },
	{ "pool_key with sqlite", "[ledger]\npool_key = /etc/k\nbackend = sqlite\n", 2,
	    "[ledger] pool_key is only for backend = postgresql", NULL },
	{ "relative dsn_file", "[ledger]\nbackend = postgresql\ndsn_file = ledger.dsn\n", 3,
	    "dsn_file: \"ledger.dsn\" is not an absolute path", NULL },
	{ "pool_key with '..'", "[ledger]\npool_key = /etc/../k\n", 2, "\"..\" component", NULL },
	{ "dsn_file and pool_key one file",
	    "[ledger]\nbackend = postgresql\ndsn_file = /etc/p\npool_key = /etc/p\n", 4,
	    "[ledger] dsn_file and [ledger] pool_key name the same file", NULL },
	{ "member with a space", "[ledger]\nmember = web 1\n", 2,
	    "member: \"web 1\" is not a member name (only letters, digits", NULL },
	{ "member with a slash", "[ledger]\nmember = a/b\n", 2, "not a member name", NULL },
	{ "member with a colon", "[ledger]\nmember = a:b\n", 2, "not a member name", NULL },
	{ "member of 64 characters",
	    "[ledger]\nmember = "
	    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl\n",
	    2, "longer than 63 characters", NULL },
	{ "member with a UTF-8 letter", "[ledger]\nmember = caf\xc3\xa9\n", 2, "not a member name",
	    NULL },
	{ "member in the wrong section", "[daemon]\nmember = a\n", 2, "unknown key \"member\"",
	    "belongs in [ledger]" },
};

/* Group setup: one scratch directory for every test. State stays NULL for prestate tests. */
static int
setup_tmpdir(void **state)
{
	const char *base = getenv("TMPDIR");

	if (snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX",
	        base != NULL ? base : "/tmp") >= (int)sizeof(tmpdir))
		return -1;
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown_tmpdir(void **state)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(tmpdir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
		if (unlink(path) == -1)
			rmdir(path);
	}
	closedir(d);
	return rmdir(tmpdir);
}

/* Writes len bytes to tmpdir/name; path receives the file's name. */
static void
write_file(const char *name, const void *data, size_t len, char *path, size_t pathlen)
{
	FILE *fp;

	snprintf(path, pathlen, "%s/%s", tmpdir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static struct config *
load_text(const char *text, char *path, size_t pathlen, char *err, size_t errlen)
{
	write_file("carotated.conf", text, strlen(text), path, pathlen);
	return config_load(path, err, errlen);
}

/* Asserts that err reads "path:line: ..." (or "path: ..." for line 0) and holds phrase. */
static void
assert_error(const char *err, const char *path, int line, const char *phrase)
{
	char prefix[PATH_MAX + 32];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, phrase) == NULL)
		fail_msg("error \"%s\" is not \"%s...%s...\"", err, prefix, phrase);
}

static void
expect_refused(const char *text, int line, const char *phrase)
{
	char path[PATH_MAX], err[1024];
	struct config *conf;

	conf = load_text(text, path, sizeof(path), err, sizeof(err));
	if (conf != NULL) {
		config_free(conf);
		fail_msg("accepted:\n%s", text);
	}
	assert_error(err, path, line, phrase);
}

static void
test_bad_case(void **state)
{
	const struct bad_case *bc = *state;
	char path[PATH_MAX], err[1024];

	expect_refused(bc->text, bc->line, bc->phrase);
	if (bc->phrase2 != NULL) {
		assert_null(load_text(bc->text, path, sizeof(path), err, sizeof(err)));
		assert_non_null(strstr(err, bc->phrase2));
	}
}

/* [ledger] member's default: this host's name up to its first dot (NULL if not a valid name). */
static void
assert_default_member(const char *member)
{
	char host[256];
	size_t len;

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	len = strlen(host);
	if (len == 0 || len > 63 ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789._-") != len) {
		assert_null(member);
		return;
	}
	assert_non_null(member);
	assert_string_equal(member, host);
}

static void
assert_defaults(const struct config *conf)
{
	assert_string_equal(conf->socket, "/run/carotate/carotated.sock");
	assert_string_equal(conf->socket_group, "carotate");
	assert_string_equal(conf->admin_group, "carotate-admin");
	assert_string_equal(conf->state_dir, "/var/lib/carotate");
	assert_int_equal(conf->max_clients, 256);
	assert_int_equal(conf->max_clients_per_uid, 16);
	assert_int_equal(conf->admin_reserved, 8);
	assert_int_equal(conf->audit_coalesce, 60);
	assert_int_equal(conf->request_timeout, 10000);
	assert_int_equal(conf->idle_timeout, 60000);
	assert_int_equal(conf->max_output, 8 * 1024 * 1024);
	assert_string_equal(conf->ssl_dir, "/usr/local/etc/nginx/ssl");
	assert_string_equal(conf->ssl_ca, "ca.crt");
	assert_string_equal(conf->ssl_cert, "server.crt");
	assert_string_equal(conf->ssl_key, "server.key");
	assert_int_equal(conf->n_proxy_names, 0);
	assert_int_equal(conf->reload_argc, 3);
	assert_string_equal(conf->reload_argv[0], "/usr/bin/systemctl");
	assert_string_equal(conf->reload_argv[1], "reload");
	assert_string_equal(conf->reload_argv[2], "nginx");
	assert_null(conf->reload_argv[3]);
	assert_false(conf->proxy_address.is_unix);
	assert_null(conf->proxy_address.path);
	assert_string_equal(conf->proxy_address.host, "127.0.0.1");
	assert_int_equal(conf->proxy_address.port, 443);
	assert_string_equal(conf->proxy_server_name, "");
	assert_int_equal(conf->check_timeout, 10000);
	assert_int_equal(conf->reload_timeout, 30000);
	assert_string_equal(conf->agents_socket, "/run/carotate/agent.sock");
	assert_string_equal(conf->agents_canary_socket, "/run/carotate/agent-canary.sock");
	assert_string_equal(conf->agents_user, "carotate-agent");
	assert_string_equal(conf->agents_group, "www-data");
	assert_string_equal(conf->linking_key, "/etc/carotate/linking.key");
	assert_int_equal(conf->active_within, 7 * 86400);
	assert_int_equal(conf->gate, CONFIG_GATE_ACKNOWLEDGED);
	assert_int_equal(conf->retention, 30 * 86400);
	assert_int_equal(conf->backups_keep, 10);
	assert_null(conf->metrics_textfile);
	assert_int_equal(conf->ledger_backend, CONFIG_LEDGER_SQLITE);
	assert_null(conf->ledger_dsn_file);
	assert_null(conf->ledger_pool_key);
	assert_default_member(conf->ledger_member);
}

static void
test_design_example(void **state)
{
	char path[PATH_MAX], err[1024];
	struct config *conf;

	conf = load_text(design_example, path, sizeof(path), err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_string_equal(conf->path, path);
	assert_int_equal(conf->n_proxy_names, 2);
	assert_string_equal(conf->proxy_names[0], "proxy.example.com");
	assert_string_equal(conf->proxy_names[1], "192.0.2.10");
	assert_string_equal(conf->proxy_server_name, "proxy.example.com");
	/* Everything else in the example is the default value. */
	conf->n_proxy_names = 0;
	conf->proxy_server_name[0] = '\0';
	assert_defaults(conf);
	conf->n_proxy_names = 2;
	config_free(conf);
}

static void
test_empty_file(void **state)
{
	char path[PATH_MAX], err[1024];
	struct config *conf;

	conf = load_text("", path, sizeof(path), err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_defaults(conf);
	config_free(conf);
	conf = load_text(
	    "# only\n\n; comments\n[daemon]\n[metrics]\n", path, sizeof(path), err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_defaults(conf);
	config_free(conf);
}

/*
 * The installed file must parse and hold exactly the defaults, but for the two TLS checks:
 * the Unix sockets of the packaged nginx snippet, as the unit has no network.
 */
static void
test_packaged_conf(void **state)
{
	struct config_address packaged;
	char err[1024];
	struct config *conf;

	conf = config_load(PACKAGED_CONF, err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_true(conf->proxy_address.is_unix);
	assert_string_equal(conf->proxy_address.path, "/run/carotate/check/proxy-check.sock");
	assert_null(conf->proxy_address.host);
	assert_true(conf->canary_address.is_unix);
	assert_string_equal(conf->canary_address.path, "/run/carotate/check/canary-check.sock");
	packaged = conf->proxy_address;
	conf->proxy_address = (struct config_address){ 0, NULL, (char *)"127.0.0.1", 443 };
	assert_defaults(conf);
	conf->proxy_address = packaged;
	config_free(conf);
}

static void
test_every_key_set(void **state)
{
	static const char text[] = "[daemon]\n"
	                           "socket = /tmp/c.sock\n"
	                           "socket_group = readers\n"
	                           "admin_group = admins\n"
	                           "state_dir = /srv/carotate\n"
	                           "max_clients = 1\n"
	                           "max_clients_per_uid = 2\n"
	                           "admin_reserved = 0\n"
	                           "audit_coalesce = 5m\n"
	                           "request_timeout = 1m\n"
	                           "idle_timeout = 1d\n"
	                           "max_output = 4194308\n"
	                           "[ssl]\n"
	                           "dir = /etc/nginx/ssl\n"
	                           "ca = ca.pem\n"
	                           "cert = leaf.pem\n"
	                           "key = leaf.key\n"
	                           "[proxy]\n"
	                           "names = 2001:db8::1, a.example, b.example\n"
	                           "reload = /usr/sbin/nginx\t-s   reload\n"
	                           "address = [2001:db8::1]:8443\n"
	                           "server_name = b.example\n"
	                           "check_timeout = 30\n"
	                           "reload_timeout = 2m\n"
	                           "[agents]\n"
	                           "socket = /tmp/a.sock\n"
	                           "canary_socket = /tmp/b.sock\n"
	                           "user = agent\n"
	                           "group = nginx\n"
	                           "linking_key = /etc/carotate/key\n"
	                           "active_within = 36h\n"
	                           "gate = verified\n"
	                           "[bundle]\n"
	                           "retention = 90d\n"
	                           "[backups]\n"
	                           "keep = 1000\n"
	                           "[metrics]\n"
	                           "textfile = /var/lib/node-exporter/carotate.prom ; inline\n"
	                           "[ledger]\n"
	                           "backend = postgresql\n"
	                           "dsn_file = /etc/carotate/ledger.dsn\n"
	                           "pool_key = /etc/carotate/pool.key\n"
	                           "member = proxy-b.eu_1\n";
	char path[PATH_MAX], err[1024];
	struct config *c;

	if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->socket, "/tmp/c.sock");
	assert_string_equal(c->socket_group, "readers");
	assert_string_equal(c->admin_group, "admins");
	assert_string_equal(c->state_dir, "/srv/carotate");
	assert_int_equal(c->max_clients, 1);
	assert_int_equal(c->max_clients_per_uid, 2);
	assert_int_equal(c->admin_reserved, 0);
	assert_int_equal(c->audit_coalesce, 300);
	assert_int_equal(c->request_timeout, 60000);
	assert_int_equal(c->idle_timeout, 86400000);
	assert_int_equal(c->max_output, 4194308);
	assert_string_equal(c->ssl_dir, "/etc/nginx/ssl");
	assert_string_equal(c->ssl_ca, "ca.pem");
	assert_string_equal(c->ssl_cert, "leaf.pem");
	assert_string_equal(c->ssl_key, "leaf.key");
	assert_int_equal(c->n_proxy_names, 3);
	assert_string_equal(c->proxy_names[0], "2001:db8::1");
	assert_string_equal(c->proxy_names[2], "b.example");
	assert_int_equal(c->reload_argc, 3);
	assert_string_equal(c->reload_argv[0], "/usr/sbin/nginx");
	assert_string_equal(c->reload_argv[1], "-s");
	assert_string_equal(c->reload_argv[2], "reload");
	assert_null(c->reload_argv[3]);
	assert_false(c->proxy_address.is_unix);
	assert_string_equal(c->proxy_address.host, "2001:db8::1");
	assert_int_equal(c->proxy_address.port, 8443);
	assert_string_equal(c->proxy_server_name, "b.example");
	assert_int_equal(c->check_timeout, 30000);
	assert_int_equal(c->reload_timeout, 120000);
	assert_string_equal(c->agents_socket, "/tmp/a.sock");
	assert_string_equal(c->agents_canary_socket, "/tmp/b.sock");
	assert_string_equal(c->agents_user, "agent");
	assert_string_equal(c->agents_group, "nginx");
	assert_string_equal(c->linking_key, "/etc/carotate/key");
	assert_int_equal(c->active_within, 36 * 3600);
	assert_int_equal(c->gate, CONFIG_GATE_VERIFIED);
	assert_int_equal(c->retention, 90 * 86400);
	assert_int_equal(c->backups_keep, 1000);
	assert_string_equal(c->metrics_textfile, "/var/lib/node-exporter/carotate.prom");
	assert_int_equal(c->ledger_backend, CONFIG_LEDGER_POSTGRESQL);
	assert_string_equal(c->ledger_dsn_file, "/etc/carotate/ledger.dsn");
	assert_string_equal(c->ledger_pool_key, "/etc/carotate/pool.key");
	assert_string_equal(c->ledger_member, "proxy-b.eu_1");
	config_free(c);
}

/* A member name of 63 characters is the longest; an empty one keeps the host name. */
static void
test_member(void **state)
{
	static const char longest[] =
	    "[ledger]\nmember = "
	    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk\n";
	char path[PATH_MAX], err[1024];
	struct config *c;

	if ((c = load_text(longest, path, sizeof(path), err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(strlen(c->ledger_member), 63);
	config_free(c);
	if ((c = load_text("[ledger]\nmember =\nbackend = sqlite\n", path, sizeof(path), err,
	         sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->ledger_backend, CONFIG_LEDGER_SQLITE);
	assert_default_member(c->ledger_member);
	config_free(c);
}

/*
 * The member's default under a host name we choose: in a UTS namespace of a child (root
 * only; skipped otherwise). The child reports by exit status: 0 when every case held, else
 * the number of the first case that did not.
 */
static int
member_case(const char *host, const char *text, const char *member, const char *phrase)
{
	char path[PATH_MAX], err[1024];
	struct config *c;
	int ok;

	if (sethostname(host, strlen(host)) == -1)
		return 0;
	c = load_text(text, path, sizeof(path), err, sizeof(err));
	if (member == NULL && phrase == NULL)
		ok = c != NULL && c->ledger_member == NULL;
	else if (member != NULL)
		ok = c != NULL && c->ledger_member != NULL && strcmp(c->ledger_member, member) == 0;
	else
		ok = c == NULL && strstr(err, phrase) != NULL;
	config_free(c);
	return ok;
}

static int
member_cases(void)
{
	static const char pool[] = "[ledger]\nbackend = postgresql\ndsn_file = /etc/d\n"
	                           "pool_key = /etc/k\n";
	static const char pool_named[] = "[ledger]\nbackend = postgresql\ndsn_file = /etc/d\n"
	                                 "pool_key = /etc/k\nmember = web-9\n";

	if (!member_case("web-1.example.com", pool, "web-1", NULL))
		return 1;
	if (!member_case("web-2", "", "web-2", NULL))
		return 2;
	if (!member_case("bad host.example", pool, NULL, "\"bad host\" cannot name this member"))
		return 3;
	if (!member_case("bad host.example", "", NULL, NULL))
		return 4;
	if (!member_case("bad host.example", pool_named, "web-9", NULL))
		return 5;
	if (!member_case(".example", pool, NULL, "set member"))
		return 6;
	return 0;
}

static void
test_member_from_host_name(void **state)
{
	int status;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	assert_int_not_equal(pid = fork(), -1);
	if (pid == 0) {
		if (unshare(CLONE_NEWUTS) == -1)
			_exit(77);
		_exit(member_cases());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	if (WEXITSTATUS(status) != 0)
		fail_msg("host-name case %d failed", WEXITSTATUS(status));
}

/* One [proxy] address value and what it must parse to. */
static void
check_address(const char *value, int is_unix, const char *where, unsigned port)
{
	char text[512], path[PATH_MAX], err[1024];
	struct config *c;

	snprintf(text, sizeof(text), "[proxy]\naddress = %s\n", value);
	if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->proxy_address.is_unix, is_unix);
	if (is_unix) {
		assert_string_equal(c->proxy_address.path, where);
		assert_null(c->proxy_address.host);
	} else {
		assert_string_equal(c->proxy_address.host, where);
		assert_null(c->proxy_address.path);
		assert_int_equal(c->proxy_address.port, port);
	}
	config_free(c);
}

static void
test_address_forms(void **state)
{
	check_address("unix:/run/carotate/check/proxy-check.sock", 1,
	    "/run/carotate/check/proxy-check.sock", 0);
	check_address("[::1]:1", 0, "::1", 1);
	check_address("192.0.2.10:65535", 0, "192.0.2.10", 65535);
	check_address("proxy.example.com:443", 0, "proxy.example.com", 443);
	check_address("localhost:8443", 0, "localhost", 8443);
}

/* canary_address takes the same forms as address, and may be left empty (unchecked). */
static void
test_canary_address(void **state)
{
	char path[PATH_MAX], err[1024];
	struct config *c;

	c = load_text("[proxy]\ncanary_address = unix:/run/carotate/check/canary-check.sock\n",
	    path, sizeof(path), err, sizeof(err));
	assert_non_null(c);
	assert_true(c->canary_address.is_unix);
	assert_string_equal(c->canary_address.path, "/run/carotate/check/canary-check.sock");
	assert_string_equal(c->proxy_address.host, "127.0.0.1"); /* address untouched */
	config_free(c);
	c = load_text(
	    "[proxy]\ncanary_address = 127.0.0.1:8443\n", path, sizeof(path), err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->canary_address.host, "127.0.0.1");
	assert_int_equal(c->canary_address.port, 8443);
	config_free(c);
	c = load_text("[proxy]\ncanary_address =\n", path, sizeof(path), err, sizeof(err));
	assert_non_null(c);
	assert_null(c->canary_address.host);
	assert_null(c->canary_address.path);
	config_free(c);
	expect_refused("[proxy]\ncanary_address = nowhere\n", 2, "missing port");
	expect_refused("[proxy]\ncanary_address = unix:relative\n", 2, "canary_address");
}

static void
test_server_name_default(void **state)
{
	char path[PATH_MAX], err[1024];
	struct config *c;

	c = load_text("[proxy]\nnames = 192.0.2.1, 2001:db8::2, edge.example, x.example\n", path,
	    sizeof(path), err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->proxy_server_name, "edge.example");
	config_free(c);

	c = load_text("[proxy]\nnames = 192.0.2.1\n", path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->proxy_server_name, "");
	config_free(c);

	c = load_text(
	    "[proxy]\nserver_name =\nnames = a.example\n", path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->proxy_server_name, "a.example");
	config_free(c);
}

/* A list of n names "hN.example" under [proxy]; the caller frees it. */
static char *
names_text(int n)
{
	char *text;
	size_t len = 0, size = 32 + (size_t)n * 16;
	int i;

	assert_non_null(text = malloc(size));
	len += (size_t)snprintf(text, size, "[proxy]\nnames = h0.example");
	for (i = 1; i < n; i++)
		len += (size_t)snprintf(text + len, size - len, ",h%d.example", i);
	snprintf(text + len, size - len, "\n");
	return text;
}

static void
test_names_limit(void **state)
{
	char path[PATH_MAX], err[1024], *text;
	struct config *c;

	text = names_text(64);
	if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->n_proxy_names, 64);
	assert_string_equal(c->proxy_names[63], "h63.example");
	config_free(c);
	free(text);
	text = names_text(65);
	expect_refused(text, 2, "more than 64 names");
	free(text);
}

static void
test_reload_limit(void **state)
{
	char text[512], path[PATH_MAX], err[1024];
	struct config *c;
	size_t len;
	int i;

	len = (size_t)snprintf(text, sizeof(text), "[proxy]\nreload = /bin/echo");
	for (i = 1; i < 32; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, " w%d", i);
	snprintf(text + len, sizeof(text) - len, "\n");
	if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->reload_argc, 32);
	assert_null(c->reload_argv[32]);
	config_free(c);
	snprintf(text + len, sizeof(text) - len, " w32\n");
	expect_refused(text, 2, "more than 32 words");
}

static void
test_sizes(void **state)
{
	static const struct {
		const char *value;
		size_t bytes;
	} ok[] = {
		{ "16M", 16 * 1024 * 1024 },
		{ "5000k", 5000 * 1024 },
		{ "4097K", 4097 * 1024 },
		{ "1024M", 1024 * 1024 * 1024 },
		{ "4194308", 4194308 },
	};
	char text[128], path[PATH_MAX], err[1024];
	struct config *c;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "[daemon]\nmax_output = %s\n", ok[i].value);
		if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) == NULL)
			fail_msg("%s", err);
		assert_int_equal(c->max_output, ok[i].bytes);
		config_free(c);
	}
	expect_refused("[daemon]\nmax_output = 4194307\n", 2, "out of range");
	expect_refused("[daemon]\nmax_output = 1025M\n", 2, "out of range");
}

/* A 107-byte socket path fits sun_path with its NUL; 108 does not. */
static void
test_socket_path_length(void **state)
{
	char text[512], dir[200], path[PATH_MAX], err[1024];
	struct config *c;

	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	snprintf(text, sizeof(text), "[daemon]\nsocket = %.107s\n", dir);
	if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(strlen(c->socket), 107);
	config_free(c);
	snprintf(text, sizeof(text), "\n[daemon]\nsocket = %.108s\n", dir);
	expect_refused(text, 3, "socket: path too long (108 bytes, at most 107)");
	snprintf(text, sizeof(text), "[proxy]\naddress = unix:%.120s\n", dir);
	expect_refused(text, 2, "path too long");
	snprintf(text, sizeof(text), "[agents]\ncanary_socket = %.150s\n", dir);
	expect_refused(text, 2, "path too long");
}

/* A file that sets a small max_clients but not admin_reserved still loads: half is kept. */
static void
test_admin_reserved_default(void **state)
{
	static const struct {
		const char *text;
		unsigned reserved;
	} cases[] = {
		{ "[daemon]\nmax_clients = 9\n", 8 },
		{ "[daemon]\nmax_clients = 8\n", 4 },
		{ "[daemon]\nmax_clients = 1\n", 0 },
		{ "[daemon]\nmax_clients = 8\nadmin_reserved = 7\n", 7 },
	};
	char path[PATH_MAX], err[1024];
	struct config *c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if ((c = load_text(cases[i].text, path, sizeof(path), err, sizeof(err))) == NULL)
			fail_msg("%s", err);
		assert_int_equal(c->admin_reserved, cases[i].reserved);
		config_free(c);
	}
}

/* Lines up to 4096 characters pass; a longer one is refused, not split. */
static void
test_long_lines(void **state)
{
	char *text, path[PATH_MAX], err[1024];
	struct config *c;
	size_t n = 4096 + 64;

	assert_non_null(text = malloc(n + 64));
	memcpy(text, "[daemon]\n\n#", 11);
	memset(text + 11, 'x', 4095);
	memcpy(text + 11 + 4095, "\r\nmax_clients = 7\n", 19);
	if ((c = load_text(text, path, sizeof(path), err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->max_clients, 7);
	config_free(c);

	memcpy(text + 11 + 4095, "y\nmax_clients = 7\n", 19);
	expect_refused(text, 3, "line too long (more than 4096 characters)");
	memcpy(text + 11 + 4095, "\rz\nmax_clients = 7\n", 20);
	expect_refused(text, 3, "line too long");
	free(text);
}

static void
test_bom_and_crlf(void **state)
{
	char path[PATH_MAX], err[1024];
	struct config *c;

	c = load_text(
	    "\xef\xbb\xbf[backups]\r\nkeep = 3\r\n", path, sizeof(path), err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->backups_keep, 3);
	config_free(c);
}

static void
test_nul_byte(void **state)
{
	static const char text[] = "[backups]\nkeep = 3\0# hidden\n";
	char path[PATH_MAX], err[1024];

	write_file("nul.conf", text, sizeof(text) - 1, path, sizeof(path));
	assert_null(config_load(path, err, sizeof(err)));
	assert_error(err, path, 2, "NUL byte");
}

static void
test_missing_file(void **state)
{
	char path[PATH_MAX], err[1024];

	snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
	assert_null(config_load(path, err, sizeof(err)));
	assert_error(err, path, 0, "cannot open: No such file or directory");
}

static void
test_directory(void **state)
{
	char path[PATH_MAX], err[1024];

	snprintf(path, sizeof(path), "%s/dir.conf", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_null(config_load(path, err, sizeof(err)));
	assert_error(err, path, 0, "not a regular file");
}

/* Opening a FIFO for reading would block until a writer comes: it must be refused at once. */
static void
test_fifo(void **state)
{
	char path[PATH_MAX], err[1024];

	snprintf(path, sizeof(path), "%s/fifo.conf", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(config_load(path, err, sizeof(err)));
	assert_error(err, path, 0, "not a regular file");
}

static void
test_symlink(void **state)
{
	char path[PATH_MAX], link[PATH_MAX], err[1024];
	struct config *c;

	write_file("target.conf", "[backups]\nkeep = 4\n", 19, path, sizeof(path));
	snprintf(link, sizeof(link), "%s/link.conf", tmpdir);
	assert_int_equal(symlink(path, link), 0);
	if ((c = config_load(link, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->backups_keep, 4);
	config_free(c);
}

static void
test_file_too_large(void **state)
{
	char *text, path[PATH_MAX], err[1024];
	size_t n = 1024 * 1024 + 1;

	assert_non_null(text = malloc(n));
	memset(text, '\n', n);
	write_file("big.conf", text, n, path, sizeof(path));
	free(text);
	assert_null(config_load(path, err, sizeof(err)));
	assert_error(err, path, 0, "file too large");
	write_file("big.conf", "\n", 1, path, sizeof(path));
}

/* Errors need no buffer; config_free takes NULL. */
static void
test_no_error_buffer(void **state)
{
	char path[PATH_MAX], err[8] = "unset";

	assert_null(load_text("[nope]\n", path, sizeof(path), NULL, 0));
	assert_null(load_text("[nope]\n", path, sizeof(path), err, 0));
	assert_string_equal(err, "unset");
	assert_null(load_text("[nope]\n", path, sizeof(path), err, sizeof(err)));
	assert_int_equal(strlen(err), sizeof(err) - 1);
	config_free(NULL);
}

static void
test_duration_ms(void **state)
{
	static const struct {
		const char *in;
		int rc;
		uint64_t ms;
	} cases[] = {
		{ "0", 0, 0 },
		{ "1", 0, 1000 },
		{ "1s", 0, 1000 },
		{ "007s", 0, 7000 },
		{ "2m", 0, 120000 },
		{ "3h", 0, 10800000 },
		{ "7d", 0, 604800000 },
		{ "30d", 0, 2592000000ULL },
		{ "18446744073709551s", 0, 18446744073709551000ULL },
		{ "213503982334d", 0, 213503982334ULL * 86400000ULL },
		{ "18446744073709552s", -1, 0 },
		{ "213503982335d", -1, 0 },
		{ "18446744073709551616", -1, 0 },
		{ "99999999999999999999d", -1, 0 },
		{ "", -1, 0 },
		{ "s", -1, 0 },
		{ "10x", -1, 0 },
		{ "-5s", -1, 0 },
		{ "+5s", -1, 0 },
		{ " 5s", -1, 0 },
		{ "5s ", -1, 0 },
		{ "5 s", -1, 0 },
		{ "5ss", -1, 0 },
		{ "1h30m", -1, 0 },
		{ "1.5h", -1, 0 },
		{ "5S", -1, 0 },
		{ "5ms", -1, 0 },
		{ "0x10", -1, 0 },
		{ "1w", -1, 0 },
	};
	const char *why;
	uint64_t ms;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ms = 12345;
		if (duration_parse_ms(cases[i].in, &ms, &why) != cases[i].rc)
			fail_msg("\"%s\": expected %d", cases[i].in, cases[i].rc);
		if (cases[i].rc == 0 && ms != cases[i].ms)
			fail_msg("\"%s\": %llu ms, expected %llu", cases[i].in,
			    (unsigned long long)ms, (unsigned long long)cases[i].ms);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_packaged_conf),
		cmocka_unit_test(test_every_key_set),
		cmocka_unit_test(test_member),
		cmocka_unit_test(test_member_from_host_name),
		cmocka_unit_test(test_address_forms),
		cmocka_unit_test(test_canary_address),
		cmocka_unit_test(test_server_name_default),
		cmocka_unit_test(test_names_limit),
		cmocka_unit_test(test_reload_limit),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_admin_reserved_default),
		cmocka_unit_test(test_socket_path_length),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_bom_and_crlf),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_symlink),
		cmocka_unit_test(test_file_too_large),
		cmocka_unit_test(test_no_error_buffer),
		cmocka_unit_test(test_duration_ms),
	};
	size_t i, n = sizeof(bad_cases) / sizeof(bad_cases[0]);
	struct CMUnitTest *bad;
	int failed;

	failed = cmocka_run_group_tests_name("config", tests, setup_tmpdir, teardown_tmpdir);
	if ((bad = calloc(n, sizeof(*bad))) == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		bad[i].name = bad_cases[i].name;
		bad[i].test_func = test_bad_case;
		bad[i].initial_state = (void *)(uintptr_t)&bad_cases[i];
	}
	failed +=
	    _cmocka_run_group_tests("config bad input", bad, n, setup_tmpdir, teardown_tmpdir);
	free(bad);
	return failed != 0;
}
