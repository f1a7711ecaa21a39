/*
 * `hubctl c2d ...`: cloud-to-device messages over the service REST API
 * (server side: src/http/routes_messages.c; headers as Azure's HTTP
 * transport names them, reference §3):
 *
 *   send ID TEXT|--file PATH [options]   POST /devices/{id}/messages/deviceBound
 *        body: TEXT or the file's bytes (at most 64 KiB, the hub's C2D limit)
 *        Content-Type          --content-type, else text/plain; charset=utf-8
 *                              (application/octet-stream with --file)
 *        iothub-contenttype    --content-type (the device sees it as $.ct)
 *        iothub-contentencoding --content-encoding ($.ce)
 *        IoTHub-MessageId      --message-id (without it the hub makes one)
 *        IoTHub-CorrelationId  --correlation-id
 *        IoTHub-Expiry         now + --ttl SECONDS, "YYYY-MM-DDTHH:MM:SSZ"
 *        IoTHub-Ack            --ack none|positive|negative|full
 *        iothub-app-{k}: v     one per --prop k=v
 *        answer: {"deviceId","messageId","sequenceNumber"}; prints messageId
 *   purge ID                  DELETE /devices/{id}/commands
 *        answer: {"totalMessagesPurged","deviceId"}
 *   feedback [--abandon]      GET /messages/serviceBound/feedback
 *        204: nothing pending; 200: JSON array of records, ETag "lock token";
 *        then DELETE /messages/serviceBound/feedback/{lock} (complete), or
 *        POST /messages/serviceBound/feedback/{lock}/abandon (--abandon: the
 *        records come back on the next read).
 *
 * The pure helpers (property headers, expiry time, lock token) come first;
 * tests/unit/hubctl/test_monitor_format.c #includes this file to reach them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "hubctl/api.h"
#include "hubctl/hubctl.h"

/* The hub refuses a larger C2D body with 413 (Azure's limit, reference §2):
 * refuse it here, before reading a huge file into memory. */
#define C2D_BODY_MAX (64 * 1024)
/* The hub takes at most 64 iothub-app-* headers per message. */
#define C2D_PROPS_MAX 64
/* Longest --ttl: the hub cuts expiries beyond two days anyway; a year keeps
 * now + ttl far from time_t overflow and the year at four digits. */
#define C2D_TTL_MAX_S  (365L * 24 * 3600)
#define C2D_APP_PREFIX "iothub-app-"
/* encodeURIComponent of a 128-character id triples at worst. */
#define C2D_ENC_ID_MAX (3 * HUB_AUTH_ID_MAX + 1)
/* A lock token of the hub is at most 64 characters; room for a foreign one. */
#define C2D_LOCK_MAX 256

/* ---- pure helpers ------------------------------------------------------------- */

/* RFC 7230 tchar: what a header name (so an application property key sent as
 * iothub-app-{key}) may hold. */
static int c2d_key_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* 1 if s can be a header value: no control bytes (CR/LF would inject headers). */
static int c2d_value_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/*
 * "--prop k=v" → "iothub-app-k: v" in a new string (*out_new, caller frees).
 * The key is 1+ header-name characters; the value may be empty ("k=") but
 * holds no control bytes. HTTP has no way to say "null", so "k" alone is
 * refused. HUB_E_INVALID_ARG with a message naming the problem; HUB_E_NOMEM.
 */
static int c2d_prop_header_new(const char *arg, char **out_new, struct hub_err *err)
{
    *out_new = NULL;
    const char *eq = strchr(arg, '=');
    if (eq == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "--prop needs KEY=VALUE, got '%.64s'", arg);
    size_t klen = (size_t)(eq - arg);
    if (klen == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "--prop '%.64s': empty key", arg);
    for (size_t i = 0; i < klen; i++)
        if (!c2d_key_char((unsigned char)arg[i]))
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "--prop key '%.*s': only letters, digits and !#$%%&'*+-.^_`|~ "
                           "(it travels as an HTTP header name)",
                           (int)(klen > 64 ? 64 : klen), arg);
    if (!c2d_value_ok(eq + 1))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "--prop %.*s: the value holds control characters",
                       (int)(klen > 64 ? 64 : klen), arg);
    size_t cap = sizeof(C2D_APP_PREFIX) + klen + 2 + strlen(eq + 1);
    char *h = malloc(cap);
    if (h == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    snprintf(h, cap, C2D_APP_PREFIX "%.*s: %s", (int)klen, arg, eq + 1);
    *out_new = h;
    return 0;
}

