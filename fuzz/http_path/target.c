/*
 * libFuzzer target: the parts of an HTTPS request the service API and the
 * device HTTPS transport read before anything is authenticated or stored:
 *   - the path: hub_http__split_path / hub_http__pct_decode (request.c),
 *     then the device-transport router (dt_classify);
 *   - the query string: hub_http__query_get;
 *   - telemetry headers and batch elements -> message properties
 *     (dt_props_add, dt_batch_elem, dt_msg_build);
 *   - the C2D IoTHub-Expiry header (parse_iso_ms, routes_messages.c).
 * The last three are static functions of routes_device_transport.c and
 * routes_messages.c, so this file #includes those two files; the I/O
 * functions they call (registry, msg, device layer, replies) are stubs that
 * abort() if ever reached: the pure functions must not call them. (One pure
 * helper of the device layer is stubbed with a fixed answer, see below.)
 *
 * The first input byte picks the parser (mod 6), the rest is its input.
 * Checked on every run:
 *   - split_path: at most HUB_HTTP_MAX_SEGMENTS non-empty segments, each
 *     without NUL or '/'; re-encoding every segment and joining them gives a
 *     path that splits to the same segments; a settle lock token points into
 *     the segments;
 *   - pct_decode: the length returned is the string's length and at most the
 *     input's; it agrees with a byte-at-a-time reference decoder;
 *   - query_get: a value found is NUL-terminated within the buffer;
 *   - props / batch: at most APP_MAX application properties, every property
 *     value points into the input, a system property holds the first value
 *     given for it, a batch body decodes to at most 3/4 of its text;
 *   - expiry: a time that parses is a whole number of milliseconds that
 *     formats back (as ISO-8601) to the same second.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file (and the two files
 * it includes), src/http/request.c, json_device.c, src/store/store.c, every
 * .c of src/auth, src/common/err.c, util.c and log.c, linking libevent,
 * libevent_openssl, OpenSSL and jansson. A link error naming a hub_*
 * function means one of the included files gained a call: add a stub here.
 */
#include "../../src/http/routes_device_transport.c"
#include "../../src/http/routes_messages.c"

#include <ctype.h>
#include <stdint.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* ---- stubs: the I/O the pure functions must never reach --------------------- */

#define STUB_ABORT abort()

void hub_http__reply_error(struct hub_http_request *r, int status, const char *azure_code,
                           const char *reason, const char *fmt, ...)
{
    (void)r, (void)status, (void)azure_code, (void)reason, (void)fmt;
    STUB_ABORT;
}
void hub_http__reply_error_logged(struct hub_http_request *r, int status, const char *azure_code,
                                  const char *reason, const char *log_detail,
                                  const char *client_text)
{
    (void)r, (void)status, (void)azure_code, (void)reason, (void)log_detail, (void)client_text;
    STUB_ABORT;
}
void hub_http__reply_hub_err(struct hub_http_request *r, const struct hub_err *err,
                             const char *not_found_code, const char *exists_code)
{
    (void)r, (void)err, (void)not_found_code, (void)exists_code;
    STUB_ABORT;
}
void hub_http__reply_json(struct hub_http_request *r, int status, json_t *body)
{
    (void)r, (void)status, (void)body;
    STUB_ABORT;
}
void hub_http__reply_empty(struct hub_http_request *r, int status)
{
    (void)r, (void)status;
    STUB_ABORT;
}
int hub_http__authorize(struct hub_http_request *r, unsigned permission)
{
    (void)r, (void)permission;
    STUB_ABORT;
}
int hub_device_authn_decide(const struct hub_device_authn_in *in,
                            struct hub_device_authn_result *res)
{
    (void)in, (void)res;
    STUB_ABORT;
}
int hub_device_reason_connack(enum hub_device_reason r)
{
    (void)r;
    STUB_ABORT;
}
const char *hub_device_reason_name(enum hub_device_reason r)
{
    (void)r;
    STUB_ABORT;
}
/* Pure, and called by dt_msg_build; the real one is in src/device/telemetry.c,
 * which would pull in the device layer. Its value is not checked here. */
