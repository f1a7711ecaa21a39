/*
 * libFuzzer target: hubctl's incremental HTTP/1.1 response parser
 * (src/hubctl/https_parse.c). For hubctl the hub's answers are outside bytes:
 * a hostile or broken server (or whoever sits behind a wrong --host) writes
 * them.
 *
 * The first input byte sets the request (bit 0: HEAD) and the body cap
 * (bit 1: 100 bytes instead of the default); the rest is what the server
 * sends before closing. It is fed four ways, as recv() may split it: in one
 * piece, one byte at a time, in 7-byte chunks, and in chunks whose sizes come
 * from a hash of the input; then hubctl_http_parser_finish() reports the
 * close. Checked on every run:
 *   - all four give the same verdict (complete, incomplete or the same error
 *     code) and, when complete, the same status, reason, headers and body:
 *     a parser that answers differently depending on where TCP split the
 *     bytes is a bug;
 *   - a complete response has a status 100..999 (never 1xx but 101), at
 *     most HUBCTL_HTTPS_MAX_HEADERS headers, a NUL-terminated body within the
 *     cap, and no body at all for HEAD, 204 and 304;
 *   - an error is PARSE or TOO_LARGE with err.code equal to the return;
 *   - the one-line error hubctl prints for a complete response
 *     (hubctl_api_error_format: Azure's error JSON, its IotHub-ErrorCode
 *     header, or the body's first line) is NUL-terminated within its buffer
 *     and holds no control byte: a hostile server cannot drive the terminal.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file,
 * src/hubctl/https_parse.c, api_format.c and src/common/err.c, linking jansson.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/api.h"
#include "hubctl/https_client.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define SMALL_BODY 100

struct outcome {
    int rc; /* 1 complete, 0 incomplete after finish (never), < 0 error */
    struct hubctl_http_response resp;
};

/* Feeds data split by next_chunk; fills o (caller frees o->resp). */
static void run(const char *data, size_t len, int head, size_t max_body,
                size_t (*next_chunk)(size_t off, size_t left, uint32_t seed), uint32_t seed,
                struct outcome *o)
{
    struct hubctl_http_parser p;
    struct hub_err err = {0};
    hubctl_http_parser_init(&p, &o->resp, head, max_body);
    int rc = 0;
    size_t off = 0;
    while (off < len && rc == 0) {
        size_t n = next_chunk(off, len - off, seed);
        if (n == 0 || n > len - off)
            n = len - off;
        /* each chunk in its own allocation: ASan sees reads past it */
        char *chunk = malloc(n);
        CHECK(chunk != NULL);
        memcpy(chunk, data + off, n);
        rc = hubctl_http_parser_feed(&p, chunk, n, &err);
        free(chunk);
        off += n;
    }
    if (rc == 0)
        rc = hubctl_http_parser_finish(&p, &err);
    CHECK(rc == 1 || rc < 0);
    if (rc < 0)
        CHECK((rc == HUB_E_PARSE || rc == HUB_E_TOO_LARGE) && err.code == rc);
    hubctl_http_parser_free(&p);
    o->rc = rc;
}

static size_t whole(size_t off, size_t left, uint32_t seed)
{
    (void)off, (void)seed;
    return left;
}

static size_t bytewise(size_t off, size_t left, uint32_t seed)
{
    (void)off, (void)left, (void)seed;
    return 1;
}

static size_t sevens(size_t off, size_t left, uint32_t seed)
{
    (void)off, (void)left, (void)seed;
    return 7;
}

static size_t hashed(size_t off, size_t left, uint32_t seed)
{
    (void)left;
    uint32_t h = (seed ^ (uint32_t)off) * 2654435761u;
    return 1 + (h >> 24) % 64;
}

static void check_complete(const struct hubctl_http_response *r, int head, size_t max_body)
{
    CHECK(r->status >= 100 && r->status <= 999);
    CHECK(r->status >= 200 || r->status == 101);
    CHECK(r->reason != NULL);
    CHECK(r->nheaders <= HUBCTL_HTTPS_MAX_HEADERS);
    for (size_t i = 0; i < r->nheaders; i++) {
        CHECK(r->headers[i].name != NULL && r->headers[i].name[0] != '\0');
        CHECK(r->headers[i].value != NULL);
        CHECK(hubctl_http_response_header_get0(r, r->headers[i].name) != NULL);
    }
    CHECK(r->body != NULL && r->body[r->body_len] == '\0');
    CHECK(r->body_len <= max_body);
    if (head || r->status == 204 || r->status == 304)
        CHECK(r->body_len == 0);
}

static void check_error_line(const struct hubctl_http_response *r)
{
    char line[256];
    memset(line, 'x', sizeof(line));
    hubctl_api_error_format(r->status, r->reason,
                            hubctl_http_response_header_get0(r, "IotHub-ErrorCode"), r->body,
                            r->body_len, line, sizeof(line));
    const char *end = memchr(line, '\0', sizeof(line));
    CHECK(end != NULL);
    for (const char *c = line; c < end; c++)
        CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc != 1)
        return;
    const struct hubctl_http_response *x = &a->resp, *y = &b->resp;
    CHECK(x->status == y->status && strcmp(x->reason, y->reason) == 0);
    CHECK(x->nheaders == y->nheaders);
    for (size_t i = 0; i < x->nheaders; i++)
        CHECK(strcmp(x->headers[i].name, y->headers[i].name) == 0 &&
              strcmp(x->headers[i].value, y->headers[i].value) == 0);
    CHECK(x->body_len == y->body_len && memcmp(x->body, y->body, x->body_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int head = data[0] & 1;
    size_t max_body = (data[0] & 2) ? SMALL_BODY : HUBCTL_HTTPS_MAX_BODY_BYTES;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 16777619u;

    static struct outcome o[4];
    run(s, len, head, max_body, whole, seed, &o[0]);
    run(s, len, head, max_body, bytewise, seed, &o[1]);
    run(s, len, head, max_body, sevens, seed, &o[2]);
    run(s, len, head, max_body, hashed, seed, &o[3]);
    if (o[0].rc == 1) {
        check_complete(&o[0].resp, head, max_body);
        check_error_line(&o[0].resp);
    }
    for (int i = 1; i < 4; i++)
        check_same(&o[0], &o[i]);
    for (int i = 0; i < 4; i++)
        hubctl_http_response_free(&o[i].resp);
    return 0;
}
