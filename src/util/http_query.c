#include "util/http_query.h"

#include <string.h>

static int http_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the byte at in[*i], advancing *i. Returns the byte, or -1 on a bad
 * escape or a NUL (which would silently cut C strings built from it). */
static int http_decode_byte(const char *in, size_t len, size_t *i, bool plus_is_space)
{
    char c = in[*i];
    if (c == '%') {
        if (len - *i < 3)
            return -1;
        int hi = http_hex(in[*i + 1]), lo = http_hex(in[*i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        *i += 3;
        int b = hi * 16 + lo;
        return b == 0 ? -1 : b;
    }
    (*i)++;
    if (c == '\0')
        return -1;
    return (c == '+' && plus_is_space) ? ' ' : (unsigned char)c;
}

/* Decodes into out[0..cap) with room for the NUL: length, -1 bad, -2 full. */
static long http_decode_bounded(const char *in, size_t len, char *out, size_t cap,
                                bool plus_is_space)
{
    size_t i = 0, o = 0;
    while (i < len) {
        int b = http_decode_byte(in, len, &i, plus_is_space);
        if (b < 0)
            return -1;
        if (o + 1 >= cap)
            return -2;
        out[o++] = (char)b;
    }
    if (cap == 0)
        return -2;
    out[o] = '\0';
    return (long)o;
}

long http_percent_decode(const char *in, size_t len, char *out, bool plus_is_space)
{
    return http_decode_bounded(in, len, out, len + 1, plus_is_space);
}

void http_query_iter_init(http_query_iter *it, const char *query, size_t len)
{
    it->p = query;
    it->end = query ? query + len : query;
}

bool http_query_next(http_query_iter *it, const char **key, size_t *key_len, const char **value,
                     size_t *value_len)
{
    while (it->p && it->p < it->end) {
        const char *start = it->p;
        const char *amp = memchr(start, '&', (size_t)(it->end - start));
        const char *stop = amp ? amp : it->end;
        it->p = amp ? amp + 1 : it->end;
        if (stop == start)
            continue; /* "&&" or a leading/trailing '&' */
        const char *eq = memchr(start, '=', (size_t)(stop - start));
        *key = start;
        *key_len = (size_t)((eq ? eq : stop) - start);
        *value = eq ? eq + 1 : stop;
        *value_len = eq ? (size_t)(stop - eq - 1) : 0;
        return true;
    }
    return false;
}

/* Compares a raw query key with a plain key, decoding on the fly so that no
 * scratch buffer is needed for keys of any length. */
static bool http_key_matches(const char *raw, size_t raw_len, const char *key)
{
    size_t i = 0;
    const unsigned char *k = (const unsigned char *)key;
    while (i < raw_len) {
        int b = http_decode_byte(raw, raw_len, &i, true);
        if (b < 0 || *k == '\0' || b != *k)
            return false;
        k++;
    }
    return *k == '\0';
}

long http_query_get(const char *query, size_t len, const char *key, char *out, size_t out_cap)
{
    http_query_iter it;
    http_query_iter_init(&it, query, len);
    const char *k, *v;
    size_t klen, vlen;
    while (http_query_next(&it, &k, &klen, &v, &vlen)) {
        if (!http_key_matches(k, klen, key))
            continue;
        long n = http_decode_bounded(v, vlen, out, out_cap, true);
        return n < 0 ? -2 : n;
    }
    return -1;
}
