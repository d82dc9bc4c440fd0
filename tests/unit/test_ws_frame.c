#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/ws_frame.h"

#define MAXP 65536u

static int parse(const uint8_t *d, size_t n, ws_frame_header *h)
{
    return ws_frame_parse_header(d, n, true, MAXP, h);
}

static void masked_short_text_header_parses_fully(void **state)
{
    (void)state;
    /* RFC 6455 §5.7: masked "Hello" */
    const uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ws_frame_header h;
    assert_int_equal(parse(f, sizeof f, &h), 6);
    assert_true(h.fin);
    assert_int_equal(h.opcode, WS_OP_TEXT);
    assert_true(h.masked);
    assert_int_equal(h.payload_len, 5);
    assert_int_equal(h.header_len, 6);
    uint8_t p[5];
    memcpy(p, f + 6, 5);
    ws_frame_unmask(p, 5, h.mask, 0);
    assert_memory_equal(p, "Hello", 5);
}

static void every_truncated_header_needs_more_bytes(void **state)
{
    (void)state;
    const uint8_t f16[] = {0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4};
    const uint8_t f64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    ws_frame_header h;
    for (size_t n = 0; n < sizeof f16; n++)
        assert_int_equal(parse(f16, n, &h), 0);
    assert_int_equal(parse(f16, sizeof f16, &h), 8);
    assert_int_equal(h.payload_len, 256);
    for (size_t n = 0; n < sizeof f64; n++)
        assert_int_equal(parse(f64, n, &h), 0);
    assert_int_equal(parse(f64, sizeof f64, &h), 14);
    assert_int_equal(h.payload_len, 65536);
}

static void reserved_bits_are_a_protocol_error(void **state)
{
    (void)state;
    ws_frame_header h;
    for (uint8_t rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        const uint8_t f[] = {(uint8_t)(0x81 | rsv), 0x80};
        assert_int_equal(parse(f, sizeof f, &h), -1002);
    }
}

