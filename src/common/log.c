#include "common/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Room kept at the end of every line for " truncated=1" and the newline, so a
 * line that overflowed can always say so. */
#define TAIL_RESERVE (sizeof(" truncated=1\n") - 1)
#define KEY_MAX      64

static _Atomic int g_level = HUB_LOG_INFO;
static _Atomic int g_fd = 2;

static const char *const level_names[] = {
    [HUB_LOG_ERROR] = "error",
    [HUB_LOG_WARN] = "warn",
    [HUB_LOG_INFO] = "info",
    [HUB_LOG_DEBUG] = "debug",
};

void hub_log_level_set(enum hub_log_level level)
{
    atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
}

enum hub_log_level hub_log_level_get(void)
{
    return (enum hub_log_level)atomic_load_explicit(&g_level, memory_order_relaxed);
}

int hub_log_enabled(enum hub_log_level level)
{
    return (int)level <= atomic_load_explicit(&g_level, memory_order_relaxed);
}

const char *hub_log_level_name(enum hub_log_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[level];
}

int hub_log_level_parse(const char *name, enum hub_log_level *out, struct hub_err *err)
{
    for (size_t i = 0; name != NULL && i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum hub_log_level)i;
            return 0;
        }
    }
    return HUB_ERR(err, HUB_E_INVALID_ARG,
                   "unknown log level '%s' (allowed: error|warn|info|debug)",
                   name != NULL ? name : "");
}

void hub_log_fd_set(int fd)
{
    atomic_store_explicit(&g_fd, fd, memory_order_relaxed);
}

int hub_log_fd_get(void)
{
    return atomic_load_explicit(&g_fd, memory_order_relaxed);
}

/* Bytes that may appear in an unquoted value. */
static int is_bare(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != '=' && c != '\\';
}

/* Bytes written as themselves inside quotes. */
static int is_plain_in_quotes(unsigned char c)
{
    return is_bare(c) || c == ' ' || c == '=';
}

/* Width of byte c inside a quoted value. For bare bytes it is 1, the same as
 * unquoted, which lets one sizing pass serve both forms. */
static size_t quoted_width(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    if (is_plain_in_quotes(c))
        return 1;
    return 4; /* \xNN */
}

size_t hub_log_escape(const void *value, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *in = value;
    if (cap == 0)
        return 0;
    if (cap < 6) { /* no room for a marker: an empty value is the honest short form */
        size_t o = 0;
        if (cap >= 3) {
            out[o++] = '"';
            out[o++] = '"';
        }
        out[o] = '\0';
        return o;
    }
    /* Content budget: the cap, minus quotes, the marker and the NUL. */
    size_t budget = cap >= HUB_LOG_ESCAPED_MAX ? HUB_LOG_VALUE_MAX : cap - 6;

    /* Pass 1: how many input bytes fit, and does any of them need quotes. */
    size_t n = 0, width = 0;
    int quote = (len == 0);
    while (n < len) {
        size_t w = quoted_width(in[n]);
        if (width + w > budget)
            break;
        if (!is_bare(in[n]))
            quote = 1;
        width += w;
        n++;
    }
    int cut = n < len;
    if (cut && n == 0)
        quote = 1; /* a bare "..." alone would read as a real value */

    /* Pass 2: emit. */
    size_t o = 0;
    if (quote)
        out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (!quote || is_plain_in_quotes(c)) {
            out[o++] = (char)c;
            continue;
        }
        out[o++] = '\\';
        switch (c) {
        case '"':
        case '\\':
            out[o++] = (char)c;
            break;
        case '\n':
            out[o++] = 'n';
            break;
        case '\r':
            out[o++] = 'r';
            break;
        case '\t':
            out[o++] = 't';
            break;
        default:
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0f];
            break;
        }
    }
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    if (quote)
        out[o++] = '"';
    out[o] = '\0';
    return o;
}

/* Appends raw bytes if they fit below the tail reserve; otherwise marks the
 * line truncated. Returns 0 if appended. */
static int append(struct hub_log_line *line, const char *s, size_t n)
{
    if (line->truncated || line->len + n > sizeof(line->buf) - TAIL_RESERVE) {
        line->truncated = 1;
        return -1;
    }
    memcpy(line->buf + line->len, s, n);
    line->len += n;
    return 0;
}

/* Copies a key (or event name) into out with bytes outside [A-Za-z0-9_.-]
 * replaced, so that a key can never break the line's structure. */
