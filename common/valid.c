#include <string.h>

#include "valid.h"

int
valid_agent_id(const char *s, size_t len)
{
	size_t i;

	if (s == NULL || len == 0 || len > LIMITS_MAX_AGENT_ID)
		return 0;
	/* Not strspn: a NUL inside len would end the scan early and pass the rest unread. */
	for (i = 0; i < len; i++)
		if (s[i] == '\0' || strchr(VALID_AGENT_ID_CHARS, s[i]) == NULL)
			return 0;
	return 1;
}
