/*
 * Query text -> AST: a lexer that reads one token at a time and a
 * recursive-descent parser, one function per precedence level
 * (OR < AND < NOT < primary). The full grammar is in query.h and
 * docs/query.md.
 *
 * Tokens:
 *
 * | token      | spelling                                                  |
 * |------------|-----------------------------------------------------------|
 * | identifier | [A-Za-z_$][A-Za-z0-9_$]*, or [A-Za-z0-9_$]+ right after   |
 * |            | a '.'; keywords are identifiers spelled like one, in any |
 * |            | case                                                      |
 * | string     | '...' with '' standing for one quote                     |
 * | number     | -?[0-9]+(.[0-9]+)?([eE][+-]?[0-9]+)?                      |
 * | operator   | = != <> < > <= >=                                         |
 * | punctuation| * . , ( ) [ ]                                             |
 *
 * Spaces, tabs, CR and LF separate tokens. Every error names the 1-based
 * byte column where the offending token starts, so a client can point at it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/query_int.h"

enum tok_type {
    T_END,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_OP,
    T_STAR,
    T_DOT,
    T_COMMA,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
};

struct token {
    enum tok_type type;
    size_t pos; /* byte offset in the text */
    size_t len;
    enum hub_query__op op; /* T_OP */
};

struct parser {
    const char *src; /* NUL-terminated copy of the text, in the arena */
    size_t len;
    size_t pos; /* where the next token starts (before spaces) */
    struct token tok;
    struct hub_query *q;
    struct hub_err *err;
    int depth;
    int conditions;
};

static const struct {
    const char *name;
    enum hub_query__fn fn;
    bool takes_string; /* second argument: a string literal */
} functions[] = {
    {"IS_DEFINED", HUB_QF_IS_DEFINED, false}, {"IS_NULL", HUB_QF_IS_NULL, false},
    {"IS_BOOL", HUB_QF_IS_BOOL, false},       {"IS_NUMBER", HUB_QF_IS_NUMBER, false},
    {"IS_STRING", HUB_QF_IS_STRING, false},   {"IS_OBJECT", HUB_QF_IS_OBJECT, false},
    {"IS_ARRAY", HUB_QF_IS_ARRAY, false},     {"IS_PRIMITIVE", HUB_QF_IS_PRIMITIVE, false},
    {"STARTSWITH", HUB_QF_STARTSWITH, true},  {"ENDSWITH", HUB_QF_ENDSWITH, true},
};

/* Words that cannot start a path (true/false/null are literals instead). */
static const char *const reserved[] = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN"};

static int fail_at(struct parser *p, size_t pos, int code, const char *what)
{
    return HUB_ERR(p->err, code, "query error at column %zu: %s", pos + 1, what);
}

/* A limit from query.h exceeded at pos: "<what> (max <limit>)". */
static int fail_limit(struct parser *p, size_t pos, const char *what, int limit)
{
    return HUB_ERR(p->err, HUB_E_TOO_LARGE, "query error at column %zu: %s (max %d)", pos + 1, what,
                   limit);
}

static int fail(struct parser *p, const char *what)
{
    return fail_at(p, p->tok.pos, HUB_E_PARSE, what);
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || is_digit(c);
}

static size_t skip_space(const struct parser *p, size_t pos)
{
    while (pos < p->len && (p->src[pos] == ' ' || p->src[pos] == '\t' || p->src[pos] == '\r' ||
                            p->src[pos] == '\n'))
        pos++;
    return pos;
}

/* Checks the number syntax at pos; returns its length or 0 if malformed. */
static size_t number_len(const struct parser *p, size_t pos)
{
    size_t i = pos;
    if (p->src[i] == '-')
        i++;
    size_t digits = i;
    while (is_digit(p->src[i]))
        i++;
    if (i == digits)
        return 0;
    if (p->src[i] == '.') {
        size_t frac = ++i;
        while (is_digit(p->src[i]))
            i++;
        if (i == frac)
            return 0;
    }
    if (p->src[i] == 'e' || p->src[i] == 'E') {
        i++;
        if (p->src[i] == '+' || p->src[i] == '-')
            i++;
        size_t exp = i;
        while (is_digit(p->src[i]))
            i++;
        if (i == exp)
            return 0;
    }
    /* "12abc" or "1.2.3" is one bad token, not a number and a name */
    if (is_ident_char(p->src[i]) || p->src[i] == '.')
        return 0;
    return i - pos;
}

