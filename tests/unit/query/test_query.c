/*
 * Device query language: a table of queries that must parse and their
 * verdict on two twin documents, a table of bad queries with the exact code,
 * column and message, the size limits on both sides of each bound, and the
 * fast-path getters.
 *
 * Every parse runs on a heap copy of exactly the bytes offered, with no
 * terminating NUL, so under ASan a read one byte past the text is a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "query/query.h"

#define W "SELECT * FROM devices WHERE " /* 28 bytes: the condition starts at column 29 */

static int parse_exact(const char *text, size_t len, struct hub_query **q, struct hub_err *err)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    hub_err_clear(err);
    int rc = hub_query_parse_new(copy, len, q, err);
    free(copy);
    return rc;
}

static struct hub_query *parse_ok(const char *text)
{
    struct hub_query *q = NULL;
    struct hub_err err;
    int rc = parse_exact(text, strlen(text), &q, &err);
    if (rc != 0)
        fail_msg("query `%s` failed: %s", text, err.msg);
    assert_non_null(q);
    return q;
}

/* ---- evaluation ---------------------------------------------------------- */

static const char *const twin_json[2] = {
    "{\"deviceId\":\"d1\",\"etag\":\"AAAA\",\"status\":\"enabled\",\"statusReason\":null,"
    "\"connectionState\":\"Connected\",\"authenticationType\":\"certificateAuthority\","
    "\"version\":3,\"cloudToDeviceMessageCount\":0,"
    "\"tags\":{\"location\":{\"region\":\"US\",\"building\":43},\"owner\":\"O'Brien\","
    "\"weight\":2.5,\"7days\":1,\"active\":true,\"nothing\":null,\"list\":[1,2],\"big\":"
    "9007199254740993},"
    "\"properties\":{\"desired\":{\"x\":1},\"reported\":{\"temp\":21.5,\"y\":4,\"fw\":\"1.2.0\","
    "\"neg\":-3,\"$version\":7}},"
    "\"capabilities\":{\"iotEdge\":false}}",
    "{\"deviceId\":\"d2\",\"status\":\"disabled\",\"connectionState\":\"Disconnected\","
    "\"authenticationType\":\"sas\",\"version\":1,\"tags\":{\"location\":{\"region\":\"EU\"}},"
    "\"properties\":{\"desired\":{},\"reported\":{\"y\":3,\"temp\":\"hot\"}},"
    "\"capabilities\":{\"iotEdge\":true}}",
};

