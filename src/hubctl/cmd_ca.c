/*
 * `hubctl ca ...`: the hub's CA certificates and proof of possession
 * (reference §5), over the service REST API:
 *
 *   upload NAME FILE [--verified] [--force]   PUT  /certificates/{name}
 *   code NAME                                 POST /certificates/{name}/generateVerificationCode
 *   verify NAME VERIFICATION_CERT             POST /certificates/{name}/verify
 *   list | show NAME | delete NAME            GET /certificates[/{name}], DELETE
 *   crl NAME FILE                             PUT  /certificates/{name}/crl
 *
 * `list` shows days to expiry ("!" marks fewer than HUBCTL_CA_EXPIRY_WARN_DAYS);
 * `show` shows them too, and the CRL's status (EXPIRED when past nextUpdate).
 *
 * Every call that needs If-Match first GETs the certificate and sends its
 * etag verbatim as the API returned it (JSON "etag", else the ETag header), so
 * a concurrent change by someone else makes the hub answer 412 instead of
 * being overwritten.
 *
 * `upload` creates only (no If-Match; the hub refuses an existing name). With
 * --force it replaces an existing certificate (GET, then PUT with If-Match),
 * or creates it when absent: replacing a CA changes which devices can
 * connect, so it is never implicit.
 *
 * Certificate files go through hub_pki_cert_load_file before upload: exactly
 * one certificate, and a file holding any private key is refused locally, so
 * a key never leaves the operator's machine. The hub gets normalised PEM.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/api.h"
#include "hubctl/hubctl.h"
#include "pki/pki.h"

#include <openssl/crypto.h>

static const struct sub_usage {
    const char *name;
    const char *text;
} usages[] = {
    {"upload", "usage: hubctl ca upload NAME FILE [--verified] [--force]\n"
               "\n"
               "Uploads the CA certificate in FILE (PEM or DER, one certificate, no private key)\n"
               "under NAME ([A-Za-z0-9._-], 1..64). It is stored unverified unless --verified\n"
               "(skip proof of possession). Refuses an existing NAME unless --force, which\n"
               "replaces it (If-Match: its current etag).\n"},
    {"code", "usage: hubctl ca code NAME\n"
             "\n"
             "Asks the hub for a new verification code for CA NAME and prints it alone on a\n"
             "line: code=$(hubctl ca code NAME). Sign a certificate whose subject CN is the\n"
             "code with the CA's key (hubctl cert verification), then run hubctl ca verify.\n"},
    {"verify", "usage: hubctl ca verify NAME VERIFICATION_CERT\n"
               "\n"
               "Sends the verification certificate (CN = the code from hubctl ca code, signed\n"
               "by CA NAME's key). The hub marks the CA verified; only verified CAs\n"
               "authenticate devices. Exits 1 if the hub refuses.\n"},
    {"list", "usage: hubctl ca list\n\nLists the hub's CA certificates with the days left until\n"
             "each expires (marked '!' under 30 days, 'EXPIRED' once expired).\n"},
    {"show",
     "usage: hubctl ca show NAME\n\nShows one CA certificate, its days to expiry and its CRL.\n"},
    {"crl", "usage: hubctl ca crl NAME FILE\n"
            "\n"
            "Uploads the certificate revocation list in FILE (PEM or DER, one CRL, no private\n"
            "key) for CA NAME. The hub checks that the CA signed it; certificates it lists are\n"
            "refused at their next connection and live connections using them are closed.\n"
            "A CRL older than the stored one is refused (If-Match: the CA's current etag).\n"},
    {"delete", "usage: hubctl ca delete NAME\n\nDeletes CA NAME (If-Match: its current etag).\n"},
};

static void family_usage(FILE *out)
{
    fprintf(out, "usage: hubctl [global options] ca COMMAND ...\n"
                 "\n"
                 "commands:\n"
                 "  upload NAME FILE [--verified] [--force]   upload a CA certificate\n"
                 "  code NAME                                 get a verification code\n"
                 "  verify NAME VERIFICATION_CERT             prove possession of the CA key\n"
                 "  list                                      list CA certificates\n"
                 "  show NAME                                 show one CA certificate\n"
                 "  delete NAME                               delete a CA certificate\n"
                 "  crl NAME FILE                             upload the CA's revocation list\n"
                 "\n"
                 "Each command takes --help and --json. Global options: hubctl --help.\n");
}

static void sub_usage(FILE *out, const char *sub)
{
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
        if (strcmp(usages[i].name, sub) == 0)
            fputs(usages[i].text, out);
}

enum { OPT_VERIFIED = 0x100, OPT_FORCE, OPT_JSON };

struct ca_args {
    int verified, force, json;
    char **pos; /* positional arguments, after getopt permuted argv */
    int npos;
};

