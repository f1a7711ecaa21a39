/*
 * log: one line per event, `key=value`, stable keys. Every line starts with
 * the same three keys, then the event's own fields in the order they were added:
 *
 *   ts=2026-11-26T19:30:00.123Z level=warn event=connect_refused device=d1
 *      peer=127.0.0.1:5555 reason=CHAIN_UNTRUSTED detail="no path to a trusted CA"
 *
 * Value encoding (what a log reader may rely on):
 *
 * | value                                            | written as                   |
 * |--------------------------------------------------|------------------------------|
 * | non-empty, only bytes 0x21..0x7e except " = \    | as is: `device=d1`           |
 * | empty                                            | `key=""`                     |
 * | anything else                                    | in double quotes, with       |
 * |   `"` and `\`                                    |   `\"` and `\\`              |
 * |   newline, CR, tab                               |   `\n`, `\r`, `\t`           |
 * |   other bytes < 0x20, 0x7f and >= 0x80           |   `\xNN` (lowercase hex)     |
 * |   space and `=`                                  |   themselves                 |
 * | longer than HUB_LOG_VALUE_MAX bytes once escaped | cut at an escape boundary,   |
 * |                                                  |   then `...` appended        |
 *
 * Keys and event names come from code, not from peers; still, any byte
 * outside [A-Za-z0-9_.-] in them is written as `_` so a line always splits.
 * A line that would exceed HUB_LOG_LINE_MAX drops the fields that do not fit
 * and ends with ` truncated=1`.
 *
 * Why a builder on the stack: the logging path never allocates (a refusal
 * under memory pressure must still be logged), and the whole line leaves in
 * one write(2), so lines from concurrent threads never interleave (a pipe
 * guarantees this up to PIPE_BUF = 4096 bytes; HUB_LOG_LINE_MAX stays below).
 *
 * Thread rules: every function may be called from any thread. The level and
 * the output fd are process-wide atomics, meant to be set once at startup by
 * main before threads start; changing them later is safe but racy in effect.
 * A `struct hub_log_line` belongs to one thread between begin and end.
 *
 * Who logs: the layer where a connection's or request's fate is decided
 * (net, http, hubd). Pure layers return a hub_err and never log.
 */
#ifndef HUB_COMMON_LOG_H
#define HUB_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "common/err.h"

enum hub_log_level {
    HUB_LOG_ERROR = 0,
    HUB_LOG_WARN = 1,
    HUB_LOG_INFO = 2,
    HUB_LOG_DEBUG = 3,
};

/* Whole line including the newline. Below PIPE_BUF (4096) so one write is atomic. */
#define HUB_LOG_LINE_MAX 2048
/* Cap of one escaped value, quotes and the "..." marker not counted. */
#define HUB_LOG_VALUE_MAX 256
/* Buffer size that holds any value hub_log_escape can produce, NUL included:
 * two quotes, HUB_LOG_VALUE_MAX bytes, "...", NUL. */
#define HUB_LOG_ESCAPED_MAX (HUB_LOG_VALUE_MAX + 6)

/* Sets the lowest-priority level that is written (default HUB_LOG_INFO). */
void hub_log_level_set(enum hub_log_level level);
enum hub_log_level hub_log_level_get(void);
/* 1 if a line at `level` would be written; lets callers skip costly fields. */
int hub_log_enabled(enum hub_log_level level);

/* "error", "warn", "info", "debug"; "unknown" for anything else. Static. */
const char *hub_log_level_name(enum hub_log_level level);
/* Parses one of the names above (exact, lowercase). 0, or HUB_E_INVALID_ARG. */
int hub_log_level_parse(const char *name, enum hub_log_level *out, struct hub_err *err);

/* Sets the file descriptor lines go to (default 2, stderr). The fd stays the
 * caller's: the logger never closes it. The caller should ignore SIGPIPE if
 * the fd is a pipe or socket (hub_net_init does). */
void hub_log_fd_set(int fd);
int hub_log_fd_get(void);

/*
 * Escapes `len` bytes of `value` per the table above into out (capacity
 * `cap` >= 1, NUL-terminated; HUB_LOG_ESCAPED_MAX always suffices) and
 * returns the length written. A smaller cap cuts the value shorter, still
 * with its closing quote and the "..." marker (a cap below 6 leaves no room
 * for the marker and writes `""`). `value` may be NULL if len is 0.
 */
size_t hub_log_escape(const void *value, size_t len, char *out, size_t cap);

/* A line being built. Lives on the caller's stack; no cleanup needed. */
struct hub_log_line {
    size_t len;
    int active;    /* 0: level filtered out, every append is a no-op */
    int truncated; /* a field did not fit; later fields are dropped too */
    char buf[HUB_LOG_LINE_MAX];
};

/* Starts a line with ts, level and event. If `level` is filtered out the line
 * is inactive and the appends and hub_log_end cost almost nothing. */
void hub_log_begin(struct hub_log_line *line, enum hub_log_level level, const char *event);
/* key=value with value a NUL-terminated string; NULL is written as `""`. */
void hub_log_str(struct hub_log_line *line, const char *key, const char *value);
/* key=value from len bytes that need not be NUL-terminated or printable:
 * use it for bytes a peer sent (a safe, capped sample). */
void hub_log_mem(struct hub_log_line *line, const char *key, const void *value, size_t len);
void hub_log_int(struct hub_log_line *line, const char *key, long long value);
void hub_log_uint(struct hub_log_line *line, const char *key, unsigned long long value);
/* key=value with a printf-formatted value (formatted into a 512-byte stack
 * buffer first, then escaped like any value). */
void hub_log_fmt(struct hub_log_line *line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* reason=<hub_err_name(code)> detail="<msg>" from a filled hub_err; a NULL or
 * zero err writes reason=OK. */
void hub_log_err(struct hub_log_line *line, const struct hub_err *err);
/* Adds the newline and writes the line with one write(2) (retried on EINTR;
 * a line that cannot be written is dropped: there is nowhere to report it). */
void hub_log_end(struct hub_log_line *line);

/* One-call form for string fields: key, value pairs ended by NULL, e.g.
 * hub_log_kv(HUB_LOG_INFO, "listening", "addr", "::", "port", "443", NULL). */
void hub_log_kv(enum hub_log_level level, const char *event, ...) __attribute__((sentinel));

#endif