static const struct {
    const char *query;
    bool d1, d2; /* matches twin_json[0], twin_json[1] */
} match_rows[] = {
    /* no WHERE, keyword case */
    {"SELECT * FROM devices", true, true},
    {"select * from DEVICES", true, true},
    {"SeLeCt * FrOm devices wHeRe status = 'enabled' aNd NOT version = 1", true, false},
    {"SELECT\n*\tFROM devices\r\nWHERE status='enabled'AND(version=3)", true, false},
    /* registry fields, the devices. alias, case-sensitive names and values */
    {W "status = 'enabled'", true, false},
    {W "devices.status = 'disabled'", false, true},
    {W "Status = 'enabled'", false, false},
    {W "status = 'Enabled'", false, false},
    {W "deviceId = 'd2'", false, true},
    {W "cloudToDeviceMessageCount = 0", true, false},
    /* nested paths */
    {W "tags.location.region = 'US'", true, false},
    {W "devices.tags.location.region = 'EU'", false, true},
    {W "'US' = tags.location.region", true, false},
    {W "tags.location.region != 'US'", false, true},
    {W "tags.location.region <> 'US'", false, true},
    {W "properties.reported.$version = 7", true, false},
    {W "tags.7days = 1", true, false},
    {W "tags . location . region = 'US'", true, false},
    /* missing fields are undefined: neither = nor != nor NOT selects them */
    {W "tags.location.building = 43", true, false},
    {W "tags.location.building != 43", false, false},
    {W "NOT tags.location.building = 43", false, false},
    {W "NOT IS_DEFINED(tags.location.building) OR tags.location.building != 43", false, true},
    {W "tags.location.building = 43 OR status = 'disabled'", true, true},
    {W "tags.location.building = 43 AND status = 'disabled'", false, false},
    {W "NOT (tags.location.building = 43 AND status = 'enabled')", false, true},
    {W "NOT (tags.location.building = 43 OR status = 'enabled')", false, false},
    {W "NOT (tags.location.building = 43 AND status = 'disabled')", true, false},
    /* numbers: int vs float, negative, exponent, exact 64-bit integers */
    {W "properties.reported.y > 3", true, false},
    {W "properties.reported.y >= 3", true, true},
    {W "properties.reported.y < 4", false, true},
    {W "properties.reported.y <= 4", true, true},
    {W "3 < properties.reported.y", true, false},
    {W "4 >= properties.reported.y", true, true},
    {W "4 > properties.reported.y", false, true},
    {W "4 <= properties.reported.y", true, false},
    {W "'EU' <> tags.location.region", true, false},
    {W "properties.reported.y = 4.0", true, false},
    {W "properties.reported.temp > 21", true, false},
    {W "properties.reported.temp = 21.5", true, false},
    {W "properties.reported.temp = 2.15e1", true, false},
    {W "properties.reported.temp > 2.15E+1", false, false},
    {W "properties.reported.neg = -3", true, false},
    {W "properties.reported.neg < -2.5", true, false},
    {W "properties.reported.neg > -3", false, false},
    {W "tags.big = 9007199254740993", true, false},
    {W "tags.big != 9007199254740992", true, false},
    {W "tags.big > 9007199254740992", true, false},
    {W "tags.weight < 100000000000000000000", true, false}, /* beyond int64: a real */
    /* strings: quotes, byte order */
    {W "tags.owner = 'O''Brien'", true, false},
    {W "tags.owner = 'o''brien'", false, false},
    {W "tags.owner > 'O'''", true, false},
    {W "tags.owner < 'O'''", false, false},
    {W "properties.reported.fw < '1.10.0'", false, false},
    {W "properties.reported.fw >= '1.2.0'", true, false},
    {W "deviceId < 'd2'", true, false},
    /* type mismatches are undefined */
    {W "properties.reported.temp > 'a'", false, true},
    {W "tags.active = 'true'", false, false},
    {W "tags.active = 1", false, false},
    {W "tags.location = 'US'", false, false},
    {W "tags.location.region.x = 'US'", false, false},
    {W "NOT properties.reported.temp = 21.5", false, false},
    /* booleans and null */
    {W "tags.active = true", true, false},
    {W "tags.active != false", true, false},
    {W "capabilities.iotEdge = true", false, true},
    {W "capabilities.iotEdge = FALSE", true, false},
    {W "false = capabilities.iotEdge", true, false},
    {W "tags.nothing = null", true, false},
    {W "tags.nothing != null", false, false},
    {W "tags.owner != null", true, false},
    {W "tags.owner = null", false, false},
    {W "statusReason = NULL", true, false},
    /* functions */
    {W "IS_NULL(tags.nothing)", true, false},
    {W "IS_NULL(tags.missing)", false, false},
    {W "IS_DEFINED(tags.nothing)", true, false},
    {W "NOT IS_DEFINED(tags.owner)", false, true},
    {W "is_defined(tags.location)", true, true},
    {W "IS_OBJECT(tags.location) AND IS_ARRAY(tags.list) AND IS_NUMBER(tags.weight) AND "
       "IS_STRING(tags.owner) AND IS_BOOL(tags.active) AND IS_PRIMITIVE(tags.nothing)",
     true, false},
    {W "IS_PRIMITIVE(tags.location) OR IS_STRING(tags.weight)", false, false},
    {W "STARTSWITH(properties.reported.fw, '1.')", true, false},
    {W "ENDSWITH(deviceId, '2')", false, true},
    {W "STARTSWITH(deviceId, 'd1x')", false, false},
    {W "ENDSWITH(deviceId, '')", true, true},
    {W "NOT STARTSWITH(properties.reported.temp, 'c')", false, true},
    /* precedence: NOT > AND > OR */
    {W "status = 'enabled' OR status = 'disabled' AND version = 1", true, true},
    {W "(status = 'enabled' OR status = 'disabled') AND version = 1", false, true},
    {W "version = 3 AND status = 'enabled' OR status = 'nope'", true, false},
    {W "NOT status = 'enabled' AND version = 1", false, true},
    {W "NOT (status = 'enabled' AND version = 3)", false, true},
    {W "NOT NOT status = 'enabled'", true, false},
    {W "((((((((status = 'enabled'))))))))", true, false},
    /* IN */
    {W "status IN ['enabled', 'blocked']", true, false},
    {W "properties.reported.y IN [3, 'x']", false, true},
    {W "tags.location.building in [43]", true, false},
    {W "NOT (properties.reported.temp IN [21.5])", false, false},
    {W "NOT (properties.reported.y IN [1, 2])", true, true},
};

