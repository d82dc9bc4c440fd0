#include "hub/frame.h"

#include <stdlib.h>
#include <string.h>

#include "net/ws_frame.h"
#include "util/xalloc.h"

static frame *frame_alloc(size_t len)
{
    frame *f = xmalloc(sizeof(*f) + len);
    atomic_init(&f->refs, 1);
    f->len = (uint32_t)len;
    return f;
}

frame *frame_ws_text(const char *payload, size_t len)
{
    uint8_t header[WS_SERVER_HEADER_MAX];
    size_t hlen = ws_frame_encode_header(header, WS_OP_TEXT, true, len);
    frame *f = frame_alloc(hlen + len);
    memcpy(f->data, header, hlen);
    memcpy(f->data + hlen, payload, len);
    return f;
}

frame *frame_raw(const void *bytes, size_t len)
{
    frame *f = frame_alloc(len);
    memcpy(f->data, bytes, len);
    return f;
}

void frame_unref(frame *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}
