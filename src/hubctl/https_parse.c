/*
 * The pure half of hubctl's HTTPS client (contract in https_client.h): request
 * head formatting and an incremental HTTP/1.1 response parser. No I/O, so
 * tests/unit/hubctl/test_https_client.c #includes this file.
 *
 * Response grammar accepted (RFC 9112, as a lenient-where-harmless client):
 *
 *   status-line = "HTTP/1." DIGIT SP 3DIGIT [ SP reason ] EOL
 *   header      = token ":" OWS value OWS EOL      (obs-fold refused)
 *   EOL         = CRLF, or a bare LF (RFC 9112 §2.2 lets recipients accept it)
 *   body        = none                  if HEAD, 204, 304
 *               | chunked               if Transfer-Encoding's last coding is chunked
 *               | until close           if another Transfer-Encoding
 *               | Content-Length bytes  if present (several must agree)
 *               | until close           otherwise
 *   chunk       = 1*HEXDIG [ BWS ";" ext ] EOL data EOL ; "0" EOL trailers EOL ends
 *   1xx (but 101) responses are interim: skipped, the next head is parsed.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hubctl/https_client.h"

/* A chunk-size line longer than this is not a chunk-size line. */
#define CHUNK_LINE_MAX 1024

void hubctl_http_response_free(struct hubctl_http_response *resp)
{
    if (resp == NULL)
        return;
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    free(resp->reason);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

const char *hubctl_http_response_header_get0(const struct hubctl_http_response *resp,
                                             const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

/* RFC 9110 §5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Field values: visible ASCII, obs-text, SP and HTAB; no CR, LF, NUL or other controls. */
static int is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* ---- request formatting -------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sbuf_str(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

int hubctl_http_request_format(const char *method, const char *host, unsigned port,
                               const char *path, const char *const *headers, size_t body_len,
                               char **out_new, struct hub_err *err)
{
    *out_new = NULL;
    if (method == NULL || !is_token(method, strlen(method)))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "invalid HTTP method");
    if (path == NULL || path[0] != '/')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "request path must start with '/'");
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "request path holds a blank, control or non-ASCII byte");
    if (host == NULL || host[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "empty host");
    for (const char *c = host; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '/')
            return HUB_ERR(err, HUB_E_INVALID_ARG, "invalid character in host name");
    if (port == 0 || port > 65535)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "port %u out of range", port);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        const char *h = headers[i];
        const char *colon = strchr(h, ':');
        if (colon == NULL || !is_token(h, (size_t)(colon - h)) ||
            !is_field_value(colon + 1, strlen(colon + 1)))
            return HUB_ERR(err, HUB_E_INVALID_ARG, "invalid request header #%zu", i + 1);
    }

    struct sbuf b = {0};
    char num[32];
    sbuf_str(&b, method);
    sbuf_str(&b, " ");
    sbuf_str(&b, path);
    sbuf_str(&b, " HTTP/1.1\r\nHost: ");
    /* An IPv6 literal needs brackets in Host (RFC 3986 IP-literal). */
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    if (v6)
        sbuf_str(&b, "[");
    sbuf_str(&b, host);
    if (v6)
        sbuf_str(&b, "]");
    if (port != 443) {
        snprintf(num, sizeof(num), ":%u", port);
        sbuf_str(&b, num);
    }
    sbuf_str(&b, "\r\n");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        sbuf_str(&b, headers[i]);
        sbuf_str(&b, "\r\n");
    }
    if (body_len > 0 || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0 ||
        strcmp(method, "PATCH") == 0) {
        snprintf(num, sizeof(num), "%zu", body_len);
        sbuf_str(&b, "Content-Length: ");
        sbuf_str(&b, num);
        sbuf_str(&b, "\r\n");
    }
    /* One request per connection: the server's close ends a read-until-close body. */
    sbuf_str(&b, "Connection: close\r\n\r\n");
    if (b.failed) {
        free(b.p);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory formatting the request");
    }
    *out_new = b.p;
    return 0;
}

