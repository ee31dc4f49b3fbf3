/* The configuration file (carotated.conf(5)): read with inih, every key checked against one table.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "duration.h"
#include "xmalloc.h"

#define CONFIG_MAX_SIZE     (1024 * 1024) /* bytes: a larger file is refused */
#define CONFIG_MAX_LINE     4096          /* characters of one line, without its newline */
#define CONFIG_MAX_NAMES    64
#define CONFIG_MAX_ARGV     32
#define CONFIG_MAX_ACCOUNT  32
#define CONFIG_MAX_FILENAME 255
#define CONFIG_MAX_DNS      253
#define CONFIG_MAX_LABEL    63
#define CONFIG_SUN_PATH     sizeof(((struct sockaddr_un *)NULL)->sun_path)
/* One reply may be 4 MiB plus its 4-byte length prefix: a smaller queue could never send it. */
#define CONFIG_MIN_OUTPUT     ((uint64_t)4 * 1024 * 1024 + 4)
#define CONFIG_MAX_OUTPUT     ((uint64_t)1024 * 1024 * 1024)
#define CONFIG_ADMIN_RESERVED 8   /* default control slots kept for admins */
#define CONFIG_MAX_URL        512 /* bytes of [agents] canary_url */
#define CONFIG_MAX_HOSTNAME   255 /* bytes of gethostname(2)'s answer we read */

#define SEC  1000ULL /* durations are held in milliseconds while parsing */
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

struct config_parse;
struct config_key;

typedef int (*config_setter)(struct config_parse *, const struct config_key *, const char *);

/* One key of the schema; min and max are in the unit of the value as written (ms, count, bytes). */
struct config_key {
	const char *section;
	const char *name;
	config_setter set;
	size_t off; /* of the field in struct config */
	uint64_t min;
	uint64_t max;
};

static FILE *config_open(struct config_parse *);
static void config_knobs(void);
static struct config *config_defaults(const char *);
static char *config_read_line(char *, int, void *);
static int config_read_byte(struct config_parse *, int);
static char *config_too_long(struct config_parse *);
static int config_check_chars(struct config_parse *, const char *, size_t);
static int config_check_section(struct config_parse *, const char *);
static int config_known_section(const char *, size_t);
static int config_handler(void *, const char *, const char *, const char *);
static const struct config_key *config_find_key(const char *, const char *);
static int config_key_line(const struct config_parse *, const char *, const char *);
static void config_finish(struct config_parse *);
static void config_check_reserved(struct config_parse *);
static void config_check_distinct(struct config_parse *, const char *, const char *, const char *,
    const char *, const char *, const char *);
