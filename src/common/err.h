/*
 * hub_err: the one error type every hubd layer returns.
 *
 * Functions that can fail return 0 on success or a negative HUB_E_* code and,
 * when the caller passed a non-NULL `struct hub_err *`, fill it with the code,
 * a human message and the file:line that found the problem. The code drives
 * control flow (which CONNACK, which HTTP status, which exit status); the text
 * is for people. Codes are negative, always; the names double as the log
 * `reason=` values.
 *
 * The message buffer is fixed so the error path never allocates.
 * Thread rules: none; a hub_err belongs to the caller's stack.
 */
#ifndef HUB_COMMON_ERR_H
#define HUB_COMMON_ERR_H

#include <stddef.h>

/* X(NAME, default text). Order is ABI for nothing: codes are compared by name. */
#define HUB_ERR_MAP(X)                                                                             \
    X(NOMEM, "out of memory")                                                                      \
    X(IO, "input/output error")                                                                    \
    X(INVALID_ARG, "invalid argument")                                                             \
    X(PROTOCOL_VERSION, "unsupported protocol version")                                            \
    X(TOO_LARGE, "input too large")                                                                \
    X(EMPTY, "input is empty")                                                                     \
    X(PRIVATE_KEY, "input holds a private key")                                                    \
    X(NOT_CERT, "input is not a certificate")                                                      \
    X(PARSE, "malformed input")                                                                    \
    X(CRYPTO, "cryptographic operation failed")                                                    \
    X(CERT_EXPIRED, "certificate expired")                                                         \
    X(CERT_NOT_YET_VALID, "certificate not yet valid")                                             \
    X(CHAIN_UNTRUSTED, "no path to a trusted CA")                                                  \
    X(CHAIN_SIGNATURE, "certificate signature does not verify")                                    \
    X(CHAIN_TOO_LONG, "certificate chain too long")                                                \
    X(CHAIN_NOT_CA, "issuer is not a CA")                                                          \
    X(CHAIN_PATHLEN, "path length constraint exceeded")                                            \
    X(CHAIN_KEY_USAGE, "key usage does not allow this use")                                        \
    X(CHAIN_EKU, "extended key usage does not allow this use")                                     \
    X(CHAIN_NAME_CONSTRAINTS, "name constraints violated")                                         \
    X(CHAIN_CRITICAL_EXT, "unknown critical extension")                                            \
    X(CHAIN_WEAK_CRYPTO, "weak signature algorithm or key")                                        \
    X(CHAIN_PROFILE, "certificate violates the X.509 profile")                                     \
    X(CHAIN_LEAF_IS_CA, "leaf certificate is a CA")                                                \
    X(CHAIN_REVOKED, "certificate revoked")                                                        \
    X(CN_MISMATCH, "certificate CN does not match")                                                \
    X(NOT_FOUND, "not found")                                                                      \
    X(EXISTS, "already exists")                                                                    \
    X(ETAG_MISMATCH, "etag does not match")                                                        \
    X(LIMIT, "limit reached")                                                                      \
    X(CODE_EXPIRED, "verification code expired")                                                   \
    X(NO_CODE, "no verification code outstanding")                                                 \
    X(STORE, "storage error")                                                                      \
    X(BUSY, "resource busy")                                                                       \
    X(UNAUTHORIZED, "unauthorized")                                                                \
    X(FORBIDDEN, "forbidden")                                                                      \
    X(INTERNAL, "internal error")

enum hub_code {
    HUB_OK = 0,
#define HUB_ERR_ENUM(name, text) HUB_E_##name,
    HUB_ERR__FIRST = -1000,
    HUB_ERR_MAP(HUB_ERR_ENUM)
#undef HUB_ERR_ENUM
        HUB_ERR__LAST
};

#define HUB_ERR_MSG_MAX 256

struct hub_err {
    int code; /* HUB_OK or a HUB_E_* value */
    char msg[HUB_ERR_MSG_MAX];
    const char *file; /* static string, where the error was found */
    int line;
};

/* Symbolic name of a code ("CERT_EXPIRED"), "OK" for 0, "UNKNOWN" otherwise. Static. */
const char *hub_err_name(int code);
/* Default English text of a code. Static. */
const char *hub_err_text(int code);

/* Fills *err (if non-NULL) and returns `code`, so callers can `return HUB_ERR(...)`. */
int hub_err_set(struct hub_err *err, int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Resets *err to the zero (success) state; NULL is accepted. */
void hub_err_clear(struct hub_err *err);

#define HUB_ERR(err, code, ...) hub_err_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

#endif