/* ---- response parsing ---------------------------------------------------- */

void hubctl_http_parser_init(struct hubctl_http_parser *p, struct hubctl_http_response *resp,
                             int head_request, size_t max_body_bytes)
{
    memset(p, 0, sizeof(*p));
    memset(resp, 0, sizeof(*resp));
    p->head_request = head_request;
    p->max_body_bytes = max_body_bytes ? max_body_bytes : HUBCTL_HTTPS_MAX_BODY_BYTES;
    p->state = HUBCTL_HTTP_HEAD;
    p->resp = resp;
}

void hubctl_http_parser_free(struct hubctl_http_parser *p)
{
    if (p == NULL)
        return;
    free(p->buf);
    p->buf = NULL;
    p->buf_len = p->buf_cap = 0;
}

static int body_append(struct hubctl_http_parser *p, const char *data, size_t n,
                       struct hub_err *err)
{
    struct hubctl_http_response *r = p->resp;
    if (n > p->max_body_bytes - r->body_len)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "response body larger than %zu bytes",
                       p->max_body_bytes);
    if (r->body == NULL || r->body_len + n + 1 > p->body_cap) {
        size_t cap = p->body_cap ? p->body_cap : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (nb == NULL)
            return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading the response");
        r->body = nb;
        p->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

/* Length of the line at s (excluding its EOL) and of its EOL; 0 EOL if incomplete. */
static size_t line_end(const char *s, size_t avail, size_t *eol_len)
{
    const char *nl = memchr(s, '\n', avail);
    if (nl == NULL) {
        *eol_len = 0;
        return avail;
    }
    size_t n = (size_t)(nl - s);
    *eol_len = 1;
    if (n > 0 && s[n - 1] == '\r') {
        n--;
        *eol_len = 2;
    }
    return n;
}

static void headers_reset(struct hubctl_http_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    r->headers = NULL;
    r->nheaders = 0;
    free(r->reason);
    r->reason = NULL;
}

static int parse_status_line(struct hubctl_http_response *r, const char *s, size_t n,
                             struct hub_err *err)
{
    /* "HTTP/1.x 200" is 12 bytes; the reason phrase is optional. */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) || s[8] != ' ' ||
        !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) ||
        !isdigit((unsigned char)s[11]) || (n > 12 && s[12] != ' '))
        return HUB_ERR(err, HUB_E_PARSE, "malformed HTTP status line");
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (r->status < 100)
        return HUB_ERR(err, HUB_E_PARSE, "HTTP status %d out of range", r->status);
    const char *reason = n > 12 ? s + 13 : s + n;
    size_t rlen = n > 12 ? n - 13 : 0;
    if (!is_field_value(reason, rlen))
        return HUB_ERR(err, HUB_E_PARSE, "control byte in the HTTP reason phrase");
    r->reason = strndup(reason, rlen);
    if (r->reason == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading the response");
    return 0;
}