static void config_derive_server_name(struct config *);
static void config_error(struct config_parse *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static int config_key_error(struct config_parse *, const struct config_key *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static char **config_field_str(struct config_parse *, const struct config_key *);
static void config_replace(char **, const char *);
static int config_digits(const char *, uint64_t *, const char **);
static int config_get_duration(
    struct config_parse *, const struct config_key *, const char *, uint64_t *);
static const char *config_fmt_duration(uint64_t, char *, size_t);
static int config_check_path(
    struct config_parse *, const struct config_key *, const char *, size_t);
static const char *config_label_invalid(const char *, size_t);
static void config_name_key(const char *, char *, size_t);
static int config_add_name(struct config_parse *, const struct config_key *, const char *);
static void config_split_argv(struct config *, const char *);
static void config_free_list(char **, size_t);
static int config_parse_hostport(struct config_parse *, const struct config_key *, const char *);
static int config_parse_port(struct config_parse *, const struct config_key *, const char *);

static int config_set_path(struct config_parse *, const struct config_key *, const char *);
static int config_set_sockpath(struct config_parse *, const struct config_key *, const char *);
static int config_set_optpath(struct config_parse *, const struct config_key *, const char *);
static int config_set_account(struct config_parse *, const struct config_key *, const char *);
static int config_set_filename(struct config_parse *, const struct config_key *, const char *);
static int config_set_uint(struct config_parse *, const struct config_key *, const char *);
static int config_set_ms(struct config_parse *, const struct config_key *, const char *);
static int config_set_secs(struct config_parse *, const struct config_key *, const char *);
static int config_set_size(struct config_parse *, const struct config_key *, const char *);
static int config_set_names(struct config_parse *, const struct config_key *, const char *);
static int config_set_reload(struct config_parse *, const struct config_key *, const char *);
static int config_set_address(struct config_parse *, const struct config_key *, const char *);
static struct config_address *config_field_address(
    struct config_parse *, const struct config_key *);
static int config_set_server_name(struct config_parse *, const struct config_key *, const char *);
static int config_set_gate(struct config_parse *, const struct config_key *, const char *);
static int config_set_url(struct config_parse *, const struct config_key *, const char *);
static int config_set_backend(struct config_parse *, const struct config_key *, const char *);
static int config_set_member(struct config_parse *, const struct config_key *, const char *);
static const char *config_member_invalid(const char *);
static void config_check_ledger(struct config_parse *);
static void config_check_pool_file(struct config_parse *, const char *, const char *, int);
static void config_derive_member(struct config_parse *);

#define F(field) offsetof(struct config, field)

/* The whole schema. Key names are a contract (carotated.conf(5)): add, never rename. */
static const struct config_key config_keys[] = {
	{ "daemon", "socket", config_set_sockpath, F(socket), 0, 0 },
	{ "daemon", "socket_group", config_set_account, F(socket_group), 0, 0 },
	{ "daemon", "admin_group", config_set_account, F(admin_group), 0, 0 },
	{ "daemon", "state_dir", config_set_path, F(state_dir), 0, 0 },
	{ "daemon", "max_clients", config_set_uint, F(max_clients), 1, 65536 },
	{ "daemon", "max_clients_per_uid", config_set_uint, F(max_clients_per_uid), 1, 65536 },
	{ "daemon", "admin_reserved", config_set_uint, F(admin_reserved), 0, 65535 },
	{ "daemon", "audit_coalesce", config_set_secs, F(audit_coalesce), 1 * SEC, 1 * HOUR },
	{ "daemon", "request_timeout", config_set_ms, F(request_timeout), 1 * SEC, 1 * HOUR },
	{ "daemon", "idle_timeout", config_set_ms, F(idle_timeout), 1 * SEC, 1 * DAY },
	{ "daemon", "max_output", config_set_size, F(max_output), CONFIG_MIN_OUTPUT,
	    CONFIG_MAX_OUTPUT },
	{ "ssl", "dir", config_set_path, F(ssl_dir), 0, 0 },
	{ "ssl", "ca", config_set_filename, F(ssl_ca), 0, 0 },
	{ "ssl", "cert", config_set_filename, F(ssl_cert), 0, 0 },
	{ "ssl", "key", config_set_filename, F(ssl_key), 0, 0 },
	{ "proxy", "names", config_set_names, 0, 0, 0 },
	{ "proxy", "reload", config_set_reload, 0, 0, 0 },
	{ "proxy", "address", config_set_address, F(proxy_address), 0, 0 },
	{ "proxy", "canary_address", config_set_address, F(canary_address), 0, 0 },
	{ "proxy", "server_name", config_set_server_name, F(proxy_server_name), 0, 0 },
	{ "proxy", "check_timeout", config_set_ms, F(check_timeout), 1 * SEC, 10 * MIN },
	{ "proxy", "reload_timeout", config_set_ms, F(reload_timeout), 1 * SEC, 10 * MIN },
	{ "agents", "socket", config_set_sockpath, F(agents_socket), 0, 0 },
	{ "agents", "canary_socket", config_set_sockpath, F(agents_canary_socket), 0, 0 },
	{ "agents", "user", config_set_account, F(agents_user), 0, 0 },
	{ "agents", "group", config_set_account, F(agents_group), 0, 0 },
	{ "agents", "linking_key", config_set_optpath, F(linking_key), 0, 0 },
	{ "agents", "active_within", config_set_secs, F(active_within), 1 * SEC, 3650 * DAY },
	{ "agents", "gate", config_set_gate, 0, 0, 0 },
	{ "agents", "link_rate", config_set_uint, F(link_rate), 1, 100000 },
	{ "agents", "max_agents", config_set_uint, F(max_agents), 1, 100000000 },
	{ "agents", "canary_url", config_set_url, F(agents_canary_url), 0, 0 },
	{ "bundle", "retention", config_set_secs, F(retention), 1 * SEC, 3650 * DAY },
	{ "backups", "keep", config_set_uint, F(backups_keep), 1, 1000 },
	{ "renew", "before", config_set_secs, F(renew_before), 1 * SEC, 3650 * DAY },
	{ "renew", "ca_warn", config_set_secs, F(ca_warn), 1 * SEC, 3650 * DAY },
	{ "metrics", "textfile", config_set_optpath, F(metrics_textfile), 0, 0 },
	{ "ledger", "backend", config_set_backend, 0, 0, 0 },
	{ "ledger", "dsn_file", config_set_optpath, F(ledger_dsn_file), 0, 0 },
	{ "ledger", "pool_key", config_set_optpath, F(ledger_pool_key), 0, 0 },
	{ "ledger", "member", config_set_member, F(ledger_member), 0, 0 },
	{ "ledger", "heartbeat", config_set_secs, F(ledger_heartbeat), 1 * SEC, 10 * MIN },
};

#undef F

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* State of one config_load: the reader and the handler share it. */
struct config_parse {
	const char *path;
	struct config *conf;
	FILE *fp;
	int lineno;              /* of the line inih is handling */
	size_t nread;            /* bytes read so far, against CONFIG_MAX_SIZE */
	int failed;              /* only the first error is reported */
	int lines[CONFIG_NKEYS]; /* where each key was set; 0: not set */
	char *err;
	size_t errlen;
};

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config_parse ps;
	int rc;

	memset(&ps, 0, sizeof(ps));
	ps.path = path;
	ps.err = err;
	ps.errlen = err != NULL ? errlen : 0;
	if (ps.errlen > 0)
		err[0] = '\0';
	if ((ps.fp = config_open(&ps)) == NULL)
		return NULL;
	ps.conf = config_defaults(path);
	config_knobs();
	rc = ini_parse_stream(config_read_line, &ps, config_handler, &ps);
	fclose(ps.fp);
	if (rc > 0)
		config_error(&ps, rc, "syntax error: expected \"[section]\" or \"key = value\"");
	else if (rc < 0)
		config_error(&ps, 0, "cannot parse (inih error %d)", rc);
	if (!ps.failed)
		config_finish(&ps);
	if (ps.failed) {
		config_free(ps.conf);
		return NULL;
	}
	return ps.conf;
}

void
config_free(struct config *conf)
{
	if (conf == NULL)
		return;
	free(conf->path);
	free(conf->socket);
	free(conf->socket_group);
	free(conf->admin_group);
	free(conf->state_dir);
	free(conf->ssl_dir);
	free(conf->ssl_ca);
	free(conf->ssl_cert);
	free(conf->ssl_key);
	config_free_list(conf->proxy_names, conf->n_proxy_names);
	config_free_list(conf->reload_argv, conf->reload_argc);
	free(conf->proxy_address.path);
	free(conf->proxy_address.host);
	free(conf->canary_address.path);
	free(conf->canary_address.host);
	free(conf->proxy_server_name);
	free(conf->agents_socket);
	free(conf->agents_canary_socket);
	free(conf->agents_user);
	free(conf->agents_group);
	free(conf->linking_key);
	free(conf->agents_canary_url);
	free(conf->metrics_textfile);
	free(conf->ledger_dsn_file);
	free(conf->ledger_pool_key);
	free(conf->ledger_member);
	free(conf);
}

/* O_NONBLOCK so that a FIFO at path cannot hang the daemon's start; it is then refused. */
static FILE *
config_open(struct config_parse *ps)
{
	struct stat st;
	FILE *fp;
	int fd;

	if ((fd = open(ps->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		config_error(ps, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1)
		config_error(ps, 0, "cannot stat: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		config_error(ps, 0, "not a regular file");
	else if (st.st_size > CONFIG_MAX_SIZE)
		config_error(ps, 0, "file too large (%lld bytes, at most %d)",
		    (long long)st.st_size, CONFIG_MAX_SIZE);
	else if ((fp = fdopen(fd, "r")) == NULL)
		config_error(ps, 0, "cannot open: %s", strerror(errno));
	else
		return fp;
	close(fd);
	return NULL;
}

/* Debian's libinih takes its options at run time; these make it strict and give it our reader. */
static void
config_knobs(void)
{
	ini_allow_multiline = false; /* an indented line is a key or a comment, never a value */
	ini_allow_bom = false;       /* config_read_line strips it */
	ini_allow_inline_comments = true;
	/* inih declares the prefixes char * but only reads them. */
	ini_start_comment_prefixes = (char *)"#;";
	ini_inline_comment_prefixes = (char *)"#;"; /* only after whitespace: "a = b   # c" */
	ini_use_stack = true;
	ini_max_line = CONFIG_MAX_LINE + 3; /* "\r\n\0", though config_read_line drops the '\r' */
	ini_allow_realloc = false;
	ini_stop_on_first_error = true;
	ini_allow_no_value = false;
}

/* carotated.conf(5)'s values; every string is allocated so that a setter can simply replace it. */
static struct config *
config_defaults(const char *path)
{
	struct config *conf;

	conf = xcalloc(1, sizeof(*conf));
	conf->path = xstrdup(path);
	conf->socket = xstrdup("/run/carotate/carotated.sock");
	conf->socket_group = xstrdup("carotate");
	conf->admin_group = xstrdup("carotate-admin");
	conf->state_dir = xstrdup("/var/lib/carotate");
	conf->max_clients = 256;
	conf->max_clients_per_uid = 16;
	conf->admin_reserved = CONFIG_ADMIN_RESERVED;
	conf->audit_coalesce = 60;
	conf->request_timeout = 10 * SEC;
	conf->idle_timeout = 60 * SEC;
	conf->max_output = 8 * 1024 * 1024;
	conf->ssl_dir = xstrdup("/usr/local/etc/nginx/ssl");
	conf->ssl_ca = xstrdup("ca.crt");
	conf->ssl_cert = xstrdup("server.crt");
	conf->ssl_key = xstrdup("server.key");
	config_split_argv(conf, "/usr/bin/systemctl reload nginx");
	conf->proxy_address.host = xstrdup("127.0.0.1");
	conf->proxy_address.port = 443;
	conf->proxy_server_name = xstrdup("");
	conf->check_timeout = 10 * SEC;
	conf->reload_timeout = 30 * SEC;
	conf->agents_socket = xstrdup("/run/carotate/agent.sock");
	conf->agents_canary_socket = xstrdup("/run/carotate/agent-canary.sock");
	conf->agents_user = xstrdup("carotate-agent");
	conf->agents_group = xstrdup("www-data");
	conf->linking_key = xstrdup("/etc/carotate/linking.key");
	conf->active_within = 7 * 86400;
	conf->gate = CONFIG_GATE_ACKNOWLEDGED;
	conf->link_rate = 50;
	conf->max_agents = 1000000;
	conf->retention = 30 * 86400;
	conf->ledger_heartbeat = 5;
	conf->backups_keep = 10;
	conf->renew_before = 30 * 86400;
	conf->ca_warn = 180 * 86400;
	return conf;
}

/*
 * An fgets-style ini_reader that counts lines for messages (this inih has no line numbers in
 * its handler) and refuses what inih would silently split (long lines) or truncate (NUL bytes).
 */
static char *
config_read_line(char *str, int num, void *arg)
{
	struct config_parse *ps = arg;
	size_t len = 0;
	int c;

	if (ps->failed)
		return NULL;
	if (num < CONFIG_MAX_LINE + 2) {
		config_error(ps, 0, "internal error: inih line buffer of %d bytes", num);
		return NULL;
	}
	if ((c = config_read_byte(ps, getc(ps->fp))) == EOF)
		return NULL;
	ps->lineno++;
	/* Room for one more character than allowed: it may be the '\r' of "\r\n". */
	for (; c != EOF && c != '\n'; c = config_read_byte(ps, getc(ps->fp))) {
		if (len > CONFIG_MAX_LINE)
			return config_too_long(ps);
		str[len++] = (char)c;
	}
	if (ps->failed)
		return NULL;
	if (len > 0 && str[len - 1] == '\r')
		len--;
	if (len > CONFIG_MAX_LINE)
		return config_too_long(ps);
	if (config_check_chars(ps, str, len) == -1)
		return NULL;
	if (ps->lineno == 1 && len >= 3 && memcmp(str, "\xef\xbb\xbf", 3) == 0) {
		len -= 3;
		memmove(str, str + 3, len);
	}
	str[len] = '\n';
	str[len + 1] = '\0';
	if (config_check_section(ps, str) == -1)
		return NULL;
	return str;
}

/* Passes c through, turning a read error or a file grown past the size limit into EOF. */
static int
config_read_byte(struct config_parse *ps, int c)
{
	if (c == EOF) {
		if (ferror(ps->fp))
			config_error(ps, 0, "read error: %s", strerror(errno));
		return EOF;
	}
	if (++ps->nread > CONFIG_MAX_SIZE) {
		config_error(ps, 0, "file too large (more than %d bytes)", CONFIG_MAX_SIZE);
		return EOF;
	}
	return c;
}

/* Refused rather than split in two as fgets would, which could make half a line a new key. */
static char *
config_too_long(struct config_parse *ps)
{
	config_error(ps, ps->lineno, "line too long (more than %d characters)", CONFIG_MAX_LINE);
	return NULL;
}

/* Control characters would garble the operator's terminal or log when a value is echoed back. */
static int
config_check_chars(struct config_parse *ps, const char *s, size_t len)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '\0') {
			config_error(ps, ps->lineno, "NUL byte in line");
			return -1;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			config_error(ps, ps->lineno, "control character 0x%02x in line", c);
			return -1;
		}
	}
	return 0;
}

/* inih does not show section headers to the handler, so a misspelt empty one would pass. */
static int
config_check_section(struct config_parse *ps, const char *line)
{
	const char *name, *end, *rest;

	name = line + strspn(line, " \t");
	if (*name != '[')
		return 0;
	if ((end = strchr(++name, ']')) == NULL)
		return 0; /* inih reports the syntax error */
	if (!config_known_section(name, (size_t)(end - name))) {
		config_error(ps, ps->lineno, "unknown section [%.*s]", (int)(end - name), name);
		return -1;
	}
	rest = end + 1 + strspn(end + 1, " \t\n");
	if (*rest != '\0' && *rest != '#' && *rest != ';') {
		config_error(
		    ps, ps->lineno, "unexpected text after [%.*s]", (int)(end - name), name);
		return -1;
	}
	return 0;
}

static int
config_known_section(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strncmp(config_keys[i].section, name, len) == 0 &&
		    config_keys[i].section[len] == '\0')
			return 1;
	}
	return 0;
}

