#include "net/ws_reader.h"

#include "util/utf8.h"
#include "net/ws_frame.h"

#include <stdlib.h>
#include <string.h>

/* The buffers count in uint32_t; keep every size well inside that. */
#define WS_READER_LIMIT (UINT32_MAX - 2 * WS_FRAME_MAX_HEADER)
#define WS_READER_MIN_CAP 256u

void ws_reader_free(ws_reader *r)
{
    free(r->pending);
    free(r->message);
    memset(r, 0, sizeof *r);
}

/* Grows *p to hold need bytes: doubling, but never past limit (the size the
 * buffer can ever need), so an announced-but-unsent payload does not make us
 * allocate more than was actually received, times two. Aborts on OOM like
 * util/buf: a server without memory cannot do anything useful. */
static void ws_reader_reserve(uint8_t **p, uint32_t *cap, uint32_t need, uint32_t limit)
{
    if (need <= *cap)
        return;
    uint64_t ncap = *cap ? (uint64_t)*cap * 2 : WS_READER_MIN_CAP;
    if (ncap > limit)
        ncap = limit;
    if (ncap < need)
        ncap = need;
    uint8_t *np = realloc(*p, (size_t)ncap);
    if (!np)
        abort();
    *p = np;
    *cap = (uint32_t)ncap;
}

static void ws_reader_stash(ws_reader *r, const uint8_t *data, size_t len, uint32_t limit)
{
    ws_reader_reserve(&r->pending, &r->pending_cap, r->pending_len + (uint32_t)len, limit);
    memcpy(r->pending + r->pending_len, data, len);
    r->pending_len += (uint32_t)len;
}

static bool ws_reader_close_code_valid(unsigned code)
{
    /* RFC 6455 §7.4: 1004-1006 and 1015 are reserved or must never be on
     * the wire, the rest of 1000-2999 is for future revisions of the RFC,
     * and 3000-4999 belong to libraries and applications. */
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1011)
        return true;
    return code >= 3000 && code <= 4999;
}

/* Checks a frame header against the message state, as soon as the header is
 * known: a broken sequence is refused before its payload is buffered. */
static int ws_reader_check_header(const ws_reader *r, const ws_frame_header *h, uint64_t max)
{
    switch (h->opcode) {
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (r->message_opcode)
            return WS_CLOSE_PROTOCOL_ERROR; /* previous message lacks its FIN */
        return 0;
    case WS_OP_CONTINUATION:
        if (!r->message_opcode)
            return WS_CLOSE_PROTOCOL_ERROR;
        if (r->message_len > max || h->payload_len > max - r->message_len)
            return WS_CLOSE_TOO_BIG; /* the assembled message would be too big */
        return 0;
    default:
        return 0; /* control frames may come between fragments */
    }
}

static int ws_reader_deliver(uint8_t opcode, uint8_t *data, size_t len,
                             const ws_reader_callbacks *cb, void *ctx)
{
    if (opcode == WS_OP_TEXT && !utf8_valid(data, len))
        return WS_CLOSE_INVALID_PAYLOAD;
    return cb->on_message(ctx, opcode, data, len) ? 0 : 1;
}

/* Handles one whole, unmasked frame whose header already passed
 * ws_reader_check_header. */
static int ws_reader_frame(ws_reader *r, const ws_frame_header *h, uint8_t *payload, size_t n,
                           uint32_t max, const ws_reader_callbacks *cb, void *ctx)
{
    if (h->opcode & 0x08) {
        if (h->opcode == WS_OP_CLOSE && n > 0) {
            if (n == 1)
                return WS_CLOSE_PROTOCOL_ERROR;
            unsigned code = ((unsigned)payload[0] << 8) | payload[1];
            if (!ws_reader_close_code_valid(code))
                return WS_CLOSE_PROTOCOL_ERROR;
            if (!utf8_valid(payload + 2, n - 2))
                return WS_CLOSE_INVALID_PAYLOAD;
        }
        return cb->on_control(ctx, h->opcode, payload, n) ? 0 : 1;
    }

    if (h->opcode != WS_OP_CONTINUATION) {
        if (h->fin)
            return ws_reader_deliver(h->opcode, payload, n, cb, ctx); /* the common case */
        r->message_opcode = h->opcode;
    }
    if (!h->fin) {
        if (n) {
            ws_reader_reserve(&r->message, &r->message_cap, r->message_len + (uint32_t)n, max);
            memcpy(r->message + r->message_len, payload, n);
            r->message_len += (uint32_t)n;
        }
        return 0;
    }

    /* Final fragment. Take the message out of the reader first, so the
     * reader is idle whatever the callback does or returns. */
    uint8_t opcode = r->message_opcode;
    uint8_t *msg = r->message;
    size_t mlen = r->message_len;
    uint32_t mcap = r->message_cap;
    r->message = NULL;
    r->message_len = r->message_cap = 0;
    r->message_opcode = 0;
    int rc;
    if (mlen == 0) {
        rc = ws_reader_deliver(opcode, payload, n, cb, ctx); /* only the last one had bytes */
    } else {
        if (n) {
            /* Grow at most once, to the final size. */
            ws_reader_reserve(&msg, &mcap, (uint32_t)(mlen + n), (uint32_t)(mlen + n));
            memcpy(msg + mlen, payload, n);
            mlen += n;
        }
        rc = ws_reader_deliver(opcode, msg, mlen, cb, ctx);
    }
    free(msg);
    return rc;
}