/* Parses a subcommand's options. Returns -1 to continue, else the exit status. */
static int parse_args(int argc, char **argv, int allow_upload_flags, int want_pos,
                      struct ca_args *a)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"verified", no_argument, NULL, OPT_VERIFIED},
                                         {"force", no_argument, NULL, OPT_FORCE},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    optind = 0; /* GNU: full re-initialisation, argv differs from the last scan */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            sub_usage(stdout, argv[0]);
            return HUBCTL_OK;
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_VERIFIED:
        case OPT_FORCE:
            if (!allow_upload_flags)
                goto bad;
            *(c == OPT_VERIFIED ? &a->verified : &a->force) = 1;
            break;
        default:
            goto bad;
        }
    }
    a->pos = argv + optind;
    a->npos = argc - optind;
    if (a->npos != want_pos) {
        fprintf(stderr, "hubctl: ca %s: expected %d argument%s, got %d\n", argv[0], want_pos,
                want_pos == 1 ? "" : "s", a->npos);
        sub_usage(stderr, argv[0]);
        return HUBCTL_USAGE;
    }
    if (want_pos > 0 && !hubctl_api_ca_name_valid(a->pos[0])) {
        fprintf(stderr, "hubctl: invalid CA name '%s' (1..64 of A-Z a-z 0-9 . _ -)\n", a->pos[0]);
        return HUBCTL_USAGE;
    }
    return -1;
bad:
    fprintf(stderr, "hubctl: ca %s: unknown or misplaced option '%s'\n", argv[0], argv[optind - 1]);
    sub_usage(stderr, argv[0]);
    return HUBCTL_USAGE;
}

static int open_api(const struct hubctl_globals *g, const struct ca_args *a, struct hubctl_api *api)
{
    struct hub_err err = {0};
    if (hubctl_api_open(api, g, &err) < 0)
        return hubctl_api_fail(NULL, &err);
    api->json |= a->json;
    return -1;
}

static void path_of(char *out, size_t cap, const char *name, const char *suffix)
{
    /* name is validated ([A-Za-z0-9._-]), so it needs no encoding */
    snprintf(out, cap, "/certificates/%s%s", name, suffix);
}

static const char *prop(const json_t *ca, const char *key)
{
    return json_string_value(json_object_get(json_object_get(ca, "properties"), key));
}

static int prop_verified(const json_t *ca)
{
    return json_is_true(json_object_get(json_object_get(ca, "properties"), "isVerified"));
}

/* Below this many days to expiry, list marks a CA with '!'. */
#define HUBCTL_CA_EXPIRY_WARN_DAYS 30

/* "412", "12 !" (under the warning threshold), "EXPIRED", or "-" when the hub
 * did not say (an older hub). */
static void days_text(const json_t *ca, char *out, size_t cap)
{
    const json_t *d = json_object_get(json_object_get(ca, "properties"), "daysToExpiry");
    if (!json_is_integer(d)) {
        snprintf(out, cap, "-");
        return;
    }
    long long days = (long long)json_integer_value(d);
    if (days < 0)
        snprintf(out, cap, "EXPIRED");
    else
        snprintf(out, cap, "%lld%s", days, days < HUBCTL_CA_EXPIRY_WARN_DAYS ? " !" : "");
}

