/*
 * A scratch daemon state for the unit tests that run the daemon's handlers
 * or its audit log: a temporary directory with ssl/ and state/, a
 * configuration naming them, generated certificate sets written as carotated
 * writes them, and the audit records the ledger there holds.
 */
#ifndef CAROTATE_FIXTURE_H
#define CAROTATE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ledger.h"
#include "pki.h"

struct fixture {
	char base[64]; /* the temporary directory */
	char ssl[300], statedir[300], confpath[300];
	char sockpath[100]; /* fits sun_path */
};

/*
 * Makes root/carotate-test-<name>-XXXXXX with ssl/ and state/, and a
 * configuration (control socket base/control.sock, reload /bin/true) loaded
 * into *conf. -1 on failure, said on stderr.
 */
int fixture_init(struct fixture *, const char *root, const char *name, struct config **conf);
/* Removes the temporary directory and all below it; -1 on failure. */
int fixture_remove(const struct fixture *);
void fixture_write_text(const char *path, const char *text);
/*
 * A generated EC set named name: dir/ca.crt, dir/server.crt and, with_key,
 * dir/server.key. ca_sha and srv_sha (either may be NULL) get the SHA-256
 * of its CA and of its server certificate.
 */
void fixture_write_set(const char *dir, const char *name, int with_key, char ca_sha[PKI_SHA256_HEX],
    char srv_sha[PKI_SHA256_HEX]);

/* The audit record offset places below the newest, which must exist. */
struct ledger_audit fixture_audit_at(struct ledger *, uint64_t offset);
/* How many records the audit log holds. */
uint64_t fixture_audit_count(struct ledger *);
/* The name of the user running the test ("" when the uid has none), as audit records it. */
void fixture_user_name(char *buf, size_t len);

#endif
