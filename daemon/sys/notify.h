/* Readiness for the service manager (systemd's Type=notify), without libsystemd. */
#ifndef CAROTATE_NOTIFY_H
#define CAROTATE_NOTIFY_H

/* Takes $NOTIFY_SOCKET out of the environment, so that no child inherits it. */
void notify_init(void);
/* Sends one state ("READY=1", "STOPPING=1") when started by a service manager. */
void notify_send(const char *state);

#endif
