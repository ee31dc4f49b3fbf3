/* carotate-agent: argv, verbs and the one place exit codes are chosen. */
#include <stdio.h>
#include <string.h>

#include "agent.h"

static void
main_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: carotate-agent [-c FILE] link --server URL (--ca-file FILE | --ca-pin sha256:HEX)\n"
	    "                          [--join-token-file FILE] [--linking-key-file FILE] [--id ID]\n"
	    "       carotate-agent [-c FILE] check-in\n"
	    "       carotate-agent [-c FILE] status [--json]\n"
	    "       carotate-agent --help | --version\n");
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("carotate-agent %s\n", CAROTATE_VERSION);
		return AGENT_OK;
	}
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		main_usage(stdout);
		return AGENT_OK;
	}
	main_usage(stderr);
	return AGENT_EUSAGE;
}
