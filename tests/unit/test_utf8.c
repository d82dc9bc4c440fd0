#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/utf8.h"

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

/* ---- utf8_sanitize ------------------------------------------------------- */

#define FFFD "\xEF\xBF\xBD"

/* Sanitizes the literal with the given cap; checks the result is the
 * expected bytes, NUL-terminated, of the returned length, and valid. */
static void expect_sanitized_n(const char *in, size_t len, size_t cap, const char *want)
{
    char out[512];
    assert_true(cap <= sizeof out);
    memset(out, 'Z', sizeof out);
    size_t n = utf8_sanitize(out, cap, in, len);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n + 1); /* including the NUL */
    assert_true(n < cap);
    assert_true(utf8_valid((const uint8_t *)out, n));
    if (cap < sizeof out)
        assert_int_equal(out[cap], 'Z'); /* nothing written past cap */
}

#define S(lit, want) expect_sanitized_n(lit, sizeof(lit) - 1, 512, want)
#define SCAP(lit, cap, want) expect_sanitized_n(lit, sizeof(lit) - 1, cap, want)

static void sanitize_copies_valid_text_unchanged(void **state)
{
    (void)state;
    S("", "");
    S("hello", "hello");
    S("caf\xC3\xA9", "caf\xC3\xA9");
    S("\xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF",
      "\xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF");
    S("tab\there\nnl\x01\x7F", "tab\there\nnl\x01\x7F"); /* controls are valid UTF-8 */
    S("Hello-\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",
      "Hello-\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5");
}

static void sanitize_replaces_invalid_bytes_like_a_browser(void **state)
{
    (void)state;
    /* The case from the issue: a request path with raw bytes. */
    S("/app/\xFF\xFE", "/app/" FFFD FFFD);
    /* Lone and surplus continuation bytes: one U+FFFD each. */
    S("\x80", FFFD);
    S("a\xBF"
      "b",
      "a" FFFD "b");
    S("\x80\x80\x80", FFFD FFFD FFFD);
    S("\xC3\xA9\xA9", "\xC3\xA9" FFFD);
    /* Invalid lead bytes. */
    S("\xC0\xC1\xF5\xF8\xFE\xFF", FFFD FFFD FFFD FFFD FFFD FFFD);
    /* A sequence interrupted by ASCII: one U+FFFD for the maximal subpart,
     * the ASCII byte is kept. */
    S("\xC3(", FFFD "(");
    S("\xE2\x82(", FFFD "(");
    S("\xE2(\xA1", FFFD "(" FFFD);
    S("\xF0\x9F\x98(", FFFD "(");
    /* A sequence interrupted by another lead byte: the new one starts over. */
    S("\xE2\x82\xC3\xA9", FFFD "\xC3\xA9");
    S("\xF0\x9F\xF0\x9F\x98\x80", FFFD "\xF0\x9F\x98\x80");
}

static void sanitize_replaces_truncated_sequences_at_the_end(void **state)
{
    (void)state;
    S("abc\xC3", "abc" FFFD);
    S("abc\xE2\x82", "abc" FFFD);
    S("abc\xF0\x9F\x98", "abc" FFFD);
    S("\xF0", FFFD);
}

