/* The scratch daemon state of test_audit, test_dispatch and test_mutate (fixture.h). */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"
#include "fixture_pki.h"

int
fixture_init(struct fixture *fx, const char *root, const char *name, struct config **conf)
{
	char text[2048], err[512];

	snprintf(fx->base, sizeof(fx->base), "%s/carotate-test-%s-XXXXXX", root, name);
	if (mkdtemp(fx->base) == NULL)
		return -1;
	snprintf(fx->ssl, sizeof(fx->ssl), "%s/ssl", fx->base);
	snprintf(fx->statedir, sizeof(fx->statedir), "%s/state", fx->base);
	snprintf(fx->confpath, sizeof(fx->confpath), "%s/carotated.conf", fx->base);
	snprintf(fx->sockpath, sizeof(fx->sockpath), "%s/control.sock", fx->base);
	if (mkdir(fx->ssl, 0755) == -1 || mkdir(fx->statedir, 0700) == -1)
		return -1;
	snprintf(text, sizeof(text),
	    "[daemon]\nsocket = %s\nstate_dir = %s\n"
	    "[ssl]\ndir = %s\n"
	    "[proxy]\nnames = proxy.test\nreload = /bin/true\n"
	    "[agents]\nlinking_key = %s/linking.key\n",
	    fx->sockpath, fx->statedir, fx->ssl, fx->base);
	fixture_write_text(fx->confpath, text);
	if ((*conf = config_load(fx->confpath, err, sizeof(err))) == NULL) {
		print_error("config_load: %s\n", err);
		return -1;
	}
	return 0;
}

int
fixture_remove(const struct fixture *fx)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->base);
	return system(cmd) == 0 ? 0 : -1;
}

void
fixture_write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

void
fixture_write_set(const char *dir, const char *name, int with_key, char ca_sha[PKI_SHA256_HEX],
    char srv_sha[PKI_SHA256_HEX])
{
	struct pki_material m;
	char path[400];

	if (fixture_pki_generate(name, 3650, 397, time(NULL), &m) != 0)
		fail_msg("fixture_write_set: no set generated");
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	fixture_write_text(path, m.ca);
	snprintf(path, sizeof(path), "%s/server.crt", dir);
	fixture_write_text(path, m.cert);
	if (with_key) {
		snprintf(path, sizeof(path), "%s/server.key", dir);
		fixture_write_text(path, m.key);
	}
	if (ca_sha != NULL)
		fixture_pki_sha(m.ca, ca_sha);
	if (srv_sha != NULL)
		fixture_pki_sha(m.cert, srv_sha);
	pki_material_clear(&m);
}

struct fixture_audit_page {
	struct ledger_audit rec;
	size_t n;
};

static void
fixture_audit_keep(const struct ledger_audit *a, void *arg)
{
	struct fixture_audit_page *p = arg;

	p->rec = *a;
	p->n++;
}

struct ledger_audit
fixture_audit_at(struct ledger *l, uint64_t offset)
{
	struct fixture_audit_page p = { .n = 0 };

	assert_non_null(l);
	assert_int_equal(ledger_audit_list(l, offset, 1, fixture_audit_keep, &p), 0);
	assert_int_equal(p.n, 1);
	return p.rec;
}

uint64_t
fixture_audit_count(struct ledger *l)
{
	uint64_t n;

	assert_non_null(l);
	assert_int_equal(ledger_audit_count(l, &n), 0);
	return n;
}

void
fixture_user_name(char *buf, size_t len)
{
	struct passwd *pw = getpwuid(getuid());

	snprintf(buf, len, "%s", pw != NULL ? pw->pw_name : "");
}
