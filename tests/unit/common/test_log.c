#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

/* ---- helpers ------------------------------------------------------------ */

struct sink {
    int rd, wr;
};

/* A pipe the logger writes to; the read end is non-blocking so "nothing was
 * logged" reads as EAGAIN instead of hanging. */
static struct sink sink_open(void)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    hub_log_fd_set(fds[1]);
    return (struct sink){fds[0], fds[1]};
}

static void sink_close(struct sink *s)
{
    hub_log_fd_set(2);
    close(s->rd);
    close(s->wr);
}

/* Everything logged so far, NUL-terminated. */
static size_t sink_read(struct sink *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(s->rd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

/* "ts=YYYY-MM-DDTHH:MM:SS.mmmZ " then the rest; returns the rest or fails. */
static const char *skip_ts(const char *line)
{
    static const char pattern[] = "ts=dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; pattern[i] != '\0'; i++) {
        if (pattern[i] == 'd')
            assert_true(line[i] >= '0' && line[i] <= '9');
        else
            assert_int_equal(line[i], pattern[i]);
    }
    return line + sizeof(pattern) - 1;
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- escaping ----------------------------------------------------------- */

struct escape_case {
    const char *name;
    const char *in;
    size_t len;
    const char *want;
};

#define ESC(name, lit, want)                                                                       \
    {                                                                                              \
        name, lit, sizeof(lit) - 1, want                                                           \
    }

static void test_escape_table(void **state)
{
    (void)state;
    static const struct escape_case cases[] = {
        ESC("plain", "d1", "d1"),
        ESC("plain punctuation", "127.0.0.1:5555", "127.0.0.1:5555"),
        ESC("empty", "", "\"\""),
        ESC("space", "a b", "\"a b\""),
        ESC("quote", "say \"hi\"", "\"say \\\"hi\\\"\""),
        ESC("equals", "k=v", "\"k=v\""),
        ESC("backslash", "C:\\x", "\"C:\\\\x\""),
        ESC("newline", "line\nnext", "\"line\\nnext\""),
        ESC("cr tab", "\r\t", "\"\\r\\t\""),
        ESC("control", "\x01", "\"\\x01\""),
        ESC("nul inside", "a\0b", "\"a\\x00b\""),
        ESC("del and high", "\x7f\xff", "\"\\x7f\\xff\""),
        ESC("utf8 is bytes", "caf\xc3\xa9", "\"caf\\xc3\\xa9\""),
        ESC("log injection", "x\nts=0 level=error", "\"x\\nts=0 level=error\""),
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[HUB_LOG_ESCAPED_MAX];
        size_t n = hub_log_escape(cases[i].in, cases[i].len, out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case '%s': got [%s] want [%s]", cases[i].name, out, cases[i].want);
        assert_int_equal(n, strlen(out));
    }
}

static void test_escape_caps_long_values(void **state)
{
    (void)state;
    char out[HUB_LOG_ESCAPED_MAX];

    /* Exactly the cap: kept whole, no marker. */
    char *a256 = repeat('a', HUB_LOG_VALUE_MAX);
    assert_int_equal(hub_log_escape(a256, HUB_LOG_VALUE_MAX, out, sizeof(out)), HUB_LOG_VALUE_MAX);
    assert_string_equal(out, a256);

    /* One over: cut at the cap, marker appended, still bare. */
    char *a300 = repeat('a', 300);
    size_t n = hub_log_escape(a300, 300, out, sizeof(out));
    assert_int_equal(n, HUB_LOG_VALUE_MAX + 3);
    assert_memory_equal(out, a300, HUB_LOG_VALUE_MAX);
    assert_string_equal(out + HUB_LOG_VALUE_MAX, "...");

    /* Escapes count against the cap and are never split: 256 / 4 = 64. */
    char *ctl = repeat('\x01', 300);
    n = hub_log_escape(ctl, 300, out, sizeof(out));
    assert_int_equal(n, 1 + 64 * 4 + 3 + 1);
    assert_int_equal(out[0], '"');
    assert_memory_equal(out + 1, "\\x01\\x01", 8);
    assert_string_equal(out + 1 + 64 * 4, "...\"");

    /* The byte that needs quoting falls past the cut: the kept part is bare. */
    char *tail = repeat('a', 300);
    tail[255] = '"';
    n = hub_log_escape(tail, 300, out, sizeof(out));
    assert_int_equal(n, 255 + 3);
    assert_string_equal(out + 255, "...");

    free(a256);
    free(a300);
    free(ctl);
    free(tail);
}

static void test_escape_small_buffers(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(hub_log_escape("abcdefghijkl", 12, out, 10), 7);
    assert_string_equal(out, "abcd...");
    assert_int_equal(hub_log_escape("a b c d e f", 11, out, 10), 9);
    assert_string_equal(out, "\"a b ...\"");
    assert_int_equal(hub_log_escape("\n\n\n\n\n\n", 6, out, 8), 7);
    assert_string_equal(out, "\"\\n...\"");
    /* Too small for the marker: the empty form, never an overflow. */
    assert_int_equal(hub_log_escape("abcdef", 6, out, 5), 2);
    assert_string_equal(out, "\"\"");
    assert_int_equal(hub_log_escape("abcdef", 6, out, 2), 0);
    assert_string_equal(out, "");
    assert_int_equal(hub_log_escape(NULL, 0, out, sizeof(out)), 2);
    assert_string_equal(out, "\"\"");
}

/* ---- lines -------------------------------------------------------------- */

static void test_line_format(void **state)
{
    (void)state;
    struct sink s = sink_open();
    struct hub_err err = {0};
    HUB_ERR(&err, HUB_E_CHAIN_UNTRUSTED, "issuer \"CN=x\" unknown");

    struct hub_log_line l;
    hub_log_begin(&l, HUB_LOG_WARN, "api_refused");
    hub_log_str(&l, "policy", "svc owner");
    hub_log_int(&l, "status", 401);
    hub_log_int(&l, "delta", -7);
    hub_log_uint(&l, "bytes", 18446744073709551615ull);
    hub_log_fmt(&l, "peer", "%s:%d", "127.0.0.1", 5555);
    hub_log_mem(&l, "sample", "\x10MQ", 3);
    hub_log_str(&l, "none", NULL);
    hub_log_str(&l, "bad key=x", "v");
    hub_log_err(&l, &err);
    hub_log_end(&l);
    hub_log_end(&l); /* a second end writes nothing */

    char buf[4096];
    sink_read(&s, buf, sizeof(buf));
    assert_string_equal(skip_ts(buf),
                        "level=warn event=api_refused policy=\"svc owner\" status=401 delta=-7 "
                        "bytes=18446744073709551615 peer=127.0.0.1:5555 sample=\"\\x10MQ\" "
                        "none=\"\" bad_key_x=v reason=CHAIN_UNTRUSTED "
                        "detail=\"issuer \\\"CN=x\\\" unknown\"\n");
    sink_close(&s);
}

static void test_err_ok_and_kv(void **state)
{
    (void)state;
    struct sink s = sink_open();
    hub_log_kv(HUB_LOG_INFO, "listening", "addr", "::", "port", "443", (char *)NULL);
    struct hub_log_line l;
    hub_log_begin(&l, HUB_LOG_ERROR, "bad event name!");
    hub_log_err(&l, NULL);
    hub_log_end(&l);

    char buf[4096];
    sink_read(&s, buf, sizeof(buf));
    char *second = strchr(buf, '\n');
    assert_non_null(second);
    *second++ = '\0';
    assert_string_equal(skip_ts(buf), "level=info event=listening addr=:: port=443");
    assert_string_equal(skip_ts(second), "level=error event=bad_event_name_ reason=OK\n");
    sink_close(&s);
}

static void test_long_line_is_truncated_whole_fields(void **state)
{
    (void)state;
    struct sink s = sink_open();
    char *big = repeat('v', 400);
    struct hub_log_line l;
    hub_log_begin(&l, HUB_LOG_INFO, "big");
    for (int i = 0; i < 12; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        hub_log_str(&l, key, big);
    }
    hub_log_str(&l, "small", "x"); /* would fit, but order matters: dropped too */
    hub_log_end(&l);

    char buf[8192];
    size_t n = sink_read(&s, buf, sizeof(buf));
    assert_true(n <= HUB_LOG_LINE_MAX);
    assert_int_equal(buf[n - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* one line */
    const char *end = " truncated=1\n";
    assert_string_equal(buf + n - strlen(end), end);
    /* The last field kept is whole: 256 v's and the marker, then the flag. */
    const char *before = buf + n - strlen(end) - 3;
    assert_memory_equal(before, "...", 3);
    assert_int_equal(before[-HUB_LOG_VALUE_MAX - 1], '=');
    assert_null(strstr(buf, "small="));
    free(big);
    sink_close(&s);
}

/* ---- levels ------------------------------------------------------------- */

static void test_level_filter(void **state)
{
    (void)state;
    struct sink s = sink_open();
    hub_log_level_set(HUB_LOG_WARN);
    assert_int_equal(hub_log_level_get(), HUB_LOG_WARN);
    assert_true(hub_log_enabled(HUB_LOG_ERROR));
    assert_true(hub_log_enabled(HUB_LOG_WARN));
    assert_false(hub_log_enabled(HUB_LOG_INFO));
    assert_false(hub_log_enabled(HUB_LOG_DEBUG));

    hub_log_kv(HUB_LOG_INFO, "dropped_info", (char *)NULL);
    hub_log_kv(HUB_LOG_DEBUG, "dropped_debug", (char *)NULL);
    hub_log_kv(HUB_LOG_WARN, "kept_warn", (char *)NULL);
    hub_log_kv(HUB_LOG_ERROR, "kept_error", (char *)NULL);
    char buf[4096];
    sink_read(&s, buf, sizeof(buf));
    assert_null(strstr(buf, "dropped"));
    assert_non_null(strstr(buf, "level=warn event=kept_warn\n"));
    assert_non_null(strstr(buf, "level=error event=kept_error\n"));

    hub_log_level_set(HUB_LOG_DEBUG);
    hub_log_kv(HUB_LOG_DEBUG, "now_kept", (char *)NULL);
    sink_read(&s, buf, sizeof(buf));
    assert_non_null(strstr(buf, "level=debug event=now_kept\n"));

    hub_log_level_set(HUB_LOG_INFO);
    sink_close(&s);
}

static void test_level_names(void **state)
{
    (void)state;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        enum hub_log_level lv;
        assert_int_equal(hub_log_level_parse(names[i], &lv, NULL), 0);
        assert_int_equal(lv, i);
        assert_string_equal(hub_log_level_name(lv), names[i]);
    }
    struct hub_err err = {0};
    enum hub_log_level lv;
    assert_int_equal(hub_log_level_parse("verbose", &lv, &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "error|warn|info|debug"));
    assert_int_equal(hub_log_level_parse(NULL, &lv, NULL), HUB_E_INVALID_ARG);
    assert_string_equal(hub_log_level_name((enum hub_log_level)9), "unknown");
}

/* ---- one write per line ------------------------------------------------- */

/* On a SOCK_SEQPACKET socket every write(2) is one message, so counting
 * messages counts writes: a line must arrive as exactly one. */
static void test_one_write_per_line(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    hub_log_fd_set(sv[0]);
    char *big = repeat('z', 300);
    struct hub_log_line l;
    hub_log_begin(&l, HUB_LOG_INFO, "one_write");
    for (int i = 0; i < 5; i++)
        hub_log_str(&l, "v", big);
    hub_log_end(&l);
    hub_log_fd_set(2);

    char buf[HUB_LOG_LINE_MAX * 2];
    ssize_t n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT);
    assert_true(n > 5 * HUB_LOG_VALUE_MAX);
    assert_int_equal(buf[n - 1], '\n');
    assert_memory_equal(skip_ts(buf), "level=info event=one_write v=zzz", 32);
    errno = 0;
    assert_int_equal(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    free(big);
    close(sv[0]);
    close(sv[1]);
}

#define STRESS_THREADS 8
#define STRESS_LINES   300

struct stress_reader {
    int fd;
    char *buf;
    size_t len, cap;
};

static void *stress_read(void *arg)
{
    struct stress_reader *r = arg;
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    return NULL;
}

static void *stress_write(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[251];
    memset(pad, 'A' + id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < STRESS_LINES; i++) {
        struct hub_log_line l;
        hub_log_begin(&l, HUB_LOG_INFO, "stress");
        hub_log_int(&l, "thread", id);
        hub_log_int(&l, "seq", i);
        for (int k = 0; k < 4; k++)
            hub_log_str(&l, "pad", pad);
        hub_log_end(&l);
    }
    return NULL;
}

/* Eight threads log long lines into one pipe while a reader drains it: every
 * line read back must be whole, so nothing interleaved. */
static void test_concurrent_lines_never_interleave(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    hub_log_fd_set(fds[1]);
    struct stress_reader r = {fds[0], NULL, 0, (size_t)STRESS_THREADS * STRESS_LINES * 1200};
    r.buf = malloc(r.cap + 1);
    assert_non_null(r.buf);
    pthread_t reader, writers[STRESS_THREADS];
    assert_int_equal(pthread_create(&reader, NULL, stress_read, &r), 0);
    for (intptr_t t = 0; t < STRESS_THREADS; t++)
        assert_int_equal(pthread_create(&writers[t], NULL, stress_write, (void *)t), 0);
    for (int t = 0; t < STRESS_THREADS; t++)
        pthread_join(writers[t], NULL);
    hub_log_fd_set(2);
    close(fds[1]);
    pthread_join(reader, NULL);
    close(fds[0]);
    r.buf[r.len] = '\0';

    int next_seq[STRESS_THREADS] = {0};
    size_t lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(r.buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        int id = -1, seq = -1, used = 0;
        const char *rest = skip_ts(line);
        assert_int_equal(
            sscanf(rest, "level=info event=stress thread=%d seq=%d%n", &id, &seq, &used), 2);
        assert_true(id >= 0 && id < STRESS_THREADS);
        assert_int_equal(seq, next_seq[id]); /* one thread's lines stay in order */
        next_seq[id]++;
        rest += used;
        for (int k = 0; k < 4; k++) {
            assert_memory_equal(rest, " pad=", 5);
            for (int c = 0; c < 250; c++)
                assert_int_equal(rest[5 + c], 'A' + id);
            rest += 5 + 250;
        }
        assert_int_equal(*rest, '\0');
        lines++;
    }
    assert_int_equal(lines, STRESS_THREADS * STRESS_LINES);
    free(r.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_table),
        cmocka_unit_test(test_escape_caps_long_values),
        cmocka_unit_test(test_escape_small_buffers),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_err_ok_and_kv),
        cmocka_unit_test(test_long_line_is_truncated_whole_fields),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_one_write_per_line),
        cmocka_unit_test(test_concurrent_lines_never_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
