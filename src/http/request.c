/* Reading a request: path segments, query parameters, headers, JSON bodies. */
#include <ctype.h>
#include <limits.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/util.h"
#include "http/http_int.h"

int hub_http__pct_decode(const char *src, size_t len, char *out, size_t cap, int allow_slash)
{
    /* The caller only needs yes/no: every fault is a 400 or "not found". */
    size_t n = 0;
    if (hub_pct_decode(src, len, out, cap, allow_slash ? 0 : HUB_PCT_NO_SLASH, &n, NULL) !=
            HUB_PCT_OK ||
        n > INT_MAX)
        return -1;
    return (int)n;
}

int hub_http__split_path(const char *path, char segments[][HUB_HTTP_SEGMENT_MAX], size_t max)
{
    size_t count = 0;
    const char *p = path;
    while (*p == '/')
        p++;
    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (count == max)
            return -1;
        if (hub_http__pct_decode(p, len, segments[count], HUB_HTTP_SEGMENT_MAX, 0) < 0)
            return -1;
        count++;
        p += len;
        /* A trailing slash or doubled slashes carry no segment. */
        while (*p == '/')
            p++;
    }
    return (int)count;
}

int hub_http__query_get(const struct hub_http_request *r, const char *key, char *out, size_t cap)
{
    const char *q = r->query;
    size_t keylen = strlen(key);
    while (q != NULL && *q != '\0') {
        const char *amp = strchr(q, '&');
        size_t pairlen = amp != NULL ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', pairlen);
        size_t klen = eq != NULL ? (size_t)(eq - q) : pairlen;
        if (klen == keylen && memcmp(q, key, keylen) == 0) {
            if (eq == NULL) {
                if (cap > 0)
                    out[0] = '\0';
                return 1;
            }
            return hub_http__pct_decode(eq + 1, pairlen - klen - 1, out, cap, 1) >= 0 ? 1 : 0;
        }
        q = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}

const char *hub_http__header(struct hub_http_request *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

int hub_http__if_match(struct hub_http_request *r, char *out, size_t cap)
{
    const char *v = hub_http__header(r, "If-Match");
    if (v == NULL)
        return 0;
    while (*v == ' ')
        v++;
    if (strncmp(v, "W/", 2) == 0)
        v += 2;
    size_t len = strlen(v);
    while (len > 0 && v[len - 1] == ' ')
        len--;
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    if (len + 1 > cap)
        len = cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 1;
}

json_t *hub_http__body_json(struct hub_http_request *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len == 0) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_JSON", "request body is empty");
        return NULL;
    }
    const char *data = (const char *)evbuffer_pullup(in, -1);
    json_error_t jerr;
    json_t *body = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_JSON",
                              "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                              jerr.text);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_JSON",
                              "request body must be a JSON object");
        return NULL;
    }
    return body;
}
