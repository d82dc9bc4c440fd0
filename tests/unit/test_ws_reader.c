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

static bool rec_push(recorder *r, bool control, uint8_t opcode, uint8_t *data, size_t len)
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

static bool on_message(void *ctx, uint8_t opcode, uint8_t *data, size_t len)
{
    return rec_push(ctx, false, opcode, data, len);
}

static bool on_control(void *ctx, uint8_t opcode, uint8_t *data, size_t len)
{
    return rec_push(ctx, true, opcode, data, len);
}

static const ws_reader_callbacks cbs = {on_message, on_control};

static void rec_free(recorder *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->ev[i].data);
    memset(r, 0, sizeof *r);
}

static void assert_event(const recorder *r, size_t i, bool control, uint8_t opcode,
                         const void *data, size_t len)
{
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].control, control);
    assert_int_equal(r->ev[i].opcode, opcode);
    assert_int_equal(r->ev[i].len, len);
    if (len)
        assert_memory_equal(r->ev[i].data, data, len);
}

static void assert_idle(const ws_reader *r)
{
    assert_null(r->pending);
    assert_null(r->message);
    assert_int_equal(r->pending_len, 0);
    assert_int_equal(r->message_len, 0);
    assert_int_equal(r->message_opcode, 0);
}

/* Appends one client frame to out; returns its size. b0 is given whole so
 * tests can set RSV bits; mask == NULL sends it unmasked. */
static size_t put_frame_raw(uint8_t *out, uint8_t b0, const void *payload, size_t len,
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

static size_t put_frame(uint8_t *out, uint8_t opcode, bool fin, const void *payload, size_t len)
{
    return put_frame_raw(out, (uint8_t)((fin ? 0x80 : 0) | opcode), payload, len, MASK);
}

static int feed(ws_reader *r, const void *data, size_t len, recorder *rec)
{
    /* Feed from a heap copy so ASan sees any read past the caller's bytes. */
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, data, len);
    int rc = ws_reader_feed(r, copy, len, MAX_MSG, &cbs, rec);
    free(copy);
    return rc;
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + 7);
    return p;
}

/* ---- tests -------------------------------------------------------------- */

static void single_masked_text_frame_delivers_message(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t f[64];
    size_t n = put_frame(f, WS_OP_TEXT, true, "hello", 5);
    assert_int_equal(feed(&r, f, n, &rec), 0);
    assert_int_equal(rec.n, 1);
    assert_event(&rec, 0, false, WS_OP_TEXT, "hello", 5);
    assert_idle(&r);
    rec_free(&rec);
}

static void complete_frame_in_callers_buffer_is_delivered_without_copy(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t f[64];
    size_t n = put_frame(f, WS_OP_BINARY, true, "\x01\x02\x03", 3);
    assert_int_equal(ws_reader_feed(&r, f, n, MAX_MSG, &cbs, &rec), 0);
    assert_int_equal(rec.n, 1);
    assert_ptr_equal(rec.ev[0].where, f + 6); /* unmasked in place */
    assert_memory_equal(rec.ev[0].data, "\x01\x02\x03", 3);
    assert_idle(&r);
    rec_free(&rec);
}

static void multiple_frames_in_one_feed_deliver_in_order(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t s[256];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, true, "one", 3);
    n += put_frame(s + n, WS_OP_PING, true, "p", 1);
    n += put_frame(s + n, WS_OP_BINARY, true, "\x00\xFF", 2);
    n += put_frame(s + n, WS_OP_PONG, true, "", 0);
    n += put_frame(s + n, WS_OP_TEXT, true, "", 0);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_int_equal(rec.n, 5);
    assert_event(&rec, 0, false, WS_OP_TEXT, "one", 3);
    assert_event(&rec, 1, true, WS_OP_PING, "p", 1);
    assert_event(&rec, 2, false, WS_OP_BINARY, "\x00\xFF", 2);
    assert_event(&rec, 3, true, WS_OP_PONG, "", 0);
    assert_event(&rec, 4, false, WS_OP_TEXT, "", 0);
    assert_idle(&r);
    rec_free(&rec);
}

/* A stream using every feature: short, 16-bit and 64-bit lengths, a
 * fragmented message with control frames between fragments, and a close. */
