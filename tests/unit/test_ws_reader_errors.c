/* ws_reader: what the reader refuses or stops on — sequence errors, size
 * limits, UTF-8, close frames, masking, reserved bits, callbacks that stop
 * it (ws_reader_fixture.h). */
#include "ws_reader_fixture.h"

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