/* Reads the token at p->pos into p->tok. The copy in src is NUL-terminated,
 * so looking one byte ahead is always safe; a NUL inside the text is caught
 * as an unexpected byte because pos < len there. */
static int advance(struct parser *p)
{
    size_t pos = skip_space(p, p->pos);
    const char *s = p->src + pos;
    struct token *t = &p->tok;
    t->pos = pos;
    t->len = 1;
    if (pos >= p->len) {
        t->type = T_END;
        t->len = 0;
    } else if (is_ident_start(*s) || (t->type == T_DOT && is_ident_char(*s))) {
        /* after '.', a field name may start with a digit (tags.2ndFloor) */
        t->type = T_IDENT;
        while (is_ident_char(s[t->len]))
            t->len++;
    } else if (is_digit(*s) || (*s == '-' && is_digit(s[1]))) {
        t->type = T_NUMBER;
        t->len = number_len(p, pos);
        if (t->len == 0)
            return fail(p, "malformed number");
    } else if (*s == '\'') {
        t->type = T_STRING;
        for (;;) {
            if (pos + t->len >= p->len)
                return fail(p, "unterminated string");
            /* values are handed on as C strings (hub_query_required_eqs_get0) */
            if (s[t->len] == '\0')
                return fail_at(p, pos + t->len, HUB_E_PARSE, "unexpected byte 0x00");
            if (s[t->len] == '\'') {
                if (s[t->len + 1] != '\'')
                    break;
                t->len++;
            }
            t->len++;
        }
        t->len++; /* the closing quote */
    } else {
        t->type = T_OP;
        switch (*s) {
        case '=':
            t->op = HUB_QOP_EQ;
            break;
        case '!':
            if (s[1] != '=')
                return fail(p, "unexpected character '!' (did you mean '!='?)");
            t->op = HUB_QOP_NE;
            t->len = 2;
            break;
        case '<':
            t->op = s[1] == '=' ? HUB_QOP_LE : s[1] == '>' ? HUB_QOP_NE : HUB_QOP_LT;
            t->len = t->op == HUB_QOP_LT ? 1 : 2;
            break;
        case '>':
            t->op = s[1] == '=' ? HUB_QOP_GE : HUB_QOP_GT;
            t->len = t->op == HUB_QOP_GT ? 1 : 2;
            break;
        case '*':
            t->type = T_STAR;
            break;
        case '.':
            t->type = T_DOT;
            break;
        case ',':
            t->type = T_COMMA;
            break;
        case '(':
            t->type = T_LPAREN;
            break;
        case ')':
            t->type = T_RPAREN;
            break;
        case '[':
            t->type = T_LBRACK;
            break;
        case ']':
            t->type = T_RBRACK;
            break;
        case '"':
            return fail(p, "unexpected character '\"' (strings use single quotes)");
        default: {
            char what[64];
            unsigned char c = (unsigned char)*s;
            if (c > 0x20 && c < 0x7f)
                snprintf(what, sizeof(what), "unexpected character '%c'", c);
            else
                snprintf(what, sizeof(what), "unexpected byte 0x%02x", c);
            return fail(p, what);
        }
        }
    }
    p->pos = pos + t->len;
    return 0;
}

static bool tok_is_word(const struct parser *p, const char *word)
{
    return p->tok.type == T_IDENT && p->tok.len == strlen(word) &&
           strncasecmp(p->src + p->tok.pos, word, p->tok.len) == 0;
}

static bool tok_is_reserved(const struct parser *p)
{
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (tok_is_word(p, reserved[i]))
            return true;
    return false;
}

static bool tok_is_literal(const struct parser *p)
{
    return p->tok.type == T_STRING || p->tok.type == T_NUMBER || tok_is_word(p, "true") ||
           tok_is_word(p, "false") || tok_is_word(p, "null");
}

