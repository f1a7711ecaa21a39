/*
 * hubctl's HTTPS client and API helpers, the pure parts: response parsing
 * (every framing, every split point), request formatting (no header
 * injection), error-body formatting, path encoding and request bodies.
 * hubctl's sources are not a library, so the pure files are included here
 * (h2o's t/00unit style).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/hubctl/api_format.c"
#include "../../../src/hubctl/https_parse.c"

/* ---- response parsing ----------------------------------------------------- */

struct resp_case {
    const char *name;
    const char *raw;
    int head_request;
    size_t max_body; /* 0: default */
    int want_rc;     /* 1 complete, or a HUB_E_* code */
    int needs_eof;   /* completes only at EOF (read-until-close) */
    int status;
    const char *body;
    const char *hdr_name, *hdr_value; /* a header that must be present, or NULL */
};

#define OK200(b) "HTTP/1.1 200 OK\r\nContent-Length: " #b "\r\n\r\n"

static const struct resp_case resp_cases[] = {
    {"content-length", OK200(7) "{\"a\":1}", 0, 0, 1, 0, 200, "{\"a\":1}", "content-length", "7"},
    {"content-length zero", OK200(0), 0, 0, 1, 0, 200, "", NULL, NULL},
    {"bytes after the end are ignored", OK200(2) "hiGARBAGE", 0, 0, 1, 0, 200, "hi", NULL, NULL},
    {"header value trimmed, name case-insensitive",
     "HTTP/1.1 404 Not Found\r\niothub-errorcode: \t DeviceNotFound  \r\nContent-Length: 0\r\n\r\n",
     0, 0, 1, 0, 404, "", "IoTHub-ErrorCode", "DeviceNotFound"},
    {"no reason phrase", "HTTP/1.1 204\r\n\r\n", 0, 0, 1, 0, 204, "", NULL, NULL},
    {"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", 0, 0, 1, 0, 200, "abc", NULL,
     NULL},
    {"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, 0, 1, 0, 200, "x", NULL, NULL},
    {"chunked, extensions, trailers",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;ext=1\r\nhello\r\nA \r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n",
     0, 0, 1, 0, 200, "hello, world!!!", "transfer-encoding", "chunked"},
    {"chunked, bare LF", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", 0, 0, 1, 0,
     200, "abc", NULL, NULL},
    {"chunked, uppercase coding and hex",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n"
     "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n",
     0, 0, 1, 0, 200, "0123456789abcdefghijk", NULL, NULL},
    {"transfer-encoding overrides content-length",
     "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2\r\nok\r\n0\r\n\r\n",
     0, 0, 1, 0, 200, "ok", NULL, NULL},
    {"gzip, chunked is chunked",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     "1\r\nz\r\n0\r\n\r\n",
     0, 0, 1, 0, 200, "z", NULL, NULL},
    {"non-chunked transfer-encoding reads until close",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw", 0, 0, 1, 1, 200, "raw", NULL, NULL},
    {"no length reads until close", "HTTP/1.1 200 OK\r\n\r\nuntil close", 0, 0, 1, 1, 200,
     "until close", NULL, NULL},
    {"204 has no body whatever the headers", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
     0, 0, 1, 0, 204, "", NULL, NULL},
    {"304 has no body", "HTTP/1.1 304 Not Modified\r\n\r\n", 0, 0, 1, 0, 304, "", NULL, NULL},
    {"HEAD response has no body", OK200(10), 1, 0, 1, 0, 200, "", NULL, NULL},
    {"100 Continue is skipped",
     "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: "
     "2\r\n\r\n"
     "{}",
     0, 0, 1, 0, 201, "{}", NULL, NULL},
    {"equal duplicate content-length",
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nq", 0, 0, 1, 0, 200, "q",
     NULL, NULL},
    {"body exactly at the cap", OK200(4) "abcd", 0, 4, 1, 0, 200, "abcd", NULL, NULL},
    {"chunked body exactly at the cap",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n", 0, 4,
     1, 0, 200, "abcd", NULL, NULL},

    /* refusals */
    {"HTTP/2 status line", "HTTP/2 200 OK\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0, NULL, NULL, NULL},
    {"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0, NULL, NULL, NULL},
    {"status glued to reason", "HTTP/1.1 200OK\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0, NULL, NULL, NULL},
    {"status below 100", "HTTP/1.1 099 X\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0, NULL, NULL, NULL},
    {"not HTTP at all", "SSH-2.0-OpenSSH\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0, NULL, NULL, NULL},
    {"obs-fold", "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0, NULL, NULL,
     NULL},
    {"header without colon", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0, NULL,
     NULL, NULL},
    {"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx", 0, 0, HUB_E_PARSE, 0,
     0, NULL, NULL, NULL},
    {"control byte in a header value", "HTTP/1.1 200 OK\r\nX: a\x01z\r\n\r\n", 0, 0, HUB_E_PARSE, 0,
     0, NULL, NULL, NULL},
    {"bare CR in a header value", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0,
     NULL, NULL, NULL},
    {"conflicting content-length",
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0, 0, HUB_E_PARSE, 0, 0,
     NULL, NULL, NULL},
    {"content-length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", 0, 0,
     HUB_E_PARSE, 0, 0, NULL, NULL, NULL},
    {"negative content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, 0, HUB_E_PARSE,
     0, 0, NULL, NULL, NULL},
    {"empty content-length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0,
     NULL, NULL, NULL},
    {"content-length over the cap", OK200(5) "abcde", 0, 4, HUB_E_TOO_LARGE, 0, 0, NULL, NULL,
     NULL},
    {"content-length overflows",
     "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", 0, 0, HUB_E_TOO_LARGE, 0,
     0, NULL, NULL, NULL},
    {"chunk size not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 0,
     HUB_E_PARSE, 0, 0, NULL, NULL, NULL},
    {"chunk size with junk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\n", 0, 0,
     HUB_E_PARSE, 0, 0, NULL, NULL, NULL},
    {"chunk data without CRLF",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n", 0, 0, HUB_E_PARSE, 0, 0,
     NULL, NULL, NULL},
    {"chunk size overflows",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "fffffffffffffffffffffff\r\n",
     0, 0, HUB_E_TOO_LARGE, 0, 0, NULL, NULL, NULL},
    {"chunks over the cap",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
     0, 4, HUB_E_TOO_LARGE, 0, 0, NULL, NULL, NULL},
    {"101 switching protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, 0, HUB_E_PARSE, 0, 0,
     NULL, NULL, NULL},

    /* truncations seen at EOF */
    {"nothing at all", "", 0, 0, HUB_E_PARSE, 1, 0, NULL, NULL, NULL},
    {"head cut short", "HTTP/1.1 200 OK\r\nContent-Le", 0, 0, HUB_E_PARSE, 1, 0, NULL, NULL, NULL},
    {"content-length body cut short", OK200(10) "abc", 0, 0, HUB_E_PARSE, 1, 0, NULL, NULL, NULL},
    {"chunked body without last chunk",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 0, 0, HUB_E_PARSE, 1, 0,
     NULL, NULL, NULL},
    {"chunked body without final CRLF",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n", 0, 0, HUB_E_PARSE, 1,
     0, NULL, NULL, NULL},
};

/* Feeds raw in pieces of the given sizes (0 = the rest), then EOF if needed. */
static int run_parser(const struct resp_case *c, const size_t *pieces, size_t npieces,
                      struct hubctl_http_response *resp, struct hub_err *err)
{
    struct hubctl_http_parser p;
    hubctl_http_parser_init(&p, resp, c->head_request, c->max_body);
    size_t len = strlen(c->raw), off = 0;
    int rc = 0;
    for (size_t i = 0; i < npieces || off < len; i++) {
        size_t n = i < npieces && pieces[i] > 0 ? pieces[i] : len - off;
        if (n > len - off)
            n = len - off;
        rc = hubctl_http_parser_feed(&p, c->raw + off, n, err);
        off += n;
        if (rc != 0 || off >= len)
            break;
    }
    if (rc == 0)
        rc = hubctl_http_parser_finish(&p, err);
    hubctl_http_parser_free(&p);
    return rc;
}

static void check_outcome(const struct resp_case *c, int rc,
                          const struct hubctl_http_response *resp, const struct hub_err *err,
                          const char *how)
{
    if (rc != c->want_rc)
        fail_msg("%s (%s): rc %d (%s), want %d", c->name, how, rc, err->msg, c->want_rc);
    if (rc != 1) {
        assert_int_equal(err->code, c->want_rc);
        assert_true(err->msg[0] != '\0');
        return;
    }
    assert_int_equal(resp->status, c->status);
    assert_non_null(resp->body);
    assert_int_equal(resp->body_len, strlen(c->body));
    assert_memory_equal(resp->body, c->body, resp->body_len);
    assert_int_equal(resp->body[resp->body_len], '\0');
    if (c->hdr_name != NULL) {
        const char *v = hubctl_http_response_header_get0(resp, c->hdr_name);
        assert_non_null(v);
        assert_string_equal(v, c->hdr_value);
    }
}

static void test_response_table_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
        const struct resp_case *c = &resp_cases[i];
        struct hubctl_http_response resp;
        struct hub_err err = {0};
        /* In one piece the outcome must be known without EOF, unless needs_eof. */
        struct hubctl_http_parser p;
        hubctl_http_parser_init(&p, &resp, c->head_request, c->max_body);
        int rc = hubctl_http_parser_feed(&p, c->raw, strlen(c->raw), &err);
        if (c->needs_eof) {
            if (rc != 0)
                fail_msg("%s: rc %d before EOF (%s), want 0", c->name, rc, err.msg);
            rc = hubctl_http_parser_finish(&p, &err);
        }
        hubctl_http_parser_free(&p);
        check_outcome(c, rc, &resp, &err, "whole");
        hubctl_http_response_free(&resp);
    }
}

static void test_response_table_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
        const struct resp_case *c = &resp_cases[i];
        size_t len = strlen(c->raw);
        for (size_t cut = 1; cut < len; cut++) {
            size_t pieces[2] = {cut, 0};
            struct hubctl_http_response resp;
            struct hub_err err = {0};
            int rc = run_parser(c, pieces, 2, &resp, &err);
            char how[32];
            snprintf(how, sizeof(how), "split at %zu", cut);
            check_outcome(c, rc, &resp, &err, how);
            hubctl_http_response_free(&resp);
        }
    }
}

static void test_response_table_byte_by_byte(void **state)
{
    (void)state;
    size_t ones[512];
    for (size_t i = 0; i < 512; i++)
        ones[i] = 1;
    for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
        const struct resp_case *c = &resp_cases[i];
        assert_true(strlen(c->raw) < 512);
        struct hubctl_http_response resp;
        struct hub_err err = {0};
        int rc = run_parser(c, ones, 512, &resp, &err);
        check_outcome(c, rc, &resp, &err, "byte by byte");
        hubctl_http_response_free(&resp);
    }
}

static void test_response_head_and_header_caps(void **state)
{
    (void)state;
    struct hubctl_http_response resp;
    struct hubctl_http_parser p;
    struct hub_err err = {0};

    /* A head that never ends is refused once over the cap, not buffered forever. */
    hubctl_http_parser_init(&p, &resp, 0, 0);
    int rc = hubctl_http_parser_feed(&p, "HTTP/1.1 200 OK\r\n", 17, &err);
    assert_int_equal(rc, 0);
    char line[1024];
    memset(line, 'a', sizeof(line));
    memcpy(line, "X-Pad: ", 7);
    line[sizeof(line) - 2] = '\r';
    line[sizeof(line) - 1] = '\n';
    for (int i = 0; i < 200 && rc == 0; i++)
        rc = hubctl_http_parser_feed(&p, line, sizeof(line), &err);
    assert_int_equal(rc, HUB_E_TOO_LARGE);
    hubctl_http_parser_free(&p);
    hubctl_http_response_free(&resp);

    /* More headers than HUBCTL_HTTPS_MAX_HEADERS. */
    char head[8192] = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i <= HUBCTL_HTTPS_MAX_HEADERS; i++)
        snprintf(head + strlen(head), sizeof(head) - strlen(head), "X-%d: v\r\n", i);
    strcat(head, "Content-Length: 0\r\n\r\n");
    hubctl_http_parser_init(&p, &resp, 0, 0);
    rc = hubctl_http_parser_feed(&p, head, strlen(head), &err);
    assert_int_equal(rc, HUB_E_TOO_LARGE);
    hubctl_http_parser_free(&p);
    hubctl_http_response_free(&resp);

    /* Exactly HUBCTL_HTTPS_MAX_HEADERS (Content-Length included) is fine. */
    strcpy(head, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < HUBCTL_HTTPS_MAX_HEADERS - 1; i++)
        snprintf(head + strlen(head), sizeof(head) - strlen(head), "X-%d: v\r\n", i);
    strcat(head, "Content-Length: 0\r\n\r\n");
    hubctl_http_parser_init(&p, &resp, 0, 0);
    rc = hubctl_http_parser_feed(&p, head, strlen(head), &err);
    assert_int_equal(rc, 1);
    assert_int_equal(resp.nheaders, HUBCTL_HTTPS_MAX_HEADERS);
    assert_string_equal(hubctl_http_response_header_get0(&resp, "x-7"), "v");
    assert_null(hubctl_http_response_header_get0(&resp, "X-Absent"));
    hubctl_http_parser_free(&p);
    hubctl_http_response_free(&resp);
    hubctl_http_response_free(&resp); /* twice is safe */
    hubctl_http_response_free(NULL);
}

static void test_response_large_chunked_body(void **state)
{
    (void)state;
    /* 1 MiB in 1000-byte chunks, fed in 4 KiB reads: the parser keeps up and
     * reassembles exactly. */
    const size_t total = 1024 * 1024;
    struct hubctl_http_response resp;
    struct hubctl_http_parser p;
    struct hub_err err = {0};
    hubctl_http_parser_init(&p, &resp, 0, 0);
    size_t cap = total * 2, len = 0;
    char *wire = malloc(cap);
    assert_non_null(wire);
    len += (size_t)sprintf(wire, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t sent = 0; sent < total;) {
        size_t n = total - sent < 1000 ? total - sent : 1000;
        len += (size_t)sprintf(wire + len, "%zx\r\n", n);
        for (size_t k = 0; k < n; k++)
            wire[len++] = (char)('a' + (sent + k) % 26);
        len += (size_t)sprintf(wire + len, "\r\n");
        sent += n;
    }
    len += (size_t)sprintf(wire + len, "0\r\n\r\n");
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += 4096)
        rc = hubctl_http_parser_feed(&p, wire + off, len - off < 4096 ? len - off : 4096, &err);
    assert_int_equal(rc, 1);
    assert_int_equal(resp.body_len, total);
    for (size_t k = 0; k < total; k++)
        if (resp.body[k] != (char)('a' + k % 26))
            fail_msg("byte %zu differs", k);
    free(wire);
    hubctl_http_parser_free(&p);
    hubctl_http_response_free(&resp);
}

