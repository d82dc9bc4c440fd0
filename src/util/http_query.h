/* http_query — iterate and percent-decode URL query strings and path parts. */
#ifndef HARK_UTIL_HTTP_QUERY_H
#define HARK_UTIL_HTTP_QUERY_H

#include <stdbool.h>
#include <stddef.h>

/* Percent-decodes in[0..len) into out (which must hold len + 1 bytes; the
 * result is NUL-terminated). When plus_is_space, '+' becomes ' ' (query
 * strings); paths keep '+'. Returns the decoded length, or -1 on a bad
 * escape (%zz, truncated %) or a decoded NUL byte. */
long http_percent_decode(const char *in, size_t len, char *out, bool plus_is_space);

typedef struct http_query_iter {
    const char *p;
    const char *end;
} http_query_iter;

void http_query_iter_init(http_query_iter *it, const char *query, size_t len);
/* Next key=value pair, raw (not decoded). A pair without '=' has an empty
 * value. Empty pairs (from "&&") are skipped. Returns false at the end. */
bool http_query_next(http_query_iter *it, const char **key, size_t *key_len, const char **value,
                     size_t *value_len);

/* Finds the first parameter named key (compared after decoding) and writes
 * its decoded value into out (NUL-terminated). Returns the length, -1 if
 * absent, -2 if it does not fit in out_cap or is badly escaped. */
long http_query_get(const char *query, size_t len, const char *key, char *out, size_t out_cap);

#endif
