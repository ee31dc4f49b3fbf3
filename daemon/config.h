/* The configuration file (carotated.conf(5)): its schema, parsed and validated in one place. */
#ifndef CAROTATE_CONFIG_H
#define CAROTATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH "/etc/carotate/carotated.conf"

/* Where the ledger lives: SQLite in the state directory, or a pool's PostgreSQL. */
enum config_ledger_backend {
	CONFIG_LEDGER_SQLITE,
	CONFIG_LEDGER_POSTGRESQL,
};

#define CONFIG_MEMBER_MAX 63 /* characters of [ledger] member */

enum config_gate {
	CONFIG_GATE_ACKNOWLEDGED,
	CONFIG_GATE_VERIFIED,
};

/* Where the post-reload TLS check connects: host:port or unix:PATH. */
struct config_address {
	int is_unix;
	char *path; /* is_unix: absolute socket path */
	char *host; /* !is_unix: IPv4 literal, IPv6 literal (without brackets) or host name */
	uint16_t port;
};

struct config {
	char *path; /* the file this was read from */

	/* [daemon] */
	char *socket;                 /* absolute path of the control socket */
	char *socket_group;           /* group that may read (status, report, backups) */
	char *admin_group;            /* group that may change state */
	char *state_dir;              /* absolute */
	unsigned max_clients;         /* concurrent control connections */
	unsigned max_clients_per_uid; /* of them, held by one non-admin uid */
	unsigned admin_reserved;      /* of them, only admins may take (< max_clients) */
	uint64_t audit_coalesce;      /* s: identical refusals within it share one audit record */
	unsigned request_timeout;     /* ms: a whole request must arrive within this */
	unsigned idle_timeout;        /* ms: a connection with no request in flight closes */
	size_t max_output;            /* bytes queued to one client before it is dropped */

	/* [ssl] */
	char *ssl_dir; /* absolute */
	char *ssl_ca;  /* plain file names inside ssl_dir */
	char *ssl_cert;
	char *ssl_key;

	/* [proxy] */
	char **proxy_names; /* DNS names and IP literals, in file order; none: use the host name */
	size_t n_proxy_names;
	char **reload_argv; /* NULL-terminated; argv[0] is an absolute path */
	size_t reload_argc;
	struct config_address proxy_address;
	struct config_address canary_address; /* where the canary listener is checked; unset:
	                                         host and path NULL */
	char *proxy_server_name; /* SNI for the check; default: first DNS name of names, else "" */
	unsigned check_timeout;  /* ms */
	unsigned reload_timeout; /* ms the reload command may run before it is killed */

	/* [agents] */
	char *agents_socket; /* absolute */
	char *agents_canary_socket;
	char *agents_user;
	char *agents_group;
	char *linking_key;      /* absolute; NULL: empty, only join tokens link */
	uint64_t active_within; /* seconds */
	enum config_gate gate;
	unsigned link_rate;      /* links accepted per second (token bucket), 429 beyond */
	unsigned max_agents;     /* a new agent id beyond this many is refused (403) */
	char *agents_canary_url; /* https URL announced in X-Carotate-Canary; NULL: none */

	/* [bundle] */
	uint64_t retention; /* seconds */

	/* [backups] */
	unsigned backups_keep;

	/* [renew] */
	uint64_t renew_before; /* s: the renew timer renews a server certificate expiring sooner */
	uint64_t ca_warn;      /* s: check and status warn of a CA expiring sooner */

	/* [metrics] */
	char *metrics_textfile; /* NULL when empty */

	/* [ledger] */
	enum config_ledger_backend ledger_backend;
	char *ledger_dsn_file; /* absolute; set exactly when the backend is postgresql */
	char *ledger_pool_key; /* absolute; set exactly when the backend is postgresql */
	char *ledger_member;   /* [A-Za-z0-9._-]{1,63}; default: the host name up to its first dot.
	                          NULL only with sqlite when that host name is not a valid name */
	/* s between a pool member's heartbeats; stale after CONFIG_HEARTBEAT_STALE of them */
	uint64_t ledger_heartbeat;
};
#define CONFIG_HEARTBEAT_STALE 3
/* Seconds after which a heartbeat every heartbeat seconds is stale (status, the rotate gate). */
int64_t config_stale_after(uint64_t heartbeat);

/*
 * Reads and validates path. On error returns NULL and writes
 * "path:line: what is wrong" (or "path: ..." when no line applies) into err.
 */
struct config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct config *);

/* Why s is not a valid DNS name for a certificate (NULL when it is). */
const char *config_dns_invalid(const char *s);
/* 1 when s is an IPv4 or IPv6 literal. */
int config_is_ip(const char *s);

#endif