static int parse_header_line(struct hubctl_http_response *r, const char *s, size_t n,
                             struct hub_err *err)
{
    if (s[0] == ' ' || s[0] == '\t')
        return HUB_ERR(err, HUB_E_PARSE, "folded HTTP header line (obs-fold) refused");
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || !is_token(s, (size_t)(colon - s)))
        return HUB_ERR(err, HUB_E_PARSE, "malformed HTTP header line");
    const char *v = colon + 1;
    const char *end = s + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (!is_field_value(v, (size_t)(end - v)))
        return HUB_ERR(err, HUB_E_PARSE, "control byte in an HTTP header value");
    if (r->nheaders >= HUBCTL_HTTPS_MAX_HEADERS)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "more than %d HTTP headers", HUBCTL_HTTPS_MAX_HEADERS);
    struct hubctl_http_header *nh = realloc(r->headers, (r->nheaders + 1) * sizeof(*nh));
    if (nh == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading the response");
    r->headers = nh;
    nh[r->nheaders].name = strndup(s, (size_t)(colon - s));
    nh[r->nheaders].value = strndup(v, (size_t)(end - v));
    r->nheaders++;
    if (nh[r->nheaders - 1].name == NULL || nh[r->nheaders - 1].value == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading the response");
    return 0;
}

/* Last comma-separated coding of a Transfer-Encoding value is "chunked"? */
static int te_is_chunked(const char *v)
{
    const char *last = strrchr(v, ',');
    last = last ? last + 1 : v;
    while (*last == ' ' || *last == '\t')
        last++;
    size_t n = strlen(last);
    while (n > 0 && (last[n - 1] == ' ' || last[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(last, "chunked", 7) == 0;
}

/* Chooses the body framing once the head is parsed (RFC 9112 §6.3). */
static int choose_framing(struct hubctl_http_parser *p, struct hub_err *err)
{
    struct hubctl_http_response *r = p->resp;
    int rc = body_append(p, "", 0, err); /* body is never NULL from here on */
    if (rc < 0)
        return rc;
    if (p->head_request || r->status == 204 || r->status == 304) {
        p->state = HUBCTL_HTTP_DONE;
        return 0;
    }
    const char *te = NULL;
    int have_cl = 0;
    uint64_t cl = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *name = r->headers[i].name, *v = r->headers[i].value;
        if (strcasecmp(name, "Transfer-Encoding") == 0) {
            te = v; /* the last one carries the final coding */
        } else if (strcasecmp(name, "Content-Length") == 0) {
            uint64_t n = 0;
            if (v[0] == '\0')
                return HUB_ERR(err, HUB_E_PARSE, "empty Content-Length");
            for (const char *c = v; *c; c++) {
                if (!isdigit((unsigned char)*c))
                    return HUB_ERR(err, HUB_E_PARSE, "malformed Content-Length '%.40s'", v);
                if (n > (UINT64_MAX - 9) / 10)
                    return HUB_ERR(err, HUB_E_TOO_LARGE, "Content-Length overflows");
                n = n * 10 + (uint64_t)(*c - '0');
            }
            if (have_cl && n != cl)
                return HUB_ERR(err, HUB_E_PARSE, "conflicting Content-Length headers");
            have_cl = 1;
            cl = n;
        }
    }
    if (te != NULL) { /* Transfer-Encoding overrides Content-Length */
        p->state = te_is_chunked(te) ? HUBCTL_HTTP_CHUNK_SIZE : HUBCTL_HTTP_BODY_UNTIL_CLOSE;
        p->remaining = 0;
        return 0;
    }
    if (have_cl) {
        if (cl > p->max_body_bytes)
            return HUB_ERR(err, HUB_E_TOO_LARGE,
                           "response Content-Length %llu larger than %zu bytes",
                           (unsigned long long)cl, p->max_body_bytes);
        p->remaining = (size_t)cl;
        p->state = cl == 0 ? HUBCTL_HTTP_DONE : HUBCTL_HTTP_BODY_LENGTH;
        return 0;
    }
    p->state = HUBCTL_HTTP_BODY_UNTIL_CLOSE;
    return 0;
}

/* Finds the end of the head in p->buf; returns its length (incl. the blank line) or 0. */
static size_t head_end(struct hubctl_http_parser *p)
{
    for (size_t i = p->scan_from; i < p->buf_len; i++) {
        if (p->buf[i] != '\n')
            continue;
        if (i + 1 < p->buf_len && p->buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < p->buf_len && p->buf[i + 1] == '\r' && p->buf[i + 2] == '\n')
            return i + 3;
    }
    /* Resume two bytes back: an EOL pair may straddle two reads. */
    p->scan_from = p->buf_len >= 2 ? p->buf_len - 2 : 0;
    return 0;
}

/* Parses the head occupying p->buf[0..n). */
static int parse_head(struct hubctl_http_parser *p, size_t n, struct hub_err *err)
{
    struct hubctl_http_response *r = p->resp;
    const char *s = p->buf;
    size_t pos = 0, eol = 0;
    size_t len = line_end(s, n, &eol);
    int rc = parse_status_line(r, s, len, err);
    if (rc < 0)
        return rc;
    pos = len + eol;
    for (;;) {
        len = line_end(s + pos, n - pos, &eol);
        if (len == 0)
            break; /* the blank line */
        rc = parse_header_line(r, s + pos, len, err);
        if (rc < 0)
            return rc;
        pos += len + eol;
    }
    return 0;
}

/* Runs the state machine over p->buf; consumes what it can. */
static int process(struct hubctl_http_parser *p, struct hub_err *err)
{
    size_t pos = 0;
    int rc = 0;
    if (p->buf == NULL) /* nothing received yet */
        return 0;
    while (p->state != HUBCTL_HTTP_DONE) {
        const char *s = p->buf + pos;
        size_t avail = p->buf_len - pos;
        size_t len, eol;
        if (p->state == HUBCTL_HTTP_HEAD) {
            /* pos is 0 here: the head is always parsed from the start of buf. */
            size_t n = head_end(p);
            if (n == 0) {
                if (p->buf_len > HUBCTL_HTTPS_MAX_HEAD_BYTES)
                    return HUB_ERR(err, HUB_E_TOO_LARGE, "response head larger than %u bytes",
                                   HUBCTL_HTTPS_MAX_HEAD_BYTES);
                return 0;
            }
            if (n > HUBCTL_HTTPS_MAX_HEAD_BYTES)
                return HUB_ERR(err, HUB_E_TOO_LARGE, "response head larger than %u bytes",
                               HUBCTL_HTTPS_MAX_HEAD_BYTES);
            rc = parse_head(p, n, err);
            if (rc < 0)
                return rc;
            memmove(p->buf, p->buf + n, p->buf_len - n);
            p->buf_len -= n;
            p->scan_from = 0;
            if (p->resp->status == 101)
                return HUB_ERR(err, HUB_E_PARSE, "unexpected 101 Switching Protocols");
            if (p->resp->status < 200) { /* interim: wait for the final response */
                headers_reset(p->resp);
                p->resp->status = 0;
                continue;
            }
            rc = choose_framing(p, err);
            if (rc < 0)
                return rc;
            continue;
        }
        switch (p->state) {
        case HUBCTL_HTTP_BODY_LENGTH:
        case HUBCTL_HTTP_CHUNK_DATA: {
            size_t n = avail < p->remaining ? avail : p->remaining;
            if (n == 0)
                goto need_more;
            rc = body_append(p, s, n, err);
            if (rc < 0)
                return rc;
            pos += n;
            p->remaining -= n;
            if (p->remaining == 0)
                p->state = p->state == HUBCTL_HTTP_BODY_LENGTH ? HUBCTL_HTTP_DONE
                                                               : HUBCTL_HTTP_CHUNK_DATA_END;
            break;
        }
        case HUBCTL_HTTP_BODY_UNTIL_CLOSE:
            if (avail == 0)
                goto need_more;
            rc = body_append(p, s, avail, err);
            if (rc < 0)
                return rc;
            pos += avail;
            break;
        case HUBCTL_HTTP_CHUNK_SIZE: {
            len = line_end(s, avail, &eol);
            if (eol == 0) {
                if (avail > CHUNK_LINE_MAX)
                    return HUB_ERR(err, HUB_E_PARSE, "chunk-size line too long");
                goto need_more;
            }
            size_t i = 0, size = 0;
            for (; i < len && isxdigit((unsigned char)s[i]); i++) {
                unsigned d = isdigit((unsigned char)s[i])
                                 ? (unsigned)(s[i] - '0')
                                 : (unsigned)(tolower((unsigned char)s[i]) - 'a' + 10);
                if (size > (p->max_body_bytes - d) / 16)
                    return HUB_ERR(err, HUB_E_TOO_LARGE, "response body larger than %zu bytes",
                                   p->max_body_bytes);
                size = size * 16 + d;
            }
            if (i == 0)
                return HUB_ERR(err, HUB_E_PARSE, "malformed chunk size");
            while (i < len && (s[i] == ' ' || s[i] == '\t'))
                i++;
            if (i < len && s[i] != ';')
                return HUB_ERR(err, HUB_E_PARSE, "malformed chunk size");
            if (size > p->max_body_bytes - p->resp->body_len)
                return HUB_ERR(err, HUB_E_TOO_LARGE, "response body larger than %zu bytes",
                               p->max_body_bytes);
            pos += len + eol;
            p->remaining = size;
            p->state = size == 0 ? HUBCTL_HTTP_TRAILERS : HUBCTL_HTTP_CHUNK_DATA;
            break;
        }
        case HUBCTL_HTTP_CHUNK_DATA_END:
            len = line_end(s, avail, &eol);
            if (eol == 0 && avail < 2 && (avail == 0 || s[0] == '\r'))
                goto need_more;
            if (eol == 0 || len != 0)
                return HUB_ERR(err, HUB_E_PARSE, "chunk data not followed by CRLF");
            pos += eol;
            p->state = HUBCTL_HTTP_CHUNK_SIZE;
            break;
        case HUBCTL_HTTP_TRAILERS:
            /* Trailer fields are read and dropped; p->remaining counts their bytes. */
            len = line_end(s, avail, &eol);
            if (eol == 0) {
                if (p->remaining + avail > HUBCTL_HTTPS_MAX_HEAD_BYTES)
                    return HUB_ERR(err, HUB_E_TOO_LARGE, "chunked trailers too large");
                goto need_more;
            }
            pos += len + eol;
            p->remaining += len + eol;
            if (p->remaining > HUBCTL_HTTPS_MAX_HEAD_BYTES)
                return HUB_ERR(err, HUB_E_TOO_LARGE, "chunked trailers too large");
            if (len == 0)
                p->state = HUBCTL_HTTP_DONE;
            break;
        default:
            return HUB_ERR(err, HUB_E_INTERNAL, "http parser in state %d", (int)p->state);
        }
    }
need_more:
    memmove(p->buf, p->buf + pos, p->buf_len - pos);
    p->buf_len -= pos;
    return p->state == HUBCTL_HTTP_DONE ? 1 : 0;
}

int hubctl_http_parser_feed(struct hubctl_http_parser *p, const char *data, size_t len,
                            struct hub_err *err)
{
    if (p->state == HUBCTL_HTTP_DONE)
        return 1;
    if (len > 0) {
        if (p->buf_len + len + 1 > p->buf_cap) {
            size_t cap = p->buf_cap ? p->buf_cap : 4096;
            while (cap < p->buf_len + len + 1)
                cap *= 2;
            char *nb = realloc(p->buf, cap);
            if (nb == NULL)
                return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading the response");
            p->buf = nb;
            p->buf_cap = cap;
        }
        memcpy(p->buf + p->buf_len, data, len);
        p->buf_len += len;
    }
    return process(p, err);
}

int hubctl_http_parser_finish(struct hubctl_http_parser *p, struct hub_err *err)
{
    if (p->state == HUBCTL_HTTP_DONE)
        return 1;
    if (p->state == HUBCTL_HTTP_BODY_UNTIL_CLOSE) {
        p->state = HUBCTL_HTTP_DONE;
        return 1;
    }
    if (p->state == HUBCTL_HTTP_HEAD && p->buf_len == 0 && p->resp->status == 0)
        return HUB_ERR(err, HUB_E_PARSE, "connection closed before any response");
    return HUB_ERR(err, HUB_E_PARSE, "connection closed in the middle of the response");
}
