/* What the files of the query layer share: the AST. Never include from another layer. */
#ifndef HUB_QUERY_QUERY_INT_H
#define HUB_QUERY_QUERY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/query.h"

enum hub_query__kind {
    HUB_QN_AND,  /* left AND right */
    HUB_QN_OR,   /* left OR right */
    HUB_QN_NOT,  /* NOT left */
    HUB_QN_CMP,  /* path op lits[lit] (literal-first forms are flipped at parse time) */
    HUB_QN_IN,   /* path IN lits[lit .. lit + n_lits) */
    HUB_QN_FUNC, /* fn(path [, lits[lit]]) */
};

enum hub_query__op { HUB_QOP_EQ, HUB_QOP_NE, HUB_QOP_LT, HUB_QOP_GT, HUB_QOP_LE, HUB_QOP_GE };

enum hub_query__fn {
    HUB_QF_IS_DEFINED,
    HUB_QF_IS_NULL,
    HUB_QF_IS_BOOL,
    HUB_QF_IS_NUMBER,
    HUB_QF_IS_STRING,
    HUB_QF_IS_OBJECT,
    HUB_QF_IS_ARRAY,
    HUB_QF_IS_PRIMITIVE,
    HUB_QF_STARTSWITH,
    HUB_QF_ENDSWITH,
};

enum hub_query__lit_type { HUB_QL_STRING, HUB_QL_INT, HUB_QL_REAL, HUB_QL_BOOL, HUB_QL_NULL };

struct hub_query__lit {
    enum hub_query__lit_type type;
    const char *s; /* HUB_QL_STRING: decoded, NUL-terminated, in the arena */
    size_t s_len;
    int64_t i;
    double d;
    bool b;
};

/* A path's segments lie back to back in the arena, each NUL-terminated
 * (identifiers never contain NUL), the "devices." alias already dropped. */
struct hub_query__path {
    const char *segs;
    size_t n_segs;
};

struct hub_query__node {
    enum hub_query__kind kind;
    enum hub_query__op op;
    enum hub_query__fn fn;
    int left, right; /* node indexes (AND, OR, NOT) */
    struct hub_query__path path;
    size_t lit, n_lits; /* index into lits; n_lits is 0 for a 1-argument function */
};

struct hub_query {
    struct hub_query__node *nodes;
    size_t n_nodes, cap_nodes;
    struct hub_query__lit *lits;
    size_t n_lits, cap_lits;
    /* One block sized from the text length before parsing: a NUL-terminated
     * copy of the text, then decoded strings and path segments (each no
     * longer than its source token plus a NUL), so it never moves. */
    char *arena;
    size_t arena_used, arena_cap;
    int root; /* -1: no WHERE clause */
    bool registry_only;
};

#endif