static size_t build_stream(uint8_t *s, uint8_t *big, size_t big_len)
{
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, true, "{\"event\":\"pusher:ping\"}", 23);
    n += put_frame(s + n, WS_OP_BINARY, true, big, 300);    /* 16-bit length */
    n += put_frame(s + n, WS_OP_TEXT, false, "caf\xC3", 4); /* é split across frames */
    n += put_frame(s + n, WS_OP_PING, true, "x", 1);
    n += put_frame(s + n, WS_OP_CONTINUATION, false, "\xA9 ", 2);
    n += put_frame(s + n, WS_OP_PONG, true, "yz", 2);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "ok", 2);
    n += put_frame(s + n, WS_OP_BINARY, true, big, big_len); /* 64-bit length */
    n += put_frame(s + n, WS_OP_CLOSE, true,
                   "\x03\xE8"
                   "bye",
                   5);
    return n;
}

static void assert_stream_events(const recorder *rec, const uint8_t *big, size_t big_len)
{
    assert_int_equal(rec->n, 7);
    assert_event(rec, 0, false, WS_OP_TEXT, "{\"event\":\"pusher:ping\"}", 23);
    assert_event(rec, 1, false, WS_OP_BINARY, big, 300);
    assert_event(rec, 2, true, WS_OP_PING, "x", 1);
    assert_event(rec, 3, true, WS_OP_PONG, "yz", 2);
    assert_event(rec, 4, false, WS_OP_TEXT, "caf\xC3\xA9 ok", 8);
    assert_event(rec, 5, false, WS_OP_BINARY, big, big_len);
    assert_event(rec, 6, true, WS_OP_CLOSE,
                 "\x03\xE8"
                 "bye",
                 5);
}

static void byte_by_byte_feeding_of_multi_frame_stream_delivers_every_message(void **state)
{
    (void)state;
    size_t big_len = 70000;
    uint8_t *big = pattern(big_len);
    uint8_t *s = malloc(big_len + 1024);
    size_t n = build_stream(s, big, big_len);
    ws_reader r = {0};
    recorder rec = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(feed(&r, s + i, 1, &rec), 0);
    assert_stream_events(&rec, big, big_len);
    assert_idle(&r);
    rec_free(&rec);
    free(s);
    free(big);
}

static void stream_split_into_random_sized_feeds_delivers_every_message(void **state)
{
    (void)state;
    size_t big_len = 70000;
    uint8_t *big = pattern(big_len);
    uint8_t *s = malloc(big_len + 1024);
    size_t n = build_stream(s, big, big_len);
    srand(12345);
    for (int round = 0; round < 50; round++) {
        ws_reader r = {0};
        recorder rec = {0};
        size_t i = 0;
        while (i < n) {
            size_t k = (size_t)(rand() % (round < 25 ? 20 : 5000)) + 1;
            if (k > n - i)
                k = n - i;
            assert_int_equal(feed(&r, s + i, k, &rec), 0);
            i += k;
        }
        assert_stream_events(&rec, big, big_len);
        assert_idle(&r);
        rec_free(&rec);
    }
    free(s);
    free(big);
}

static void every_split_point_of_three_frames_delivers_all_three(void **state)
{
    (void)state;
    uint8_t s[512];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, true, "first", 5);
    uint8_t mid[200];
    memset(mid, 'm', sizeof mid);
    n += put_frame(s + n, WS_OP_TEXT, true, mid, sizeof mid);
    n += put_frame(s + n, WS_OP_PING, true, "last", 4);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += 7) {
            ws_reader r = {0};
            recorder rec = {0};
            assert_int_equal(feed(&r, s, a, &rec), 0);
            assert_int_equal(feed(&r, s + a, b - a, &rec), 0);
            assert_int_equal(feed(&r, s + b, n - b, &rec), 0);
            assert_int_equal(rec.n, 3);
            assert_event(&rec, 0, false, WS_OP_TEXT, "first", 5);
            assert_event(&rec, 1, false, WS_OP_TEXT, mid, sizeof mid);
            assert_event(&rec, 2, true, WS_OP_PING, "last", 4);
            assert_idle(&r);
            rec_free(&rec);
        }
    }
}

