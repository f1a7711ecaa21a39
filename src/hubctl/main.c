/*
 * hubctl's entry point: global options (before the command), then one
 * command family. Each option falls back to an environment variable, so
 * scripts can set the hub once:
 *
 *   --connection-string S   HUB_CONNECTION_STRING   service policy connection string
 *   --dps-connection-string S
 *                           HUB_DPS_CONNECTION_STRING  the provisioning service's (hubctl dps)
 *   --cafile FILE           HUB_CAFILE              the hub's TLS CA (default: system store)
 *   --port N                HUB_PORT                HTTPS port of the service API (443)
 *   --host ADDR                                     connect to ADDR instead of HostName
 *   --json                                          print the API's JSON
 *
 * Options take "--opt VALUE" or "--opt=VALUE". The command line wins over the
 * environment. `hubctl cert ...` needs none of them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/hubctl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hubctl [global options] COMMAND ...\n"
            "\n"
            "commands:\n"
            "  cert     make test PKIs, print thumbprints, check chains (hubctl cert --help)\n"
            "  ca       upload and verify the hub's CA certificates (hubctl ca --help)\n"
            "  device   create, list, show, update, delete devices (hubctl device --help)\n"
            "  c2d      send cloud-to-device messages, purge queues, read delivery feedback\n"
            "           (hubctl c2d --help)\n"
            "  monitor  print device-to-cloud messages as they arrive (hubctl monitor --help)\n"
            "  twin     show and update device twins (hubctl twin --help)\n"
            "  method   invoke a direct method on a device (hubctl method --help)\n"
            "  dps      the Device Provisioning Service: enrollment groups, enrollments,\n"
            "           registrations, and a device's registration (hubctl dps --help)\n"
            "\n"
            "global options (before COMMAND; each but --host and --json also from the\n"
            "environment variable shown):\n"
            "  --connection-string S  service connection string\n"
            "                         HostName=...;SharedAccessKeyName=...;SharedAccessKey=...\n"
            "                         [HUB_CONNECTION_STRING]\n"
            "  --dps-connection-string S\n"
            "                         the provisioning service's connection string, for\n"
            "                         hubctl dps (hubd prints it as \"DPS connection:\")\n"
            "                         [HUB_DPS_CONNECTION_STRING]\n"
            "  --cafile FILE          CA certificate(s) that issued the hub's TLS certificate;\n"
            "                         default: the system trust store [HUB_CAFILE]\n"
            "  --port N               HTTPS port of the service API, default 443 [HUB_PORT]\n"
            "  --host ADDR            connect to ADDR (name, IPv4, IPv6) instead of HostName;\n"
            "                         the certificate must still match HostName\n"
            "  --json                 print the API's JSON instead of text\n"
            "  -h, --help             this text\n"
            "\n"
            "Exit status: 0 success, 1 the hub refused (its error is printed), 2 usage,\n"
            "I/O or connection error.\n");
}

static int parse_port(const char *s, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v == 0 || v > 65535)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Matches "--name VALUE" / "--name=VALUE" at argv[*i]; advances *i past the value. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        *value = NULL; /* missing: the caller reports it */
        return 1;
    }
    *value = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    /* A hub that closes mid-request must yield an error, not kill us (TLS writes). */
    signal(SIGPIPE, SIG_IGN);

    struct hubctl_globals g = {.port = 443};
    const char *port = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return HUBCTL_OK;
        }
        if (strcmp(a, "--json") == 0) {
            g.json = 1;
            continue;
        }
        if (opt_value(argc, argv, &i, "--connection-string", &v))
            g.connection_string = v;
        else if (opt_value(argc, argv, &i, "--dps-connection-string", &v))
            g.dps_connection_string = v;
        else if (opt_value(argc, argv, &i, "--cafile", &v))
            g.cafile = v;
        else if (opt_value(argc, argv, &i, "--port", &v))
            port = v;
        else if (opt_value(argc, argv, &i, "--host", &v))
            g.host = v;
        else {
            fprintf(stderr, "hubctl: unknown global option '%s'\n", a);
            usage(stderr);
            return HUBCTL_USAGE;
        }
        if (v == NULL || v[0] == '\0') {
            fprintf(stderr, "hubctl: %s needs a value\n", a);
            return HUBCTL_USAGE;
        }
    }
    if (g.connection_string == NULL)
        g.connection_string = getenv("HUB_CONNECTION_STRING");
    if (g.dps_connection_string == NULL)
        g.dps_connection_string = getenv("HUB_DPS_CONNECTION_STRING");
    if (g.cafile == NULL && getenv("HUB_CAFILE") != NULL && getenv("HUB_CAFILE")[0] != '\0')
        g.cafile = getenv("HUB_CAFILE");
    if (port == NULL && getenv("HUB_PORT") != NULL && getenv("HUB_PORT")[0] != '\0')
        port = getenv("HUB_PORT");

    if (i >= argc) {
        usage(stderr);
        return HUBCTL_USAGE;
    }
    const char *cmd = argv[i];
    /* cert is offline: a stray HUB_PORT must not break it. */
    if (strcmp(cmd, "cert") == 0)
        return hubctl_cert_main(argc - i, argv + i);
    if (port != NULL && parse_port(port, &g.port) < 0) {
        fprintf(stderr, "hubctl: invalid port '%s' (1..65535)\n", port);
        return HUBCTL_USAGE;
    }
    if (strcmp(cmd, "ca") == 0)
        return hubctl_ca_main(&g, argc - i, argv + i);
    if (strcmp(cmd, "device") == 0)
        return hubctl_device_main(&g, argc - i, argv + i);
    if (strcmp(cmd, "c2d") == 0)
        return hubctl_c2d_main(&g, argc - i, argv + i);
    if (strcmp(cmd, "monitor") == 0)
        return hubctl_monitor_main(&g, argc - i, argv + i);
    if (strcmp(cmd, "twin") == 0)
        return hubctl_twin_main(&g, argc - i, argv + i);
    if (strcmp(cmd, "method") == 0)
        return hubctl_method_main(&g, argc - i, argv + i);
    if (strcmp(cmd, "dps") == 0)
        return hubctl_dps_main(&g, argc - i, argv + i);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return HUBCTL_OK;
    }
    fprintf(stderr, "hubctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return HUBCTL_USAGE;
}
