#include "util/frame.h"

#include <stdlib.h>
#include <string.h>

#include "util/json_write.h"
#include "util/xalloc.h"

static frame *frame_alloc(size_t len, uint8_t kind)
{
    frame *f = xmalloc(sizeof(*f) + len);
    atomic_init(&f->refs, 1);
    f->len = (uint32_t)len;
    f->kind = kind;
    f->seq = 0;
    f->stream = 0;
    atomic_init(&f->xhr, NULL);
    return f;
}

frame *frame_message(const char *payload, size_t len)
{
    frame *f = frame_alloc(len, FRAME_MESSAGE);
    memcpy(f->data, payload, len);
    return f;
}

frame *frame_raw(const void *bytes, size_t len)
{
    frame *f = frame_alloc(len, FRAME_RAW);
    memcpy(f->data, bytes, len);
    return f;
}

frame *frame_copy(const frame *src)
{
    frame *f = frame_alloc(src->len, src->kind);
    memcpy(f->data, src->data, src->len);
    f->seq = src->seq;
    f->stream = src->stream;
    return f;
}

void frame_buf_init(buf *b)
{
    buf_init(b);
    buf_reserve(b, offsetof(frame, data) + 256);
    memset(b->data, 0, offsetof(frame, data));
    b->len = offsetof(frame, data);
}

frame *frame_buf_take(buf *b)
{
    size_t len = b->len - offsetof(frame, data);
    frame *f = (frame *)buf_steal(b); /* buf's allocation, fields at the front */
    atomic_init(&f->refs, 1);
    f->len = (uint32_t)len;
    f->kind = FRAME_MESSAGE;
    atomic_init(&f->xhr, NULL);
    return f;
}

void frame_unref(frame *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
        frame *x = atomic_load_explicit(&f->xhr, memory_order_acquire);
        if (x)
            frame_unref(x);
        free(f);
    }
}

frame *frame_xhr(frame *f)
{
    frame *x = atomic_load_explicit(&f->xhr, memory_order_acquire);
    if (x)
        return frame_ref(x);
    buf b;
    frame_buf_init(&b);
    buf_append_str(&b, "a[");
    json_write_string_ascii(&b, (const char *)f->data, f->len);
    buf_append_str(&b, "]\n");
    frame *made = frame_buf_take(&b);
    made->kind = FRAME_RAW;
    frame *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&f->xhr, &expected, made, memory_order_acq_rel,
                                                memory_order_acquire))
        return frame_ref(made); /* one reference is the cache's */
    frame_unref(made);          /* another thread made it first */
    return frame_ref(expected);
}

uint64_t frame_stream(const char *name, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 1099511628211ull;
    }
    return h;
}