static void partial_frame_is_kept_and_released_when_completed(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t f[64];
    size_t n = put_frame(f, WS_OP_TEXT, true, "hello world", 11);
    assert_int_equal(feed(&r, f, 1, &rec), 0);
    assert_non_null(r.pending);
    assert_int_equal(r.pending_len, 1);
    assert_int_equal(feed(&r, f + 1, 8, &rec), 0);
    assert_int_equal(r.pending_len, 9);
    assert_int_equal(rec.n, 0);
    assert_int_equal(feed(&r, f + 9, n - 9, &rec), 0);
    assert_int_equal(rec.n, 1);
    assert_event(&rec, 0, false, WS_OP_TEXT, "hello world", 11);
    assert_idle(&r);
    rec_free(&rec);
}

static void empty_feed_changes_nothing(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t f[16];
    size_t n = put_frame(f, WS_OP_PING, true, "", 0);
    assert_int_equal(ws_reader_feed(&r, f, 0, MAX_MSG, &cbs, &rec), 0);
    assert_idle(&r);
    assert_int_equal(feed(&r, f, 3, &rec), 0);
    assert_int_equal(ws_reader_feed(&r, f, 0, MAX_MSG, &cbs, &rec), 0);
    assert_int_equal(r.pending_len, 3);
    assert_int_equal(feed(&r, f + 3, n - 3, &rec), 0);
    assert_int_equal(rec.n, 1);
    assert_idle(&r);
    rec_free(&rec);
}

static void fragmented_text_with_ping_between_fragments_delivers_one_message(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t s[256];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, false, "Hel", 3);
    n += put_frame(s + n, WS_OP_PING, true, "are you there", 13);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "lo", 2);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_int_equal(rec.n, 2);
    assert_event(&rec, 0, true, WS_OP_PING, "are you there", 13);
    assert_event(&rec, 1, false, WS_OP_TEXT, "Hello", 5);
    assert_idle(&r);
    rec_free(&rec);
}

static void fragmented_message_keeps_fragments_until_fin(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t s[64];
    size_t n = put_frame(s, WS_OP_BINARY, false, "ab", 2);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_null(r.pending);
    assert_non_null(r.message);
    assert_int_equal(r.message_len, 2);
    assert_int_equal(r.message_opcode, WS_OP_BINARY);
    n = put_frame(s, WS_OP_CONTINUATION, false, "cd", 2);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_int_equal(r.message_len, 4);
    n = put_frame(s, WS_OP_CONTINUATION, true, "e", 1);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_int_equal(rec.n, 1);
    assert_event(&rec, 0, false, WS_OP_BINARY, "abcde", 5);
    assert_idle(&r);
    rec_free(&rec);
}

static void fragmented_message_with_empty_fragments_is_assembled(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t s[128];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, false, "", 0);
    n += put_frame(s + n, WS_OP_CONTINUATION, false, "", 0);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "only", 4);
    n += put_frame(s + n, WS_OP_TEXT, false, "x", 1);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "", 0);
    n += put_frame(s + n, WS_OP_BINARY, false, "", 0);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "", 0);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_int_equal(rec.n, 3);
    assert_event(&rec, 0, false, WS_OP_TEXT, "only", 4);
    assert_event(&rec, 1, false, WS_OP_TEXT, "x", 1);
    assert_event(&rec, 2, false, WS_OP_BINARY, "", 0);
    assert_idle(&r);
    rec_free(&rec);
}

static void utf8_character_split_across_fragments_is_valid(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t s[64];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, false, "\xF0\x9F", 2);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "\x98\x80", 2);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_event(&rec, 0, false, WS_OP_TEXT, "\xF0\x9F\x98\x80", 4);
    rec_free(&rec);
}

static void continuation_without_started_message_is_protocol_error(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t s[64];
    size_t n = put_frame(s, WS_OP_CONTINUATION, true, "x", 1);
    assert_int_equal(feed(&r, s, n, &rec), 1002);
    assert_int_equal(rec.n, 0);
    ws_reader_free(&r);
}

static void continuation_after_completed_message_is_protocol_error(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t s[64];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, false, "a", 1);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "b", 1);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "c", 1);
    assert_int_equal(feed(&r, s, n, &rec), 1002);
    assert_int_equal(rec.n, 1);
    ws_reader_free(&r);
    rec_free(&rec);
}

