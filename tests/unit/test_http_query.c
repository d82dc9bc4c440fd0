#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/http_query.h"

static long decode(const char *in, char *out, bool plus)
{
    return http_percent_decode(in, strlen(in), out, plus);
}

static void percent_escapes_decode_in_either_case(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("a%20b%2fc%2Fd", out, false), 7);
    assert_string_equal(out, "a b/c/d");
    assert_int_equal(decode("%C3%A9", out, false), 2);
    assert_string_equal(out, "\xC3\xA9");
    assert_int_equal(decode("", out, false), 0);
    assert_string_equal(out, "");
}

static void plus_is_space_only_in_queries(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("a+b%2B", out, true), 4);
    assert_string_equal(out, "a b+");
    assert_int_equal(decode("a+b%2B", out, false), 4);
    assert_string_equal(out, "a+b+");
}

static void bad_or_truncated_escapes_are_refused(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("%zz", out, true), -1);
    assert_int_equal(decode("%4", out, true), -1);
    assert_int_equal(decode("abc%", out, true), -1);
    assert_int_equal(decode("%g0", out, true), -1);
}

static void decoded_nul_byte_is_refused(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("a%00b", out, true), -1);
    assert_int_equal(http_percent_decode("a\0b", 3, out, true), -1);
}

static void decode_fills_exactly_len_plus_one_bytes(void **state)
{
    (void)state;
    char out[4];
    assert_int_equal(http_percent_decode("abc", 3, out, false), 3);
    assert_string_equal(out, "abc");
}

static void iterator_yields_raw_pairs_and_skips_empty_ones(void **state)
{
    (void)state;
    const char *q = "&a=1&&b=&c&d=x%20y=z&";
    http_query_iter it;
    http_query_iter_init(&it, q, strlen(q));
    const char *k, *v;
    size_t kl, vl;
    const char *want[][2] = {{"a", "1"}, {"b", ""}, {"c", ""}, {"d", "x%20y=z"}};
    for (size_t i = 0; i < 4; i++) {
        assert_true(http_query_next(&it, &k, &kl, &v, &vl));
        assert_int_equal(kl, strlen(want[i][0]));
        assert_memory_equal(k, want[i][0], kl);
        assert_int_equal(vl, strlen(want[i][1]));
        assert_memory_equal(v, want[i][1], vl);
    }
    assert_false(http_query_next(&it, &k, &kl, &v, &vl));
    assert_false(http_query_next(&it, &k, &kl, &v, &vl));
}

static void iterator_over_empty_or_null_query_yields_nothing(void **state)
{
    (void)state;
    http_query_iter it;
    const char *k, *v;
    size_t kl, vl;
    http_query_iter_init(&it, NULL, 0);
    assert_false(http_query_next(&it, &k, &kl, &v, &vl));
    http_query_iter_init(&it, "&&&", 3);
    assert_false(http_query_next(&it, &k, &kl, &v, &vl));
}

static void iterator_respects_the_given_length(void **state)
{
    (void)state;
    http_query_iter it;
    const char *k, *v;
    size_t kl, vl;
    http_query_iter_init(&it, "a=12&b=3", 3);
    assert_true(http_query_next(&it, &k, &kl, &v, &vl));
    assert_int_equal(vl, 1);
    assert_false(http_query_next(&it, &k, &kl, &v, &vl));
}

static void get_finds_first_parameter_and_decodes_its_value(void **state)
{
    (void)state;
    const char *q =
        "auth_key=k1&auth_timestamp=1700000000&body_md5=abc&channel=a%2Bb+c&auth_key=k2";
    char out[64];
    assert_int_equal(http_query_get(q, strlen(q), "auth_key", out, sizeof out), 2);
    assert_string_equal(out, "k1");
    assert_int_equal(http_query_get(q, strlen(q), "channel", out, sizeof out), 5);
    assert_string_equal(out, "a+b c");
    assert_int_equal(http_query_get(q, strlen(q), "auth", out, sizeof out), -1);
    assert_int_equal(http_query_get(q, strlen(q), "missing", out, sizeof out), -1);
    assert_int_equal(http_query_get(NULL, 0, "x", out, sizeof out), -1);
}

static void get_compares_keys_after_decoding(void **state)
{
    (void)state;
    const char *q = "filter%5Bby%5D=name&a+b=1&bad%zz=2";
    char out[64];
    assert_int_equal(http_query_get(q, strlen(q), "filter[by]", out, sizeof out), 4);
    assert_string_equal(out, "name");
    assert_int_equal(http_query_get(q, strlen(q), "a b", out, sizeof out), 1);
    assert_int_equal(http_query_get(q, strlen(q), "bad", out, sizeof out), -1);
}

static void get_of_parameter_without_value_is_empty(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(http_query_get("flag&x=1", 8, "flag", out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void get_refuses_values_that_do_not_fit_or_are_badly_escaped(void **state)
{
    (void)state;
    char out[4];
    assert_int_equal(http_query_get("k=abc", 5, "k", out, sizeof out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(http_query_get("k=abcd", 6, "k", out, sizeof out), -2);
    assert_int_equal(http_query_get("k=%41%42%43", 11, "k", out, sizeof out), 3);
    assert_int_equal(http_query_get("k=%4", 4, "k", out, sizeof out), -2);
    assert_int_equal(http_query_get("k=%00", 5, "k", out, sizeof out), -2);
    assert_int_equal(http_query_get("k=", 2, "k", out, 0), -2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(percent_escapes_decode_in_either_case),
        cmocka_unit_test(plus_is_space_only_in_queries),
        cmocka_unit_test(bad_or_truncated_escapes_are_refused),
        cmocka_unit_test(decoded_nul_byte_is_refused),
        cmocka_unit_test(decode_fills_exactly_len_plus_one_bytes),
        cmocka_unit_test(iterator_yields_raw_pairs_and_skips_empty_ones),
        cmocka_unit_test(iterator_over_empty_or_null_query_yields_nothing),
        cmocka_unit_test(iterator_respects_the_given_length),
        cmocka_unit_test(get_finds_first_parameter_and_decodes_its_value),
        cmocka_unit_test(get_compares_keys_after_decoding),
        cmocka_unit_test(get_of_parameter_without_value_is_empty),
        cmocka_unit_test(get_refuses_values_that_do_not_fit_or_are_badly_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