/* ---- request formatting --------------------------------------------------- */

static void test_request_format_exact(void **state)
{
    (void)state;
    const char *headers[] = {"Authorization: SharedAccessSignature sr=h&sig=x%2B&se=1",
                             "If-Match: \"*\"", NULL};
    char *out = NULL;
    struct hub_err err = {0};
    assert_int_equal(hubctl_http_request_format("PUT", "hub.example", 443,
                                                "/devices/a%20b?api-version=2021-04-12", headers,
                                                12, &out, &err),
                     0);
    assert_string_equal(out, "PUT /devices/a%20b?api-version=2021-04-12 HTTP/1.1\r\n"
                             "Host: hub.example\r\n"
                             "Authorization: SharedAccessSignature sr=h&sig=x%2B&se=1\r\n"
                             "If-Match: \"*\"\r\n"
                             "Content-Length: 12\r\n"
                             "Connection: close\r\n\r\n");
    free(out);

    /* GET: no Content-Length; a non-443 port goes into Host. */
    assert_int_equal(
        hubctl_http_request_format("GET", "localhost", 8443, "/devices", NULL, 0, &out, &err), 0);
    assert_string_equal(out, "GET /devices HTTP/1.1\r\nHost: localhost:8443\r\n"
                             "Connection: close\r\n\r\n");
    free(out);

    /* POST without a body still says Content-Length: 0 (servers may want a length). */
    assert_int_equal(hubctl_http_request_format("POST", "::1", 443, "/x", NULL, 0, &out, &err), 0);
    assert_string_equal(out, "POST /x HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n");
    free(out);

    assert_int_equal(hubctl_http_request_format("GET", "fe80::1", 8443, "/", NULL, 0, &out, &err),
                     0);
    assert_non_null(strstr(out, "\r\nHost: [fe80::1]:8443\r\n"));
    free(out);
}