static void new_data_frame_while_fragmented_message_open_is_protocol_error(void **state)
{
    (void)state;
    const uint8_t ops[] = {WS_OP_TEXT, WS_OP_BINARY};
    for (size_t i = 0; i < 2; i++) {
        ws_reader r = {0};
        recorder rec = {0};
        uint8_t s[64];
        size_t n = 0;
        n += put_frame(s + n, WS_OP_TEXT, false, "a", 1);
        n += put_frame(s + n, ops[i], true, "b", 1);
        assert_int_equal(feed(&r, s, n, &rec), 1002);
        assert_int_equal(rec.n, 0);
        ws_reader_free(&r);
        assert_idle(&r);
    }
}

static void sequence_error_is_reported_from_the_header_before_the_payload(void **state)
{
    (void)state;
    ws_reader r = {0};
    recorder rec = {0};
    uint8_t s[512];
    uint8_t p[300] = {0};
    size_t n = put_frame(s, WS_OP_CONTINUATION, true, p, sizeof p);
    assert_int_equal(feed(&r, s, 3, &rec), 0);        /* header incomplete */
    assert_int_equal(feed(&r, s + 3, 5, &rec), 1002); /* header done, payload not */
    assert_true(n > 8);
    ws_reader_free(&r);
}

static void single_frame_payload_above_max_is_too_big(void **state)
{
    (void)state;
    uint8_t *p = pattern(1001);
    uint8_t *s = malloc(1100);
    recorder rec = {0};
    ws_reader r = {0};
    size_t n = put_frame(s, WS_OP_BINARY, true, p, 1000);
    assert_int_equal(ws_reader_feed(&r, s, n, 1000, &cbs, &rec), 0);
    assert_int_equal(rec.n, 1);
    n = put_frame(s, WS_OP_BINARY, true, p, 1001);
    assert_int_equal(ws_reader_feed(&r, s, 4, 1000, &cbs, &rec), 1009); /* header alone */
    ws_reader_free(&r);
    rec_free(&rec);
    free(s);
    free(p);
}

static void assembled_message_above_max_is_too_big(void **state)
{
    (void)state;
    uint8_t p[600] = {0};
    uint8_t s[2000];
    recorder rec = {0};
    ws_reader r = {0};
    size_t n = 0;
    n += put_frame(s + n, WS_OP_BINARY, false, p, 600);
    n += put_frame(s + n, WS_OP_CONTINUATION, false, p, 400);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, p, 0);
    assert_int_equal(ws_reader_feed(&r, s, n, 1000, &cbs, &rec), 0);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.ev[0].len, 1000);
    assert_idle(&r);
    n = 0;
    n += put_frame(s + n, WS_OP_BINARY, false, p, 600);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, p, 401);
    assert_int_equal(ws_reader_feed(&r, s, n, 1000, &cbs, &rec), 1009);
    assert_int_equal(rec.n, 1);
    ws_reader_free(&r);
    assert_idle(&r);
    rec_free(&rec);
}

static void invalid_utf8_text_message_is_invalid_payload(void **state)
{
    (void)state;
    recorder rec = {0};
    ws_reader r = {0};
    uint8_t s[64];
    size_t n = put_frame(s, WS_OP_TEXT, true, "\xED\xA0\x80", 3);
    assert_int_equal(feed(&r, s, n, &rec), 1007);
    ws_reader_free(&r);
    n = 0;
    n += put_frame(s + n, WS_OP_TEXT, false, "ok", 2);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "\xC3", 1); /* truncated at the end */
    assert_int_equal(feed(&r, s, n, &rec), 1007);
    assert_int_equal(rec.n, 0);
    assert_idle(&r); /* the message was taken out before checking */
    ws_reader_free(&r);
}

static void binary_message_is_not_utf8_checked(void **state)
{
    (void)state;
    recorder rec = {0};
    ws_reader r = {0};
    uint8_t s[64];
    size_t n = put_frame(s, WS_OP_BINARY, true, "\xFF\xFE", 2);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_event(&rec, 0, false, WS_OP_BINARY, "\xFF\xFE", 2);
    rec_free(&rec);
}