/* The CRL line of `show`: "none", or "N revoked, issued T, next update T[, EXPIRED ...]". */
static void crl_text(const json_t *ca, char *out, size_t cap)
{
    const json_t *p = json_object_get(ca, "properties");
    const json_t *count = json_object_get(p, "crlRevokedCount");
    if (!json_is_integer(count)) {
        snprintf(out, cap, "none");
        return;
    }
    char this_update[64], next_update[64];
    hubctl_api_text_sanitize(json_string_value(json_object_get(p, "crlThisUpdate")), this_update,
                             sizeof(this_update));
    const char *next = json_string_value(json_object_get(p, "crlNextUpdate"));
    hubctl_api_text_sanitize(next != NULL ? next : "none", next_update, sizeof(next_update));
    snprintf(out, cap, "%lld revoked, issued %s, next update %s%s",
             (long long)json_integer_value(count), this_update, next_update,
             json_is_true(json_object_get(p, "crlExpired"))
                 ? ", EXPIRED (still enforced: upload a fresh CRL)"
                 : "");
}

static void ca_print(const json_t *ca)
{
    char days[32], crl[256];
    days_text(ca, days, sizeof(days));
    crl_text(ca, crl, sizeof(crl));
    hubctl_api_field_print("name:", json_string_value(json_object_get(ca, "name")));
    hubctl_api_field_print("subject:", prop(ca, "subject"));
    hubctl_api_field_print("thumbprint:", prop(ca, "thumbprint"));
    hubctl_api_field_print("verified:", prop_verified(ca) ? "yes" : "no");
    hubctl_api_field_print("expiry:", prop(ca, "expiry"));
    hubctl_api_field_print("days to expiry:", days);
    hubctl_api_field_print("crl:", crl);
    hubctl_api_field_print("created:", prop(ca, "created"));
    hubctl_api_field_print("updated:", prop(ca, "updated"));
    hubctl_api_field_print("etag:", json_string_value(json_object_get(ca, "etag")));
}

/* Prints an answer: the API's JSON with --json, else `human`. */
/* GET /certificates/{name}: fills *res (caller frees). Returns 0 or the exit status. */
static int ca_get(const struct hubctl_api *api, const char *name, struct hubctl_api_response *res)
{
    char path[128];
    struct hub_err err = {0};
    path_of(path, sizeof(path), name, "");
    if (hubctl_api_call(api, "GET", path, NULL, NULL, res, &err) < 0)
        return hubctl_api_fail(res, &err);
    return 0;
}

/* GETs CA `name` for its etag, then sends `body` (may be NULL; taken) with
 * `method` to its `suffix` ("" for the CA itself, "/verify", ...) under
 * If-Match, as the resource-provider API wants. 0, or the exit status to
 * return; *res holds the answer either way (the caller frees it). */
static int call_with_etag(const struct hubctl_api *api, const char *name, const char *method,
                          const char *suffix, json_t *body, struct hubctl_api_response *res)
{
    int ex = ca_get(api, name, res);
    if (ex != 0) {
        json_decref(body);
        return ex;
    }
    char etag[256], path[160];
    hubctl_api_etag_of(res, etag, sizeof(etag));
    hubctl_api_response_free(res);
    path_of(path, sizeof(path), name, suffix);
    struct hub_err err = {0};
    int rc = hubctl_api_call(api, method, path, etag, body, res, &err);
    json_decref(body);
    return rc < 0 ? hubctl_api_fail(res, &err) : 0;
}

/* The same with {field: pem} as the body. */
static int send_pem_with_etag(const struct hubctl_api *api, const char *name, const char *method,
                              const char *suffix, const char *field, const char *pem,
                              struct hubctl_api_response *res)
{
    json_t *body = json_pack("{s:s}", field, pem);
    if (body == NULL) {
        fprintf(stderr, "hubctl: out of memory\n");
        return HUBCTL_USAGE;
    }
    return call_with_etag(api, name, method, suffix, body, res);
}