static void unknown_opcodes_are_a_protocol_error(void **state)
{
    (void)state;
    const uint8_t bad[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    ws_frame_header h;
    for (size_t i = 0; i < sizeof bad; i++) {
        const uint8_t f[] = {(uint8_t)(0x80 | bad[i]), 0x80, 0, 0, 0, 0};
        assert_int_equal(parse(f, sizeof f, &h), -1002);
    }
}

static void unmasked_frame_is_refused_only_when_mask_required(void **state)
{
    (void)state;
    const uint8_t f[] = {0x81, 0x02, 'h', 'i'};
    ws_frame_header h;
    assert_int_equal(ws_frame_parse_header(f, sizeof f, true, MAXP, &h), -1002);
    assert_int_equal(ws_frame_parse_header(f, sizeof f, false, MAXP, &h), 2);
    assert_false(h.masked);
    assert_int_equal(h.payload_len, 2);
}

static void fragmented_or_long_control_frames_are_a_protocol_error(void **state)
{
    (void)state;
    ws_frame_header h;
    const uint8_t ping_nofin[] = {0x09, 0x80, 0, 0, 0, 0};
    assert_int_equal(parse(ping_nofin, sizeof ping_nofin, &h), -1002);
    const uint8_t ping126[] = {0x89, 0xFE, 0x00, 0x7E};
    assert_int_equal(parse(ping126, sizeof ping126, &h), -1002);
    const uint8_t close_125[] = {0x88, 0x80 | 125, 0, 0, 0, 0};
    assert_int_equal(parse(close_125, sizeof close_125, &h), 6);
}

static void sixty_four_bit_length_with_top_bit_is_a_protocol_error(void **state)
{
    (void)state;
    const uint8_t f[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    ws_frame_header h;
    assert_int_equal(ws_frame_parse_header(f, sizeof f, true, UINT64_MAX, &h), -1002);
}

static void non_minimal_length_encoding_is_accepted(void **state)
{
    (void)state;
    const uint8_t f[] = {0x82, 0xFE, 0x00, 0x05, 1, 2, 3, 4};
    ws_frame_header h;
    assert_int_equal(parse(f, sizeof f, &h), 8);
    assert_int_equal(h.payload_len, 5);
}

static void payload_above_max_is_too_big_before_the_mask_arrives(void **state)
{
    (void)state;
    const uint8_t f[] = {0x82, 0xFE, 0x01, 0x01};
    ws_frame_header h;
    assert_int_equal(ws_frame_parse_header(f, sizeof f, true, 256, &h), -1009);
    assert_int_equal(ws_frame_parse_header(f, sizeof f, true, 257, &h), 0);
}

static void unmask_in_pieces_equals_unmask_at_once(void **state)
{
    (void)state;
    const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
    uint8_t a[100], b[100];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = b[i] = (uint8_t)(i * 7);
    ws_frame_unmask(a, sizeof a, mask, 0);
    size_t cuts[] = {0, 1, 3, 12, 13, 50, 99, 100};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++)
        ws_frame_unmask(b + cuts[i], cuts[i + 1] - cuts[i], mask, cuts[i]);
    assert_memory_equal(a, b, sizeof a);
    for (size_t i = 0; i < sizeof a; i++)
        assert_int_equal(a[i], (uint8_t)((i * 7) ^ mask[i % 4]));
}

static void encode_header_picks_the_shortest_length_form(void **state)
{
    (void)state;
    uint8_t o[WS_SERVER_HEADER_MAX];
    assert_int_equal(ws_frame_encode_header(o, WS_OP_TEXT, true, 0), 2);
    assert_int_equal(o[0], 0x81);
    assert_int_equal(o[1], 0);
    assert_int_equal(ws_frame_encode_header(o, WS_OP_BINARY, false, 125), 2);
    assert_int_equal(o[0], 0x02);
    assert_int_equal(o[1], 125);
    assert_int_equal(ws_frame_encode_header(o, WS_OP_TEXT, true, 126), 4);
    assert_int_equal(o[1], 126);
    assert_int_equal(o[2], 0);
    assert_int_equal(o[3], 126);
    assert_int_equal(ws_frame_encode_header(o, WS_OP_TEXT, true, 65535), 4);
    assert_int_equal(o[2], 0xFF);
    assert_int_equal(o[3], 0xFF);
    assert_int_equal(ws_frame_encode_header(o, WS_OP_TEXT, true, 65536), 10);
    const uint8_t want[] = {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    assert_memory_equal(o, want, 10);
}

static void encoded_header_parses_back_when_mask_not_required(void **state)
{
    (void)state;
    const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t o[WS_SERVER_HEADER_MAX];
        size_t n = ws_frame_encode_header(o, WS_OP_BINARY, true, lens[i]);
        ws_frame_header h;
        assert_int_equal(ws_frame_parse_header(o, n, false, UINT64_MAX >> 1, &h), (int)n);
        assert_int_equal(h.payload_len, lens[i]);
        assert_int_equal(h.opcode, WS_OP_BINARY);
    }
}

static void encode_close_writes_code_and_reason(void **state)
{
    (void)state;
    uint8_t o[127];
    size_t n = ws_frame_encode_close(o, 4001, "bye");
    const uint8_t want[] = {0x88, 5, 0x0F, 0xA1, 'b', 'y', 'e'};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(o, want, n);
    n = ws_frame_encode_close(o, 1000, NULL);
    assert_int_equal(n, 4);
    assert_int_equal(o[1], 2);
}

static void encode_close_cuts_long_reason_on_a_character_boundary(void **state)
{
    (void)state;
    char reason[300];
    memset(reason, 'x', sizeof reason);
    reason[sizeof reason - 1] = '\0';
    uint8_t o[127];
    assert_int_equal(ws_frame_encode_close(o, 1000, reason), 127);
    assert_int_equal(o[1], 125);
    /* 122 ASCII bytes then "é": byte 123 would split it, so it is dropped. */
    memset(reason, 'x', 122);
    memcpy(reason + 122, "\xC3\xA9tail", 7);
    assert_int_equal(ws_frame_encode_close(o, 1000, reason), 2 + 2 + 122);
    assert_int_equal(o[1], 124);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(masked_short_text_header_parses_fully),
        cmocka_unit_test(every_truncated_header_needs_more_bytes),
        cmocka_unit_test(reserved_bits_are_a_protocol_error),
        cmocka_unit_test(unknown_opcodes_are_a_protocol_error),
        cmocka_unit_test(unmasked_frame_is_refused_only_when_mask_required),
        cmocka_unit_test(fragmented_or_long_control_frames_are_a_protocol_error),
        cmocka_unit_test(sixty_four_bit_length_with_top_bit_is_a_protocol_error),
        cmocka_unit_test(non_minimal_length_encoding_is_accepted),
        cmocka_unit_test(payload_above_max_is_too_big_before_the_mask_arrives),
        cmocka_unit_test(unmask_in_pieces_equals_unmask_at_once),
        cmocka_unit_test(encode_header_picks_the_shortest_length_form),
        cmocka_unit_test(encoded_header_parses_back_when_mask_not_required),
        cmocka_unit_test(encode_close_writes_code_and_reason),
        cmocka_unit_test(encode_close_cuts_long_reason_on_a_character_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
