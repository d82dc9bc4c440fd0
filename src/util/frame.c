#include "util/frame.h"

#include <jansson.h>
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
    atomic_init(&f->sse, NULL);
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
    atomic_init(&f->sse, NULL);
    return f;
}

void frame_unref(frame *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
        frame *x = atomic_load_explicit(&f->xhr, memory_order_acquire);
        if (x)
            frame_unref(x);
        x = atomic_load_explicit(&f->sse, memory_order_acquire);
        if (x)
            frame_unref(x);
        free(f);
    }
}

/* Caches made on f in *slot, once, whichever thread gets there first. */
static frame *cached(_Atomic(frame *) *slot, frame *made)
{
    frame *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(slot, &expected, made, memory_order_acq_rel,
                                                memory_order_acquire))
        return frame_ref(made); /* one reference is the cache's */
    frame_unref(made);          /* another thread made it first */
    return frame_ref(expected);
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
    return cached(&f->xhr, made);
}

/* The event name of a message ({"event":"<name>",…}), decoded into out
 * (heap); 0 when there is none or it cannot be an SSE field (a line
 * break or NUL in it). */
static size_t event_name(const frame *f, char **out)
{
    static const char lead[] = "{\"event\":";
    size_t n = sizeof(lead) - 1;
    const char *s = (const char *)f->data;
    if (f->len <= n + 1 || memcmp(s, lead, n) != 0 || s[n] != '"')
        return 0;
    size_t i = n + 1;
    while (i < f->len && s[i] != '"')
        i += s[i] == '\\' ? 2 : 1;
    if (i >= f->len)
        return 0;
    json_t *v = json_loadb(s + n, i + 1 - n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    size_t len = json_is_string(v) ? json_string_length(v) : 0;
    const char *name = len ? json_string_value(v) : NULL;
    if (name && !memchr(name, '\n', len) && !memchr(name, '\r', len) && !memchr(name, '\0', len))
        *out = xmemdup(name, len);
    else
        len = 0;
    json_decref(v);
    return len;
}

/* The id at the end of a kept event ({…,"id":"<id>"}). */
static size_t event_id(const frame *f, const char **id)
{
    static const char key[] = ",\"id\":\"";
    const char *s = (const char *)f->data;
    size_t n = sizeof(key) - 1;
    if (f->seq == 0 || f->len < n + 3 || s[f->len - 1] != '}' || s[f->len - 2] != '"')
        return 0;
    for (size_t i = f->len - 2; i-- > n;) {
        if (s[i] == '"' && memcmp(s + i - n + 1, key, n) == 0) {
            *id = s + i + 1;
            return f->len - 2 - (i + 1);
        }
    }
    return 0;
}

frame *frame_sse(frame *f)
{
    frame *x = atomic_load_explicit(&f->sse, memory_order_acquire);
    if (x)
        return frame_ref(x);
    buf b;
    frame_buf_init(&b);
    const char *id = NULL;
    char *name = NULL;
    size_t id_len = event_id(f, &id), name_len = event_name(f, &name);
    if (id_len) {
        buf_append_str(&b, "id: ");
        buf_append(&b, id, id_len);
        buf_append_char(&b, '\n');
    }
    if (name_len) {
        buf_append_str(&b, "event: ");
        buf_append(&b, name, name_len);
        buf_append_char(&b, '\n');
        free(name);
    }
    buf_append_str(&b, "data: ");
    buf_append(&b, f->data, f->len); /* compact JSON: no line breaks */
    buf_append_char(&b, '\n');
    frame *made = frame_buf_take(&b);
    made->kind = FRAME_RAW;
    return cached(&f->sse, made);
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