/* Completes the frame begun in r->pending with bytes from data. Returns the
 * number of bytes of data used (all of them when the frame is still
 * incomplete), or a negative close code / -1 to stop. */
static long ws_reader_finish_pending(ws_reader *r, uint8_t *data, size_t len, uint32_t max,
                                     const ws_reader_callbacks *cb, void *ctx)
{
    /* Parse the header from what is pending plus the first bytes of data. */
    uint8_t hb[WS_FRAME_MAX_HEADER];
    size_t have = r->pending_len < sizeof hb ? r->pending_len : sizeof hb;
    memcpy(hb, r->pending, have);
    size_t add = sizeof hb - have < len ? sizeof hb - have : len;
    memcpy(hb + have, data, add);
    ws_frame_header h;
    int hl = ws_frame_parse_header(hb, have + add, true, max, &h);
    if (hl < 0)
        return hl;
    if (hl == 0) {
        ws_reader_stash(r, data, len, WS_FRAME_MAX_HEADER); /* len == add here */
        return (long)len;
    }
    int err = ws_reader_check_header(r, &h, max);
    if (err)
        return -err;

    uint64_t total = (uint64_t)hl + h.payload_len; /* <= max + 14: fits uint32_t */
    size_t need = (size_t)(total - r->pending_len);
    if (len < need) {
        ws_reader_stash(r, data, len, (uint32_t)total);
        return (long)len;
    }
    ws_reader_stash(r, data, need, (uint32_t)total);

    /* The whole frame is in pending now. Detach the buffer so the reader is
     * idle during the callback, then free it: idle readers own nothing. */
    uint8_t *frame = r->pending;
    r->pending = NULL;
    r->pending_len = r->pending_cap = 0;
    uint8_t *payload = frame + hl;
    size_t n = (size_t)h.payload_len;
    ws_frame_unmask(payload, n, h.mask, 0);
    int rc = ws_reader_frame(r, &h, payload, n, max, cb, ctx);
    free(frame);
    if (rc)
        return rc == 1 ? -1 : -rc;
    return (long)need;
}

int ws_reader_feed(ws_reader *r, uint8_t *data, size_t len, size_t max_message,
                   const ws_reader_callbacks *cb, void *ctx)
{
    uint32_t max = max_message < WS_READER_LIMIT ? (uint32_t)max_message : WS_READER_LIMIT;

    if (r->pending_len && len) {
        long used = ws_reader_finish_pending(r, data, len, max, cb, ctx);
        if (used < 0)
            return used == -1 ? 1 : (int)-used;
        data += used;
        len -= (size_t)used;
    }

    /* Frames wholly inside the caller's buffer are unmasked in place and
     * handed over without a copy. */
    while (len) {
        ws_frame_header h;
        int hl = ws_frame_parse_header(data, len, true, max, &h);
        if (hl < 0)
            return -hl;
        if (hl > 0) {
            int err = ws_reader_check_header(r, &h, max);
            if (err)
                return err;
        }
        if (hl == 0 || len - (size_t)hl < h.payload_len) {
            uint32_t limit = hl == 0 ? WS_FRAME_MAX_HEADER : (uint32_t)(hl + h.payload_len);
            ws_reader_stash(r, data, len, limit);
            return 0;
        }
        uint8_t *payload = data + hl;
        size_t n = (size_t)h.payload_len;
        ws_frame_unmask(payload, n, h.mask, 0);
        int rc = ws_reader_frame(r, &h, payload, n, max, cb, ctx);
        if (rc)
            return rc;
        data += (size_t)hl + n;
        len -= (size_t)hl + n;
    }
    return 0;
}
