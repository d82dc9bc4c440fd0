/* buf — a growable byte buffer owned by whoever holds the struct.
 *
 * Used to build outgoing frames and HTTP responses. Appends abort on
 * out-of-memory (the server cannot serve without memory; a half-built frame
 * is worse than a crash). */
#ifndef HARK_UTIL_BUF_H
#define HARK_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf;

void buf_init(buf *b);
void buf_free(buf *b);
void buf_reset(buf *b); /* len = 0, keeps the allocation */
void buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *data, size_t len);
void buf_append_str(buf *b, const char *s);
void buf_append_char(buf *b, char c);
void buf_append_u64(buf *b, uint64_t v);
void buf_append_i64(buf *b, int64_t v);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes the bytes out: the caller owns the returned pointer (NUL-terminated);
 * the buffer is left empty. */
char *buf_steal(buf *b);

#endif
