/* ws_reader_fixture — what the ws_reader tests share: a recorder of the
 * messages and control frames the reader delivers, and client frames
 * (masked) built by hand. */
#ifndef HARK_TESTS_WS_READER_FIXTURE_H
#define HARK_TESTS_WS_READER_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/ws_frame.h"
#include "net/ws_reader.h"

#define MAX_MSG 100000u
#define MAX_EVENTS 32

/* ---- helpers ------------------------------------------------------------ */

typedef struct event {
    bool control;
    uint8_t opcode;
    uint8_t *data; /* copy */
    size_t len;
    const uint8_t *where; /* pointer the callback got */
} event;

typedef struct recorder {
    event ev[MAX_EVENTS];
    size_t n;
    size_t stop_after; /* return false from the stop_after-th event; 0 = never */
} recorder;

static inline bool rec_push(recorder *r, bool control, uint8_t opcode, uint8_t *data, size_t len)
{
    assert_true(r->n < MAX_EVENTS);
    event *e = &r->ev[r->n++];
    e->control = control;
    e->opcode = opcode;
    e->len = len;
    e->where = data;
    e->data = malloc(len ? len : 1);
    assert_non_null(e->data);
    if (len)
        memcpy(e->data, data, len);
    if (len)
        data[0] ^= 0xFF; /* data is documented as writable */
    return !(r->stop_after && r->n == r->stop_after);
}

static inline bool on_message(void *ctx, uint8_t opcode, uint8_t *data, size_t len)
{
    return rec_push(ctx, false, opcode, data, len);
}

static inline bool on_control(void *ctx, uint8_t opcode, uint8_t *data, size_t len)
{
    return rec_push(ctx, true, opcode, data, len);
}

static const ws_reader_callbacks cbs = {on_message, on_control};

static inline void rec_free(recorder *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->ev[i].data);
    memset(r, 0, sizeof *r);
}

static inline void assert_event(const recorder *r, size_t i, bool control, uint8_t opcode,
                                const void *data, size_t len)
{
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].control, control);
    assert_int_equal(r->ev[i].opcode, opcode);
    assert_int_equal(r->ev[i].len, len);
    if (len)
        assert_memory_equal(r->ev[i].data, data, len);
}

static inline void assert_idle(const ws_reader *r)
{
    assert_null(r->pending);
    assert_null(r->message);
    assert_int_equal(r->pending_len, 0);
    assert_int_equal(r->message_len, 0);
    assert_int_equal(r->message_opcode, 0);
}

/* Appends one client frame to out; returns its size. b0 is given whole so
 * tests can set RSV bits; mask == NULL sends it unmasked. */
static inline size_t put_frame_raw(uint8_t *out, uint8_t b0, const void *payload, size_t len,
                                   const uint8_t *mask)
{
    size_t n = ws_frame_encode_header(out, b0 & 0x0F, (b0 & 0x80) != 0, len);
    out[0] = b0;
    if (mask) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    if (len)
        memcpy(out + n, payload, len);
    if (mask)
        ws_frame_unmask(out + n, len, mask, 0);
    return n + len;
}

static const uint8_t MASK[4] = {0xA5, 0x3C, 0x0F, 0x96};

static inline size_t put_frame(uint8_t *out, uint8_t opcode, bool fin, const void *payload,
                               size_t len)
{
    return put_frame_raw(out, (uint8_t)((fin ? 0x80 : 0) | opcode), payload, len, MASK);
}

static inline int feed(ws_reader *r, const void *data, size_t len, recorder *rec)
{
    /* Feed from a heap copy so ASan sees any read past the caller's bytes. */
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, data, len);
    int rc = ws_reader_feed(r, copy, len, MAX_MSG, &cbs, rec);
    free(copy);
    return rc;
}

static inline uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + 7);
    return p;
}

/* ---- tests -------------------------------------------------------------- */

#endif
