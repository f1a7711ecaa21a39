/*
 * `hubctl monitor`: prints device-to-cloud messages as they arrive, like
 * `az iot hub monitor-events`, by long-polling the hub's telemetry log
 * (server side: src/http/routes_messages.c):
 *
 *   GET /messages/events?from=SEQ&limit=N&wait=S[&deviceId=ID]
 *     200 [ {sequenceNumber, deviceId, moduleId?, enqueuedTime, body,
 *            bodyEncoding: "utf-8"|"base64", properties: {k: v|null},
 *            systemProperties: {name: value}} ... ]
 *   The hub answers as soon as a message with sequence number >= from
 *   exists, or after `wait` seconds with []. The next read starts at the
 *   last sequence number + 1, so nothing is printed twice or skipped.
 *
 * Where to start: the API has no "latest" call. Default --from 1 replays
 * everything the hub still retains (telemetry_retention_s); --new first reads
 * with wait=0 until an empty page and starts after the last message found,
 * so only messages sent from then on are printed.
 *
 * Ending: --count N exits 0 after N messages; --timeout S exits 1 when fewer
 * than N arrived within S seconds (without --count it is how long to watch,
 * and exits 0); Ctrl-C exits 0. stdout is flushed after every message (a
 * test reading through a pipe sees each one at once). With --json each
 * message is the hub's object on one line (JSON Lines).
 *
 * The pure part (event_print) comes first; tests/unit/hubctl/
 * test_monitor_format.c #includes this file to reach it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hubctl/api.h"
#include "hubctl/hubctl.h"

/* Longest long poll: well under the HTTPS client's 30 s I/O timeout and the
 * hub's default max_poll_wait_s (60), so a quiet hub costs one request per 20 s. */
#define MONITOR_WAIT_MAX_S 20
#define MONITOR_PAGE       100
/* Page size while skipping the existing messages (--new): the hub's maximum. */
#define MONITOR_SKIP_PAGE 1000
/* Margin on top of `wait` for the whole exchange of one long poll. */
#define MONITOR_IO_MARGIN_MS 30000
/* Pause after an empty answer that came back early (wait=0 fallback, or a hub
 * that is shutting down and answers at once): no busy loop. */
#define MONITOR_IDLE_PAUSE_MS 1000
/* Width of the label column, as hubctl_api_field_print. */
#define LABEL_W 18

/* ---- pure: one event as text --------------------------------------------------- */

/* Writes s with control bytes replaced by '?', except that a newline (or CRLF)
 * continues on a new line indented past the label column. */
static void body_text_write(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < len && s[i + 1] == '\n')
            continue;
        if (c == '\n')
            fprintf(out, "\n%*s", LABEL_W + 1, "");
        else
            fputc(c < 0x20 || c == 0x7f ? '?' : (int)c, out);
    }
}

/* "label:   value" with value sanitised; nothing when value is NULL. */
static void field_write(FILE *out, int indent, const char *label, const char *value)
{
    if (value == NULL)
        return;
    char safe_label[128], safe[4096];
    hubctl_api_text_sanitize(label, safe_label, sizeof(safe_label) - 1);
    strcat(safe_label, ":");
    hubctl_api_text_sanitize(value, safe, sizeof(safe));
    fprintf(out, "%*s%-*s %s\n", indent, "", LABEL_W - indent, safe_label, safe);
}

/* A "properties:" section, one indented line per key; nothing when empty. */
static void props_write(FILE *out, const char *title, const json_t *props)
{
    if (!json_is_object(props) || json_object_size(props) == 0)
        return;
    fprintf(out, "%s:\n", title);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)props, k, v)
    {
        if (json_is_string(v)) {
            field_write(out, 2, k, json_string_value(v));
        } else if (json_is_null(v)) {
            field_write(out, 2, k, "(null)");
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            field_write(out, 2, k, text != NULL ? text : "?");
            free(text);
        }
    }
}

/*
 * One telemetry message as a block, a blank line after it:
 *
 *   device:            dev1
 *   module:            m1                       (only when present)
 *   sequenceNumber:    12
 *   enqueuedTime:      2026-01-01T00:00:00.123Z
 *   body:              {"t":21}                 (text; more lines indented)
 *   body:              [base64, 3 bytes, not UTF-8] AAEC
 *   properties:                                 (only when there are some)
 *     alert:           true
 *   systemProperties:
 *     messageId:       m-1
 *
 * Everything the device sent is sanitised (no terminal escapes).
 * Returns 0, or -1 when ev is not an object with an integer sequenceNumber
 * (nothing is written then).
 */
