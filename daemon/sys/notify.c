/*
 * The service manager's readiness protocol: one datagram of "KEY=value"
 * lines to the Unix socket named by $NOTIFY_SOCKET (a path, or "@name" for
 * the abstract namespace). The unit is Type=notify so that READY=1, sent
 * once an interrupted swap has been finished or undone and every socket
 * listens, is what lets units ordered after carotated (nginx) start.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen; /* 0: not started by a service manager */

void
notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	if (path == NULL || *path == '\0')
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify_addr.sun_path))
		log_warnx("NOTIFY_SOCKET=%s is not a socket path: readiness is not reported", path);
	else {
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, path, len);
		if (path[0] == '@')
			notify_addr.sun_path[0] = '\0';
		notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	unsetenv("NOTIFY_SOCKET");
}

void
notify_send(const char *state)
{
	int fd;

	if (notify_addrlen == 0)
		return;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("%s: socket", __func__);
		return;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
	        notify_addrlen) == -1)
		log_warn("cannot tell the service manager %s", state);
	close(fd);
}