static void empty_close_is_delivered(void **state)
{
    (void)state;
    recorder rec = {0};
    ws_reader r = {0};
    uint8_t s[64];
    size_t n = put_frame(s, WS_OP_CLOSE, true, "", 0);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_event(&rec, 0, true, WS_OP_CLOSE, "", 0);
    rec_free(&rec);
}

static void close_with_one_byte_payload_is_protocol_error(void **state)
{
    (void)state;
    recorder rec = {0};
    ws_reader r = {0};
    uint8_t s[64];
    size_t n = put_frame(s, WS_OP_CLOSE, true, "\x03", 1);
    assert_int_equal(feed(&r, s, n, &rec), 1002);
    assert_int_equal(rec.n, 0);
}

static void close_codes_follow_rfc6455_section_7_4(void **state)
{
    (void)state;
    for (unsigned code = 0; code < 65536; code++) {
        bool ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                  (code >= 3000 && code <= 4999);
        recorder rec = {0};
        ws_reader r = {0};
        uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        uint8_t s[16];
        size_t n = put_frame(s, WS_OP_CLOSE, true, p, 2);
        int rc = feed(&r, s, n, &rec);
        if (ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(rec.n, 1);
        } else {
            if (rc != 1002)
                fail_msg("close code %u: got %d", code, rc);
            assert_int_equal(rec.n, 0);
        }
        rec_free(&rec);
    }
}

static void close_reason_with_invalid_utf8_is_invalid_payload(void **state)
{
    (void)state;
    recorder rec = {0};
    ws_reader r = {0};
    uint8_t s[64];
    size_t n = put_frame(s, WS_OP_CLOSE, true, "\x03\xE8\xC0\xAF", 4);
    assert_int_equal(feed(&r, s, n, &rec), 1007);
    assert_int_equal(rec.n, 0);
    n = put_frame(s, WS_OP_CLOSE, true, "\x03\xE8\xC3\xA9", 4);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_event(&rec, 0, true, WS_OP_CLOSE, "\x03\xE8\xC3\xA9", 4);
    rec_free(&rec);
}

static void unmasked_client_frame_is_protocol_error(void **state)
{
    (void)state;
    recorder rec = {0};
    ws_reader r = {0};
    uint8_t s[64];
    size_t n = put_frame_raw(s, 0x81, "hi", 2, NULL);
    assert_int_equal(feed(&r, s, n, &rec), 1002);
    assert_int_equal(rec.n, 0);
    ws_reader_free(&r);
}

static void reserved_bits_are_protocol_error(void **state)
{
    (void)state;
    for (uint8_t rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        recorder rec = {0};
        ws_reader r = {0};
        uint8_t s[64];
        size_t n = put_frame_raw(s, (uint8_t)(0x81 | rsv), "hi", 2, MASK);
        assert_int_equal(feed(&r, s, n, &rec), 1002);
        assert_int_equal(rec.n, 0);
        ws_reader_free(&r);
    }
}

static void protocol_error_after_a_split_header_is_reported(void **state)
{
    (void)state;
    recorder rec = {0};
    ws_reader r = {0};
    uint8_t s[64];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, true, "ok", 2);
    size_t bad = n;
    n += put_frame_raw(s + n, 0x89, "x", 1, MASK);
    s[bad + 1] = 0x80 | 126; /* ping claiming a 16-bit length */
    assert_int_equal(feed(&r, s, bad + 1, &rec), 0);
    assert_int_equal(feed(&r, s + bad + 1, n - bad - 1, &rec), 1002);
    assert_int_equal(rec.n, 1);
    ws_reader_free(&r);
    rec_free(&rec);
}

static void callback_returning_false_stops_reading(void **state)
{
    (void)state;
    recorder rec = {.stop_after = 2};
    ws_reader r = {0};
    uint8_t s[128];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, true, "a", 1);
    n += put_frame(s + n, WS_OP_PING, true, "", 0);
    n += put_frame(s + n, WS_OP_TEXT, true, "never", 5);
    assert_int_equal(feed(&r, s, n, &rec), 1);
    assert_int_equal(rec.n, 2);
    ws_reader_free(&r);
    rec_free(&rec);
}

