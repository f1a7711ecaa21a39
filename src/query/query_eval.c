/*
 * AST evaluation against one twin, in three-valued logic as Azure's query
 * language does it: every condition is TRUE, FALSE or UNDEFINED, and only
 * TRUE selects a device.
 *
 * | condition                          | UNDEFINED when                           |
 * |------------------------------------|------------------------------------------|
 * | path op literal, path IN [...]     | the path is missing, or its value's type |
 * |                                    | differs from the literal's (null aside:  |
 * |                                    | = null / != null test for JSON null)     |
 * | STARTSWITH / ENDSWITH              | the path is missing or not a string      |
 * | IS_* type checks                   | never (a missing path is FALSE)          |
 *
 * | a     | b     | a AND b | a OR b | NOT a |
 * |-------|-------|---------|--------|-------|
 * | T     | U     | U       | T      | F     |
 * | F     | U     | F       | U      | T     |
 * | U     | U     | U       | U      | U     |
 *
 * Numbers compare numerically (two integers exactly as 64-bit integers,
 * otherwise as doubles); strings by bytes (memcmp, shorter prefix first);
 * booleans only with = and != (the parser refuses the others).
 */
#include <stdlib.h>
#include <string.h>

#include "query/query_int.h"

enum tri { FALSE3, TRUE3, UNDEF3 };

static const json_t *resolve(const json_t *twin, const struct hub_query__path *path)
{
    const json_t *v = twin;
    const char *seg = path->segs;
    for (size_t i = 0; i < path->n_segs; i++) {
        if (!json_is_object(v))
            return NULL;
        v = json_object_get(v, seg);
        if (!v)
            return NULL;
        seg += strlen(seg) + 1;
    }
    return v;
}

