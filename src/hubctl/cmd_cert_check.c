/*
 * `hubctl cert check`: runs the hub's own chain validation policy
 * (hub_pki_chain_verify) on a device chain, so operators and external test
 * suites see exactly what a device connection would see.
 *
 *   hubctl cert check --trusted CAS.pem [--untrusted CHAIN.pem] [--at UNIX_SECONDS]
 *                     [--eku clientAuth|serverAuth|any|none] [--max-depth N]
 *                     [--device-id ID] LEAF.pem
 *
 * Prints "valid" and exits 0, or prints the reason and exits 1; exit 2 for
 * usage and I/O errors. External suites depend on this interface: keep it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hubctl/hubctl.h"
#include "pki/pki.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: hubctl cert check --trusted CAS.pem [--untrusted CHAIN.pem]\n"
        "                         [--at UNIX_SECONDS] [--eku clientAuth|serverAuth|any|none]\n"
        "                         [--max-depth N] [--device-id ID] LEAF.pem\n"
        "\n"
        "Validates LEAF.pem with the hub's chain validation policy (docs/security.md).\n"
        "LEAF.pem may hold the leaf followed by intermediates (a device chain file).\n"
        "\n"
        "  --trusted FILE     trusted CA certificates; every one is a trust anchor (required)\n"
        "  --untrusted FILE   extra intermediates presented by the device\n"
        "  --at SECONDS       validation time, Unix seconds (default: now)\n"
        "  --eku NAME         required leaf purpose: clientAuth (default), serverAuth,\n"
        "                     any (anyExtendedKeyUsage) or none\n"
        "  --max-depth N      most intermediates between leaf and anchor (default 8)\n"
        "  --device-id ID     also require the leaf's subject CN to equal ID\n"
        "  -h, --help         this text\n"
        "\n"
        "Prints 'valid' and exits 0, or the reason and exits 1; exit 2 on usage or I/O errors.\n");
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_eku(const char *s, enum hub_pki_eku *out)
{
    static const struct {
        const char *name;
        enum hub_pki_eku eku;
    } names[] = {
        {"clientAuth", HUB_PKI_EKU_CLIENT_AUTH},
        {"serverAuth", HUB_PKI_EKU_SERVER_AUTH},
        {"any", HUB_PKI_EKU_ANY},
        {"anyExtendedKeyUsage", HUB_PKI_EKU_ANY},
        {"none", HUB_PKI_EKU_NONE},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].eku;
            return 0;
        }
    }
    return -1;
}

struct check_args {
    const char *trusted_path;
    const char *untrusted_path;
    const char *leaf_path;
    const char *device_id;
    struct hub_pki_verify_opts opts;
};

/* 0 ok, 1 --help printed, -1 usage error (message already printed). */
static int parse_args(int argc, char **argv, struct check_args *a)
{
    enum { OPT_TRUSTED = 1, OPT_UNTRUSTED, OPT_AT, OPT_EKU, OPT_MAX_DEPTH, OPT_DEVICE_ID };
    static const struct option longopts[] = {
        {"trusted", required_argument, NULL, OPT_TRUSTED},
        {"untrusted", required_argument, NULL, OPT_UNTRUSTED},
        {"at", required_argument, NULL, OPT_AT},
        {"eku", required_argument, NULL, OPT_EKU},
        {"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
        {"device-id", required_argument, NULL, OPT_DEVICE_ID},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->opts.at = (int64_t)time(NULL);
    a->opts.eku = HUB_PKI_EKU_CLIENT_AUTH;
    a->opts.max_depth = -1;

    optind = 0; /* glibc: full reset, argv may differ from the previous call */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        int64_t v;
        switch (c) {
        case OPT_TRUSTED:
            a->trusted_path = optarg;
            break;
        case OPT_UNTRUSTED:
            a->untrusted_path = optarg;
            break;
        case OPT_AT:
            if (parse_i64(optarg, &v) != 0) {
                fprintf(stderr, "hubctl cert check: --at wants Unix seconds, got '%s'\n", optarg);
                return -1;
            }
            a->opts.at = v;
            break;
        case OPT_EKU:
            if (parse_eku(optarg, &a->opts.eku) != 0) {
                fprintf(stderr,
                        "hubctl cert check: --eku wants clientAuth, serverAuth, any or none, "
                        "got '%s'\n",
                        optarg);
                return -1;
            }
            break;
        case OPT_MAX_DEPTH:
            if (parse_i64(optarg, &v) != 0 || v < 0) {
                fprintf(stderr, "hubctl cert check: --max-depth wants N >= 0, got '%s'\n", optarg);
                return -1;
            }
            /* The policy never builds paths longer than its hard cap, so a
             * larger limit means the same as the cap. */
            a->opts.max_depth = v > HUB_PKI_VERIFY_MAX_DEPTH ? HUB_PKI_VERIFY_MAX_DEPTH : (int)v;
            break;
        case OPT_DEVICE_ID:
            a->device_id = optarg;
            break;
        case 'h':
            return 1;
        default:
            if (optopt != 0)
                fprintf(stderr, "hubctl cert check: option -%c: unknown or missing argument\n",
                        optopt);
            else
                fprintf(stderr, "hubctl cert check: unknown option or missing argument: '%s'\n",
                        argv[optind - 1]);
            return -1;
        }
    }
    if (a->trusted_path == NULL) {
        fprintf(stderr, "hubctl cert check: --trusted is required\n");
        return -1;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "hubctl cert check: expected exactly one LEAF.pem argument\n");
        return -1;
    }
    a->leaf_path = argv[optind];
    return 0;
}