static int event_print(FILE *out, const json_t *ev)
{
    const json_t *seq = json_object_get(ev, "sequenceNumber");
    if (!json_is_object(ev) || !json_is_integer(seq))
        return -1;
    field_write(out, 0, "device", json_string_value(json_object_get(ev, "deviceId")));
    field_write(out, 0, "module", json_string_value(json_object_get(ev, "moduleId")));
    fprintf(out, "%-*s %" JSON_INTEGER_FORMAT "\n", LABEL_W,
            "sequenceNumber:", json_integer_value(seq));
    field_write(out, 0, "enqueuedTime", json_string_value(json_object_get(ev, "enqueuedTime")));

    const json_t *body = json_object_get(ev, "body");
    const char *encoding = json_string_value(json_object_get(ev, "bodyEncoding"));
    fprintf(out, "%-*s ", LABEL_W, "body:");
    if (!json_is_string(body)) {
        fputs("(none)", out);
    } else if (encoding != NULL && strcmp(encoding, "base64") == 0) {
        const char *b64 = json_string_value(body);
        size_t n = json_string_length(body);
        size_t pad = (n >= 1 && b64[n - 1] == '=') + (n >= 2 && b64[n - 2] == '=');
        size_t bytes = n / 4 * 3 >= pad ? n / 4 * 3 - pad : 0;
        fprintf(out, "[base64, %zu bytes, not UTF-8] ", bytes);
        body_text_write(out, b64, n);
    } else if (json_string_length(body) == 0) {
        fputs("(empty)", out);
    } else {
        body_text_write(out, json_string_value(body), json_string_length(body));
    }
    fputc('\n', out);
    props_write(out, "properties", json_object_get(ev, "properties"));
    props_write(out, "systemProperties", json_object_get(ev, "systemProperties"));
    fputc('\n', out);
    return 0;
}

/* ---- command line ------------------------------------------------------------- */

static const char monitor_usage_text[] =
    "usage: hubctl [global options] monitor [--device ID] [--from SEQ | --new]\n"
    "                                       [--count N] [--timeout SECONDS]\n"
    "\n"
    "Prints device-to-cloud messages (telemetry) as they arrive: device, sequence\n"
    "number, enqueued time, body (text, or base64 when it is not UTF-8),\n"
    "application and system properties. With --json: one JSON object per line.\n"
    "\n"
    "  --device ID        only messages from device ID\n"
    "  --from SEQ         start at sequence number SEQ (default 1: every message\n"
    "                     the hub still retains)\n"
    "  --new              only messages that arrive after monitor starts\n"
    "  --count N          exit 0 after N messages\n"
    "  --timeout SECONDS  stop after SECONDS; with --count, exit 1 (printing how\n"
    "                     many arrived) if fewer than N did\n"
    "\n"
    "Ctrl-C stops it (exit 0).\n";

enum {
    MON_OPT_JSON = 0x100,
    MON_OPT_DEVICE,
    MON_OPT_FROM,
    MON_OPT_NEW,
    MON_OPT_COUNT,
    MON_OPT_TIMEOUT,
};

struct monitor_args {
    int json, new_only;
    const char *device;
    char enc_device[3 * HUB_AUTH_ID_MAX + 1];
    long long from;
    long long count;     /* 0: no limit */
    long long timeout_s; /* 0: none */
};

