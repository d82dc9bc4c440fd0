/* frame — bytes ready for the wire, shared by every connection that sends
 * them.
 *
 * A published event is encoded once into a frame (WebSocket header + JSON);
 * each subscriber's output queue holds a reference, never a copy. The count
 * is atomic because, with several workers, one frame is queued on
 * connections of different threads. */
#ifndef HARK_HUB_FRAME_H
#define HARK_HUB_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct frame {
    atomic_uint refs;
    uint32_t len;
    uint8_t data[];
} frame;

/* A WebSocket text frame carrying payload (one reference, owned by the caller). */
frame *frame_ws_text(const char *payload, size_t len);
/* Raw bytes as they are (HTTP responses, control frames). */
frame *frame_raw(const void *bytes, size_t len);

static inline frame *frame_ref(frame *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void frame_unref(frame *f);

#endif