static int load_certs(const char *path, const char *what, STACK_OF(X509) * *out_new)
{
    struct hub_err err = {0};
    if (hub_pki_certs_load_file(path, out_new, &err) != 0) {
        fprintf(stderr, "hubctl cert check: %s %s: %s (%s)\n", what, path, err.msg,
                hub_err_name(err.code));
        return -1;
    }
    return 0;
}

int hubctl_cert_check_main(int argc, char **argv)
{
    struct check_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc == 1) {
        usage(stdout);
        return HUBCTL_OK;
    }
    if (prc != 0) {
        usage(stderr);
        return HUBCTL_USAGE;
    }

    int rc = HUBCTL_USAGE;
    STACK_OF(X509) *trusted = NULL, *untrusted = NULL, *leaf_chain = NULL;
    struct hub_pki_trust *trust = NULL;
    struct hub_err err = {0};

    if (load_certs(a.trusted_path, "trusted", &trusted) != 0)
        goto out_free;
    if (a.untrusted_path != NULL && load_certs(a.untrusted_path, "untrusted", &untrusted) != 0)
        goto out_free;
    if (load_certs(a.leaf_path, "leaf", &leaf_chain) != 0)
        goto out_free;
    if (untrusted == NULL && (untrusted = sk_X509_new_null()) == NULL)
        goto out_free;
    /* A device chain file: the leaf first, then what the device would present. */
    for (int i = 1; i < sk_X509_num(leaf_chain); i++) {
        X509 *c = sk_X509_value(leaf_chain, i);
        if (!X509_up_ref(c))
            goto out_free;
        if (!sk_X509_push(untrusted, c)) {
            X509_free(c);
            goto out_free;
        }
    }
    X509 *leaf = sk_X509_value(leaf_chain, 0);

    if (hub_pki_trust_new(trusted, &trust, &err) != 0) {
        fprintf(stderr, "hubctl cert check: trusted %s: %s (%s)\n", a.trusted_path, err.msg,
                hub_err_name(err.code));
        goto out_free;
    }

    rc = HUBCTL_FAIL;
    if (hub_pki_chain_verify(trust, leaf, untrusted, &a.opts, &err) != 0) {
        printf("%s: %s\n", hub_err_name(err.code), err.msg);
        goto out_free;
    }
    if (a.device_id != NULL) {
        char cn[256];
        if (hub_pki_cert_subject_cn(leaf, cn, sizeof(cn), &err) != 0) {
            printf("%s: leaf subject CN: %s\n", hub_err_name(HUB_E_CN_MISMATCH), err.msg);
            goto out_free;
        }
        if (strcmp(cn, a.device_id) != 0) {
            printf("%s: leaf subject CN '%s' is not the device id '%s'\n",
                   hub_err_name(HUB_E_CN_MISMATCH), cn, a.device_id);
            goto out_free;
        }
    }
    printf("valid\n");
    rc = HUBCTL_OK;

out_free:
    hub_pki_trust_free(trust);
    sk_X509_pop_free(leaf_chain, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(trusted, X509_free);
    return rc;
}