/* Decimal in [min, max] into *out; -1 when malformed or out of range. */
static int monitor_number(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* -1 to continue, else the exit status. */
static int monitor_parse_args(int argc, char **argv, struct monitor_args *a)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"json", no_argument, NULL, MON_OPT_JSON},
                                         {"device", required_argument, NULL, MON_OPT_DEVICE},
                                         {"from", required_argument, NULL, MON_OPT_FROM},
                                         {"new", no_argument, NULL, MON_OPT_NEW},
                                         {"count", required_argument, NULL, MON_OPT_COUNT},
                                         {"timeout", required_argument, NULL, MON_OPT_TIMEOUT},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    a->from = 1;
    int from_given = 0;
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *bad_value = NULL;
        switch (c) {
        case 'h':
            fputs(monitor_usage_text, stdout);
            return HUBCTL_OK;
        case MON_OPT_JSON:
            a->json = 1;
            break;
        case MON_OPT_DEVICE:
            a->device = optarg;
            break;
        case MON_OPT_FROM:
            from_given = 1;
            if (monitor_number(optarg, 1, INT64_MAX, &a->from) < 0)
                bad_value = "--from must be a sequence number from 1";
            break;
        case MON_OPT_NEW:
            a->new_only = 1;
            break;
        case MON_OPT_COUNT:
            if (monitor_number(optarg, 1, INT32_MAX, &a->count) < 0)
                bad_value = "--count must be a number from 1";
            break;
        case MON_OPT_TIMEOUT:
            /* a year: far beyond any use, far from overflowing milliseconds */
            if (monitor_number(optarg, 1, 365LL * 24 * 3600, &a->timeout_s) < 0)
                bad_value = "--timeout must be seconds from 1";
            break;
        default:
            fprintf(stderr, "hubctl: monitor: unknown option or missing value '%s'\n",
                    argv[optind - 1]);
            fputs(monitor_usage_text, stderr);
            return HUBCTL_USAGE;
        }
        if (bad_value != NULL) {
            fprintf(stderr, "hubctl: %s, not '%s'\n", bad_value, optarg);
            return HUBCTL_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hubctl: monitor takes no arguments ('%s')\n", argv[optind]);
        fputs(monitor_usage_text, stderr);
        return HUBCTL_USAGE;
    }
    if (from_given && a->new_only) {
        fprintf(stderr, "hubctl: monitor: --from and --new exclude each other\n");
        return HUBCTL_USAGE;
    }
    if (a->device != NULL) {
        struct hub_err err = {0};
        if (a->device[0] == '\0' || strlen(a->device) > HUB_AUTH_ID_MAX ||
            hubctl_api_path_encode(a->device, a->enc_device, sizeof(a->enc_device), &err) < 0) {
            fprintf(stderr, "hubctl: device id must be 1..%d characters\n", HUB_AUTH_ID_MAX);
            return HUBCTL_USAGE;
        }
    }
    return -1;
}

/* ---- the loop ------------------------------------------------------------------ */

/* Ctrl-C: while we wait for the hub there is nothing to finish, so exit at
 * once (a long poll would otherwise hold us up to MONITOR_WAIT_MAX_S); while
 * a message is being printed, finish it first so the output stays whole. */
static volatile sig_atomic_t monitor_printing;
static volatile sig_atomic_t monitor_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    if (!monitor_printing)
        _exit(HUBCTL_OK);
    monitor_interrupted = 1;
}

static long long monitor_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void monitor_sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

struct monitor {
    struct hubctl_api api;
    const struct monitor_args *args;
    long long from;
    long long received;
    int wait_max_s; /* MONITOR_WAIT_MAX_S, or 0 if the hub refuses long polls that long */
};

/* One GET /messages/events. Fills *res; returns 0 or the exit status on failure. */
static int monitor_read(struct monitor *m, long long limit, int wait_s,
                        struct hubctl_api_response *res)
{
    char path[128 + sizeof(m->args->enc_device)];
    snprintf(path, sizeof(path), "/messages/events?from=%lld&limit=%lld&wait=%d%s%s", m->from,
             limit, wait_s, m->args->device ? "&deviceId=" : "",
             m->args->device ? m->args->enc_device : "");
    struct hubctl_api_request req = {
        .method = "GET",
        .path = path,
        .io_timeout_ms = wait_s * 1000 + MONITOR_IO_MARGIN_MS,
        /* a UTF-8 body may hold NUL bytes: the hub sends them as \u0000 */
        .json_flags = JSON_ALLOW_NUL};
    struct hub_err err = {0};
    if (hubctl_api_call_raw(&m->api, &req, res, &err) == 0) {
        if (json_is_array(res->json))
            return 0;
        fprintf(stderr, "hubctl: the hub's answer to GET /messages/events is not a JSON array\n");
        return HUBCTL_USAGE;
    }
    /* A hub configured with max_poll_wait_s < 20 refuses our wait: poll with
     * wait=0 once a second instead of giving up. */
    if (res->status == 400 && wait_s > 0 && strstr(err.msg, "wait") != NULL) {
        fprintf(stderr, "hubctl: the hub refuses long polls (%s); polling every %d ms\n", err.msg,
                MONITOR_IDLE_PAUSE_MS);
        m->wait_max_s = 0;
        hubctl_api_response_free(res);
        return 0; /* an empty page: the caller pauses and retries */
    }
    return hubctl_api_fail(res, &err);
}