static void test_request_format_refuses_injection(void **state)
{
    (void)state;
    static const struct {
        const char *method, *host, *path, *header;
        unsigned port;
    } bad[] = {
        {"GET\r\nX", "h", "/", NULL, 443},
        {"", "h", "/", NULL, 443},
        {"G T", "h", "/", NULL, 443},
        {"GET", "h", "/a b", NULL, 443},
        {"GET", "h", "/a\r\nX-Evil: 1", NULL, 443},
        {"GET", "h", "relative", NULL, 443},
        {"GET", "h", "/\x80", NULL, 443},
        {"GET", "h\r\nX: 1", "/", NULL, 443},
        {"GET", "", "/", NULL, 443},
        {"GET", "h/x", "/", NULL, 443},
        {"GET", "h", "/", NULL, 0},
        {"GET", "h", "/", NULL, 65536},
        {"GET", "h", "/", "If-Match: a\r\nX-Evil: 1", 443},
        {"GET", "h", "/", "If-Match: a\nb", 443},
        {"GET", "h", "/", "NoColon", 443},
        {"GET", "h", "/", "Bad Name: v", 443},
        {"GET", "h", "/", ": v", 443},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *headers[] = {bad[i].header, NULL};
        char *out = (char *)"untouched";
        struct hub_err err = {0};
        int rc = hubctl_http_request_format(bad[i].method, bad[i].host, bad[i].port, bad[i].path,
                                            headers, 0, &out, &err);
        if (rc != HUB_E_INVALID_ARG)
            fail_msg("case %zu accepted (rc %d)", i, rc);
        assert_null(out);
    }
}