/*
 * IoTHub-Expiry for a time-to-live: `now` + ttl as "YYYY-MM-DDTHH:MM:SSZ".
 * ttl_text: decimal seconds, 1..C2D_TTL_MAX_S. HUB_E_INVALID_ARG otherwise.
 */
static int c2d_expiry_format(time_t now, const char *ttl_text, char out[HUB_TIME_ISO_LEN],
                             struct hub_err *err)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(ttl_text, &end, 10);
    if (ttl_text[0] < '0' || ttl_text[0] > '9' || *end != '\0' || errno != 0 || v < 1 ||
        v > C2D_TTL_MAX_S)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "--ttl must be seconds from 1 to %ld, not '%.32s'",
                       C2D_TTL_MAX_S, ttl_text);
    hub_time_iso8601(now + (time_t)v, out);
    return 0;
}

/* 1 if s is an IoTHub-Ack value the hub takes. */
static int c2d_ack_valid(const char *s)
{
    static const char *const acks[] = {"none", "positive", "negative", "full"};
    for (size_t i = 0; i < sizeof(acks) / sizeof(acks[0]); i++)
        if (strcmp(s, acks[i]) == 0)
            return 1;
    return 0;
}

/*
 * The lock token of a feedback batch from its ETag: the quotes (and a weak
 * "W/" prefix) removed. HUB_E_PARSE when empty, unterminated or too long.
 */
static int c2d_lock_from_etag(const char *etag, char *out, size_t cap, struct hub_err *err)
{
    const char *s = etag;
    if (strncmp(s, "W/", 2) == 0)
        s += 2;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    } else if (n > 0 && (s[0] == '"' || s[n - 1] == '"')) {
        n = 0; /* one quote only: malformed */
    }
    if (n == 0 || n >= cap)
        return HUB_ERR(err, HUB_E_PARSE, "the hub sent no usable lock token (ETag)");
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* One feedback record as a block of "label: value" lines, then a blank line. */
static void c2d_feedback_print(FILE *out, const json_t *rec)
{
    static const struct {
        const char *label, *key;
    } fields[] = {{"originalMessageId:", "originalMessageId"},
                  {"deviceId:", "deviceId"},
                  {"statusCode:", "statusCode"},
                  {"description:", "description"},
                  {"enqueuedTimeUtc:", "enqueuedTimeUtc"}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = json_string_value(json_object_get(rec, fields[i].key));
        if (v == NULL)
            continue;
        char safe[1024];
        hubctl_api_text_sanitize(v, safe, sizeof(safe));
        fprintf(out, "%-18s %s\n", fields[i].label, safe);
    }
    fputc('\n', out);
}

/* ---- command line ------------------------------------------------------------- */

static const struct c2d_usage {
    const char *name;
    const char *text;
} c2d_usages[] = {
    {"send", "usage: hubctl c2d send ID TEXT [options]\n"
             "       hubctl c2d send ID --file PATH [options]\n"
             "\n"
             "Queues a cloud-to-device message for device ID and prints its message id\n"
             "(alone on a line; with --json the hub's answer). The body is TEXT, or the\n"
             "bytes of PATH (at most 64 KiB).\n"
             "\n"
             "options:\n"
             "  --prop KEY=VALUE        application property (repeatable, at most 64)\n"
             "  --ttl SECONDS           expire the message after SECONDS (the hub's default\n"
             "                          otherwise; the hub cuts it to two days)\n"
             "  --message-id ID         message id (default: the hub makes one)\n"
             "  --correlation-id ID     correlation id\n"
             "  --ack none|positive|negative|full\n"
             "                          delivery feedback to ask for (hubctl c2d feedback)\n"
             "  --content-type T        content type (default text/plain; charset=utf-8, or\n"
             "                          application/octet-stream with --file)\n"
             "  --content-encoding E    content encoding, e.g. utf-8\n"},
    {"purge", "usage: hubctl c2d purge ID\n"
              "\n"
              "Deletes every message queued for device ID and prints how many.\n"},
    {"feedback", "usage: hubctl c2d feedback [--abandon]\n"
                 "\n"
                 "Prints the pending delivery feedback records (for messages sent with\n"
                 "--ack) and completes them, so the next call gets the next ones. With\n"
                 "--abandon they are released instead and come back on the next call.\n"
                 "Prints \"no feedback\" when there is none.\n"},
};