/* Called by inih for each "key = value"; a typo or a repeated key is an error, not a no-op. */
static int
config_handler(void *arg, const char *section, const char *name, const char *value)
{
	struct config_parse *ps = arg;
	const struct config_key *k;
	size_t i;

	if (*section == '\0') {
		config_error(ps, ps->lineno, "key \"%s\" outside of any section", name);
		return 0;
	}
	if ((k = config_find_key(section, name)) == NULL) {
		for (i = 0; i < CONFIG_NKEYS; i++) {
			if (strcmp(config_keys[i].name, name) == 0)
				break;
		}
		if (i < CONFIG_NKEYS)
			config_error(ps, ps->lineno,
			    "unknown key \"%s\" in [%s] (it belongs in [%s])", name, section,
			    config_keys[i].section);
		else
			config_error(ps, ps->lineno, "unknown key \"%s\" in [%s]", name, section);
		return 0;
	}
	i = (size_t)(k - config_keys);
	if (ps->lines[i] != 0) {
		config_error(ps, ps->lineno, "duplicate key \"%s\" in [%s] (first set on line %d)",
		    name, section, ps->lines[i]);
		return 0;
	}
	ps->lines[i] = ps->lineno;
	return k->set(ps, k, value) == 0;
}

static const struct config_key *
config_find_key(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/* The line that set a key, 0 if it kept its default. */
static int
config_key_line(const struct config_parse *ps, const char *section, const char *name)
{
	const struct config_key *k;

	if ((k = config_find_key(section, name)) == NULL)
		return 0;
	return ps->lines[k - config_keys];
}

/* Checks that span keys, then fills defaults that depend on other keys. */
static void
config_finish(struct config_parse *ps)
{
	struct config *conf = ps->conf;

	config_check_distinct(ps, "ssl", "ca", conf->ssl_ca, "ssl", "cert", conf->ssl_cert);
	config_check_distinct(ps, "ssl", "ca", conf->ssl_ca, "ssl", "key", conf->ssl_key);
	config_check_distinct(ps, "ssl", "cert", conf->ssl_cert, "ssl", "key", conf->ssl_key);
	config_check_distinct(
	    ps, "daemon", "socket", conf->socket, "agents", "socket", conf->agents_socket);
	config_check_distinct(ps, "daemon", "socket", conf->socket, "agents", "canary_socket",
	    conf->agents_canary_socket);
	config_check_distinct(ps, "agents", "socket", conf->agents_socket, "agents",
	    "canary_socket", conf->agents_canary_socket);
	config_check_reserved(ps);
	config_check_ledger(ps);
	if (conf->proxy_server_name[0] == '\0')
		config_derive_server_name(conf);
	if (conf->ledger_member == NULL)
		config_derive_member(ps);
}

/*
 * A pool needs its database and its key; a single proxy must not name either: a key that
 * does nothing would hide a backend left at its default.
 */
static void
config_check_ledger(struct config_parse *ps)
{
	struct config *conf = ps->conf;
	int pool = conf->ledger_backend == CONFIG_LEDGER_POSTGRESQL;
	int line = config_key_line(ps, "ledger", "backend");

	config_check_pool_file(ps, "dsn_file", conf->ledger_dsn_file, pool);
	config_check_pool_file(ps, "pool_key", conf->ledger_pool_key, pool);
	if (conf->ledger_dsn_file != NULL && conf->ledger_pool_key != NULL)
		config_check_distinct(ps, "ledger", "dsn_file", conf->ledger_dsn_file, "ledger",
		    "pool_key", conf->ledger_pool_key);
	if (pool && conf->ledger_dsn_file == NULL)
		config_error(ps, line, "[ledger] backend = postgresql needs dsn_file");
	if (pool && conf->ledger_pool_key == NULL)
		config_error(ps, line, "[ledger] backend = postgresql needs pool_key");
}

/* A [ledger] file key set with the sqlite backend is refused at its own line. */
static void
config_check_pool_file(struct config_parse *ps, const char *key, const char *value, int pool)
{
	if (pool || value == NULL)
		return;
	config_error(ps, config_key_line(ps, "ledger", key),
	    "[ledger] %s is only for backend = postgresql (the backend is sqlite)", key);
}

/*
 * The member's default name: the host name up to its first dot. A pool must have a valid
 * one, so an unusable host name is an error there; a single proxy does not use it.
 */
static void
config_derive_member(struct config_parse *ps)
{
	struct config *conf = ps->conf;
	char host[CONFIG_MAX_HOSTNAME + 1];
	const char *why;

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "%s", "");
	host[CONFIG_MAX_HOSTNAME] = '\0';
	host[strcspn(host, ".")] = '\0';
	if ((why = config_member_invalid(host)) == NULL) {
		conf->ledger_member = xstrdup(host);
		return;
	}
	if (conf->ledger_backend == CONFIG_LEDGER_POSTGRESQL)
		config_error(ps, config_key_line(ps, "ledger", "backend"),
		    "[ledger] member: the host name \"%.64s\" cannot name this member (%s); set "
		    "member",
		    host, why);
}