static void callback_returning_false_on_buffered_frame_stops_and_leaves_reader_idle(void **state)
{
    (void)state;
    recorder rec = {.stop_after = 1};
    ws_reader r = {0};
    uint8_t s[128];
    size_t n = 0;
    n += put_frame(s + n, WS_OP_TEXT, false, "frag", 4);
    n += put_frame(s + n, WS_OP_CONTINUATION, true, "ment", 4);
    n += put_frame(s + n, WS_OP_TEXT, true, "never", 5);
    assert_int_equal(feed(&r, s, n - 3, &rec), 1); /* delivered from the caller's buffer */
    assert_int_equal(rec.n, 1);
    assert_idle(&r); /* stopped before keeping the partial third frame */
    rec_free(&rec);

    rec.stop_after = 1;
    assert_int_equal(feed(&r, s, 13, &rec), 0); /* first frame whole, second partial */
    assert_non_null(r.pending);
    assert_int_equal(feed(&r, s + 13, n - 13, &rec), 1); /* completed from pending */
    assert_int_equal(rec.n, 1);
    assert_event(&rec, 0, false, WS_OP_TEXT, "fragment", 8);
    assert_idle(&r);
    rec_free(&rec);
}

static void freed_reader_can_be_reused(void **state)
{
    (void)state;
    recorder rec = {0};
    ws_reader r = {0};
    uint8_t s[64];
    size_t n = put_frame(s, WS_OP_TEXT, false, "abc", 3);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_int_equal(feed(&r, s, n, &rec), 1002); /* a TEXT inside a message */
    ws_reader_free(&r);
    assert_idle(&r);
    n = put_frame(s, WS_OP_TEXT, true, "fresh", 5);
    assert_int_equal(feed(&r, s, n, &rec), 0);
    assert_event(&rec, 0, false, WS_OP_TEXT, "fresh", 5);
    assert_idle(&r);
    ws_reader_free(&r);
    rec_free(&rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_masked_text_frame_delivers_message),
        cmocka_unit_test(complete_frame_in_callers_buffer_is_delivered_without_copy),
        cmocka_unit_test(multiple_frames_in_one_feed_deliver_in_order),
        cmocka_unit_test(byte_by_byte_feeding_of_multi_frame_stream_delivers_every_message),
        cmocka_unit_test(stream_split_into_random_sized_feeds_delivers_every_message),
        cmocka_unit_test(every_split_point_of_three_frames_delivers_all_three),
        cmocka_unit_test(partial_frame_is_kept_and_released_when_completed),
        cmocka_unit_test(empty_feed_changes_nothing),
        cmocka_unit_test(fragmented_text_with_ping_between_fragments_delivers_one_message),
        cmocka_unit_test(fragmented_message_keeps_fragments_until_fin),
        cmocka_unit_test(fragmented_message_with_empty_fragments_is_assembled),
        cmocka_unit_test(utf8_character_split_across_fragments_is_valid),
        cmocka_unit_test(continuation_without_started_message_is_protocol_error),
        cmocka_unit_test(continuation_after_completed_message_is_protocol_error),
        cmocka_unit_test(new_data_frame_while_fragmented_message_open_is_protocol_error),
        cmocka_unit_test(sequence_error_is_reported_from_the_header_before_the_payload),
        cmocka_unit_test(single_frame_payload_above_max_is_too_big),
        cmocka_unit_test(assembled_message_above_max_is_too_big),
        cmocka_unit_test(invalid_utf8_text_message_is_invalid_payload),
        cmocka_unit_test(binary_message_is_not_utf8_checked),
        cmocka_unit_test(empty_close_is_delivered),
        cmocka_unit_test(close_with_one_byte_payload_is_protocol_error),
        cmocka_unit_test(close_codes_follow_rfc6455_section_7_4),
        cmocka_unit_test(close_reason_with_invalid_utf8_is_invalid_payload),
        cmocka_unit_test(unmasked_client_frame_is_protocol_error),
        cmocka_unit_test(reserved_bits_are_protocol_error),
        cmocka_unit_test(protocol_error_after_a_split_header_is_reported),
        cmocka_unit_test(callback_returning_false_stops_reading),
        cmocka_unit_test(callback_returning_false_on_buffered_frame_stops_and_leaves_reader_idle),
        cmocka_unit_test(freed_reader_can_be_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
