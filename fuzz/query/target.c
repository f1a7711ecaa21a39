/*
 * libFuzzer target: device query text through hub_query_parse_new and
 * hub_query_match, as the service API feeds it (the "query" string of a
 * POST /devices/query body, up to any length).
 *
 * The input is parsed twice: as a whole query, and as the condition of
 * "SELECT * FROM devices WHERE <input>" so mutations reach the expression
 * grammar quickly. Checked on every run:
 *   - a refusal is PARSE or TOO_LARGE with err.code equal to the return,
 *     *out NULL, and the message "query error at column N: ..." with N
 *     inside the text (1 .. len + 1) or HUB_QUERY_MAX_BYTES + 1 for length;
 *   - evaluation against a few fixed twins is deterministic;
 *   - every condition hub_query_required_eqs_get0 reports holds in each
 *     twin the query matches (the store fast path must never drop a match);
 *   - a registry_only query gives the same verdict on a twin with its tags
 *     and properties removed;
 *   - X and NOT (X) never both match one twin (three-valued logic: both may
 *     be false, never both true); checked when the input holds no ')', so
 *     that the parentheses added around it really enclose all of it.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build (`make fuzz` builds and runs it). By hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE fuzz/query/target.c \
 *       src/query/query_parse.c src/query/query_eval.c src/common/err.c -ljansson -o
 * /tmp/fuzz_query /tmp/fuzz_query -dict=fuzz/query/query.dict fuzz/query/corpus
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/query.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define N_TWINS 3

static const char *const twin_text[N_TWINS] = {
    "{\"deviceId\":\"d1\",\"etag\":\"AAAA\",\"status\":\"enabled\",\"statusReason\":null,"
    "\"connectionState\":\"Connected\",\"authenticationType\":\"certificateAuthority\","
    "\"version\":3,\"cloudToDeviceMessageCount\":0,"
    "\"tags\":{\"location\":{\"region\":\"US\",\"building\":43},\"owner\":\"O'Brien\","
    "\"weight\":2.5,\"active\":true,\"nothing\":null,\"list\":[1,2],\"x\":\"a\"},"
    "\"properties\":{\"desired\":{\"x\":1},\"reported\":{\"temp\":21.5,\"y\":4,\"fw\":\"1.2.0\","
    "\"neg\":-3,\"s\":\"\"}},\"capabilities\":{\"iotEdge\":false}}",
    "{\"deviceId\":\"d2\",\"status\":\"disabled\",\"connectionState\":\"Disconnected\","
    "\"authenticationType\":\"sas\",\"version\":1,\"tags\":{\"location\":{\"region\":\"EU\"},"
    "\"x\":1},\"properties\":{\"desired\":{},\"reported\":{\"y\":3,\"temp\":\"hot\"}},"
    "\"capabilities\":{\"iotEdge\":true}}",
    "{\"deviceId\":\"\",\"status\":null,\"tags\":[],\"properties\":7}",
};

static json_t *twins[N_TWINS];
static json_t *bare[N_TWINS]; /* the same without tags and properties */

static void init_twins(void)
{
    if (twins[0])
        return;
    for (int i = 0; i < N_TWINS; i++) {
        twins[i] = json_loads(twin_text[i], 0, NULL);
        CHECK(twins[i]);
        bare[i] = json_deep_copy(twins[i]);
        CHECK(bare[i]);
        json_object_del(bare[i], "tags");
        json_object_del(bare[i], "properties");
    }
}

static void check_error(int rc, const struct hub_err *err, const struct hub_query *q, size_t len)
{
    CHECK(rc == HUB_E_PARSE || rc == HUB_E_TOO_LARGE);
    CHECK(err->code == rc && q == NULL);
    static const char prefix[] = "query error at column ";
    CHECK(strncmp(err->msg, prefix, sizeof(prefix) - 1) == 0);
    char *end;
    unsigned long col = strtoul(err->msg + sizeof(prefix) - 1, &end, 10);
    CHECK(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
    if (len > HUB_QUERY_MAX_BYTES)
        CHECK(col == HUB_QUERY_MAX_BYTES + 1);
    else
        CHECK(col >= 1 && col <= len + 1);
}

/* Parses text; on success checks the evaluation invariants and returns
 * the query (caller frees), else checks the error and returns NULL. */
static struct hub_query *run(const char *text, size_t len)
{
    struct hub_query *q = (struct hub_query *)&q;
    struct hub_err err;
    hub_err_clear(&err);
    int rc = hub_query_parse_new(text, len, &q, &err);
    if (rc != 0) {
        check_error(rc, &err, q, len);
        return NULL;
    }
    CHECK(q != NULL && len <= HUB_QUERY_MAX_BYTES);
    struct hub_query_eq eqs[8];
    size_t n_eqs = hub_query_required_eqs_get0(q, eqs, 8);
    if (n_eqs > 8)
        n_eqs = 8;
    for (int i = 0; i < N_TWINS; i++) {
        bool m = hub_query_match(q, twins[i]);
        CHECK(m == hub_query_match(q, twins[i]));
        if (hub_query_registry_only(q))
            CHECK(m == hub_query_match(q, bare[i]));
        if (!m)
            continue;
        for (size_t e = 0; e < n_eqs; e++) {
            const json_t *v = json_object_get(twins[i], eqs[e].field);
            CHECK(json_is_string(v) && strcmp(json_string_value(v), eqs[e].value) == 0);
        }
    }
    return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char head[] = "SELECT * FROM devices WHERE (";
    static const char head_not[] = "SELECT * FROM devices WHERE NOT (";
    static char buf[HUB_QUERY_MAX_BYTES + 64];
    init_twins();

    /* exactly size bytes on the heap, no NUL: ASan sees any over-read */
    char *copy = malloc(size ? size : 1);
    CHECK(copy);
    memcpy(copy, data, size);
    hub_query_free(run(copy, size));
    free(copy);

    if (size + sizeof(head_not) + 1 > sizeof(buf))
        return 0;
    memcpy(buf, head, sizeof(head) - 1);
    memcpy(buf + sizeof(head) - 1, data, size);
    buf[sizeof(head) - 1 + size] = ')';
    struct hub_query *x = run(buf, sizeof(head) + size);
    memcpy(buf, head_not, sizeof(head_not) - 1);
    memcpy(buf + sizeof(head_not) - 1, data, size);
    buf[sizeof(head_not) - 1 + size] = ')';
    struct hub_query *not_x = run(buf, sizeof(head_not) + size);
    /* with no ')' in the input, the ')' we appended closes the '(' we
     * prepended, so the second query really is the negation of the first */
    if (x && not_x && !memchr(data, ')', size))
        for (int i = 0; i < N_TWINS; i++)
            CHECK(!(hub_query_match(x, twins[i]) && hub_query_match(not_x, twins[i])));
    hub_query_free(x);
    hub_query_free(not_x);
    return 0;
}
