/*
 * The configuration parser: the input is the whole file, written to a
 * scratch directory and read by config_load as the daemon reads
 * /etc/carotate/carotated.conf. A file it accepts must hold what the rest of
 * the daemon relies on (absolute paths, plain file names, an argv ending in
 * NULL, bounded durations); a refusal must say where and why.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fuzzlib.h"
#include "log.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char fuzz_conf[512];

static void fuzz_check(const struct config *);
static void fuzz_check_abs(const char *, const char *);
static void fuzz_check_file(const char *, const char *);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(1, 0, "fuzz_config");
	fuzz_path(fuzz_conf, sizeof(fuzz_conf), fuzz_tmpdir("config"), "carotated.conf");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *conf;
	char err[1024];

	fuzz_write_file(fuzz_conf, data, size);
	memset(err, 'x', sizeof(err));
	if ((conf = config_load(fuzz_conf, err, sizeof(err))) == NULL) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
			fuzz_fail("config_load refused the file without a message");
		if (strncmp(err, fuzz_conf, strlen(fuzz_conf)) != 0)
			fuzz_fail("config_load's message does not name the file: %s", err);
		return 0;
	}
	fuzz_check(conf);
	config_free(conf);
	return 0;
}

/* What the daemon assumes of an accepted configuration without checking again. */
static void
fuzz_check(const struct config *conf)
{
	size_t i;

	fuzz_check_abs("socket", conf->socket);
	fuzz_check_abs("state_dir", conf->state_dir);
	fuzz_check_abs("ssl dir", conf->ssl_dir);
	fuzz_check_abs("agents socket", conf->agents_socket);
	fuzz_check_abs("agents canary_socket", conf->agents_canary_socket);
	/* Empty: only join tokens link. */
	if (conf->linking_key != NULL)
		fuzz_check_abs("linking_key", conf->linking_key);
	fuzz_check_file("ssl ca", conf->ssl_ca);
	fuzz_check_file("ssl cert", conf->ssl_cert);
	fuzz_check_file("ssl key", conf->ssl_key);
	if (conf->reload_argc == 0 || conf->reload_argv[conf->reload_argc] != NULL)
		fuzz_fail("reload argv is empty or not NULL-terminated");
	fuzz_check_abs("reload argv[0]", conf->reload_argv[0]);
	for (i = 0; i < conf->reload_argc; i++)
		if (conf->reload_argv[i] == NULL || conf->reload_argv[i][0] == '\0')
			fuzz_fail("reload argv[%zu] is empty", i);
	for (i = 0; i < conf->n_proxy_names; i++)
		if (config_dns_invalid(conf->proxy_names[i]) != NULL &&
		    !config_is_ip(conf->proxy_names[i]))
			fuzz_fail("proxy name %s is neither a DNS name nor an IP literal",
			    conf->proxy_names[i]);
	if (conf->proxy_address.is_unix ? conf->proxy_address.path == NULL
	                                : conf->proxy_address.host == NULL)
		fuzz_fail("proxy address has neither a path nor a host");
	if (conf->proxy_server_name == NULL)
		fuzz_fail("proxy server_name is NULL");
	if (conf->max_clients == 0 || conf->check_timeout == 0 || conf->reload_timeout == 0)
		fuzz_fail("a limit is zero: max_clients %u check_timeout %u reload_timeout %u",
		    conf->max_clients, conf->check_timeout, conf->reload_timeout);
	if (conf->metrics_textfile != NULL)
		fuzz_check_abs("metrics textfile", conf->metrics_textfile);
}

static void
fuzz_check_abs(const char *what, const char *path)
{
	if (path == NULL || path[0] != '/')
		fuzz_fail("%s is not an absolute path: %s", what, path ? path : "(null)");
}

static void
fuzz_check_file(const char *what, const char *name)
{
	if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		fuzz_fail("%s is not a plain file name: %s", what, name ? name : "(null)");
}
