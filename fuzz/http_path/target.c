/*
 * libFuzzer target: the parts of an HTTPS request the service API and the
 * device HTTPS transport read before anything is authenticated or stored:
 *   - the path: hub_http__split_path / hub_http__pct_decode (request.c),
 *     then the device-transport router (hub_http__dt_classify);
 *   - the query string: hub_http__query_get (request.c);
 *   - telemetry headers and batch elements -> message properties
 *     (hub_http__dt_props_add, hub_http__dt_batch_elem,
 *     hub_http__dt_msg_build; transport_parse.c);
 *   - the C2D IoTHub-Expiry header and the times the transport writes back
 *     (hub_http__iso_ms_parse / hub_http__iso_ms_format; transport_parse.c).
 * Every function is linked from its own file, none is stubbed.
 *
 * The first input byte picks the parser (mod 6), the rest is its input.
 * Checked on every run:
 *   - split_path: at most HUB_HTTP_MAX_SEGMENTS non-empty segments, each
 *     without NUL or '/'; re-encoding every segment and joining them gives a
 *     path that splits to the same segments; a settle lock token points into
 *     the segments;
 *   - pct_decode: the length returned is the string's length and at most the
 *     input's; it agrees with a byte-at-a-time reference decoder; with cap 0
 *     it refuses and writes nothing;
 *   - query_get: a value found is NUL-terminated within the buffer;
 *   - props / batch: at most HUB_HTTP_APP_MAX application properties, every
 *     property value points into the input, a system property holds the
 *     first value given for it, a batch body decodes to at most 3/4 of its
 *     text;
 *   - expiry: a time that parses is a whole number of milliseconds that
 *     formats back (as ISO-8601) to the same second, and whose
 *     milliseconds format reads back as the same time.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file,
 * src/http/request.c, transport_parse.c, reply.c (request.c's JSON-body
 * refusals call it; never reached here), src/common/err.c, util.c and log.c,
 * linking libevent, OpenSSL and jansson.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "http/http_int.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Batch elements parsed per input at most (the route's own bound is larger:
 * this only keeps one run short). */
#define FUZZ_BATCH_MAX 500

/* ---- the fuzzed parsers ------------------------------------------------------ */

/* NUL-terminated heap copy of len bytes, or NULL if they hold a NUL (the
 * callers see C strings: evhttp hands out NUL-terminated paths and headers). */
static char *cstr_new(const uint8_t *data, size_t len)
{
    if (memchr(data, '\0', len) != NULL)
        return NULL;
    char *s = malloc(len + 1);
    CHECK(s != NULL);
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void fuzz_split(const uint8_t *data, size_t len)
{
    char *path = cstr_new(data, len);
    if (path == NULL)
        return;
    static char seg[HUB_HTTP_MAX_SEGMENTS][HUB_HTTP_SEGMENT_MAX];
    static char again[HUB_HTTP_MAX_SEGMENTS][HUB_HTTP_SEGMENT_MAX];
    int n = hub_http__split_path(path, seg, HUB_HTTP_MAX_SEGMENTS);
    free(path);
    if (n < 0) {
        CHECK(n == -1);
        return;
    }
    CHECK(n <= HUB_HTTP_MAX_SEGMENTS);
    static char enc[HUB_HTTP_MAX_SEGMENTS * (3 * HUB_HTTP_SEGMENT_MAX + 1) + 1];
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        size_t sl = strlen(seg[i]);
        CHECK(sl > 0 && sl < HUB_HTTP_SEGMENT_MAX && strchr(seg[i], '/') == NULL);
        enc[o++] = '/';
        for (size_t k = 0; k < sl; k++) {
            unsigned char c = (unsigned char)seg[i][k];
            if (is_unreserved(c)) {
                enc[o++] = (char)c;
            } else {
                static const char hex[] = "0123456789ABCDEF";
                enc[o++] = '%';
                enc[o++] = hex[c >> 4];
                enc[o++] = hex[c & 15];
            }
        }
    }
    enc[o] = '\0';
    CHECK(hub_http__split_path(enc, again, HUB_HTTP_MAX_SEGMENTS) == n);
    for (int i = 0; i < n; i++)
        CHECK(strcmp(seg[i], again[i]) == 0);

    static const enum evhttp_cmd_type methods[] = {EVHTTP_REQ_GET, EVHTTP_REQ_POST,
                                                   EVHTTP_REQ_DELETE, EVHTTP_REQ_PUT};
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
        for (int reject = 0; reject < 2; reject++) {
            const char *lock = (const char *)&lock;
            enum hub_http_dt_op op =
                hub_http__dt_classify(methods[m], seg, (size_t)n, reject, &lock);
            if (op == HUB_HTTP_DT_COMPLETE || op == HUB_HTTP_DT_REJECT || op == HUB_HTTP_DT_ABANDON)
                CHECK(lock == seg[4]);
            else
                CHECK(lock == NULL);
            if (op != HUB_HTTP_DT_NONE)
                CHECK(strcmp(seg[0], "devices") == 0 && strcmp(seg[2], "messages") == 0);
        }
}