static int sign_double(double a, double b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

/* Orders v against l; false when their types cannot be compared. */
static bool order(const json_t *v, const struct hub_query__lit *l, int *cmp)
{
    switch (l->type) {
    case HUB_QL_STRING: {
        if (!json_is_string(v))
            return false;
        size_t n = json_string_length(v);
        int c = memcmp(json_string_value(v), l->s, n < l->s_len ? n : l->s_len);
        *cmp = c != 0 ? (c < 0 ? -1 : 1) : n < l->s_len ? -1 : n > l->s_len ? 1 : 0;
        return true;
    }
    case HUB_QL_INT:
    case HUB_QL_REAL:
        if (json_is_integer(v) && l->type == HUB_QL_INT) {
            json_int_t i = json_integer_value(v);
            *cmp = i < l->i ? -1 : i > l->i ? 1 : 0;
        } else if (json_is_number(v)) {
            *cmp = sign_double(json_number_value(v), l->d);
        } else {
            return false;
        }
        return true;
    case HUB_QL_BOOL:
        if (!json_is_boolean(v))
            return false;
        *cmp = json_is_true(v) == l->b ? 0 : 1; /* only = and != reach here */
        return true;
    case HUB_QL_NULL:
        *cmp = json_is_null(v) ? 0 : 1; /* = null: "is the value null" */
        return true;
    }
    return false;
}

static enum tri compare(const json_t *v, enum hub_query__op op, const struct hub_query__lit *l)
{
    int c;
    if (!v || !order(v, l, &c))
        return UNDEF3;
    bool r;
    switch (op) {
    case HUB_QOP_EQ:
        r = c == 0;
        break;
    case HUB_QOP_NE:
        r = c != 0;
        break;
    case HUB_QOP_LT:
        r = c < 0;
        break;
    case HUB_QOP_GT:
        r = c > 0;
        break;
    case HUB_QOP_LE:
        r = c <= 0;
        break;
    default:
        r = c >= 0;
        break;
    }
    return r ? TRUE3 : FALSE3;
}

static enum tri affix(const json_t *v, const struct hub_query__lit *l, bool at_end)
{
    if (!json_is_string(v))
        return UNDEF3;
    size_t n = json_string_length(v);
    if (l->s_len > n)
        return FALSE3;
    const char *s = json_string_value(v) + (at_end ? n - l->s_len : 0);
    return memcmp(s, l->s, l->s_len) == 0 ? TRUE3 : FALSE3;
}

static enum tri function(const struct hub_query *q, const struct hub_query__node *n,
                         const json_t *v)
{
    switch (n->fn) {
    case HUB_QF_IS_DEFINED:
        return v ? TRUE3 : FALSE3;
    case HUB_QF_IS_NULL:
        return json_is_null(v) ? TRUE3 : FALSE3;
    case HUB_QF_IS_BOOL:
        return json_is_boolean(v) ? TRUE3 : FALSE3;
    case HUB_QF_IS_NUMBER:
        return json_is_number(v) ? TRUE3 : FALSE3;
    case HUB_QF_IS_STRING:
        return json_is_string(v) ? TRUE3 : FALSE3;
    case HUB_QF_IS_OBJECT:
        return json_is_object(v) ? TRUE3 : FALSE3;
    case HUB_QF_IS_ARRAY:
        return json_is_array(v) ? TRUE3 : FALSE3;
    case HUB_QF_IS_PRIMITIVE:
        return v && !json_is_object(v) && !json_is_array(v) ? TRUE3 : FALSE3;
    case HUB_QF_STARTSWITH:
        return affix(v, &q->lits[n->lit], false);
    case HUB_QF_ENDSWITH:
        return affix(v, &q->lits[n->lit], true);
    }
    return UNDEF3;
}

/* Recursion depth is bounded by the parser's limits (conditions, nesting). */
static enum tri eval(const struct hub_query *q, int idx, const json_t *twin)
{
    const struct hub_query__node *n = &q->nodes[idx];
    switch (n->kind) {
    case HUB_QN_AND: {
        enum tri a = eval(q, n->left, twin);
        if (a == FALSE3)
            return FALSE3;
        enum tri b = eval(q, n->right, twin);
        return b == FALSE3 ? FALSE3 : (a == TRUE3 && b == TRUE3) ? TRUE3 : UNDEF3;
    }
    case HUB_QN_OR: {
        enum tri a = eval(q, n->left, twin);
        if (a == TRUE3)
            return TRUE3;
        enum tri b = eval(q, n->right, twin);
        return b == TRUE3 ? TRUE3 : (a == FALSE3 && b == FALSE3) ? FALSE3 : UNDEF3;
    }
    case HUB_QN_NOT: {
        enum tri a = eval(q, n->left, twin);
        return a == UNDEF3 ? UNDEF3 : a == TRUE3 ? FALSE3 : TRUE3;
    }
    case HUB_QN_CMP:
        return compare(resolve(twin, &n->path), n->op, &q->lits[n->lit]);
    case HUB_QN_IN: {
        const json_t *v = resolve(twin, &n->path);
        enum tri r = FALSE3;
        for (size_t i = 0; i < n->n_lits; i++) {
            enum tri e = compare(v, HUB_QOP_EQ, &q->lits[n->lit + i]);
            if (e == TRUE3)
                return TRUE3;
            if (e == UNDEF3)
                r = UNDEF3;
        }
        return r;
    }
    case HUB_QN_FUNC:
        return function(q, n, resolve(twin, &n->path));
    }
    return UNDEF3;
}

bool hub_query_match(const struct hub_query *q, const json_t *twin)
{
    if (!q)
        return false;
    if (q->root < 0)
        return true;
    return eval(q, q->root, twin) == TRUE3;
}

bool hub_query_registry_only(const struct hub_query *q)
{
    return q && q->registry_only;
}

static size_t required_eqs(const struct hub_query *q, int idx, struct hub_query_eq *out, size_t cap,
                           size_t count)
{
    const struct hub_query__node *n = &q->nodes[idx];
    if (n->kind == HUB_QN_AND) {
        count = required_eqs(q, n->left, out, cap, count);
        return required_eqs(q, n->right, out, cap, count);
    }
    if (n->kind == HUB_QN_CMP && n->op == HUB_QOP_EQ && n->path.n_segs == 1 &&
        q->lits[n->lit].type == HUB_QL_STRING) {
        if (count < cap) {
            out[count].field = n->path.segs;
            out[count].value = q->lits[n->lit].s;
        }
        count++;
    }
    return count;
}

size_t hub_query_required_eqs_get0(const struct hub_query *q, struct hub_query_eq *out, size_t cap)
{
    if (!q || q->root < 0)
        return 0;
    return required_eqs(q, q->root, out, cap, 0);
}

void hub_query_free(struct hub_query *q)
{
    if (!q)
        return;
    free(q->nodes);
    free(q->lits);
    free(q->arena);
    free(q);
}