static void c2d_family_usage(FILE *out)
{
    fprintf(out, "usage: hubctl [global options] c2d COMMAND ...\n"
                 "\n"
                 "commands:\n"
                 "  send ID TEXT|--file PATH [--prop K=V]... [--ttl S] [--message-id ID]\n"
                 "       [--correlation-id ID] [--ack none|positive|negative|full]\n"
                 "       [--content-type T] [--content-encoding E]\n"
                 "  purge ID\n"
                 "  feedback [--abandon]\n"
                 "\n"
                 "Each command takes --help and --json. Global options: hubctl --help.\n");
}

static void c2d_sub_usage(FILE *out, const char *sub)
{
    for (size_t i = 0; i < sizeof(c2d_usages) / sizeof(c2d_usages[0]); i++)
        if (strcmp(c2d_usages[i].name, sub) == 0)
            fputs(c2d_usages[i].text, out);
}

enum {
    C2D_OPT_JSON = 0x100,
    C2D_OPT_PROP,
    C2D_OPT_TTL,
    C2D_OPT_MSGID,
    C2D_OPT_CORRID,
    C2D_OPT_ACK,
    C2D_OPT_CTYPE,
    C2D_OPT_CENC,
    C2D_OPT_FILE,
    C2D_OPT_ABANDON,
};
#define C2D_ALLOW(o) (1u << ((o)-C2D_OPT_JSON))

struct c2d_args {
    int json, abandon;
    const char *ttl, *message_id, *correlation_id, *ack, *content_type, *content_encoding, *file;
    const char *props[C2D_PROPS_MAX];
    size_t nprops;
    const char *pos[2]; /* positional arguments */
    int npos;
};

/* Parses a subcommand's options and between min_pos and max_pos positional
 * arguments. -1 to continue, else the exit status. */
static int c2d_parse_args(int argc, char **argv, unsigned allowed, int min_pos, int max_pos,
                          struct c2d_args *a)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, C2D_OPT_JSON},
        {"prop", required_argument, NULL, C2D_OPT_PROP},
        {"ttl", required_argument, NULL, C2D_OPT_TTL},
        {"message-id", required_argument, NULL, C2D_OPT_MSGID},
        {"correlation-id", required_argument, NULL, C2D_OPT_CORRID},
        {"ack", required_argument, NULL, C2D_OPT_ACK},
        {"content-type", required_argument, NULL, C2D_OPT_CTYPE},
        {"content-encoding", required_argument, NULL, C2D_OPT_CENC},
        {"file", required_argument, NULL, C2D_OPT_FILE},
        {"abandon", no_argument, NULL, C2D_OPT_ABANDON},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            c2d_sub_usage(stdout, argv[0]);
            return HUBCTL_OK;
        }
        if (c < C2D_OPT_JSON || !(allowed & C2D_ALLOW(c)))
            goto bad;
        switch (c) {
        case C2D_OPT_JSON:
            a->json = 1;
            break;
        case C2D_OPT_PROP:
            if (a->nprops == C2D_PROPS_MAX) {
                fprintf(stderr, "hubctl: at most %d --prop options\n", C2D_PROPS_MAX);
                return HUBCTL_USAGE;
            }
            a->props[a->nprops++] = optarg;
            break;
        case C2D_OPT_TTL:
            a->ttl = optarg;
            break;
        case C2D_OPT_MSGID:
            a->message_id = optarg;
            break;
        case C2D_OPT_CORRID:
            a->correlation_id = optarg;
            break;
        case C2D_OPT_ACK:
            a->ack = optarg;
            break;
        case C2D_OPT_CTYPE:
            a->content_type = optarg;
            break;
        case C2D_OPT_CENC:
            a->content_encoding = optarg;
            break;
        case C2D_OPT_FILE:
            a->file = optarg;
            break;
        case C2D_OPT_ABANDON:
            a->abandon = 1;
            break;
        }
    }
    int npos = argc - optind;
    if (npos < min_pos || npos > max_pos) {
        fprintf(stderr, "hubctl: c2d %s: wrong number of arguments (%d)\n", argv[0], npos);
        c2d_sub_usage(stderr, argv[0]);
        return HUBCTL_USAGE;
    }
    for (int i = 0; i < npos; i++)
        a->pos[i] = argv[optind + i];
    a->npos = npos;
    return -1;
