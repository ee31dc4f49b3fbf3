#include <stdint.h>

#include "duration.h"

#define DURATION_SEC  1000ULL
#define DURATION_MIN  (60 * DURATION_SEC)
#define DURATION_HOUR (60 * DURATION_MIN)
#define DURATION_DAY  (24 * DURATION_HOUR)

int
duration_parse_ms(const char *s, uint64_t *ms, const char **why)
{
	const char *p;
	uint64_t n = 0, unit;

	*why = "is not a duration (expected digits and an optional s, m, h or d suffix)";
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) {
			*why = "is too large";
			return -1;
		}
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return -1;
	switch (*p) {
	case '\0':
	case 's':
		unit = DURATION_SEC;
		break;
	case 'm':
		unit = DURATION_MIN;
		break;
	case 'h':
		unit = DURATION_HOUR;
		break;
	case 'd':
		unit = DURATION_DAY;
		break;
	default:
		return -1;
	}
	if (*p != '\0' && p[1] != '\0')
		return -1;
	if (n > UINT64_MAX / unit) {
		*why = "is too large";
		return -1;
	}
	*ms = n * unit;
	return 0;
}
