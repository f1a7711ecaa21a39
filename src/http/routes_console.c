/*
 * The web console's files: GET / is console/index.html, GET /console/{file}
 * the rest (app.js, style.css, ...). They are compiled into hubd
 * (console/embed.cmake), so a hub serves the console that matches its API
 * without files to install beside the binary.
 *
 * The console is a client of the public service API only: these routes
 * serve static bytes, need no api-version (a browser's address bar sends
 * none) and no token (the page holds the policy key and signs its own SAS
 * tokens). Every answer carries headers that keep the page from being
 * framed, from loading anything but its own files, and from leaking the URL:
 *
 *   Content-Security-Policy  default-src 'self' (no inline script or style,
 *                            no other origin), no <base>, no framing
 *   X-Content-Type-Options   nosniff
 *   X-Frame-Options          DENY (older browsers without frame-ancestors)
 *   Referrer-Policy          no-referrer
 *   Cache-Control            no-cache: revalidate with the ETag, so a new
 *                            hubd's console replaces the old one at once
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http/http_int.h"

static const char console_csp[] = "default-src 'self'; base-uri 'none'; form-action 'self'; "
                                  "frame-ancestors 'none'; object-src 'none'";

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
};

const char *hub_http__console_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot != NULL) {
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++) {
            if (strcmp(dot, content_types[i].ext) == 0)
                return content_types[i].type;
        }
    }
    return "application/octet-stream";
}

static const struct hub_http_console_asset *asset_find(const char *name)
{
    for (size_t i = 0; i < hub_http__console_asset_count; i++) {
        if (strcmp(hub_http__console_assets[i].name, name) == 0)
            return &hub_http__console_assets[i];
    }
    return NULL;
}

static void add_security_headers(struct hub_http_request *r)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(out, "Content-Security-Policy", console_csp);
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(out, "X-Frame-Options", "DENY");
    evhttp_add_header(out, "Referrer-Policy", "no-referrer");
    if (r->draining)
        evhttp_add_header(out, "Connection", "close");
}

/* If-None-Match holds the asset's etag (alone or in a list, or "*"). */
static int not_modified(struct hub_http_request *r, const char *etag)
{
    const char *inm = hub_http__header(r, "If-None-Match");
    if (inm == NULL)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    return strstr(inm, etag) != NULL;
}

static void reply_asset(struct hub_http_request *r, const struct hub_http_console_asset *a)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    add_security_headers(r);
    evhttp_add_header(out, "Cache-Control", "no-cache");
    evhttp_add_header(out, "ETag", a->etag);
    if (not_modified(r, a->etag)) {
        evhttp_send_reply(r->req, 304, "Not Modified", NULL);
        return;
    }
    evhttp_add_header(out, "Content-Type", hub_http__console_content_type(a->name));
    struct evbuffer *body = evbuffer_new();
    /* The bytes are static: referenced, not copied. */
    if (body == NULL || evbuffer_add_reference(body, a->bytes, a->len, NULL, NULL) != 0) {
        if (body != NULL)
            evbuffer_free(body);
        evhttp_clear_headers(out);
        hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory serving %s", a->name);
        return;
    }
    evhttp_send_reply(r->req, 200, "OK", body);
    evbuffer_free(body);
}

int hub_http__route_console(struct hub_http_request *r)
{
    const char *name;
    if (r->segment_count == 0 || (r->segment_count == 1 && strcmp(r->segments[0], "console") == 0))
        name = "index.html";
    else if (r->segment_count == 2 && strcmp(r->segments[0], "console") == 0)
        name = r->segments[1];
    else
        return 0;

    if (r->method != EVHTTP_REQ_GET) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", "GET");
        hub_http__reply_error(r, 405, "MethodNotAllowed", "BAD_METHOD", "%s is not allowed on %s",
                              r->method_name, r->path);
        return 1;
    }
    const struct hub_http_console_asset *a = asset_find(name);
    if (a == NULL) {
        hub_http__reply_error(r, 404, "NotFound", "NO_ROUTE", "no console file at %s", r->path);
        return 1;
    }
    reply_asset(r, a);
    return 1;
}
