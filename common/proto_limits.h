/*
 * Limits of the control protocol that carotated enforces and carotatectl checks before it
 * sends, so that a typo fails at once with the same bound as the daemon's.
 * Not "limits.h": GCC's own <limits.h> reaches the next limits.h on the search path with
 * #include_next, even from a quote-only directory.
 */

#ifndef CAROTATE_PROTO_LIMITS_H
#define CAROTATE_PROTO_LIMITS_H

#define LIMITS_MAX_PEM          65536 /* bytes of each PEM of InstallRequest (PKI_MAX_INPUT) */
#define LIMITS_MAX_SANS         64    /* GenerateRequest.sans (PKI_MAX_SANS) */
#define LIMITS_MAX_DAYS         36500 /* validity in days (PKI_MAX_DAYS); beyond, a typo is likelier */
#define LIMITS_MAX_AGENT_ID     64    /* bytes of an agent id: 1-64 of [A-Za-z0-9._-] */
#define LIMITS_MAX_REASON       256   /* bytes of an exclude, rotate or restore reason */
#define LIMITS_MAX_REPORT_PAGE  10000 /* ReportRequest.limit */
#define LIMITS_MAX_BACKUPS_PAGE 1000  /* ListBackupsRequest.limit */
#define LIMITS_MAX_AUDIT_PAGE   1000  /* AuditRequest.limit */

#endif