/*
 * Readers must leave the admins some slots, and at least one for themselves:
 * an explicit admin_reserved must be below max_clients; the default shrinks
 * to half of a small max_clients instead of failing a file that never set it.
 */
static void
config_check_reserved(struct config_parse *ps)
{
	struct config *conf = ps->conf;
	int line = config_key_line(ps, "daemon", "admin_reserved");

	if (conf->admin_reserved < conf->max_clients)
		return;
	if (line == 0) {
		conf->admin_reserved = conf->max_clients / 2;
		return;
	}
	config_error(ps, line,
	    "[daemon] admin_reserved (%u) must be less than max_clients (%u): readers need a slot",
	    conf->admin_reserved, conf->max_clients);
}

/* Two keys naming one file would make one overwrite the other; blamed on the later line. */
static void
config_check_distinct(struct config_parse *ps, const char *s1, const char *k1, const char *v1,
    const char *s2, const char *k2, const char *v2)
{
	int l1, l2;

	if (strcmp(v1, v2) != 0)
		return;
	l1 = config_key_line(ps, s1, k1);
	l2 = config_key_line(ps, s2, k2);
	config_error(ps, l1 > l2 ? l1 : l2, "[%s] %s and [%s] %s name the same file \"%s\"", s1, k1,
	    s2, k2, v1);
}