static size_t sanitize_key(const char *key, char out[KEY_MAX + 1])
{
    size_t n = 0;
    if (key != NULL) {
        for (; key[n] != '\0' && n < KEY_MAX; n++) {
            unsigned char c = (unsigned char)key[n];
            int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '.' || c == '-';
            out[n] = ok ? (char)c : '_';
        }
    }
    if (n == 0)
        out[n++] = '_';
    out[n] = '\0';
    return n;
}

/* Appends " key=" + an already-escaped value as one unit: all or nothing. */
static void append_field(struct hub_log_line *line, const char *key, const char *escaped,
                         size_t escaped_len)
{
    char k[KEY_MAX + 3];
    k[0] = ' ';
    size_t kn = sanitize_key(key, k + 1) + 1;
    k[kn++] = '=';
    if (line->truncated || line->len + kn + escaped_len > sizeof(line->buf) - TAIL_RESERVE) {
        line->truncated = 1;
        return;
    }
    (void)append(line, k, kn);
    (void)append(line, escaped, escaped_len);
}

void hub_log_begin(struct hub_log_line *line, enum hub_log_level level, const char *event)
{
    line->len = 0;
    line->truncated = 0;
    line->active = hub_log_enabled(level);
    if (!line->active)
        return;

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char head[64];
    size_t n = strftime(head, sizeof(head), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(head + n, sizeof(head) - n, ".%03dZ level=", (int)(ts.tv_nsec / 1000000));
    (void)append(line, head, n);
    const char *name = hub_log_level_name(level);
    (void)append(line, name, strlen(name));
    (void)append(line, " event=", 7);
    char ev[KEY_MAX + 1];
    size_t evn = sanitize_key(event, ev);
    (void)append(line, ev, evn);
}

void hub_log_mem(struct hub_log_line *line, const char *key, const void *value, size_t len)
{
    if (!line->active)
        return;
    char esc[HUB_LOG_ESCAPED_MAX];
    size_t n = hub_log_escape(value, value != NULL ? len : 0, esc, sizeof(esc));
    append_field(line, key, esc, n);
}

void hub_log_str(struct hub_log_line *line, const char *key, const char *value)
{
    if (!line->active)
        return;
    hub_log_mem(line, key, value, value != NULL ? strlen(value) : 0);
}

void hub_log_int(struct hub_log_line *line, const char *key, long long value)
{
    if (!line->active)
        return;
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", value);
    append_field(line, key, num, (size_t)n);
}

void hub_log_uint(struct hub_log_line *line, const char *key, unsigned long long value)
{
    if (!line->active)
        return;
    char num[32];
    int n = snprintf(num, sizeof(num), "%llu", value);
    append_field(line, key, num, (size_t)n);
}

void hub_log_fmt(struct hub_log_line *line, const char *key, const char *fmt, ...)
{
    if (!line->active)
        return;
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(tmp))
        n = (int)sizeof(tmp) - 1; /* longer than any value cap anyway */
    hub_log_mem(line, key, tmp, (size_t)n);
}

void hub_log_err(struct hub_log_line *line, const struct hub_err *err)
{
    if (!line->active)
        return;
    if (err == NULL || err->code == 0) {
        hub_log_str(line, "reason", "OK");
        return;
    }
    hub_log_str(line, "reason", hub_err_name(err->code));
    hub_log_str(line, "detail", err->msg[0] != '\0' ? err->msg : hub_err_text(err->code));
}

void hub_log_end(struct hub_log_line *line)
{
    if (!line->active)
        return;
    line->active = 0; /* a second end must not write the line twice */
    /* The tail reserve guarantees both of these fit. */
    if (line->truncated) {
        memcpy(line->buf + line->len, " truncated=1", 12);
        line->len += 12;
    }
    line->buf[line->len++] = '\n';

    int fd = hub_log_fd_get();
    size_t off = 0;
    while (off < line->len) {
        ssize_t w = write(fd, line->buf + off, line->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* EAGAIN, EPIPE, closed fd: drop the line */
        /* A short write only happens on regular files near a full disk or on
         * non-blocking fds; finishing the line beats leaving half of one. */
        off += (size_t)w;
    }
}

void hub_log_kv(enum hub_log_level level, const char *event, ...)
{
    struct hub_log_line line;
    hub_log_begin(&line, level, event);
    if (!line.active)
        return;
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            break;
        const char *value = va_arg(ap, const char *);
        hub_log_str(&line, key, value);
    }
    va_end(ap);
    hub_log_end(&line);
}
