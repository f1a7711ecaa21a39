#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *hub_err_name(int code)
{
    switch (code) {
    case HUB_OK:
        return "OK";
#define HUB_ERR_NAME_CASE(name, text)                                                              \
    case HUB_E_##name:                                                                             \
        return #name;
        HUB_ERR_MAP(HUB_ERR_NAME_CASE)
#undef HUB_ERR_NAME_CASE
    default:
        return "UNKNOWN";
    }
}

const char *hub_err_text(int code)
{
    switch (code) {
    case HUB_OK:
        return "success";
#define HUB_ERR_TEXT_CASE(name, text)                                                              \
    case HUB_E_##name:                                                                             \
        return text;
        HUB_ERR_MAP(HUB_ERR_TEXT_CASE)
#undef HUB_ERR_TEXT_CASE
    default:
        return "unknown error";
    }
}

int hub_err_set(struct hub_err *err, int code, const char *file, int line, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->file = file;
    err->line = line;
    if (fmt == NULL || fmt[0] == '\0') {
        snprintf(err->msg, sizeof(err->msg), "%s", hub_err_text(code));
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void hub_err_clear(struct hub_err *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
}
