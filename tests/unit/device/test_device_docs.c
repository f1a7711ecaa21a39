/*
 * device: docs/device-protocol.md must list every reason of
 * HUB_DEVICE_REASON_MAP, with the CONNACK code the map gives it, in the
 * reasons table of its "Authentication and refusals" section. Operators
 * search the docs for the `reason=` value of a log line, so a reason added
 * to the map without a row (or a code changed without the docs) fails here.
 *
 * A row of that table looks like
 *
 *   | `CHAIN_UNTRUSTED` | 5 | ... |
 *   | `PEER_CLOSED` | closed | ... |
 *
 * (first cell the name in backticks, second the CONNACK code, or "closed"
 * for the map's -1). Rows naming a reason the map no longer has fail too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/device.h"

#define SECTION_HEADING "## Authentication and refusals"

struct reason_row {
    const char *name;
    int connack; /* -1: a close reason */
};

static const struct reason_row map_rows[] = {
#define ROW(name, connack, text) {#name, connack},
    HUB_DEVICE_REASON_MAP(ROW)
#undef ROW
};
#define MAP_COUNT (sizeof(map_rows) / sizeof(map_rows[0]))

/* Appends one line to the report (truncating quietly when it is full). */
__attribute__((format(printf, 3, 4))) static void report_add(char *report, size_t cap,
                                                             const char *fmt, ...)
{
    size_t used = strlen(report);
    if (used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report + used, cap - used, fmt, ap);
    va_end(ap);
    used = strlen(report);
    if (used + 1 < cap) {
        report[used] = '\n';
        report[used + 1] = '\0';
    }
}

/* The section's text: from its heading to the next "## " heading (or the
 * end). *len_out gets its length. NULL when the heading is missing. */
static const char *section_find(const char *md, size_t *len_out)
{
    const char *p = md;
    const char *start = NULL;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, SECTION_HEADING, strlen(SECTION_HEADING)) == 0 &&
            (p[strlen(SECTION_HEADING)] == '\n' || p[strlen(SECTION_HEADING)] == '\0')) {
            start = p;
            break;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    if (start == NULL)
        return NULL;
    const char *end = start + strlen(SECTION_HEADING);
    for (;;) {
        end = strchr(end, '\n');
        if (end == NULL) {
            end = start + strlen(start);
            break;
        }
        end++;
        if (strncmp(end, "## ", 3) == 0)
            break;
    }
    *len_out = (size_t)(end - start);
    return start;
}

/*
 * Parses a line of the form "| `NAME` | CODE |..." into name (upper case,
 * digits, '_') and code ("closed" -> -1). 1 if the line is such a row, else
 * 0 (other tables in the section, prose).
 */
static int row_parse(const char *line, size_t len, char *name, size_t name_cap, int *code)
{
    const char *p = line, *end = line + len;
    if (end - p < 4 || strncmp(p, "| `", 3) != 0)
        return 0;
    p += 3;
    size_t n = 0;
    while (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) {
        if (n + 1 >= name_cap)
            return 0;
        name[n++] = *p++;
    }
    name[n] = '\0';
    if (n == 0 || end - p < 4 || strncmp(p, "` |", 3) != 0)
        return 0;
    p += 3;
    while (p < end && *p == ' ')
        p++;
    if (end - p >= 6 && strncmp(p, "closed", 6) == 0) {
        *code = -1;
        p += 6;
    } else if (p < end && *p >= '0' && *p <= '9') {
        int v = 0;
        while (p < end && *p >= '0' && *p <= '9' && v < 1000)
            v = v * 10 + (*p++ - '0');
        *code = v;
    } else {
        return 0;
    }
    while (p < end && *p == ' ')
        p++;
    return p < end && *p == '|';
}

/*
 * Checks `md` against `rows` (count entries): each name has exactly one
 * row with its code, and every row names a known reason. Returns the
 * number of problems and describes each in `report`.
 */
