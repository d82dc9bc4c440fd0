/* xalloc — allocation that aborts on out-of-memory, as buf does: the server
 * cannot serve without memory, and a half-built structure is worse than a
 * crash. */
#ifndef HARK_UTIL_XALLOC_H
#define HARK_UTIL_XALLOC_H

#include <stdlib.h>
#include <string.h>

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static inline void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort();
    return p;
}

static inline void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static inline char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

/* A NUL-terminated copy of len bytes (which may contain no NUL). */
static inline char *xmemdup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

#endif
