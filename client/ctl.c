/*
 * carotatectl: one request to carotated over its control socket, one reply printed (wait:
 * the same report request, repeated until its threshold holds). This file holds the verb
 * table and the global options; each verb's options, request and printers are in its
 * group's ctl_<group>.c, the connection in ctl_conn.c, the shared grammar in ctl_args.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "ctl.h"
#include "log.h"
#include "status.h"
#include "wire.h"

static void ctl_usage(FILE *);
static const struct ctl_cmd *ctl_find(const char *name);
static int ctl_parse_globals(struct ctl_opts *opts, int argc, char **argv);
static int ctl_run(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv);

/* Every command, in the order --help lists them. */
static const struct ctl_cmd *const ctl_table[] = {
	&ctl_status_cmd,
	&ctl_stage_generate_cmd,
	&ctl_stage_install_cmd,
	&ctl_report_cmd,
	&ctl_wait_cmd,
	&ctl_rotate_cmd,
	&ctl_rotate_restore_cmd,
	&ctl_rotate_renew_cmd,
	&ctl_stage_discard_cmd,
	&ctl_report_exclude_cmd,
	&ctl_report_include_cmd,
	&ctl_report_forget_cmd,
	&ctl_join_cmd,
	&ctl_backups_cmd,
	&ctl_stage_retire_cmd,
	&ctl_audit_cmd,
	&ctl_check_cmd,
};

static const struct option ctl_global_longopts[] = {
	CTL_COMMON_LONGOPTS,
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
ctl_usage(FILE *fp)
{
	size_t i;

	fprintf(fp,
	    "usage: " CTL_NAME " [--socket PATH] [--json] [--timeout DURATION] COMMAND [ARGS]\n"
	    "       " CTL_NAME " COMMAND --help\n"
	    "       " CTL_NAME " --version\n"
	    "\n"
	    "options:\n"
	    "  -s, --socket PATH         control socket (default: $" CTL_SOCKET_ENV
	    ", else " CTL_DEFAULT_SOCKET ")\n"
	    "  -j, --json                print one JSON object on stdout\n"
	    "  -t, --timeout DURATION    give up on each call after DURATION: digits with an\n"
	    "                            optional s, m, h or d suffix (bare: seconds), up\n"
	    "                            to 24d; 0 waits forever (default: %ds; generate %ds,\n"
	    "                            install and discard %ds, rotate and restore %ds;\n"
	    "                            wait: each of its calls, while wait --max-wait\n"
	    "                            bounds the whole wait)\n"
	    "  -h, --help                print this help\n"
	    "  -V, --version             print the version\n"
	    "\n"
	    "commands:\n",
	    CTL_DEFAULT_TIMEOUT, CTL_GENERATE_TIMEOUT, CTL_STAGE_TIMEOUT, CTL_SWAP_TIMEOUT);
	for (i = 0; i < sizeof(ctl_table) / sizeof(ctl_table[0]); i++)
		fprintf(fp, "  %-12s %s\n", ctl_table[i]->name, ctl_table[i]->summary);
	fprintf(fp,
	    "\nexit status: 0 done, 1 usage, 2 daemon unreachable, 3 precondition not met,\n"
	    "4 permission denied, 5 invalid input, 6 internal error; check has the monitoring\n"
	    "plugin's: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n");
}

static const struct ctl_cmd *
ctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ctl_table) / sizeof(ctl_table[0]); i++)
		if (strcmp(ctl_table[i]->name, name) == 0)
			return ctl_table[i];
	return NULL;
}

/* Options before COMMAND; returns the index of COMMAND, argc after --help/--version, -1. */
static int
ctl_parse_globals(struct ctl_opts *opts, int argc, char **argv)
{
	int c, r;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(
	            argc, argv, "+" CTL_COMMON_SHORTOPTS "V", ctl_global_longopts, NULL)) != -1) {
		if (c == 'V') {
			printf(CTL_NAME " %s\n", CAROTATE_VERSION);
			return argc;
		}
		if ((r = ctl_args_common(NULL, opts, c, optarg, argv)) < 0)
			return -1;
		if (r > 0) {
			ctl_usage(stdout);
			return argc;
		}
	}
	if (optind >= argc)
		return ctl_args_usage_error(NULL, "no command given");
	return optind;
}

/*
 * Builds the command's request, talks to the daemon, prints the reply or the failure. Input
 * refused before sending reports like a daemon's INVALID_ARGUMENT (exit 5, JSON error).
 */
static int
ctl_run(const struct ctl_cmd *cmd, struct ctl_opts *opts, int argc, char **argv)
{
	struct ctl_request r = { .req = CAROTATE__V1__REQUEST__INIT };
	struct ctl_error err;
	int code, built;

	r.req.version = WIRE_VERSION;
	built = cmd->build(cmd, opts, argc, argv, &r, &err);
	if (built == 1 && strlen(opts->socket) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
		built = ctl_args_usage_error(NULL, "socket path too long: %s", opts->socket);
	if (built == 1) {
		if (!opts->timeout_set && cmd->timeout != 0)
			opts->timeout = cmd->timeout;
		code = cmd->run != NULL ? cmd->run(cmd, opts, &r) : ctl_conn_run(cmd, opts, &r);
	} else if (built == CTL_BUILD_REFUSED)
		code = ctl_conn_fail(opts, &err);
	else
		code = built == 0 ? EXIT_DONE : cmd->usage_exit != 0 ? cmd->usage_exit : EXIT_USAGE;
	if (cmd->clear != NULL)
		cmd->clear(&r);
	return code;
}

int
main(int argc, char **argv)
{
	struct ctl_opts opts = { .timeout = CTL_DEFAULT_TIMEOUT };
	const struct ctl_cmd *cmd;
	const char *env = getenv(CTL_SOCKET_ENV);
	int first;

	log_init(1, 0, CTL_NAME);
	log_set_exit_status(EXIT_INTERNAL);
	opts.socket = env != NULL && *env != '\0' ? env : CTL_DEFAULT_SOCKET;
	if ((first = ctl_parse_globals(&opts, argc, argv)) < 0)
		return EXIT_USAGE;
	if (first >= argc)
		return ctl_conn_finish(0);
	if ((cmd = ctl_find(argv[first])) == NULL) {
		ctl_args_usage_error(NULL, "unknown command: %s", argv[first]);
		return EXIT_USAGE;
	}
	return ctl_run(cmd, &opts, argc - first, argv + first);
}
