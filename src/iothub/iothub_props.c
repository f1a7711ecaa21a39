/*
 * Property bags (reference §2): `k=v&k2=v2`, query-string style.
 *
 * | wire          | meaning                                  |
 * |---------------|------------------------------------------|
 * | `k=v`         | key k, value v (both percent-decoded)    |
 * | `k=`          | value "" (empty string)                  |
 * | `k`           | value null                               |
 * | `%24.mid=...` | system property $.mid (a raw `$` works)  |
 * | `a+b`         | "a+b": '+' is not a space                |
 * | `&&`, `x&`    | empty pairs are skipped                  |
 *
 * Decoded strings are packed into the output's arena, each NUL-terminated.
 * Decoding never lengthens text, so a bag of HUB_IOTHUB_BAG_MAX bytes plus
 * two NULs per property always fits: running out of arena cannot happen, and
 * is still checked.
 */
#include "iothub/iothub_int.h"

#include <limits.h>
#include <string.h>

static const char *const sys_names[HUB_IOTHUB_SYS__COUNT] = {
    [HUB_IOTHUB_SYS_MID] = "$.mid",         [HUB_IOTHUB_SYS_CID] = "$.cid",
    [HUB_IOTHUB_SYS_UID] = "$.uid",         [HUB_IOTHUB_SYS_TO] = "$.to",
    [HUB_IOTHUB_SYS_CT] = "$.ct",           [HUB_IOTHUB_SYS_CE] = "$.ce",
    [HUB_IOTHUB_SYS_EXP] = "$.exp",         [HUB_IOTHUB_SYS_IFID] = "$.ifid",
    [HUB_IOTHUB_SYS_ON] = "$.on",           [HUB_IOTHUB_SYS_SUB] = "$.sub",
    [HUB_IOTHUB_SYS_CTIME] = "$.ctime",     [HUB_IOTHUB_SYS_DIAGID] = "$.diagid",
    [HUB_IOTHUB_SYS_DIAGCTX] = "$.diagctx",
};

const char *hub_iothub_sys_name(enum hub_iothub_sys which)
{
    if ((int)which < 0 || which >= HUB_IOTHUB_SYS__COUNT)
        return NULL;
    return sys_names[which];
}

static int sys_index(const char *key, size_t len)
{
    for (int i = 0; i < HUB_IOTHUB_SYS__COUNT; i++) {
        if (strlen(sys_names[i]) == len && memcmp(sys_names[i], key, len) == 0)
            return i;
    }
    return -1;
}

/* Decodes in[0..len) into the arena; *dst and *dst_len describe the result. */
static int arena_decode(struct hub_iothub_props *out, const char *in, size_t len, size_t max,
                        const char **dst, size_t *dst_len, const char *what, struct hub_err *err)
{
    char *at = out->arena + out->arena_used;
    size_t room = sizeof(out->arena) - out->arena_used;
    size_t cap = max + 1 < room ? max + 1 : room;
    int rc = hub_iothub__pct_decode(in, len, at, cap, dst_len, what, err);
    if (rc < 0)
        return rc;
    *dst = at;
    out->arena_used += *dst_len + 1;
    return 0;
}

int hub_iothub_props_parse(const char *bag, size_t len, struct hub_iothub_props *out,
                           struct hub_err *err)
{
    memset(out->sys, 0, sizeof(out->sys));
    out->app_count = 0;
    out->arena_used = 0;
    if (len > HUB_IOTHUB_BAG_MAX)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "property bag is %zu bytes, limit %d", len,
                       HUB_IOTHUB_BAG_MAX);

    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && bag[end] != '&')
            end++;
        if (end == i) { /* empty pair */
            i = end + 1;
            continue;
        }
        size_t eq = i;
        while (eq < end && bag[eq] != '=')
            eq++;
        struct hub_iothub_prop prop = {0};
        int rc;
        if (eq == i)
            return HUB_ERR(err, HUB_E_PARSE, "property with an empty key at offset %zu", i);
        if ((rc = arena_decode(out, bag + i, eq - i, HUB_IOTHUB_PROP_KEY_MAX, &prop.key,
                               &prop.key_len, "property key", err)) < 0)
            return rc;
        if (eq < end) {
            if ((rc = arena_decode(out, bag + eq + 1, end - eq - 1, HUB_IOTHUB_BAG_MAX, &prop.value,
                                   &prop.value_len, "property value", err)) < 0)
                return rc;
        }

        int s = sys_index(prop.key, prop.key_len);
        if (s >= 0) {
            if (out->sys[s].key != NULL)
                return HUB_ERR(err, HUB_E_PARSE, "system property %s appears twice", sys_names[s]);
            out->sys[s] = prop;
        } else {
            if (hub_iothub_props_app_find0(out, prop.key) != NULL)
                return HUB_ERR(err, HUB_E_PARSE, "application property '%.64s' appears twice",
                               prop.key);
            if (out->app_count == HUB_IOTHUB_APP_PROPS_MAX)
                return HUB_ERR(err, HUB_E_TOO_LARGE,
                               "more than %d application properties in the bag",
                               HUB_IOTHUB_APP_PROPS_MAX);
            out->app[out->app_count++] = prop;
        }
        i = end + 1;
    }
    return 0;
}

const struct hub_iothub_prop *hub_iothub_props_app_find0(const struct hub_iothub_props *props,
                                                         const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < props->app_count; i++) {
        const struct hub_iothub_prop *p = &props->app[i];
        if (p->key_len == klen && memcmp(p->key, key, klen) == 0)
            return p;
    }
    return NULL;
}

static size_t enc_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += hub_iothub__unreserved((unsigned char)s[i]) ? 1 : 3;
    return n;
}

static char *enc_put(char *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (hub_iothub__unreserved(c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0x0f];
        }
    }
    return o;
}

size_t hub_iothub_props_encoded_len(const struct hub_iothub_prop *props, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            total++; /* '&' */
        total += enc_len(props[i].key, props[i].key_len);
        if (props[i].value != NULL)
            total += 1 + enc_len(props[i].value, props[i].value_len);
    }
    return total;
}

int hub_iothub_props_encode(char *buf, size_t cap, const struct hub_iothub_prop *props, size_t n,
                            struct hub_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (props[i].key == NULL || props[i].key_len == 0)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "property %zu has an empty key", i);
    }
    size_t total = hub_iothub_props_encoded_len(props, n);
    if (total >= (size_t)INT_MAX || cap < total + 1)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "property bag needs %zu bytes, buffer holds %zu",
                       total + 1, cap);
    char *o = buf;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *o++ = '&';
        o = enc_put(o, props[i].key, props[i].key_len);
        if (props[i].value != NULL) {
            *o++ = '=';
            o = enc_put(o, props[i].value, props[i].value_len);
        }
    }
    *o = '\0';
    return (int)(o - buf);
}