/* --new: reads without waiting until an empty page; m->from ends past the last message. */
static int monitor_skip_existing(struct monitor *m)
{
    long long skipped = 0;
    for (;;) {
        struct hubctl_api_response res = {0};
        int ex = monitor_read(m, MONITOR_SKIP_PAGE, 0, &res);
        if (ex != 0) {
            hubctl_api_response_free(&res);
            return ex;
        }
        size_t n = json_array_size(res.json);
        const json_t *last = json_array_get(res.json, n > 0 ? n - 1 : 0);
        long long seq = json_integer_value(json_object_get(last, "sequenceNumber"));
        hubctl_api_response_free(&res);
        if (n == 0)
            break;
        if (seq < m->from) {
            fprintf(stderr, "hubctl: the hub sent sequence number %lld when asked from %lld\n", seq,
                    m->from);
            return HUBCTL_USAGE;
        }
        skipped += (long long)n;
        m->from = seq + 1;
    }
    if (skipped > 0)
        fprintf(stderr, "hubctl: skipped %lld existing message(s)\n", skipped);
    return 0;
}

/* Prints one page. Returns -1 to continue, else the exit status. */
static int monitor_print_page(struct monitor *m, const json_t *page)
{
    size_t i;
    const json_t *ev;
    json_array_foreach(page, i, ev)
    {
        long long seq = json_integer_value(json_object_get(ev, "sequenceNumber"));
        if (!json_is_integer(json_object_get(ev, "sequenceNumber")) || seq < m->from) {
            /* Guards the loop: a hub going backwards would make us print forever. */
            fprintf(stderr, "hubctl: the hub sent a message without a sequence number >= %lld\n",
                    m->from);
            return HUBCTL_USAGE;
        }
        monitor_printing = 1;
        if (m->args->json) {
            json_dumpf(ev, stdout, JSON_COMPACT);
            fputc('\n', stdout);
        } else {
            event_print(stdout, ev);
        }
        int write_failed = fflush(stdout) != 0 || ferror(stdout);
        monitor_printing = 0;
        if (write_failed) {
            /* `hubctl monitor | head -3`: the reader left; that is an end, not an error. */
            if (errno == EPIPE)
                return HUBCTL_OK;
            fprintf(stderr, "hubctl: writing to stdout: %s\n", strerror(errno));
            return HUBCTL_USAGE;
        }
        m->from = seq + 1;
        m->received++;
        if (monitor_interrupted)
            return HUBCTL_OK;
        if (m->args->count > 0 && m->received >= m->args->count)
            return HUBCTL_OK;
    }
    return -1;
}

int hubctl_monitor_main(const struct hubctl_globals *g, int argc, char **argv)
{
    struct monitor_args a;
    int ex = monitor_parse_args(argc, argv, &a);
    if (ex >= 0)
        return ex;
    struct monitor m = {.args = &a, .from = a.from, .wait_max_s = MONITOR_WAIT_MAX_S};
    struct hub_err err = {0};
    if (hubctl_api_open(&m.api, g, &err) < 0)
        return hubctl_api_fail(NULL, &err);
    a.json |= m.api.json;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    long long deadline = a.timeout_s > 0 ? monitor_mono_ms() + a.timeout_s * 1000 : 0;
    if (a.new_only && (ex = monitor_skip_existing(&m)) != 0)
        return ex;
    fprintf(stderr, "hubctl: monitoring %s%s from sequence number %lld (Ctrl-C to stop)\n",
            a.device ? "device " : "every device", a.device ? a.device : "", m.from);

    for (;;) {
        long long now = monitor_mono_ms();
        if (deadline > 0 && now >= deadline)
            break;
        int wait_s = m.wait_max_s;
        if (deadline > 0 && (deadline - now + 999) / 1000 < wait_s)
            wait_s = (int)((deadline - now + 999) / 1000);
        long long limit = MONITOR_PAGE;
        if (a.count > 0 && a.count - m.received < limit)
            limit = a.count - m.received;
        struct hubctl_api_response res = {0};
        ex = monitor_read(&m, limit, wait_s, &res);
        if (ex == 0)
            ex = monitor_print_page(&m, res.json);
        size_t n = json_array_size(res.json);
        hubctl_api_response_free(&res);
        if (ex >= 0)
            return ex;
        /* An empty answer long before `wait` was up (wait=0, or a draining hub). */
        long long elapsed = monitor_mono_ms() - now;
        if (n == 0 && (wait_s == 0 || elapsed < (long long)wait_s * 500)) {
            long long pause = MONITOR_IDLE_PAUSE_MS;
            if (deadline > 0 && deadline - monitor_mono_ms() < pause)
                pause = deadline - monitor_mono_ms();
            if (pause > 0)
                monitor_sleep_ms(pause);
        }
    }
    if (a.count > 0) {
        fprintf(stderr, "hubctl: monitor: %lld of %lld message(s) arrived within %lld s\n",
                m.received, a.count, a.timeout_s);
        return HUBCTL_FAIL;
    }
    return HUBCTL_OK;
}
