/* Logging: stderr in the foreground, syslog otherwise. */
#ifndef CAROTATE_LOG_H
#define CAROTATE_LOG_H

#include <stdarg.h>

void log_init(int foreground, int verbose, const char *ident);
void log_setverbose(int verbose);
int log_getverbose(void);
/* The exit status of fatal() and fatalx() (default 1). */
void log_set_exit_status(int);
void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Debug lines name the function they come from. */
#define log_debugf(fmt, ...) log_debug("%s: " fmt, __func__, ##__VA_ARGS__)

#endif
