/*
 * `hubctl cert ...`: make a test PKI and print thumbprints.
 *
 *   hubctl cert root          [--subject CN] [--out NAME] ...
 *   hubctl cert intermediate  --issuer-cert F --issuer-key F [--subject CN] ...
 *   hubctl cert device        --issuer-cert F --issuer-key F --device-id ID ...
 *   hubctl cert verification  --issuer-cert F --issuer-key F --code CODE ...
 *   hubctl cert server        --issuer-cert F --issuer-key F [--san DNS:x|IP:x]... ...
 *   hubctl cert thumbprint    FILE [--sha256]
 *   hubctl cert check         ... (cmd_cert_check.c)
 *
 * The five issuing commands share one option parser (parse_issue_opts) and
 * one flow (issue_main); a row of issue_cmds says which options a command
 * takes and its defaults. Exit status: 0 done, 1 the PKI layer refused
 * (e.g. an issuer file holds a private key, the issuer is not a CA),
 * 2 usage or I/O error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "hubctl/hubctl.h"
#include "pki/pki.h"

#define MAX_SANS 32

/* ---- options ------------------------------------------------------------ */

/* One bit per option, so each command lists what it accepts. */
enum {
    O_OUT = 1u << 0,
    O_ISSUER = 1u << 1, /* --issuer-cert and --issuer-key */
    O_CHAIN = 1u << 2,  /* --issuer-chain */
    O_DEVICE_ID = 1u << 3,
    O_CODE = 1u << 4,
    O_DAYS = 1u << 5,
    O_KEY_TYPE = 1u << 6,
    O_SUBJECT = 1u << 7,
    O_PATHLEN = 1u << 8,
    O_SAN = 1u << 9,
    O_FORCE = 1u << 10,
    O_SHA256 = 1u << 11,
};

struct cert_opts {
    const char *out;
    const char *issuer_cert;
    const char *issuer_key;
    const char *issuer_chain;
    const char *device_id;
    const char *code;
    const char *subject;
    int days;             /* 0 = the command's default */
    long long not_before; /* 0 = 5 minutes ago */
    int pathlen;
    enum hub_pki_key_type key_type;
    const char *sans[MAX_SANS];
    size_t sans_count;
    int force;
    int sha256;
    const char *file; /* the one positional argument, if the command takes one */
};