static void sanitize_replaces_overlongs_byte_by_byte(void **state)
{
    (void)state;
    S("\xC0\x80", FFFD FFFD);
    S("\xC1\xBF", FFFD FFFD);
    S("\xE0\x80\x80", FFFD FFFD FFFD);
    S("\xE0\x9F\xBF", FFFD FFFD FFFD);
    S("\xF0\x80\x80\x80", FFFD FFFD FFFD FFFD);
    S("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD);
}

static void sanitize_replaces_surrogates_and_code_points_above_10ffff(void **state)
{
    (void)state;
    S("\xED\xA0\x80", FFFD FFFD FFFD);                            /* U+D800 */
    S("\xED\xBF\xBF", FFFD FFFD FFFD);                            /* U+DFFF */
    S("\xED\xA0\x80\xED\xB0\x80", FFFD FFFD FFFD FFFD FFFD FFFD); /* CESU-8 pair */
    S("\xED\x9F\xBF", "\xED\x9F\xBF");                            /* U+D7FF is fine */
    S("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);                   /* U+110000 */
    S("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD);
}

static void sanitize_replaces_nul_so_the_result_is_a_c_string(void **state)
{
    (void)state;
    char out[16];
    size_t n = utf8_sanitize(out, sizeof out, "a\0b", 3);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "a" FFFD "b", 6);
    assert_int_equal(strlen(out), n);
}

static void sanitize_with_cap_0_or_1_writes_nothing_or_only_the_nul(void **state)
{
    (void)state;
    assert_int_equal(utf8_sanitize(NULL, 0, "abc", 3), 0);
    char out[2] = {'x', 'y'};
    assert_int_equal(utf8_sanitize(out, 0, "abc", 3), 0);
    assert_int_equal(out[0], 'x'); /* cap 0: untouched */
    assert_int_equal(utf8_sanitize(out, 1, "abc", 3), 0);
    assert_int_equal(out[0], '\0');
    assert_int_equal(out[1], 'y');
    assert_int_equal(utf8_sanitize(out, 2, NULL, 0), 0);
    assert_int_equal(out[0], '\0');
}

static void sanitize_truncates_ascii_to_cap_minus_one(void **state)
{
    (void)state;
    SCAP("abcdef", 4, "abc");
    SCAP("abcdef", 6, "abcde");
    SCAP("abcdef", 7, "abcdef");
    SCAP("abcdef", 8, "abcdef");
}

static void sanitize_never_cuts_a_multibyte_character(void **state)
{
    (void)state;
    /* "a€b": € is 3 bytes at [1, 4). */
    SCAP("a\xE2\x82\xAC"
         "b",
         2, "a");
    SCAP("a\xE2\x82\xAC"
         "b",
         3, "a");
    SCAP("a\xE2\x82\xAC"
         "b",
         4, "a");
    SCAP("a\xE2\x82\xAC"
         "b",
         5, "a\xE2\x82\xAC");
    SCAP("a\xE2\x82\xAC"
         "b",
         6,
         "a\xE2\x82\xAC"
         "b");
    /* 4-byte characters at every cut point. */
    SCAP("\xF0\x9F\x98\x80\xF0\x9F\x98\x81", 4, "");
    SCAP("\xF0\x9F\x98\x80\xF0\x9F\x98\x81", 5, "\xF0\x9F\x98\x80");
    SCAP("\xF0\x9F\x98\x80\xF0\x9F\x98\x81", 8, "\xF0\x9F\x98\x80");
    SCAP("\xF0\x9F\x98\x80\xF0\x9F\x98\x81", 9, "\xF0\x9F\x98\x80\xF0\x9F\x98\x81");
    /* 2-byte characters. */
    SCAP("\xC3\xA9\xC3\xA9", 2, "");
    SCAP("\xC3\xA9\xC3\xA9", 3, "\xC3\xA9");
    SCAP("\xC3\xA9\xC3\xA9", 4, "\xC3\xA9");
    SCAP("\xC3\xA9\xC3\xA9", 5, "\xC3\xA9\xC3\xA9");
}

static void sanitize_never_cuts_a_replacement_character(void **state)
{
    (void)state;
    SCAP("a\xFF", 2, "a");
    SCAP("a\xFF", 3, "a");
    SCAP("a\xFF", 4, "a");
    SCAP("a\xFF", 5, "a" FFFD);
    SCAP("\xFF\xFE", 6, FFFD);
    SCAP("\xFF\xFE", 7, FFFD FFFD);
    /* Once something did not fit, nothing shorter after it is appended. */
    SCAP("a\xFF"
         "b",
         3, "a");
}

static void sanitize_cuts_the_input_when_the_output_fits_exactly(void **state)
{
    (void)state;
    /* 3 * len + 1 always suffices. */
    const char in[] = "\xFF\x80\xC0\xE2\x82";
    expect_sanitized_n(in, sizeof in - 1, 3 * (sizeof in - 1) + 1, FFFD FFFD FFFD FFFD);
}

/* Every cap from 0 to past the end over a mix of valid and invalid input:
 * the result is always a prefix, at a character boundary, of the result
 * with room to spare, and valid UTF-8. */
static void sanitize_results_for_smaller_caps_are_prefixes(void **state)
{
    (void)state;
    const char in[] = "ab\xC3\xA9\xFF\xE2\x82\xAC\xF0\x9F\x98\x80\xED\xA0\x80x\xE2\x82";
    char full[128];
    size_t full_n = utf8_sanitize(full, sizeof full, in, sizeof in - 1);
    assert_true(utf8_valid((const uint8_t *)full, full_n));
    size_t prev = 0;
    for (size_t cap = 1; cap <= full_n + 2; cap++) {
        char out[128];
        size_t n = utf8_sanitize(out, cap, in, sizeof in - 1);
        assert_true(n < cap);
        assert_true(n >= prev);
        assert_memory_equal(out, full, n);
        assert_int_equal(out[n], '\0');
        assert_true(utf8_valid((const uint8_t *)out, n));
        /* cut only before a character: the next full byte is not a continuation */
        assert_true(n == full_n || ((unsigned char)full[n] & 0xC0) != 0x80);
        /* and only because the next character did not fit */
        if (n < full_n) {
            size_t next = 1;
            while (n + next < full_n && ((unsigned char)full[n + next] & 0xC0) == 0x80)
                next++;
            assert_true(n + next > cap - 1);
        }
        prev = n;
    }
    assert_int_equal(prev, full_n);
}

/* Every single scalar value and every 1- and 2-byte string: output valid,
 * and valid input copied unchanged. */
static void sanitize_every_scalar_value_round_trips(void **state)
{
    (void)state;
    uint8_t b[4];
    char out[16];
    for (uint32_t cp = 1; cp <= 0x10FFFF; cp++) {
        size_t n = encode(cp, b);
        size_t m = utf8_sanitize(out, sizeof out, (const char *)b, n);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            assert_int_equal(m, 9);
            assert_memory_equal(out, FFFD FFFD FFFD, 9);
        } else {
            assert_int_equal(m, n);
            assert_memory_equal(out, b, n);
        }
    }
}

static void sanitize_any_two_bytes_give_valid_output(void **state)
{
    (void)state;
    char out[16];
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned c = 0; c < 256; c++) {
            const char in[2] = {(char)a, (char)c};
            size_t n = utf8_sanitize(out, sizeof out, in, 2);
            assert_true(utf8_valid((const uint8_t *)out, n));
            assert_int_equal(strlen(out), n);
            if (a != 0 && c != 0 && utf8_valid((const uint8_t *)in, 2)) {
                assert_int_equal(n, 2);
                assert_memory_equal(out, in, 2);
            }
        }
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
        cmocka_unit_test(sanitize_copies_valid_text_unchanged),
        cmocka_unit_test(sanitize_replaces_invalid_bytes_like_a_browser),
        cmocka_unit_test(sanitize_replaces_truncated_sequences_at_the_end),
        cmocka_unit_test(sanitize_replaces_overlongs_byte_by_byte),
        cmocka_unit_test(sanitize_replaces_surrogates_and_code_points_above_10ffff),
        cmocka_unit_test(sanitize_replaces_nul_so_the_result_is_a_c_string),
        cmocka_unit_test(sanitize_with_cap_0_or_1_writes_nothing_or_only_the_nul),
        cmocka_unit_test(sanitize_truncates_ascii_to_cap_minus_one),
        cmocka_unit_test(sanitize_never_cuts_a_multibyte_character),
        cmocka_unit_test(sanitize_never_cuts_a_replacement_character),
        cmocka_unit_test(sanitize_cuts_the_input_when_the_output_fits_exactly),
        cmocka_unit_test(sanitize_results_for_smaller_caps_are_prefixes),
        cmocka_unit_test(sanitize_every_scalar_value_round_trips),
        cmocka_unit_test(sanitize_any_two_bytes_give_valid_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