static int ca_upload(const struct hubctl_globals *g, int argc, char **argv)
{
    struct ca_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, 1, 2, &a);
    if (ex >= 0)
        return ex;
    const char *name = a.pos[0];
    char *pem = hubctl_api_cert_pem_load(a.pos[1]);
    if (pem == NULL)
        return HUBCTL_USAGE;
    if ((ex = open_api(g, &a, &api)) >= 0)
        goto free_pem;

    struct hub_err err = {0};
    struct hubctl_api_response res = {0};
    char etag[256] = "";
    if (a.force) {
        char path[128];
        path_of(path, sizeof(path), name, "");
        if (hubctl_api_call(&api, "GET", path, NULL, NULL, &res, &err) == 0) {
            hubctl_api_etag_of(&res, etag, sizeof(etag));
        } else if (res.status != 404) {
            ex = hubctl_api_fail(&res, &err);
            goto free_res;
        }
        hubctl_api_response_free(&res);
    }
    json_t *body = hubctl_api_ca_body_new(pem, a.verified);
    if (body == NULL) {
        fprintf(stderr, "hubctl: out of memory\n");
        ex = HUBCTL_USAGE;
        goto free_res;
    }
    char path[128];
    path_of(path, sizeof(path), name, "");
    int rc = hubctl_api_call(&api, "PUT", path, etag[0] ? etag : NULL, body, &res, &err);
    json_decref(body);
    if (rc < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    hubctl_api_output(&api, res.json, ca_print);
    ex = HUBCTL_OK;
free_res:
    hubctl_api_response_free(&res);
free_pem:
    free(pem);
    return ex;
}

static int ca_code(const struct hubctl_globals *g, int argc, char **argv)
{
    struct ca_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, 0, 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    struct hubctl_api_response res = {0};
    if ((ex = call_with_etag(&api, a.pos[0], "POST", "/generateVerificationCode", NULL, &res)) != 0)
        goto free_res;
    if (api.json) {
        hubctl_api_json_print(res.json);
        goto free_res;
    }
    const char *code = prop(res.json, "verificationCode");
    if (code == NULL || code[0] == '\0') {
        fprintf(stderr, "hubctl: the hub's answer holds no properties.verificationCode\n");
        ex = HUBCTL_USAGE;
        goto free_res;
    }
    char safe[256];
    hubctl_api_text_sanitize(code, safe, sizeof(safe));
    printf("%s\n", safe);
free_res:
    hubctl_api_response_free(&res);
    return ex;
}

static int ca_verify(const struct hubctl_globals *g, int argc, char **argv)
{
    struct ca_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, 0, 2, &a);
    if (ex >= 0)
        return ex;
    char *pem = hubctl_api_cert_pem_load(a.pos[1]);
    if (pem == NULL)
        return HUBCTL_USAGE;
    if ((ex = open_api(g, &a, &api)) >= 0)
        goto free_pem;
    struct hubctl_api_response res = {0};
    if ((ex = send_pem_with_etag(&api, a.pos[0], "POST", "/verify", "certificate", pem, &res)) != 0)
        goto free_res;
    hubctl_api_output(&api, res.json, ca_print);
    if (res.json != NULL && !prop_verified(res.json)) {
        /* A 2xx that did not verify would be a hub bug; never report success for it. */
        fprintf(stderr, "hubctl: the hub answered but CA %s is still not verified\n", a.pos[0]);
        ex = HUBCTL_FAIL;
        goto free_res;
    }
    ex = HUBCTL_OK;
free_res:
    hubctl_api_response_free(&res);
free_pem:
    free(pem);
    return ex;
}

static void ca_list_print(const json_t *list)
{
    const json_t *items = json_object_get(list, "value");
    size_t i;
    const json_t *ca;
    printf("%-24s %-8s %-8s %-40s %s\n", "NAME", "VERIFIED", "DAYS", "THUMBPRINT", "SUBJECT");
    json_array_foreach(items, i, ca)
    {
        char name[80], thumb[80], subject[256], days[32];
        hubctl_api_text_sanitize(json_string_value(json_object_get(ca, "name")), name,
                                 sizeof(name));
        hubctl_api_text_sanitize(prop(ca, "thumbprint"), thumb, sizeof(thumb));
        hubctl_api_text_sanitize(prop(ca, "subject"), subject, sizeof(subject));
        days_text(ca, days, sizeof(days));
        printf("%-24s %-8s %-8s %-40s %s\n", name, prop_verified(ca) ? "yes" : "no", days, thumb,
               subject);
    }
}