/* Reserves n bytes of the arena into *out. Sizing in hub_query_parse_new
 * makes running out impossible; the check stays so a sizing bug is an
 * error, not an overflow. */
static int arena_take(struct parser *p, size_t n, char **out)
{
    struct hub_query *q = p->q;
    if (n > q->arena_cap - q->arena_used)
        return HUB_ERR(p->err, HUB_E_INTERNAL, "query arena too small");
    *out = q->arena + q->arena_used;
    q->arena_used += n;
    return 0;
}

static int node_new(struct parser *p, enum hub_query__kind kind)
{
    struct hub_query *q = p->q;
    if (q->n_nodes == q->cap_nodes) {
        size_t cap = q->cap_nodes ? q->cap_nodes * 2 : 16;
        struct hub_query__node *n = realloc(q->nodes, cap * sizeof(*n));
        if (!n)
            return HUB_ERR(p->err, HUB_E_NOMEM, "out of memory");
        q->nodes = n;
        q->cap_nodes = cap;
    }
    struct hub_query__node *n = &q->nodes[q->n_nodes];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->left = n->right = -1;
    return (int)q->n_nodes++;
}

/* Counts one leaf condition against the limit; pos is where it starts. */
static int condition_count(struct parser *p, size_t pos)
{
    if (++p->conditions > HUB_QUERY_MAX_CONDITIONS)
        return fail_limit(p, pos, "too many conditions", HUB_QUERY_MAX_CONDITIONS);
    return 0;
}

static int depth_enter(struct parser *p)
{
    if (++p->depth > HUB_QUERY_MAX_DEPTH)
        return fail_limit(p, p->tok.pos, "nesting too deep", HUB_QUERY_MAX_DEPTH);
    return 0;
}

/* Appends the literal at the current token to q->lits and advances. The
 * caller has checked tok_is_literal(). */
static int literal(struct parser *p)
{
    struct hub_query *q = p->q;
    if (q->n_lits == q->cap_lits) {
        size_t cap = q->cap_lits ? q->cap_lits * 2 : 8;
        struct hub_query__lit *l = realloc(q->lits, cap * sizeof(*l));
        if (!l)
            return HUB_ERR(p->err, HUB_E_NOMEM, "out of memory");
        q->lits = l;
        q->cap_lits = cap;
    }
    struct hub_query__lit *l = &q->lits[q->n_lits];
    memset(l, 0, sizeof(*l));
    const char *s = p->src + p->tok.pos;
    if (p->tok.type == T_STRING) {
        char *out = NULL;
        int rc = arena_take(p, p->tok.len - 1, &out);
        if (rc != 0)
            return rc;
        size_t n = 0;
        for (size_t i = 1; i + 1 < p->tok.len; i++) {
            out[n++] = s[i];
            if (s[i] == '\'')
                i++; /* '' is one quote */
        }
        out[n] = '\0';
        l->type = HUB_QL_STRING;
        l->s = out;
        l->s_len = n;
    } else if (p->tok.type == T_NUMBER) {
        bool integral = true;
        for (size_t i = 0; i < p->tok.len; i++)
            if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
                integral = false;
        char *end;
        errno = 0;
        if (integral) {
            long long v = strtoll(s, &end, 10);
            if (errno == 0) {
                l->type = HUB_QL_INT;
                l->i = v;
                l->d = (double)v;
            }
        }
        if (!integral || errno != 0) { /* a real, or an integer beyond 64 bits */
            errno = 0;
            l->d = strtod(s, &end);
            /* underflow to (almost) zero is harmless; overflow is not a number */
            if (l->d == HUGE_VAL || l->d == -HUGE_VAL)
                return fail(p, "number out of range");
            l->type = HUB_QL_REAL;
        }
    } else if (tok_is_word(p, "true") || tok_is_word(p, "false")) {
        l->type = HUB_QL_BOOL;
        l->b = tok_is_word(p, "true");
    } else {
        l->type = HUB_QL_NULL;
    }
    q->n_lits++;
    return advance(p);
}

