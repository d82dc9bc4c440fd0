/* ws_reader: delivery — whole frames, frames split at any point,
 * several per read, fragmented messages (ws_reader_fixture.h). Errors and
 * limits are in test_ws_reader_errors.c. */
#include "ws_reader_fixture.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
