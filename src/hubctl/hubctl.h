/*
 * hubctl: the operator's CLI. main.c parses the global options and hands the
 * rest of argv to one command family. Each `*_main` takes argv starting at the
 * family name (argv[0] == "cert") and returns the process exit status:
 * 0 success, 1 the operation said no (e.g. a chain is invalid), 2 usage or I/O error.
 */
#ifndef HUB_HUBCTL_H
#define HUB_HUBCTL_H

enum hubctl_exit { HUBCTL_OK = 0, HUBCTL_FAIL = 1, HUBCTL_USAGE = 2 };

/* `hubctl cert root|intermediate|device|verification|server|thumbprint|check ...` */
int hubctl_cert_main(int argc, char **argv);
/* `hubctl cert check ...` (argv[0] == "check"); called by hubctl_cert_main. */
int hubctl_cert_check_main(int argc, char **argv);

#endif