static void test_match_table(void **state)
{
    json_t *twins[2];
    for (int i = 0; i < 2; i++) {
        json_error_t jerr;
        twins[i] = json_loads(twin_json[i], 0, &jerr);
        if (!twins[i])
            fail_msg("twin %d: %s", i, jerr.text);
    }
    for (size_t r = 0; r < sizeof(match_rows) / sizeof(match_rows[0]); r++) {
        struct hub_query *q = parse_ok(match_rows[r].query);
        bool got1 = hub_query_match(q, twins[0]), got2 = hub_query_match(q, twins[1]);
        if (got1 != match_rows[r].d1 || got2 != match_rows[r].d2)
            fail_msg("row %zu `%s`: d1 %d (want %d), d2 %d (want %d)", r, match_rows[r].query, got1,
                     match_rows[r].d1, got2, match_rows[r].d2);
        hub_query_free(q);
    }
    json_decref(twins[0]);
    json_decref(twins[1]);
}

static void test_match_non_object_twin(void **state)
{
    json_t *n = json_null();
    struct hub_query *all = parse_ok("SELECT * FROM devices");
    struct hub_query *some = parse_ok(W "NOT IS_DEFINED(status)");
    struct hub_query *eq = parse_ok(W "status = 'enabled'");
    assert_true(hub_query_match(all, n));
    assert_true(hub_query_match(some, n)); /* nothing is defined in it */
    assert_false(hub_query_match(eq, n));
    assert_false(hub_query_match(NULL, n));
    hub_query_free(all);
    hub_query_free(some);
    hub_query_free(eq);
    json_decref(n);
}

/* ---- errors -------------------------------------------------------------- */

static const struct {
    const char *query;
    int code;
    const char *msg;
} error_rows[] = {
    {"", HUB_E_PARSE, "query error at column 1: expected SELECT"},
    {"   ", HUB_E_PARSE, "query error at column 4: expected SELECT"},
    {"SELEC * FROM devices", HUB_E_PARSE, "query error at column 1: expected SELECT"},
    {"SELECT deviceId FROM devices", HUB_E_PARSE,
     "query error at column 8: expected '*' (only SELECT * is supported)"},
    {"SELECT * devices", HUB_E_PARSE, "query error at column 10: expected FROM"},
    {"SELECT * FROM modules", HUB_E_PARSE,
     "query error at column 15: expected devices (the only collection supported)"},
    {"SELECT * FROM devices LIMIT 5", HUB_E_PARSE,
     "query error at column 23: expected WHERE or end of query"},
    {"SELECT * FROM devices WHERE", HUB_E_PARSE, "query error at column 28: expected a condition"},
    {W "status = 'enabled", HUB_E_PARSE, "query error at column 38: unterminated string"},
    {W "tags.x = 'it''s", HUB_E_PARSE, "query error at column 38: unterminated string"},
    {W "tags.x > ", HUB_E_PARSE, "query error at column 38: expected a value after '>'"},
    {W "tags.x <> status", HUB_E_PARSE, "query error at column 39: expected a value after '<>'"},
    {W "tags.x >= (1)", HUB_E_PARSE, "query error at column 39: expected a value after '>='"},
    {W "tags.x = .5", HUB_E_PARSE, "query error at column 38: expected a value after '='"},
    {W "FOO(tags.x)", HUB_E_PARSE, "query error at column 29: unknown function"},
    {W "is_defined(tags.x", HUB_E_PARSE, "query error at column 46: expected ')'"},
    {W "IS_DEFINED('x')", HUB_E_PARSE, "query error at column 40: expected a field path"},
    {W "STARTSWITH(tags.x)", HUB_E_PARSE, "query error at column 46: expected ','"},
    {W "STARTSWITH(tags.x, 1)", HUB_E_PARSE, "query error at column 48: expected a string"},
    {W "tags.x", HUB_E_PARSE, "query error at column 35: expected a comparison operator"},
    {W "tags.x = 1 AND", HUB_E_PARSE, "query error at column 43: expected a condition"},
    {W "tags.x = 1 AND OR tags.y = 2", HUB_E_PARSE,
     "query error at column 44: expected a condition"},
    {W "NOT", HUB_E_PARSE, "query error at column 32: expected a condition"},
    {W "SELECT = 1", HUB_E_PARSE, "query error at column 29: expected a condition"},
    {W "IN = 1", HUB_E_PARSE, "query error at column 29: expected a condition"},
    {W "(tags.x = 1", HUB_E_PARSE, "query error at column 40: expected AND, OR or ')'"},
    {W "tags.x = 1 tags.y = 2", HUB_E_PARSE,
     "query error at column 40: expected AND, OR or end of query"},
    {W "tags.x = 1 )", HUB_E_PARSE, "query error at column 40: expected AND, OR or end of query"},
    {W "tags.x = \"a\"", HUB_E_PARSE,
     "query error at column 38: unexpected character '\"' (strings use single quotes)"},
    {W "tags.x = 1.5.2", HUB_E_PARSE, "query error at column 38: malformed number"},
    {W "tags.x = 12abc", HUB_E_PARSE, "query error at column 38: malformed number"},
    {W "tags.x = 1.", HUB_E_PARSE, "query error at column 38: malformed number"},
    {W "tags.x = 1e", HUB_E_PARSE, "query error at column 38: malformed number"},
    {W "tags.x = 1e999", HUB_E_PARSE, "query error at column 38: number out of range"},
    {W "tags.x = -", HUB_E_PARSE, "query error at column 38: unexpected character '-'"},
    {W "tags.x > true", HUB_E_PARSE,
     "query error at column 36: only = and != apply to true, false and null"},
    {W "null <= tags.x", HUB_E_PARSE,
     "query error at column 34: only = and != apply to true, false and null"},
    {W "1 = 2", HUB_E_PARSE, "query error at column 33: expected a field path after '='"},
    {W "'a' <> NOT", HUB_E_PARSE, "query error at column 36: expected a field path after '<>'"},
    {W "1 tags.x", HUB_E_PARSE, "query error at column 31: expected a comparison operator"},
    {W "tags. = 1", HUB_E_PARSE, "query error at column 35: expected a field name after '.'"},
    {W "7days = 1", HUB_E_PARSE, "query error at column 29: malformed number"},
    {W "tags.x IN ('a')", HUB_E_PARSE, "query error at column 39: expected '[' after IN"},
    {W "tags.x IN []", HUB_E_PARSE, "query error at column 40: expected a value"},
    {W "tags.x IN ['a' 'b']", HUB_E_PARSE, "query error at column 44: expected ',' or ']'"},
    {W "tags.x IN ['a',", HUB_E_PARSE, "query error at column 44: expected a value"},
    {W "tags.x = 1 ! tags.y", HUB_E_PARSE,
     "query error at column 40: unexpected character '!' (did you mean '!='?)"},
    {W "tags.x # 1", HUB_E_PARSE, "query error at column 36: unexpected character '#'"},
    {W "tags.x = '\xc3\xa9' AND \xc3\xa9 = 1", HUB_E_PARSE,
     "query error at column 47: unexpected byte 0xc3"},
};

