/*
 * hubctl: the operator's CLI. main.c parses the global options and hands the
 * rest of argv to one command family. Each `*_main` takes argv starting at the
 * family name (argv[0] == "cert") and returns the process exit status:
 * 0 success, 1 the operation said no (e.g. a chain is invalid, the hub's API
 * refused), 2 usage, I/O or connection error.
 */
#ifndef HUB_HUBCTL_H
#define HUB_HUBCTL_H

#include <stddef.h>
#include <stdio.h>

enum hubctl_exit { HUBCTL_OK = 0, HUBCTL_FAIL = 1, HUBCTL_USAGE = 2 };

/* Global options, resolved by main (command line first, then environment). Strings
 * are borrowed from argv/environ and live for the whole process. */
struct hubctl_globals {
    const char *connection_string; /* --connection-string / HUB_CONNECTION_STRING; NULL if none */
    const char *cafile;            /* --cafile / HUB_CAFILE; NULL: system trust store */
    const char *host;              /* --host: connect here instead of HostName; NULL if none */
    unsigned port;                 /* --port / HUB_PORT; 443 by default */
    int json;                      /* --json: print the API's JSON */
    /* --dps-connection-string / HUB_DPS_CONNECTION_STRING: the provisioning
     * service's policy string; NULL if none */
    const char *dps_connection_string;
};

/* One subcommand of a service-API family (`hubctl device create ...`). */
struct hubctl_subcommand {
    const char *name;
    int (*run)(const struct hubctl_globals *g, int argc, char **argv); /* argv[0] == name */
};

/* Runs the subcommand named by argv[1] of `family` (argv[0]), or prints
 * usage (to stdout for -h/--help/help, exit 0; to stderr otherwise, exit 2). */
int hubctl_subcommand_dispatch(const char *family, const struct hubctl_subcommand *subs,
                               size_t count, void (*usage)(FILE *out),
                               const struct hubctl_globals *g, int argc, char **argv);

/* `hubctl cert root|intermediate|device|verification|server|thumbprint|check ...` */
int hubctl_cert_main(int argc, char **argv);
/* `hubctl cert check ...` (argv[0] == "check"); called by hubctl_cert_main. */
int hubctl_cert_check_main(int argc, char **argv);

/* `hubctl ca upload|code|verify|list|show|delete ...` (argv[0] == "ca"). */
int hubctl_ca_main(const struct hubctl_globals *g, int argc, char **argv);
/* `hubctl device create|show|list|delete|update ...` (argv[0] == "device"). */
int hubctl_device_main(const struct hubctl_globals *g, int argc, char **argv);
/* `hubctl c2d send|purge|feedback ...` (argv[0] == "c2d"): cloud-to-device messages. */
int hubctl_c2d_main(const struct hubctl_globals *g, int argc, char **argv);
/* `hubctl monitor [...]` (argv[0] == "monitor"): print telemetry as it arrives. */
int hubctl_monitor_main(const struct hubctl_globals *g, int argc, char **argv);
/* `hubctl twin show|update ...` (argv[0] == "twin"): device twins. */
int hubctl_twin_main(const struct hubctl_globals *g, int argc, char **argv);
/* `hubctl method invoke ...` (argv[0] == "method"): direct methods. */
int hubctl_method_main(const struct hubctl_globals *g, int argc, char **argv);
/* `hubctl dps group|enrollment|registration|key|register ...` (argv[0] == "dps"):
 * the Device Provisioning Service (cmd_dps.c; `register` in cmd_dps_register.c). */
int hubctl_dps_main(const struct hubctl_globals *g, int argc, char **argv);
/* `hubctl dps register ...` (argv[0] == "register"): a device's registration. */
int hubctl_dps_register_main(const struct hubctl_globals *g, int argc, char **argv);

#endif
