#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(buf *b)
{
    b->len = 0;
}

void buf_reserve(buf *b, size_t extra)
{
    size_t need = b->len + extra + 1; /* room for a NUL */
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        abort();
    b->data = p;
    b->cap = cap;
}

void buf_append(buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void buf_append_str(buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_append_char(buf *b, char c)
{
    buf_append(b, &c, 1);
}

void buf_append_u64(buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    buf_append(b, tmp, (size_t)n);
}

void buf_append_i64(buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    buf_append(b, tmp, (size_t)n);
}

void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

char *buf_steal(buf *b)
{
    if (!b->data)
        buf_reserve(b, 0);
    b->data[b->len] = '\0';
    char *p = b->data;
    buf_init(b);
    return p;
}