const char *hub_device_auth_method_json(enum hub_device_auth_method m)
{
    (void)m;
    return "{}";
}
int hub_registry_device_activity_touch(struct hub_registry *reg, const char *id,
                                       struct hub_err *err)
{
    (void)reg, (void)id, (void)err;
    STUB_ABORT;
}
int hub_registry_device_auth_lookup(struct hub_registry *reg, const char *id,
                                    struct hub_device *out, struct hub_err *err)
{
    (void)reg, (void)id, (void)out, (void)err;
    STUB_ABORT;
}
int hub_registry_device_id_check(const char *id, struct hub_err *err)
{
    (void)id, (void)err;
    STUB_ABORT;
}
int hub_registry_trust_get1(struct hub_registry *reg, struct hub_registry_trust **out_new,
                            struct hub_err *err)
{
    (void)reg, (void)out_new, (void)err;
    STUB_ABORT;
}
void hub_registry_trust_release(struct hub_registry_trust *snap)
{
    (void)snap;
    STUB_ABORT;
}
int hub_msg_c2d_deliver(struct hub_msg_c2d *c2d, const char *device_id, int64_t lock_ms,
                        struct hub_c2d_msg *out, struct hub_err *err)
{
    (void)c2d, (void)device_id, (void)lock_ms, (void)out, (void)err;
    STUB_ABORT;
}
int hub_msg_c2d_settle(struct hub_msg_c2d *c2d, const char *device_id, const char *lock_token,
                       enum hub_c2d_settle how, struct hub_err *err)
{
    (void)c2d, (void)device_id, (void)lock_token, (void)how, (void)err;
    STUB_ABORT;
}
int hub_msg_telemetry_append(struct hub_msg_telemetry_log *log, const struct hub_telemetry_msg *msg,
                             hub_msg_durable_cb on_durable, void *arg, struct hub_err *err)
{
    (void)log, (void)msg, (void)on_durable, (void)arg, (void)err;
    STUB_ABORT;
}
int hub_msg_c2d_enqueue(struct hub_msg_c2d *c2d, const struct hub_c2d_msg *msg, int64_t *seq_out,
                        char *message_id_out, struct hub_err *err)
{
    (void)c2d, (void)msg, (void)seq_out, (void)message_id_out, (void)err;
    STUB_ABORT;
}
int hub_msg_c2d_feedback_receive1(struct hub_msg_c2d *c2d, size_t max,
                                  struct hub_c2d_feedback_list **out_new, char *lock_token_out,
                                  struct hub_err *err)
{
    (void)c2d, (void)max, (void)out_new, (void)lock_token_out, (void)err;
    STUB_ABORT;
}
int hub_msg_c2d_feedback_settle(struct hub_msg_c2d *c2d, const char *lock_token, bool complete,
                                struct hub_err *err)
{
    (void)c2d, (void)lock_token, (void)complete, (void)err;
    STUB_ABORT;
}
int hub_msg_c2d_purge(struct hub_msg_c2d *c2d, const char *device_id, size_t *purged_out,
                      struct hub_err *err)
{
    (void)c2d, (void)device_id, (void)purged_out, (void)err;
    STUB_ABORT;
}
int64_t hub_msg_telemetry_last_seq(struct hub_msg_telemetry_log *log)
{
    (void)log;
    STUB_ABORT;
}
int hub_msg_telemetry_read1(struct hub_msg_telemetry_log *log, int64_t from_seq, size_t limit,
                            const char *device_id, struct hub_telemetry_msg_list **out_new,
                            struct hub_err *err)
{
    (void)log, (void)from_seq, (void)limit, (void)device_id, (void)out_new, (void)err;
    STUB_ABORT;
}

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
            enum dt_op op = dt_classify(methods[m], seg, (size_t)n, reject, &lock);
            if (op == DT_COMPLETE || op == DT_REJECT || op == DT_ABANDON)
                CHECK(lock == seg[4]);
            else
                CHECK(lock == NULL);
            if (op != DT_NONE)
                CHECK(strcmp(seg[0], "devices") == 0 && strcmp(seg[2], "messages") == 0);
        }
}

/* The documented rules, one byte at a time: the reference for pct_decode. */
static int ref_decode(const uint8_t *s, size_t len, size_t cap, int allow_slash, char *out)
{
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
    size_t cap = 1 + (data[0] >> 1); /* 1..128: the caps callers pass are small */
    const uint8_t *s = data + 1;
    size_t len = size - 1;
    char *src = malloc(len ? len : 1);
    char *out = malloc(cap);
    static char ref[HUB_HTTP_SEGMENT_MAX + 1];
    CHECK(src != NULL && out != NULL);
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
static void check_props(const struct dt_props *p, const char *const *names,
                        const char *const *values, size_t n)
{
    CHECK(p->app_count <= APP_MAX);
    for (size_t h = 0; h < sizeof(sys_headers) / sizeof(sys_headers[0]); h++) {
        const char *first = NULL;
        for (size_t i = 0; i < n && first == NULL; i++)
            if (strcasecmp(names[i], sys_headers[h].name) == 0)
                first = values[i];
        CHECK(p->sys[sys_headers[h].sys] == first);
    }
    for (size_t i = 0; i < p->app_count; i++) {
        CHECK(strncasecmp(p->app[i].key - strlen(APP_PREFIX), APP_PREFIX, strlen(APP_PREFIX)) == 0);
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
    struct dt_props p;
    memset(&p, 0, sizeof(p));
    size_t added = 0;
    for (added = 0; added < n; added++)
        if (dt_props_add(&p, names[added], values[added]) != 0)
            break;
    if (added < n)
        CHECK(p.app_count == APP_MAX);
    check_props(&p, names, values, added);
    static struct hub_telemetry_msg msg;
    dt_msg_build(&p, "dev1", HUB_DEVICE_AUTH_SAS, NULL, 0, &msg);
    CHECK(msg.app_count == p.app_count && strcmp(msg.device_id, "dev1") == 0);
    CHECK(msg.sys[HUB_SYSPROP_CONN_DEVICE_ID] == msg.device_id);
    free(text);
}

static void batch_elem(json_t *elem)
{
    struct dt_props p;
    unsigned char *body = NULL;
    size_t body_len = 0;
    char why[160];
    why[0] = '\0';
    if (dt_batch_elem(elem, &p, &body, &body_len, why, sizeof(why)) != 0) {
        CHECK(why[0] != '\0' && body == NULL);
        return;
    }
    CHECK(p.app_count <= APP_MAX);
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
        for (size_t i = 0; i < json_array_size(root) && i < BATCH_MAX; i++)
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
    int64_t ms = parse_iso_ms(s);
    if (ms >= 0) {
        char iso[HUB_TIME_ISO_LEN];
        hub_time_iso8601((time_t)(ms / 1000), iso);
        CHECK(parse_iso_ms(iso) == ms / 1000 * 1000);
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
