/* Writing a response: JSON bodies, Azure's error shape, refusal logging. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/log.h"
#include "common/util.h"
#include "http/http_int.h"

static void add_common_headers(struct hub_http_request *r)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    /* RestApiClient parses a body only when Content-Type says application/json. */
    evhttp_add_header(out, "Content-Type", "application/json; charset=utf-8");
    if (r->draining)
        evhttp_add_header(out, "Connection", "close");
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 504:
        return "Gateway Timeout";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

void hub_http__reply_json(struct hub_http_request *r, int status, json_t *body)
{
    add_common_headers(r);
    struct evbuffer *buf = evbuffer_new();
    if (buf != NULL && body != NULL) {
        char *text = json_dumps(body, JSON_COMPACT);
        if (text != NULL) {
            evbuffer_add(buf, text, strlen(text));
            free(text);
        }
    }
    evhttp_send_reply(r->req, status, reason_phrase(status), buf);
    if (buf != NULL)
        evbuffer_free(buf);
    json_decref(body);
}

void hub_http__reply_empty(struct hub_http_request *r, int status)
{
    if (r->draining)
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Connection", "close");
    evhttp_send_reply(r->req, status, reason_phrase(status), NULL);
}

void hub_http__log_refused(struct hub_http_request *r, int status, const char *reason,
                           const char *detail, char tracking[HUB_HTTP_TRACKING_SIZE])
{
    if (hub_random_hex(16, tracking, NULL) != 0)
        snprintf(tracking, HUB_HTTP_TRACKING_SIZE, "0");
    struct hub_log_line line;
    hub_log_begin(&line, status >= 500 ? HUB_LOG_ERROR : HUB_LOG_WARN, "api_refused");
    hub_log_str(&line, "who", r->who);
    hub_log_str(&line, "peer", r->peer);
    hub_log_str(&line, "method", r->method_name);
    hub_log_str(&line, "uri", r->uri);
    hub_log_int(&line, "status", status);
    hub_log_str(&line, "reason", reason);
    hub_log_str(&line, "detail", detail);
    hub_log_str(&line, "tracking", tracking);
    hub_log_end(&line);
}

void hub_http__reply_error_logged(struct hub_http_request *r, int status, const char *azure_code,
                                  const char *reason, const char *log_detail,
                                  const char *client_text)
{
    char tracking[HUB_HTTP_TRACKING_SIZE];
    hub_http__log_refused(r, status, reason, log_detail, tracking);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%m/%d/%Y %H:%M:%S", &tm);

    char message[700];
    snprintf(message, sizeof(message), "ErrorCode:%s;%s", azure_code, client_text);
    char exception[128];
    snprintf(exception, sizeof(exception), "Tracking ID:%s-G:0-TimeStamp:%s", tracking, stamp);

    evhttp_add_header(evhttp_request_get_output_headers(r->req), "iothub-errorcode", azure_code);
    json_t *body = json_pack("{s:s, s:s}", "Message", message, "ExceptionMessage", exception);
    hub_http__reply_json(r, status, body);
}

void hub_http__reply_error(struct hub_http_request *r, int status, const char *azure_code,
                           const char *reason, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    hub_http__reply_error_logged(r, status, azure_code, reason, text, text);
}

void hub_http__reply_hub_err(struct hub_http_request *r, const struct hub_err *err,
                             const char *not_found_code, const char *exists_code)
{
    int status = 500;
    const char *code = "ServerError";
    switch (err->code) {
    case HUB_E_NOT_FOUND:
        status = 404;
        code = not_found_code;
        break;
    case HUB_E_EXISTS:
        status = 409;
        code = exists_code;
        break;
    case HUB_E_ETAG_MISMATCH:
        status = 412;
        code = "PreconditionFailed";
        break;
    case HUB_E_TOO_LARGE:
        status = 413;
        code = "MessageTooLarge";
        break;
    case HUB_E_LIMIT:
        status = 403;
        code = "IotHubQuotaExceeded";
        break;
    case HUB_E_UNAUTHORIZED:
        status = 401;
        code = "IotHubUnauthorizedAccess";
        break;
    case HUB_E_FORBIDDEN:
        status = 403;
        code = "IotHubUnauthorized";
        break;
    case HUB_E_IO:
        /* The store cannot write (disk full, read-only or failing data dir):
         * nothing was changed, reads still work and the same request will
         * succeed once the operator frees space, so this is the transient
         * 503 Azure answers while a unit is unavailable, not a 500. */
        status = 503;
        code = "ServiceUnavailable";
        break;
    case HUB_E_NOMEM:
    case HUB_E_STORE:
    case HUB_E_INTERNAL:
    case HUB_E_CRYPTO:
        break;
    case HUB_E_BUSY:
        status = 503;
        code = "ServiceUnavailable";
        break;
    default:
        /* Everything else is the client's input failing a rule: a certificate
         * that is not a CA, a bad verification cert, a malformed id. */
        status = 400;
        code = "ArgumentInvalid";
        break;
    }
    hub_http__reply_error(r, status, code, hub_err_name(err->code), "%s", err->msg);
}
