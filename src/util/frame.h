/* frame — bytes to send, shared by every connection that sends them.
 *
 * A published event is encoded once into a frame holding the Pusher message
 * itself (JSON text); each subscriber's output queue holds a reference,
 * never a copy, and each transport frames the message on its way out (a
 * WebSocket adds its 2-10 byte header as a separate iovec, an event stream
 * would add its own framing). Raw frames are sent as they are (HTTP
 * responses, WebSocket control frames). The count is atomic because, with
 * several workers, one frame can be queued on connections of different
 * threads. */
#ifndef HARK_UTIL_FRAME_H
#define HARK_UTIL_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum frame_kind {
    FRAME_MESSAGE = 0, /* one protocol message: the transport frames it */
    FRAME_RAW = 1,     /* wire bytes: sent as they are */
};

typedef struct frame {
    atomic_uint refs;
    uint32_t len;
    uint8_t kind;
    /* An event kept in history: its place in its channel (0 = not kept)
     * and the channel's stream hash (frame_stream), so a session replaying
     * that channel can hold live copies back until the replay is sent. */
    uint64_t seq;
    uint64_t stream;
    /* The message as an HTTP fallback frame (frame_xhr), made by the first
     * such transport that sends it and shared by the others. */
    _Atomic(struct frame *) xhr;
    _Atomic(struct frame *) sse; /* and as an event-stream record (frame_sse) */
    uint8_t data[];
} frame;

/* A message (one reference, owned by the caller). */
frame *frame_message(const char *payload, size_t len);
/* Raw wire bytes. */
frame *frame_raw(const void *bytes, size_t len);
/* A private copy (other threads' references stay on their own copy). */
frame *frame_copy(const frame *f);

/* Encoding straight into a frame: frame_buf_init leaves room for the
 * frame's own fields at the front of b, the caller appends the message
 * with the usual buf functions (from frame_buf_payload(b) on), and
 * frame_buf_take turns the bytes into a message frame without copying
 * them; b is left empty. */
void frame_buf_init(buf *b);
static inline const char *frame_buf_payload(const buf *b, size_t *len)
{
    *len = b->len - offsetof(frame, data);
    return b->data + offsetof(frame, data);
}
frame *frame_buf_take(buf *b);

static inline frame *frame_ref(frame *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void frame_unref(frame *f);

/* A message as pusher-js's HTTP transports read it: the raw line
 * a["<the message as a JSON string, ASCII only>"]\n. Made once per frame
 * and cached on it (any thread); returns a new reference. */
frame *frame_xhr(frame *f);
/* The same for Server-Sent Events: "id: <the event's id>\n" (events kept
 * in history), "event: <name>\n", "data: <message>\n", without the blank
 * line that ends the record (the stream adds it, after an id line of its
 * own when it carries several channels). */
frame *frame_sse(frame *f);

/* The stream hash of a channel name (FNV-1a, 64 bits). */
uint64_t frame_stream(const char *name, size_t len);

#endif
