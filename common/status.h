/* Status codes of the control protocol, their names, messages and CLI exit codes: the one table. */
#ifndef CAROTATE_STATUS_H
#define CAROTATE_STATUS_H

/* carotatectl exit codes (carotatectl(1)). */
enum exit_code {
	EXIT_DONE = 0,
	EXIT_USAGE = 1,
	EXIT_UNREACHABLE = 2,
	EXIT_PRECONDITION = 3,
	EXIT_DENIED = 4,
	EXIT_INVALID = 5,
	EXIT_INTERNAL = 6,
};

/* Lower-case name of a protocol status ("failed_precondition"); "unknown" if not ours. */
const char *status_name(int status);
/* The audit log's spelling of a status ("FAILED_PRECONDITION"); "UNKNOWN" if not ours. */
const char *status_record_name(int status);
/* A short sentence for the operator, used when a reply carries no message. */
const char *status_message(int status);
/* The exit code carotatectl uses for a reply with this status. */
int status_exit_code(int status);
/* Name of a phase ("steady", "staged"), as the daemon logs it and the CLI prints it. */
const char *status_phase_name(int phase);

#endif