/* path := ident ('.' ident)*, current token an identifier that is not
 * reserved. Copies the segments into the arena. */
static int path(struct parser *p, struct hub_query__path *out)
{
    char *start = p->q->arena + p->q->arena_used;
    out->n_segs = 0;
    for (;;) {
        char *seg = NULL;
        int rc = arena_take(p, p->tok.len + 1, &seg);
        if (rc != 0)
            return rc;
        memcpy(seg, p->src + p->tok.pos, p->tok.len);
        seg[p->tok.len] = '\0';
        out->n_segs++;
        if ((rc = advance(p)) != 0)
            return rc;
        if (p->tok.type != T_DOT)
            break;
        if ((rc = advance(p)) != 0)
            return rc;
        if (p->tok.type != T_IDENT)
            return fail(p, "expected a field name after '.'");
    }
    out->segs = start;
    /* "devices.status" names the same field as "status": devices is the
     * FROM collection, usable as an alias */
    if (out->n_segs > 1 && strcmp(out->segs, "devices") == 0) {
        out->segs += sizeof("devices");
        out->n_segs--;
    }
    if (strcmp(out->segs, "tags") == 0 || strcmp(out->segs, "properties") == 0)
        p->q->registry_only = false;
    return 0;
}

static bool tok_is_path_start(const struct parser *p)
{
    return p->tok.type == T_IDENT && !tok_is_reserved(p) && !tok_is_literal(p);
}

/* Ordering a bool or null has no meaning; refuse it up front rather than
 * silently never matching. */
static int check_ordering(struct parser *p, size_t lit, struct token op)
{
    enum hub_query__lit_type t = p->q->lits[lit].type;
    if (op.op != HUB_QOP_EQ && op.op != HUB_QOP_NE && (t == HUB_QL_BOOL || t == HUB_QL_NULL))
        return fail_at(p, op.pos, HUB_E_PARSE, "only = and != apply to true, false and null");
    return 0;
}

/* IN '[' literal (',' literal)* ']': the values land back to back in lits. */
static int in_list(struct parser *p, size_t *lit, size_t *n_lits)
{
    int rc = advance(p); /* IN */
    if (rc != 0)
        return rc;
    if (p->tok.type != T_LBRACK)
        return fail(p, "expected '[' after IN");
    *lit = p->q->n_lits;
    *n_lits = 0;
    for (;;) {
        if ((rc = advance(p)) != 0)
            return rc;
        if (!tok_is_literal(p))
            return fail(p, "expected a value");
        if (*n_lits == HUB_QUERY_MAX_IN_VALUES)
            return fail_limit(p, p->tok.pos, "too many values in IN list", HUB_QUERY_MAX_IN_VALUES);
        if ((rc = literal(p)) != 0)
            return rc;
        ++*n_lits;
        if (p->tok.type == T_RBRACK)
            return advance(p);
        if (p->tok.type != T_COMMA)
            return fail(p, "expected ',' or ']'");
    }
}

/* path op literal | path IN [...]; current token starts the path. */
static int comparison_path_first(struct parser *p)
{
    int rc = condition_count(p, p->tok.pos);
    if (rc != 0)
        return rc;
    struct hub_query__path pa;
    if ((rc = path(p, &pa)) != 0)
        return rc;
    if (tok_is_word(p, "IN")) {
        size_t lit = 0, n_lits = 0;
        if ((rc = in_list(p, &lit, &n_lits)) != 0)
            return rc;
        int idx = node_new(p, HUB_QN_IN);
        if (idx < 0)
            return idx;
        p->q->nodes[idx].path = pa;
        p->q->nodes[idx].lit = lit;
        p->q->nodes[idx].n_lits = n_lits;
        return idx;
    }
    if (p->tok.type != T_OP)
        return fail(p, "expected a comparison operator");
    struct token op = p->tok;
    if ((rc = advance(p)) != 0)
        return rc;
    if (!tok_is_literal(p)) {
        char what[64]; /* names the operator as written: <> and != differ */
        snprintf(what, sizeof(what), "expected a value after '%.*s'", (int)op.len, p->src + op.pos);
        return fail(p, what);
    }
    if ((rc = literal(p)) != 0)
        return rc;
    if ((rc = check_ordering(p, p->q->n_lits - 1, op)) != 0)
        return rc;
    int idx = node_new(p, HUB_QN_CMP);
    if (idx < 0)
        return idx;
    struct hub_query__node *n = &p->q->nodes[idx];
    n->path = pa;
    n->op = op.op;
    n->lit = p->q->n_lits - 1;
    n->n_lits = 1;
    return idx;
}