static void test_error_table(void **state)
{
    for (size_t r = 0; r < sizeof(error_rows) / sizeof(error_rows[0]); r++) {
        struct hub_query *q = (struct hub_query *)&q; /* must be reset to NULL */
        struct hub_err err;
        int rc = parse_exact(error_rows[r].query, strlen(error_rows[r].query), &q, &err);
        if (rc != error_rows[r].code || err.code != rc || strcmp(err.msg, error_rows[r].msg) != 0)
            fail_msg("row %zu `%s`: rc %d (%s) msg \"%s\", want %s \"%s\"", r, error_rows[r].query,
                     rc, hub_err_name(rc), err.msg, hub_err_name(error_rows[r].code),
                     error_rows[r].msg);
        assert_null(q);
    }
}

static void test_nul_byte_inside_text(void **state)
{
    static const char text[] = W "tags.x = 1\0 OR tags.y = 2";
    struct hub_query *q;
    struct hub_err err;
    assert_int_equal(parse_exact(text, sizeof(text) - 1, &q, &err), HUB_E_PARSE);
    assert_string_equal(err.msg, "query error at column 39: unexpected byte 0x00");
    assert_null(q);
    /* inside a string literal too: the lexer never stops at a NUL */
    static const char text2[] = W "tags.x = 'a\0b'";
    assert_int_equal(parse_exact(text2, sizeof(text2) - 1, &q, &err), HUB_E_PARSE);
    assert_string_equal(err.msg, "query error at column 40: unexpected byte 0x00");
    assert_null(q);
}

