#include <stdio.h>
#include <string.h>

#include "hubctl/hubctl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: hubctl [global options] COMMAND ...\n"
                 "\n"
                 "commands:\n"
                 "  cert     make test PKIs, print thumbprints, check chains (hubctl cert --help)\n"
                 "\n"
                 "global options:\n"
                 "  -h, --help   this text\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return HUBCTL_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return HUBCTL_OK;
    }
    if (strcmp(argv[1], "cert") == 0)
        return hubctl_cert_main(argc - 1, argv + 1);
    fprintf(stderr, "hubctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return HUBCTL_USAGE;
}
