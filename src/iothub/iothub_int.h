/*
 * Shared by the files of the iothub layer only; never included elsewhere.
 */
#ifndef HUB_IOTHUB_INT_H
#define HUB_IOTHUB_INT_H

#include "iothub/iothub.h"

/*
 * Percent-decodes in[0..len) into out (capacity cap, NUL-terminated) and
 * stores the decoded length in *out_len. `%XX` in either hex case; '+' is a
 * plus sign. HUB_E_PARSE for a bad or truncated escape, a NUL (raw or %00),
 * or invalid UTF-8 after decoding; HUB_E_TOO_LARGE if the result does not fit
 * in cap - 1 bytes. `what` names the field in the message.
 */
int hub_iothub__pct_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len,
                           const char *what, struct hub_err *err);

/* 1 if c is an RFC 3986 unreserved character (never percent-encoded). */
int hub_iothub__unreserved(unsigned char c);

#endif
