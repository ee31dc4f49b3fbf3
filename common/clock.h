/* A monotonic clock in milliseconds, for deadlines. */
#ifndef CAROTATE_CLOCK_H
#define CAROTATE_CLOCK_H

long long clock_ms(void);

#endif