static size_t doc_check(const char *md, const struct reason_row *rows, size_t count, char *report,
                        size_t cap)
{
    report[0] = '\0';
    size_t len = 0;
    const char *sec = section_find(md, &len);
    if (sec == NULL) {
        report_add(report, cap, "no \"%s\" section", SECTION_HEADING);
        return 1;
    }
    size_t problems = 0;
    unsigned seen[256] = {0};
    if (count > sizeof(seen) / sizeof(seen[0]))
        fail_msg("more reasons than the checker expects (%zu)", count);
    const char *end = sec + len;
    for (const char *line = sec; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t llen = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
        char name[64];
        int code = 0;
        if (row_parse(line, llen, name, sizeof(name), &code)) {
            size_t i = 0;
            while (i < count && strcmp(rows[i].name, name) != 0)
                i++;
            if (i == count) {
                report_add(report, cap, "row for `%s`, which is not in HUB_DEVICE_REASON_MAP",
                           name);
                problems++;
            } else {
                seen[i]++;
                if (code != rows[i].connack) {
                    report_add(report, cap, "`%s`: the docs say %d, the map says %d", name, code,
                               rows[i].connack);
                    problems++;
                }
            }
        }
        line = nl != NULL ? nl + 1 : end;
    }
    for (size_t i = 0; i < count; i++) {
        if (seen[i] == 0) {
            report_add(report, cap, "`%s` (CONNACK %d) has no row", rows[i].name, rows[i].connack);
            problems++;
        } else if (seen[i] > 1) {
            report_add(report, cap, "`%s` has %u rows", rows[i].name, seen[i]);
            problems++;
        }
    }
    return problems;
}