/* ---- API error bodies --------------------------------------------------- */

static void test_error_format_table(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *reason, *hdr, *body, *want;
    } cases[] = {
        {404, "Not Found", "DeviceNotFound",
         "{\"Message\":\"ErrorCode:DeviceNotFound;Device dev9 not found\","
         "\"ExceptionMessage\":\"Tracking ID:1-G:0\"}",
         "404 DeviceNotFound: Device dev9 not found"},
        {412, "Precondition Failed", NULL,
         "{\"Message\":\"ErrorCode:PreconditionFailed;etag mismatch\"}",
         "412 PreconditionFailed: etag mismatch"},
        /* Message without the ErrorCode prefix: the header names the code. */
        {409, "Conflict", "DeviceAlreadyExists", "{\"Message\":\"A device with ID d1 exists\"}",
         "409 DeviceAlreadyExists: A device with ID d1 exists"},
        /* CA (resource-provider) shape. */
        {400, "Bad Request", NULL,
         "{\"code\":\"InvalidCertificate\",\"httpStatusCode\":\"BadRequest\","
         "\"message\":\"holds a private key\",\"details\":\"\"}",
         "400 InvalidCertificate: holds a private key"},
        /* ARM wrapper. */
        {404, "Not Found", NULL,
         "{\"error\":{\"code\":\"CertificateNotFound\",\"message\":\"no such CA\"}}",
         "404 CertificateNotFound: no such CA"},
        /* Not JSON: first line of the body, code from the reason phrase. */
        {502, "Bad Gateway", NULL, "<html>proxy error\r\n<body>...",
         "502 Bad Gateway: <html>proxy error"},
        /* Nothing but a status. */
        {503, "Service Unavailable", NULL, "", "503 Service Unavailable"},
        {500, "", NULL, "", "500"},
        {401, NULL, "IotHubUnauthorizedAccess", "", "401 IotHubUnauthorizedAccess"},
        /* JSON without known members. */
        {400, "Bad Request", NULL, "{\"x\":1}", "400 Bad Request"},
        /* Control bytes from the server never reach the terminal. */
        {400, "Bad Request", NULL, "{\"Message\":\"ErrorCode:Bad\\u001b[31m;te\\u0007xt\"}",
         "400 Bad?[31m: te?xt"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[HUBCTL_API_ERRMSG_MAX];
        hubctl_api_error_format(cases[i].status, cases[i].reason, cases[i].hdr, cases[i].body,
                                strlen(cases[i].body), out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, out, cases[i].want);
    }
    /* Truncation keeps a NUL. */
    char small[8];
    hubctl_api_error_format(404, "Not Found", NULL, "", 0, small, sizeof(small));
    assert_string_equal(small, "404 Not");
}