static void test_text_is_bounded_by_len(void **state)
{
    /* what follows len is not part of the query */
    const char *text = "SELECT * FROM devices WHERE status = 'a' garbage";
    struct hub_query *q;
    struct hub_err err;
    assert_int_equal(parse_exact(text, 40, &q, &err), 0);
    hub_query_free(q);
    assert_int_equal(parse_exact(text, 39, &q, &err), HUB_E_PARSE);
    assert_string_equal(err.msg, "query error at column 38: unterminated string");
}

static void test_bad_arguments(void **state)
{
    struct hub_query *q = (struct hub_query *)&q;
    struct hub_err err;
    assert_int_equal(hub_query_parse_new(NULL, 0, &q, &err), HUB_E_INVALID_ARG);
    assert_null(q);
    assert_int_equal(hub_query_parse_new("SELECT * FROM devices", 21, NULL, &err),
                     HUB_E_INVALID_ARG);
    hub_query_free(NULL);
    assert_false(hub_query_registry_only(NULL));
    assert_int_equal(hub_query_required_eqs_get0(NULL, NULL, 0), 0);
}

/* ---- limits -------------------------------------------------------------- */

static void test_length_limit(void **state)
{
    char *text = malloc(HUB_QUERY_MAX_BYTES + 1);
    assert_non_null(text);
    size_t head = strlen(W "status = '");
    memcpy(text, W "status = '", head);
    memset(text + head, 'a', HUB_QUERY_MAX_BYTES + 1 - head);
    struct hub_query *q;
    struct hub_err err;
    text[HUB_QUERY_MAX_BYTES - 1] = '\'';
    assert_int_equal(parse_exact(text, HUB_QUERY_MAX_BYTES, &q, &err), 0);
    hub_query_free(q);
    text[HUB_QUERY_MAX_BYTES - 1] = 'a';
    text[HUB_QUERY_MAX_BYTES] = '\'';
    assert_int_equal(parse_exact(text, HUB_QUERY_MAX_BYTES + 1, &q, &err), HUB_E_TOO_LARGE);
    assert_string_equal(err.msg, "query error at column 8193: query too long (max 8192 bytes)");
    assert_null(q);
    free(text);
}

/* W followed by n copies of item joined by sep; *col_last is the 1-based
 * column where the last copy starts. */
static char *repeat(const char *head, const char *item, const char *sep, int n, const char *tail,
                    size_t *col_last)
{
    size_t cap = strlen(head) + (size_t)n * (strlen(item) + strlen(sep)) + strlen(tail) + 1;
    char *s = malloc(cap);
    assert_non_null(s);
    strcpy(s, head);
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(s, sep);
        *col_last = strlen(s) + 1;
        strcat(s, item);
    }
    strcat(s, tail);
    return s;
}

static void expect_limit(const char *text, size_t col, const char *what)
{
    struct hub_query *q;
    struct hub_err err;
    char want[HUB_ERR_MSG_MAX];
    snprintf(want, sizeof(want), "query error at column %zu: %s", col, what);
    assert_int_equal(parse_exact(text, strlen(text), &q, &err), HUB_E_TOO_LARGE);
    assert_string_equal(err.msg, want);
    assert_null(q);
}

static void test_condition_limit(void **state)
{
    size_t col;
    char *ok = repeat(W, "tags.a = 1", " OR ", HUB_QUERY_MAX_CONDITIONS, "", &col);
    hub_query_free(parse_ok(ok));
    free(ok);
    char *bad = repeat(W, "tags.a = 1", " OR ", HUB_QUERY_MAX_CONDITIONS + 1, "", &col);
    expect_limit(bad, col, "too many conditions (max 64)");
    free(bad);
    /* functions and IN count too: 32 x 2, then the 65th */
    bad = repeat(W, "IS_DEFINED(x) AND x IN [1]", " OR ", 32, " OR x IN [2]", &col);
    expect_limit(bad, strlen(bad) - strlen("x IN [2]") + 1, "too many conditions (max 64)");
    free(bad);
}

static void test_nesting_limit(void **state)
{
    size_t col;
    char *s = repeat(W, "(", "", HUB_QUERY_MAX_DEPTH, "status = 'enabled'))))))))", &col);
    hub_query_free(parse_ok(s));
    free(s);
    s = repeat(W, "(", "", HUB_QUERY_MAX_DEPTH + 1, "status = 'enabled')))))))))", &col);
    expect_limit(s, col, "nesting too deep (max 8)");
    free(s);
    s = repeat(W, "NOT", " ", HUB_QUERY_MAX_DEPTH, " status = 'enabled'", &col);
    hub_query_free(parse_ok(s));
    free(s);
    s = repeat(W, "NOT", " ", HUB_QUERY_MAX_DEPTH + 1, " status = 'enabled'", &col);
    expect_limit(s, col, "nesting too deep (max 8)");
    free(s);
    /* '(' and NOT count together: 4 + 5 */
    expect_limit(W "((((NOT NOT NOT NOT NOT x = 1)))) ", 29 + 4 + 16, "nesting too deep (max 8)");
    /* depth is nesting, not a total: many siblings at depth 1 are fine */
    char *wide = repeat(W, "(NOT x = 1)", " AND ", 40, "", &col);
    hub_query_free(parse_ok(wide));
    free(wide);
}