/* literal op path: stored as path op' literal with the order flipped. */
static int comparison_literal_first(struct parser *p)
{
    int rc = condition_count(p, p->tok.pos);
    if (rc != 0)
        return rc;
    if ((rc = literal(p)) != 0)
        return rc;
    size_t lit = p->q->n_lits - 1;
    if (p->tok.type != T_OP)
        return fail(p, "expected a comparison operator");
    struct token op = p->tok;
    if ((rc = check_ordering(p, lit, op)) != 0)
        return rc;
    if ((rc = advance(p)) != 0)
        return rc;
    if (!tok_is_path_start(p)) {
        char what[64];
        snprintf(what, sizeof(what), "expected a field path after '%.*s'", (int)op.len,
                 p->src + op.pos);
        return fail(p, what);
    }
    struct hub_query__path pa;
    if ((rc = path(p, &pa)) != 0)
        return rc;
    static const enum hub_query__op flipped[] = {
        [HUB_QOP_EQ] = HUB_QOP_EQ, [HUB_QOP_NE] = HUB_QOP_NE, [HUB_QOP_LT] = HUB_QOP_GT,
        [HUB_QOP_GT] = HUB_QOP_LT, [HUB_QOP_LE] = HUB_QOP_GE, [HUB_QOP_GE] = HUB_QOP_LE,
    };
    int idx = node_new(p, HUB_QN_CMP);
    if (idx < 0)
        return idx;
    struct hub_query__node *n = &p->q->nodes[idx];
    n->path = pa;
    n->op = flipped[op.op];
    n->lit = lit;
    n->n_lits = 1;
    return idx;
}

/* name '(' path [',' string] ')'; current token is the name, followed by '('. */
static int function_call(struct parser *p)
{
    size_t name_pos = p->tok.pos;
    size_t i;
    for (i = 0; i < sizeof(functions) / sizeof(functions[0]); i++)
        if (tok_is_word(p, functions[i].name))
            break;
    if (i == sizeof(functions) / sizeof(functions[0]))
        return fail(p, "unknown function");
    int rc = condition_count(p, name_pos);
    if (rc != 0)
        return rc;
    if ((rc = advance(p)) != 0 || (rc = advance(p)) != 0) /* name, '(' */
        return rc;
    if (!tok_is_path_start(p))
        return fail(p, "expected a field path");
    struct hub_query__path pa;
    if ((rc = path(p, &pa)) != 0)
        return rc;
    size_t lit = 0, n_lits = 0;
    if (functions[i].takes_string) {
        if (p->tok.type != T_COMMA)
            return fail(p, "expected ','");
        if ((rc = advance(p)) != 0)
            return rc;
        if (p->tok.type != T_STRING)
            return fail(p, "expected a string");
        if ((rc = literal(p)) != 0)
            return rc;
        lit = p->q->n_lits - 1;
        n_lits = 1;
    }
    if (p->tok.type != T_RPAREN)
        return fail(p, "expected ')'");
    if ((rc = advance(p)) != 0)
        return rc;
    int idx = node_new(p, HUB_QN_FUNC);
    if (idx < 0)
        return idx;
    struct hub_query__node *n = &p->q->nodes[idx];
    n->fn = functions[i].fn;
    n->path = pa;
    n->lit = lit;
    n->n_lits = n_lits;
    return idx;
}

static int expr_or(struct parser *p);