bad:
    fprintf(stderr, "hubctl: c2d %s: unknown or misplaced option '%s'\n", argv[0],
            argv[optind - 1]);
    c2d_sub_usage(stderr, argv[0]);
    return HUBCTL_USAGE;
}

/* Checks and path-encodes a device id. -1 to continue, else the exit status. */
static int c2d_id_encode(const char *id, char enc[C2D_ENC_ID_MAX])
{
    struct hub_err err = {0};
    if (id[0] == '\0' || strlen(id) > HUB_AUTH_ID_MAX ||
        hubctl_api_path_encode(id, enc, C2D_ENC_ID_MAX, &err) < 0) {
        fprintf(stderr, "hubctl: device id must be 1..%d characters\n", HUB_AUTH_ID_MAX);
        return HUBCTL_USAGE;
    }
    return -1;
}

static int c2d_open_api(const struct hubctl_globals *g, const struct c2d_args *a,
                        struct hubctl_api *api)
{
    struct hub_err err = {0};
    if (hubctl_api_open(api, g, &err) < 0)
        return hubctl_api_fail(NULL, &err);
    api->json |= a->json;
    return -1;
}

/* Reads at most C2D_BODY_MAX bytes of path into a new buffer. -1 to continue, else exit status. */
static int c2d_file_read(const char *path, unsigned char **out_new, size_t *len)
{
    *out_new = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "hubctl: %s: %s\n", path, strerror(errno));
        return HUBCTL_USAGE;
    }
    unsigned char *buf = malloc(C2D_BODY_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "hubctl: out of memory\n");
        return HUBCTL_USAGE;
    }
    /* One byte more than allowed tells "exactly 64 KiB" from "more". */
    size_t n = fread(buf, 1, C2D_BODY_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > C2D_BODY_MAX) {
        if (failed)
            fprintf(stderr, "hubctl: %s: read error\n", path);
        else
            fprintf(stderr, "hubctl: %s: a cloud-to-device message body is at most %d bytes\n",
                    path, C2D_BODY_MAX);
        free(buf);
        return HUBCTL_USAGE;
    }
    *out_new = buf;
    *len = n;
    return -1;
}

/* "Name: value" in a new string, or NULL (out of memory). */
static char *c2d_header_new(const char *name, const char *value)
{
    size_t cap = strlen(name) + strlen(value) + 3;
    char *h = malloc(cap);
    if (h != NULL)
        snprintf(h, cap, "%s: %s", name, value);
    return h;
}

/* Builds the send request's extra headers into hdrs (NULL-terminated, each freed
 * by the caller). -1 to continue, else the exit status (message printed). */
static int c2d_send_headers(const struct c2d_args *a, char **hdrs, size_t cap)
{
    const struct {
        const char *opt, *header, *value;
    } sys[] = {{"--message-id", "IoTHub-MessageId", a->message_id},
               {"--correlation-id", "IoTHub-CorrelationId", a->correlation_id},
               {"--ack", "IoTHub-Ack", a->ack},
               {"--content-type", "iothub-contenttype", a->content_type},
               {"--content-encoding", "iothub-contentencoding", a->content_encoding}};
    struct hub_err err = {0};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
        if (sys[i].value == NULL)
            continue;
        if (sys[i].value[0] == '\0' || !c2d_value_ok(sys[i].value)) {
            fprintf(stderr, "hubctl: %s must be non-empty text without control characters\n",
                    sys[i].opt);
            return HUBCTL_USAGE;
        }
        if ((hdrs[n++] = c2d_header_new(sys[i].header, sys[i].value)) == NULL)
            goto nomem;
    }
    if (a->ttl != NULL) {
        char when[HUB_TIME_ISO_LEN];
        if (c2d_expiry_format(time(NULL), a->ttl, when, &err) < 0) {
            fprintf(stderr, "hubctl: %s\n", err.msg);
            return HUBCTL_USAGE;
        }
        if ((hdrs[n++] = c2d_header_new("IoTHub-Expiry", when)) == NULL)
            goto nomem;
    }
    for (size_t i = 0; i < a->nprops && n + 1 < cap; i++) {
        if (c2d_prop_header_new(a->props[i], &hdrs[n], &err) < 0) {
            fprintf(stderr, "hubctl: %s\n", err.msg);
            return HUBCTL_USAGE;
        }
        n++;
    }
    hdrs[n] = NULL;
    return -1;
