/*
 * The hook: argv from the `hook` key (no shell), run after the bundle changed, with stdin
 * on /dev/null, every descriptor above 2 closed, a three-variable environment, and a
 * deadline after which its whole process group is killed.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "xmalloc.h"

#define HOOK_MAX_ARGS 64
#define HOOK_PATH     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void hook_child(char *const argv[], const char *bundle, const char *id, int errfd)
    __attribute__((noreturn));
static int hook_wait(pid_t, uint64_t timeout_ms, int *status);

int
hook_split(const char *s, char ***argvp, char *why, size_t whylen)
{
	char **argv = xcalloc(HOOK_MAX_ARGS + 1, sizeof(*argv));
	char *word = xmalloc(strlen(s) + 1);
	int argc = 0, quoted, have;
	size_t n;

	while (*s != '\0') {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		n = 0;
		quoted = have = 0;
		for (; *s != '\0' && (quoted || (*s != ' ' && *s != '\t')); s++) {
			if (*s == '"') {
				quoted = !quoted;
				have = 1;
			} else if ((unsigned char)*s < 0x20) {
				snprintf(why, whylen, "hook: control character");
				goto fail;
			} else
				word[n++] = *s;
		}
		if (quoted) {
			snprintf(why, whylen, "hook: unterminated double quote");
			goto fail;
		}
		if (n == 0 && !have)
			continue;
		if (argc == HOOK_MAX_ARGS) {
			snprintf(why, whylen, "hook: more than %d words", HOOK_MAX_ARGS);
			goto fail;
		}
		argv[argc++] = xstrndup(word, n);
	}
	free(word);
	if (argc == 0) {
		snprintf(why, whylen, "hook: empty");
		hook_free(argv);
		return -1;
	}
	if (argv[0][0] != '/') {
		snprintf(why, whylen, "hook: the program must be an absolute path");
		hook_free(argv);
		return -1;
	}
	*argvp = argv;
	return 0;
fail:
	free(word);
	hook_free(argv);
	return -1;
}

void
hook_free(char **argv)
{
	char **p;

	if (argv == NULL)
		return;
	for (p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

/* In the child: errno of a failed exec goes back through errfd (close-on-exec). */
static void
hook_child(char *const argv[], const char *bundle, const char *id, int errfd)
{
	char *env[4];
	int fd, e;

	(void)setpgid(0, 0);
	if ((fd = open("/dev/null", O_RDONLY)) == -1 || dup2(fd, 0) == -1)
		goto fail;
	if (errfd != 3 && (dup2(errfd, 3) == -1 || fcntl(3, F_SETFD, FD_CLOEXEC) == -1))
		goto fail;
	if (close_range(4, ~0U, 0) == -1)
		goto fail;
	env[0] = (char *)"PATH=" HOOK_PATH;
	if (asprintf(&env[1], "CAROTATE_BUNDLE=%s", bundle) == -1 ||
	    asprintf(&env[2], "CAROTATE_BUNDLE_ID=%s", id) == -1)
		goto fail;
	env[3] = NULL;
	execve(argv[0], argv, env);
fail:
	e = errno;
	(void)!write(3, &e, sizeof(e));
	_exit(127);
}

/* 0 with *status, or 1 when the deadline passed (the group is killed and reaped). */
static int
hook_wait(pid_t pid, uint64_t timeout_ms, int *status)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	uint64_t waited = 0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r == -1 && errno != EINTR)
			return 0;
		if (waited >= timeout_ms)
			break;
		nanosleep(&tick, NULL);
		waited += 10;
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) == -1 && errno == EINTR)
		;
	return 1;
}

int
hook_run(char *const argv[], const char *bundle, const char *bundle_id, uint64_t timeout_ms,
    char *why, size_t whylen)
{
	int pfd[2], status = 0, e = 0;
	pid_t pid;
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC) == -1) {
		snprintf(why, whylen, "hook: pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		snprintf(why, whylen, "hook: fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		hook_child(argv, bundle, bundle_id, pfd[1]);
	}
	close(pfd[1]);
	if (hook_wait(pid, timeout_ms, &status) == 1) {
		close(pfd[0]);
		snprintf(why, whylen, "hook %s: killed after %llu s", argv[0],
		    (unsigned long long)(timeout_ms / 1000));
		return -1;
	}
	while ((n = read(pfd[0], &e, sizeof(e))) == -1 && errno == EINTR)
		;
	close(pfd[0]);
	if (n == (ssize_t)sizeof(e))
		snprintf(why, whylen, "hook %s: cannot run: %s", argv[0], strerror(e));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	else if (WIFEXITED(status))
		snprintf(why, whylen, "hook %s failed: exit %d", argv[0], WEXITSTATUS(status));
	else
		snprintf(why, whylen, "hook %s failed: signal %d", argv[0],
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return -1;
}