/* Returns a node index (>= 0) or a negative code, as do the levels above. */
static int primary(struct parser *p)
{
    if (p->tok.type == T_LPAREN) {
        int rc = depth_enter(p);
        if (rc != 0 || (rc = advance(p)) != 0)
            return rc;
        int idx = expr_or(p);
        if (idx < 0)
            return idx;
        if (p->tok.type != T_RPAREN)
            return fail(p, "expected AND, OR or ')'");
        p->depth--;
        rc = advance(p);
        return rc != 0 ? rc : idx;
    }
    if (tok_is_literal(p))
        return comparison_literal_first(p);
    if (p->tok.type == T_IDENT && !tok_is_reserved(p)) {
        if (p->src[skip_space(p, p->pos)] == '(')
            return function_call(p);
        return comparison_path_first(p);
    }
    return fail(p, "expected a condition");
}

static int expr_not(struct parser *p)
{
    if (!tok_is_word(p, "NOT"))
        return primary(p);
    int rc = depth_enter(p);
    if (rc != 0 || (rc = advance(p)) != 0)
        return rc;
    int child = expr_not(p);
    if (child < 0)
        return child;
    p->depth--;
    int idx = node_new(p, HUB_QN_NOT);
    if (idx >= 0)
        p->q->nodes[idx].left = child;
    return idx;
}

static int expr_binary(struct parser *p, const char *word, enum hub_query__kind kind,
                       int (*operand)(struct parser *))
{
    int left = operand(p);
    while (left >= 0 && tok_is_word(p, word)) {
        int rc = advance(p);
        if (rc != 0)
            return rc;
        int right = operand(p);
        if (right < 0)
            return right;
        int idx = node_new(p, kind);
        if (idx < 0)
            return idx;
        p->q->nodes[idx].left = left;
        p->q->nodes[idx].right = right;
        left = idx;
    }
    return left;
}

static int expr_and(struct parser *p)
{
    return expr_binary(p, "AND", HUB_QN_AND, expr_not);
}

static int expr_or(struct parser *p)
{
    return expr_binary(p, "OR", HUB_QN_OR, expr_and);
}

static int expect_word(struct parser *p, const char *word, const char *what)
{
    if (!tok_is_word(p, word))
        return fail(p, what);
    return advance(p);
}

static int query(struct parser *p)
{
    int rc = advance(p);
    if (rc != 0 || (rc = expect_word(p, "SELECT", "expected SELECT")) != 0)
        return rc;
    if (p->tok.type != T_STAR)
        return fail(p, "expected '*' (only SELECT * is supported)");
    if ((rc = advance(p)) != 0 || (rc = expect_word(p, "FROM", "expected FROM")) != 0 ||
        (rc = expect_word(p, "devices", "expected devices (the only collection supported)")) != 0)
        return rc;
    if (p->tok.type == T_END)
        return 0;
    if ((rc = expect_word(p, "WHERE", "expected WHERE or end of query")) != 0)
        return rc;
    int root = expr_or(p);
    if (root < 0)
        return root;
    if (p->tok.type != T_END)
        return fail(p, "expected AND, OR or end of query");
    p->q->root = root;
    return 0;
}

int hub_query_parse_new(const char *text, size_t len, struct hub_query **out, struct hub_err *err)
{
    if (out)
        *out = NULL;
    if (!text || !out)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "query: text and out are required");
    if (len > HUB_QUERY_MAX_BYTES)
        return HUB_ERR(err, HUB_E_TOO_LARGE,
                       "query error at column %d: query too long (max %d bytes)",
                       HUB_QUERY_MAX_BYTES + 1, HUB_QUERY_MAX_BYTES);
    struct hub_query *q = calloc(1, sizeof(*q));
    if (!q)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    /* the text copy (len + 1), then every decoded token (at most its own
     * length + 1 bytes each, so at most 2 * len in all) */
    q->arena_cap = 3 * len + 2;
    q->arena = malloc(q->arena_cap);
    if (!q->arena) {
        free(q);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    }
    memcpy(q->arena, text, len);
    q->arena[len] = '\0';
    q->arena_used = len + 1;
    q->root = -1;
    q->registry_only = true;
    struct parser p = {.src = q->arena, .len = len, .q = q, .err = err};
    int rc = query(&p);
    if (rc != 0) {
        hub_query_free(q);
        return rc;
    }
    *out = q;
    return 0;
}
