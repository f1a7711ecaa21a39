/* hubd's life: configuration, start-up, serving until a signal, clean stop. */
#ifndef HUB_HUBD_DAEMON_H
#define HUB_HUBD_DAEMON_H

/* The whole daemon; returns the process exit status (0 after a clean stop,
 * 1 when start-up failed, 2 for a configuration error). */
int hub_daemon_main(int argc, char **argv);

#endif
