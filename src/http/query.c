/*
 * The device query subset of the IoT Hub query language served so far:
 *
 *   query  := SELECT '*' FROM devices [WHERE cond (AND cond)*]
 *   cond   := field '=' string
 *   field  := status | authenticationType | connectionState   (also devices.<field>)
 *   string := '\'' chars '\''   (a doubled '' is a literal quote)
 *
 * Keywords are case-insensitive, field names are not (as in Azure). Values
 * are the JSON spellings ('enabled', 'certificateAuthority', 'Connected').
 * Pure: no allocation; errors name the 1-based column.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/json_map.h"

struct cursor {
    const char *start;
    const char *p;
    char *why;
    size_t why_cap;
};

static void skip_space(struct cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')
        c->p++;
}

static int fail(struct cursor *c, const char *what)
{
    snprintf(c->why, c->why_cap, "query error at column %d: %s", (int)(c->p - c->start) + 1, what);
    return -1;
}

/* Reads an identifier (letters, digits, '_', '.', '$') into out. */
static int word(struct cursor *c, char *out, size_t cap)
{
    skip_space(c);
    size_t n = 0;
    while (isalnum((unsigned char)*c->p) || *c->p == '_' || *c->p == '.' || *c->p == '$') {
        if (n + 1 >= cap)
            return fail(c, "name too long");
        out[n++] = *c->p++;
    }
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

static int keyword(struct cursor *c, const char *kw)
{
    const char *save = c->p;
    char w[32];
    if (word(c, w, sizeof(w)) == 0 && strcasecmp(w, kw) == 0)
        return 0;
    c->p = save;
    skip_space(c);
    char msg[64];
    snprintf(msg, sizeof(msg), "expected %s", kw);
    return fail(c, msg);
}

static int string_literal(struct cursor *c, char *out, size_t cap)
{
    skip_space(c);
    if (*c->p != '\'')
        return fail(c, "expected a string in single quotes");
    c->p++;
    size_t n = 0;
    for (;;) {
        if (*c->p == '\0')
            return fail(c, "unterminated string");
        if (*c->p == '\'') {
            if (c->p[1] != '\'')
                break;
            c->p++;
        }
        if (n + 1 >= cap)
            return fail(c, "string too long");
        out[n++] = *c->p++;
    }
    c->p++;
    out[n] = '\0';
    return 0;
}

static int condition(struct cursor *c, struct hub_device_filter *f)
{
    skip_space(c);
    const char *field_at = c->p;
    char field[64], value[64];
    if (word(c, field, sizeof(field)) != 0)
        return fail(c, "expected a field name");
    const char *name = strncmp(field, "devices.", 8) == 0 ? field + 8 : field;
    skip_space(c);
    if (*c->p != '=')
        return fail(c, "expected '=' (only equality is supported)");
    c->p++;
    const char *value_at = c->p;
    if (string_literal(c, value, sizeof(value)) != 0)
        return -1;
    struct hub_err err = {0};
    int rc;
    if ((strcmp(name, "status") == 0 && f->has_status) ||
        (strcmp(name, "authenticationType") == 0 && f->has_auth_type) ||
        (strcmp(name, "connectionState") == 0 && f->has_conn_state)) {
        c->p = field_at;
        return fail(c, "field named twice (each field may be compared once)");
    }
    if (strcmp(name, "status") == 0) {
        rc = hub_device_status_parse(value, &f->status, &err);
        f->has_status = true;
    } else if (strcmp(name, "authenticationType") == 0) {
        rc = hub_auth_type_parse(value, &f->auth_type, &err);
        f->has_auth_type = true;
    } else if (strcmp(name, "connectionState") == 0) {
        rc = hub_conn_state_parse(value, &f->conn_state, &err);
        f->has_conn_state = true;
    } else {
        c->p = field_at;
        return fail(c, "unknown field (supported: status, authenticationType, connectionState)");
    }
    if (rc != 0) {
        c->p = value_at;
        skip_space(c);
        return fail(c, "value not allowed for this field");
    }
    return 0;
}

int hub_http__device_query_parse(const char *query, struct hub_device_filter *filter, char *why,
                                 size_t why_cap)
{
    struct cursor c = {.start = query, .p = query, .why = why, .why_cap = why_cap};
    filter->has_status = filter->has_auth_type = filter->has_conn_state = false;
    if (keyword(&c, "SELECT") != 0)
        return -1;
    skip_space(&c);
    if (*c.p != '*')
        return fail(&c, "expected '*' (only SELECT * is supported)");
    c.p++;
    if (keyword(&c, "FROM") != 0 || keyword(&c, "devices") != 0)
        return -1;
    skip_space(&c);
    if (*c.p == '\0')
        return 0;
    if (keyword(&c, "WHERE") != 0)
        return -1;
    for (;;) {
        if (condition(&c, filter) != 0)
            return -1;
        skip_space(&c);
        if (*c.p == '\0')
            return 0;
        if (keyword(&c, "AND") != 0)
            return -1;
    }
}
