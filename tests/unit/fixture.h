/*
 * A scratch daemon state for the unit tests that run the daemon's handlers:
 * a temporary directory with ssl/ and state/, a configuration naming them,
 * and generated certificate sets written as carotated writes them.
 */
#ifndef CAROTATE_FIXTURE_H
#define CAROTATE_FIXTURE_H

#include "config.h"
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

#endif