static int ca_list(const struct hubctl_globals *g, int argc, char **argv)
{
    struct ca_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, 0, 0, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "GET", "/certificates", NULL, NULL, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
    } else if (!json_is_array(json_object_get(res.json, "value"))) {
        fprintf(stderr, "hubctl: the hub's answer is not {\"value\":[...]}\n");
        ex = HUBCTL_USAGE;
    } else {
        hubctl_api_output(&api, res.json, ca_list_print);
        ex = HUBCTL_OK;
    }
    hubctl_api_response_free(&res);
    return ex;
}

static int ca_show(const struct hubctl_globals *g, int argc, char **argv)
{
    struct ca_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, 0, 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    struct hubctl_api_response res = {0};
    if ((ex = ca_get(&api, a.pos[0], &res)) == 0)
        hubctl_api_output(&api, res.json, ca_print);
    hubctl_api_response_free(&res);
    return ex;
}

static int ca_delete(const struct hubctl_globals *g, int argc, char **argv)
{
    struct ca_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, 0, 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    struct hubctl_api_response res = {0};
    if ((ex = call_with_etag(&api, a.pos[0], "DELETE", "", NULL, &res)) != 0)
        goto free_res;
    if (api.json)
        hubctl_api_json_print(res.json);
    else
        printf("deleted %s\n", a.pos[0]);
free_res:
    hubctl_api_response_free(&res);
    return ex;
}

/* Reads and checks a CRL file locally (a private key never leaves the
 * operator's machine) and returns normalised PEM (caller frees), or NULL
 * after printing why. */
static char *load_crl_pem(const char *path)
{
    struct hub_err err = {0};
    char *pem = NULL;
    X509_CRL *crl = NULL;
    unsigned char *buf = malloc(HUB_PKI_MAX_CRL_BYTES + 1);
    FILE *f = fopen(path, "rb");
    size_t len = 0;
    if (buf == NULL) {
        HUB_ERR(&err, HUB_E_NOMEM, "out of memory");
    } else if (f == NULL) {
        HUB_ERR(&err, HUB_E_IO, "cannot open: %s", strerror(errno));
    } else {
        len = fread(buf, 1, HUB_PKI_MAX_CRL_BYTES + 1, f);
        if (ferror(f))
            HUB_ERR(&err, HUB_E_IO, "cannot read");
        else if (hub_pki_crl_load_mem(buf, len, &crl, &err) == 0)
            hub_pki_crl_to_pem(crl, &pem, &err);
    }
    if (f != NULL)
        fclose(f);
    if (pem == NULL)
        fprintf(stderr, "hubctl: %s: %s\n", path, err.msg[0] ? err.msg : hub_err_text(err.code));
    X509_CRL_free(crl);
    if (buf != NULL)
        OPENSSL_cleanse(buf, len); /* it might have held a key */
    free(buf);
    return pem;
}

static int ca_crl(const struct hubctl_globals *g, int argc, char **argv)
{
    struct ca_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, 0, 2, &a);
    if (ex >= 0)
        return ex;
    char *pem = load_crl_pem(a.pos[1]);
    if (pem == NULL)
        return HUBCTL_USAGE;
    if ((ex = open_api(g, &a, &api)) >= 0)
        goto free_pem;
    struct hubctl_api_response res = {0};
    if ((ex = send_pem_with_etag(&api, a.pos[0], "PUT", "/crl", "crl", pem, &res)) != 0)
        goto free_res;
    hubctl_api_output(&api, res.json, ca_print);
    ex = HUBCTL_OK;
free_res:
    hubctl_api_response_free(&res);
free_pem:
    free(pem);
    return ex;
}

int hubctl_ca_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {
        {"upload", ca_upload}, {"code", ca_code},     {"verify", ca_verify}, {"list", ca_list},
        {"show", ca_show},     {"delete", ca_delete}, {"crl", ca_crl}};
    return hubctl_subcommand_dispatch("ca", subs, sizeof(subs) / sizeof(subs[0]), family_usage, g,
                                      argc, argv);
}
