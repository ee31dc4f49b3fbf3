/* The certificate jobs' children (certjob.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certjob.h"
#include "config.h"
#include "internal.pb-c.h"
#include "pki.h"
#include "xmalloc.h"

static int certjob_send(int, const struct pki_material *, const char *);

/* The keys are wiped: the operator's server key, the CA key renew signs with. */
void
certjob_free(struct certjob *in)
{
	size_t i;

	if (in == NULL)
		return;
	for (i = 0; in->sans != NULL && i < in->profile.n_sans; i++)
		free(in->sans[i]);
	free(in->sans);
	free(in->name);
	free(in->ca);
	free(in->cert);
	if (in->key != NULL)
		explicit_bzero(in->key, in->key_len);
	free(in->key);
	free(in->chain);
	if (in->ca_key != NULL)
		xfreezero(in->ca_key, in->ca_key_len);
	X509_free(in->active_ca);
	free(in);
}

/* Serializes the child's result for the parent: one Material message, then exit. */
static int
certjob_send(int fd, const struct pki_material *m, const char *error)
{
	Carotate__Internal__Material msg = CAROTATE__INTERNAL__MATERIAL__INIT;
	uint8_t *buf;
	size_t len, off = 0;
	ssize_t n;

	if (error != NULL)
		msg.error = (char *)error;
	else {
		msg.ca.data = (uint8_t *)m->ca;
		msg.ca.len = strlen(m->ca);
		if (m->ca_key != NULL) {
			msg.ca_key.data = (uint8_t *)m->ca_key;
			msg.ca_key.len = strlen(m->ca_key);
		}
		msg.cert.data = (uint8_t *)m->cert;
		msg.cert.len = strlen(m->cert);
		msg.key.data = (uint8_t *)m->key;
		msg.key.len = strlen(m->key);
		msg.warnings = m->warnings;
		msg.n_warnings = m->n_warnings;
	}
	len = carotate__internal__material__get_packed_size(&msg);
	buf = xmalloc(len + 1);
	carotate__internal__material__pack(&msg, buf);
	while (off < len && (n = write(fd, buf + off, len - off)) > 0)
		off += (size_t)n;
	explicit_bzero(buf, len);
	free(buf);
	return off == len ? 0 : 1;
}

int
certjob_generate(void *arg, int fd)
{
	struct certjob *in = arg;
	struct pki_material m = { 0 };
	char err[512];
	int r;

	in->profile.sans = in->sans;
	in->profile.now = time(NULL);
	if (pki_generate(&in->profile, &m, err, sizeof(err)) == -1)
		return certjob_send(fd, NULL, err);
	r = certjob_send(fd, &m, NULL);
	pki_material_clear(&m);
	return r;
}

int
certjob_install(void *arg, int fd)
{
	struct certjob *in = arg;
	const struct config *conf = in->conf;
	struct pki_custom custom = { in->ca, in->cert, in->key, in->chain, in->ca_len, in->cert_len,
		in->key_len, in->chain_len };
	struct pki_policy policy = { conf->proxy_names, conf->n_proxy_names, in->active_ca,
		time(NULL), 0 };
	struct pki_material m = { 0 };
	char err[512];
	int r;

	if (pki_validate_custom(&custom, &policy, &m, err, sizeof(err)) == -1)
		return certjob_send(fd, NULL, err);
	r = certjob_send(fd, &m, NULL);
	pki_material_clear(&m);
	return r;
}

int
certjob_renew(void *arg, int fd)
{
	struct certjob *in = arg;
	const struct config *conf = in->conf;
	struct pki_renewal rn = { in->ca, in->ca_key, in->ca_len, in->ca_key_len,
		in->profile.server_days, in->sans, in->profile.n_sans, time(NULL) };
	struct pki_custom custom = { in->ca, in->cert, in->key, in->chain, in->ca_len, in->cert_len,
		in->key_len, in->chain_len };
	struct pki_policy policy = { conf->proxy_names, conf->n_proxy_names, in->active_ca,
		time(NULL), 1 };
	struct pki_material m = { 0 };
	char err[512];
	int r;

	if ((in->ca_key != NULL
	            ? pki_renew(&rn, &m, err, sizeof(err))
	            : pki_validate_custom(&custom, &policy, &m, err, sizeof(err))) == -1)
		return certjob_send(fd, NULL, err);
	r = certjob_send(fd, &m, NULL);
	pki_material_clear(&m);
	return r;
}