static const struct option long_opts[] = {
    {"out", required_argument, NULL, 'o'},
    {"issuer-cert", required_argument, NULL, 'C'},
    {"issuer-key", required_argument, NULL, 'K'},
    {"issuer-chain", required_argument, NULL, 'H'},
    {"device-id", required_argument, NULL, 'D'},
    {"code", required_argument, NULL, 'V'},
    {"days", required_argument, NULL, 'd'},
    {"not-before", required_argument, NULL, 'B'},
    {"key-type", required_argument, NULL, 'k'},
    {"subject", required_argument, NULL, 's'},
    {"pathlen", required_argument, NULL, 'p'},
    {"san", required_argument, NULL, 'S'},
    {"force", no_argument, NULL, 'f'},
    {"sha256", no_argument, NULL, '2'},
    {"sha1", no_argument, NULL, '1'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Which O_* bit an option value from long_opts belongs to. */
static unsigned opt_bit(int c)
{
    switch (c) {
    case 'o':
        return O_OUT;
    case 'C':
    case 'K':
        return O_ISSUER;
    case 'H':
        return O_CHAIN;
    case 'D':
        return O_DEVICE_ID;
    case 'V':
        return O_CODE;
    case 'd':
    case 'B':
        return O_DAYS;
    case 'k':
        return O_KEY_TYPE;
    case 's':
        return O_SUBJECT;
    case 'p':
        return O_PATHLEN;
    case 'S':
        return O_SAN;
    case 'f':
        return O_FORCE;
    case '1':
    case '2':
        return O_SHA256;
    default:
        return 0;
    }
}

static int parse_int(const char *s, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

enum parse_result { PARSE_OK, PARSE_HELP, PARSE_USAGE };

/*
 * Parses argv (argv[0] is the command name) into *o, accepting only the
 * options in `allowed` and at most `max_files` positional arguments.
 * Messages name the command; values are checked here so later code sees
 * only valid ones.
 */
static enum parse_result parse_opts(const char *cmd, int argc, char **argv, unsigned allowed,
                                    int max_files, struct cert_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->pathlen = -1;
    o->key_type = HUB_PKI_KEY_EC_P256;
    optind = 0; /* glibc: full reset, argv differs from any previous call */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        if (c == 'h')
            return PARSE_HELP;
        const char *bad = argv[optind - 1];
        if (c == ':') {
            fprintf(stderr, "hubctl cert %s: %s needs a value\n", cmd, bad);
            return PARSE_USAGE;
        }
        if (c == '?' || (opt_bit(c) & allowed) == 0) {
            fprintf(stderr, "hubctl cert %s: unknown option '%s'\n", cmd, bad);
            return PARSE_USAGE;
        }
        struct hub_err err = {0};
        switch (c) {
        case 'o':
            o->out = optarg;
            break;
        case 'C':
            o->issuer_cert = optarg;
            break;
        case 'K':
            o->issuer_key = optarg;
            break;
        case 'H':
            o->issuer_chain = optarg;
            break;
        case 'D':
            o->device_id = optarg;
            break;
        case 'V':
            o->code = optarg;
            break;
        case 's':
            o->subject = optarg;
            break;
        case 'd':
            if (parse_int(optarg, 1, 36500, &o->days) != 0) {
                fprintf(stderr, "hubctl cert %s: --days wants 1..36500, got '%s'\n", cmd, optarg);
                return PARSE_USAGE;
            }
            break;
        case 'B': {
            char *end = NULL;
            o->not_before = strtoll(optarg, &end, 10);
            if (end == optarg || *end != '\0' || o->not_before <= 0) {
                fprintf(stderr, "hubctl cert %s: --not-before wants Unix seconds, got '%s'\n", cmd,
                        optarg);
                return PARSE_USAGE;
            }
            break;
        }
        case 'p':
            if (parse_int(optarg, 0, 16, &o->pathlen) != 0) {
                fprintf(stderr, "hubctl cert %s: --pathlen wants 0..16, got '%s'\n", cmd, optarg);
                return PARSE_USAGE;
            }
            break;
        case 'k':
            if (hub_pki_key_type_parse(optarg, &o->key_type, &err) != 0) {
                fprintf(stderr, "hubctl cert %s: --key-type: %s\n", cmd, err.msg);
                return PARSE_USAGE;
            }
            break;
        case 'S':
            if (o->sans_count == MAX_SANS) {
                fprintf(stderr, "hubctl cert %s: at most %d --san entries\n", cmd, MAX_SANS);
                return PARSE_USAGE;
            }
            o->sans[o->sans_count++] = optarg;
            break;
        case 'f':
            o->force = 1;
            break;
        case '1':
            o->sha256 = 0;
            break;
        case '2':
            o->sha256 = 1;
            break;
        }
    }
    int files = argc - optind;
    if (files > max_files) {
        fprintf(stderr, "hubctl cert %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return PARSE_USAGE;
    }
    if (files > 0)
        o->file = argv[optind];
    return PARSE_OK;
}

/* IO and argument errors are the operator's to fix (2); a refusal is 1. */
static int exit_for(int code)
{
    return (code == HUB_E_IO || code == HUB_E_INVALID_ARG || code == HUB_E_NOMEM) ? HUBCTL_USAGE
                                                                                  : HUBCTL_FAIL;
}

static int fail(const char *cmd, const struct hub_err *err)
{
    fprintf(stderr, "hubctl cert %s: %s (%s)\n", cmd, err->msg, hub_err_name(err->code));
    return exit_for(err->code);
}

/* ---- usage -------------------------------------------------------------- */

static const char common_help[] =
    "  --days N          validity in days, starting 5 minutes ago (default %d)\n"
    "  --not-before T    start the validity at Unix time T instead (e.g. to make an\n"
    "                    expired or a not-yet-valid certificate for tests)\n"
    "  --key-type TYPE   new key: ec-p256 (default), ec-p384, rsa-2048, rsa-3072, rsa-4096\n"
    "  --force           replace NAME.key if it exists (otherwise refuse)\n"
    "  -h, --help        this text\n";

static const char issuer_help[] =
    "  --issuer-cert F   the signing CA's certificate (PEM or DER, one certificate)\n"
    "  --issuer-key F    the signing CA's private key (unencrypted PEM or DER)\n";

static void usage_cert(FILE *out)
{
    fprintf(out,
            "usage: hubctl cert COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  root           make a self-signed root CA\n"
            "  intermediate   make an intermediate CA signed by another CA\n"
            "  device         make a device (leaf) certificate whose CN is the device id\n"
            "  verification   make the proof-of-possession certificate for a verification code\n"
            "  server         make a TLS server certificate for the hub\n"
            "  thumbprint     print a certificate's SHA-1 (or SHA-256) thumbprint\n"
            "  check          validate a device chain with the hub's policy\n"
            "\n"
            "'hubctl cert COMMAND --help' describes each. Every command that makes a\n"
            "certificate writes NAME.pem (certificate, mode 0644) and NAME.key (PKCS#8\n"
            "private key, mode 0600) and prints what it wrote.\n"
            "Exit status: 0 done, 1 refused (e.g. invalid input certificate), 2 usage or I/O "
            "error.\n");
}

struct issue_cmd {
    const char *name;
    enum hub_pki_cert_kind kind;
    unsigned allowed;
    int default_days;
    const char *default_out;
    const char *default_cn; /* NULL: the CN comes from --device-id / --code */
    const char *synopsis;
    const char *what; /* first lines of --help */
    const char *specific_help;
};

static const struct issue_cmd issue_cmds[] = {
    {"root", HUB_PKI_CERT_ROOT, O_OUT | O_DAYS | O_KEY_TYPE | O_SUBJECT | O_PATHLEN | O_FORCE, 3650,
     "root-ca", "hubd Test Root CA", "[--subject CN] [--pathlen N] [--out NAME]",
     "Makes a self-signed root CA: CA:TRUE (critical), keyUsage keyCertSign+cRLSign.\n",
     "  --subject CN      the subject common name, used verbatim as CN=<CN>\n"
     "                    (default \"hubd Test Root CA\")\n"
     "  --pathlen N       most intermediates allowed below this CA (default: no limit)\n"
     "  --out NAME        write NAME.pem and NAME.key (default root-ca)\n"},
    {"intermediate", HUB_PKI_CERT_INTERMEDIATE,
     O_OUT | O_ISSUER | O_DAYS | O_KEY_TYPE | O_SUBJECT | O_PATHLEN | O_FORCE, 1825,
     "intermediate-ca", "hubd Test Intermediate CA",
     "--issuer-cert F --issuer-key F [--subject CN] [--pathlen N] [--out NAME]",
     "Makes an intermediate CA signed by the issuer CA.\n",
     "  --subject CN      the subject common name, used verbatim as CN=<CN>\n"
     "                    (default \"hubd Test Intermediate CA\")\n"
     "  --pathlen N       most intermediates allowed below this CA (default: no limit)\n"
     "  --out NAME        write NAME.pem and NAME.key (default intermediate-ca)\n"},
    {"device", HUB_PKI_CERT_DEVICE,
     O_OUT | O_ISSUER | O_CHAIN | O_DEVICE_ID | O_DAYS | O_KEY_TYPE | O_FORCE, 365, NULL, NULL,
     "--issuer-cert F --issuer-key F --device-id ID [--issuer-chain F] [--out NAME]",
     "Makes a device certificate: CN=<device id>, CA:FALSE, digitalSignature, EKU clientAuth.\n"
     "Also writes NAME-chain.pem: the device certificate, its issuer and the certificates\n"
     "of --issuer-chain except a self-signed root; that is what a device presents in TLS.\n",
     "  --device-id ID    the device id, used as the subject CN (required)\n"
     "  --issuer-chain F  PEM file with the issuer's own chain up to (possibly including)\n"
     "                    the root, appended to NAME-chain.pem without the root\n"
     "  --out NAME        write NAME.pem, NAME.key, NAME-chain.pem (default: the device id)\n"},
    {"verification", HUB_PKI_CERT_VERIFICATION,
     O_OUT | O_ISSUER | O_CODE | O_DAYS | O_KEY_TYPE | O_FORCE, 30, "verification", NULL,
     "--issuer-cert CA.pem --issuer-key CA.key --code CODE [--out NAME]",
     "Makes the proof-of-possession certificate for a CA upload: CN=<code>, signed by\n"
     "the CA's key (give the CA being verified as the issuer). Upload NAME.pem.\n",
     "  --code CODE       the verification code the hub gave for this CA (required)\n"
     "  --out NAME        write NAME.pem and NAME.key (default verification)\n"},
    {"server", HUB_PKI_CERT_SERVER,
     O_OUT | O_ISSUER | O_DAYS | O_KEY_TYPE | O_SUBJECT | O_SAN | O_FORCE, 825, "server",
     "localhost",
     "--issuer-cert F --issuer-key F [--subject CN] [--san DNS:x|IP:x]... [--out NAME]",
     "Makes a TLS server certificate: EKU serverAuth, digitalSignature (+keyEncipherment\n"
     "for RSA), subjectAltName from --san.\n",
     "  --subject CN      the subject common name, used verbatim as CN=<CN> (default localhost)\n"
     "  --san ENTRY       DNS:name or IP:address; repeat for more. Default: DNS:<CN>, and for\n"
     "                    localhost also IP:127.0.0.1 and IP:::1\n"
     "  --out NAME        write NAME.pem and NAME.key (default server)\n"},
};

static void usage_issue(const struct issue_cmd *ic, FILE *out)
{
    fprintf(out, "usage: hubctl cert %s %s [options]\n\n%s\n", ic->name, ic->synopsis, ic->what);
    fputs(ic->specific_help, out);
    if (ic->allowed & O_ISSUER)
        fputs(issuer_help, out);
    fprintf(out, common_help, ic->default_days);
}

/* ---- issuing ------------------------------------------------------------ */

static int file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int path_join(char *out, size_t cap, const char *base, const char *suffix)
{
    return (size_t)snprintf(out, cap, "%s%s", base, suffix) < cap ? 0 : -1;
}

/* A default file name from a device id only when it is a safe one. */
static int safe_file_name(const char *s)
{
    if (s[0] == '\0' || s[0] == '.' || strlen(s) > 100)
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int self_signed(X509 *c)
{
    return X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0 &&
           X509_check_issued(c, c) == X509_V_OK;
}

/* Loaded inputs and made outputs of one issuing run; zero state is freeable. */
struct issue_state {
    X509 *issuer_cert;
    EVP_PKEY *issuer_key;
    STACK_OF(X509) * issuer_chain;
    EVP_PKEY *key;
    X509 *cert;
};

static void issue_state_free(struct issue_state *s)
{
    X509_free(s->cert);
    EVP_PKEY_free(s->key);
    sk_X509_pop_free(s->issuer_chain, X509_free);
    EVP_PKEY_free(s->issuer_key);
    X509_free(s->issuer_cert);
}

static int load_issuer(const char *cmd, const struct cert_opts *o, struct issue_state *s)
{
    struct hub_err err = {0};
    if (hub_pki_cert_load_file(o->issuer_cert, &s->issuer_cert, &err) != 0)
        return fail(cmd, &err);
    if (!hub_pki_cert_is_ca(s->issuer_cert)) {
        char subj[256];
        hub_pki_cert_subject_text(s->issuer_cert, subj, sizeof(subj));
        fprintf(stderr,
                "hubctl cert %s: issuer %s (%s) is not a CA (no basicConstraints CA:TRUE)\n", cmd,
                o->issuer_cert, subj);
        return HUBCTL_FAIL;
    }
    if (hub_pki_key_load_file(o->issuer_key, &s->issuer_key, &err) != 0)
        return fail(cmd, &err);
    if (o->issuer_chain != NULL &&
        hub_pki_certs_load_file(o->issuer_chain, &s->issuer_chain, &err) != 0)
        return fail(cmd, &err);
    return HUBCTL_OK;
}

/* leaf, issuer, then the issuer's chain without self-signed roots or repeats. */
static int write_device_chain(const char *path, const struct issue_state *s, struct hub_err *err)
{
    X509 *certs[2 + 64];
    size_t n = 0;
    certs[n++] = s->cert;
    certs[n++] = s->issuer_cert;
    for (int i = 0; i < sk_X509_num(s->issuer_chain) && n < sizeof(certs) / sizeof(certs[0]); i++) {
        X509 *c = sk_X509_value(s->issuer_chain, i);
        int dup = 0;
        for (size_t k = 0; k < n; k++)
            dup |= X509_cmp(c, certs[k]) == 0;
        if (!dup && !self_signed(c))
            certs[n++] = c;
    }
    return hub_pki_certs_write_file(certs, n, path, err);
}

static void print_made(const char *label, const char *value)
{
    printf("%-17s%s\n", label, value);
}

/* RFC 2253 text like hub_pki_cert_subject_text, for an issuer name. */
static void name_text(const X509_NAME *name, char *out, size_t cap)
{
    out[0] = '\0';
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return;
    unsigned long flags = (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
    if (X509_NAME_print_ex(bio, name, 0, flags) >= 0) {
        int n = BIO_read(bio, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
}

static int print_summary(const struct issue_cmd *ic, const char *pem, const char *key,
                         const char *chain, X509 *cert)
{
    char subject[512], issuer[512], tp[HUB_PKI_THUMBPRINT_MAX], until[HUB_TIME_ISO_LEN];
    struct hub_err err = {0};
    int64_t not_before = 0, not_after = 0;
    if (hub_pki_thumbprint(cert, HUB_PKI_SHA1, tp, &err) != 0 ||
        hub_pki_cert_validity(cert, &not_before, &not_after, &err) != 0)
        return fail(ic->name, &err);
    hub_time_iso8601((time_t)not_after, until);
    hub_pki_cert_subject_text(cert, subject, sizeof(subject));
    name_text(X509_get_issuer_name(cert), issuer, sizeof(issuer));
    print_made("certificate:", pem);
    printf("%-17s%s (mode 0600)\n", "private key:", key);
    if (chain != NULL)
        print_made("device chain:", chain);
    print_made("subject:", subject);
    print_made("issuer:", issuer);
    print_made("valid until:", until);
    print_made("sha1 thumbprint:", tp);
    return HUBCTL_OK;
}

static int issue_main(const struct issue_cmd *ic, int argc, char **argv)
{
    struct cert_opts o;
    enum parse_result pr = parse_opts(ic->name, argc, argv, ic->allowed, 0, &o);
    if (pr == PARSE_HELP) {
        usage_issue(ic, stdout);
        return HUBCTL_OK;
    }
    if (pr != PARSE_OK)
        goto usage;
    if ((ic->allowed & O_ISSUER) && (o.issuer_cert == NULL || o.issuer_key == NULL)) {
        fprintf(stderr, "hubctl cert %s: --issuer-cert and --issuer-key are required\n", ic->name);
        goto usage;
    }
    if ((ic->allowed & O_DEVICE_ID) && (o.device_id == NULL || o.device_id[0] == '\0')) {
        fprintf(stderr, "hubctl cert %s: --device-id is required\n", ic->name);
        goto usage;
    }
    if ((ic->allowed & O_CODE) && (o.code == NULL || o.code[0] == '\0')) {
        fprintf(stderr, "hubctl cert %s: --code is required\n", ic->name);
        goto usage;
    }

    const char *cn = o.subject != NULL     ? o.subject
                     : o.device_id != NULL ? o.device_id
                     : o.code != NULL      ? o.code
                                           : ic->default_cn;
    const char *out = o.out != NULL ? o.out : ic->default_out;
    if (out == NULL && safe_file_name(o.device_id))
        out = o.device_id;
    if (out == NULL || out[0] == '\0') {
        fprintf(stderr, "hubctl cert %s: give --out NAME (the device id is not a safe file name)\n",
                ic->name);
        goto usage;
    }
    char pem_path[PATH_MAX], key_path[PATH_MAX], chain_path[PATH_MAX];
    if (path_join(pem_path, sizeof(pem_path), out, ".pem") != 0 ||
        path_join(key_path, sizeof(key_path), out, ".key") != 0 ||
        path_join(chain_path, sizeof(chain_path), out, "-chain.pem") != 0) {
        fprintf(stderr, "hubctl cert %s: --out is too long\n", ic->name);
        goto usage;
    }
    if (!o.force && file_exists(key_path)) {
        fprintf(stderr, "hubctl cert %s: %s exists; use --force to replace it\n", ic->name,
                key_path);
        return HUBCTL_USAGE;
    }

    /* Default SANs for the common case of a hub on this machine. */
    const char *local_sans[] = {"DNS:localhost", "IP:127.0.0.1", "IP:::1"};
    const char *const *sans = o.sans;
    size_t sans_count = o.sans_count;
    if (ic->kind == HUB_PKI_CERT_SERVER && sans_count == 0 && strcmp(cn, "localhost") == 0) {
        sans = local_sans;
        sans_count = sizeof(local_sans) / sizeof(local_sans[0]);
    }

    struct issue_state s = {0};
    int rc = HUBCTL_OK;
    if (ic->allowed & O_ISSUER)
        rc = load_issuer(ic->name, &o, &s);
    if (rc != HUBCTL_OK)
        goto out_state;

    struct hub_err err = {0};
    struct hub_pki_issue_params params = {
        .kind = ic->kind,
        .common_name = cn,
        .days = o.days != 0 ? o.days : ic->default_days,
        .not_before = o.not_before,
        .pathlen = o.pathlen,
        .sans = sans,
        .sans_count = sans_count,
        .issuer_cert = s.issuer_cert,
        .issuer_key = s.issuer_key,
    };
    if (hub_pki_key_generate(o.key_type, &s.key, &err) != 0)
        goto out_err;
    params.subject_key = s.key;
    if (hub_pki_cert_issue(&params, &s.cert, &err) != 0)
        goto out_err;
    /* Key first: a certificate on disk always has its key beside it. */
    if (hub_pki_key_write_file(s.key, key_path, &err) != 0 ||
        hub_pki_certs_write_file(&s.cert, 1, pem_path, &err) != 0)
        goto out_err;
    int chain = ic->kind == HUB_PKI_CERT_DEVICE;
    if (chain && write_device_chain(chain_path, &s, &err) != 0)
        goto out_err;
    rc = print_summary(ic, pem_path, key_path, chain ? chain_path : NULL, s.cert);
    goto out_state;

out_err:
    rc = fail(ic->name, &err);
out_state:
    issue_state_free(&s);
    return rc;

usage:
    usage_issue(ic, stderr);
    return HUBCTL_USAGE;
}

/* ---- thumbprint --------------------------------------------------------- */

static void usage_thumbprint(FILE *out)
{
    fprintf(out, "usage: hubctl cert thumbprint FILE [--sha256]\n"
                 "\n"
                 "Prints the certificate's thumbprint alone on a line: the SHA-1 (default) or\n"
                 "SHA-256 of its DER encoding in uppercase hex without separators, as the Azure\n"
                 "portal and APIs show it. FILE is PEM or DER; for a chain file the first\n"
                 "certificate (the leaf) is used, with a note on stderr.\n"
                 "\n"
                 "  --sha256     SHA-256 instead of SHA-1\n"
                 "  --sha1       SHA-1 (the default)\n"
                 "  -h, --help   this text\n");
}

static int thumbprint_main(int argc, char **argv)
{
    struct cert_opts o;
    enum parse_result pr = parse_opts("thumbprint", argc, argv, O_SHA256, 1, &o);
    if (pr == PARSE_HELP) {
        usage_thumbprint(stdout);
        return HUBCTL_OK;
    }
    if (pr == PARSE_OK && o.file == NULL)
        fprintf(stderr, "hubctl cert thumbprint: give the certificate FILE\n");
    if (pr != PARSE_OK || o.file == NULL) {
        usage_thumbprint(stderr);
        return HUBCTL_USAGE;
    }
    struct hub_err err = {0};
    STACK_OF(X509) *certs = NULL;
    if (hub_pki_certs_load_file(o.file, &certs, &err) != 0)
        return fail("thumbprint", &err);
    if (sk_X509_num(certs) > 1)
        fprintf(stderr,
                "hubctl cert thumbprint: note: %s holds %d certificates; printing the first's\n",
                o.file, sk_X509_num(certs));
    char tp[HUB_PKI_THUMBPRINT_MAX];
    int rc = hub_pki_thumbprint(sk_X509_value(certs, 0), o.sha256 ? HUB_PKI_SHA256 : HUB_PKI_SHA1,
                                tp, &err);
    sk_X509_pop_free(certs, X509_free);
    if (rc != 0)
        return fail("thumbprint", &err);
    printf("%s\n", tp);
    return HUBCTL_OK;
}

/* ---- dispatch ----------------------------------------------------------- */

int hubctl_cert_main(int argc, char **argv)
{
    if (argc < 2) {
        usage_cert(stderr);
        return HUBCTL_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage_cert(stdout);
        return HUBCTL_OK;
    }
    for (size_t i = 0; i < sizeof(issue_cmds) / sizeof(issue_cmds[0]); i++)
        if (strcmp(cmd, issue_cmds[i].name) == 0)
            return issue_main(&issue_cmds[i], argc - 1, argv + 1);
    if (strcmp(cmd, "thumbprint") == 0)
        return thumbprint_main(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return hubctl_cert_check_main(argc - 1, argv + 1);
    fprintf(stderr, "hubctl cert: unknown command '%s'\n", cmd);
    usage_cert(stderr);
    return HUBCTL_USAGE;
}
