#include <ctype.h>
#include <string.h>

#include "backupid.h"

int
backupid_valid(const char *s)
{
	static const char pat[] = "certs-DDDDDDDD-DDDDDD";
	size_t i, n;

	if (s == NULL || strnlen(s, BACKUP_ID_MAX) >= BACKUP_ID_MAX)
		return 0;
	for (i = 0; pat[i] != '\0'; i++)
		if (pat[i] == 'D' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
			return 0;
	if (s[i] == '\0')
		return 1;
	/* -N: no leading zero, at most three digits. */
	if (s[i] != '-' || s[i + 1] < '1' || s[i + 1] > '9')
		return 0;
	for (n = 0, i++; s[i] != '\0'; i++, n++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return n <= 3;
}