nomem:
    fprintf(stderr, "hubctl: out of memory\n");
    return HUBCTL_USAGE;
}

static int c2d_send(const struct hubctl_globals *g, int argc, char **argv)
{
    struct c2d_args a;
    struct hubctl_api api;
    unsigned allowed = C2D_ALLOW(C2D_OPT_JSON) | C2D_ALLOW(C2D_OPT_PROP) | C2D_ALLOW(C2D_OPT_TTL) |
                       C2D_ALLOW(C2D_OPT_MSGID) | C2D_ALLOW(C2D_OPT_CORRID) |
                       C2D_ALLOW(C2D_OPT_ACK) | C2D_ALLOW(C2D_OPT_CTYPE) | C2D_ALLOW(C2D_OPT_CENC) |
                       C2D_ALLOW(C2D_OPT_FILE);
    int ex = c2d_parse_args(argc, argv, allowed, 1, 2, &a);
    if (ex >= 0)
        return ex;
    if ((a.file != NULL) != (a.npos == 1)) {
        fprintf(stderr, "hubctl: c2d send: give either TEXT or --file PATH\n");
        c2d_sub_usage(stderr, "send");
        return HUBCTL_USAGE;
    }
    if (a.ack != NULL && !c2d_ack_valid(a.ack)) {
        fprintf(stderr, "hubctl: --ack must be none, positive, negative or full, not '%s'\n",
                a.ack);
        return HUBCTL_USAGE;
    }
    if (a.content_type != NULL && (a.content_type[0] == '\0' || !c2d_value_ok(a.content_type))) {
        fprintf(stderr, "hubctl: --content-type must be non-empty text\n");
        return HUBCTL_USAGE;
    }
    char enc_id[C2D_ENC_ID_MAX];
    if ((ex = c2d_id_encode(a.pos[0], enc_id)) >= 0)
        return ex;
    if (a.file == NULL && strlen(a.pos[1]) > C2D_BODY_MAX) {
        fprintf(stderr, "hubctl: a cloud-to-device message body is at most %d bytes\n",
                C2D_BODY_MAX);
        return HUBCTL_USAGE;
    }
    /* the system headers, the expiry, the properties and the NULL */
    char *hdrs[5 + 1 + C2D_PROPS_MAX + 1] = {NULL};
    unsigned char *file_body = NULL;
    size_t body_len = 0;
    struct hubctl_api_response res = {0};
    if ((ex = c2d_send_headers(&a, hdrs, sizeof(hdrs) / sizeof(hdrs[0]))) >= 0)
        goto free_hdrs;
    if (a.file != NULL && (ex = c2d_file_read(a.file, &file_body, &body_len)) >= 0)
        goto free_hdrs;
    if ((ex = c2d_open_api(g, &a, &api)) >= 0)
        goto free_body;

    char path[sizeof("/devices//messages/deviceBound") + C2D_ENC_ID_MAX];
    snprintf(path, sizeof(path), "/devices/%s/messages/deviceBound", enc_id);
    struct hubctl_api_request req = {
        .method = "POST",
        .path = path,
        .body = a.file ? (const void *)file_body : a.pos[1],
        .body_len = a.file ? body_len : strlen(a.pos[1]),
        .content_type = a.content_type ? a.content_type
                        : a.file       ? "application/octet-stream"
                                       : "text/plain; charset=utf-8",
        .headers = (const char *const *)hdrs,
    };
    struct hub_err err = {0};
    if (hubctl_api_call_raw(&api, &req, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    const char *mid = json_string_value(json_object_get(res.json, "messageId"));
    if (api.json) {
        hubctl_api_json_print(res.json);
    } else if (mid != NULL) {
        char safe[HUBCTL_API_ERRMSG_MAX];
        hubctl_api_text_sanitize(mid, safe, sizeof(safe));
        printf("%s\n", safe);
    } else {
        fprintf(stderr, "hubctl: the hub queued the message but sent no messageId\n");
        ex = HUBCTL_USAGE;
        goto free_res;
    }
    ex = HUBCTL_OK;
free_res:
    hubctl_api_response_free(&res);
free_body:
    free(file_body);
free_hdrs:
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        free(hdrs[i]);
    return ex;
}

static int c2d_purge(const struct hubctl_globals *g, int argc, char **argv)
{
    struct c2d_args a;
    struct hubctl_api api;
    int ex = c2d_parse_args(argc, argv, C2D_ALLOW(C2D_OPT_JSON), 1, 1, &a);
    if (ex >= 0)
        return ex;
    char enc_id[C2D_ENC_ID_MAX];
    if ((ex = c2d_id_encode(a.pos[0], enc_id)) >= 0 || (ex = c2d_open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/devices//commands") + C2D_ENC_ID_MAX];
    snprintf(path, sizeof(path), "/devices/%s/commands", enc_id);
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "DELETE", path, NULL, NULL, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
    } else if (api.json) {
        hubctl_api_json_print(res.json);
        ex = HUBCTL_OK;
    } else {
        const json_t *n = json_object_get(res.json, "totalMessagesPurged");
        char safe[HUB_AUTH_ID_MAX + 1];
        hubctl_api_text_sanitize(a.pos[0], safe, sizeof(safe));
        if (json_is_integer(n))
            printf("purged %" JSON_INTEGER_FORMAT " message(s) queued for %s\n",
                   json_integer_value(n), safe);
        else
            printf("purged the messages queued for %s\n", safe);
        ex = HUBCTL_OK;
    }
    hubctl_api_response_free(&res);
    return ex;
}

static int c2d_feedback(const struct hubctl_globals *g, int argc, char **argv)
{
    struct c2d_args a;
    struct hubctl_api api;
    int ex =
        c2d_parse_args(argc, argv, C2D_ALLOW(C2D_OPT_JSON) | C2D_ALLOW(C2D_OPT_ABANDON), 0, 0, &a);
    if (ex >= 0 || (ex = c2d_open_api(g, &a, &api)) >= 0)
        return ex;
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "GET", "/messages/serviceBound/feedback", NULL, NULL, &res, &err) <
        0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    if (res.status == 204 || res.json == NULL) {
        if (api.json)
            printf("[]\n");
        else
            printf("no feedback\n");
        ex = HUBCTL_OK;
        goto free_res;
    }
    if (!json_is_array(res.json)) {
        fprintf(stderr, "hubctl: the hub's feedback answer is not a JSON array\n");
        ex = HUBCTL_USAGE;
        goto free_res;
    }
    char lock[C2D_LOCK_MAX], enc_lock[3 * C2D_LOCK_MAX + 1];
    if (c2d_lock_from_etag(res.etag, lock, sizeof(lock), &err) < 0 ||
        hubctl_api_path_encode(lock, enc_lock, sizeof(enc_lock), &err) < 0) {
        ex = hubctl_api_fail(NULL, &err);
        goto free_res;
    }
    size_t count = json_array_size(res.json);
    if (api.json) {
        hubctl_api_json_print(res.json);
    } else {
        size_t i;
        const json_t *rec;
        json_array_foreach(res.json, i, rec) c2d_feedback_print(stdout, rec);
    }
    fflush(stdout);
    /* Settle only after printing: a crash in between leaves the batch locked,
     * and the hub hands it out again when the lock expires, so nothing is lost. */
    char path[sizeof("/messages/serviceBound/feedback//abandon") + sizeof(enc_lock)];
    snprintf(path, sizeof(path), "/messages/serviceBound/feedback/%s%s", enc_lock,
             a.abandon ? "/abandon" : "");
    struct hubctl_api_response sres = {0};
    if (hubctl_api_call(&api, a.abandon ? "POST" : "DELETE", path, NULL, NULL, &sres, &err) < 0) {
        ex = hubctl_api_fail(&sres, &err);
    } else {
        if (!api.json)
            printf("%s %zu feedback record(s)\n", a.abandon ? "abandoned" : "completed", count);
        ex = HUBCTL_OK;
    }
    hubctl_api_response_free(&sres);
free_res:
    hubctl_api_response_free(&res);
    return ex;
}

int hubctl_c2d_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {
        {"send", c2d_send}, {"purge", c2d_purge}, {"feedback", c2d_feedback}};
    return hubctl_subcommand_dispatch("c2d", subs, sizeof(subs) / sizeof(subs[0]), c2d_family_usage,
                                      g, argc, argv);
}
