#include <stddef.h>

#include "carotate.pb-c.h"
#include "status.h"

static const struct status_entry {
	int status;
	const char *name;   /* the CLI's JSON and messages */
	const char *record; /* the audit log's result: the protocol's own spelling */
	const char *message;
	int exit_code;
} status_table[] = {
	{ CAROTATE__V1__STATUS__OK, "ok", "OK", "done", EXIT_DONE },
	{ CAROTATE__V1__STATUS__INVALID_ARGUMENT, "invalid_argument", "INVALID_ARGUMENT",
	    "invalid input", EXIT_INVALID },
	{ CAROTATE__V1__STATUS__PERMISSION_DENIED, "permission_denied", "PERMISSION_DENIED",
	    "permission denied", EXIT_DENIED },
	{ CAROTATE__V1__STATUS__FAILED_PRECONDITION, "failed_precondition", "FAILED_PRECONDITION",
	    "precondition not met", EXIT_PRECONDITION },
	{ CAROTATE__V1__STATUS__NOT_FOUND, "not_found", "NOT_FOUND", "not found", EXIT_INVALID },
	{ CAROTATE__V1__STATUS__ALREADY_EXISTS, "already_exists", "ALREADY_EXISTS",
	    "already exists", EXIT_PRECONDITION },
	{ CAROTATE__V1__STATUS__INTERNAL, "internal", "INTERNAL", "internal error", EXIT_INTERNAL },
	{ CAROTATE__V1__STATUS__UNAVAILABLE, "unavailable", "UNAVAILABLE", "daemon unavailable",
	    EXIT_UNREACHABLE },
};

static const struct status_entry *
status_lookup(int status)
{
	size_t i;

	for (i = 0; i < sizeof(status_table) / sizeof(status_table[0]); i++)
		if (status_table[i].status == status)
			return &status_table[i];
	return NULL;
}

const char *
status_name(int status)
{
	const struct status_entry *e = status_lookup(status);

	return e != NULL ? e->name : "unknown";
}

const char *
status_record_name(int status)
{
	const struct status_entry *e = status_lookup(status);

	return e != NULL ? e->record : "UNKNOWN";
}

const char *
status_message(int status)
{
	const struct status_entry *e = status_lookup(status);

	return e != NULL ? e->message : "unknown status from daemon";
}

int
status_exit_code(int status)
{
	const struct status_entry *e = status_lookup(status);

	return e != NULL ? e->exit_code : EXIT_INTERNAL;
}

const char *
status_phase_name(int phase)
{
	switch (phase) {
	case CAROTATE__V1__PHASE__PHASE_STEADY:
		return "steady";
	case CAROTATE__V1__PHASE__PHASE_STAGED:
		return "staged";
	default:
		return "unknown";
	}
}