/* ---- path encoding, names, thumbprints, bodies -------------------------- */

static void test_path_encode(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"dev1", "dev1"},
        {"a b/c", "a%20b%2Fc"},
        {"x:y=z@$,;", "x%3Ay%3Dz%40%24%2C%3B"},
        {"-_.!~*'()", "-_.!~*'()"},
        {"%?#&+", "%25%3F%23%26%2B"},
        {"\xc3\xa9", "%C3%A9"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        struct hub_err err = {0};
        assert_int_equal(hubctl_api_path_encode(cases[i].in, out, sizeof(out), &err), 0);
        assert_string_equal(out, cases[i].want);
    }
    char tiny[4];
    struct hub_err err = {0};
    assert_int_equal(hubctl_api_path_encode("abc", tiny, sizeof(tiny), &err), 0);
    assert_int_equal(hubctl_api_path_encode("abcd", tiny, sizeof(tiny), &err), HUB_E_TOO_LARGE);
    assert_int_equal(hubctl_api_path_encode("a/", tiny, sizeof(tiny), &err), HUB_E_TOO_LARGE);
}

static void test_ca_name_and_thumbprint(void **state)
{
    (void)state;
    assert_true(hubctl_api_ca_name_valid("my-CA_1.root"));
    assert_true(hubctl_api_ca_name_valid(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
    assert_false(hubctl_api_ca_name_valid(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 65 */
    assert_false(hubctl_api_ca_name_valid(""));
    assert_false(hubctl_api_ca_name_valid("a/b"));
    assert_false(hubctl_api_ca_name_valid("a b"));
    assert_false(hubctl_api_ca_name_valid("..%2F"));

    static const struct {
        const char *in, *want; /* want NULL: refused */
    } cases[] = {
        {"97388663832d0393c9246cab4fba2c8677185a25", "97388663832D0393C9246CAB4FBA2C8677185A25"},
        {"97:38:86:63:83:2D:03:93:C9:24:6C:AB:4F:BA:2C:86:77:18:5A:25",
         "97388663832D0393C9246CAB4FBA2C8677185A25"},
        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"},
        {"97388663832d0393c9246cab4fba2c8677185a2", NULL},   /* 39 */
        {"97388663832d0393c9246cab4fba2c8677185a25F", NULL}, /* 41 */
        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", NULL},
        {"g7388663832d0393c9246cab4fba2c8677185a25", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[65];
        struct hub_err err = {0};
        int rc = hubctl_api_thumbprint_normalize(cases[i].in, out, &err);
        if (cases[i].want == NULL) {
            assert_int_equal(rc, HUB_E_INVALID_ARG);
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(out, cases[i].want);
        }
    }

    enum hubctl_device_auth a;
    struct hub_err err = {0};
    assert_int_equal(hubctl_device_auth_parse("SelfSigned", &a, &err), 0);
    assert_int_equal(a, HUBCTL_DEVICE_AUTH_SELFSIGNED);
    assert_int_equal(hubctl_device_auth_parse("sas", &a, &err), 0);
    assert_int_equal(a, HUBCTL_DEVICE_AUTH_SAS);
    assert_int_equal(hubctl_device_auth_parse("x509", &a, &err), HUB_E_INVALID_ARG);
}

static void assert_json_is(json_t *got, const char *want_text)
{
    assert_non_null(got);
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT);
        fail_msg("got %s, want %s", g, want_text);
    }
    json_decref(want);
    json_decref(got);
}

static void test_request_bodies(void **state)
{
    (void)state;
    assert_json_is(hubctl_api_device_body_new("dev1", HUBCTL_DEVICE_AUTH_CA, NULL, NULL),
                   "{\"deviceId\":\"dev1\",\"status\":\"enabled\","
                   "\"authentication\":{\"type\":\"certificateAuthority\"}}");
    assert_json_is(hubctl_api_device_body_new("d", HUBCTL_DEVICE_AUTH_SELFSIGNED, "AB", "CD"),
                   "{\"deviceId\":\"d\",\"status\":\"enabled\",\"authentication\":{\"type\":"
                   "\"selfSigned\",\"x509Thumbprint\":{\"primaryThumbprint\":\"AB\","
                   "\"secondaryThumbprint\":\"CD\"}}}");
    assert_json_is(hubctl_api_device_body_new("d", HUBCTL_DEVICE_AUTH_SELFSIGNED, "AB", NULL),
                   "{\"deviceId\":\"d\",\"status\":\"enabled\",\"authentication\":{\"type\":"
                   "\"selfSigned\",\"x509Thumbprint\":{\"primaryThumbprint\":\"AB\","
                   "\"secondaryThumbprint\":null}}}");
    assert_json_is(hubctl_api_device_body_new("d", HUBCTL_DEVICE_AUTH_SAS, NULL, NULL),
                   "{\"deviceId\":\"d\",\"status\":\"enabled\",\"authentication\":{\"type\":"
                   "\"sas\",\"symmetricKey\":{\"primaryKey\":\"\",\"secondaryKey\":\"\"}}}");
    assert_null(hubctl_api_device_body_new("d", HUBCTL_DEVICE_AUTH_SELFSIGNED, NULL, NULL));
    assert_null(hubctl_api_device_body_new("\xff", HUBCTL_DEVICE_AUTH_CA, NULL, NULL));

    assert_json_is(hubctl_api_ca_body_new("-----BEGIN CERTIFICATE-----\nMII=\n", 1),
                   "{\"properties\":{\"certificate\":\"-----BEGIN CERTIFICATE-----\\nMII=\\n\","
                   "\"isVerified\":true}}");
    assert_json_is(hubctl_api_ca_body_new("x", 0),
                   "{\"properties\":{\"certificate\":\"x\",\"isVerified\":false}}");
}

static void test_text_sanitize(void **state)
{
    (void)state;
    char out[8];
    hubctl_api_text_sanitize("a\x1b[2Jb", out, sizeof(out));
    assert_string_equal(out, "a?[2Jb");
    hubctl_api_text_sanitize("0123456789", out, sizeof(out));
    assert_string_equal(out, "0123456");
    hubctl_api_text_sanitize(NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_table_whole),
        cmocka_unit_test(test_response_table_every_split),
        cmocka_unit_test(test_response_table_byte_by_byte),
        cmocka_unit_test(test_response_head_and_header_caps),
        cmocka_unit_test(test_response_large_chunked_body),
        cmocka_unit_test(test_request_format_exact),
        cmocka_unit_test(test_request_format_refuses_injection),
        cmocka_unit_test(test_error_format_table),
        cmocka_unit_test(test_path_encode),
        cmocka_unit_test(test_ca_name_and_thumbprint),
        cmocka_unit_test(test_request_bodies),
        cmocka_unit_test(test_text_sanitize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
