/* Logging in the style of OpenBSD daemons: one call per line, errno added by *_warn. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static int log_foreground = 1;
static int log_verbose;
static const char *log_ident = "carotate";
static int log_exit_status = 1;

static void log_emit(int, int, const char *, va_list) __attribute__((format(printf, 3, 0)));

void
log_init(int foreground, int verbose, const char *ident)
{
	log_foreground = foreground;
	log_verbose = verbose;
	if (ident != NULL)
		log_ident = ident;
	if (!foreground)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
}

void
log_set_exit_status(int status)
{
	log_exit_status = status;
}

int
log_getverbose(void)
{
	return log_verbose;
}

/* Formats one line; appends strerror(errnum) when errnum is not zero. Keeps errno. */
static void
log_emit(int pri, int errnum, const char *fmt, va_list ap)
{
	char buf[2048];
	int saved = errno;

	vsnprintf(buf, sizeof(buf), fmt, ap);
#ifdef CAROTATE_FUZZ
	/* Fuzz targets format every line but print none unless asked: millions of inputs. */
	if (getenv("CAROTATE_FUZZ_LOG") == NULL) {
		errno = saved;
		return;
	}
#endif
	if (log_foreground) {
		if (errnum != 0)
			fprintf(stderr, "%s: %s: %s\n", log_ident, buf, strerror(errnum));
		else
			fprintf(stderr, "%s: %s\n", log_ident, buf);
		fflush(stderr);
	} else if (errnum != 0)
		syslog(pri, "%s: %s", buf, strerror(errnum));
	else
		syslog(pri, "%s", buf);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int errnum = errno;

	va_start(ap, fmt);
	log_emit(LOG_ERR, errnum, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_ERR, 0, fmt, ap);
	va_end(ap);
}

/* Significant events an operator keeps (the audit log): above info, below errors. */
void
log_notice(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_NOTICE, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int errnum = errno;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, errnum, fmt, ap);
	va_end(ap);
	exit(log_exit_status);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(log_exit_status);
}
