#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/utf8.h"

static bool valid(const char *s, size_t n)
{
    return utf8_valid((const uint8_t *)s, n);
}

#define V(lit) valid(lit, sizeof(lit) - 1)

static void empty_input_is_valid(void **state)
{
    (void)state;
    assert_true(utf8_valid(NULL, 0));
    assert_true(V(""));
}

static void ascii_of_every_length_is_valid(void **state)
{
    (void)state;
    char s[40];
    for (size_t n = 0; n < sizeof s; n++) {
        s[n] = (char)('a' + n % 26);
        assert_true(valid(s, n + 1));
    }
}

static void nul_bytes_are_valid_utf8(void **state)
{
    (void)state;
    assert_true(V("a\0b"));
}

static void two_three_and_four_byte_sequences_are_valid(void **state)
{
    (void)state;
    assert_true(V("\xC2\x80"));         /* U+0080 */
    assert_true(V("caf\xC3\xA9"));      /* é */
    assert_true(V("\xDF\xBF"));         /* U+07FF */
    assert_true(V("\xE0\xA0\x80"));     /* U+0800 */
    assert_true(V("\xE2\x82\xAC"));     /* € */
    assert_true(V("\xED\x9F\xBF"));     /* U+D7FF, just below surrogates */
    assert_true(V("\xEE\x80\x80"));     /* U+E000, just above surrogates */
    assert_true(V("\xEF\xBF\xBF"));     /* U+FFFF */
    assert_true(V("\xF0\x90\x80\x80")); /* U+10000 */
    assert_true(V("\xF0\x9F\x98\x80")); /* 😀 */
    assert_true(V("\xF4\x8F\xBF\xBF")); /* U+10FFFF */
    assert_true(V("Hello-\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5-UTF-8!!"));
}

static void multibyte_after_long_ascii_run_is_checked(void **state)
{
    (void)state;
    assert_true(V("0123456789abcdef\xC3\xA9xyz0123456789"));
    assert_false(V("0123456789abcdef\xC3xyz0123456789"));
    assert_false(V("0123456789abcdefghijklmnopqrstu\xFF"));
}

static void overlong_encodings_are_invalid(void **state)
{
    (void)state;
    assert_false(V("\xC0\x80"));         /* NUL */
    assert_false(V("\xC1\xBF"));         /* U+007F */
    assert_false(V("\xE0\x80\x80"));     /* NUL */
    assert_false(V("\xE0\x9F\xBF"));     /* U+07FF */
    assert_false(V("\xF0\x80\x80\x80")); /* NUL */
    assert_false(V("\xF0\x8F\xBF\xBF")); /* U+FFFF */
}

static void surrogates_are_invalid(void **state)
{
    (void)state;
    assert_false(V("\xED\xA0\x80"));             /* U+D800 */
    assert_false(V("\xED\xAD\xBF"));             /* U+DB7F */
    assert_false(V("\xED\xBF\xBF"));             /* U+DFFF */
    assert_false(V("\xED\xA0\x80\xED\xB0\x80")); /* CESU-8 pair */
}

static void code_points_above_10ffff_are_invalid(void **state)
{
    (void)state;
    assert_false(V("\xF4\x90\x80\x80")); /* U+110000 */
    assert_false(V("\xF5\x80\x80\x80"));
    assert_false(V("\xF7\xBF\xBF\xBF"));
    assert_false(V("\xF8\x88\x80\x80\x80")); /* 5-byte form */
    assert_false(V("\xFC\x84\x80\x80\x80\x80"));
    assert_false(V("\xFE"));
    assert_false(V("\xFF"));
}

static void truncated_sequences_are_invalid(void **state)
{
    (void)state;
    assert_false(V("\xC3"));
    assert_false(V("\xE2\x82"));
    assert_false(V("\xF0\x9F\x98"));
    assert_false(V("abc\xF0"));
}

static void stray_or_wrong_continuation_bytes_are_invalid(void **state)
{
    (void)state;
    assert_false(V("\x80"));
    assert_false(V("a\xBF"));
    assert_false(V("\xC3\x28")); /* second byte not a continuation */
    assert_false(V("\xE2\x28\xA1"));
    assert_false(V("\xE2\x82\x28"));
    assert_false(V("\xF0\x9F\x98\x28"));
    assert_false(V("\xC3\xA9\xA9")); /* one continuation too many */
}

static size_t encode(uint32_t cp, uint8_t *o)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static void every_scalar_value_is_valid_and_every_surrogate_is_not(void **state)
{
    (void)state;
    uint8_t b[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t n = encode(cp, b);
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        assert_int_equal(utf8_valid(b, n), !surrogate);
    }
}

static void every_invalid_lead_byte_is_rejected(void **state)
{
    (void)state;
    for (unsigned c = 0x80; c <= 0xFF; c++) {
        uint8_t b[4] = {(uint8_t)c, 0x90, 0x90, 0x90};
        bool lead_ok = (c >= 0xC2 && c <= 0xF4);
        if (!lead_ok)
            assert_false(utf8_valid(b, 4));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_input_is_valid),
        cmocka_unit_test(ascii_of_every_length_is_valid),
        cmocka_unit_test(nul_bytes_are_valid_utf8),
        cmocka_unit_test(two_three_and_four_byte_sequences_are_valid),
        cmocka_unit_test(multibyte_after_long_ascii_run_is_checked),
        cmocka_unit_test(overlong_encodings_are_invalid),
        cmocka_unit_test(surrogates_are_invalid),
        cmocka_unit_test(code_points_above_10ffff_are_invalid),
        cmocka_unit_test(truncated_sequences_are_invalid),
        cmocka_unit_test(stray_or_wrong_continuation_bytes_are_invalid),
        cmocka_unit_test(every_scalar_value_is_valid_and_every_surrogate_is_not),
        cmocka_unit_test(every_invalid_lead_byte_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