/* The documented rules, one byte at a time: the reference for pct_decode. */
static int ref_decode(const uint8_t *s, size_t len, size_t cap, int allow_slash, char *out)
{
    if (cap == 0) /* not even the NUL fits */
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            char h[3] = {(char)s[i + 1], (char)s[i + 2], 0};
            if (!isxdigit((unsigned char)h[0]) || !isxdigit((unsigned char)h[1]))
                return -1;
            c = (int)strtol(h, NULL, 16);
            if (c == 0 || (c == '/' && !allow_slash))
                return -1;
            i += 2;
        } else if (c == 0) {
            return -1;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

static void fuzz_pct(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    int allow_slash = data[0] & 1;
    /* 0..127: the caps callers pass are small. cap 0 gets a 0-byte block,
     * so ASan reports any write into it. */
    size_t cap = (size_t)(data[0] >> 1);
    const uint8_t *s = data + 1;
    size_t len = size - 1;
    char *src = malloc(len ? len : 1);
    char *out = malloc(cap);
    static char ref[HUB_HTTP_SEGMENT_MAX + 1];
    CHECK(src != NULL && (out != NULL || cap == 0));
    memcpy(src, s, len);
    int n = hub_http__pct_decode(src, len, out, cap, allow_slash);
    int want = ref_decode(s, len, cap, allow_slash, ref);
    CHECK(n == want);
    if (n >= 0) {
        CHECK((size_t)n <= len && (size_t)n < cap && strlen(out) == (size_t)n);
        CHECK(memcmp(out, ref, (size_t)n) == 0);
    }
    free(out);
    free(src);
}

static void fuzz_query(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    static const char *const keys[] = {"top", "reject", "from", "limit", "wait", "deviceId", ""};
    const char *key = keys[(data[0] & 7) % 7];
    size_t cap = 1 + (data[0] >> 3); /* 1..32 */
    static struct hub_http_request r;
    char *q = cstr_new(data + 1, size - 1);
    if (q == NULL)
        return;
    r.query = q;
    char *out = malloc(cap);
    CHECK(out != NULL);
    memset(out, 'x', cap);
    if (hub_http__query_get(&r, key, out, cap) == 1)
        CHECK(memchr(out, '\0', cap) != NULL);
    free(out);
    free(q);
}

/* Every value given for a system header, first one remembered. */
static void check_props(const struct hub_http_dt_props *p, const char *const *names,
                        const char *const *values, size_t n)
{
    CHECK(p->app_count <= HUB_HTTP_APP_MAX);
    for (size_t h = 0; h < hub_http__dt_sys_header_count; h++) {
        const char *first = NULL;
        for (size_t i = 0; i < n && first == NULL; i++)
            if (strcasecmp(names[i], hub_http__dt_sys_headers[h].name) == 0)
                first = values[i];
        CHECK(p->sys[hub_http__dt_sys_headers[h].sys] == first);
    }
    for (size_t i = 0; i < p->app_count; i++) {
        CHECK(strncasecmp(p->app[i].key - strlen(HUB_HTTP_APP_PREFIX), HUB_HTTP_APP_PREFIX,
                          strlen(HUB_HTTP_APP_PREFIX)) == 0);
        CHECK(p->app[i].value != NULL);
    }
}

#define MAX_LINES 80

static void fuzz_headers(const uint8_t *data, size_t size)
{
    /* "name:value" lines, as evhttp would hand the headers over */
    char *text = cstr_new(data, size);
    if (text == NULL)
        return;
    const char *names[MAX_LINES], *values[MAX_LINES];
    size_t n = 0;
    for (char *line = text; line != NULL && n < MAX_LINES;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *colon = strchr(line, ':');
        if (colon != NULL) {
            *colon = '\0';
            names[n] = line;
            values[n] = colon + 1;
            n++;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    struct hub_http_dt_props p;
    memset(&p, 0, sizeof(p));
    size_t added = 0;
    for (added = 0; added < n; added++)
        if (hub_http__dt_props_add(&p, names[added], values[added]) != 0)
            break;
    if (added < n)
        CHECK(p.app_count == HUB_HTTP_APP_MAX);
    check_props(&p, names, values, added);
    static struct hub_telemetry_msg msg;
    static const char auth_json[] = "{\"type\":\"sas\"}";
    hub_http__dt_msg_build(&p, "dev1", auth_json, NULL, 0, &msg);
    CHECK(msg.app_count == p.app_count && strcmp(msg.device_id, "dev1") == 0);
    CHECK(msg.sys[HUB_SYSPROP_CONN_DEVICE_ID] == msg.device_id);
    CHECK(msg.sys[HUB_SYSPROP_CONN_AUTH_METHOD] == auth_json);
    free(text);
}

static void batch_elem(json_t *elem)
{
    struct hub_http_dt_props p;
    unsigned char *body = NULL;
    size_t body_len = 0;
    char why[160];
    why[0] = '\0';
    if (hub_http__dt_batch_elem(elem, &p, &body, &body_len, why, sizeof(why)) != 0) {
        CHECK(why[0] != '\0' && body == NULL);
        return;
    }
    CHECK(p.app_count <= HUB_HTTP_APP_MAX);
    json_t *b = json_object_get(elem, "body");
    if (body_len > 0)
        CHECK(body != NULL && json_is_string(b) && body_len <= json_string_length(b) / 4 * 3 + 2);
    free(body);
}

static void fuzz_batch(const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    if (root == NULL)
        return;
    if (json_is_array(root)) {
        for (size_t i = 0; i < json_array_size(root) && i < FUZZ_BATCH_MAX; i++)
            batch_elem(json_array_get(root, i));
    } else {
        batch_elem(root);
    }
    json_decref(root);
}

static void fuzz_expiry(const uint8_t *data, size_t size)
{
    char *s = cstr_new(data, size);
    if (s == NULL)
        return;
    int64_t ms = hub_http__iso_ms_parse(s);
    if (ms >= 0) {
        char iso[HUB_TIME_ISO_LEN];
        hub_time_iso8601((time_t)(ms / 1000), iso);
        CHECK(hub_http__iso_ms_parse(iso) == ms / 1000 * 1000);
        char with_ms[HUB_HTTP_ISO_MS_SIZE];
        hub_http__iso_ms_format(ms, with_ms);
        CHECK(hub_http__iso_ms_parse(with_ms) == ms);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *s = data + 1;
    size_t len = size - 1;
    switch (data[0] % 6) {
    case 0:
        fuzz_split(s, len);
        break;
    case 1:
        fuzz_pct(s, len);
        break;
    case 2:
        fuzz_query(s, len);
        break;
    case 3:
        fuzz_headers(s, len);
        break;
    case 4:
        fuzz_batch(s, len);
        break;
    default:
        fuzz_expiry(s, len);
        break;
    }
    return 0;
}