/* SNI cannot carry an IP literal (RFC 6066 §3), so the first DNS name of names is used. */
static void
config_derive_server_name(struct config *conf)
{
	size_t i;

	for (i = 0; i < conf->n_proxy_names; i++) {
		if (!config_is_ip(conf->proxy_names[i])) {
			config_replace(&conf->proxy_server_name, conf->proxy_names[i]);
			return;
		}
	}
}

/* Keeps the first error only: later ones are usually its consequences. */
static void
config_error(struct config_parse *ps, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (ps->failed)
		return;
	ps->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ps->errlen == 0)
		return;
	if (line > 0)
		snprintf(ps->err, ps->errlen, "%s:%d: %s", ps->path, line, msg);
	else
		snprintf(ps->err, ps->errlen, "%s: %s", ps->path, msg);
}

/* An error in a value, at the current line and prefixed with its key; returns -1. */
static int
config_key_error(struct config_parse *ps, const struct config_key *k, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	config_error(ps, ps->lineno, "%s: %s", k->name, msg);
	return -1;
}

static char **
config_field_str(struct config_parse *ps, const struct config_key *k)
{
	return (char **)(void *)((char *)ps->conf + k->off);
}

static void
config_replace(char **dst, const char *value)
{
	free(*dst);
	*dst = xstrdup(value);
}

/* Leading decimal digits of s: 0, -1 if there are none, -2 on overflow of 64 bits. */
static int
config_digits(const char *s, uint64_t *out, const char **end)
{
	uint64_t n = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -2;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return -1;
	*out = n;
	*end = p;
	return 0;
}

/* A duration in ms as the largest unit that divides it, for range messages. */
static const char *
config_fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms % DAY == 0)
		snprintf(buf, len, "%llud", (unsigned long long)(ms / DAY));
	else if (ms % HOUR == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / HOUR));
	else if (ms % MIN == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / MIN));
	else
		snprintf(buf, len, "%llus", (unsigned long long)(ms / SEC));
	return buf;
}

/* Absolute, shorter than max, no ".." component: paths are used as given, never resolved. */
static int
config_check_path(struct config_parse *ps, const struct config_key *k, const char *p, size_t max)
{
	const char *q;
	size_t len = strlen(p);

	if (len == 0)
		return config_key_error(ps, k, "empty path");
	if (p[0] != '/')
		return config_key_error(ps, k, "\"%s\" is not an absolute path", p);
	if (len >= max)
		return config_key_error(
		    ps, k, "path too long (%zu bytes, at most %zu)", len, max - 1);
	for (q = p; (q = strstr(q, "/..")) != NULL; q += 3) {
		if (q[3] == '/' || q[3] == '\0')
			return config_key_error(ps, k, "\"..\" component in \"%s\"", p);
	}
	return 0;
}

/* Why s is not an RFC 1123 host name (no wildcards, no trailing dot), or NULL if it is one. */
const char *
config_dns_invalid(const char *s)
{
	const char *label, *dot, *why;
	size_t len = strlen(s);

	if (len == 0)
		return "empty name";
	if (len > CONFIG_MAX_DNS)
		return "name longer than 253 characters";
	if (s[0] == '*')
		return "wildcards are not allowed";
	for (label = s;; label = dot + 1) {
		dot = strchr(label, '.');
		len = dot != NULL ? (size_t)(dot - label) : strlen(label);
		if ((why = config_label_invalid(label, len)) != NULL)
			return why;
		if (dot == NULL)
			break;
	}
	if (strspn(label, "0123456789") == strlen(label))
		return "all-numeric last label, yet not an IP address";
	return NULL;
}