static void test_in_list_limit(void **state)
{
    size_t col;
    char *ok = repeat(W "x IN [", "1", ", ", HUB_QUERY_MAX_IN_VALUES, "]", &col);
    struct hub_query *q = parse_ok(ok);
    json_t *twin = json_pack("{s:i}", "x", 1);
    assert_true(hub_query_match(q, twin));
    json_decref(twin);
    hub_query_free(q);
    free(ok);
    char *bad = repeat(W "x IN [", "1", ", ", HUB_QUERY_MAX_IN_VALUES + 1, "]", &col);
    expect_limit(bad, col, "too many values in IN list (max 64)");
    free(bad);
}

/* ---- fast-path getters ---------------------------------------------------- */

static void test_registry_only(void **state)
{
    static const struct {
        const char *query;
        bool registry_only;
    } rows[] = {
        {"SELECT * FROM devices", true},
        {W "status = 'enabled' OR connectionState = 'Connected'", true},
        {W "capabilities.iotEdge = true AND deviceId = 'x'", true},
        {W "status = 'enabled' AND tags.x = 1", false},
        {W "devices.properties.reported.x = 1", false},
        {W "NOT IS_DEFINED(properties)", false},
        {W "statusReason = 'tags'", true},
    };
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        struct hub_query *q = parse_ok(rows[r].query);
        if (hub_query_registry_only(q) != rows[r].registry_only)
            fail_msg("row %zu `%s`", r, rows[r].query);
        hub_query_free(q);
    }
}

static void test_required_eqs(void **state)
{
    static const struct {
        const char *query;
        size_t count;
        const char *pairs[4][2];
    } rows[] = {
        {"SELECT * FROM devices", 0, {{0}}},
        {W "status = 'enabled' AND devices.connectionState = 'Connected' AND "
           "(tags.x = 'a' OR authenticationType = 'sas')",
         2,
         {{"status", "enabled"}, {"connectionState", "Connected"}}},
        {W "status = 'enabled' OR status = 'disabled'", 0, {{0}}},
        {W "NOT status = 'enabled'", 0, {{0}}},
        {W "status != 'enabled' AND status IN ['a'] AND tags.status = 'x'", 0, {{0}}},
        {W "'sas' = authenticationType AND version = 3 AND capabilities.iotEdge = true AND "
           "deviceId = 'it''s'",
         2,
         {{"authenticationType", "sas"}, {"deviceId", "it's"}}},
        {W "(status = 'enabled' AND (deviceId = 'a')) AND x = 'b'",
         3,
         {{"status", "enabled"}, {"deviceId", "a"}, {"x", "b"}}},
    };
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        struct hub_query *q = parse_ok(rows[r].query);
        struct hub_query_eq eqs[4];
        size_t n = hub_query_required_eqs_get0(q, eqs, 4);
        if (n != rows[r].count)
            fail_msg("row %zu `%s`: %zu eqs, want %zu", r, rows[r].query, n, rows[r].count);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(eqs[i].field, rows[r].pairs[i][0]);
            assert_string_equal(eqs[i].value, rows[r].pairs[i][1]);
        }
        hub_query_free(q);
    }
    /* a short array gets the first ones and the full count */
    struct hub_query *q = parse_ok(W "a = 'x' AND b = 'y' AND c = 'z'");
    struct hub_query_eq one[1];
    assert_int_equal(hub_query_required_eqs_get0(q, one, 1), 3);
    assert_string_equal(one[0].field, "a");
    assert_string_equal(one[0].value, "x");
    assert_int_equal(hub_query_required_eqs_get0(q, NULL, 0), 3);
    hub_query_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_match_non_object_twin),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_nul_byte_inside_text),
        cmocka_unit_test(test_text_is_bounded_by_len),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_condition_limit),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_in_list_limit),
        cmocka_unit_test(test_registry_only),
        cmocka_unit_test(test_required_eqs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
