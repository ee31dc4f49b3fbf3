#include <ctype.h>
#include <string.h>

#include "backupid.h"

int
backupid_match(const char *s, const char *prefix, unsigned *suffix)
{
	static const char stamp[] = "DDDDDDDD-DDDDDD";
	size_t i, n, plen = strlen(prefix);
	unsigned v = 0;

	if (suffix != NULL)
		*suffix = 0;
	if (s == NULL || strnlen(s, BACKUP_ID_MAX) >= BACKUP_ID_MAX ||
	    strncmp(s, prefix, plen) != 0)
		return 0;
	s += plen;
	for (i = 0; stamp[i] != '\0'; i++)
		if (stamp[i] == 'D' ? !isdigit((unsigned char)s[i]) : s[i] != stamp[i])
			return 0;
	if (s[i] == '\0')
		return 1;
	/* -N: no leading zero, at most three digits. */
	if (s[i] != '-' || s[i + 1] < '1' || s[i + 1] > '9')
		return 0;
	for (n = 0, i++; s[i] != '\0'; i++, n++) {
		if (!isdigit((unsigned char)s[i]) || n == 3)
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (suffix != NULL)
		*suffix = v;
	return 1;
}

int
backupid_valid(const char *s)
{
	return backupid_match(s, BACKUPID_CERTS, NULL);
}