static const char *
config_label_invalid(const char *label, size_t len)
{
	size_t i;
	char c;

	if (len == 0)
		return "empty label";
	if (len > CONFIG_MAX_LABEL)
		return "label longer than 63 characters";
	if (label[0] == '-' || label[len - 1] == '-')
		return "label starts or ends with '-'";
	for (i = 0; i < len; i++) {
		c = label[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '-'))
			return "invalid character: only letters, digits, '-' and '.'";
	}
	return NULL;
}

int
config_is_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The form two equal names share: canonical text of an address, lower case of a DNS name. */
static void
config_name_key(const char *s, char *out, size_t len)
{
	unsigned char buf[sizeof(struct in6_addr)];
	size_t i;

	if (inet_pton(AF_INET, s, buf) == 1)
		inet_ntop(AF_INET, buf, out, (socklen_t)len);
	else if (inet_pton(AF_INET6, s, buf) == 1)
		inet_ntop(AF_INET6, buf, out, (socklen_t)len);
	else {
		for (i = 0; s[i] != '\0' && i + 1 < len; i++)
			out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
		out[i] = '\0';
	}
}

static int
config_set_path(struct config_parse *ps, const struct config_key *k, const char *v)
{
	if (config_check_path(ps, k, v, PATH_MAX) == -1)
		return -1;
	config_replace(config_field_str(ps, k), v);
	return 0;
}

/* sun_path holds 108 bytes with its NUL. */
static int
config_set_sockpath(struct config_parse *ps, const struct config_key *k, const char *v)
{
	if (config_check_path(ps, k, v, CONFIG_SUN_PATH) == -1)
		return -1;
	config_replace(config_field_str(ps, k), v);
	return 0;
}