static char *file_read_new(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t r = fread(buf + len, 1, cap - 1 - len, f);
        len += r;
        if (r == 0)
            break;
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

/* ---- the real document --------------------------------------------------- */

static void test_docs_list_every_reason(void **state)
{
    (void)state;
    const char *src = getenv("HUB_SOURCE_DIR");
    if (src == NULL)
        fail_msg("HUB_SOURCE_DIR is not set (ctest sets it to the repository root)");
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/device-protocol.md", src);
    char *md = file_read_new(path);
    if (md == NULL)
        fail_msg("cannot read %s", path);
    char report[8192];
    size_t problems = doc_check(md, map_rows, MAP_COUNT, report, sizeof(report));
    free(md);
    if (problems != 0) {
        /* cmocka cuts long failure messages: the list goes to stderr whole. */
        fprintf(stderr, "%s", report);
        fail_msg("%s is out of step with HUB_DEVICE_REASON_MAP (src/device/device.h): "
                 "%zu problem(s), listed above",
                 path, problems);
    }
}

/* The map and the functions that read it agree (the table above is built
 * from the same X-macro, so the docs check covers what the hub logs). */
static void test_map_matches_accessors(void **state)
{
    (void)state;
    assert_int_equal(MAP_COUNT, HUB_DEVICE_R__COUNT);
    for (size_t i = 0; i < MAP_COUNT; i++) {
        assert_string_equal(hub_device_reason_name((enum hub_device_reason)i), map_rows[i].name);
        assert_int_equal(hub_device_reason_connack((enum hub_device_reason)i), map_rows[i].connack);
    }
}

/* ---- the checker itself: it must catch what it is for -------------------- */

static const struct reason_row mini_rows[] = {
    {"OK", 0},
    {"CHAIN_UNTRUSTED", 5},
    {"PEER_CLOSED", -1},
};

#define MINI_HEAD                                                                                  \
    "# Title\n\n## Before\n\n| `CHAIN_UNTRUSTED` | 4 | outside the section: ignored "              \
    "|\n\n" SECTION_HEADING "\n\n| reason | CONNACK | what to do |\n|---|---|---|\n"
#define MINI_TAIL "\n## After\n\n| `NOT_A_REASON` | 1 | outside: ignored |\n"

static const struct {
    const char *name;
    const char *md;
    size_t problems;
    const char *says; /* a substring of the report, or NULL */
} checker_cases[] = {
    {"complete",
     MINI_HEAD
     "| `OK` | 0 | a |\n| `CHAIN_UNTRUSTED` | 5 | b |\n| `PEER_CLOSED` | closed | c |\n" MINI_TAIL,
     0, NULL},
    {"complete, last section of the file",
     MINI_HEAD "| `OK` | 0 | a |\n| `CHAIN_UNTRUSTED` | 5 | b |\n| `PEER_CLOSED` | closed | c |", 0,
     NULL},
    {"one reason missing", MINI_HEAD "| `OK` | 0 | a |\n| `PEER_CLOSED` | closed | c |\n" MINI_TAIL,
     1, "`CHAIN_UNTRUSTED` (CONNACK 5) has no row"},
    {"named only in prose, not in a row",
     MINI_HEAD
     "| `OK` | 0 | a |\n| `PEER_CLOSED` | closed | c |\nSee `CHAIN_UNTRUSTED`.\n" MINI_TAIL,
     1, "`CHAIN_UNTRUSTED` (CONNACK 5) has no row"},
    {"wrong CONNACK code",
     MINI_HEAD
     "| `OK` | 0 | a |\n| `CHAIN_UNTRUSTED` | 4 | b |\n| `PEER_CLOSED` | closed | c |\n" MINI_TAIL,
     1, "`CHAIN_UNTRUSTED`: the docs say 4, the map says 5"},
    {"close reason given a code",
     MINI_HEAD
     "| `OK` | 0 | a |\n| `CHAIN_UNTRUSTED` | 5 | b |\n| `PEER_CLOSED` | 5 | c |\n" MINI_TAIL,
     1, "the docs say 5, the map says -1"},
    {"stale row",
     MINI_HEAD "| `OK` | 0 | a |\n| `CHAIN_UNTRUSTED` | 5 | b |\n| `PEER_CLOSED` | closed | c |\n| "
               "`GONE` | 5 | d |\n" MINI_TAIL,
     1, "`GONE`, which is not in HUB_DEVICE_REASON_MAP"},
    {"duplicate row",
     MINI_HEAD "| `OK` | 0 | a |\n| `CHAIN_UNTRUSTED` | 5 | b |\n| `CHAIN_UNTRUSTED` | 5 | b |\n| "
               "`PEER_CLOSED` | closed | c |\n" MINI_TAIL,
     1, "`CHAIN_UNTRUSTED` has 2 rows"},
    {"no section", "# Title\n\n| `OK` | 0 | a |\n", 1, "no \"## Authentication and refusals\""},
    {"heading with a suffix is another section",
     "## Authentication and refusals (old)\n\n| `OK` | 0 | a |\n| `CHAIN_UNTRUSTED` | 5 | b |\n| "
     "`PEER_CLOSED` | closed | c |\n",
     1, "no \"## Authentication and refusals\""},
    {"everything missing", MINI_HEAD MINI_TAIL, 3, "`PEER_CLOSED` (CONNACK -1) has no row"},
};

static void test_checker_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(checker_cases) / sizeof(checker_cases[0]); i++) {
        char report[2048];
        size_t got = doc_check(checker_cases[i].md, mini_rows,
                               sizeof(mini_rows) / sizeof(mini_rows[0]), report, sizeof(report));
        if (got != checker_cases[i].problems)
            fail_msg("case '%s': %zu problem(s), expected %zu:\n%s", checker_cases[i].name, got,
                     checker_cases[i].problems, report);
        if (checker_cases[i].says != NULL && strstr(report, checker_cases[i].says) == NULL)
            fail_msg("case '%s': report lacks \"%s\":\n%s", checker_cases[i].name,
                     checker_cases[i].says, report);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_cases),
        cmocka_unit_test(test_map_matches_accessors),
        cmocka_unit_test(test_docs_list_every_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