/* Empty means "off" and is stored as NULL. */
static int
config_set_optpath(struct config_parse *ps, const struct config_key *k, const char *v)
{
	char **dst = config_field_str(ps, k);

	if (*v == '\0') {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	return config_set_path(ps, k, v);
}

/* POSIX portable user and group names, as useradd accepts them. */
static int
config_set_account(struct config_parse *ps, const struct config_key *k, const char *v)
{
	static const char portable[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                               "0123456789._-";
	size_t len = strlen(v);

	if (len == 0 || len > CONFIG_MAX_ACCOUNT || v[0] == '-' || strspn(v, portable) != len)
		return config_key_error(ps, k,
		    "\"%s\" is not a portable user or group name ([A-Za-z0-9._-], not starting "
		    "with '-', 1 to %d characters)",
		    v, CONFIG_MAX_ACCOUNT);
	config_replace(config_field_str(ps, k), v);
	return 0;
}

/* The ssl files live directly in [ssl] dir, which ssldir.c swaps as a whole. */
static int
config_set_filename(struct config_parse *ps, const struct config_key *k, const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len > CONFIG_MAX_FILENAME || strchr(v, '/') != NULL ||
	    strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
		return config_key_error(ps, k,
		    "\"%s\" must be a plain file name inside [ssl] dir (no '/', not \".\" or "
		    "\"..\", 1 to %d characters)",
		    v, CONFIG_MAX_FILENAME);
	config_replace(config_field_str(ps, k), v);
	return 0;
}

/* Plain decimal, no unit; k->min..k->max fits an unsigned. */
static int
config_set_uint(struct config_parse *ps, const struct config_key *k, const char *v)
{
	const char *end;
	uint64_t n;
	int rc;

	if ((rc = config_digits(v, &n, &end)) == -1 || (rc == 0 && *end != '\0'))
		return config_key_error(ps, k, "\"%s\" is not a number", v);
	if (rc == -2 || n < k->min || n > k->max)
		return config_key_error(ps, k, "%s is out of range (%llu..%llu)", v,
		    (unsigned long long)k->min, (unsigned long long)k->max);
	*(unsigned *)(void *)((char *)ps->conf + k->off) = (unsigned)n;
	return 0;
}

/* A duration checked against k->min..k->max (ms) into *out; 0 or -1. */
static int
config_get_duration(
    struct config_parse *ps, const struct config_key *k, const char *v, uint64_t *out)
{
	char lo[32], hi[32];
	const char *why;

	if (duration_parse_ms(v, out, &why) == -1)
		return config_key_error(ps, k, "\"%s\" %s", v, why);
	if (*out < k->min || *out > k->max)
		return config_key_error(ps, k, "%s is out of range (%s..%s)", v,
		    config_fmt_duration(k->min, lo, sizeof(lo)),
		    config_fmt_duration(k->max, hi, sizeof(hi)));
	return 0;
}

/* Timeouts, stored as unsigned milliseconds. */
static int
config_set_ms(struct config_parse *ps, const struct config_key *k, const char *v)
{
	uint64_t ms;

	if (config_get_duration(ps, k, v, &ms) == -1)
		return -1;
	*(unsigned *)(void *)((char *)ps->conf + k->off) = (unsigned)ms;
	return 0;
}

/* Long periods, stored as uint64_t seconds (no unit is finer than a second). */
static int
config_set_secs(struct config_parse *ps, const struct config_key *k, const char *v)
{
	uint64_t ms;

	if (config_get_duration(ps, k, v, &ms) == -1)
		return -1;
	*(uint64_t *)(void *)((char *)ps->conf + k->off) = ms / SEC;
	return 0;
}

/* Bytes, with an optional k (KiB) or M (MiB) suffix. */
static int
config_set_size(struct config_parse *ps, const struct config_key *k, const char *v)
{
	const char *end;
	uint64_t n, unit = 1;
	int rc;

	if ((rc = config_digits(v, &n, &end)) == -1)
		return config_key_error(
		    ps, k, "\"%s\" is not a size (bytes, or a k or M suffix)", v);
	if (rc == 0 && (*end == 'k' || *end == 'K' || *end == 'M'))
		unit = *end++ == 'M' ? 1024 * 1024 : 1024;
	if (rc == 0 && *end != '\0')
		return config_key_error(
		    ps, k, "\"%s\" is not a size (bytes, or a k or M suffix)", v);
	if (rc == -2 || n > k->max / unit || n * unit < k->min)
		return config_key_error(ps, k, "%s is out of range (%llu..%llu bytes)", v,
		    (unsigned long long)k->min, (unsigned long long)k->max);
	*(size_t *)(void *)((char *)ps->conf + k->off) = (size_t)(n * unit);
	return 0;
}

/* Comma-separated SANs; an empty value keeps the empty list (the daemon uses the host name). */
static int
config_set_names(struct config_parse *ps, const struct config_key *k, const char *v)
{
	char *copy, *item, *rest;
	size_t len;
	int rc = 0;

	config_free_list(ps->conf->proxy_names, ps->conf->n_proxy_names);
	ps->conf->proxy_names = NULL;
	ps->conf->n_proxy_names = 0;
	if (*v == '\0')
		return 0;
	rest = copy = xstrdup(v);
	while (rc == 0 && (item = strsep(&rest, ",")) != NULL) {
		item += strspn(item, " \t");
		len = strlen(item);
		while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
			item[--len] = '\0';
		rc = config_add_name(ps, k, item);
	}
	free(copy);
	return rc;
}

static int
config_add_name(struct config_parse *ps, const struct config_key *k, const char *name)
{
	struct config *conf = ps->conf;
	char a[CONFIG_MAX_DNS + 1], b[CONFIG_MAX_DNS + 1];
	const char *why;
	size_t i;

	if (*name == '\0')
		return config_key_error(ps, k, "empty entry in the list");
	if (!config_is_ip(name) && (why = config_dns_invalid(name)) != NULL)
		return config_key_error(
		    ps, k, "\"%s\" is not a valid DNS name or IP address (%s)", name, why);
	if (conf->n_proxy_names >= CONFIG_MAX_NAMES)
		return config_key_error(ps, k, "more than %d names", CONFIG_MAX_NAMES);
	config_name_key(name, a, sizeof(a));
	for (i = 0; i < conf->n_proxy_names; i++) {
		config_name_key(conf->proxy_names[i], b, sizeof(b));
		if (strcmp(a, b) == 0)
			return config_key_error(ps, k, "duplicate name \"%s\"", name);
	}
	conf->proxy_names =
	    xreallocarray(conf->proxy_names, conf->n_proxy_names + 1, sizeof(*conf->proxy_names));
	conf->proxy_names[conf->n_proxy_names++] = xstrdup(name);
	return 0;
}

/* Words split on blanks, run with execv: there is no shell, so no quoting either. */
static int
config_set_reload(struct config_parse *ps, const struct config_key *k, const char *v)
{
	config_split_argv(ps->conf, v);
	if (ps->conf->reload_argc == 0)
		return config_key_error(ps, k, "empty command");
	if (ps->conf->reload_argc > CONFIG_MAX_ARGV)
		return config_key_error(ps, k, "more than %d words", CONFIG_MAX_ARGV);
	return config_check_path(ps, k, ps->conf->reload_argv[0], PATH_MAX);
}

static void
config_split_argv(struct config *conf, const char *v)
{
	char *copy, *word, *save = NULL;

	config_free_list(conf->reload_argv, conf->reload_argc);
	conf->reload_argc = 0;
	conf->reload_argv = xcalloc(1, sizeof(*conf->reload_argv));
	copy = xstrdup(v);
	for (word = strtok_r(copy, " \t", &save); word != NULL;
	     word = strtok_r(NULL, " \t", &save)) {
		conf->reload_argv = xreallocarray(
		    conf->reload_argv, conf->reload_argc + 2, sizeof(*conf->reload_argv));
		conf->reload_argv[conf->reload_argc++] = xstrdup(word);
		conf->reload_argv[conf->reload_argc] = NULL;
	}
	free(copy);
}

/* Frees n strings and the array (which may hold a terminating NULL after them). */
static void
config_free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* unix:/abs/path, host:port or [v6]:port. */
static int
config_set_address(struct config_parse *ps, const struct config_key *k, const char *v)
{
	struct config_address *a = config_field_address(ps, k);

	free(a->path);
	free(a->host);
	memset(a, 0, sizeof(*a));
	/* The canary's address is optional: without it canary check-ins prove nothing. */
	if (*v == '\0' && k->off == offsetof(struct config, canary_address))
		return 0;
	if (*v == '\0')
		return config_key_error(ps, k, "empty address");
	if (strncmp(v, "unix:", 5) == 0) {
		if (config_check_path(ps, k, v + 5, CONFIG_SUN_PATH) == -1)
			return -1;
		a->is_unix = 1;
		a->path = xstrdup(v + 5);
		return 0;
	}
	return config_parse_hostport(ps, k, v);
}

/* The address a key sets (address or canary_address). */
static struct config_address *
config_field_address(struct config_parse *ps, const struct config_key *k)
{
	return (struct config_address *)(void *)((char *)ps->conf + k->off);
}

static int
config_parse_hostport(struct config_parse *ps, const struct config_key *k, const char *v)
{
	struct config_address *a = config_field_address(ps, k);
	const char *rb, *colon, *why;
	unsigned char buf[sizeof(struct in6_addr)];

	if (*v == '[') {
		if ((rb = strchr(v, ']')) == NULL)
			return config_key_error(ps, k, "\"%s\": missing ']'", v);
		a->host = xstrndup(v + 1, (size_t)(rb - v - 1));
		if (inet_pton(AF_INET6, a->host, buf) != 1)
			return config_key_error(ps, k, "\"%s\" is not an IPv6 address", a->host);
		if (rb[1] != ':')
			return config_key_error(
			    ps, k, "\"%s\": missing port (expected [v6]:port)", v);
		return config_parse_port(ps, k, rb + 2);
	}
	if ((colon = strrchr(v, ':')) == NULL)
		return config_key_error(
		    ps, k, "\"%s\": missing port (expected host:port, [v6]:port or unix:/path)", v);
	if (memchr(v, ':', (size_t)(colon - v)) != NULL)
		return config_key_error(
		    ps, k, "\"%s\": an IPv6 address needs brackets: [v6]:port", v);
	a->host = xstrndup(v, (size_t)(colon - v));
	if (inet_pton(AF_INET, a->host, buf) != 1 && (why = config_dns_invalid(a->host)) != NULL)
		return config_key_error(ps, k, "\"%s\" is not a valid host (%s)", a->host, why);
	return config_parse_port(ps, k, colon + 1);
}

static int
config_parse_port(struct config_parse *ps, const struct config_key *k, const char *s)
{
	const char *end;
	uint64_t n;
	int rc;

	if (*s == '\0')
		return config_key_error(ps, k, "missing port");
	if ((rc = config_digits(s, &n, &end)) == -1 || (rc == 0 && *end != '\0'))
		return config_key_error(ps, k, "port \"%s\" is not a number", s);
	if (rc == -2 || n < 1 || n > 65535)
		return config_key_error(ps, k, "port %s is out of range (1..65535)", s);
	config_field_address(ps, k)->port = (uint16_t)n;
	return 0;
}

/* Empty keeps the default: the first DNS name of names. */
static int
config_set_server_name(struct config_parse *ps, const struct config_key *k, const char *v)
{
	const char *why;

	if (config_is_ip(v))
		return config_key_error(ps, k, "\"%s\": SNI cannot carry an IP address", v);
	if (*v != '\0' && (why = config_dns_invalid(v)) != NULL)
		return config_key_error(ps, k, "\"%s\" is not a valid DNS name (%s)", v, why);
	config_replace(config_field_str(ps, k), v);
	return 0;
}

static int
config_set_gate(struct config_parse *ps, const struct config_key *k, const char *v)
{
	if (strcmp(v, "acknowledged") == 0)
		ps->conf->gate = CONFIG_GATE_ACKNOWLEDGED;
	else if (strcmp(v, "verified") == 0)
		ps->conf->gate = CONFIG_GATE_VERIFIED;
	else
		return config_key_error(ps, k, "\"%s\" is neither acknowledged nor verified", v);
	return 0;
}

/*
 * An https URL sent verbatim as the X-Carotate-Canary header of agent answers:
 * printable ASCII without spaces (no header splitting), a host after the
 * scheme, at most 512 bytes. Empty means "announce nothing" (NULL).
 */
static int
config_set_url(struct config_parse *ps, const struct config_key *k, const char *v)
{
	static const char scheme[] = "https://";
	char **dst = config_field_str(ps, k);
	size_t len = strlen(v), i;
	char host;

	if (len == 0) {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	if (len > CONFIG_MAX_URL)
		return config_key_error(
		    ps, k, "URL too long (%zu bytes, at most %d)", len, CONFIG_MAX_URL);
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return config_key_error(ps, k,
			    "byte 0x%02x at offset %zu: only printable ASCII without spaces",
			    (unsigned char)v[i], i);
	if (strncmp(v, scheme, sizeof(scheme) - 1) != 0)
		return config_key_error(ps, k, "\"%s\" is not an https:// URL", v);
	host = v[sizeof(scheme) - 1];
	if (host == '\0' || host == '/' || host == '?' || host == '#' || host == ':' || host == '@')
		return config_key_error(ps, k, "\"%s\" names no host", v);
	config_replace(dst, v);
	return 0;
}

static int
config_set_backend(struct config_parse *ps, const struct config_key *k, const char *v)
{
	if (strcmp(v, "sqlite") == 0)
		ps->conf->ledger_backend = CONFIG_LEDGER_SQLITE;
	else if (strcmp(v, "postgresql") == 0)
		ps->conf->ledger_backend = CONFIG_LEDGER_POSTGRESQL;
	else
		return config_key_error(ps, k, "\"%s\" is neither sqlite nor postgresql", v);
	return 0;
}

/* Empty keeps the default (the host name); config_finish derives it. */
static int
config_set_member(struct config_parse *ps, const struct config_key *k, const char *v)
{
	char **dst = config_field_str(ps, k);
	const char *why;

	free(*dst);
	*dst = NULL;
	if (*v == '\0')
		return 0;
	if ((why = config_member_invalid(v)) != NULL)
		return config_key_error(ps, k, "\"%s\" is not a member name (%s)", v, why);
	*dst = xstrdup(v);
	return 0;
}

/* Why s cannot name a pool member (it shows in status, reports and audit records), or NULL. */
static const char *
config_member_invalid(const char *s)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                              "0123456789._-";
	size_t len = strlen(s);

	if (len == 0)
		return "empty";
	if (len > CONFIG_MEMBER_MAX)
		return "longer than 63 characters";
	if (strspn(s, allowed) != len)
		return "only letters, digits, '.', '_' and '-'";
	return NULL;
}

int64_t
config_stale_after(uint64_t heartbeat)
{
	return (int64_t)(heartbeat * CONFIG_HEARTBEAT_STALE);
}
